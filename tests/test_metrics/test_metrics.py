"""The paper's metrics (PSNR, SSIM, MAE on floats; LPIPS; NIQE) and float-precision validation."""
import math
import os

import cv2
import numpy as np
import pytest
import skimage.data
import torch
import torchvision

from basicsr.metrics import calculate_metric
from basicsr.metrics.niqe import calculate_niqe
from basicsr.metrics.psnr_ssim import calculate_psnr
from basicsr_vitloss.metrics.fidelity_metric import calculate_mae, calculate_psnr_float, calculate_ssim_float
from basicsr_vitloss.metrics.lpips_metric import backbone_url, calculate_lpips, lpips_network
from basicsr_vitloss.utils.float_validation import metric_takes_float, needs_float_validation

ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'


@pytest.fixture(scope='module')
def alexnet_dir(tmp_path_factory):
    """Random AlexNet weights saved as torchvision's release file, so LPIPS's loading path runs."""
    folder = tmp_path_factory.mktemp('weights')
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), folder / ALEXNET_FILE)
    return str(folder)


def _photo(size=96):
    return cv2.cvtColor(skimage.data.astronaut()[100:100 + size, 180:180 + size], cv2.COLOR_RGB2BGR)


def test_psnr_of_a_known_mse():
    rng = np.random.default_rng(0)
    img = rng.random((32, 40, 3))
    sign = np.where(rng.random(img.shape) < 0.5, -1.0, 1.0)
    noisy = img + 0.01 * sign  # every pixel off by exactly 0.01: MSE 1e-4 -> 40 dB
    assert calculate_psnr_float(img, noisy) == pytest.approx(40.0, abs=1e-9)
    assert calculate_psnr_float(img, img) == math.inf
    # 8-bit and 16-bit inputs are scaled by their own peak
    img8 = (img * 255).round().astype(np.uint8)
    off8 = np.clip(img8.astype(int) + 3, 0, 255).astype(np.uint8)
    mse8 = np.mean(((img8.astype(float) - off8) / 255.0)**2)
    assert calculate_psnr_float(img8, off8) == pytest.approx(10 * math.log10(1 / mse8))
    assert calculate_psnr_float(img8, off8) == pytest.approx(calculate_psnr(img8, off8, crop_border=0))


def test_ssim_of_identical_images_is_one_and_drops_with_blur():
    img = _photo().astype(np.float64) / 255
    assert calculate_ssim_float(img, img) == pytest.approx(1.0)
    assert calculate_ssim_float(img, cv2.GaussianBlur(img, (0, 0), 2)) < 0.9
    # scikit-image's definition: data range 1, channel-averaged
    from skimage.metrics import structural_similarity
    blurred = cv2.GaussianBlur(img, (0, 0), 1)
    expected = np.mean([structural_similarity(img[..., c], blurred[..., c], data_range=1.0) for c in range(3)])
    assert calculate_ssim_float(img, blurred) == pytest.approx(expected, abs=1e-12)


def test_mae_of_a_known_offset_in_every_bit_depth():
    img = np.full((8, 8, 3), 0.25)
    assert calculate_mae(img, img + 0.125) == pytest.approx(0.125)
    img16 = np.full((8, 8, 3), 1000, np.uint16)
    assert calculate_mae(img16, img16 + 6553) == pytest.approx(6553 / 65535)
    assert calculate_mae(np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 51, np.uint8)) == pytest.approx(0.2)


def test_crop_border_and_y_channel():
    img = np.zeros((10, 10, 3))
    other = img.copy()
    other[0] = 1.0  # only the first row differs
    assert calculate_mae(img, other, crop_border=1) == 0
    assert calculate_mae(img, other) == pytest.approx(0.1)
    gray = np.full((6, 6, 3), 0.5)
    assert calculate_mae(gray, gray + 0.1, test_y_channel=True) == pytest.approx(0.1 * 219 / 255, rel=1e-3)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r'shapes differ: img \(4, 4, 3\), img2 \(4, 5, 3\)'):
        calculate_mae(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match='unsupported image type int64'):
        calculate_mae(np.zeros((4, 4, 3), np.int64), np.zeros((4, 4, 3), np.int64))


def test_8_bit_rounding_changes_psnr_measurably_on_a_16_bit_image():
    """Why DPDD validation computes on floats: a good restoration of a 16-bit target loses
    tenths of a dB when both are rounded to 8 bits first, as BasicSR's validation does."""
    rng = np.random.default_rng(1)
    gt16 = (cv2.resize(_photo(64), (128, 128)).astype(np.float64) * 257 + rng.integers(0, 257, (128, 128, 3)))
    gt16 = gt16.astype(np.uint16)
    gt = gt16 / 65535.0
    restored = np.clip(gt + rng.normal(0, 0.004, gt.shape), 0, 1)  # about 48 dB
    exact = calculate_psnr_float(restored, gt16)
    eight_bit = calculate_psnr((restored * 255).round(), (gt * 255).round(), crop_border=0)
    assert exact == pytest.approx(10 * math.log10(1 / np.mean((restored - gt)**2)))
    assert abs(exact - eight_bit) > 0.3, (exact, eight_bit)


