"""Fix ``atomic_checkpoints``: BasicSR's network files and training states are written atomically
(``basicsr_vitloss.utils.atomic_write``), so a run killed while saving leaves no torn file."""
import contextlib
import os
import threading

import torch

from basicsr_vitloss.utils.atomic_write import atomic_save

from . import compat_fix, is_original, replace, source

_save_lock = threading.RLock()


@contextlib.contextmanager
def atomic_torch_save():
    """Within the block, ``torch.save(obj, path)`` writes atomically (file objects pass through)."""
    with _save_lock:
        original = torch.save

        def save(obj, f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)) and not args and not kwargs:
                return atomic_save(obj, f, _save=original)
            return original(obj, f, *args, **kwargs)

        torch.save = save
        try:
            yield
        finally:
            torch.save = original


def _checkpoints_need_fix():
    from basicsr.models.base_model import BaseModel
    return is_original(BaseModel.save_training_state) and 'os.replace' not in source(BaseModel.save_network)


@compat_fix(_checkpoints_need_fix, replaces=('basicsr.models.base_model.BaseModel.save_network',
                                             'basicsr.models.base_model.BaseModel.save_training_state'))
def atomic_checkpoints():
    """A run killed while saving must not leave a truncated .pth or .state behind."""
    from basicsr.models.base_model import BaseModel

    def atomic(method):

        def wrapper(self, *args, **kwargs):
            with atomic_torch_save():
                return method(self, *args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
        return wrapper

    replace(BaseModel, 'save_network', atomic(BaseModel.save_network))
    replace(BaseModel, 'save_training_state', atomic(BaseModel.save_training_state))
