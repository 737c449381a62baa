"""Hand-written normalisations in half precision (fp16 / bf16): statistics in float32, output in the input dtype.

In float16 (largest value 65504) a variance overflows once a channel's standard deviation exceeds 256, and
the layer norm then returns its bias (or zero); NAFNetLocal's integral images overflow once a window sum
exceeds 65504; Restormer's L2 normalisation of queries / keys overflows once a norm over the pixels does.
References are float64, written here from the definitions (not by the modules).
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from basicsr_vitloss.archs.nafnet_arch import LayerNorm2d, LocalAvgPool2d
from basicsr_vitloss.archs.restormer_arch import ChannelLayerNorm, Restormer, TransposedAttention

# relative resolution of each half type (one unit in the last place at 1.0)
ULP = {torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}

# name: (module factory, eps, subtracts the mean and adds a bias)
NORMS = {
    'restormer_with_bias': (lambda c: ChannelLayerNorm(c, 'WithBias'), 1e-5, True),
    'restormer_bias_free': (lambda c: ChannelLayerNorm(c, 'BiasFree'), 1e-5, False),
    'nafnet_layernorm2d': (LayerNorm2d, 1e-6, True),
}


def affine(norm):
    """(weight, bias) of a channel norm, whatever the wrapper (Restormer keeps them in ``body``)."""
    body = getattr(norm, 'body', norm)
    return body.weight, getattr(body, 'bias', None)


def make_norm(name, channels=16):
    factory, _, _ = NORMS[name]
    norm = factory(channels)
    weight, bias = affine(norm)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # values exact in fp16 and bf16, so every precision sees the same parameters
        weight.copy_((0.5 + torch.rand(channels, generator=gen)).bfloat16())
        if bias is not None:
            bias.copy_((0.1 * torch.randn(channels, generator=gen)).bfloat16())
    return norm


def large_input(channels=16, dtype=torch.float16):
    """(2, C, 5, 7) values of a few hundred to ~3000, exact in ``dtype``; every pixel's std over channels > 256."""
    x = (1000 * torch.randn(2, channels, 5, 7, generator=torch.Generator().manual_seed(0))).to(dtype)
    assert x.double().std(dim=1, unbiased=False).min() > 256
    return x


def reference(name, x, weight, bias):
    """Layer norm over dim 1 in float64: (x - mean) / sqrt(var + eps) * w + b; the bias-free variant does
    not subtract the mean and has no bias (it still divides by the centred standard deviation)."""
    _, eps, centred = NORMS[name]
    x = x.double()
    n = x.shape[1]
    mean = x.sum(dim=1, keepdim=True) / n
    var = ((x - mean)**2).sum(dim=1, keepdim=True) / n
    y = (x - mean if centred else x) / torch.sqrt(var + eps) * weight.double().view(1, -1, 1, 1)
    return y + bias.double().view(1, -1, 1, 1) if centred else y


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
@pytest.mark.parametrize('name', list(NORMS))
def test_half_precision_norm_matches_the_float64_definition(name, dtype):
    norm = make_norm(name).to(dtype)
    x = large_input(dtype=dtype)
    with torch.no_grad():
        y = norm(x)
    assert y.dtype == dtype
    expected = reference(name, x, *affine(norm))
    scale = expected.abs().max()
    # the output rounded to dtype: at most half a unit in the last place of the largest value, and a little
    assert (y.double() - expected).abs().max() <= ULP[dtype] * scale, (y.double() - expected).abs().max()


@pytest.mark.parametrize('name', list(NORMS))
def test_norm_under_fp16_autocast_matches_the_definition_with_gradients(name):
    """Mixed precision training: fp32 parameters, an fp16 activation; output and parameter gradients."""
    norm = make_norm(name)
    x = large_input()
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    with torch.autocast('cpu', dtype=torch.float16):
        y = norm(x)
    assert y.dtype == torch.float16
    (y.float() * grad_out).sum().backward()

    params = [p.detach().double().requires_grad_() for p in affine(norm) if p is not None]
    expected = reference(name, x, *params) if len(params) == 2 else reference(name, x, params[0], None)
    (expected * grad_out.double()).sum().backward()
    assert (y.double() - expected.detach()).abs().max() <= ULP[torch.float16] * expected.abs().max()
    for param, ref in zip([p for p in affine(norm) if p is not None], params):
        # sums over 70 pixels of fp16-rounded normalised values
        assert (param.grad.double() - ref.grad).abs().max() <= 4 * ULP[torch.float16] * ref.grad.abs().max()


