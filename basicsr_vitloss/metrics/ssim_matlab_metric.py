"""SSIM as MATLAB's ``ssim(A, ref)`` computes it on an RGB image: the GoPro / HIDE numbers of Table III.

The paper's GoPro / HIDE scores come from MPRNet's / Restormer's ``evaluate_GOPRO_HIDE.m``, which
reads the restored and the ground-truth PNGs with ``imread`` (8-bit RGB, H x W x 3) and calls
``ssim(input, gt)``. MATLAB treats an H x W x 3 array as a *volume* (its default 'SSS' data format),
not as three channels, so the number is a 3-D SSIM:

- local statistics weighted by an 11x11x11 Gaussian (sigma 1.5; MATLAB's filter size
  2*ceil(3*sigma)+1), 'replicate' padding on every axis, the channel axis included;
- C1 = (0.01 L)^2, C2 = (0.03 L)^2, L the dynamic range of the class (255 for uint8), exponents 1;
- the score is the mean of the SSIM map over all H x W x 3 voxels.

It is a different number from BasicSR's ``calculate_ssim`` (2-D SSIM per channel, averaged, borders
cut to the valid part of the window) and from scikit-image's: on blurred images both read lower by
about 0.01-0.1. NAFNet's ``calculate_ssim(..., ssim3d=True)`` re-implements the same definition.

**The channel axis.** With 3 planes, an 11-tap kernel and replicate padding, every tap that falls
outside the volume lands on the nearest end plane, so along the channel axis the filter is an exact
3x3 mixing matrix ``W[c, p]`` (output plane c, input plane p): with ``g`` the normalized 1-D Gaussian
taps g[-5..5],

    W[0] = [g[-5] + ... + g[0],  g[1],  g[2] + ... + g[5]]  = [0.63301, 0.21301, 0.15399]
    W[1] = [g[-5] + ... + g[-1], g[0],  g[1] + ... + g[5]]  = [0.36699, 0.26601, 0.36699]
    W[2] = W[0] reversed                                    = [0.15399, 0.21301, 0.63301]

The implementation filters each plane in H and W with the separable Gaussian (OpenCV,
BORDER_REPLICATE, float64) and then mixes the planes with ``W``; this equals the 11x11x11
convolution exactly (linear, separable), at a fraction of its cost. The same rule gives the matrix
for any number of planes; one plane (a grayscale image, or ``test_y_channel``) gives W = [[1]],
i.e. MATLAB's 2-D SSIM.

**BGR or RGB does not matter.** ``W`` is centro-symmetric (``W[2 - c, 2 - p] == W[c, p]``), so
reversing the planes (BGR <-> RGB) reverses the SSIM map along the channel axis and leaves its mean
unchanged: BasicSR's BGR images give MATLAB's number on the RGB PNG (checked in the tests).

**Data range** follows the dtype, as MATLAB's ``diff(getrangefromclass(A))``: uint8 -> 255,
uint16 -> 65535, float -> 1 (float images are taken as [0, 1]; a float image with values above 1.5 is
almost certainly on [0, 255] and raises a ValueError). ``data_range`` overrides it. SSIM with
C1, C2 scaled by L^2 is scale invariant, so an 8-bit image and the same image divided by 255 as
floats give the same score (to rounding).

**Why it is not a float metric** (not marked ``takes_float_images``): MATLAB scores the 8-bit PNGs
that the test run saves, and BasicSR's validation hands its metrics exactly those 8-bit images
(``tensor2img`` rounds as ``imwrite`` does). GoPro and HIDE are 8-bit datasets, so nothing is lost;
passing the unrounded network output would give a number MATLAB never computed.

**Precision.** Computed in float64: it matches an independent float64 Octave transcription of the
definition to 1e-12 and NAFNet's ``ssim3d`` run in float64 to 1.2e-7 (its kernel is stored in float32).
MATLAB documents single-precision arithmetic for non-double inputs (for ``multissim3``; likely ``ssim``
too); a float32 computation of this definition (NAFNet's, as released) differs by up to 5e-5 on
8-bit photographs. MATLAB itself could not be run here; if it rounds in single precision, its score
may differ from this one in the 5th decimal (at most one unit in the 4th after rounding).
"""
import math

import cv2
import numpy as np

from basicsr.metrics.metric_util import reorder_image
from basicsr.utils.registry import METRIC_REGISTRY

_SIGMA = 1.5
_RADIUS = int(math.ceil(3 * _SIGMA))  # MATLAB: FilterSize = 2 * ceil(3 * sigma) + 1 = 11
_K1, _K2 = 0.01, 0.03
_DTYPE_RANGE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
# BT.601 luma on [0, 1] RGB, as BasicSR's bgr2ycbcr(y_only=True): Y = 16/255 + (65.481 R + 128.553 G + 24.966 B)/255
_Y_WEIGHTS_BGR = np.array([24.966, 128.553, 65.481]) / 255.0
_Y_OFFSET = 16.0 / 255.0


