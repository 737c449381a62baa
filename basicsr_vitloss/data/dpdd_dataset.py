"""DPDD (Abuolaim and Brown, ECCV 2020): dual-pixel defocus deblurring pairs for BasicSR."""
import os
import random

import numpy as np
from torch.utils import data

from basicsr.utils.registry import DATASET_REGISTRY
from basicsr_vitloss.data.dpdd_files import check_pairing, check_scene_sizes, official_view_folders, pair_view_files
from basicsr_vitloss.data.image_io import read_image_unchanged, to_float_rgb
from basicsr_vitloss.data.view_transforms import apply_augmentation, draw_augmentation, random_crop_views, to_tensor

#: mode -> the input views concatenated (in this order) into ``lq``
MODE_VIEWS = {'dual_pixel': ('lqL', 'lqR'), 'single': ('lqC',)}
#: single_input -> the views a single-image input is made of (their mean)
SINGLE_INPUTS = {'combined': ('lqC',), 'average': ('lqL', 'lqR')}
#: view -> option keys that may name its folder (Restormer's keys first)
FOLDER_KEYS = {'lqL': ('dataroot_lqL',), 'lqR': ('dataroot_lqR',), 'lqC': ('dataroot_lqC', 'dataroot_lq'),
               'gt': ('dataroot_gt',)}


def parse_augmentation_options(opt):
    """(hflip, rot) from BasicSR's ``use_hflip`` / ``use_rot`` or Restormer's ``geometric_augs``."""
    if 'geometric_augs' in opt:
        both = bool(opt['geometric_augs'])
        return bool(opt.get('use_hflip', both)), bool(opt.get('use_rot', both))
    return bool(opt.get('use_hflip', True)), bool(opt.get('use_rot', True))


def dual_pixel_sample(views, mode, scene, single_input='combined'):
    """BasicSR's sample dict from {view: (H, W, 3) float array}: lq = the mode's views concatenated
    (dual_pixel) or the single-image input (single: the combined view, or the mean of left and right).

    ``lq_path`` carries the scene's name (the source's, without ``_L``), because BasicSR names
    validation and test results after it; the files read are in ``lqL_path`` / ``lqR_path`` /
    ``lqC_path``."""
    if mode == 'single':
        inputs = SINGLE_INPUTS[single_input]
        lq = views[inputs[0]] if len(inputs) == 1 else np.mean([views[v] for v in inputs], axis=0, dtype=np.float32)
    else:
        lq = np.concatenate([views[view] for view in MODE_VIEWS[mode]], axis=2)
    paths = scene.paths
    first = next(path for view, path in paths.items() if view != 'gt')  # the first input view's file
    sample = {'lq': to_tensor(lq), 'gt': to_tensor(views['gt']), 'gt_path': paths['gt'],
              'lq_path': os.path.join(os.path.dirname(first), scene.name + os.path.splitext(first)[1])}
    sample.update({f'{view}_path': path for view, path in paths.items() if view.startswith('lq')})
    return sample


@DATASET_REGISTRY.register()
class DPDDDataset(data.Dataset):
    """DPDD scenes (left / right dual-pixel views, their combined image, all-in-focus target).

    Options (YAML keys):
        dataroot (str) + split (train|val|test): the official release layout, or
        dataroot_lqL, dataroot_lqR, dataroot_lqC (or dataroot_lq), dataroot_gt: one folder per view
            (Restormer's keys; e.g. the crops of scripts/prepare_dpdd.py). Only the mode's views are needed.
        mode (str): dual_pixel -> lq = concat(left, right), 6 channels; single -> lq = 3 channels.
        single_input (str): the single-image input: ``combined`` (the release's ``_c/source`` image, as
            Restormer's single-image recipe reads it; the default) or ``average`` (the mean of the 16-bit
            left and right views, the paper's "average of the two views", Sec. IV-A1).
        pairing (str): how targets pair with sources: auto (default) | name | position; see
            ``dpdd_files``. Source views always pair by name.
        gt_size (int): training crop, the same window for all views. None: whole images.
        use_hflip, use_rot (bool) or geometric_augs (bool, Restormer's key for both): training only.
        swap_views_on_hflip (bool): exchange left and right when flipping horizontally (default
            true; see ``view_transforms`` for why; false for Restormer's class name, as its code).
        check_sizes (bool): check at construction that all views of a scene have one size, from the
            PNG headers. Default true.

    Images of either bit depth are read at full precision (16-bit / 65535). Returns BasicSR's dict:
    lq, gt (float32 RGB in [0, 1]), lq_path (named after the scene), gt_path, and the files read as
    lqL_path / lqR_path / lqC_path.
    """

    default_mode = 'dual_pixel'
    default_swap_views_on_hflip = True

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
        self.swap_views = bool(opt.get('swap_views_on_hflip', self.default_swap_views_on_hflip))
        self.single_input = opt.get('single_input', 'combined')
        if self.single_input not in SINGLE_INPUTS:
            raise ValueError(f"{self.name}: single_input must be one of {', '.join(SINGLE_INPUTS)}, "
                             f"got {self.single_input!r}.")
        pairing = check_pairing(opt.get('pairing', 'auto'), f'{self.name}: pairing')
        self.scenes = pair_view_files(self._view_folders(), what=self.name, pairing=pairing)
        if opt.get('check_sizes', True):
            check_scene_sizes(self.scenes, what=self.name, min_size=self.gt_size)

    def input_views(self):
        """The views read for each sample's input."""
        return SINGLE_INPUTS[self.single_input] if self.mode == 'single' else MODE_VIEWS[self.mode]

    def _view_folders(self):
        views = self.input_views() + ('gt',)
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
        scene = self.scenes[index]
        paths = scene.paths
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
        return dual_pixel_sample(views, self.mode, scene, self.single_input)


@DATASET_REGISTRY.register()
class Dataset_DefocusDeblur_DualPixel_16bit(DPDDDataset):  # noqa: N801 (Restormer's name)
    """Restormer's name for the dual-pixel DPDD dataset, so Restormer's YAML files run unchanged
    (same keys: dataroot_gt, dataroot_lqL, dataroot_lqR, gt_size, geometric_augs). It behaves as
    Restormer's code: a horizontal flip keeps the left and right views where they are
    (``swap_views_on_hflip`` defaults to false; set it to true for the swap)."""

    default_mode = 'dual_pixel'
    default_swap_views_on_hflip = False
