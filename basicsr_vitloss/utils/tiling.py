"""Tiled inference: run any restoration network on overlapping tiles with blended seams, so that
full-resolution images (DPDD: 1680x1120) fit a small GPU or the CPU.

In BasicSR options, validation and test use it when ``val: tile:`` is set::

    val:
      tile:
        size: 512      # tile side in pixels (int, or [height, width])
        overlap: 64    # pixels shared by neighbouring tiles, blended linearly
"""
import torch

from basicsr_vitloss.compat import basicsr_feature, replace
from basicsr_vitloss.utils.windows import window_starts


def _ramp(size, overlap, device):
    """1-D blending weights of a tile: rising linearly over ``overlap`` pixels at both ends, never 0
    (a pixel covered by one tile only takes that tile's value exactly)."""
    index = torch.arange(size, device=device, dtype=torch.float32)
    if overlap <= 0:
        return torch.ones(size, device=device)
    return torch.minimum(torch.ones_like(index), torch.minimum(index + 1, size - index) / (overlap + 1))


@torch.no_grad()
def tiled_forward(net, x, size, overlap=32):
    """``net(x)`` computed tile by tile. ``size``: tile side (int or (h, w)); ``overlap``: pixels
    shared by neighbouring tiles (0 <= overlap < size). Works for any output scale and channel
    count (read from the first tile's output). For a convolutional network, pixels farther than its
    receptive field from every tile border get the untiled value; near seams the blend of the tiles'
    values. Networks with image-wide operations (Restormer's channel attention, Uformer's window grid)
    give other values everywhere: tile only what does not fit whole."""
    size_h, size_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    overlap = int(overlap)
    if min(size_h, size_w) < 1 or not 0 <= overlap < min(size_h, size_w):
        raise ValueError(f'val: tile: needs size >= 1 and 0 <= overlap < size, got size {size}, overlap {overlap}.')
    height, width = x.shape[-2:]
    tile_h, tile_w = min(size_h, height), min(size_w, width)
    output = weights = None
    for top in window_starts(height, tile_h, tile_h - overlap):
        for left in window_starts(width, tile_w, tile_w - overlap):
            piece = net(x[..., top:top + tile_h, left:left + tile_w])
            scale_h, scale_w = piece.shape[-2] // tile_h, piece.shape[-1] // tile_w
            if output is None:
                output = piece.new_zeros(*piece.shape[:-2], height * scale_h, width * scale_w)
                weights = piece.new_zeros(1, 1, height * scale_h, width * scale_w)
                blend = (_ramp(tile_h * scale_h, overlap * scale_h, piece.device)[:, None]
                         * _ramp(tile_w * scale_w, overlap * scale_w, piece.device)[None, :]).to(piece.dtype)
            rows = slice(top * scale_h, (top + tile_h) * scale_h)
            cols = slice(left * scale_w, (left + tile_w) * scale_w)
            output[..., rows, cols] += piece * blend
            weights[..., rows, cols] += blend
    return output / weights


@basicsr_feature('tiled_validation', replaces='basicsr.models.sr_model.SRModel.test')
def enable_tiled_validation():
    """Make BasicSR's SRModel.test (validation and ``basicsr.test``, and every model inheriting it)
    run tiled when the options have ``val: tile:``; without it, nothing changes. Once per process."""
    from basicsr.models.sr_model import SRModel
    original = SRModel.test

    def test(self):
        tile = (self.opt.get('val') or {}).get('tile')
        if not tile:
            return original(self)
        if not isinstance(tile, dict) or 'size' not in tile:
            raise ValueError(f"val: tile: must be a mapping with 'size' (and 'overlap'), got {tile!r}.")
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        self.output = tiled_forward(net, self.lq, tile['size'], tile.get('overlap', 32))
        net.train(was_training)

    test.__doc__ = original.__doc__
    replace(SRModel, 'test', test)
