"""DataParallel whose replicas compute in the autocast dtype the caller chose (``train: mixed_precision``).

``torch.nn.DataParallel`` runs each GPU's replica in a thread of its own (``parallel_apply``) and enters
autocast again there as ``torch.amp.autocast(device_type, enabled=...)``, without the dtype. Autocast's
dtype is per thread, and a new thread has the default one (float16 on CUDA), so under
``mixed_precision: bf16`` the replicas computed in float16, with no gradient scaler. ``AutocastDataParallel``
reads the caller's autocast state in the calling thread and enters it again inside each replica's call.
Everything else is DataParallel's (``isinstance(net, DataParallel)`` holds: BasicSR's ``get_bare_model``
and checkpoint code treat it as one).
"""
import torch


class _UnderAutocast:
    """Call ``module`` under autocast for ``device_type`` with the given dtype and cache setting."""

    def __init__(self, module, device_type, dtype, cache_enabled):
        self.module, self.device_type, self.dtype, self.cache_enabled = module, device_type, dtype, cache_enabled

    def __call__(self, *args, **kwargs):
        with torch.autocast(self.device_type, dtype=self.dtype, cache_enabled=self.cache_enabled):
            return self.module(*args, **kwargs)


def under_callers_autocast(replicas, device_type):
    """``replicas``, each wrapped to run under the calling thread's autocast state for ``device_type``
    (dtype and cache setting, read now), whatever thread later calls it; unchanged when autocast is off."""
    if not torch.is_autocast_enabled(device_type):
        return list(replicas)
    dtype, cache_enabled = torch.get_autocast_dtype(device_type), torch.is_autocast_cache_enabled()
    return [_UnderAutocast(replica, device_type, dtype, cache_enabled) for replica in replicas]


class AutocastDataParallel(torch.nn.DataParallel):
    """``torch.nn.DataParallel`` whose replicas run under the caller's autocast dtype (see the module)."""

    def parallel_apply(self, replicas, inputs, kwargs):
        return super().parallel_apply(under_callers_autocast(replicas, self.src_device_obj.type), inputs, kwargs)
