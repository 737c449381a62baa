"""Tiled inference: seams blend, values agree with untiled inference where the receptive field allows."""
import re

import pytest
import torch
from torch import nn

from basicsr.archs import build_network
from basicsr_vitloss.utils.tiling import tiled_forward
from conftest import run, tiny_options


def test_pointwise_network_is_reproduced_exactly():
    net = nn.Conv2d(3, 5, 1)
    x = torch.rand(2, 3, 70, 53)
    torch.testing.assert_close(tiled_forward(net, x, 32, overlap=8), net(x), rtol=0, atol=1e-6)


def test_receptive_field_smaller_than_overlap_agrees_closely():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)).eval()
    x = torch.rand(1, 3, 90, 77)
    full = net(x)
    tiled = tiled_forward(net, x, 40, overlap=16)
    difference = (tiled - full).abs()
    assert difference.max() < 0.05 and difference.mean() < 1e-3
    # away from every seam the values are exactly the untiled ones
    torch.testing.assert_close(tiled[..., :20, :20], full[..., :20, :20], rtol=0, atol=1e-6)


def test_nafnet_tiled_close_to_untiled():
    torch.manual_seed(0)
    net = build_network({'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'middle_blk_num': 1,
                         'enc_blk_nums': [1], 'dec_blk_nums': [1]}).eval()
    for p in net.parameters():
        nn.init.normal_(p, std=0.05)
    x = torch.rand(1, 3, 96, 80)
    with torch.no_grad():
        full = net(x)
    tiled = tiled_forward(net, x, 64, overlap=32)
    assert tiled.shape == full.shape
    assert (tiled - full).abs().mean() < 0.01


def test_upscaling_network_and_small_images():
    net = nn.Sequential(nn.Conv2d(3, 12, 1), nn.PixelShuffle(2))
    x = torch.rand(1, 3, 30, 41)
    torch.testing.assert_close(tiled_forward(net, x, 16, overlap=4), net(x), rtol=0, atol=1e-6)
    small = torch.rand(1, 3, 10, 12)  # smaller than one tile: one pass
    torch.testing.assert_close(tiled_forward(net, small, 64, overlap=8), net(small), rtol=0, atol=1e-6)


@pytest.mark.parametrize('size, overlap', [(16, 16), (0, 0), (16, -1)])
def test_bad_tile_options(size, overlap):
    with pytest.raises(ValueError, match='val: tile: needs size'):
        tiled_forward(nn.Identity(), torch.rand(1, 3, 20, 20), size, overlap)


@pytest.mark.integration
def test_validation_runs_tiled_from_options(tmp_path):
    tiny_options(tmp_path / 'tiled.yml', name='tiled', total_iter=2, **{
        'val:val_freq': 2, 'logger:save_checkpoint_freq': 2, 'val:tile': {'size': 16, 'overlap': 4}})
    run(['python', '-m', 'basicsr.train', '-opt', 'tiled.yml'], cwd=tmp_path)
    log = '\n'.join(p.read_text() for p in (tmp_path / 'experiments' / 'tiled').glob('train_*.log'))
    assert re.search(r'# psnr: \d+\.\d+', log)


@pytest.mark.integration
def test_validation_takes_the_tiled_path(tmp_path):
    # an invalid tile option fails inside tiled_forward: proof that validation went through it
    tiny_options(tmp_path / 'bad.yml', name='bad', total_iter=2, **{
        'val:val_freq': 2, 'logger:save_checkpoint_freq': 2, 'val:tile': {'size': 16, 'overlap': 16}})
    proc = run(['python', '-m', 'basicsr.train', '-opt', 'bad.yml'], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and 'val: tile: needs size >= 1 and 0 <= overlap < size' in proc.stderr


def _tiny(network):
    torch.manual_seed(0)
    net = build_network(network).eval()
    for p in net.parameters():
        nn.init.normal_(p, std=0.1)
    return net


@pytest.mark.parametrize('network', [
    {'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1, 'heads': [1, 1, 1, 1]},
    {'type': 'Uformer', 'embed_dim': 8, 'depths': [1] * 9, 'num_heads': [1] * 9, 'win_size': 4, 'img_size': 64},
], ids=lambda n: n['type'])
def test_tiles_change_image_wide_networks_far_from_every_seam(network):
    """Restormer's channel attention sees the whole input and Uformer's windows move with the tile: a
    tile's centre differs from the whole-image output (why the test options run whole images)."""
    net = _tiny(network)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        full = net(x)
        tiled = tiled_forward(net, x, 96, overlap=64)  # tile centres are >= 16 px from any seam
    centre = (slice(None), slice(None), slice(40, 56), slice(40, 56))
    assert (tiled[centre] - full[centre]).abs().max() > 1e-4
