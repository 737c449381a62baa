"""DPDD (Abuolaim and Brown, ECCV 2020): dual-pixel defocus deblurring pairs for BasicSR."""
import random

import numpy as np
from torch.utils import data

from basicsr.utils.registry import DATASET_REGISTRY
from basicsr_vitloss.data.dpdd_files import check_scene_sizes, official_view_folders, pair_view_files
from basicsr_vitloss.data.image_io import read_image_unchanged, to_float_rgb
from basicsr_vitloss.data.view_transforms import apply_augmentation, draw_augmentation, random_crop_views, to_tensor

#: mode -> the input views concatenated (in this order) into ``lq``
MODE_VIEWS = {'dual_pixel': ('lqL', 'lqR'), 'single': ('lqC',)}
#: view -> option keys that may name its folder (Restormer's keys first)
FOLDER_KEYS = {'lqL': ('dataroot_lqL',), 'lqR': ('dataroot_lqR',), 'lqC': ('dataroot_lqC', 'dataroot_lq'),
               'gt': ('dataroot_gt',)}


def parse_augmentation_options(opt):
    """(hflip, rot) from BasicSR's ``use_hflip`` / ``use_rot`` or Restormer's ``geometric_augs``."""
    if 'geometric_augs' in opt:
        both = bool(opt['geometric_augs'])
        return bool(opt.get('use_hflip', both)), bool(opt.get('use_rot', both))
    return bool(opt.get('use_hflip', True)), bool(opt.get('use_rot', True))


def dual_pixel_sample(views, mode, paths):
    """BasicSR's sample dict from {view: (H, W, 3) array}: lq = the mode's views concatenated."""
    lq = np.concatenate([views[view] for view in MODE_VIEWS[mode]], axis=2)
    sample = {'lq': to_tensor(lq), 'gt': to_tensor(views['gt']),
              'lq_path': paths[MODE_VIEWS[mode][0]], 'gt_path': paths['gt']}
    sample.update({f'{view}_path': path for view, path in paths.items() if view.startswith('lq')})
    return sample


@DATASET_REGISTRY.register()
class DPDDDataset(data.Dataset):
    """DPDD scenes (left / right dual-pixel views, their combined image, all-in-focus target).

    Options (YAML keys):
        dataroot (str) + split (train|val|test): the official release layout, or
        dataroot_lqL, dataroot_lqR, dataroot_lqC (or dataroot_lq), dataroot_gt: one folder per view
            (Restormer's keys; e.g. the crops of scripts/prepare_dpdd.py). Only the mode's views are needed.
        mode (str): dual_pixel -> lq = concat(left, right), 6 channels; single -> lq = combined, 3.
        gt_size (int): training crop, the same window for all views. None: whole images.
        use_hflip, use_rot (bool) or geometric_augs (bool, Restormer's key for both): training only.
        swap_views_on_hflip (bool): exchange left and right when flipping horizontally (default
            true; see ``view_transforms`` for why).
        check_sizes (bool): check at construction that all views of a scene have one size, from the
            PNG headers. Default true.

    Images of either bit depth are read at full precision (16-bit / 65535). Returns BasicSR's dict:
    lq, gt (float32 RGB in [0, 1]), lq_path, gt_path, and lqL_path / lqR_path / lqC_path.
    """

    default_mode = 'dual_pixel'

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.name = f"{type(self).__name__} '{opt.get('name', '')}'"
        self.mode = opt.get('mode', self.default_mode)
        if self.mode not in MODE_VIEWS:
            raise ValueError(f"{self.name}: mode must be one of {', '.join(MODE_VIEWS)}, got {self.mode!r}.")
        backend = (opt.get('io_backend') or {}).get('type', 'disk')
        if backend != 'disk':
            raise ValueError(f"{self.name}: io_backend type {backend!r} is not supported; DPDD is read from "
                             f"disk (io_backend: {{type: disk}}).")
        self.train = opt.get('phase') == 'train'
        self.gt_size = opt.get('gt_size') if self.train else None
        self.hflip, self.rot = parse_augmentation_options(opt)
        self.swap_views = bool(opt.get('swap_views_on_hflip', True))
        self.scenes = pair_view_files(self._view_folders(), what=self.name)
        if opt.get('check_sizes', True):
            check_scene_sizes(self.scenes, what=self.name, min_size=self.gt_size)

    def _view_folders(self):
        views = MODE_VIEWS[self.mode] + ('gt',)
        given = [key for keys in FOLDER_KEYS.values() for key in keys if self.opt.get(key)]
        if self.opt.get('dataroot'):
            if given:
                raise ValueError(f'{self.name}: give either dataroot (+ split) or the per-view folders, '
                                 f'not both (got dataroot and {", ".join(given)}).')
            if 'split' not in self.opt:
                raise ValueError(f"{self.name}: dataroot needs split: train, val or test.")
            return official_view_folders(self.opt['dataroot'], self.opt['split'], views)
        folders, missing = {}, []
        for view in views:
            key = next((k for k in FOLDER_KEYS[view] if self.opt.get(k)), None)
            if key is None:
                missing.append(' or '.join(FOLDER_KEYS[view]))
            else:
                folders[view] = self.opt[key]
        if missing:
            raise ValueError(f'{self.name}: mode {self.mode} needs dataroot + split (official DPDD layout) or '
                             f'the folder keys {", ".join(missing)}.')
        return folders

    def __len__(self):
        return len(self.scenes)

    def __getitem__(self, index):
        paths = self.scenes[index]
        views = {view: read_image_unchanged(path) for view, path in paths.items()}
        shapes = {view: array.shape[:2] for view, array in views.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f'{self.name}: views of different sizes: '
                             + ', '.join(f'{paths[v]} is {s[0]}x{s[1]}' for v, s in shapes.items()))
        # drawn from python's random, which BasicSR seeds per worker
        rng = np.random.default_rng(random.getrandbits(64)) if self.train else None
        if self.train and self.gt_size:  # crop before converting: 4x fewer pixels at 512 -> 256
            views = random_crop_views(views, int(self.gt_size), rng, what=f'{self.name} {paths["gt"]}')
        views = {view: to_float_rgb(array, paths[view]) for view, array in views.items()}
        if self.train:
            views = apply_augmentation(views, *draw_augmentation(rng, self.hflip, self.rot),
                                       swap_mirrored=self.swap_views)
        return dual_pixel_sample(views, self.mode, paths)


@DATASET_REGISTRY.register()
class Dataset_DefocusDeblur_DualPixel_16bit(DPDDDataset):  # noqa: N801 (Restormer's name)
    """Restormer's name for the dual-pixel DPDD dataset, so Restormer's YAML files run unchanged
    (same keys: dataroot_gt, dataroot_lqL, dataroot_lqR, gt_size, geometric_augs)."""

    default_mode = 'dual_pixel'
