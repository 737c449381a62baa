"""A physically motivated dual-pixel defocus model, to render training pairs from sharp photographs.

A defocused point seen through a circular aperture spreads into a disk whose signed radius is linear
in inverse depth: r = k * (1/z - 1/z_focus), zero on the focal plane, with opposite signs in front of
and behind it. A dual-pixel sensor splits each pixel into a left and a right photodiode that see the
two halves of the aperture, so the left view's kernel is one half of the disk and the right view's
the mirrored half; which half goes with which view flips with the sign of r. The two half-disks have
centroids 2 * 4|r| / (3 pi) apart: the defocus disparity between the views, zero in focus. The
combined image (the sum of both photodiodes) is the full disk, i.e. the mean of the two views.

Spatially varying blur is rendered in layers: the image is blurred with the kernels of a ladder of
radii (multiples of ``step`` pixels) and every pixel interpolates linearly between the two rungs
that bracket its own radius. Occlusion effects at depth edges are not modelled.
Convention: for r > 0 the left view sees the left half-disk (x < 0).
"""
import math

import cv2
import numpy as np


def aperture_kernels(radius, supersample=8):
    """(left, right, full) normalized kernels for a signed blur ``radius`` in pixels, all of one odd
    size, with anti-aliased edges (the fraction of each pixel inside). left + right = 2 * full."""
    size = abs(float(radius))
    if size < 0.5:
        delta = np.ones((1, 1), np.float32)
        return delta, delta, delta
    half = int(math.ceil(size))
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5  # never 0: no sub-sample on the split line
    coords = np.arange(-half, half + 1)[:, None] + offsets[None, :]  # (pixels, sub-samples)
    yy, xx = coords[:, None, :, None], coords[None, :, None, :]
    disk = yy**2 + xx**2 <= size**2
    left_half = (disk & (xx < 0)).mean(axis=(2, 3))
    full = disk.mean(axis=(2, 3))
    left = left_half if radius > 0 else left_half[:, ::-1]
    total = full.sum()
    return ((2 * left / total).astype(np.float32), (2 * left[:, ::-1] / total).astype(np.float32),
            (full / total).astype(np.float32))


def _blur(image, kernel):
    if kernel.shape == (1, 1):
        return image.copy()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def render_dual_pixel(image, radius_map, step=0.5):
    """Left, right and combined views of a sharp (H, W, C) float image whose pixels have the signed
    blur radii ``radius_map`` (H, W). Deterministic; mirroring the inputs mirrors the outputs with
    left and right exchanged."""
    image = np.asarray(image, np.float32)
    radius_map = np.asarray(radius_map, np.float32)
    if radius_map.shape != image.shape[:2]:
        raise ValueError(f'radius_map shape {radius_map.shape} does not match image {image.shape[:2]}.')
    # rungs on multiples of ``step``: zero is one, so in-focus pixels stay exactly sharp
    low = math.floor(float(radius_map.min()) / step)
    high = max(math.ceil(float(radius_map.max()) / step), low + 1)
    rungs = np.arange(low, high + 1) * step
    position = radius_map / step - low
    index = np.clip(np.floor(position).astype(np.int64), 0, len(rungs) - 2)
    weight = (position - index)[..., None].astype(np.float32)
    left = np.zeros_like(image)
    right = np.zeros_like(image)
    for rung, radius in enumerate(rungs):
        # weight of this rung per pixel: (1 - w) where it is the lower bracket, w where the upper
        share = (np.where((index == rung)[..., None], 1 - weight, 0)
                 + np.where((index == rung - 1)[..., None], weight, 0))
        if not share.any():
            continue
        kernel_left, kernel_right, _ = aperture_kernels(radius)
        left += share * _blur(image, kernel_left)
        right += share * _blur(image, kernel_right)
    return left, right, (left + right) / 2
