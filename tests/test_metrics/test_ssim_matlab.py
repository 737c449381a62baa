"""calculate_ssim_matlab: MATLAB's ssim(A, ref) on 8-bit RGB (3-D SSIM over H x W x 3), GoPro / HIDE Table III."""
import cv2
import numpy as np
import pytest
import scipy.ndimage as ndimage
import skimage.data
from skimage.metrics import structural_similarity

from basicsr.metrics import calculate_metric
from basicsr.metrics.psnr_ssim import calculate_ssim
from basicsr.utils.color_util import bgr2ycbcr
from basicsr.utils.registry import METRIC_REGISTRY
from basicsr_vitloss.metrics.ssim_matlab_metric import calculate_ssim_matlab, plane_mixing_matrix

PHOTOS = ('astronaut', 'coffee', 'chelsea')


def _gaussian_11():
    x = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-x**2 / (2 * 1.5**2))
    return g / g.sum()


def _reference_ssim(a, b, peak, explicit_kernel=False):
    """The definition, written independently: float64 volume, Gaussian sigma 1.5 with 11 taps on every
    axis, 'nearest' (= MATLAB's 'replicate') padding, C1 = (0.01 L)^2, C2 = (0.03 L)^2, mean of the map.
    ``explicit_kernel``: one correlation with the full normalized 11x11x11 (or 11x11) kernel."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if explicit_kernel:
        g = _gaussian_11()
        kernel = np.multiply.outer(g, g)
        if a.ndim == 3:
            kernel = np.multiply.outer(kernel, g)
        kernel /= kernel.sum()

        def smooth(v):
            return ndimage.correlate(v, kernel, mode='nearest')
    else:
        def smooth(v):
            return ndimage.gaussian_filter(v, 1.5, mode='nearest', truncate=5 / 1.5)

    c1, c2 = (0.01 * peak)**2, (0.03 * peak)**2
    mu_a, mu_b = smooth(a), smooth(b)
    var_a, var_b = smooth(a * a) - mu_a**2, smooth(b * b) - mu_b**2
    cov = smooth(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def _photo(name):
    """A skimage photograph as BasicSR hands it to metrics: 8-bit BGR."""
    return np.ascontiguousarray(getattr(skimage.data, name)()[..., ::-1])


def _degraded(gt, kind, seed=0):
    if kind == 'blur':
        return cv2.GaussianBlur(gt, (0, 0), 2.0)
    noise = np.random.default_rng(seed).normal(0, 10, gt.shape)
    return np.clip(gt + noise, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize('kind', ['blur', 'noise'])
@pytest.mark.parametrize('name', PHOTOS)
@pytest.mark.integration
def test_matches_independent_3d_reference_on_photographs(name, kind):
    gt = _photo(name)
    restored = _degraded(gt, kind)
    ours = calculate_ssim_matlab(restored, gt, crop_border=0)
    # MATLAB reads the PNGs as RGB: the reference gets RGB, ours BasicSR's BGR (the score does not change)
    reference = _reference_ssim(restored[..., ::-1], gt[..., ::-1], 255.0)
    assert abs(ours - reference) < 1e-6
    assert 0.5 < ours < 1.0


@pytest.mark.parametrize('name', PHOTOS)
def test_matches_explicit_11x11x11_kernel(name):
    gt = _photo(name)[100:164, 120:200]
    restored = _degraded(gt, 'blur')
    reference = _reference_ssim(restored[..., ::-1], gt[..., ::-1], 255.0, explicit_kernel=True)
    assert abs(calculate_ssim_matlab(restored, gt, 0) - reference) < 1e-6


def test_channel_axis_weights_are_the_clamped_gaussian():
    weights = plane_mixing_matrix(3)
    # filter a 3-plane volume whose planes are unit impulses along the channel axis with scipy
    impulses = np.eye(3)[None, None]  # (1, 1, 3 planes, 3 impulses): plane p of impulse q is [p == q]
    filtered = ndimage.correlate1d(impulses, _gaussian_11(), axis=2, mode='nearest')[0, 0]
    np.testing.assert_allclose(weights, filtered, atol=1e-15)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(weights, weights[::-1, ::-1], atol=1e-15)  # centro-symmetric
    np.testing.assert_allclose(weights[1], [0.36699, 0.26601, 0.36699], atol=1e-5)
    assert plane_mixing_matrix(1).tolist() == [[1.0]]


def test_channel_order_and_scale_do_not_change_the_score():
    gt = _photo('coffee')[:160, :200]
    restored = _degraded(gt, 'blur')
    score = calculate_ssim_matlab(restored, gt, 0)
    assert calculate_ssim_matlab(restored[..., ::-1], gt[..., ::-1], 0) == pytest.approx(score, abs=1e-12)
    assert calculate_ssim_matlab(restored / 255.0, gt / 255.0, 0) == pytest.approx(score, abs=1e-9)
    assert calculate_ssim_matlab(restored.astype(np.uint16) * 257, gt.astype(np.uint16) * 257,
                                 0) == pytest.approx(score, abs=1e-9)
    assert calculate_ssim_matlab(restored.astype(np.float64), gt.astype(np.float64), 0,
                                 data_range=255) == pytest.approx(score, abs=1e-12)


def test_identical_images_score_one():
    gt = _photo('chelsea')
    assert calculate_ssim_matlab(gt, gt.copy(), 0) == pytest.approx(1.0, abs=1e-12)
    assert calculate_ssim_matlab(gt, gt, 4, test_y_channel=True) == pytest.approx(1.0, abs=1e-12)
    assert calculate_ssim_matlab(gt / 255.0, gt / 255.0, 0) == pytest.approx(1.0, abs=1e-12)


def test_differs_from_per_channel_2d_ssim_on_a_blurred_image():
    gt = _photo('astronaut')
    restored = _degraded(gt, 'blur')
    ours = calculate_ssim_matlab(restored, gt, 0)
    basicsr_2d = calculate_ssim(restored, gt, crop_border=0)
    skimage_2d = structural_similarity(restored, gt, data_range=255, channel_axis=2)
    # the 3-D window also averages across R, G, B, where a blur changes nothing: a higher number
    assert ours - basicsr_2d > 0.01
    assert ours - skimage_2d > 0.01


def test_crop_border_and_input_order():
    gt = _photo('coffee')[:120, :150]
    restored = _degraded(gt, 'noise')
    cropped = calculate_ssim_matlab(restored, gt, crop_border=4)
    assert cropped == pytest.approx(calculate_ssim_matlab(restored[4:-4, 4:-4], gt[4:-4, 4:-4], 0), abs=1e-12)
    assert cropped != pytest.approx(calculate_ssim_matlab(restored, gt, 0), abs=1e-6)
    chw = calculate_ssim_matlab(restored.transpose(2, 0, 1), gt.transpose(2, 0, 1), 4, input_order='CHW')
    assert chw == pytest.approx(cropped, abs=1e-12)


def test_y_channel_is_2d_ssim_on_luma():
    gt = _photo('chelsea')[:128, :160]
    restored = _degraded(gt, 'blur')
    y_ref, y_out = (bgr2ycbcr(img.astype(np.float32) / 255.0, y_only=True).astype(np.float64) * 255
                    for img in (gt, restored))
    reference = _reference_ssim(y_out[2:-2, 2:-2], y_ref[2:-2, 2:-2], 255.0, explicit_kernel=True)
    ours = calculate_ssim_matlab(restored, gt, crop_border=2, test_y_channel=True)
    assert abs(ours - reference) < 1e-6  # BasicSR's Y is computed in float32; ours in float64
    # a grayscale (2-D) image is MATLAB's 2-D SSIM too
    gray_out, gray_ref = restored[..., 1], gt[..., 1]
    assert calculate_ssim_matlab(gray_out, gray_ref, 0) == pytest.approx(
        _reference_ssim(gray_out, gray_ref, 255.0), abs=1e-9)


def test_bad_input_raises_clear_errors():
    img = np.zeros((32, 40, 3), np.uint8)
    with pytest.raises(ValueError, match=r'\(32, 40, 3\).*\(32, 41, 3\)'):
        calculate_ssim_matlab(img, np.zeros((32, 41, 3), np.uint8), 0)
    with pytest.raises(ValueError, match='input_order'):
        calculate_ssim_matlab(img, img, 0, input_order='WHC')
    with pytest.raises(ValueError, match='data_range=255'):  # floats on [0, 255] would be scored as [0, 1]
        calculate_ssim_matlab(img.astype(np.float32) + 200, img.astype(np.float32), 0)
    with pytest.raises(ValueError, match='crop_border=16'):
        calculate_ssim_matlab(img, img, 16)
    with pytest.raises(ValueError, match='data ranges'):
        calculate_ssim_matlab(img, img.astype(np.uint16), 0)


def test_registered_for_basicsr_validation_on_8_bit_images():
    assert METRIC_REGISTRY.get('calculate_ssim_matlab') is calculate_ssim_matlab
    # MATLAB scores the saved 8-bit PNGs, which is what BasicSR's validation hands its metrics
    assert not getattr(calculate_ssim_matlab, 'takes_float_images', False)
    gt = _photo('astronaut')[:96, :128]
    restored = _degraded(gt, 'blur')
    data = {'img': restored, 'img2': gt}
    score = calculate_metric(data, {'type': 'calculate_ssim_matlab', 'crop_border': 0})
    assert score == pytest.approx(calculate_ssim_matlab(restored, gt, 0), abs=1e-15)
    assert calculate_metric(data, {'type': 'calculate_ssim_matlab', 'crop_border': 0, 'better': 'higher'}) == score
