"""DPDNet (Abuolaim and Brown, "Defocus Deblurring Using Dual-Pixel Data", ECCV 2020) for BasicSR.

A PyTorch re-implementation written from the layer list of the authors' Keras code
(Abdullah-Abuolaim/defocus-deblurring-dual-pixel, ``DPDNet/model.py`` function ``unet`` and
``DPDNet/config.py``). There are no official PyTorch weights, so module names are our own.

Published structure (``model.py``), with ``C = base_channels`` (64 in the original):

* encoder, 4 levels of two 3x3 convolutions + ReLU ('same' padding, ``he_normal`` init) with
  C, 2C, 4C, 8C filters, each followed by 2x2 max pooling; dropout after the second conv of level 4
  (``drop4``: its output is both pooled and used as the level-4 skip connection);
* bottleneck: two 3x3 convs + ReLU with 16C filters, then dropout (``drop5``);
* decoder, 4 levels: 2x nearest-neighbour ``UpSampling2D`` followed by a 2x2 conv + ReLU halving the
  channels, concatenation ``[skip, upsampled]`` (skip first), two 3x3 convs + ReLU;
* head: a 3x3 conv + ReLU with 3 filters (``conv9``; ``config.py`` says to change it with the number of
  output channels, so here it has ``out_channels`` filters), then a 1x1 conv with sigmoid (``conv10``,
  default ``glorot_uniform`` init);
* ``dropout_rate = 0.4`` (``config.py``), plain element-wise Keras ``Dropout`` (not channel dropout);
* input: the left and right dual-pixel views concatenated on the channel axis, left in channels 0-2
  and right in 3-5 (``data.py``, ``generator``/``test_generator``: ``src_ims[..., 0:3]`` = left,
  ``[..., 3:6]`` = right; ``nb_ch_all = 6``), values in [0, 1] (divided by ``2**16 - 1``, mean 0);
  the target is the all-in-focus image, 3 channels, in [0, 1].

Parameter count of the published 6 -> 3 channel model (C = 64): 31,035,151. It is the sum over the
layer list above of ``k*k*c_in*c_out + c_out`` (weights + bias) per conv; see ``dpdnet_num_params``.
Cross-check: with a 1-channel input, a 2-filter ``conv9`` and a 1-filter ``conv10`` the same layer list
is the widely used Keras U-Net (zhixuhao/unet) that ``model.py`` follows, whose ``model.summary()`` total
is 31,031,685 = 31,035,151 - 5*64*9 - (64*9 + 1) - 9.

Where the original is ambiguous, or where this port has to choose:

* Output activation: the original ends with a sigmoid; kept as the default
  (``output_activation='sigmoid'``, matching BasicSR's [0, 1] images). ``output_activation=None``
  gives the raw 1x1-conv output for losses/experiments that want an unbounded output.
* The ReLU on the 3-filter ``conv9`` before the 1x1 output conv is in the original and is kept.
* 'same' padding of the 2x2 up-convs: TensorFlow pads an even kernel asymmetrically (0 before,
  1 after), so each up-conv zero-pads one row at the bottom and one column at the right, as Keras
  does; the 3x3 convs pad 1 on every side with zeros, as 'same' does.
* Initialisation: ``he_normal`` of Keras 2.2 (truncated normal at 2 std, std = sqrt(2 / fan_in)) for
  every conv but the last, ``glorot_uniform`` for the last, zero biases, as the Keras defaults.
* Inputs of any size: the original runs on fixed sizes divisible by 16 (512x512 patches, 1120x1680
  test images). Here the input is reflect-padded at the bottom/right to a multiple of 16 (the 4
  max-poolings) and the output cropped back; if a side is too short for reflection (pad >= size)
  replicate padding is used instead.
* ``in_channels=3`` gives the single-image variant used in the paper's comparisons (only the first
  conv changes).
* ``use_checkpoint`` (not in the original): activation checkpointing per U-Net stage, off by default.
"""
import math

import torch
from torch import nn as nn
from torch.nn import functional as F
from torch.utils import checkpoint as torch_checkpoint

from basicsr.utils.registry import ARCH_REGISTRY

from .arch_util import pad_to_multiple

NUM_POOLS = 4  # max-poolings of the U-Net; inputs are padded to a multiple of 2**NUM_POOLS


