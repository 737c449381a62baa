"""Reading restoration images at their full bit depth, with errors that name the file.

DPDD ships 16-bit PNGs; BasicSR's ``imfrombytes(float32=True)`` divides by 255 and so cannot read them.
Here the scale comes from each file's own dtype (uint8 -> /255, uint16 -> /65535), so 8- and 16-bit
files can be mixed. A file that cannot be decoded (corrupt, truncated, not an image) raises an
``OSError`` naming it instead of returning ``None`` deep inside a data-loader worker.
"""
import struct

import cv2
import numpy as np

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def read_image_size(path):
    """(height, width) of an image from its header alone; PNG is parsed directly (fast enough for
    checking thousands of files at dataset construction), other formats are decoded."""
    with open(path, 'rb') as file:
        head = file.read(24)
    if head[:8] == PNG_SIGNATURE and head[12:16] == b'IHDR':
        width, height = struct.unpack('>II', head[16:24])
        return height, width
    if head[:8] == PNG_SIGNATURE or path.lower().endswith('.png'):
        raise OSError(f'{path}: not a valid PNG file (no PNG signature / IHDR header).')
    return read_image(path).shape[:2]


def read_image_unchanged(path):
    """An image file decoded exactly as stored (bit depth and channel order of the file)."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise OSError(f'{path}: cannot decode this image file ({data.size} bytes); it is corrupt, '
                      f'truncated or not an image. Re-extract or re-download it.')
    return image


def read_image(path):
    """An image file as float32 RGB in [0, 1], shape (H, W, 3), scaled by its own bit depth."""
    return to_float_rgb(read_image_unchanged(path), path)


def to_float_rgb(image, path=''):
    """A decoded image (OpenCV channel order, 8 or 16 bits) as float32 RGB in [0, 1], (H, W, 3).
    Cropping before this conversion saves converting pixels that are thrown away."""
    if image.dtype not in _SCALE:
        raise OSError(f'{path}: unsupported pixel type {image.dtype}; expected 8- or 16-bit images.')
    scale = _SCALE[image.dtype]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image.astype(np.float32) / np.float32(scale)
