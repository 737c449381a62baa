"""Restormer: official parameter counts and key names (checkpoint compatibility), any input size,
the dual-pixel variant, building through BasicSR, and a short training run."""
import pytest
import torch

import basicsr_vitloss  # noqa: F401  (registers the architectures)
from basicsr_vitloss.archs.restormer_arch import Restormer
from conftest import adam_l1_step

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])
DUAL_PIXEL = dict(inp_channels=6, dual_pixel_task=True)


def _n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope='module')
def full_dual_pixel():
    return Restormer(**DUAL_PIXEL)


@pytest.fixture(scope='module')
def full_single():
    return Restormer(inp_channels=3)


def test_parameter_counts_match_the_official_model(full_dual_pixel, full_single):
    # counted on swz30/Restormer basicsr/models/archs/restormer_arch.py
    assert _n_params(full_dual_pixel) == 26_132_548
    assert _n_params(full_single) == 26_126_644
    assert _n_params(Restormer()) == 26_126_644  # defaults: the motion deblurring model


# (key, shape) pairs checked against the official model's state_dict
COMMON_KEYS = {
    'encoder_level1.0.norm1.body.weight': (48, ),
    'encoder_level1.0.norm1.body.bias': (48, ),
    'encoder_level1.0.attn.temperature': (1, 1, 1),
    'encoder_level1.0.attn.qkv.weight': (144, 48, 1, 1),
    'encoder_level1.0.attn.qkv_dwconv.weight': (144, 1, 3, 3),
    'encoder_level1.0.ffn.project_in.weight': (254, 48, 1, 1),
    'encoder_level1.0.ffn.dwconv.weight': (254, 1, 3, 3),
    'encoder_level1.0.ffn.project_out.weight': (48, 127, 1, 1),
    'latent.7.attn.temperature': (8, 1, 1),
    'down1_2.body.0.weight': (24, 48, 3, 3),
    'up4_3.body.0.weight': (768, 384, 3, 3),
    'up2_1.body.0.weight': (192, 96, 3, 3),
    'reduce_chan_level3.weight': (192, 384, 1, 1),
    'reduce_chan_level2.weight': (96, 192, 1, 1),
    'decoder_level1.3.attn.project_out.weight': (96, 96, 1, 1),
    'refinement.3.norm2.body.bias': (96, ),
    'output.weight': (3, 96, 3, 3),
}


def test_state_dict_keys_and_shapes_match_the_official_model(full_dual_pixel, full_single):
    dp, single = full_dual_pixel.state_dict(), full_single.state_dict()
    assert len(dp) == 495 and len(single) == 494
    for key, shape in COMMON_KEYS.items():
        assert tuple(dp[key].shape) == shape, key
        assert tuple(single[key].shape) == shape, key
    assert tuple(dp['patch_embed.proj.weight'].shape) == (48, 6, 3, 3)
    assert tuple(single['patch_embed.proj.weight'].shape) == (48, 3, 3, 3)
    assert tuple(dp['skip_conv.weight'].shape) == (96, 48, 1, 1)
    assert 'skip_conv.weight' not in single
    # bias=False (official default): no conv biases anywhere
    assert not any(k.endswith('.bias') and 'norm' not in k for k in single)


def test_bias_free_layer_norm_has_no_bias_and_bias_true_adds_conv_biases():
    keys = Restormer(LayerNorm_type='BiasFree', **TINY).state_dict()
    assert 'encoder_level1.0.norm1.body.weight' in keys
    assert 'encoder_level1.0.norm1.body.bias' not in keys
    keys = Restormer(bias=True, **TINY, **DUAL_PIXEL).state_dict()
    assert 'output.bias' in keys and 'skip_conv.bias' in keys and 'encoder_level1.0.attn.qkv.bias' in keys
    assert 'patch_embed.proj.bias' not in keys and 'down1_2.body.0.bias' not in keys  # as official


@pytest.mark.parametrize('cfg, shape, out_channels', [
    ({}, (1, 3, 100, 75), 3),
    (DUAL_PIXEL, (1, 6, 136, 200), 3),
    ({}, (2, 3, 5, 3), 3),  # smaller than the padding: replicate instead of reflect
])
@pytest.mark.integration
def test_any_input_size_returns_the_input_size(cfg, shape, out_channels):
    net = Restormer(**TINY, **cfg).eval()
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == (shape[0], out_channels) + shape[2:]
    assert torch.isfinite(out).all()


def test_odd_size_equals_running_on_the_reflect_padded_input():
    torch.manual_seed(0)
    net = Restormer(**TINY).eval()
    x = torch.rand(1, 3, 37, 29)
    with torch.no_grad():
        padded = torch.nn.functional.pad(x, (0, 3, 0, 3), mode='reflect')  # 40 x 32: no internal padding
        assert torch.allclose(net(x), net(padded)[..., :37, :29], atol=1e-6)


def test_global_residual_only_without_dual_pixel():
    torch.manual_seed(0)
    x = torch.rand(1, 6, 16, 16)
    single = Restormer(inp_channels=6, out_channels=6, **TINY).eval()
    dual = Restormer(**TINY, **DUAL_PIXEL).eval()
    for net in (single, dual):
        torch.nn.init.zeros_(net.output.weight)
    with torch.no_grad():
        assert torch.equal(single(x), x)  # output conv zero: the input comes through
        assert torch.equal(dual(x), torch.zeros(1, 3, 16, 16))  # no residual in the dual-pixel variant


def test_builds_through_basicsr_registry():
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY
    assert ARCH_REGISTRY.get('Restormer') is Restormer
    net = build_network({'type': 'Restormer', 'inp_channels': 6, 'out_channels': 3, 'dual_pixel_task': True, **TINY})
    assert isinstance(net, Restormer) and net.dual_pixel_task and hasattr(net, 'skip_conv')


@pytest.mark.integration
def test_tiny_config_trains_with_finite_nonzero_gradients():
    torch.manual_seed(0)
    net = Restormer(**TINY, **DUAL_PIXEL)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, target = torch.rand(2, 6, 20, 28), torch.rand(2, 3, 20, 28)
    losses = []
    for _ in range(2):
        losses.append(adam_l1_step(net, optimizer, x, target).item())
        assert net.output.weight.grad.abs().sum() > 0 and net.patch_embed.proj.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(torch.tensor(losses)))
