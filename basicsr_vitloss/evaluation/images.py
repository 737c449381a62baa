"""Reading the images to evaluate, and their bit depths (8 / 16 bits, from the files)."""
import numpy as np

from basicsr_vitloss.data.image_io import PNG_SIGNATURE
from basicsr_vitloss.evaluation.errors import EvaluateError


def bit_depth(path):
    """Bits per sample of an image file: from the PNG header (8 for palette / low-depth grey, as they
    decode), 8 for JPEG / BMP, else from the decoded image."""
    with open(path, 'rb') as file:
        head = file.read(25)
    if head[:8] == PNG_SIGNATURE and head[12:16] == b'IHDR' and len(head) == 25:
        return 16 if head[24] == 16 else 8
    if path.lower().endswith(('.jpg', '.jpeg', '.bmp')):
        return 8
    return 8 * read_bgr(path).dtype.itemsize


def set_bit_depth(paths):
    """The bit depth of a set of files: 8 or 16, or the sorted list when they are mixed."""
    depths = sorted({bit_depth(p) for p in paths})
    return depths[0] if len(depths) == 1 else depths


def read_bgr(path):
    """An image file as HWC BGR, 3 channels, uint8 or uint16 (grey expanded, alpha dropped)."""
    from basicsr_vitloss.data.image_io import read_image_unchanged
    image = read_image_unchanged(path)
    if image.dtype not in (np.uint8, np.uint16):
        raise EvaluateError(f'{path}: pixel type {image.dtype}; expected 8- or 16-bit images.')
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])

def to_uint8(image):
    """8-bit copy of a uint8/uint16 image (rounded), for NIQE which is defined on [0, 255]."""
    if image.dtype == np.uint8:
        return image
    return np.round(image.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)

def describe_depths(depths):
    return 'mixed ' + ' and '.join(f'{d}-bit' for d in depths) if isinstance(depths, list) else f'{depths}-bit'


def bit_depth_warning(depths):
    """The warning text when restored and gt bit depths differ, else None."""
    restored, gt = depths
    if restored == gt:
        return None
    return (f'restored images are {describe_depths(restored)} but the ground truth is {describe_depths(gt)}: '
            f'the metrics include the rounding of the coarser images (against 16-bit targets a perfect 8-bit '
            f'result scores about 58.9 dB PSNR, not infinity; the 4th decimal of SSIM and MAE moves). '
            f'Compare only runs of equal bit depths; save 16-bit results (val: save_16bit: true) for DPDD.')
