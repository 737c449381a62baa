"""Architectures registered in BasicSR's ARCH_REGISTRY (NAFNet, Restormer, Uformer, DPDNet: see the
architectures issue). Each ``*_arch.py`` module in this folder is imported, as BasicSR does."""
from basicsr_vitloss.utils.registration import import_modules_with_suffix

__all__ = import_modules_with_suffix(__name__, __path__, '_arch')
