"""NAFNet / NAFNetLocal: official parameter count and state_dict keys, any input size, dual-pixel
output, local pooling, registry build and a short CPU training run."""
import pytest
import torch
from torch.nn import functional as F

import basicsr_vitloss  # noqa: F401 (registers the architectures)
from basicsr_vitloss.archs.nafnet_arch import LocalAvgPool2d, NAFNet, NAFNetLocal
from conftest import adam_l1_step

# official GoPro / REDS deblurring config (NAFNet-GoPro-width64.yml)
GOPRO_W64 = dict(img_channel=3, width=64, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])
TINY = dict(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1], dec_blk_nums=[1, 1, 1])


def randomize_(net, seed=0, scale=0.1):
    """Random weights everywhere, beta/gamma included (they start at zero, making every block identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return net


@pytest.fixture(scope='module')
def gopro_state_dict():
    with torch.device('meta'):  # shapes only: no memory, no init time
        net = NAFNetLocal(**GOPRO_W64)
    return net.state_dict()


def test_gopro_width64_parameter_count_matches_official(gopro_state_dict):
    # measured on megvii-research/NAFNet's NAFNetLocal with the same config
    assert sum(v.numel() for v in gopro_state_dict.values()) == 67_888_835
    with torch.device('meta'):
        assert sum(p.numel() for p in NAFNet(**GOPRO_W64).parameters()) == 67_888_835


def test_gopro_width64_state_dict_keys_match_official(gopro_state_dict):
    # names and shapes checked against the official code's state_dict
    expected = {
        'intro.weight': (64, 3, 3, 3),
        'intro.bias': (64, ),
        'encoders.0.0.conv1.weight': (128, 64, 1, 1),
        'encoders.0.0.conv2.weight': (128, 1, 3, 3),
        'encoders.0.0.conv3.weight': (64, 64, 1, 1),
        'encoders.0.0.norm1.weight': (64, ),
        'encoders.0.0.norm2.bias': (64, ),
        'encoders.0.0.sca.1.weight': (64, 64, 1, 1),
        'encoders.0.0.beta': (1, 64, 1, 1),
        'encoders.0.0.gamma': (1, 64, 1, 1),
        'encoders.3.27.conv2.weight': (1024, 1, 3, 3),
        'downs.0.weight': (128, 64, 2, 2),
        'downs.3.bias': (1024, ),
        'middle_blks.0.sca.1.weight': (1024, 1024, 1, 1),
        'middle_blks.0.conv4.weight': (2048, 1024, 1, 1),
        'middle_blks.0.conv5.weight': (1024, 1024, 1, 1),
        'ups.0.0.weight': (2048, 1024, 1, 1),
        'decoders.3.0.gamma': (1, 64, 1, 1),
        'ending.weight': (3, 64, 3, 3),
        'ending.bias': (3, ),
    }
    for key, shape in expected.items():
        assert tuple(gopro_state_dict[key].shape) == shape, key
    assert 'ups.0.0.bias' not in gopro_state_dict  # the up-projection has no bias
    assert 'encoders.3.28.conv1.weight' not in gopro_state_dict
    assert len(gopro_state_dict) == 664
    assert list(gopro_state_dict)[:3] == ['intro.weight', 'intro.bias', 'ending.weight']  # official order


def test_odd_sizes_are_padded_and_cropped_back():
    net = randomize_(NAFNet(**{**TINY, 'enc_blk_nums': [1, 1, 1, 1], 'dec_blk_nums': [1, 1, 1, 1]})).eval()
    assert net.padder_size == 16
    x = torch.rand(1, 3, 100, 75)
    with torch.no_grad():
        out = net(x)
        padded = net(F.pad(x, (0, 5, 0, 12)))  # 112 x 80, what the network pads to
    assert out.shape == x.shape
    assert torch.allclose(out, padded[..., :100, :75], atol=1e-5)


def test_dual_pixel_six_to_three_channels():
    net = NAFNet(**{**TINY, 'img_channel': 6}, out_channels=3)
    assert tuple(net.ending.weight.shape) == (3, 8, 3, 3)
    x = torch.rand(1, 6, 64, 48)
    with torch.no_grad():
        assert net(x).shape == (1, 3, 64, 48)
        # the global residual is the mean of the left and right views
        net.ending.weight.zero_()
        net.ending.bias.zero_()
        assert torch.allclose(net(x), (x[:, :3] + x[:, 3:]) / 2)
    assert NAFNet(**TINY).ending.out_channels == 3  # default: as many as the input (official)
    with pytest.raises(ValueError, match='multiple of out_channels'):
        NAFNet(**{**TINY, 'img_channel': 4}, out_channels=3)


def test_local_pool_matches_a_brute_force_window_mean():
    x = torch.rand(2, 4, 21, 17)
    out = LocalAvgPool2d((6, 5))(x)
    reference = F.pad(F.avg_pool2d(x, (6, 5), stride=1), (2, 2, 2, 3), mode='replicate')
    assert out.shape == x.shape
    assert torch.allclose(out, reference, atol=1e-5)
    assert LocalAvgPool2d((21, 17))(x).shape == (2, 4, 1, 1)  # window covers the map: global pool


def test_nafnet_local_differs_from_nafnet_only_through_pooling():
    net = randomize_(NAFNet(**TINY), scale=0.2).eval()  # large enough for the attention to matter
    local = NAFNetLocal(**TINY, train_size=(1, 3, 32, 32)).eval()
    local.load_state_dict(net.state_dict(), strict=True)
    net.load_state_dict(local.state_dict(), strict=True)
    kernels = sorted({block.sca[0].kernel_size for _, block in local.blocks_with_level()})
    assert kernels == [(6, 6), (12, 12), (24, 24), (48, 48)]  # 1.5 x the training feature size per level

    big = torch.rand(1, 3, 96, 80)
    big[..., 40:] += 2  # uneven statistics: local and global means differ
    small = torch.rand(1, 3, 40, 36)  # within base_size (48 x 48): every window covers the map
    with torch.no_grad():
        out_local, out_global = local(big), net(big)
        assert out_local.shape == big.shape
        assert (out_local - out_global).abs().max() > 1e-3
        assert torch.allclose(local(small), net(small), atol=1e-6)
        for _, block in local.blocks_with_level():  # back to global pooling: NAFNet again
            block.sca[0] = torch.nn.AdaptiveAvgPool2d(1)
        assert torch.allclose(local(big), out_global, atol=1e-6)


def test_fast_local_pool_runs():
    local = NAFNetLocal(**TINY, train_size=(1, 3, 32, 32), fast_imp=True).eval()
    with torch.no_grad():
        assert local(torch.rand(1, 3, 96, 80)).shape == (1, 3, 96, 80)


def test_build_network_from_options():
    from basicsr.archs import build_network
    net = build_network({'type': 'NAFNet', **TINY})
    assert type(net) is NAFNet
    local = build_network({'type': 'NAFNetLocal', **TINY, 'train_size': [1, 3, 32, 32]})
    assert type(local) is NAFNetLocal
    dual = build_network({'type': 'NAFNet', **TINY, 'img_channel': 6, 'out_channels': 3})
    assert dual.ending.out_channels == 3


def test_tiny_nafnet_trains_two_adam_steps():
    torch.manual_seed(0)
    net = NAFNet(**TINY).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    lq, gt = torch.rand(2, 3, 32, 24), torch.rand(2, 3, 32, 24)
    losses = []
    for _ in range(2):
        losses.append(adam_l1_step(net, optimizer, lq, gt).item())
    # beta/gamma got gradients in step 1 and moved, so the blocks' convs get gradients in step 2
    assert net.encoders[0][0].beta.abs().sum() > 0
    assert net.encoders[0][0].conv1.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(torch.tensor(losses)))
