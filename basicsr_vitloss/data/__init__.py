"""Datasets registered in BasicSR's DATASET_REGISTRY. Each ``*_dataset.py`` module here is imported."""
from basicsr_vitloss.utils.registration import import_modules_with_suffix

__all__ = import_modules_with_suffix(__name__, __path__, '_dataset')
