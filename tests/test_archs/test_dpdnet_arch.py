"""DPDNet: published parameter count, layer sizes, any input size, registry build, a short CPU
training run and dropout behaviour."""
import pytest
import torch
from torch.nn import functional as F

import basicsr_vitloss  # noqa: F401 (registers the architectures)
from basicsr.archs import build_network
from basicsr_vitloss.archs.dpdnet_arch import DPDNet, dpdnet_num_params
from conftest import adam_l1_step

# Published Keras model (Abdullah-Abuolaim/defocus-deblurring-dual-pixel, DPDNet/model.py, 6 -> 3
# channels, 64 first-level filters), computed by hand from its layer list, k*k*c_in*c_out + c_out per
# Conv2D (no other layer has parameters):
PUBLISHED_LAYERS = [
    (3, 6, 64), (3, 64, 64),  # conv1
    (3, 64, 128), (3, 128, 128),  # conv2
    (3, 128, 256), (3, 256, 256),  # conv3
    (3, 256, 512), (3, 512, 512),  # conv4 (+ drop4)
    (3, 512, 1024), (3, 1024, 1024),  # conv5 (+ drop5)
    (2, 1024, 512), (3, 1024, 512), (3, 512, 512),  # up6, conv6
    (2, 512, 256), (3, 512, 256), (3, 256, 256),  # up7, conv7
    (2, 256, 128), (3, 256, 128), (3, 128, 128),  # up8, conv8
    (2, 128, 64), (3, 128, 64), (3, 64, 64),  # up9, conv9
    (3, 64, 3),  # conv9 (3 filters)
    (1, 3, 3),  # conv10 (sigmoid)
]
PUBLISHED_PARAMS = 31_035_151


def test_parameter_count_matches_published_keras_model():
    assert sum(k * k * c_in * c_out + c_out for k, c_in, c_out in PUBLISHED_LAYERS) == PUBLISHED_PARAMS
    # same layer list with a 1-channel input, conv9 of 2 and conv10 of 1 filters: the Keras U-Net
    # (zhixuhao/unet) model.py follows, whose model.summary() reports 31,031,685
    assert PUBLISHED_PARAMS - 5 * 64 * 9 - (64 * 9 + 1) - 9 == 31_031_685
    with torch.device('meta'):  # shapes only
        net = DPDNet()
        single = DPDNet(in_channels=3)
    assert sum(p.numel() for p in net.parameters()) == PUBLISHED_PARAMS
    assert dpdnet_num_params() == PUBLISHED_PARAMS
    assert sum(p.numel() for p in single.parameters()) == PUBLISHED_PARAMS - 3 * 64 * 9
    small = DPDNet(base_channels=8)
    assert sum(p.numel() for p in small.parameters()) == dpdnet_num_params(base_channels=8)


def test_layer_sizes_and_defaults_follow_the_published_model():
    with torch.device('meta'):
        net = DPDNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    got = [(m.kernel_size[0], m.in_channels, m.out_channels) for m in convs]
    assert sorted(got) == sorted(PUBLISHED_LAYERS)
    assert net.drop_enc.p == 0.4 and net.drop_mid.p == 0.4
    assert net.output_activation == 'sigmoid'
    assert net.pad_multiple == 16


def test_up_conv_is_nearest_upsampling_and_keras_same_padding():
    net = DPDNet(base_channels=8).eval()
    up = net.ups[-1]
    x = torch.rand(1, 16, 5, 7)
    with torch.no_grad():
        ref = F.relu(F.conv2d(F.pad(x.repeat_interleave(2, 2).repeat_interleave(2, 3), (0, 1, 0, 1)),
                              up.conv.weight, up.conv.bias))
        assert torch.equal(up(x), ref)


@pytest.mark.integration
def test_odd_sizes_return_input_size():
    net = DPDNet().eval()
    x = torch.rand(1, 6, 136, 200)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (1, 3, 136, 200)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1

    net3 = DPDNet(in_channels=3).eval()
    x3 = torch.rand(1, 3, 100, 75)
    with torch.no_grad():
        out3 = net3(x3)
        padded = net3(F.pad(x3, (0, 5, 0, 12), mode='reflect'))  # 112 x 80: what the network pads to
    assert out3.shape == (1, 3, 100, 75)
    assert torch.allclose(out3, padded[..., :100, :75], atol=1e-5)

    tiny = DPDNet(base_channels=4).eval()
    with torch.no_grad():  # too short for reflection: replicate padding
        assert tiny(torch.rand(1, 6, 5, 9)).shape == (1, 3, 5, 9)
        assert DPDNet(base_channels=4, output_activation=None).eval()(torch.rand(1, 6, 16, 16)).shape == (1, 3, 16, 16)


def test_build_network_from_registry():
    net = build_network({'type': 'DPDNet', 'in_channels': 6, 'out_channels': 3, 'base_channels': 8,
                         'dropout_rate': 0.4})
    assert isinstance(net, DPDNet)
    with torch.no_grad():
        assert net.eval()(torch.rand(2, 6, 40, 24)).shape == (2, 3, 40, 24)


@pytest.mark.integration
def test_small_config_trains():
    torch.manual_seed(0)
    net = DPDNet(base_channels=8)
    gen = torch.Generator().manual_seed(1)
    sharp = F.interpolate(torch.rand(2, 3, 8, 8, generator=gen), size=(32, 32), mode='bilinear')
    blur = F.avg_pool2d(sharp, 5, 1, 2, count_include_pad=False)
    x = torch.cat([torch.roll(blur, 1, -1), torch.roll(blur, -1, -1)], 1)  # toy left/right views
    target = 0.2 + 0.5 * sharp
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def eval_loss():
        net.eval()
        with torch.no_grad():
            return F.l1_loss(net(x), target).item()

    start = eval_loss()
    net.train()
    for step in range(10):
        adam_l1_step(net, optimizer, x, target, check_gradients=step < 2)
        if step < 2:
            assert net.encoders[0][0].weight.grad.abs().sum() > 0  # reaches the first layer
    end = eval_loss()
    assert end < start * 0.97, (start, end)  # measured: 0.0909 -> 0.0875


def test_dropout_active_in_train_only():
    torch.manual_seed(0)
    net = DPDNet(base_channels=8)
    x = torch.rand(1, 6, 32, 48)
    with torch.no_grad():
        net.eval()
        assert torch.equal(net(x), net(x))
        net.train()
        assert not torch.equal(net(x), net(x))
        net_no_drop = DPDNet(base_channels=8, dropout_rate=0.0).train()
        assert torch.equal(net_no_drop(x), net_no_drop(x))
