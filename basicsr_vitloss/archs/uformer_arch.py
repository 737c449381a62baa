"""Uformer: a U-shaped transformer for image restoration (Wang et al., CVPR 2022).

A re-implementation for BasicSR of the official ``model.py`` (ZhendongWang6/Uformer). Module names,
parameter/buffer names and shapes follow the official code, so official checkpoints load with
``strict=True`` and give the same outputs on inputs the official code accepts.

Differences (all additive):

* Any input size. The official model needs square inputs whose side is a multiple of
  ``win_size * 2**4`` (128 by default); its test scripts pad outside the model. Here the input is padded
  internally (reflect; replicate when the image is too small to reflect) so that height and width are
  each a multiple of ``pad_multiple`` (the lcm over the five levels of ``window * 2**level``, 128 by
  default), and the output is cropped back. Height and width are tracked separately, so no square padding
  is needed. Inputs that are already such squares are not padded and give the official outputs.
  ``input_padding='square_zero'`` instead reproduces the official test scripts (``expand2square`` in
  ``test/test_gopro_hide.py``, ``test/test_realblur.py``): the image is placed in the centre of a zero
  square whose side is ``ceil(max(H, W) / 128) * 128`` (``pad_multiple``), then cropped back. Reflect is
  the default: it pads less (1280x720 runs at 1280x768 instead of 1280x1280) and gives the network no
  artificial black border; the two differ only near the image borders (see
  ``benchmarks/results/uformer_padding_bench.md``).
* ``img_size`` keeps its official meaning: it is the resolution the window/shift layout of every level is
  designed for. As in the official code, a level whose design resolution ``img_size // 2**level`` is
  ``<= win_size`` uses a window of that size and no shift (e.g. with ``img_size=128`` the bottleneck runs
  plain 8x8 windows, with ``img_size=256`` it runs shifted windows). This layout is fixed at construction
  and used for any runtime size, exactly as the official code does for the sizes it accepts; other sizes
  get the same layout on the padded feature maps (shift masks are computed for the actual, padded size).
  As in the official code, ``modulator=True`` needs ``img_size >= 8 * win_size`` (the modulator is sized
  for ``win_size`` windows).
* Dual-pixel input: ``in_chans=6, dd_in=6`` (two stacked RGB views) gives a 3-channel output by default
  (``out_chans``), with a global residual on the mean of the two views, so the network learns a
  correction of the average view. The official code would output ``in_chans`` channels; pass
  ``out_chans=6`` to get that layout.
* ``token_projection='conv'`` and ``token_mlp='fastleff'`` (needs the extra ``torch_dwconv`` package) are
  not implemented; the official configurations use ``'linear'`` and ``'leff'``. The optional input
  ``mask`` of the official ``forward`` is not supported.

Official configurations (train scripts, ``utils/model_utils.py``), all with ``win_size=8,
token_projection='linear', token_mlp='leff', modulator=True``:
Uformer-T ``embed_dim=16``; Uformer-S ``embed_dim=32``; Uformer-B ``embed_dim=32,
depths=[1, 2, 8, 8, 2, 8, 8, 2, 1]``.
"""
import math

import torch
from torch import nn
from torch.nn.init import trunc_normal_
from torch.utils import checkpoint as torch_checkpoint
from torchvision.ops import StochasticDepth

from basicsr.utils.registry import ARCH_REGISTRY

from .arch_util import pad_to_multiple, pad_to_square

#: values of Uformer's ``input_padding``: the package's default, and the official test scripts' square
INPUT_PADDINGS = ('reflect', 'square_zero')


