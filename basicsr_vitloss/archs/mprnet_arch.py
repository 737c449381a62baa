"""MPRNet (Zamir et al., "Multi-Stage Progressive Image Restoration", CVPR 2021) for BasicSR.

Written from the description of the official code (swz30/MPRNet, ``Deblurring/MPRNet.py``): module
attribute names and parameter shapes follow it, so official checkpoints load with ``strict=True`` and
give the same outputs. The official checkpoints are saved as ``{'state_dict': ..., 'optimizer': ...,
'epoch': ...}``: load them with ``param_key_g: state_dict`` in the ``path`` section (BasicSR strips the
``module.`` prefix of checkpoints saved from ``nn.DataParallel``).

Three stages: stage 1 runs an encoder-decoder on the four quarters of the image, stage 2 on its two
halves, stage 3 a full-resolution subnetwork (ORSNet); supervised attention modules (SAM) pass each
stage's features on, and cross-stage feature fusion (CSFF) feeds stage 1's encoder and decoder
features into stage 2 and stage 2's into stage 3. The default arguments are the official deblurring
(GoPro) model, 20,127,073 parameters; the official denoising model is ``n_feat=80`` and the deraining
model ``n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16``. As in the official code, one PReLU
(one parameter) is shared by every channel attention block; ``state_dict`` lists it under each block.

Additions to the official behaviour:

- the official network always returns the list ``[stage 3 (final), stage 2, stage 1]`` of images;
  this one does so in training mode only (for a loss on every stage: ``MultiStageModel``), and in
  eval mode returns the final image, a tensor, so BasicSR's validation, tiling and export work;
- inputs of any size: padded at the bottom and right to a multiple of 8 (reflect, replicate where a
  side is too short) and cropped back, as the official test script does for RealBlur;
- ``in_c`` a multiple k of ``out_c`` (dual-pixel: 6 -> 3): the input is read as k views of ``out_c``
  channels; where the official network adds the input image (the SAM images and the final output)
  it adds the mean of the views (the official code fixes the stage images at 3 channels and adds
  the input itself, so it runs only with in_c = out_c = 3).

- ``use_checkpoint``: activation checkpointing per channel attention block (CAB), off by default.

The four quarters (stage 1) and two halves (stage 2) of each image run as one batch through their
stage instead of one patch after another: the same result, up to float rounding.
"""
import torch
from torch import nn as nn
from torch.utils import checkpoint as torch_checkpoint

from basicsr.utils.registry import ARCH_REGISTRY

from .arch_util import pad_to_multiple


def conv(in_channels, out_channels, kernel_size, bias=False, stride=1):
    """A 'same'-padded convolution (odd ``kernel_size``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def _resize_then_project(scale, in_channels, out_channels):
    """Bilinear rescale by ``scale`` followed by a bias-free 1x1 convolution (parameter key ``1.weight``)."""
    return nn.Sequential(nn.Upsample(scale_factor=scale, mode='bilinear', align_corners=False),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False))


class CALayer(nn.Module):
    """Channel attention: global average pool, 1x1 squeeze (by ``reduction``) / ReLU / 1x1 excite /
    sigmoid, and the input scaled per channel by the result."""

    def __init__(self, channel, reduction=16, bias=False):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        squeezed = channel // reduction
        self.conv_du = nn.Sequential(nn.Conv2d(channel, squeezed, 1, bias=bias), nn.ReLU(inplace=True),
                                     nn.Conv2d(squeezed, channel, 1, bias=bias), nn.Sigmoid())

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Channel attention block: conv / ``act`` / conv, channel attention, plus the input.

    With ``use_checkpoint`` set (by ``MPRNet(use_checkpoint=True)``), in training mode with grad enabled
    the block runs under ``torch.utils.checkpoint`` (non-reentrant): only its input is kept, the rest is
    recomputed in backward."""

    use_checkpoint = False  # a plain attribute: not in the state_dict

    def __init__(self, n_feat, kernel_size, reduction, bias, act):
        super().__init__()
        self.CA = CALayer(n_feat, reduction, bias=bias)
        self.body = nn.Sequential(conv(n_feat, n_feat, kernel_size, bias=bias), act,
                                  conv(n_feat, n_feat, kernel_size, bias=bias))

    def forward(self, x):
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return torch_checkpoint.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x):
        return x + self.CA(self.body(x))


def _cabs(n, n_feat, kernel_size, reduction, bias, act):
    return [CAB(n_feat, kernel_size, reduction, bias=bias, act=act) for _ in range(n)]


