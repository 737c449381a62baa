"""Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration",
CVPR 2022) for BasicSR.

A re-implementation that keeps the official model's constructor arguments, parameter names and
shapes (official checkpoints load with ``strict=True``) and its computation, without einops.
Additions: inputs of any height and width are accepted; they are padded (reflect) to a multiple
of 8, the factor of the three 2x downsamplings, and the output is cropped back. On sizes the
official code accepts (multiples of 8) nothing is padded and the output is the official one.
``use_checkpoint`` turns on activation checkpointing per transformer block (off by default).
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import checkpoint as torch_checkpoint

from basicsr.utils.registry import ARCH_REGISTRY

from .arch_util import pad_to_multiple

_EPS = 1e-5  # variance epsilon of the official layer norms


class _ChannelNormBody(nn.Module):
    """Per-pixel normalisation over the channels of a (B, C, H, W) tensor.

    ``with_bias=True`` is a standard layer norm; ``with_bias=False`` is the official 'BiasFree'
    variant, which scales by the standard deviation but does not subtract the mean and has no bias.
    Half-precision input is normalised in float32 and returned in its own dtype.
    """

    def __init__(self, channels, with_bias):
        super().__init__()
        self.with_bias = with_bias
        self.weight = nn.Parameter(torch.ones(channels))
        if with_bias:
            self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        # statistics in float32 for fp16 / bf16 input (an fp16 variance overflows once the std exceeds 256);
        # float32 and float64 input compute in their own dtype, so float32 results are unchanged
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        var = xf.var(dim=1, keepdim=True, unbiased=False)
        scale = self.weight.view(1, -1, 1, 1)
        if self.with_bias:
            centred = xf - xf.mean(dim=1, keepdim=True)
            return (centred * torch.rsqrt(var + _EPS) * scale + self.bias.view(1, -1, 1, 1)).to(x.dtype)
        return (xf * torch.rsqrt(var + _EPS) * scale).to(x.dtype)


class ChannelLayerNorm(nn.Module):
    """Layer norm over channels; the ``body`` wrapper mirrors the official key names
    (``normX.body.weight`` / ``normX.body.bias``)."""

    def __init__(self, channels, layer_norm_type='WithBias'):
        super().__init__()
        self.body = _ChannelNormBody(channels, with_bias=layer_norm_type != 'BiasFree')

    def forward(self, x):
        return self.body(x)


class GatedDConvFeedForward(nn.Module):
    """GDFN: 1x1 expansion to two branches, depth-wise 3x3 conv, GELU gate, 1x1 projection."""

    def __init__(self, dim, ffn_expansion_factor, bias):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x):
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class TransposedAttention(nn.Module):
    """MDTA: multi-head attention across channels (a C/heads x C/heads map per head), so the cost
    is linear in the number of pixels; queries and keys are L2-normalised over pixels and scaled
    by a learned per-head temperature."""

    def __init__(self, dim, num_heads, bias):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x):
        b, c, h, w = x.shape
        # channels are grouped head-major: channel index = head * (c / heads) + channel in head
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        # L2 norms over the pixels in float32: in fp16 they overflow once |q| * sqrt(h * w) exceeds 65504
        q = F.normalize(q.to(torch.promote_types(q.dtype, torch.float32)), dim=-1).to(q.dtype)
        k = F.normalize(k.to(torch.promote_types(k.dtype, torch.float32)), dim=-1).to(k.dtype)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.temperature, dim=-1)
        out = torch.matmul(attn, v).reshape(b, c, h, w)
        return self.project_out(out)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + MDTA(LN(x)), then x + GDFN(LN(x))."""

    def __init__(self, dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type):
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, LayerNorm_type)
        self.attn = TransposedAttention(dim, num_heads, bias)
        self.norm2 = ChannelLayerNorm(dim, LayerNorm_type)
        self.ffn = GatedDConvFeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding: one 3x3 conv (``proj``; never has a bias, as in the official
    code, which does not pass ``bias`` on)."""

    def __init__(self, in_c, embed_dim):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, 3, padding=1, bias=False)

    def forward(self, x):
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv halving the channels, then pixel-unshuffle: C x H x W -> 2C x H/2 x W/2."""

    def __init__(self, n_feat):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x):
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv doubling the channels, then pixel-shuffle: C x H x W -> C/2 x 2H x 2W."""

    def __init__(self, n_feat):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


@ARCH_REGISTRY.register()
class Restormer(nn.Module):
    """Restormer: a 4-level U-Net of transformer blocks (MDTA + GDFN) with a refinement stage.

    Args:
        inp_channels (int): Input channels (6 for the dual-pixel task: both views stacked).
        out_channels (int): Output channels. Without ``dual_pixel_task`` the input is added to the
            output, so it must equal ``inp_channels`` then.
        dim (int): Channels of level 1; level i has ``dim * 2**(i-1)``.
        num_blocks (list[int]): Transformer blocks of levels 1-4 (encoder and decoder of 1-3).
        num_refinement_blocks (int): Transformer blocks of the refinement stage.
        heads (list[int]): Attention heads of levels 1-4.
        ffn_expansion_factor (float): Hidden width of the GDFN relative to its input.
        bias (bool): Whether the convolutions of the blocks, the 1x1 channel reductions, the dual
            pixel skip and the output conv have a bias.
        LayerNorm_type (str): 'WithBias' or 'BiasFree'.
        dual_pixel_task (bool): Official dual-pixel defocus deblurring variant: adds ``skip_conv``
            (1x1 conv of the level-1 embedding, added before the output conv) and drops the global
            residual (the 6-channel input cannot be added to a 3-channel output). Kept exactly as in
            the official code so its dual-pixel weights load.
        use_checkpoint (bool): Activation checkpointing (not in the official code): in training mode
            with grad enabled, every TransformerBlock (encoder, latent, decoder, refinement) runs under
            ``torch.utils.checkpoint`` (non-reentrant): its activations are recomputed in backward
            instead of stored. Same outputs and gradients, less memory, more time. No effect in eval
            mode or under ``torch.no_grad()``; no parameters. Default: False.

    Any H, W is accepted: the input is reflect-padded at the bottom and right to a multiple of 8
    (replicate-padded where it is too small for reflect) and the output cropped back.
    """

    def __init__(self,
                 inp_channels=3,
                 out_channels=3,
                 dim=48,
                 num_blocks=(4, 6, 6, 8),
                 num_refinement_blocks=4,
                 heads=(1, 2, 4, 8),
                 ffn_expansion_factor=2.66,
                 bias=False,
                 LayerNorm_type='WithBias',
                 dual_pixel_task=False,
                 use_checkpoint=False):
        super().__init__()
        self.dual_pixel_task = dual_pixel_task
        self.use_checkpoint = bool(use_checkpoint)
        self.pad_multiple = 8  # three 2x downsamplings
        widths = [dim, dim * 2, dim * 4, dim * 8]

        def stage(width, n_heads, depth):
            return nn.Sequential(*[
                TransformerBlock(width, n_heads, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(depth)
            ])

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        # encoder
        self.encoder_level1 = stage(widths[0], heads[0], num_blocks[0])
        self.down1_2 = Downsample(widths[0])
        self.encoder_level2 = stage(widths[1], heads[1], num_blocks[1])
        self.down2_3 = Downsample(widths[1])
        self.encoder_level3 = stage(widths[2], heads[2], num_blocks[2])
        self.down3_4 = Downsample(widths[2])
        self.latent = stage(widths[3], heads[3], num_blocks[3])
        # decoder: concatenate the skip, then reduce channels (not at level 1, which stays at 2*dim)
        self.up4_3 = Upsample(widths[3])
        self.reduce_chan_level3 = nn.Conv2d(widths[3], widths[2], 1, bias=bias)
        self.decoder_level3 = stage(widths[2], heads[2], num_blocks[2])
        self.up3_2 = Upsample(widths[2])
        self.reduce_chan_level2 = nn.Conv2d(widths[2], widths[1], 1, bias=bias)
        self.decoder_level2 = stage(widths[1], heads[1], num_blocks[1])
        self.up2_1 = Upsample(widths[1])
        self.decoder_level1 = stage(widths[1], heads[0], num_blocks[0])
        self.refinement = stage(widths[1], heads[0], num_refinement_blocks)
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, widths[1], 1, bias=bias)
        self.output = nn.Conv2d(widths[1], out_channels, 3, padding=1, bias=bias)

    def run_blocks(self, blocks, feat):
        """Run a Sequential of TransformerBlocks, each under activation checkpointing where
        ``use_checkpoint`` applies (training mode, grad enabled)."""
        if not (self.use_checkpoint and self.training and torch.is_grad_enabled()):
            return blocks(feat)
        for block in blocks:
            feat = torch_checkpoint.checkpoint(block, feat, use_reentrant=False)
        return feat

    def forward(self, x):
        h, w = x.shape[-2:]
        inp = pad_to_multiple(x, self.pad_multiple)
        run = self.run_blocks

        emb = self.patch_embed(inp)
        enc1 = run(self.encoder_level1, emb)
        enc2 = run(self.encoder_level2, self.down1_2(enc1))
        enc3 = run(self.encoder_level3, self.down2_3(enc2))
        feat = run(self.latent, self.down3_4(enc3))

        feat = self.reduce_chan_level3(torch.cat([self.up4_3(feat), enc3], dim=1))
        feat = run(self.decoder_level3, feat)
        feat = self.reduce_chan_level2(torch.cat([self.up3_2(feat), enc2], dim=1))
        feat = run(self.decoder_level2, feat)
        feat = run(self.decoder_level1, torch.cat([self.up2_1(feat), enc1], dim=1))
        feat = run(self.refinement, feat)

        if self.dual_pixel_task:
            out = self.output(feat + self.skip_conv(emb))
        else:
            out = self.output(feat) + inp
        return out[..., :h, :w]


#: Checkpoint key layout of this architecture, for the load-error hints of basicsr_vitloss.compat.checkpoint_hints:
#: a key every checkpoint has, prefixes of which at least one occurs, the architectures sharing the layout (the
#: first names it), and the configuration arguments that change the shapes.
CHECKPOINT_SIGNATURE = {
    'key': 'patch_embed.proj.weight', 'prefixes': ('encoder_level1.',), 'archs': ('Restormer',),
    'args': ('dim', 'num_blocks', 'num_refinement_blocks', 'heads', 'inp_channels', 'out_channels',
             'ffn_expansion_factor', 'bias', 'LayerNorm_type', 'dual_pixel_task')}
