"""The paper's two perceptual losses on frozen ViT features (Sec. III-C, III-D), as BasicSR losses.

Both follow BasicSR's perceptual-loss contract, ``percep, style = loss(pred, target)`` with
``style`` None, so they work as ``perceptual_opt`` of every stock BasicSR model. Outside BasicSR,
``loss.value(pred, target)`` returns the scalar.
"""
import torch
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY

from .vit_features import ViTFeatureExtractor


def _at_least_float32(x):
    """``x`` in float32, or float64 if it already is: half-precision features (autocast) are upcast for the
    distance, float64 features (a float64 check of the gradients) are not rounded down."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _flag(name, value):
    if not isinstance(value, bool):
        raise ValueError(f'{name} must be true or false, got {value!r}.')
    return value


class _ViTPerceptualLoss(nn.Module):
    """Shared part: input checks, one shared random mask (and grid offset), target features without
    autograd.

    Options shared by both losses (YAML keys), besides the paper's (loss_weight, backbone,
    pretrained, layers, feature, mask_ratio, backbone_kwargs):
        pos_embed_interpolation ('mae' | 'timm'): how the position embedding is resampled to the
            image's token grid: 'mae' (default) = MAE's interpolate_pos_embed, bicubic without
            antialias, as the authors' code; 'timm' = timm's antialiased bicubic.
        grid_offset (bool): shift the 16-px token grid by a random (dy, dx) in [0, patch) per call (from
            torch's CPU generator, the same for pred and target; reflect padding, so every pixel still
            counts). Against patch-grid-aligned artefacts; default false (the paper).
        check_finite (bool | None): refuse a pred with NaN / inf with a ValueError. None (default):
            on CPU tensors only, since on CUDA the check would wait for the GPU on every call; a NaN
            then shows in the loss value, which BasicSR logs.
        compile (bool): run each ViT block through ``torch.compile`` (fuses LayerNorm, GELU and the
            residual adds; the first calls compile, once per image size). Default false; see
            benchmarks/results/loss_bound_bench.md for what it gains.
    """

    def __init__(self, loss_weight=1.0, backbone='mae', pretrained=True, layers=5, feature='token',
                 mask_ratio=0.5, backbone_kwargs=None, pos_embed_interpolation='mae', grid_offset=False,
                 check_finite=None, compile=False):  # noqa: A002 (the YAML key)
        super().__init__()
        if not 0 <= float(mask_ratio) < 1:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}.')
        self.loss_weight = float(loss_weight)
        self.mask_ratio = float(mask_ratio)
        self.grid_offset = _flag('grid_offset', grid_offset)
        self.check_finite = None if check_finite is None else _flag('check_finite', check_finite)
        self.vit = ViTFeatureExtractor(backbone, pretrained, layers, feature, pos_embed_interpolation,
                                       **(backbone_kwargs or {}))
        if _flag('compile', compile):
            self.vit.compile_blocks()

    def _check(self, pred, target):
        if pred.shape != target.shape:
            raise ValueError(f'{type(self).__name__}: pred {tuple(pred.shape)} and target {tuple(target.shape)} '
                             'must have the same shape.')
        if pred.dim() != 4 or pred.shape[1] != 3:
            raise ValueError(f'{type(self).__name__}: expected RGB images (B, 3, H, W) in [0, 1], got '
                             f'{tuple(pred.shape)}.')
        patch = self.vit.patch_size
        if pred.shape[2] < patch[0] or pred.shape[3] < patch[1]:
            raise ValueError(f'{type(self).__name__}: images of {pred.shape[2]}x{pred.shape[3]} are smaller than '
                             f'one ViT patch ({patch[0]}x{patch[1]}).')
        check = pred.device.type == 'cpu' if self.check_finite is None else self.check_finite
        if check and not torch.isfinite(pred).all():
            raise ValueError(f'{type(self).__name__}: pred contains NaN or inf.')

    def draw_grid_offset(self):
        """(dy, dx) for this call: random in [0, patch) with grid_offset, else (0, 0). Drawn on the CPU
        generator, so no device synchronisation."""
        if not self.grid_offset:
            return (0, 0)
        dy, dx = (int(torch.randint(0, size, ())) for size in self.vit.patch_size)
        return dy, dx

    def features(self, pred, target):
        """``[(pred_features, target_features)]`` per layer, with the same tokens (and grid offset) for both."""
        self._check(pred, target)
        offset = self.draw_grid_offset()
        keep = self.vit.random_keep(pred.shape[0], pred.shape[2], pred.shape[3], self.mask_ratio, pred.device,
                                    offset)
        with torch.no_grad():
            target_features = self.vit(target.detach(), keep, offset)
        pred_features = self.vit(pred, keep, offset)
        return [(pred_features[layer], target_features[layer]) for layer in self.vit.layers]

    def distance(self, pred_feature, target_feature):
        raise NotImplementedError

    def value(self, pred, target):
        """The loss as a scalar tensor (for plain PyTorch training loops)."""
        return self.loss_weight * sum(self.distance(p, t) for p, t in self.features(pred, target))

    def forward(self, pred, target):
        """BasicSR's perceptual-loss contract: ``(percep, style)``, style None."""
        return self.value(pred, target), None

    def train(self, mode=True):
        super().train(mode)
        self.vit.train(False)  # frozen, whatever the surrounding model does
        return self

    def extra_repr(self):
        return f'loss_weight={self.loss_weight}, layers={self.vit.layers}, feature={self.vit.feature}, ' \
               f'mask_ratio={self.mask_ratio}, pos_embed_interpolation={self.vit.pos_embed_interpolation}, ' \
               f'grid_offset={self.grid_offset}'


