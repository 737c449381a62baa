"""basicsr-vitloss-infer: outputs equal a direct forward of the network (8 and 16 bits, odd sizes, tiles,
dual-pixel views paired by name or position), checkpoint formats, resume, bad inputs, the console entry."""
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

import basicsr_vitloss  # noqa: F401  (registers the architectures)
from basicsr.archs import build_network
from basicsr_vitloss import infer
from basicsr_vitloss.utils.tiling import tiled_forward
from conftest import REPO, NonFiniteForBright, run

NAFNET = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1],
          'dec_blk_nums': [1, 1]}
DPDNET = {'type': 'DPDNet', 'in_channels': 6, 'out_channels': 3, 'base_channels': 4}
H, W = 37, 53  # odd sizes: the networks pad internally and crop back


def random_state(network_opt, seed):
    """A random state dict (NAFNet's beta / gamma start at zero, which makes its blocks the identity)."""
    gen = torch.Generator().manual_seed(seed)
    state = build_network(dict(network_opt)).state_dict()
    return {k: torch.randn(v.shape, generator=gen) * 0.2 + 0.5 * (k.endswith('.bias'))
            if v.is_floating_point() else v for k, v in state.items()}


def save_model(folder, network_opt, fmt='params_ema', seed=0):
    """(options path, weights path, state dict) of a tiny network in a BasicSR checkpoint format."""
    state = random_state(network_opt, seed)
    wrapped = {'params_ema': {'params_ema': state}, 'params': {'params': state}, 'bare': state}[fmt]
    weights, opt = folder / f'net_{fmt}.pth', folder / f'net_{network_opt["type"]}.yml'
    torch.save(wrapped, weights)
    opt.write_text(yaml.safe_dump({'name': 'tiny', 'network_g': network_opt, 'path': {}}))
    return opt, weights, state


@pytest.fixture(scope='module')
def single(tmp_path_factory):
    """(options, weights, net) of a tiny NAFNet."""
    opt, weights, _ = save_model(tmp_path_factory.mktemp('single'), NAFNET)
    return opt, weights, infer.build_and_load(str(opt), str(weights))


@pytest.fixture(scope='module')
def dual(tmp_path_factory):
    """(options, weights, net) of a tiny dual-pixel DPDNet."""
    opt, weights, _ = save_model(tmp_path_factory.mktemp('dual'), DPDNET, seed=1)
    return opt, weights, infer.build_and_load(str(opt), str(weights))


def write(path, dtype=np.uint8, size=(H, W), seed=0):
    """A random image file; returns the array as stored (BGR)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, np.iinfo(dtype).max, size=(*size, 3), endpoint=True, dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return image


def rgb(path):
    """A file decoded independently of the command: float32 RGB in [0, 1]."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image[..., ::-1].astype(np.float32) / np.iinfo(image.dtype).max


def direct(net, lq, bits=8, tile=None, overlap=0):
    """round(clamp(net(x), 0, 1) * max) as a BGR array: the reference every output must equal."""
    x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        out = tiled_forward(net, x, tile, overlap) if tile else net(x)
    maxval = 2**bits - 1
    return (out[0].clamp(0, 1) * maxval).round().numpy().transpose(1, 2, 0)[..., ::-1].astype(np.int64)


