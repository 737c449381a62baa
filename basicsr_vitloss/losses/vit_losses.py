"""The paper's two perceptual losses on frozen ViT features (Sec. III-C, III-D), as BasicSR losses.

Both follow BasicSR's perceptual-loss contract, ``percep, style = loss(pred, target)`` with
``style`` None, so they work as ``perceptual_opt`` of every stock BasicSR model. Outside BasicSR,
``loss.value(pred, target)`` returns the scalar.
"""
import torch
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY

from .vit_features import ViTFeatureExtractor


class _ViTPerceptualLoss(nn.Module):
    """Shared part: input checks, one shared random mask, target features without autograd."""

    def __init__(self, loss_weight=1.0, backbone='mae', pretrained=True, layers=5, feature='token',
                 mask_ratio=0.5, backbone_kwargs=None):
        super().__init__()
        if not 0 <= float(mask_ratio) < 1:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}.')
        self.loss_weight = float(loss_weight)
        self.mask_ratio = float(mask_ratio)
        self.vit = ViTFeatureExtractor(backbone, pretrained, layers, feature, **(backbone_kwargs or {}))

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
        if not torch.isfinite(pred).all():
            raise ValueError(f'{type(self).__name__}: pred contains NaN or inf.')

    def features(self, pred, target):
        """``[(pred_features, target_features)]`` per layer, with the same tokens kept for both."""
        self._check(pred, target)
        keep = self.vit.random_keep(pred.shape[0], pred.shape[2], pred.shape[3], self.mask_ratio, pred.device)
        with torch.no_grad():
            target_features = self.vit(target.detach(), keep)
        pred_features = self.vit(pred, keep)
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
               f'mask_ratio={self.mask_ratio}'


@LOSS_REGISTRY.register()
class LocalMAEPerceptualLoss(_ViTPerceptualLoss):
    """Local ViT perceptual loss (Eq. 5): mean absolute difference of the features of pred and
    target over batch, tokens (CLS included) and channels, summed over layers, times loss_weight.

    Args (YAML keys): loss_weight (paper: 1), backbone ('mae' | 'dino' | 'vit' | timm name),
    pretrained (True | False | checkpoint path), layers (1-based block index or list; paper: 5),
    feature ('token' | 'query' | 'key' | 'value'), mask_ratio (paper: 0.5), backbone_kwargs.
    """

    def distance(self, pred_feature, target_feature):
        return (pred_feature.float() - target_feature.float()).abs().mean()


@LOSS_REGISTRY.register()
class GlobalDistributionLoss(_ViTPerceptualLoss):
    """Global ViT perceptual loss (Eqs. 6-7): per image and token (CLS included), the 1-D
    p-Wasserstein distance between the D channel values of pred and target,
    W_p = (sum_d |sort(u)_d - sort(v)_d|^p)^(1/p), summed over tokens, averaged over the batch,
    summed over layers, times loss_weight (paper: 1e-5, p = 2, mask_ratio 0.5 as in the local loss).

    ``normalize_by_dim=True`` uses the variant of the authors' public code, (mean_d |...|^p)^(1/p),
    i.e. the inner sum divided by D; default off (the paper's formula). Distances are computed in
    float32 under autocast.
    """

    def __init__(self, loss_weight=1e-5, p=2, normalize_by_dim=False, **kwargs):
        super().__init__(loss_weight=loss_weight, **kwargs)
        if not float(p) >= 1:
            raise ValueError(f'p must be >= 1 for a Wasserstein distance, got {p}.')
        self.p = float(p)
        self.normalize_by_dim = bool(normalize_by_dim)

    def distance(self, pred_feature, target_feature):
        gap = pred_feature.float().sort(dim=-1).values - target_feature.float().sort(dim=-1).values
        if self.p == 1:
            return (gap.abs().mean(-1) if self.normalize_by_dim else gap.abs().sum(-1)).sum(-1).mean()
        powered = gap.square() if self.p == 2 else gap.abs().pow(self.p)
        inner = powered.mean(-1) if self.normalize_by_dim else powered.sum(-1)
        # the root has an infinite slope at 0: tokens that match exactly get distance 0 and gradient 0
        matched = inner == 0
        safe = torch.where(matched, 1.0, inner)
        per_token = torch.where(matched, 0.0, safe.sqrt() if self.p == 2 else safe.pow(1 / self.p))
        return per_token.sum(-1).mean()

    def extra_repr(self):
        return super().extra_repr() + f', p={self.p:g}, normalize_by_dim={self.normalize_by_dim}'
