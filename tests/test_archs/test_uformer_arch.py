"""Uformer architecture: official sizes and state_dict layout, any input size, dual pixel, training.

Expected numbers (parameter counts, key names and shapes, relative_position_index values) were measured
on the official implementation (ZhendongWang6/Uformer, model.py)."""
import pytest
import torch
import torch.nn.functional as F

import basicsr_vitloss  # noqa: F401  (registers the architectures)
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from basicsr_vitloss.archs.uformer_arch import Uformer
from conftest import adam_l1_step

OFFICIAL = dict(win_size=8, token_projection='linear', token_mlp='leff', modulator=True)
CONFIGS = {
    'T': (dict(embed_dim=16), 5_291_853),
    'S': (dict(embed_dim=32), 20_751_197),
    'B': (dict(embed_dim=32, depths=[1, 2, 8, 8, 2, 8, 8, 2, 1]), 50_880_946),
}
# small but complete: every level, shifted windows in the bottleneck (img_size=256), modulators
TINY = dict(embed_dim=8, depths=[1, 1, 1, 1, 2, 1, 1, 1, 2], num_heads=[1, 1, 2, 2, 2, 2, 2, 1, 1], win_size=8,
            modulator=True, img_size=256)


def tiny(**kwargs):
    torch.manual_seed(0)
    return Uformer(**{**TINY, **kwargs})


def images(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('name', list(CONFIGS))
@pytest.mark.integration
def test_parameter_counts_match_the_official_models(name):
    kwargs, expected = CONFIGS[name]
    net = Uformer(img_size=128, **kwargs, **OFFICIAL)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_state_dict_keys_shapes_and_buffers_match_the_official_layout():
    sd = Uformer(img_size=128, embed_dim=16, **OFFICIAL).state_dict()
    assert len(sd) == 352
    expected = {
        'input_proj.proj.0.weight': (16, 3, 3, 3),
        'encoderlayer_0.blocks.0.attn.relative_position_index': (64, 64),
        'encoderlayer_0.blocks.0.attn.relative_position_bias_table': (225, 1),
        'decoderlayer_0.blocks.0.modulator.weight': (64, 256),
        'conv.blocks.1.mlp.dwconv.0.weight': (1024, 1, 3, 3),
        'dowsample_3.conv.0.weight': (256, 128, 4, 4),
        'upsample_1.deconv.0.weight': (256, 64, 2, 2),
        'output_proj.proj.0.weight': (3, 32, 3, 3),
        'decoderlayer_3.blocks.1.attn.qkv.to_kv.weight': (64, 32),
        'encoderlayer_2.blocks.1.norm2.weight': (64, ),
        'decoderlayer_2.blocks.0.mlp.linear2.0.bias': (64, ),
    }
    assert {k: tuple(sd[k].shape) for k in expected} == expected
    # one relative_position_index buffer per block (18 blocks); modulators only in the decoder
    assert sum(k.endswith('attn.relative_position_index') for k in sd) == 18
    assert sum(k.endswith('modulator.weight') for k in sd) == 8
    index = sd['encoderlayer_0.blocks.0.attn.relative_position_index']
    assert index.dtype == torch.int64 and index.sum().item() == 458752
    assert index[0, :10].tolist() == [112, 111, 110, 109, 108, 107, 106, 105, 97, 96]
    assert index[63, :5].tolist() == [224, 223, 222, 221, 220]
    # a state_dict round-trips with strict=True (buffers included)
    Uformer(img_size=128, embed_dim=16, **OFFICIAL).load_state_dict(sd, strict=True)


def test_img_size_sets_the_window_layout_as_in_the_official_code():
    # bottleneck at img_size // 16: shifted windows only if larger than win_size
    assert [b.shift_size for b in tiny(img_size=256).conv.blocks] == [0, 4]
    assert [b.shift_size for b in tiny(img_size=128).conv.blocks] == [0, 0]
    # smaller still: the bottleneck window (and its bias table) shrinks, as in the official code
    small = Uformer(img_size=64, embed_dim=16, win_size=8)
    assert small.conv.blocks[0].attn.relative_position_bias_table.shape == (49, 16)
    assert small.pad_multiple == 64  # lcm of window * 2**level: 8*1, 8*2, 8*4, 8*8, 4*16


def test_builds_through_basicsr_registry():
    assert ARCH_REGISTRY.get('Uformer') is Uformer
    net = build_network({'type': 'Uformer', **TINY})
    assert isinstance(net, Uformer)


@pytest.mark.parametrize('shape', [(1, 3, 100, 75), (2, 3, 128, 128), (1, 3, 20, 131)])
@pytest.mark.integration
def test_any_input_size_returns_the_input_size(shape):
    net = tiny().eval()
    x = images(*shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.integration
def test_padding_is_reflect_then_crop():
    net = tiny().eval()
    x = images(1, 3, 100, 75)
    padded = F.pad(x, (0, 128 - 75, 0, 128 - 100), mode='reflect')
    with torch.no_grad():
        assert torch.allclose(net(x), net(padded)[..., :100, :75], atol=1e-6)


def test_global_residual_official_rgb():
    net = tiny().eval()
    torch.nn.init.zeros_(net.output_proj.proj[0].weight)
    torch.nn.init.zeros_(net.output_proj.proj[0].bias)
    x = images(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.allclose(net(x), x)


@pytest.mark.integration
def test_dual_pixel_outputs_rgb_with_mean_view_residual():
    net = tiny(in_chans=6, dd_in=6).eval()
    assert net.output_proj.proj[0].out_channels == 3
    assert net.input_proj.proj[0].in_channels == 6
    x = images(1, 6, 64, 48)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (1, 3, 64, 48)
        torch.nn.init.zeros_(net.output_proj.proj[0].weight)
        torch.nn.init.zeros_(net.output_proj.proj[0].bias)
        assert torch.allclose(net(x), (x[:, :3] + x[:, 3:]) / 2)
    # the official layout (in_chans outputs, no residual) remains available
    assert tiny(in_chans=6, dd_in=6, out_chans=6).output_proj.proj[0].out_channels == 6


@pytest.mark.integration
def test_tiny_model_trains_two_adam_steps():
    net = tiny().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, target = images(2, 3, 40, 56, seed=1), images(2, 3, 40, 56, seed=2)
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(2):
        loss = adam_l1_step(net, optimizer, x, target)
    assert torch.isfinite(loss)
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
