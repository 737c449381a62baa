"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022) for BasicSR.

Written from the description of the official code (megvii-research/NAFNet): module attribute names
and parameter shapes follow it, so official checkpoints load with ``strict=True`` and give the same
outputs. ``NAFNetLocal`` adds the test-time local statistics of TLSC (Chu et al., "Revisiting Global
Statistics Aggregation for Improving Image Restoration", 2021).

Additions to the official behaviour (all off by default): inputs of any size (padded internally and
cropped back, as the official code does), an ``out_channels`` option for dual-pixel input (e.g. 6 -> 3
channels), block options (expansion ratios, dropout) exposed on the network, and activation
checkpointing (``use_checkpoint``).
"""
import torch
from torch import nn as nn
from torch.nn import functional as F
from torch.utils import checkpoint as torch_checkpoint

from basicsr.utils.registry import ARCH_REGISTRY


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel dimension of an (N, C, H, W) tensor, per pixel.

    Same parameters (``weight``, ``bias``, shape (C,)) and eps (1e-6) as the official one; plain
    autograd replaces its hand-written backward (same gradients). Half-precision input is normalised in
    float32 and returned in its own dtype.
    """

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        # statistics in float32 for fp16 / bf16 input (an fp16 variance overflows once the std exceeds 256);
        # float32 and float64 input compute in their own dtype, so float32 results are unchanged
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        centred = xf - xf.mean(dim=1, keepdim=True)
        variance = centred.pow(2).mean(dim=1, keepdim=True)
        normed = centred / (variance + self.eps).sqrt()
        return (normed * self.weight[None, :, None, None] + self.bias[None, :, None, None]).to(x.dtype)


class SimpleGate(nn.Module):
    """Non-linearity of NAFNet: split the channels in two halves and multiply them."""

    def forward(self, x):
        first, second = torch.chunk(x, 2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: a gated depthwise-conv branch with simplified channel attention
    (``sca``: global average pool + 1x1 conv) and a gated feed-forward branch, each added back through a
    learned per-channel scale (``beta``, ``gamma``) that starts at zero, so the block starts as identity.

    Args:
        c (int): Channels in and out.
        DW_Expand (int): Channel expansion of the depthwise-conv branch. Default: 2.
        FFN_Expand (int): Channel expansion of the feed-forward branch. Default: 2.
        drop_out_rate (float): Dropout on both branch outputs; 0 means none. Default: 0.
    """

    def __init__(self, c, DW_Expand=2, FFN_Expand=2, drop_out_rate=0.):  # noqa: N803 (official names)
        super().__init__()
        dw_channels = c * DW_Expand
        gated = dw_channels // 2
        self.conv1 = nn.Conv2d(c, dw_channels, kernel_size=1, bias=True)
        self.conv2 = nn.Conv2d(dw_channels, dw_channels, kernel_size=3, padding=1, groups=dw_channels, bias=True)
        self.conv3 = nn.Conv2d(gated, c, kernel_size=1, bias=True)
        # Simplified Channel Attention; index 0 is the pool that NAFNetLocal swaps for a local one
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(gated, gated, kernel_size=1, bias=True))
        self.sg = SimpleGate()

        ffn_channels = c * FFN_Expand
        self.conv4 = nn.Conv2d(c, ffn_channels, kernel_size=1, bias=True)
        self.conv5 = nn.Conv2d(ffn_channels // 2, c, kernel_size=1, bias=True)

        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()

        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        feat = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        feat = self.conv3(feat * self.sca(feat))
        mid = inp + self.dropout1(feat) * self.beta

        feat = self.conv5(self.sg(self.conv4(self.norm2(mid))))
        return mid + self.dropout2(feat) * self.gamma


@ARCH_REGISTRY.register()
class NAFNet(nn.Module):
    """NAFNet: a U-Net of NAFBlocks with a global residual (the network predicts ``output - input``).

    Each encoder level is followed by a 2x2 stride-2 conv that doubles the channels; each decoder level
    starts with a 1x1 conv + PixelShuffle(2) that halves them, adds the matching encoder feature and runs
    its blocks. Inputs whose height or width are not multiples of ``2 ** len(enc_blk_nums)`` are
    zero-padded at the bottom/right and the output is cropped back, so any size works.

    Args:
        img_channel (int): Input channels. Default: 3.
        width (int): Channels of the first level. Default: 16.
        middle_blk_num (int): NAFBlocks at the bottom of the U. Default: 1.
        enc_blk_nums (Sequence[int]): NAFBlocks per encoder level (one entry per level). Default: ().
        dec_blk_nums (Sequence[int]): NAFBlocks per decoder level, deepest first. Default: ().
        out_channels (int | None): Output channels; None (official behaviour) means ``img_channel``.
            When ``img_channel`` is a multiple k of ``out_channels`` the input is read as k views of
            ``out_channels`` channels each (dual-pixel: left and right 3-channel views, k = 2), and the
            global residual adds their mean, which approximates the all-in-focus-aperture image the
            target is a sharp version of (for DPDD, combined image ~ average of the two views).
            Other combinations raise ValueError. The state_dict only differs in ``ending``'s shape.
        dw_expand (int): ``DW_Expand`` of every block. Default: 2 (official).
        ffn_expand (int): ``FFN_Expand`` of every block. Default: 2 (official).
        drop_out_rate (float): Dropout of every block. Default: 0 (official).
        use_checkpoint (bool): Activation checkpointing: in training mode with grad enabled, every
            NAFBlock (encoders, middle, decoders) runs under ``torch.utils.checkpoint`` (non-reentrant,
            RNG state preserved, so dropout draws the same masks): its activations are recomputed in
            backward instead of stored. Same outputs and gradients, less memory, more time. No effect
            in eval mode or under ``torch.no_grad()``; no parameters. Default: False.
    """

    def __init__(self,
                 img_channel=3,
                 width=16,
                 middle_blk_num=1,
                 enc_blk_nums=(),
                 dec_blk_nums=(),
                 out_channels=None,
                 dw_expand=2,
                 ffn_expand=2,
                 drop_out_rate=0.,
                 use_checkpoint=False):
        super().__init__()
        self.use_checkpoint = bool(use_checkpoint)
        out_channels = img_channel if out_channels is None else out_channels
        if img_channel % out_channels != 0:
            raise ValueError(f'NAFNet: img_channel ({img_channel}) must be a multiple of out_channels '
                             f'({out_channels}) for the global residual')
        self.img_channel = img_channel
        self.out_channels = out_channels

        def blocks(chan, num):
            return nn.Sequential(*(NAFBlock(chan, dw_expand, ffn_expand, drop_out_rate) for _ in range(num)))

        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1, bias=True)
        self.ending = nn.Conv2d(width, out_channels, kernel_size=3, padding=1, bias=True)

        # containers registered in the official order, so that state_dict keys come in the same order
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.Sequential()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()

        chan = width
        for num in enc_blk_nums:
            self.encoders.append(blocks(chan, num))
            self.downs.append(nn.Conv2d(chan, chan * 2, kernel_size=2, stride=2))
            chan *= 2

        self.middle_blks = blocks(chan, middle_blk_num)

        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, kernel_size=1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(blocks(chan, num))

        self.padder_size = 2**len(self.encoders)

    def check_image_size(self, x):
        """Zero-pad bottom/right so that height and width are multiples of ``padder_size``."""
        h, w = x.shape[-2:]
        pad_h = -h % self.padder_size
        pad_w = -w % self.padder_size
        return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x

    def residual(self, inp):
        """What the network output is added to: the input, or the mean of its views (see ``out_channels``)."""
        if self.out_channels == self.img_channel:
            return inp
        n, _, h, w = inp.shape
        return inp.reshape(n, self.img_channel // self.out_channels, self.out_channels, h, w).mean(dim=1)

    def run_blocks(self, blocks, feat):
        """Run a Sequential of NAFBlocks, each under activation checkpointing where ``use_checkpoint``
        applies (training mode, grad enabled)."""
        if not (self.use_checkpoint and self.training and torch.is_grad_enabled()):
            return blocks(feat)
        for block in blocks:
            feat = torch_checkpoint.checkpoint(block, feat, use_reentrant=False)
        return feat

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = self.check_image_size(inp)

        feat = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feat = self.run_blocks(encoder, feat)
            skips.append(feat)
            feat = down(feat)

        feat = self.run_blocks(self.middle_blks, feat)

        # decoders pair with the encoders deepest first; zip stops at the shorter, as in the official code
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            feat = self.run_blocks(decoder, up(feat) + skip)

        out = self.ending(feat) + self.residual(inp)
        return out[..., :h, :w]

    def blocks_with_level(self):
        """Yield ``(level, block)`` for every NAFBlock that runs in ``forward``; level k works at 1/2**k of
        the (padded) input size."""
        depth = len(self.encoders)
        for level, encoder in enumerate(self.encoders):
            for block in encoder:
                yield level, block
        for block in self.middle_blks:
            yield depth, block
        for index, decoder in enumerate(self.decoders[:depth]):
            for block in decoder:
                yield depth - 1 - index, block


class LocalAvgPool2d(nn.Module):
    """Replacement of a global average pool (TLSC): mean over a ``kernel_size`` window around each pixel.

    Features at test time are bigger than in training, so a global mean sees statistics the network was
    never trained on; a window of the training-time extent keeps them alike. Where the window covers the
    whole map it is the plain global pool (1x1 output, broadcast by the caller). Otherwise the windows
    that fit are averaged with an integral image (cost independent of the window) and the border is
    filled by replicating the nearest full window, so the output has the input's size.

    Args:
        kernel_size (tuple[int, int]): Window height and width.
        fast_imp (bool): Official faster approximation: averages on a strided subsample (stride up to
            ``max_stride``, a divisor of the size among 5..1) and upsamples by nearest neighbour.
        max_stride (tuple[int, int]): Largest subsampling stride of ``fast_imp``.
    """

    def __init__(self, kernel_size, fast_imp=False, max_stride=(5, 5)):
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.fast_imp = fast_imp
        self.max_stride = tuple(max_stride)

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, fast_imp={self.fast_imp}'

    @staticmethod
    def _box_sums(integral, kh, kw):
        """Sums over all kh x kw windows, from an integral image whose first row/column is the zero border."""
        return (integral[..., kh:, kw:] - integral[..., :-kh, kw:] - integral[..., kh:, :-kw] +
                integral[..., :-kh, :-kw])

    def forward(self, x):
        h, w = x.shape[-2:]
        kh, kw = self.kernel_size
        if kh >= h and kw >= w:
            return F.adaptive_avg_pool2d(x, 1)
        # integral images in float32 for fp16 / bf16 input (in fp16 they overflow at 65504); means in x's dtype
        return self._local_means(x.to(torch.promote_types(x.dtype, torch.float32)), h, w, kh, kw).to(x.dtype)

    def _local_means(self, x, h, w, kh, kw):
        """Means over the ``kh`` x ``kw`` windows of an (h, w) map, the border replicated to size (h, w)."""
        if self.fast_imp:
            # stride: the largest of 5..1 dividing the size, capped by max_stride
            sh = min(self.max_stride[0], next(r for r in (5, 4, 3, 2, 1) if h % r == 0))
            sw = min(self.max_stride[1], next(r for r in (5, 4, 3, 2, 1) if w % r == 0))
            sub = x[..., ::sh, ::sw]
            kh = min(sub.shape[-2] - 1, kh // sh)
            kw = min(sub.shape[-1] - 1, kw // sw)
            # no zero border here: windows start one row/column in, as in the official approximation
            means = self._box_sums(sub.cumsum(dim=-1).cumsum(dim=-2), kh, kw) / (kh * kw)
            means = F.interpolate(means, scale_factor=(sh, sw))
        else:
            kh, kw = min(kh, h), min(kw, w)
            integral = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
            means = self._box_sums(integral, kh, kw) / (kh * kw)

        missing_h, missing_w = h - means.shape[-2], w - means.shape[-1]
        border = (missing_w // 2, missing_w - missing_w // 2, missing_h // 2, missing_h - missing_h // 2)
        return F.pad(means, border, mode='replicate')


@ARCH_REGISTRY.register()
class NAFNetLocal(NAFNet):
    """NAFNet whose channel-attention pools are local (TLSC) instead of global; same weights as NAFNet.

    Each pool's window is what a ``base_size`` input (default 1.5 x the training crop, as officially)
    covers at that block's scale, i.e. ``feature_size * base_size // train_size`` with the feature size
    measured on a (padded) training crop. For inputs up to ``base_size`` this is NAFNet exactly; larger
    (test) images get windowed statistics. The pools are local in train and eval mode alike, as in the
    official code (training crops of ``train_size`` fall back to the global pool).

    Args:
        *args, **kwargs: NAFNet arguments.
        train_size (tuple): Training input shape (N, C, H, W); only H and W are used.
            Default: (1, 3, 256, 256).
        fast_imp (bool): Use the faster, approximate local pool. Default: False.
        base_size (tuple[int, int] | int | None): Input size whose global statistics the window
            reproduces. Default: None, i.e. ``int(1.5 * H), int(1.5 * W)`` (official).
    """

    def __init__(self, *args, train_size=(1, 3, 256, 256), fast_imp=False, base_size=None, **kwargs):
        super().__init__(*args, **kwargs)
        train_h, train_w = train_size[-2:]
        if base_size is None:
            base_size = (int(train_h * 1.5), int(train_w * 1.5))
        elif isinstance(base_size, int):
            base_size = (base_size, base_size)
        self.train_size = tuple(train_size)
        self.base_size = tuple(base_size)

        padded_h = train_h + (-train_h % self.padder_size)
        padded_w = train_w + (-train_w % self.padder_size)
        for level, block in self.blocks_with_level():
            feat_h, feat_w = padded_h // 2**level, padded_w // 2**level
            kernel = (feat_h * base_size[0] // train_h, feat_w * base_size[1] // train_w)
            max_stride = (max(1, 5 * feat_h // train_h), max(1, 5 * feat_w // train_w))
            block.sca[0] = LocalAvgPool2d(kernel, fast_imp=fast_imp, max_stride=max_stride)


#: Checkpoint key layout of this architecture, for the load-error hints of basicsr_vitloss.compat.checkpoint_hints:
#: a key every checkpoint has, prefixes of which at least one occurs, the architectures sharing the layout (the
#: first names it), and the configuration arguments that change the shapes.
CHECKPOINT_SIGNATURE = {
    'key': 'intro.weight', 'prefixes': ('encoders.', 'middle_blks.'), 'archs': ('NAFNet', 'NAFNetLocal'),
    'args': ('width', 'enc_blk_nums', 'middle_blk_num', 'dec_blk_nums', 'img_channel', 'out_channels', 'dw_expand',
             'ffn_expand')}