class SAM(nn.Module):
    """Supervised attention module: predicts a stage image (``conv2`` of the features plus the input
    image ``x_img``) and gates the features it passes on by attention maps computed from that image.
    Returns (features, image)."""

    def __init__(self, n_feat, kernel_size, bias, out_c=3):
        super().__init__()
        self.conv1 = conv(n_feat, n_feat, kernel_size, bias=bias)
        self.conv2 = conv(n_feat, out_c, kernel_size, bias=bias)
        self.conv3 = conv(out_c, n_feat, kernel_size, bias=bias)

    def forward(self, x, x_img):
        img = self.conv2(x) + x_img
        gate = torch.sigmoid(self.conv3(img))
        return self.conv1(x) * gate + x, img


class DownSample(nn.Module):
    """Halve the resolution, widen by ``s_factor`` channels."""

    def __init__(self, in_channels, s_factor):
        super().__init__()
        self.down = _resize_then_project(0.5, in_channels, in_channels + s_factor)

    def forward(self, x):
        return self.down(x)


class UpSample(nn.Module):
    """Double the resolution, narrow by ``s_factor`` channels."""

    def __init__(self, in_channels, s_factor):
        super().__init__()
        self.up = _resize_then_project(2, in_channels + s_factor, in_channels)

    def forward(self, x):
        return self.up(x)


class SkipUpSample(UpSample):
    """UpSample, then add the skip connection."""

    def forward(self, x, skip):
        return self.up(x) + skip


class Encoder(nn.Module):
    """Three-level U-Net encoder of CABs (widths n_feat + i * scale_unetfeats). With ``csff`` it takes
    the previous stage's encoder and decoder features, added through 1x1 convolutions per level."""

    def __init__(self, n_feat, kernel_size, reduction, act, bias, scale_unetfeats, csff):
        super().__init__()
        widths = [n_feat + i * scale_unetfeats for i in range(3)]
        for level, width in enumerate(widths, start=1):
            setattr(self, f'encoder_level{level}', nn.Sequential(*_cabs(2, width, kernel_size, reduction, bias, act)))
        self.down12 = DownSample(widths[0], scale_unetfeats)
        self.down23 = DownSample(widths[1], scale_unetfeats)
        if csff:  # Cross Stage Feature Fusion
            for kind in ('enc', 'dec'):
                for level, width in enumerate(widths, start=1):
                    setattr(self, f'csff_{kind}{level}', nn.Conv2d(width, width, kernel_size=1, bias=bias))

    def forward(self, x, encoder_outs=None, decoder_outs=None):
        fuse = encoder_outs is not None and decoder_outs is not None
        levels = [self.encoder_level1, self.encoder_level2, self.encoder_level3]
        downs = [self.down12, self.down23, None]
        outs = []
        for i, (level, down) in enumerate(zip(levels, downs)):
            feat = level(x)
            if fuse:
                feat = (feat + getattr(self, f'csff_enc{i + 1}')(encoder_outs[i])
                        + getattr(self, f'csff_dec{i + 1}')(decoder_outs[i]))
            outs.append(feat)
            if down is not None:
                x = down(feat)
        return outs


class Decoder(nn.Module):
    """Three-level U-Net decoder of CABs; skip connections pass through a CAB (``skip_attn``)."""

    def __init__(self, n_feat, kernel_size, reduction, act, bias, scale_unetfeats):
        super().__init__()
        widths = [n_feat + i * scale_unetfeats for i in range(3)]
        for level, width in enumerate(widths, start=1):
            setattr(self, f'decoder_level{level}', nn.Sequential(*_cabs(2, width, kernel_size, reduction, bias, act)))
        self.skip_attn1 = CAB(widths[0], kernel_size, reduction, bias=bias, act=act)
        self.skip_attn2 = CAB(widths[1], kernel_size, reduction, bias=bias, act=act)
        self.up21 = SkipUpSample(widths[0], scale_unetfeats)
        self.up32 = SkipUpSample(widths[1], scale_unetfeats)

    def forward(self, outs):
        enc1, enc2, enc3 = outs
        dec3 = self.decoder_level3(enc3)
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc2)))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc1)))
        return [dec1, dec2, dec3]


class ORB(nn.Module):
    """Original-resolution block: ``num_cab`` CABs and a (bias-free) convolution, plus the input."""

    def __init__(self, n_feat, kernel_size, reduction, act, bias, num_cab):
        super().__init__()
        # the closing convolution has no bias whatever ``bias`` says (as in the official code)
        self.body = nn.Sequential(*_cabs(num_cab, n_feat, kernel_size, reduction, bias, act),
                                  conv(n_feat, n_feat, kernel_size, bias=False))

    def forward(self, x):
        return x + self.body(x)