def _to_windows(x, win):
    """(B, H, W, C) -> (B * nW, win * win, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // win, win, w // win, win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, win * win, c)


def _from_windows(windows, win, h, w):
    """Inverse of :func:`_to_windows`: (B * nW, win * win, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // win, w // win, win, win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def _shift_attention_mask(h, w, win, shift, device, dtype):
    """Additive mask (nW, win*win, win*win) that keeps shifted windows from mixing regions (-100 / 0)."""
    labels = torch.zeros((1, h, w, 1), device=device, dtype=dtype)
    bounds = ((0, h - win), (h - win, h - shift), (h - shift, h)), ((0, w - win), (w - win, w - shift),
                                                                     (w - shift, w))
    region = 0
    for h0, h1 in bounds[0]:
        for w0, w1 in bounds[1]:
            labels[:, h0:h1, w0:w1, :] = region
            region += 1
    labels = _to_windows(labels, win).squeeze(-1)  # nW, win*win
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class LinearProjection(nn.Module):
    """Query from ``x``, key/value from ``kv`` (or ``x``) with linear layers; returns (B, heads, N, d)."""

    def __init__(self, dim, heads=8, dim_head=64, bias=True):
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=bias)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=bias)

    def forward(self, x, kv=None):
        b, n, c = x.shape
        # a learnt kv (cross modulator) is shared by all windows
        kv = x if kv is None else kv.unsqueeze(0).expand(b, -1, -1)
        q = self.to_q(x).reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        kv = self.to_kv(kv).reshape(b, kv.shape[1], 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return q, kv[0], kv[1]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window with a learnt relative position bias (Swin style).

    ``relative_position_index`` is a (persistent) buffer, as in the official model, so it is part of the
    state_dict.
    """

    def __init__(self, dim, win_size, num_heads, token_projection='linear', qkv_bias=True, qk_scale=None,
                 attn_drop=0., proj_drop=0.):
        super().__init__()
        self.dim = dim
        self.win_size = win_size  # (Wh, Ww)
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads)**-0.5
        wh, ww = win_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        # index into the table for every (query, key) pair of a window
        grid = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing='ij')).flatten(1)
        rel = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0)
        index = (rel[..., 0] + wh - 1) * (2 * ww - 1) + (rel[..., 1] + ww - 1)
        self.register_buffer('relative_position_index', index)
        trunc_normal_(self.relative_position_bias_table, std=.02)
        if token_projection != 'linear':
            raise NotImplementedError(f'token_projection={token_projection!r}: only "linear" is implemented')
        self.qkv = LinearProjection(dim, num_heads, dim // num_heads, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, mask=None):
        """x: (B * nW, N, C); mask: (nW, N, N) additive or None."""
        b, n, c = x.shape
        q, k, v = self.qkv(x)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.num_heads, n, n) + mask[None, :, None]).view(-1, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))

    def extra_repr(self):
        return f'dim={self.dim}, win_size={self.win_size}, num_heads={self.num_heads}'


class Attention(nn.Module):
    """Plain multi-head attention, used with a learnt key/value set by the (optional) cross modulator."""

    def __init__(self, dim, num_heads, qkv_bias=True, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads)**-0.5
        self.qkv = LinearProjection(dim, num_heads, dim // num_heads, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, kv=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x, kv)
        attn = self.attn_drop(((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1))
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    """Token-wise two-layer MLP (``token_mlp='mlp'`` or ``'ffn'``)."""

    def __init__(self, in_features, hidden_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x, hw=None):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class LeFF(nn.Module):
    """Locally-enhanced feed-forward: linear, 3x3 depthwise conv on the token grid, linear."""

    def __init__(self, dim=32, hidden_dim=128, act_layer=nn.GELU, drop=0.):
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden_dim), act_layer())
        self.dwconv = nn.Sequential(
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, groups=hidden_dim), act_layer())
        self.linear2 = nn.Sequential(nn.Linear(hidden_dim, dim))
        self.eca = nn.Identity()  # the official default (use_eca=False); parameter-free

    def forward(self, x, hw):
        b, n, _ = x.shape
        h, w = hw
        x = self.linear1(x)
        x = self.dwconv(x.transpose(1, 2).reshape(b, -1, h, w))
        x = x.flatten(2).transpose(1, 2)
        return self.eca(self.linear2(x))


class LeWinTransformerBlock(nn.Module):
    """Locally-enhanced window transformer block: (shifted) window attention + LeFF, both residual.

    ``input_resolution`` is the design resolution of the level (from ``img_size``); as in the official
    code, if it is not larger than ``win_size`` the window shrinks to it and the shift is switched off.
    The optional ``modulator`` is a learnt per-window-position bias added to the attention input; the
    optional ``cross_modulator`` adds, first, an attention of the tokens to a learnt set of ``win_size**2``
    keys/values. Its ``norm_cross`` is created but unused, as in the official code; it is frozen
    (``requires_grad=False``), so the block trains under DDP without ``find_unused_parameters``.
    """

    def __init__(self, dim, input_resolution, num_heads, win_size=8, shift_size=0, mlp_ratio=4., qkv_bias=True,
                 qk_scale=None, drop=0., attn_drop=0., drop_path=0., act_layer=nn.GELU, norm_layer=nn.LayerNorm,
                 token_projection='linear', token_mlp='leff', modulator=False, cross_modulator=False):
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.num_heads = num_heads
        self.win_size = win_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        if min(input_resolution) <= win_size:
            self.shift_size = 0
            self.win_size = min(input_resolution)
        if not 0 <= self.shift_size < self.win_size:
            raise ValueError('shift_size must be in [0, win_size)')
        # note: sized with the requested win_size, as in the official code
        self.modulator = nn.Embedding(win_size * win_size, dim) if modulator else None
        if cross_modulator:
            self.cross_modulator = nn.Embedding(win_size * win_size, dim)
            self.cross_attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                                        proj_drop=drop)
            # the official forward computes norm_cross(x) and discards it (model.py, LeWinTransformerBlock.forward),
            # so its parameters never get a gradient: frozen, they stay in the state_dict (official key layout)
            # without being unused parameters that DistributedDataParallel refuses
            self.norm_cross = norm_layer(dim)
            self.norm_cross.requires_grad_(False)
        else:
            self.cross_modulator = None
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, (self.win_size, self.win_size), num_heads, token_projection=token_projection,
                                    qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = StochasticDepth(drop_path, 'row') if drop_path > 0. else nn.Identity()  # = timm's DropPath
        self.norm2 = norm_layer(dim)
        hidden = int(dim * mlp_ratio)
        if token_mlp in ('ffn', 'mlp'):
            self.mlp = Mlp(dim, hidden, act_layer=act_layer, drop=drop)
        elif token_mlp == 'leff':
            self.mlp = LeFF(dim, hidden, act_layer=act_layer, drop=drop)
        else:
            raise NotImplementedError(f'token_mlp={token_mlp!r}: use "leff", "mlp" or "ffn"')

    def extra_repr(self):
        return (f'dim={self.dim}, input_resolution={self.input_resolution}, num_heads={self.num_heads}, '
                f'win_size={self.win_size}, shift_size={self.shift_size}, mlp_ratio={self.mlp_ratio}')

    def forward(self, x, hw, shift_mask=None):
        """x: (B, H*W, C) tokens of an H x W map; ``shift_mask`` is used only by shifted blocks."""
        b, _, c = x.shape
        h, w = hw
        if self.cross_modulator is not None:
            # as officially: the cross attention reads x itself, not norm_cross(x)
            x = x + self.cross_attn(x, self.cross_modulator.weight)
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows = _to_windows(x, self.win_size)
        if self.modulator is not None:
            windows = windows + self.modulator.weight
        windows = self.attn(windows, mask=shift_mask if self.shift_size > 0 else None)
        x = _from_windows(windows, self.win_size, h, w)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x), hw))


class BasicUformerLayer(nn.Module):
    """A stack of LeWin blocks at one resolution; odd blocks use shifted windows when ``shift_flag``."""

    def __init__(self, dim, output_dim, input_resolution, depth, num_heads, win_size, mlp_ratio=4., qkv_bias=True,
                 qk_scale=None, drop=0., attn_drop=0., drop_path=0., norm_layer=nn.LayerNorm, use_checkpoint=False,
                 token_projection='linear', token_mlp='ffn', shift_flag=True, modulator=False,
                 cross_modulator=False):
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.depth = depth
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList([
            LeWinTransformerBlock(
                dim, input_resolution, num_heads, win_size=win_size,
                shift_size=win_size // 2 if (shift_flag and i % 2 == 1) else 0, mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop, attn_drop=attn_drop,
                drop_path=drop_path[i] if isinstance(drop_path, list) else drop_path, norm_layer=norm_layer,
                token_projection=token_projection, token_mlp=token_mlp, modulator=modulator,
                cross_modulator=cross_modulator) for i in range(depth)
        ])

    def forward(self, x, hw):
        masks = {}
        for blk in self.blocks:
            mask = None
            if blk.shift_size > 0:
                key = (blk.win_size, blk.shift_size)
                if key not in masks:
                    masks[key] = _shift_attention_mask(hw[0], hw[1], blk.win_size, blk.shift_size, x.device, x.dtype)
                mask = masks[key]
            if self.use_checkpoint and self.training and torch.is_grad_enabled():
                x = torch_checkpoint.checkpoint(blk, x, hw, mask, use_reentrant=False)
            else:
                x = blk(x, hw, mask)
        return x

    def extra_repr(self):
        return f'dim={self.dim}, input_resolution={self.input_resolution}, depth={self.depth}'


class Downsample(nn.Module):
    """Halves the token grid with a 4x4 stride-2 convolution."""

    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channel, out_channel, kernel_size=4, stride=2, padding=1))

    def forward(self, x, hw):
        b, _, c = x.shape
        return self.conv(x.transpose(1, 2).reshape(b, c, *hw)).flatten(2).transpose(1, 2)


class Upsample(nn.Module):
    """Doubles the token grid with a 2x2 stride-2 transposed convolution."""

    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.deconv = nn.Sequential(nn.ConvTranspose2d(in_channel, out_channel, kernel_size=2, stride=2))

    def forward(self, x, hw):
        b, _, c = x.shape
        return self.deconv(x.transpose(1, 2).reshape(b, c, *hw)).flatten(2).transpose(1, 2)


class InputProj(nn.Module):
    """3x3 conv + LeakyReLU from the image to ``embed_dim`` tokens."""

    def __init__(self, in_channel=3, out_channel=64, kernel_size=3, stride=1, norm_layer=None,
                 act_layer=nn.LeakyReLU):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channel, out_channel, kernel_size=3, stride=stride, padding=kernel_size // 2),
            act_layer(inplace=True))
        self.norm = norm_layer(out_channel) if norm_layer is not None else None

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


class OutputProj(nn.Module):
    """3x3 conv from tokens back to an image."""

    def __init__(self, in_channel=64, out_channel=3, kernel_size=3, stride=1):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channel, out_channel, kernel_size=3, stride=stride, padding=kernel_size // 2))

    def forward(self, x, hw):
        b, _, c = x.shape
        return self.proj(x.transpose(1, 2).reshape(b, c, *hw))


@ARCH_REGISTRY.register()
class Uformer(nn.Module):
    """Uformer (official arguments and state_dict layout; see the module docstring for the additions).

    Args:
        img_size (int): Design resolution; sets the window/shift layout per level (not the weights, unless
            ``img_size // 16 < win_size``, which shrinks the bottleneck window as in the official code).
        in_chans (int): Channels of the output image (official naming) and, by default, of the input.
        dd_in (int): Channels of the input image (input projection).
        out_chans (int | None): Output channels; default ``in_chans``, or 3 for dual-pixel input
            (``in_chans == dd_in == 6``).
        embed_dim, depths, num_heads, win_size, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate,
        drop_path_rate, norm_layer, use_checkpoint, token_projection, token_mlp, shift_flag, modulator,
        cross_modulator: as in the official model. ``use_checkpoint``: every LeWinTransformerBlock runs
        under ``torch.utils.checkpoint`` (non-reentrant, RNG state preserved, so dropout and drop path
        draw the same), in training mode with grad enabled only (the official code uses the reentrant
        variant in every mode); same outputs and gradients, less memory, more time.
        input_padding (str): How an input whose sides are not multiples of ``pad_multiple`` is padded
            (and the output cropped back): ``'reflect'`` (default) reflect-pads bottom and right, each
            side to its own multiple; ``'square_zero'`` zero-pads to the centred square of the official
            test scripts (``expand2square(img, factor=128)``). Not an official argument.
    """

    def __init__(self, img_size=256, in_chans=3, dd_in=3, embed_dim=32, depths=(2, 2, 2, 2, 2, 2, 2, 2, 2),
                 num_heads=(1, 2, 4, 8, 16, 16, 8, 4, 2), win_size=8, mlp_ratio=4., qkv_bias=True, qk_scale=None,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0.1, norm_layer=nn.LayerNorm, patch_norm=True,
                 use_checkpoint=False, token_projection='linear', token_mlp='leff', shift_flag=True,
                 modulator=False, cross_modulator=False, out_chans=None, input_padding='reflect', **kwargs):
        super().__init__()
        if input_padding not in INPUT_PADDINGS:
            raise ValueError(f'Uformer: input_padding {input_padding!r} is not supported; expected one of '
                             f'{", ".join(repr(p) for p in INPUT_PADDINGS)}.')
        self.input_padding = input_padding
        depths, num_heads = list(depths), list(num_heads)
        if len(depths) != 9 or len(num_heads) != 9:
            raise ValueError('Uformer needs 9 depths and 9 num_heads (4 encoder, bottleneck, 4 decoder levels)')
        if out_chans is None:
            out_chans = 3 if in_chans == dd_in == 6 else in_chans
        self.embed_dim = embed_dim
        self.win_size = win_size
        self.reso = img_size
        self.dd_in = dd_in
        self.out_chans = out_chans
        # dual pixel (two stacked views in, one image out): residual on the mean view
        self.dual_pixel = in_chans == dd_in == 2 * out_chans
        self.pos_drop = nn.Dropout(p=drop_rate)

        # stochastic depth, distributed as in the official code
        enc_dpr = [r.item() for r in torch.linspace(0, drop_path_rate, sum(depths[:4]))]
        dec_dpr = enc_dpr[::-1]
        if sum(depths[5:]) > len(dec_dpr):  # the official code would fail here; spread over the decoder instead
            dec_dpr = [r.item() for r in torch.linspace(drop_path_rate, 0, sum(depths[5:]))]
        enc_rates = [enc_dpr[sum(depths[:i]):sum(depths[:i + 1])] for i in range(4)]
        dec_rates = [dec_dpr[sum(depths[5:5 + i]):sum(depths[5:6 + i])] for i in range(4)]

        common = dict(win_size=win_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                      attn_drop=attn_drop_rate, norm_layer=norm_layer, use_checkpoint=use_checkpoint,
                      token_projection=token_projection, token_mlp=token_mlp, shift_flag=shift_flag)

        def level(dim, lvl, idx, rates, **extra):
            res = img_size // 2**lvl
            return BasicUformerLayer(dim, dim, (res, res), depths[idx], num_heads[idx], drop_path=rates, **common,
                                     **extra)

        self.input_proj = InputProj(dd_in, embed_dim, kernel_size=3, stride=1, act_layer=nn.LeakyReLU)
        self.output_proj = OutputProj(2 * embed_dim, out_chans, kernel_size=3, stride=1)
        for i in range(4):  # encoder: encoderlayer_i at 1/2**i, then dowsample_i (official spelling)
            setattr(self, f'encoderlayer_{i}', level(embed_dim * 2**i, i, i, enc_rates[i]))
            setattr(self, f'dowsample_{i}', Downsample(embed_dim * 2**i, embed_dim * 2**(i + 1)))
        self.conv = level(embed_dim * 16, 4, 4, [drop_path_rate] * depths[4])  # bottleneck
        dec_mod = dict(modulator=modulator, cross_modulator=cross_modulator)
        for i in range(4):  # decoder: upsample_i, concat with the skip, decoderlayer_i at 1/2**(3-i)
            in_dim = embed_dim * 16 if i == 0 else embed_dim * 2**(5 - i)
            setattr(self, f'upsample_{i}', Upsample(in_dim, embed_dim * 2**(3 - i)))
            setattr(self, f'decoderlayer_{i}', level(embed_dim * 2**(4 - i), 3 - i, 5 + i, dec_rates[i], **dec_mod))

        # padding multiple: every level's map must hold whole windows
        multiple = 1
        for lvl in range(5):
            win = getattr(self, 'conv' if lvl == 4 else f'encoderlayer_{lvl}').blocks[0].win_size
            multiple = math.lcm(multiple, win * 2**lvl)
        self.pad_multiple = multiple

        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    @torch.jit.ignore
    def no_weight_decay_keywords(self):
        return {'relative_position_bias_table'}

    def _global_residual(self, inp, out):
        """Official: add the input when ``dd_in == 3``; dual pixel: add the mean of the two views."""
        if self.dd_in == 3:
            return inp + out
        if self.dual_pixel:
            b, _, h, w = inp.shape
            return out + inp.view(b, 2, self.out_chans, h, w).mean(dim=1)
        return out

    def forward(self, x):
        h, w = x.shape[-2:]
        top = left = 0
        if self.input_padding == 'square_zero':
            inp, (top, left) = pad_to_square(x, self.pad_multiple)
        else:
            inp = pad_to_multiple(x, self.pad_multiple)
        hw = list(inp.shape[-2:])
        sizes = [tuple(s // 2**i for s in hw) for i in range(5)]

        y = self.pos_drop(self.input_proj(inp))
        skips = []
        for i in range(4):
            y = getattr(self, f'encoderlayer_{i}')(y, sizes[i])
            skips.append(y)
            y = getattr(self, f'dowsample_{i}')(y, sizes[i])
        y = self.conv(y, sizes[4])
        for i in range(4):
            y = getattr(self, f'upsample_{i}')(y, sizes[4 - i])
            y = torch.cat([y, skips[3 - i]], dim=-1)
            y = getattr(self, f'decoderlayer_{i}')(y, sizes[3 - i])
        out = self._global_residual(inp, self.output_proj(y, sizes[0]))
        return out[..., top:top + h, left:left + w]


#: Checkpoint key layout of this architecture, for the load-error hints of basicsr_vitloss.compat.checkpoint_hints:
#: a key every checkpoint has, prefixes of which at least one occurs, the architectures sharing the layout (the
#: first names it), and the configuration arguments that change the shapes.
CHECKPOINT_SIGNATURE = {
    'key': 'input_proj.proj.0.weight', 'prefixes': ('encoderlayer_0.',), 'archs': ('Uformer',),
    'args': ('embed_dim', 'depths', 'num_heads', 'win_size', 'in_chans', 'dd_in', 'out_chans', 'token_projection',
             'token_mlp', 'modulator')}
