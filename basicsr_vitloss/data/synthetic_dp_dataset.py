"""Dual-pixel defocus scenes rendered on the fly from real photographs: the embedded default data.

The demo and the tests need real-looking dual-pixel data without any download. Each sample is a crop
of one of scikit-image's photographs (the all-in-focus target) with an inverse-depth map (the scene's
own stereo disparity where scikit-image ships one, otherwise a smooth random surface), a random focal
plane inside the crop, and the left / right / combined views rendered by ``dual_pixel_defocus``: the
blur grows away from the focal plane and the left and right views are displaced against each other in
proportion to it, so the disparity between them is a real, learnable cue, as in DPDD.
"""
import cv2
import numpy as np
from torch.utils import data

from basicsr.utils.registry import DATASET_REGISTRY
from basicsr_vitloss.data.dpdd_dataset import MODE_VIEWS, dual_pixel_sample, parse_augmentation_options
from basicsr_vitloss.data.dpdd_files import Scene
from basicsr_vitloss.data.dual_pixel_defocus import render_dual_pixel
from basicsr_vitloss.data.sample_photographs import PHOTOGRAPHS, load_disparity, load_photograph
from basicsr_vitloss.data.view_transforms import apply_augmentation, draw_augmentation

DEPTH_SOURCES = ('auto', 'random')