class ORSNet(nn.Module):
    """Original-resolution subnetwork of stage 3: three ORBs, each followed by the stage-2 encoder and
    decoder features of one level, brought to full resolution and width by UpSamples and 1x1 convs."""

    def __init__(self, n_feat, scale_orsnetfeats, kernel_size, reduction, act, bias, scale_unetfeats, num_cab):
        super().__init__()
        width = n_feat + scale_orsnetfeats
        for i in (1, 2, 3):
            setattr(self, f'orb{i}', ORB(width, kernel_size, reduction, act, bias, num_cab))
        self.up_enc1 = UpSample(n_feat, scale_unetfeats)
        self.up_dec1 = UpSample(n_feat, scale_unetfeats)
        self.up_enc2 = nn.Sequential(UpSample(n_feat + scale_unetfeats, scale_unetfeats),
                                     UpSample(n_feat, scale_unetfeats))
        self.up_dec2 = nn.Sequential(UpSample(n_feat + scale_unetfeats, scale_unetfeats),
                                     UpSample(n_feat, scale_unetfeats))
        for kind in ('enc', 'dec'):
            for i in (1, 2, 3):
                setattr(self, f'conv_{kind}{i}', nn.Conv2d(n_feat, width, kernel_size=1, bias=bias))

    def forward(self, x, encoder_outs, decoder_outs):
        same = _identity
        to_full = [(same, same), (self.up_enc1, self.up_dec1), (self.up_enc2, self.up_dec2)]
        for i, (up_enc, up_dec) in enumerate(to_full):
            x = getattr(self, f'orb{i + 1}')(x)
            x = (x + getattr(self, f'conv_enc{i + 1}')(up_enc(encoder_outs[i]))
                 + getattr(self, f'conv_dec{i + 1}')(up_dec(decoder_outs[i])))
        return x


def _identity(x):
    return x


def _stack(parts):
    """Tensors of one shape -> one batch (patches of an image processed together)."""
    return torch.cat(parts, dim=0)


def _join(batched, n, dim):
    """Inverse of ``_stack`` followed by concatenation along ``dim``: the ``n`` patches of each sample,
    stacked along the batch, are put side by side."""
    return torch.cat(batched.chunk(n, dim=0), dim=dim)