def read_out(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def restore(net, inputs, output, **kwargs):
    return infer.restore_files(net, str(inputs), str(output), progress=False, **kwargs)


def test_8bit_output_equals_direct_forward_at_odd_size(single, tmp_path):
    net = single[2]
    write(tmp_path / 'in' / 'a.png', seed=1)
    write(tmp_path / 'in' / 'b.png', seed=2)
    summary = restore(net, tmp_path / 'in', tmp_path / 'out')
    assert summary.line() == '2 restored, 0 skipped, 0 failed'
    for name in 'ab':
        out = read_out(tmp_path / 'out' / f'{name}.png')
        assert out.dtype == np.uint8 and out.shape == (H, W, 3)
        expected = direct(net, rgb(tmp_path / 'in' / f'{name}.png'))
        assert 0 < expected.mean() < 255  # not saturated: the comparison means something
        np.testing.assert_array_equal(out, expected)


def test_16bit_in_16bit_out_and_bit_depth_override(single, tmp_path):
    net = single[2]
    write(tmp_path / 'in16' / 'deep.png', np.uint16)
    restore(net, tmp_path / 'in16' / 'deep.png', tmp_path / 'out')
    out = read_out(tmp_path / 'out' / 'deep.png')
    assert out.dtype == np.uint16
    assert np.abs(out.astype(np.int64) - direct(net, rgb(tmp_path / 'in16' / 'deep.png'), 16)).max() <= 1
    write(tmp_path / 'in8' / 'flat.png')
    restore(net, tmp_path / 'in8', tmp_path / 'out', bit_depth='16')
    out = read_out(tmp_path / 'out' / 'flat.png')
    assert out.dtype == np.uint16
    assert np.abs(out.astype(np.int64) - direct(net, rgb(tmp_path / 'in8' / 'flat.png'), 16)).max() <= 1


def test_jpeg_and_tiff_inputs(single, tmp_path):
    net = single[2]
    write(tmp_path / 'in' / 'photo.jpg', seed=3)
    write(tmp_path / 'in' / 'scan.tif', np.uint16, seed=4)
    assert restore(net, tmp_path / 'in', tmp_path / 'out').line() == '2 restored, 0 skipped, 0 failed'
    expected = direct(net, rgb(tmp_path / 'in' / 'photo.jpg'))  # the decoded JPEG's pixels
    np.testing.assert_array_equal(read_out(tmp_path / 'out' / 'photo.png'), expected)
    out = read_out(tmp_path / 'out' / 'scan.png')
    assert out.dtype == np.uint16
    assert np.abs(out.astype(np.int64) - direct(net, rgb(tmp_path / 'in' / 'scan.tif'), 16)).max() <= 1


def test_tiles_equal_tiled_forward(single, tmp_path):
    net = single[2]
    write(tmp_path / 'in' / 'big.png', seed=5)
    restore(net, tmp_path / 'in', tmp_path / 'out', tile=24, tile_overlap=4)
    np.testing.assert_array_equal(read_out(tmp_path / 'out' / 'big.png'),
                                  direct(net, rgb(tmp_path / 'in' / 'big.png'), tile=24, overlap=4))


@pytest.mark.parametrize('fmt', ['params_ema', 'params', 'bare'])
def test_checkpoint_formats(tmp_path, fmt):
    opt, weights, state = save_model(tmp_path, NAFNET, fmt, seed=7)
    net = infer.build_and_load(str(opt), str(weights))
    for key, value in state.items():
        assert torch.equal(net.state_dict()[key], value), key


def test_dual_pixel_paired_by_name(dual, tmp_path):
    net = dual[2]
    for index, scene in enumerate(['1P0A1031', '1P0A1038']):  # DPDD names
        write(tmp_path / 'left' / f'{scene}_L.png', np.uint16, seed=index)
        write(tmp_path / 'right' / f'{scene}_R.png', np.uint16, seed=10 + index)
    summary = restore(net, tmp_path / 'left', tmp_path / 'out', inputs_right=str(tmp_path / 'right'))
    assert summary.pairing.startswith('by name') and len(summary.restored) == 2
    for scene in ['1P0A1031', '1P0A1038']:
        lq = np.concatenate([rgb(tmp_path / 'left' / f'{scene}_L.png'), rgb(tmp_path / 'right' / f'{scene}_R.png')], 2)
        out = read_out(tmp_path / 'out' / f'{scene}.png')
        assert out.dtype == np.uint16 and out.shape == (H, W, 3)
        assert np.abs(out.astype(np.int64) - direct(net, lq, 16)).max() <= 1


def test_dual_pixel_paired_by_position(dual, tmp_path):
    net = dual[2]
    for index in range(2):
        write(tmp_path / 'left' / f'left{index}.png', seed=index)
        write(tmp_path / 'right' / f'right{index}.png', seed=10 + index)
    summary = restore(net, tmp_path / 'left', tmp_path / 'out', inputs_right=str(tmp_path / 'right'))
    assert summary.pairing == 'by sorted position'
    for index in range(2):
        lq = np.concatenate([rgb(tmp_path / 'left' / f'left{index}.png'),
                             rgb(tmp_path / 'right' / f'right{index}.png')], 2)
        np.testing.assert_array_equal(read_out(tmp_path / 'out' / f'left{index}.png'), direct(net, lq))


def test_pairing_and_channel_errors(single, dual, tmp_path):
    write(tmp_path / 'left' / 'a_L.png')
    write(tmp_path / 'left' / 'b_L.png')
    write(tmp_path / 'right' / 'a_R.png')
    with pytest.raises(infer.UsageError, match='--input-right'):
        restore(dual[2], tmp_path / 'left', tmp_path / 'out')
    with pytest.raises(infer.UsageError, match='single images'):
        restore(single[2], tmp_path / 'left', tmp_path / 'out', inputs_right=str(tmp_path / 'right'))
    with pytest.raises(infer.UsageError, match='left only: b'):
        restore(dual[2], tmp_path / 'left', tmp_path / 'out', inputs_right=str(tmp_path / 'right'))
    write(tmp_path / 'same' / 'x.png')
    write(tmp_path / 'same' / 'x.jpg')
    with pytest.raises(infer.UsageError, match='both be written as x.png'):
        restore(single[2], tmp_path / 'same', tmp_path / 'out')


def test_view_size_mismatch_fails_that_pair_only(dual, tmp_path, capsys):
    write(tmp_path / 'left' / 'a_L.png')
    write(tmp_path / 'right' / 'a_R.png', size=(H, W + 1))
    write(tmp_path / 'left' / 'b_L.png')
    write(tmp_path / 'right' / 'b_R.png')
    code = infer.main(['--opt', str(dual[0]), '--weights', str(dual[1]), '--input', str(tmp_path / 'left'),
                       '--input-right', str(tmp_path / 'right'), '--output', str(tmp_path / 'out'), '--no-progress'])
    assert code == 1
    err = capsys.readouterr().err
    assert 'a_R.png' in err and 'same size' in err
    assert os.listdir(tmp_path / 'out') == ['b.png']


def test_corrupt_file_among_good_ones(single, tmp_path, capsys):
    write(tmp_path / 'in' / 'a.png')
    (tmp_path / 'in' / 'broken.png').write_bytes(b'\x89PNG not really')
    assert cv2.imwrite(str(tmp_path / 'in' / 'float.tif'), np.zeros((H, W, 3), np.float32))
    write(tmp_path / 'in' / 'z.png')
    code = infer.main(['--opt', str(single[0]), '--weights', str(single[1]), '--input', str(tmp_path / 'in'),
                       '--output', str(tmp_path / 'out'), '--no-progress', '--device', 'cpu'])
    captured = capsys.readouterr()
    assert code == 1
    assert 'broken.png' in captured.err and 'cannot decode' in captured.err
    assert 'float.tif: float32 pixels; expected an 8- or 16-bit image' in captured.err
    assert '2 restored, 0 skipped, 2 failed' in captured.out
    assert {'a.png', 'z.png'} <= set(os.listdir(tmp_path / 'out'))
    assert 'broken.png' not in os.listdir(tmp_path / 'out')


def test_resume_skips_existing_outputs_unless_overwrite(single, tmp_path):
    net = single[2]
    write(tmp_path / 'in' / 'a.png', seed=1)
    write(tmp_path / 'in' / 'b.png', seed=2)
    out = tmp_path / 'out'
    out.mkdir()
    placeholder = np.zeros((H, W, 3), np.uint8)
    cv2.imwrite(str(out / 'a.png'), placeholder)  # a result from an earlier run
    summary = restore(net, tmp_path / 'in', out)
    assert summary.line() == '1 restored, 1 skipped, 0 failed'
    np.testing.assert_array_equal(read_out(out / 'a.png'), placeholder)
    summary = restore(net, tmp_path / 'in', out, overwrite=True)
    assert summary.line() == '2 restored, 0 skipped, 0 failed'
    np.testing.assert_array_equal(read_out(out / 'a.png'), direct(net, rgb(tmp_path / 'in' / 'a.png')))
    assert sorted(os.listdir(out)) == ['a.png', 'b.png']  # no temporary files left behind


def test_bf16_autocast_is_close(single, tmp_path):
    net = single[2]
    write(tmp_path / 'in' / 'a.png')
    restore(net, tmp_path / 'in', tmp_path / 'out', mixed_precision='bf16')
    diff = read_out(tmp_path / 'out' / 'a.png').astype(np.int64) - direct(net, rgb(tmp_path / 'in' / 'a.png'))
    assert np.abs(diff).mean() < 4


def test_usage_errors_exit_2(single, tmp_path, capsys):
    write(tmp_path / 'in' / 'a.png')
    base = ['--opt', str(single[0]), '--input', str(tmp_path / 'in'), '--output', str(tmp_path / 'out')]
    assert infer.main([*base, '--weights', str(tmp_path / 'missing.pth')]) == 2
    assert 'missing.pth does not exist' in capsys.readouterr().err
    assert infer.main([*base, '--weights', str(single[1]), '--input-right', str(tmp_path / 'in')]) == 2
    assert 'single images' in capsys.readouterr().err
    (tmp_path / 'bad.yml').write_text('name: no network here\n')
    assert infer.main(['--opt', str(tmp_path / 'bad.yml'), *base[2:], '--weights', str(single[1])]) == 2
    assert 'bad.yml' in capsys.readouterr().err and not (tmp_path / 'out').exists()


@pytest.mark.integration
def test_console_entry_in_a_subprocess(single, tmp_path):
    write(tmp_path / 'in' / 'a.png', seed=1)
    args = ['python', '-m', 'basicsr_vitloss.infer', '--opt', single[0], '--weights', single[1],
            '--input', tmp_path / 'in', '--output', tmp_path / 'out', '--device', 'cpu']
    proc = run(args, cwd=REPO, timeout=120)
    assert '1 restored, 0 skipped, 0 failed' in proc.stdout
    assert 'Restoring' in proc.stderr  # the progress bar goes to stderr
    expected = direct(single[2], rgb(tmp_path / 'in' / 'a.png'))
    np.testing.assert_array_equal(read_out(tmp_path / 'out' / 'a.png'), expected)




@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_output_fails_that_image_only(tmp_path, value):
    """A NaN / inf anywhere in the output is a failed image (named, counted, no file), not black pixels."""
    (tmp_path / 'in').mkdir()
    assert cv2.imwrite(str(tmp_path / 'in' / 'dark.png'), np.full((H, W, 3), 40, np.uint8))
    assert cv2.imwrite(str(tmp_path / 'in' / 'bright.png'), np.full((H, W, 3), 200, np.uint8))
    messages = []
    summary = infer.restore_files(NonFiniteForBright(value).eval(), str(tmp_path / 'in'), str(tmp_path / 'out'),
                                  progress=False, log=messages.append)
    assert summary.line() == '1 restored, 0 skipped, 1 failed'
    [(path, message)] = summary.failed
    assert path.endswith('bright.png') and 'bright.png' in message
    assert ('NaN' if value != value else 'inf') in message and 'not finite' in message
    assert any('bright.png' in m for m in messages)
    assert os.listdir(tmp_path / 'out') == ['dark.png']  # nothing written for it, no temporary file left
    np.testing.assert_array_equal(read_out(tmp_path / 'out' / 'dark.png'), np.full((H, W, 3), 40, np.uint8))


def test_diverged_weights_exit_1_naming_each_image(tmp_path, capsys):
    """A checkpoint whose weights hold NaN (a diverged run): every image fails, the command exits 1 and names them."""
    opt, _, state = save_model(tmp_path, NAFNET)
    state = {k: torch.full_like(v, float('nan')) if k == 'intro.weight' else v for k, v in state.items()}
    torch.save({'params_ema': state}, tmp_path / 'diverged.pth')
    write(tmp_path / 'in' / 'a.png', seed=1)
    write(tmp_path / 'in' / 'b.png', seed=2)
    code = infer.main(['--opt', str(opt), '--weights', str(tmp_path / 'diverged.pth'), '--input',
                       str(tmp_path / 'in'), '--output', str(tmp_path / 'out'), '--no-progress', '--device', 'cpu'])
    captured = capsys.readouterr()
    assert code == 1
    assert '0 restored, 0 skipped, 2 failed' in captured.out
    assert 'a.png' in captured.err and 'b.png' in captured.err and 'NaN' in captured.err
    assert os.listdir(tmp_path / 'out') == []