@pytest.mark.integration
def test_lpips_is_zero_for_identical_images_and_grows_with_distortion(alexnet_dir):
    img = _photo(64)
    assert calculate_lpips(img, img, weights_dir=alexnet_dir) == pytest.approx(0.0, abs=1e-7)
    distances = [calculate_lpips(img, cv2.GaussianBlur(img, (0, 0), sigma), weights_dir=alexnet_dir)
                 for sigma in (0.7, 1.5, 3.0)]
    assert 0 < distances[0] < distances[1] < distances[2]
    # 16-bit and float inputs give the value of the same picture
    img16 = img.astype(np.uint16) * 257
    blurred = cv2.GaussianBlur(img, (0, 0), 1.5)
    assert calculate_lpips(img16, blurred.astype(np.float64) / 255, weights_dir=alexnet_dir) == pytest.approx(
        distances[1], abs=1e-6)


@pytest.mark.integration
def test_lpips_network_is_built_once_frozen_and_in_eval(alexnet_dir):
    img = _photo(64)
    lpips_network.cache_clear()
    for _ in range(4):
        calculate_lpips(img, img[::-1].copy(), weights_dir=alexnet_dir)
    assert lpips_network.cache_info().misses == 1 and lpips_network.cache_info().hits == 3
    model = lpips_network('alex', '0.1', alexnet_dir)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    # the backbone holds the file's weights (renamed from torchvision's features.<i>.*)
    state = torch.load(os.path.join(alexnet_dir, ALEXNET_FILE), weights_only=True)
    torch.testing.assert_close(model.net.slice1[0].weight.cpu(), state['features.0.weight'])
    torch.testing.assert_close(getattr(model.net.slice5, '10').bias.cpu(), state['features.10.bias'])


def test_lpips_offline_error_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.delenv('BASICSR_VITLOSS_WEIGHTS', raising=False)
    lpips_network.cache_clear()
    with pytest.raises(FileNotFoundError) as error:
        calculate_lpips(_photo(32), _photo(32), weights_dir=str(tmp_path / 'mine'))
    message = str(error.value)
    assert ALEXNET_FILE in message and str(tmp_path / 'mine') in message
    assert str(tmp_path / 'torch' / 'hub' / 'checkpoints') in message and backbone_url('alex') in message


def test_lpips_refuses_a_file_that_is_not_the_backbone(tmp_path):
    torch.save({'something': torch.zeros(1)}, tmp_path / ALEXNET_FILE)
    lpips_network.cache_clear()
    with pytest.raises(ValueError, match='not torchvision weights of this LPIPS backbone'):
        calculate_lpips(_photo(32), _photo(32), weights_dir=str(tmp_path))


def test_niqe_from_basicsr_works_and_rises_with_blur():
    img = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    sharp = calculate_niqe(img, crop_border=0)
    blurred = calculate_niqe(cv2.GaussianBlur(img, (0, 0), 2), crop_border=0)
    assert np.isfinite(sharp) and np.isfinite(blurred) and blurred > sharp + 1


def test_niqe_convert_to_gray_from_the_yaml_metric_options():
    """A test YAML's ``niqe: {type: calculate_niqe, crop_border: 0, convert_to: gray}`` reaches BasicSR's NIQE
    (through the plugin's small-image wrapper): grayscale instead of the default Y, another value."""
    img = cv2.cvtColor(skimage.data.astronaut()[:192, :288], cv2.COLOR_RGB2BGR)
    options = {'type': 'calculate_niqe', 'crop_border': 0, 'better': 'lower'}
    y = calculate_metric({'img': img}, options)
    gray = calculate_metric({'img': img}, dict(options, convert_to='gray'))
    assert y == pytest.approx(calculate_niqe(img, 0, convert_to='y'), abs=1e-12)
    assert gray == pytest.approx(calculate_niqe(img, 0, convert_to='gray'), abs=1e-12)
    assert abs(gray - y) > 1e-3


def test_metrics_are_registered_and_marked():
    data = {'img': _photo(32), 'img2': _photo(32)}
    assert calculate_metric(data, {'type': 'calculate_mae'}) == 0
    for name in ('calculate_psnr_float', 'calculate_ssim_float', 'calculate_mae', 'calculate_lpips'):
        assert metric_takes_float(name)
    for name in ('calculate_psnr', 'calculate_ssim', 'calculate_niqe'):
        assert not metric_takes_float(name)
    assert needs_float_validation({'metrics': {'p': {'type': 'calculate_psnr_float'}}})
    assert needs_float_validation({'save_16bit': True})
    assert not needs_float_validation({'metrics': {'p': {'type': 'calculate_psnr'}}})
