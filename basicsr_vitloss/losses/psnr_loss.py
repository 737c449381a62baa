"""PSNRLoss of NAFNet's recipes: minus the PSNR of each image (data range 1), averaged over the batch."""
import math

import torch
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # ITU-R BT.601 luma of RGB in [0, 1], on the [0, 255] scale


def rgb_to_y(img):
    """Y channel in [0, 1] (16/255 to 235/255) of (B, 3, H, W) RGB in [0, 1], as (B, 1, H, W)."""
    weights = img.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return ((img * weights).sum(dim=1, keepdim=True) + 16.0) / 255.0


@LOSS_REGISTRY.register()
class PSNRLoss(nn.Module):
    """``loss_weight * 10 / ln(10) * mean_b ln(MSE_b + 1e-8)``: the mean of -PSNR_b (negative values).

    Optimizing the log of each image's error weighs every image alike, whatever its error level.
    Computed in float32, so it is safe under autocast. ``toY``: compare the Y channels of RGB inputs.
    """

    def __init__(self, loss_weight=1.0, reduction='mean', toY=False):
        super().__init__()
        if reduction != 'mean':
            raise ValueError(f"PSNRLoss: reduction '{reduction}' is not supported; only 'mean' (the batch average "
                             'of -PSNR) is.')
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.toY = bool(toY)
        self.scale = 10 / math.log(10)

    def forward(self, pred, target, **kwargs):
        if pred.dim() != 4 or pred.shape != target.shape:
            raise ValueError(f'PSNRLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must be '
                             '(B, C, H, W) batches of one shape.')
        if self.toY and pred.shape[1] != 3:
            raise ValueError(f'PSNRLoss: toY needs RGB images (B, 3, H, W), got {tuple(pred.shape)}.')
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred, target = pred.float(), target.float()
            if self.toY:
                pred, target = rgb_to_y(pred), rgb_to_y(target)
            mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
            return self.loss_weight * self.scale * torch.log(mse + 1e-8).mean()