def dpdnet_num_params(in_channels=6, out_channels=3, base_channels=64):
    """Parameter count of DPDNet computed from the layer list (weights + biases of every conv)."""

    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + c_out

    widths = [base_channels * 2**i for i in range(NUM_POOLS + 1)]
    total, c_in = 0, in_channels
    for width in widths:  # encoder levels and bottleneck: two 3x3 convs each
        total += conv(3, c_in, width) + conv(3, width, width)
        c_in = width
    for width in reversed(widths[:-1]):  # decoder: 2x2 up-conv, then two 3x3 convs on [skip, up]
        total += conv(2, c_in, width) + conv(3, 2 * width, width) + conv(3, width, width)
        c_in = width
    return total + conv(3, c_in, out_channels) + conv(1, out_channels, out_channels)


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions ('same' zero padding), each followed by ReLU."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class UpConv(nn.Module):
    """Keras ``Conv2D(c, 2, padding='same', activation='relu')(UpSampling2D((2, 2))(x))``: nearest 2x
    upsampling, zero padding of one row/column at the bottom/right (TensorFlow's 'same' for an even
    kernel), a 2x2 convolution and ReLU."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 2)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        return F.relu(self.conv(F.pad(x, (0, 1, 0, 1))), inplace=True)


@ARCH_REGISTRY.register()
class DPDNet(nn.Module):
    """DPDNet: the dual-pixel defocus deblurring U-Net of Abuolaim and Brown (ECCV 2020).

    Args:
        in_channels (int): 6 for dual-pixel input (left and right views concatenated, left first) or
            3 for a single image. Default: 6.
        out_channels (int): Channels of the output (the sharp image). Default: 3.
        base_channels (int): Filters of the first level; level i has ``base_channels * 2**i``
            (published: 64, i.e. 64-128-256-512-1024). Default: 64.
        dropout_rate (float): Rate of the two dropout layers (after encoder level 4 and after the
            bottleneck), published 0.4. Default: 0.4.
        output_activation (str | None): 'sigmoid' (published) or None for no output activation.
            Default: 'sigmoid'.
        use_checkpoint (bool): Activation checkpointing: in training mode with grad enabled, each
            stage runs under ``torch.utils.checkpoint`` (non-reentrant, RNG state preserved, so the
            dropout masks are the same): every encoder level (two convs, level 4's dropout, the max
            pooling), the bottleneck (two convs and its dropout) and every decoder level (up-conv,
            concatenation with the skip, two convs). Their activations are recomputed in backward
            instead of stored: same outputs and gradients, less memory, more time. No effect in eval
            mode or under ``torch.no_grad()``; no parameters. Default: False.

    Input (N, in_channels, H, W) and output (N, out_channels, H, W) in [0, 1]; any H, W.
    """

    def __init__(self, in_channels=6, out_channels=3, base_channels=64, dropout_rate=0.4,
                 output_activation='sigmoid', use_checkpoint=False):
        super().__init__()
        self.use_checkpoint = bool(use_checkpoint)
        if output_activation not in ('sigmoid', None, 'none'):
            raise ValueError(f"output_activation must be 'sigmoid' or None, got {output_activation!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.output_activation = None if output_activation == 'none' else output_activation
        self.pad_multiple = 2**NUM_POOLS
        widths = [base_channels * 2**i for i in range(NUM_POOLS + 1)]

        self.encoders = nn.ModuleList()
        c_in = in_channels
        for width in widths[:-1]:
            self.encoders.append(DoubleConv(c_in, width))
            c_in = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(c_in, widths[-1])
        self.drop_enc = nn.Dropout(dropout_rate)  # drop4: on the last encoder level (skip and pool)
        self.drop_mid = nn.Dropout(dropout_rate)  # drop5: on the bottleneck output

        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c_in = widths[-1]
        for width in reversed(widths[:-1]):
            self.ups.append(UpConv(c_in, width))
            self.decoders.append(DoubleConv(2 * width, width))
            c_in = width
        self.tail = nn.Conv2d(c_in, out_channels, 3, padding=1)  # conv9 (3 filters) + ReLU
        self.out_conv = nn.Conv2d(out_channels, out_channels, 1)  # conv10 (1x1) + sigmoid
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Keras initialisation: he_normal (truncated at 2 std) on every conv but the output 1x1 conv,
        which has glorot_uniform; zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if module is self.out_conv:
                    nn.init.xavier_uniform_(module.weight)
                else:
                    fan_in = module.weight[0].numel()
                    std = math.sqrt(2.0 / fan_in)
                    nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
                nn.init.zeros_(module.bias)

    def _run(self, stage, *args):
        """``stage(*args)``, under activation checkpointing where ``use_checkpoint`` applies."""
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return torch_checkpoint.checkpoint(stage, *args, use_reentrant=False)
        return stage(*args)

    def _encoder_stage(self, level, feat):
        """Encoder level ``level``: (skip feature, pooled feature for the next level)."""
        feat = self.encoders[level](feat)
        if level == len(self.encoders) - 1:
            feat = self.drop_enc(feat)
        return feat, self.pool(feat)

    def _bottleneck_stage(self, feat):
        return self.drop_mid(self.bottleneck(feat))

    def _decoder_stage(self, level, feat, skip):
        return self.decoders[level](torch.cat([skip, self.ups[level](feat)], dim=1))

    def forward(self, x):
        h, w = x.shape[-2:]
        feat = pad_to_multiple(x, self.pad_multiple)
        skips = []
        for level in range(len(self.encoders)):
            skip, feat = self._run(self._encoder_stage, level, feat)
            skips.append(skip)
        feat = self._run(self._bottleneck_stage, feat)
        for level, skip in enumerate(reversed(skips)):
            feat = self._run(self._decoder_stage, level, feat, skip)
        out = self.out_conv(F.relu(self.tail(feat)))
        if self.output_activation == 'sigmoid':
            out = torch.sigmoid(out)
        return out[..., :h, :w]


#: Checkpoint key layout of this architecture, for the load-error hints of basicsr_vitloss.compat.checkpoint_hints:
#: a key every checkpoint has, prefixes of which at least one occurs, the architectures sharing the layout (the
#: first names it), and the configuration arguments that change the shapes.
CHECKPOINT_SIGNATURE = {
    'key': 'out_conv.weight', 'prefixes': ('bottleneck.',), 'archs': ('DPDNet',),
    'args': ('in_channels', 'out_channels', 'base_channels')}
