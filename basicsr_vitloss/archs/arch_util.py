"""Helpers shared by the architectures."""
from torch.nn import functional as F


def pad_to_multiple(x, multiple):
    """Pad a (..., H, W) tensor at the bottom and right so that H and W are multiples of
    ``multiple`` (an int or (mh, mw)): reflect, or replicate where a side is too short to reflect.
    Returns the input itself when nothing is needed; crop the output back with ``[..., :H, :W]``."""
    mh, mw = (multiple, multiple) if isinstance(multiple, int) else multiple
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % mh, (-w) % mw
    if pad_h == 0 and pad_w == 0:
        return x
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
