"""One random crop and one geometric augmentation applied identically to every view of a scene.

Dual-pixel geometry under a horizontal flip: the left and right views are images through the left
and right halves of the lens aperture, so their defocus blur kernels are mirrored half-disks and the
defocus disparity between them has a sign given by the side of the focal plane. Mirroring a scene
left-right turns what the left photodiodes saw into what the right photodiodes would see of the
mirrored scene (the left half-aperture becomes the right one). So after a horizontal flip the views
must swap: then the flipped sample is exactly what the same camera records of the mirrored scene
(same half-disk in each channel, same disparity sign for the same side of focus, same left/right
vignetting), and channel "left" keeps one meaning over the whole training set. Without the swap a
flipped sample looks like a camera whose sensor halves are exchanged, which doubles what the network
must learn and blurs the cue. A vertical flip keeps left and right. A 90-degree rotation (transpose)
turns the horizontal disparity vertical, which no swap can undo; with the swap decided by the flip
that precedes it, channel "left" is always the view through the half-aperture on the negative side
of the first image axis. Rotations follow BasicSR's and Restormer's recipes (``use_rot``); turn them off
to keep the disparity horizontal.
"""
import numpy as np

#: views exchanged by a horizontal flip
MIRROR_PAIRS = (('lqL', 'lqR'),)


def random_crop_views(views, size, rng, what=''):
    """The same random ``size`` x ``size`` window of every (H, W, C) array in ``views`` (a dict)."""
    height, width = next(iter(views.values())).shape[:2]
    if size > height or size > width:
        raise ValueError(f'{what}: crop gt_size {size} is larger than the image ({height}x{width}).')
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return {key: array[top:top + size, left:left + size] for key, array in views.items()}


def draw_augmentation(rng, hflip=True, rot=True):
    """(hflip, vflip, transpose) drawn as in BasicSR's ``augment``: each with probability 1/2; flips
    and transpose together give all eight 90-degree rotations and mirrorings uniformly."""
    draws = rng.random(3)
    return bool(hflip and draws[0] < 0.5), bool(rot and draws[1] < 0.5), bool(rot and draws[2] < 0.5)


def apply_augmentation(views, hflip, vflip, transpose, swap_mirrored=True):
    """Apply the flips, then the transpose, to every (H, W, C) array; on a horizontal flip exchange
    the views of ``MIRROR_PAIRS`` (see the module docstring for why)."""
    out = {}
    for key, array in views.items():
        if hflip:
            array = array[:, ::-1]
        if vflip:
            array = array[::-1]
        if transpose:
            array = array.transpose(1, 0, 2)
        out[key] = array
    if hflip and swap_mirrored:
        for first, second in MIRROR_PAIRS:
            if first in out and second in out:
                out[first], out[second] = out[second], out[first]
    return out


def to_tensor(array):
    """(H, W, C) float array -> contiguous (C, H, W) float32 tensor."""
    import torch
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))
