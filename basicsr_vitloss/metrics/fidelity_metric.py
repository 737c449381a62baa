"""PSNR, SSIM and MAE on float images in [0, 1], as the paper (and Restormer's DPDD evaluation) computes them.

- PSNR = 10 log10(1 / MSE), MSE over all pixels and channels (data range 1).
- SSIM = scikit-image's ``structural_similarity`` on the RGB image, data range 1: 7x7 uniform window,
  sample covariance, K1 = 0.01, K2 = 0.03, averaged over channels. (BasicSR's ``calculate_ssim`` is
  the MATLAB-style variant with an 11x11 Gaussian window on [0, 255]: a different number.)
- MAE = mean absolute difference over all pixels and channels, on [0, 1].

All take 8-bit, 16-bit or float images (HWC BGR, BasicSR's convention), ``crop_border`` and
``test_y_channel`` as BasicSR's metrics do; defaults are the paper's (no border, RGB).
"""
import math

import numpy as np

from basicsr.utils.registry import METRIC_REGISTRY
from basicsr_vitloss.metrics.unit_range import takes_float_images, unit_pair


@METRIC_REGISTRY.register()
@takes_float_images
def calculate_psnr_float(img, img2, crop_border=0, input_order='HWC', test_y_channel=False, **kwargs):
    """PSNR in dB on [0, 1] images (inf for identical images)."""
    a, b = unit_pair(img, img2, input_order, crop_border, test_y_channel)
    mse = float(np.mean((a - b)**2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


@METRIC_REGISTRY.register()
@takes_float_images
def calculate_ssim_float(img, img2, crop_border=0, input_order='HWC', test_y_channel=False, **kwargs):
    """SSIM on [0, 1] images: scikit-image's definition, channel-averaged."""
    from skimage.metrics import structural_similarity
    a, b = unit_pair(img, img2, input_order, crop_border, test_y_channel)
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=2))


@METRIC_REGISTRY.register()
@takes_float_images
def calculate_mae(img, img2, crop_border=0, input_order='HWC', test_y_channel=False, **kwargs):
    """Mean absolute error on [0, 1] images."""
    a, b = unit_pair(img, img2, input_order, crop_border, test_y_channel)
    return float(np.mean(np.abs(a - b)))
