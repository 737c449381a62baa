"""Restormer-style progressive training in BasicSR's own loop: patch size and batch size by stage.

Restormer trains on small patches with large batches first and on large patches with small batches
later (``gt_sizes`` / ``mini_batch_sizes`` over stages of ``iters`` iterations). BasicSR's loop has no
hook for it, but it hands the iteration to ``optimize_parameters``: there the loaded batch (patches
of the largest size ``gt_size``, ``batch_size_per_gpu`` of them) is cut down to the stage's batch
size and patch size before the step. The dataset is unchanged, so any paired dataset works.

Restormer's own option keys are read where Restormer puts them, so its YAML runs unchanged::

    datasets:
      train:
        gt_size: 384                      # what the dataset loads
        batch_size_per_gpu: 8
        iters: [92000, 64000, 48000, 36000, 36000, 24000]
        gt_sizes: [128, 160, 192, 256, 320, 384]
        mini_batch_sizes: [8, 5, 4, 2, 1, 1]
    train:
      mixing_augs: {mixup: false, mixup_beta: 1.2, use_identity: true}
"""
import math
import types

import torch

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY


class ProgressiveSchedule:
    """Stage -> (patch size, batch size), from Restormer's keys in the train dataset options."""

    def __init__(self, dataset_opt, total_iter=None, where='datasets:train'):
        self.iters = [int(i) for i in dataset_opt['iters']]
        self.gt_sizes = [int(s) for s in dataset_opt.get('gt_sizes') or [dataset_opt['gt_size']] * len(self.iters)]
        batch = dataset_opt.get('batch_size_per_gpu')
        self.batch_sizes = [int(b) for b in dataset_opt.get('mini_batch_sizes') or [batch] * len(self.iters)]
        self.gt_size = int(dataset_opt['gt_size'])
        lengths = {'iters': len(self.iters), 'gt_sizes': len(self.gt_sizes), 'mini_batch_sizes': len(self.batch_sizes)}
        if len(set(lengths.values())) != 1 or not self.iters:
            raise ValueError(f'{where}: iters, gt_sizes and mini_batch_sizes must be non-empty lists of one '
                             f'length (one entry per stage), got lengths {lengths}.')
        if max(self.gt_sizes) > self.gt_size:
            raise ValueError(f'{where}: gt_sizes {self.gt_sizes} go beyond gt_size {self.gt_size}, the patch '
                             f'size the dataset loads; set gt_size: {max(self.gt_sizes)}.')
        if batch is not None and max(self.batch_sizes) > int(batch):
            raise ValueError(f'{where}: mini_batch_sizes {self.batch_sizes} go beyond batch_size_per_gpu {batch}, '
                             f'the batch the loader delivers; set batch_size_per_gpu: {max(self.batch_sizes)}.')
        self.ends = [sum(self.iters[:i + 1]) for i in range(len(self.iters))]
        if total_iter is not None and self.ends[-1] < int(total_iter):
            get_root_logger().warning(f'{where}: the stages end at iteration {self.ends[-1]} but total_iter is '
                                      f'{total_iter}; the last stage continues to the end.')

    def stage(self, current_iter):
        """Index of the stage ``current_iter`` (1-based, as in BasicSR's loop) belongs to."""
        return next((i for i, end in enumerate(self.ends) if current_iter <= end), len(self.ends) - 1)


