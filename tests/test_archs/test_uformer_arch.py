"""Uformer architecture: official sizes and state_dict layout, any input size, dual pixel, training.

Expected numbers (parameter counts, key names and shapes, relative_position_index values) were measured
on the official implementation (ZhendongWang6/Uformer, model.py)."""
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import basicsr_vitloss  # noqa: F401  (registers the architectures)
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from basicsr_vitloss.archs.uformer_arch import LeWinTransformerBlock, Uformer, _shift_attention_mask
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

# with the cross modulator, on 64 x 64 maps (4 x 4 windows) to be quick
CROSS = dict(cross_modulator=True, win_size=4, img_size=64)


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


# input_padding: a small tiny (2x2 windows, padding multiple 32) to be quick
SMALL = dict(win_size=2, img_size=64)


def test_square_zero_padding_is_the_official_centred_zero_square_then_crop():
    """expand2square of the official test scripts: side ceil(max(h, w) / 128) * 128 (here the multiple 32), the
    image at ((side - h) // 2, (side - w) // 2), zeros around it; the output cropped at the same place."""
    net = tiny(input_padding='square_zero', **SMALL).eval()
    assert net.pad_multiple == 32
    x = images(1, 3, 20, 45)
    side, top, left = 64, 22, 9
    square = torch.zeros(1, 3, side, side)
    square[..., top:top + 20, left:left + 45] = x
    with torch.no_grad():
        got = net(x)
        expected = net(square)[..., top:top + 20, left:left + 45]  # a square of the multiple is not padded again
        reflect = tiny(**SMALL).eval()(x)  # the same weights (same seed), the default padding
    assert got.shape == x.shape
    assert torch.allclose(got, expected, atol=1e-6)
    assert (got - reflect).abs().max() > 1e-3  # the option changes the result


@pytest.mark.parametrize('shape', [(1, 3, 20, 45), (2, 3, 45, 20), (1, 3, 32, 64), (1, 3, 33, 1), (1, 3, 64, 64)])
def test_square_zero_padding_keeps_non_square_shapes(shape):
    net = tiny(input_padding='square_zero', **SMALL).eval()
    x = images(*shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_both_paddings_agree_on_squares_of_the_multiple_only():
    reflect, square = tiny(**SMALL).eval(), tiny(input_padding='square_zero', **SMALL).eval()
    with torch.no_grad():
        assert torch.equal(reflect(images(1, 3, 64, 64)), square(images(1, 3, 64, 64)))
        # 32x64: already multiples (reflect pads nothing) but not square (square_zero pads to 64x64)
        assert (reflect(images(1, 3, 32, 64)) - square(images(1, 3, 32, 64))).abs().max() > 1e-3


def test_bad_input_padding_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"input_padding 'zero' .*'reflect', 'square_zero'"):
        Uformer(input_padding='zero', **TINY)


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


def test_cross_modulator_keeps_norm_cross_in_the_state_dict_and_gives_every_trainable_parameter_a_gradient():
    """DDP without find_unused_parameters needs a gradient for every parameter that requires one. The
    official forward discards norm_cross(x), so norm_cross is frozen but keeps its official keys."""
    net = tiny(**CROSS).train()
    keys = net.state_dict().keys()
    assert {'decoderlayer_0.blocks.0.norm_cross.weight', 'decoderlayer_0.blocks.0.norm_cross.bias',
            'decoderlayer_3.blocks.1.cross_modulator.weight',
            'decoderlayer_3.blocks.1.cross_attn.qkv.to_q.weight'} <= keys
    F.l1_loss(net(images(1, 3, 32, 32)), images(1, 3, 32, 32, seed=1)).backward()
    unused = [name for name, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f'parameters without a gradient: {unused}'
    frozen = [name for name, p in net.named_parameters() if not p.requires_grad]
    assert frozen and all('.norm_cross.' in name for name in frozen)
    assert sum('.norm_cross.' in k for k in keys) == len(frozen) == 2 * sum(TINY['depths'][5:])
    # a state_dict with the norm_cross keys (an official checkpoint) loads strictly and stays frozen
    other = tiny(**CROSS)
    other.load_state_dict(net.state_dict(), strict=True)
    assert not other.decoderlayer_1.blocks[0].norm_cross.weight.requires_grad


def test_cross_modulator_branch_is_the_official_one():
    """Official model.py (LeWinTransformerBlock.forward): x = x + cross_attn(x, cross_modulator.weight), then
    the block as without the cross modulator; norm_cross(x) is computed and discarded."""
    torch.manual_seed(0)
    dim, kwargs = 16, dict(input_resolution=(32, 32), num_heads=2, win_size=8, shift_size=4, modulator=True)
    block = LeWinTransformerBlock(dim, **kwargs, cross_modulator=True).eval()
    plain = LeWinTransformerBlock(dim, **kwargs).eval()
    plain.load_state_dict({k: v for k, v in block.state_dict().items() if k in plain.state_dict()}, strict=True)
    torch.nn.init.normal_(block.cross_modulator.weight)  # nn.Embedding's N(0, 1) start, drawn again
    x = torch.randn(2, 16 * 16, dim, generator=torch.Generator().manual_seed(1))
    hw = (16, 16)
    mask = _shift_attention_mask(16, 16, 8, 4, x.device, x.dtype)
    with torch.no_grad():
        y = block(x, hw, mask)
        expected = plain(x + block.cross_attn(x, block.cross_modulator.weight), hw, mask)
        assert torch.allclose(y, expected, rtol=0, atol=1e-6)
        assert (y - plain(x, hw, mask)).abs().max() > 1e-3  # the cross branch does change the output
        block.norm_cross.weight.mul_(3).add_(1)
        block.norm_cross.bias.add_(0.5)
        assert torch.equal(block(x, hw, mask), y)  # norm_cross has no effect, as officially


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='torch built without gloo')
@pytest.mark.integration
def test_cross_modulator_trains_under_ddp_without_find_unused_parameters(tmp_path):
    """One-process gloo group: DDP's reducer refuses the second step if a parameter went unused in the first."""
    dist.init_process_group('gloo', store=dist.FileStore(str(tmp_path / 'store'), 1), rank=0, world_size=1)
    try:
        net = torch.nn.parallel.DistributedDataParallel(tiny(**CROSS).train())
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        for seed in range(2):
            adam_l1_step(net, optimizer, images(1, 3, 32, 32, seed=seed), images(1, 3, 32, 32, seed=seed + 10),
                         check_gradients=False)
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    finally:
        dist.destroy_process_group()