def gaussian_taps(sigma=_SIGMA, radius=_RADIUS):
    """Normalized 1-D Gaussian taps g[-radius .. radius] (float64), as MATLAB's fspecial / imgaussfilt."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-x**2 / (2.0 * sigma**2))
    return g / g.sum()


def plane_mixing_matrix(planes, taps=None):
    """(planes, planes) matrix W: the 1-D Gaussian along an axis of ``planes`` samples with replicate
    padding, written as out[c] = sum_p W[c, p] * in[p]. A tap that reaches past either end adds its
    weight to the end plane it is clamped to."""
    taps = gaussian_taps() if taps is None else np.asarray(taps, dtype=np.float64)
    radius = len(taps) // 2
    weights = np.zeros((planes, planes))
    for c in range(planes):
        for offset, tap in zip(range(-radius, radius + 1), taps):
            weights[c, min(max(c + offset, 0), planes - 1)] += tap
    return weights / weights.sum(axis=1, keepdims=True)  # rows sum to 1 to the last bit (1 plane: [[1.0]])


def _data_range(img, data_range, name):
    if data_range is not None:
        if not data_range > 0:
            raise ValueError(f'data_range must be positive, got {data_range!r}.')
        return float(data_range)
    if img.dtype in _DTYPE_RANGE:
        return _DTYPE_RANGE[img.dtype]
    if np.issubdtype(img.dtype, np.floating):
        peak = float(np.max(img)) if img.size else 0.0
        if peak > 1.5:
            raise ValueError(f'{name}: float image with values up to {peak:g}; float images are taken as [0, 1] '
                             '(as MATLAB takes double images). Scale it to [0, 1], pass 8-bit images, or give '
                             'data_range=255.')
        return 1.0
    raise ValueError(f'{name}: unsupported image type {img.dtype}; expected uint8, uint16 or float in [0, 1] '
                     '(or give data_range).')


def _prepare(img, input_order, crop_border, test_y_channel, data_range, name):
    """(H, W, C) float64 array on the scale [0, L] and L."""
    img = np.asarray(img)
    peak = _data_range(img, data_range, name)
    img = reorder_image(img.astype(np.float64), input_order=input_order)
    if img.ndim != 3:
        raise ValueError(f'{name}: expected an H x W or H x W x C image, got shape {img.shape}.')
    if crop_border:
        cropped = img[crop_border:-crop_border, crop_border:-crop_border]
        if cropped.size == 0:
            raise ValueError(f'{name}: crop_border={crop_border} leaves no pixels of an image of '
                             f'{img.shape[0]}x{img.shape[1]}.')
        img = cropped
    if test_y_channel and img.shape[2] == 3:
        img = (_Y_OFFSET * peak + img @ _Y_WEIGHTS_BGR)[..., None]
    return img, peak


def ssim_volume(img, img2, data_range):
    """MATLAB-style SSIM of two (H, W, C) float64 arrays, C planes as a volume; returns the mean of the map."""
    height, width, planes = img.shape
    taps = gaussian_taps().reshape(-1, 1)
    mixing = plane_mixing_matrix(planes)
    # The five local moments, filtered in H and W in one call (one plane per moment and channel).
    stack = np.concatenate([img, img2, img * img, img2 * img2, img * img2], axis=2)
    blurred = cv2.sepFilter2D(stack, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REPLICATE)
    blurred = (blurred.reshape(-1, planes) @ mixing.T).reshape(height, width, 5, planes)  # then along C
    mu1, mu2, e11, e22, e12 = (blurred[:, :, i] for i in range(5))
    c1, c2 = (_K1 * data_range)**2, (_K2 * data_range)**2
    mu12 = mu1 * mu2
    mu1_sq, mu2_sq = mu1 * mu1, mu2 * mu2
    numerator = (2 * mu12 + c1) * (2 * (e12 - mu12) + c2)
    denominator = (mu1_sq + mu2_sq + c1) * ((e11 - mu1_sq) + (e22 - mu2_sq) + c2)
    return float(np.mean(numerator / denominator))


@METRIC_REGISTRY.register()
def calculate_ssim_matlab(img, img2, crop_border, input_order='HWC', test_y_channel=False, data_range=None,
                          **kwargs):
    """SSIM as MATLAB's ``ssim(img, img2)``: 3-D over H x W x 3 (GoPro / HIDE, Table III).

    Args:
        img, img2 (ndarray): images of the same shape, HWC (or CHW, see ``input_order``), BGR or RGB
            (same score), uint8, uint16 or float in [0, 1]; BasicSR's validation passes 8-bit BGR.
        crop_border (int): pixels cut from each edge before the computation.
        input_order (str): 'HWC' or 'CHW'.
        test_y_channel (bool): score the Y channel (BT.601, as BasicSR) with 2-D SSIM, as MATLAB
            scores a 2-D image.
        data_range (float, optional): L; by default from the dtype (uint8 255, uint16 65535, float 1).

    Returns:
        float: mean of the SSIM map (1.0 for identical images).
    """
    if np.shape(img) != np.shape(img2):
        raise ValueError(f'calculate_ssim_matlab: image shapes differ: img {np.shape(img)}, '
                         f'img2 {np.shape(img2)}.')
    if input_order not in ('HWC', 'CHW'):
        raise ValueError(f"calculate_ssim_matlab: input_order must be 'HWC' or 'CHW', got {input_order!r}.")
    a, peak = _prepare(img, input_order, crop_border, test_y_channel, data_range, 'img')
    b, peak2 = _prepare(img2, input_order, crop_border, test_y_channel, data_range, 'img2')
    if peak != peak2:
        raise ValueError(f'calculate_ssim_matlab: img and img2 have different data ranges ({peak:g} from '
                         f'{np.asarray(img).dtype}, {peak2:g} from {np.asarray(img2).dtype}); pass images of '
                         'one type or give data_range.')
    return ssim_volume(a, b, peak)