@ARCH_REGISTRY.register()
class MPRNet(nn.Module):
    """MPRNet, multi-stage progressive restoration (see the module docstring).

    Args:
        in_c (int): Input channels; a multiple k of ``out_c`` (k views, e.g. 6 for dual-pixel). Default: 3.
        out_c (int): Output channels. Default: 3.
        n_feat (int): Base width of the stages. Default: 96 (GoPro deblurring model).
        scale_unetfeats (int): Width added per U-Net level. Default: 48.
        scale_orsnetfeats (int): Width added in stage 3. Default: 32.
        num_cab (int): CABs per ORB. Default: 8.
        kernel_size (int): Convolution kernel size. Default: 3.
        reduction (int): Channel-attention squeeze ratio. Default: 4.
        bias (bool): Biases in the convolutions (the official ones have none). Default: False.
        use_checkpoint (bool): Activation checkpointing (not in the official code): in training mode
            with grad enabled, every CAB (shallow features, encoder and decoder levels, skip attention,
            the CABs of the ORBs: 31 + 3 * num_cab blocks) runs under ``torch.utils.checkpoint``
            (non-reentrant): its activations are recomputed in backward instead of stored. Same
            outputs and gradients, less memory, more time. No effect in eval mode or under
            ``torch.no_grad()``; no parameters. Settable later (``net.use_checkpoint = True``).
            Default: False.

    Returns (forward): in training mode ``[final, stage 2, stage 1]`` images, in eval mode the final
    image; each (B, out_c, H, W) for an input (B, in_c, H, W) of any H, W.
    """

    size_multiple = 8  # quarters of the image, downsampled twice in the U-Nets

    def __init__(self, in_c=3, out_c=3, n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32, num_cab=8,
                 kernel_size=3, reduction=4, bias=False, use_checkpoint=False):
        super().__init__()
        if in_c < 1 or out_c < 1 or in_c % out_c != 0:
            raise ValueError(f'MPRNet: in_c ({in_c}) must be a positive multiple of out_c ({out_c}): the input '
                             f'is read as in_c / out_c views whose mean is added as the residual.')
        self.in_c, self.out_c = in_c, out_c
        act = nn.PReLU()  # one module (one parameter) shared by every CAB, as in the official code

        def shallow():
            return nn.Sequential(conv(in_c, n_feat, kernel_size, bias=bias),
                                 CAB(n_feat, kernel_size, reduction, bias=bias, act=act))

        self.shallow_feat1 = shallow()
        self.shallow_feat2 = shallow()
        self.shallow_feat3 = shallow()

        self.stage1_encoder = Encoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats, csff=False)
        self.stage1_decoder = Decoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats)
        self.stage2_encoder = Encoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats, csff=True)
        self.stage2_decoder = Decoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats)
        self.stage3_orsnet = ORSNet(n_feat, scale_orsnetfeats, kernel_size, reduction, act, bias, scale_unetfeats,
                                    num_cab)

        self.sam12 = SAM(n_feat, kernel_size=1, bias=bias, out_c=out_c)
        self.sam23 = SAM(n_feat, kernel_size=1, bias=bias, out_c=out_c)

        self.concat12 = conv(n_feat * 2, n_feat, kernel_size, bias=bias)
        self.concat23 = conv(n_feat * 2, n_feat + scale_orsnetfeats, kernel_size, bias=bias)
        self.tail = conv(n_feat + scale_orsnetfeats, out_c, kernel_size, bias=bias)
        self.use_checkpoint = use_checkpoint

    @property
    def use_checkpoint(self):
        """Whether the CABs run under activation checkpointing in training (see the class docstring)."""
        return self._use_checkpoint

    @use_checkpoint.setter
    def use_checkpoint(self, value):
        self._use_checkpoint = bool(value)
        for module in self.modules():
            if isinstance(module, CAB):
                module.use_checkpoint = self._use_checkpoint

    def residual_base(self, x):
        """What the stage images are added to: the input, or the mean of its ``in_c / out_c`` views."""
        if self.in_c == self.out_c:
            return x
        n, _, h, w = x.shape
        return x.reshape(n, self.in_c // self.out_c, self.out_c, h, w).mean(dim=1)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_c:
            raise ValueError(f'MPRNet: expected an input of shape (B, {self.in_c}, H, W), got {tuple(x.shape)}.')
        h, w = x.shape[-2:]
        stages = self.forward_stages(pad_to_multiple(x, self.size_multiple))
        stages = [s[..., :h, :w] for s in stages]
        return stages if self.training else stages[0]

    def forward_stages(self, x):
        """The official computation on an input whose sides are multiples of 8:
        ``[final, stage 2, stage 1]`` images."""
        base = self.residual_base(x)
        h, w = x.shape[-2:]
        hh, hw = h // 2, w // 2
        x_halves = [x[..., :hh, :], x[..., hh:, :]]                              # top, bottom
        base_halves = _stack([base[..., :hh, :], base[..., hh:, :]])
        x_quarters = [part for half in x_halves for part in (half[..., :hw], half[..., hw:])]

        # stage 1: the four quarters through one encoder pass, joined left-right into halves for the decoder
        feat1 = self.stage1_encoder(self.shallow_feat1(_stack(x_quarters)))
        feat1 = [_stack([_join(f[:2 * len(x)], 2, dim=3), _join(f[2 * len(x):], 2, dim=3)]) for f in feat1]
        res1 = self.stage1_decoder(feat1)
        sam1_feats, stage1_halves = self.sam12(res1[0], base_halves)
        stage1_img = _join(stage1_halves, 2, dim=2)

        # stage 2: the two halves, joined top-bottom for the decoder
        x2 = self.concat12(torch.cat([self.shallow_feat2(_stack(x_halves)), sam1_feats], dim=1))
        feat2 = [_join(f, 2, dim=2) for f in self.stage2_encoder(x2, feat1, res1)]
        res2 = self.stage2_decoder(feat2)
        sam2_feats, stage2_img = self.sam23(res2[0], base)

        # stage 3: full resolution
        x3 = self.concat23(torch.cat([self.shallow_feat3(x), sam2_feats], dim=1))
        x3 = self.stage3_orsnet(x3, feat2, res2)
        return [self.tail(x3) + base, stage2_img, stage1_img]


#: Checkpoint key layout of this architecture, for the load-error hints of basicsr_vitloss.compat.checkpoint_hints:
#: a key every checkpoint has, prefixes of which at least one occurs, the architectures sharing the layout (the
#: first names it), and the configuration arguments that change the shapes.
CHECKPOINT_SIGNATURE = {
    'key': 'sam12.conv2.weight', 'prefixes': ('stage1_encoder.',), 'archs': ('MPRNet',),
    'args': ('n_feat', 'scale_unetfeats', 'scale_orsnetfeats', 'num_cab', 'in_c', 'out_c', 'kernel_size', 'reduction',
             'bias')}
