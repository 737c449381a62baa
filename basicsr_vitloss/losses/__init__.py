"""Losses registered in BasicSR's LOSS_REGISTRY (the ViT perceptual losses). Each ``*_loss.py`` /
``*_losses.py`` module in this folder is imported."""
from basicsr_vitloss.utils.registration import import_modules_with_suffix

__all__ = import_modules_with_suffix(__name__, __path__, ('_loss', '_losses'))