def random_inverse_depth(height, width, rng, cells=3):
    """A smooth random inverse-depth surface in [0, 1]: a tilted plane plus bicubically upsampled
    low-resolution noise (a few objects at different distances)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tilt = rng.normal(size=2)
    plane = tilt[0] * yy / height + tilt[1] * xx / width
    coarse = rng.random((cells, cells)).astype(np.float32)
    bumps = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    surface = plane + 1.5 * bumps
    surface -= surface.min()
    return surface / max(float(surface.max()), 1e-6)


@DATASET_REGISTRY.register()
class SyntheticDualPixelDataset(data.Dataset):
    """Dual-pixel defocus scenes rendered from scikit-image's photographs; output exactly like DPDDDataset.

    Options (YAML keys):
        mode (str): dual_pixel -> lq = concat(left, right), 6 channels; single -> lq = combined, 3.
        num_samples (int): dataset length. Default 1000.
        gt_size (int): crop size in pixels. Default 96.
        images (list[str]): photographs to use (``sample_photographs.PHOTOGRAPHS``). Default: all.
        radius_range (list[float]): [min, max] of the largest blur radius in a crop, in pixels.
            Default [2.0, 5.0].
        depth (str): auto (the scene's disparity where shipped, else random) | random. Default auto.
        noise_std (float): std of Gaussian noise added to the blurry views, [0, 1] scale. Default 0.
        seed (int): samples are a function of (seed, index), augmentation included. Default 0.
        use_hflip, use_rot (bool) or geometric_augs: training only; swap_views_on_hflip as DPDDDataset.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.name = f"SyntheticDualPixelDataset '{opt.get('name', '')}'"
        self.mode = opt.get('mode', 'dual_pixel')
        self.num_samples = int(opt.get('num_samples', 1000))
        self.gt_size = int(opt.get('gt_size', 96))
        self.images = list(opt.get('images') or PHOTOGRAPHS)
        self.radius_range = [float(r) for r in opt.get('radius_range', [2.0, 5.0])]
        self.depth = opt.get('depth', 'auto')
        self.noise_std = float(opt.get('noise_std', 0.0))
        self.seed = int(opt.get('seed', 0))
        self.augment = opt.get('phase') == 'train'
        self.hflip, self.rot = parse_augmentation_options(opt)
        self.swap_views = bool(opt.get('swap_views_on_hflip', True))
        self._check()

    def _check(self):
        if self.mode not in MODE_VIEWS:
            raise ValueError(f"{self.name}: mode must be one of {', '.join(MODE_VIEWS)}, got {self.mode!r}.")
        if self.num_samples < 1:
            raise ValueError(f'{self.name}: num_samples must be >= 1, got {self.num_samples}.')
        if len(self.radius_range) != 2 or not 0 <= self.radius_range[0] <= self.radius_range[1]:
            raise ValueError(f'{self.name}: radius_range must be [min, max] with 0 <= min <= max, '
                             f'got {self.opt.get("radius_range")}.')
        if self.depth not in DEPTH_SOURCES:
            raise ValueError(f"{self.name}: depth must be one of {', '.join(DEPTH_SOURCES)}, got {self.depth!r}.")
        if self.noise_std < 0:
            raise ValueError(f'{self.name}: noise_std must be >= 0, got {self.noise_std}.')
        for image in self.images:
            height, width = load_photograph(image).shape[:2]
            if self.gt_size < 1 or self.gt_size > min(height, width):
                raise ValueError(f"{self.name}: gt_size {self.gt_size} does not fit photograph '{image}' "
                                 f'({height}x{width}); use 1 <= gt_size <= {min(height, width)}.')

    def __len__(self):
        return self.num_samples

    def render(self, index):
        """(views, scene, rng) of sample ``index`` before augmentation: views {lqL, lqR, lqC, gt} are
        (H, W, 3) arrays; scene is {photograph, top, left, radius (the signed blur radius map)}; rng is
        the sample's generator, to draw its augmentation from."""
        rng = np.random.default_rng([self.seed, index])
        name = self.images[index % len(self.images)]
        photo = load_photograph(name)
        height, width = photo.shape[:2]
        size = self.gt_size
        top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
        max_radius = rng.uniform(*self.radius_range)
        margin = int(np.ceil(max_radius)) + 1  # blur sees real neighbours, not a reflected border
        t0, l0 = max(top - margin, 0), max(left - margin, 0)
        t1, l1 = min(top + size + margin, height), min(left + size + margin, width)
        window = photo[t0:t1, l0:l1]
        disparity = load_disparity(name) if self.depth == 'auto' else None
        if disparity is not None:
            inverse_depth = disparity[t0:t1, l0:l1]
        else:
            inverse_depth = random_inverse_depth(t1 - t0, l1 - l0, rng)
        crop = (slice(top - t0, top - t0 + size), slice(left - l0, left - l0 + size))
        focus = float(np.quantile(inverse_depth[crop], rng.uniform(0.1, 0.9)))
        spread = max(float(np.abs(inverse_depth[crop] - focus).max()), 1e-6)
        radius_map = (inverse_depth - focus) * (max_radius / spread)
        left_view, right_view, combined = render_dual_pixel(window, radius_map)
        views = {'lqL': left_view[crop], 'lqR': right_view[crop], 'lqC': combined[crop], 'gt': window[crop]}
        if self.noise_std:
            for view in ('lqL', 'lqR', 'lqC'):
                views[view] = views[view] + rng.normal(0.0, self.noise_std, views[view].shape).astype(np.float32)
        views = {view: np.clip(array, 0, 1) for view, array in views.items()}
        scene = {'photograph': name, 'top': top, 'left': left, 'radius': radius_map[crop]}
        return views, scene, rng

    def __getitem__(self, index):
        if not 0 <= index < self.num_samples:
            raise IndexError(f'index {index} out of range for {self.num_samples} samples')
        views, scene, rng = self.render(index)
        if self.augment:  # drawn from the sample's own generator: deterministic per (seed, index)
            views = apply_augmentation(views, *draw_augmentation(rng, self.hflip, self.rot),
                                       swap_mirrored=self.swap_views)
        stem = f'synthetic_dp/{scene["photograph"]}_{index:05d}'
        paths = {'lqL': f'{stem}_L.png', 'lqR': f'{stem}_R.png', 'lqC': f'{stem}_C.png', 'gt': f'{stem}.png'}
        return dual_pixel_sample(views, self.mode, Scene(stem.split('/')[-1], paths))
