"""Defocus-blurred crops of real photographs that ship with scikit-image: the embedded default data.

The demo and the tests need real-looking restoration data without any download. Each sample is a
crop of one of scikit-image's sample photographs (sharp target) and the same crop blurred by a
disk point-spread function (the image of a circular aperture out of focus) plus optional Gaussian
noise. Samples, augmentation included, are deterministic per index under ``seed``.
"""
import functools

import cv2
import numpy as np
import torch
from torch.utils import data

from basicsr.utils.registry import DATASET_REGISTRY

#: name -> loader of an RGB uint8 photograph shipped inside scikit-image
PHOTOGRAPHS = {
    'astronaut': lambda d: d.astronaut(),
    'coffee': lambda d: d.coffee(),
    'chelsea': lambda d: d.chelsea(),
    'rocket': lambda d: d.rocket(),
    'immunohistochemistry': lambda d: d.immunohistochemistry(),
    'motorcycle': lambda d: d.stereo_motorcycle()[0],
    'hubble_deep_field': lambda d: d.hubble_deep_field(),
}


@functools.lru_cache(maxsize=None)
def load_photograph(name):
    """One of ``PHOTOGRAPHS`` as float32 RGB in [0, 1], (H, W, 3)."""
    if name not in PHOTOGRAPHS:
        raise KeyError(f"Unknown photograph '{name}' in SyntheticDefocusDataset option 'images'; "
                       f'available: {", ".join(PHOTOGRAPHS)}.')
    import skimage.data
    image = np.ascontiguousarray(PHOTOGRAPHS[name](skimage.data)[..., :3]).astype(np.float32) / 255.0
    image.setflags(write=False)
    return image


def disk_kernel(radius, supersample=8):
    """Normalized point-spread function of a defocused circular aperture of ``radius`` pixels, with
    anti-aliased edges (the fraction of each pixel inside the disk)."""
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(np.ceil(radius))
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    coords = np.arange(-half, half + 1)[:, None] + offsets[None, :]  # (pixels, subsamples)
    yy = coords[:, None, :, None]
    xx = coords[None, :, None, :]
    inside = (yy**2 + xx**2 <= radius**2).mean(axis=(2, 3))
    return (inside / inside.sum()).astype(np.float32)


def defocus(image, radius):
    """Blur an (H, W, C) float image by a disk of ``radius`` pixels, reflecting at the borders."""
    return cv2.filter2D(image, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT_101)


@DATASET_REGISTRY.register()
class SyntheticDefocusDataset(data.Dataset):
    """Defocus deblurring pairs rendered on the fly from scikit-image's sample photographs.

    Options (YAML keys):
        num_samples (int): dataset length. Default 1000.
        gt_size (int): crop size in pixels. Default 96.
        images (list[str]): photographs to use (``PHOTOGRAPHS``). Default: all.
        radius_range (list[float]): [min, max] blur radius in pixels. Default [1.5, 4.0].
        noise_std (float): std of Gaussian noise added to lq, on the [0, 1] scale. Default 0.
        seed (int): samples are a function of (seed, index). Default 0.
        use_hflip, use_rot (bool): flips / 90-degree rotations, training only. Default True.

    Returns BasicSR's dict: lq, gt (3, gt_size, gt_size) float32 RGB in [0, 1], lq_path, gt_path.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.num_samples = int(opt.get('num_samples', 1000))
        self.gt_size = int(opt.get('gt_size', 96))
        self.images = list(opt.get('images') or PHOTOGRAPHS)
        self.radius_range = [float(r) for r in opt.get('radius_range', [1.5, 4.0])]
        self.noise_std = float(opt.get('noise_std', 0.0))
        self.seed = int(opt.get('seed', 0))
        self.augment = opt.get('phase') == 'train'
        self._check()

    def _check(self):
        name = self.opt.get('name', 'SyntheticDefocusDataset')
        if self.num_samples < 1:
            raise ValueError(f'{name}: num_samples must be >= 1, got {self.num_samples}.')
        if len(self.radius_range) != 2 or not 0 <= self.radius_range[0] <= self.radius_range[1]:
            raise ValueError(f'{name}: radius_range must be [min, max] with 0 <= min <= max, '
                             f'got {self.opt.get("radius_range")}.')
        if self.noise_std < 0:
            raise ValueError(f'{name}: noise_std must be >= 0, got {self.noise_std}.')
        for image in self.images:
            height, width = load_photograph(image).shape[:2]
            if self.gt_size < 1 or self.gt_size > min(height, width):
                raise ValueError(f"{name}: gt_size {self.gt_size} does not fit photograph '{image}' "
                                 f'({height}x{width}); use 1 <= gt_size <= {min(height, width)}.')

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        if not 0 <= index < self.num_samples:
            raise IndexError(f'index {index} out of range for {self.num_samples} samples')
        rng = np.random.default_rng([self.seed, index])
        name = self.images[index % len(self.images)]
        photo = load_photograph(name)
        radius = rng.uniform(*self.radius_range)
        margin = int(np.ceil(radius))
        height, width = photo.shape[:2]
        top = int(rng.integers(0, height - self.gt_size + 1))
        left = int(rng.integers(0, width - self.gt_size + 1))
        # blur a window with a margin so that the crop sees real neighbours, not a reflected border
        t0, l0 = max(top - margin, 0), max(left - margin, 0)
        window = photo[t0:top + self.gt_size + margin, l0:left + self.gt_size + margin]
        blurred = defocus(window, radius)[top - t0:top - t0 + self.gt_size, left - l0:left - l0 + self.gt_size]
        gt = photo[top:top + self.gt_size, left:left + self.gt_size]
        lq = blurred + rng.normal(0.0, self.noise_std, blurred.shape).astype(np.float32) if self.noise_std else blurred
        if self.augment:  # the same flip and rotation for both, drawn from the sample's own generator
            flip = self.opt.get('use_hflip', True) and rng.random() < 0.5
            turns = int(rng.integers(4)) if self.opt.get('use_rot', True) else 0
            gt, lq = (np.rot90(a[:, ::-1] if flip else a, turns) for a in (gt, lq))
        to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))  # noqa: E731
        path = f'synthetic_defocus/{name}_{index:05d}.png'
        return {'lq': to_tensor(np.clip(lq, 0, 1)), 'gt': to_tensor(gt), 'lq_path': path, 'gt_path': path}
