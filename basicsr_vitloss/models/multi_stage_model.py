"""Losses on every stage of a multi-stage network (MPRNet) in BasicSR's own training step.

MPRNet returns, in training mode, a list of stage images ``[final, stage 2, stage 1]`` and is trained
with its pixel losses on each of them, summed (official recipe: Charbonnier + 0.05 x edge loss per
stage). ``MultiStageModel`` is ``ProgressiveSRModel`` (so BasicSR's ``SRModel``) with the loss modules
wrapped at construction, so that SRModel's ``optimize_parameters`` runs unchanged:

- ``pixel_opt`` and the new optional ``edge_opt`` (any loss of LOSS_REGISTRY, e.g. ``EdgeLoss``) are
  applied to every stage output and summed; logged as ``l_pix`` and ``l_edge``;
- ``perceptual_opt`` (the ViT losses, BasicSR's VGG ``PerceptualLoss``) sees the final output only;
  logged as ``l_percep`` / ``l_style``.

After a step ``self.output`` is the final image (a tensor), as BasicSR's logging, EMA and
visualisation expect. A network that returns a plain tensor is trained exactly as by
``ProgressiveSRModel``, with ``edge_opt`` (if given) added on that one output::

    model_type: MultiStageModel
    train:
      pixel_opt: {type: CharbonnierLoss, loss_weight: 1.0, eps: !!float 1e-6}
      edge_opt: {type: EdgeLoss, loss_weight: 0.05}
"""
from collections import OrderedDict

from torch import nn as nn

from basicsr.losses import build_loss
from basicsr.utils.registry import MODEL_REGISTRY

from .progressive_model import ProgressiveSRModel


def _stages(output):
    """The stage outputs of a network output: a list / tuple as is, a tensor as a one-stage list."""
    return list(output) if isinstance(output, (list, tuple)) else [output]


def final_output(output):
    """The final image of a network output: the first of a list of stage outputs, or the tensor itself."""
    return _stages(output)[0]


class EveryStageLoss(nn.Module):
    """Pixel losses summed over every stage output: ``sum_stage sum_loss loss(stage, target)``.

    ``losses`` maps log names (``l_pix``, ``l_edge``) to loss modules. The call returns the total and
    keeps the detached per-name sums of the last call in ``last_parts`` for the log."""

    def __init__(self, losses):
        super().__init__()
        self.losses = nn.ModuleDict(losses)
        self.last_parts = None

    def forward(self, output, target, **kwargs):
        parts = OrderedDict()
        for name, loss in self.losses.items():
            parts[name] = sum(loss(stage, target, **kwargs) for stage in _stages(output))
        self.last_parts = OrderedDict((name, value.detach()) for name, value in parts.items())
        return sum(parts.values())


class FinalStageLoss(nn.Module):
    """A loss (BasicSR's perceptual contract: ``(percep, style)``) on the final stage output only."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, output, target, **kwargs):
        return self.loss(final_output(output), target, **kwargs)


@MODEL_REGISTRY.register()
class MultiStageModel(ProgressiveSRModel):
    """ProgressiveSRModel for networks that return their stage outputs in training (see the module
    docstring): ``pixel_opt`` and ``edge_opt`` on every stage, summed; ``perceptual_opt`` on the final one."""

    def init_training_settings(self):
        train_opt = self.opt['train']
        edge_opt = train_opt.get('edge_opt')
        if edge_opt and not train_opt.get('pixel_opt') and not train_opt.get('perceptual_opt'):
            raise ValueError('MultiStageModel: train:edge_opt needs a train:pixel_opt (MPRNet: CharbonnierLoss) '
                             'or a train:perceptual_opt next to it.')
        super().init_training_settings()
        pixel = OrderedDict()
        if self.cri_pix is not None:
            pixel['l_pix'] = self.cri_pix
        if edge_opt:
            pixel['l_edge'] = build_loss(edge_opt).to(self.device)
        self.cri_pix = EveryStageLoss(pixel) if pixel else None
        if self.cri_perceptual is not None:
            self.cri_perceptual = FinalStageLoss(self.cri_perceptual)

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        self.output = final_output(self.output)

    def reduce_loss_dict(self, loss_dict):
        # SRModel logs the pixel slot as one 'l_pix'; log its parts ('l_pix', 'l_edge') instead
        parts = getattr(self.cri_pix, 'last_parts', None)
        if parts is not None and 'l_pix' in loss_dict:
            self.cri_pix.last_parts = None
            merged = OrderedDict(parts)
            merged.update((k, v) for k, v in loss_dict.items() if k != 'l_pix')
            loss_dict = merged
        return super().reduce_loss_dict(loss_dict)

    def test(self):
        super().test()
        self.output = final_output(self.output)
