"""MPRNet's edge loss (Zamir et al., "Multi-Stage Progressive Image Restoration", CVPR 2021), for BasicSR.

Written from the description of the official code (swz30/MPRNet, ``Deblurring/losses.py``): the
Charbonnier distance between the high-frequency residuals of the two images, where a residual is the
image minus its one-level Laplacian-pyramid reconstruction (5x5 Gaussian blur, keep every second
pixel, zero-insert back to full size times 4, blur again). MPRNet trains its deblurring model with
``Charbonnier + 0.05 * edge`` on every stage output::

    train:
      pixel_opt: {type: CharbonnierLoss, loss_weight: 1.0, eps: !!float 1e-6}   # BasicSR's; eps is squared
      edge_opt: {type: EdgeLoss, loss_weight: 0.05}                           # MultiStageModel

MPRNet's Charbonnier is ``mean(sqrt(d^2 + eps^2))`` with eps 1e-3; BasicSR's ``CharbonnierLoss`` is
``mean(sqrt(d^2 + eps))``, so the same loss is BasicSR's with ``eps: 1e-6``. Like the official loss,
``EdgeLoss`` of two identical images is ``eps`` (times ``loss_weight``), not 0, with zero gradient.
"""
import torch
from torch import nn as nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY

_GAUSS_1D = (0.05, 0.25, 0.4, 0.25, 0.05)


@LOSS_REGISTRY.register()
class EdgeLoss(nn.Module):
    """MPRNet's edge loss: Charbonnier distance between the Laplacian residuals of pred and target.

    Args:
        loss_weight (float): Multiplies the loss. Default: 1.0 (MPRNet: 0.05 next to a Charbonnier loss).
        eps (float): Charbonnier constant, as MPRNet writes it: ``sqrt(d^2 + eps^2)``. Default: 1e-3.
        reduction (str): 'mean' (MPRNet) | 'sum' | 'none' over the residual elements. Default: 'mean'.

    ``forward(pred, target)``: (B, C, H, W) tensors of any C, H, W (the official code fixes C = 3).
    """

    def __init__(self, loss_weight=1.0, eps=1e-3, reduction='mean'):
        super().__init__()
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f"EdgeLoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        if not eps > 0:
            raise ValueError(f'EdgeLoss: eps must be positive, got {eps!r}.')
        self.loss_weight = loss_weight
        self.eps = float(eps)
        self.reduction = reduction
        taps = torch.tensor(_GAUSS_1D)
        # not a parameter, not in checkpoints; moves with .to(device)
        self.register_buffer('kernel', torch.outer(taps, taps)[None, None], persistent=False)

    def blur(self, img):
        """5x5 Gaussian filter per channel, borders replicated."""
        channels = img.shape[1]
        kernel = self.kernel.to(img.dtype).expand(channels, 1, -1, -1)
        radius = self.kernel.shape[-1] // 2
        padded = F.pad(img, (radius, radius, radius, radius), mode='replicate')
        return F.conv2d(padded, kernel, groups=channels)

    def laplacian(self, img):
        """``img`` minus its reconstruction from the next (half-resolution) Gaussian-pyramid level."""
        smooth = self.blur(img)
        sparse = torch.zeros_like(smooth)
        sparse[..., ::2, ::2] = 4 * smooth[..., ::2, ::2]
        return img - self.blur(sparse)

    def forward(self, pred, target, **kwargs):
        if pred.shape != target.shape or pred.dim() != 4:
            raise ValueError(f'EdgeLoss: pred and target must be (B, C, H, W) of one shape, got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}.')
        diff = self.laplacian(pred) - self.laplacian(target)
        loss = torch.sqrt(diff * diff + self.eps * self.eps)
        if self.reduction == 'mean':
            loss = loss.mean()
        elif self.reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss
