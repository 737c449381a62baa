"""Models registered in BasicSR's MODEL_REGISTRY, only where a stock BasicSR model cannot do the
job. Each ``*_model.py`` module here is imported."""
from basicsr_vitloss.utils.registration import import_modules_with_suffix

__all__ = import_modules_with_suffix(__name__, __path__, '_model')