@LOSS_REGISTRY.register()
class LocalMAEPerceptualLoss(_ViTPerceptualLoss):
    """Local ViT perceptual loss (Eq. 5): mean absolute difference of the features of pred and
    target over batch, tokens (CLS included) and channels, summed over layers, times loss_weight.

    Args (YAML keys): loss_weight (paper: 1), backbone ('mae' | 'dino' | 'vit' | timm name),
    pretrained (True | False | checkpoint path), layers (1-based block index or list; paper: 5),
    feature ('token' | 'query' | 'key' | 'value' | 'qkv'), mask_ratio (paper: 0.5), backbone_kwargs,
    pos_embed_interpolation, grid_offset, check_finite (see ``_ViTPerceptualLoss``).

    The authors' code (loss/deblur_loss.py) differs from the paper: L1 over blocks 1..6, summed,
    times 0.1 (``layers: [1, 2, 3, 4, 5, 6], loss_weight: 0.1``).
    """

    def distance(self, pred_feature, target_feature):
        return (_at_least_float32(pred_feature) - _at_least_float32(target_feature)).abs().mean()


@LOSS_REGISTRY.register()
class GlobalDistributionLoss(_ViTPerceptualLoss):
    """Global ViT perceptual loss (Eqs. 6-7) on the sorted channel values of each token (CLS included).

    ``reduction: image`` (default, the paper): per image and token, the 1-D p-Wasserstein distance
    between the D channel values of pred and target, W_p = (sum_d |sort(u)_d - sort(v)_d|^p)^(1/p),
    summed over tokens, averaged over the batch, summed over layers, times loss_weight (paper: 1e-5,
    p = 2, mask_ratio 0.5 as in the local loss). ``normalize_by_dim: true`` divides the inner sum by D,
    (mean_d |...|^p)^(1/p).

    ``reduction: batch`` (the authors' code, loss/pdl.py): per token position, the batch is pooled
    inside the root, (mean over batch and channels of |sort(u) - sort(v)|^p)^(1/p), summed over token
    positions (no batch mean); with ``layers: [1, 2, 3, 4, 5, 6], loss_weight: 1e-4`` this is their
    (commented-out) global loss. It equals ``image`` with ``normalize_by_dim`` only for batch size 1.

    Distances are computed in float32 under autocast (in float64 for a float64 ViT and input).
    """

    REDUCTIONS = ('image', 'batch')

    def __init__(self, loss_weight=1e-5, p=2, normalize_by_dim=False, reduction='image', **kwargs):
        super().__init__(loss_weight=loss_weight, **kwargs)
        if not float(p) >= 1:
            raise ValueError(f'p must be >= 1 for a Wasserstein distance, got {p}.')
        if reduction not in self.REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(self.REDUCTIONS)}, got {reduction!r}.")
        if reduction == 'batch' and normalize_by_dim:
            raise ValueError('normalize_by_dim applies to reduction: image; reduction: batch already averages '
                             'over channels (and the batch).')
        self.p = float(p)
        self.normalize_by_dim = _flag('normalize_by_dim', normalize_by_dim)
        self.reduction = reduction

    def _root(self, inner):
        """inner^(1/p), with distance 0 and gradient 0 where inner is 0 (the root's slope is infinite there)."""
        if self.p == 1:
            return inner
        matched = inner == 0
        safe = torch.where(matched, 1.0, inner)
        return torch.where(matched, 0.0, safe.sqrt() if self.p == 2 else safe.pow(1 / self.p))

    def distance(self, pred_feature, target_feature):
        gap = (_at_least_float32(pred_feature).sort(dim=-1).values
               - _at_least_float32(target_feature).sort(dim=-1).values)
        powered = gap.abs() if self.p == 1 else gap.square() if self.p == 2 else gap.abs().pow(self.p)
        if self.reduction == 'batch':  # (B, N, D) -> per token position, mean over batch and channels
            return self._root(powered.mean(dim=(0, 2))).sum()
        inner = powered.mean(-1) if self.normalize_by_dim else powered.sum(-1)
        return self._root(inner).sum(-1).mean()

    def extra_repr(self):
        return super().extra_repr() + f', p={self.p:g}, normalize_by_dim={self.normalize_by_dim}, ' \
                                      f'reduction={self.reduction}'