@MODEL_REGISTRY.register()
class ProgressiveSRModel(SRModel):
    """BasicSR's SRModel plus Restormer's progressive patch / batch sizes and optional mixup.

    Without ``iters`` in the train dataset options and without mixup it is exactly SRModel."""

    def __init__(self, opt):
        super().__init__(opt)
        dataset_opt = (opt.get('datasets') or {}).get('train') or {}
        self.schedule = None
        if self.is_train and dataset_opt.get('iters'):
            self.schedule = ProgressiveSchedule(dataset_opt, opt['train'].get('total_iter'))
        self.logged_stage = None
        mixing = (opt.get('train') or {}).get('mixing_augs') or {}
        self.mixup = bool(mixing.get('mixup', False))
        self.mixup_beta = float(mixing.get('mixup_beta', 1.2))
        self.mixup_identity = bool(mixing.get('use_identity', False))

    def setup_optimizers(self):
        """BasicSR's optimizers; with ``train: use_grad_clip``, clipping is installed here, before the
        schedulers wrap ``optimizer.step`` (installed later, torch warns that the step was overridden)."""
        super().setup_optimizers()
        train_opt = self.opt.get('train') or {}
        if train_opt.get('use_grad_clip', False):
            self.clip_gradients_before_step(train_opt.get('grad_clip_norm', 0.01))

    def clip_gradients_before_step(self, max_norm):
        """Make ``optimizer_g.step`` clip net_g's global gradient norm to ``max_norm`` first
        (``train: use_grad_clip``; Restormer and NAFNet clip at 0.01), as BasicSR's loop has no hook
        between backward and step."""
        try:
            value = float(max_norm)
        except (TypeError, ValueError):
            value = math.nan
        if not 0 < value < math.inf:
            raise ValueError(f'train:grad_clip_norm must be a positive number, got {max_norm!r}.')
        self.grad_clip_norm = max_norm = value
        step = self.optimizer_g.step
        net = self.net_g

        def clipped_step(optimizer, *args, **kwargs):
            torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
            return step(*args, **kwargs)

        # a bound method, as torch's LR schedulers expect when they wrap optimizer.step themselves
        self.optimizer_g.step = types.MethodType(clipped_step, self.optimizer_g)

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        """BasicSR's optimizers, and AdamW where the installed BasicSR does not build it (basicsr 1.4.2
        builds only Adam; Restormer, NAFNet and Uformer train with AdamW)."""
        try:
            return super().get_optimizer(optim_type, params, lr, **kwargs)
        except NotImplementedError:
            if optim_type == 'AdamW':
                return torch.optim.AdamW(params, lr, **kwargs)
            raise

    def progressive_crop(self, current_iter):
        """Cut the loaded batch down to this stage's batch size and patch size (one random window for
        the whole batch; lq cropped at 1/scale)."""
        stage = self.schedule.stage(current_iter)
        size, batch = self.schedule.gt_sizes[stage], self.schedule.batch_sizes[stage]
        if not self.opt.get('dist') and int(self.opt.get('num_gpu') or 0) > 1:
            batch *= int(self.opt['num_gpu'])  # DataParallel: one loaded batch holds every GPU's share
        if stage != self.logged_stage:
            get_root_logger().info(f'Progressive training stage {stage + 1}/{len(self.schedule.ends)} from iteration '
                                   f'{current_iter}: patch size {size}, batch size {batch} per GPU.')
            self.logged_stage = stage
        if batch < self.gt.shape[0]:
            keep = torch.randperm(self.gt.shape[0], device=self.gt.device)[:batch]
            self.lq, self.gt = self.lq[keep], self.gt[keep]
        height, width = self.gt.shape[-2:]
        if size < height or size < width:
            scale = self.opt.get('scale', 1)
            top = int(torch.randint(0, height - size + 1, ()) // scale) * scale
            left = int(torch.randint(0, width - size + 1, ()) // scale) * scale
            self.gt = self.gt[..., top:top + size, left:left + size]
            self.lq = self.lq[..., top // scale:(top + size) // scale, left // scale:(left + size) // scale]

    def mix(self):
        """Restormer's mixup: blend the batch with a shuffled copy of itself, lq and gt alike; with
        ``use_identity`` half of the iterations are left unmixed."""
        if self.mixup_identity and torch.rand(()) < 0.5:
            return
        lam = torch.distributions.Beta(self.mixup_beta, self.mixup_beta).sample().item()
        order = torch.randperm(self.gt.shape[0], device=self.gt.device)
        self.gt = lam * self.gt + (1 - lam) * self.gt[order]
        self.lq = lam * self.lq + (1 - lam) * self.lq[order]

    def optimize_parameters(self, current_iter):
        if self.schedule is not None:
            self.progressive_crop(current_iter)
        if self.mixup:
            self.mix()
        super().optimize_parameters(current_iter)


@MODEL_REGISTRY.register()
class ImageCleanModel(ProgressiveSRModel):
    """Restormer's name for the same model, so that Restormer's YAML files run unchanged."""


@MODEL_REGISTRY.register()
class ImageRestorationModel(ProgressiveSRModel):
    """NAFNet's name for the same model, so that NAFNet's YAML files run unchanged; as in NAFNet,
    gradients are clipped (at 0.01) unless ``train: use_grad_clip: false``."""

    def __init__(self, opt):
        if opt.get('is_train') and opt.get('train') is not None:
            opt['train'].setdefault('use_grad_clip', True)
        super().__init__(opt)
