"""Images of any bit depth as floats in [0, 1], and the mark of metrics that take float images.

BasicSR hands its metrics 8-bit images (``tensor2img``), which rounds away what 16-bit data such as
DPDD holds. The metrics of this package take 8-bit, 16-bit or float images (HWC, BGR as BasicSR's)
and compute on [0, 1] floats; those marked ``takes_float_images`` receive the network output before
rounding when the plugin's validation runs them (see ``basicsr_vitloss.utils.float_validation``).
"""
import numpy as np

from basicsr.utils.color_util import bgr2ycbcr
from basicsr.metrics.metric_util import reorder_image

_PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def takes_float_images(metric):
    """Mark ``metric`` as computed on float images in [0, 1], so validation passes them unrounded."""
    metric.takes_float_images = True
    return metric


def to_unit_float(img, input_order='HWC', crop_border=0, test_y_channel=False, name='img'):
    """(H, W, C) float64 array in [0, 1] from an 8-bit, 16-bit or float [0, 1] image, cropped by
    ``crop_border`` on each side, optionally reduced to the Y channel of YCbCr (BT.601, as BasicSR)."""
    img = np.asarray(img)
    if img.dtype in _PEAK:
        img = img.astype(np.float64) / _PEAK[img.dtype]
    elif np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float64)
    else:
        raise ValueError(f'{name}: unsupported image type {img.dtype}; expected uint8, uint16 or float in [0, 1].')
    img = reorder_image(img, input_order=input_order)
    if img.ndim == 2:
        img = img[..., None]
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel and img.shape[2] == 3:
        img = bgr2ycbcr(img.astype(np.float32), y_only=True)[..., None].astype(np.float64)
    return img


def unit_pair(img, img2, input_order='HWC', crop_border=0, test_y_channel=False):
    """Both images through ``to_unit_float``; raises naming the shapes when they differ."""
    if np.shape(img) != np.shape(img2):
        raise ValueError(f'Image shapes differ: img {np.shape(img)}, img2 {np.shape(img2)}.')
    return (to_unit_float(img, input_order, crop_border, test_y_channel, 'img'),
            to_unit_float(img2, input_order, crop_border, test_y_channel, 'img2'))