def test_uformer_layer_norm_is_torch_s_which_accumulates_in_float32():
    """Uformer normalises with torch.nn.LayerNorm; torch's kernel already computes its statistics in float32."""
    norm = torch.nn.LayerNorm(16).half()
    x = large_input().permute(0, 2, 3, 1)  # channels last, as Uformer's tokens
    with torch.no_grad():
        y = norm(x)
    mean = x.double().mean(dim=-1, keepdim=True)
    var = ((x.double() - mean)**2).mean(dim=-1, keepdim=True)
    expected = (x.double() - mean) / torch.sqrt(var + norm.eps)
    assert (y.double() - expected).abs().max() <= ULP[torch.float16] * expected.abs().max()


@pytest.mark.parametrize('name', list(NORMS))
def test_float64_input_keeps_float64_statistics(name):
    norm = make_norm(name).double()
    x = large_input().double() * (1 + 1e-3 * torch.rand(2, 16, 5, 7, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        y = norm(x)
    assert y.dtype == torch.float64
    expected = reference(name, x, *affine(norm))
    # float32 statistics would be off by ~1e-7 relative
    assert (y - expected).abs().max() <= 1e-12 * expected.abs().max()


def test_nafnet_local_pool_in_fp16_averages_in_float32():
    """The integral image of a 256 x 512 map of values in [0, 1] reaches ~65536: inf in fp16 (and its
    resolution there is 32), so window means are computed in float32."""
    x = torch.rand(1, 2, 256, 512, generator=torch.Generator().manual_seed(0)).half()
    kh, kw = 128, 256
    with torch.no_grad():
        y = LocalAvgPool2d((kh, kw))(x)
    assert y.dtype == torch.float16
    # definition: the mean of each full window, the border filled with the nearest full window
    means = F.avg_pool2d(x.double(), (kh, kw), stride=1)
    mh, mw = x.shape[-2] - means.shape[-2], x.shape[-1] - means.shape[-1]
    expected = F.pad(means, (mw // 2, mw - mw // 2, mh // 2, mh - mh // 2), mode='replicate')
    assert (y.double() - expected).abs().max() <= ULP[torch.float16], (y.double() - expected).abs().max()


def test_restormer_attention_in_fp16_with_large_queries():
    """The L2 norm over 64 x 64 pixels of queries ~2000 exceeds 65504; normalised in float32 it does not."""
    torch.manual_seed(0)
    attn = TransposedAttention(8, 2, bias=False)
    with torch.no_grad():
        attn.qkv.weight.mul_(3000)
        attn.temperature.fill_(4.0)
    attn = attn.half()
    x = torch.randn(1, 8, 64, 64, generator=torch.Generator().manual_seed(1)).half()
    with torch.no_grad():
        y = attn(x)
        expected = copy.deepcopy(attn).double()(x.double())  # same (fp16-exact) weights and input in float64
    assert torch.isfinite(y).all()
    assert (y.double() - expected).abs().max() <= 2 * ULP[torch.float16] * expected.abs().max()


@pytest.mark.parametrize('layer_norm_type', ['WithBias', 'BiasFree'])
def test_restormer_in_fp16_with_large_activations_stays_close_to_float32(layer_norm_type):
    """A tiny Restormer whose residual stream (x1000) and branches (x30) are large, as in trained transformers:
    the .half() network is finite and within a few fp16 units of the fp32 network."""
    torch.manual_seed(0)
    net = Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1],
                    LayerNorm_type=layer_norm_type).eval()
    with torch.no_grad():
        net.patch_embed.proj.weight.mul_(1000)
        for name, param in net.named_parameters():
            if name.endswith('project_out.weight'):
                param.mul_(30)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)).half()
    with torch.no_grad():
        assert net.patch_embed(x.float()).std(dim=1).max() > 256  # the norms see channel std beyond fp16's limit
        expected = net(x.float())
        y = copy.deepcopy(net).half()(x)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    err = (y.float() - expected).abs().max()
    assert err <= 2 * ULP[torch.float16] * expected.abs().max(), (err, expected.abs().max())
