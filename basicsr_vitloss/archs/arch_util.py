"""Helpers shared by the architectures."""
import math

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


def square_zero_padding(h, w, multiple):
    """(side, top, left) of the official Uformer test scripts' ``expand2square``: a zero square whose side
    is ``ceil(max(h, w) / multiple) * multiple``, the image placed at ``((side - h) // 2, (side - w) // 2)``."""
    side = int(math.ceil(max(h, w) / multiple)) * multiple
    return side, (side - h) // 2, (side - w) // 2


def pad_to_square(x, multiple):
    """Zero-pad a (..., H, W) tensor to the centred square of :func:`square_zero_padding`.
    Returns (padded, (top, left)); crop the output back with ``[..., top:top + H, left:left + W]``.
    Returns the input itself (offsets 0) when it already is such a square."""
    h, w = x.shape[-2:]
    side, top, left = square_zero_padding(h, w, multiple)
    if side == h == w:
        return x, (0, 0)
    return F.pad(x, (left, side - w - left, top, side - h - top), mode='constant', value=0.), (top, left)
