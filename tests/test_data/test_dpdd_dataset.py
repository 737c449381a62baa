"""DPDDDataset: both layouts, both modes, bit depths, identical crops / augmentation across views,
the dual-pixel swap under horizontal flips, and clear errors for every kind of bad tree."""
import os
import random

import cv2
import numpy as np
import pytest
import torch

from basicsr.data import build_dataset
from basicsr_vitloss.data.dpdd_dataset import DPDDDataset
from basicsr_vitloss.data.image_io import read_image
from conftest import dpdd_release_names, dpdd_scene, make_dpdd_tree


def _official(root, **opt):
    return DPDDDataset({'name': 'dpdd', 'dataroot': str(root), 'split': 'train', 'phase': 'val', **opt})


def _crops(folders, **opt):
    keys = {'lqL': 'dataroot_lqL', 'lqR': 'dataroot_lqR', 'lqC': 'dataroot_lqC', 'gt': 'dataroot_gt'}
    return DPDDDataset({'name': 'dpdd', 'phase': 'val', **{keys[v]: f for v, f in folders.items()}, **opt})


@pytest.mark.parametrize('bits', [8, 16])
def test_official_layout_reads_full_precision_in_both_modes(tmp_path, bits):
    make_dpdd_tree(tmp_path, bits=bits, size=(40, 56))
    expected = {view: torch.from_numpy(a.transpose(2, 0, 1).astype(np.float64) / (2**bits - 1))
                for view, a in dpdd_scene(40, 56, seed=1, bits=bits).items()}
    dual = _official(tmp_path)[1]
    assert dual['lq'].shape == (6, 40, 56) and dual['gt'].shape == (3, 40, 56) and dual['lq'].dtype == torch.float32
    torch.testing.assert_close(dual['lq'].double(), torch.cat([expected['lqL'], expected['lqR']]), rtol=0, atol=1e-7)
    torch.testing.assert_close(dual['gt'].double(), expected['gt'], rtol=0, atol=1e-7)
    # the release's names: source 1P0A1776 has target 1P0A1775; results are named after the source scene
    assert dual['lqL_path'].endswith(os.path.join('train_l', 'source', '1P0A1776_L.png'))
    assert dual['gt_path'].endswith(os.path.join('train_c', 'target', '1P0A1775.png'))
    assert dual['lqR_path'].endswith('1P0A1776_R.png')
    assert os.path.basename(dual['lq_path']) == '1P0A1776.png'
    single = _official(tmp_path, mode='single')[1]
    assert single['lq'].shape == (3, 40, 56)
    torch.testing.assert_close(single['lq'].double(), expected['lqC'], rtol=0, atol=1e-7)


def test_16_bit_values_are_not_rounded_to_8_bits(tmp_path):
    make_dpdd_tree(tmp_path, bits=16)
    gt = _official(tmp_path)[0]['gt']
    levels = torch.unique(torch.round(gt[2] * 65535))  # the noise channel: 2240 random 16-bit values
    assert len(levels) > 1000 and not torch.allclose(gt, torch.round(gt * 255) / 255, atol=1e-5)


def test_crop_layout_with_restormer_keys_and_its_class_name(tmp_path):
    folders = make_dpdd_tree(tmp_path, layout='crops')
    dataset = _crops(folders)
    assert len(dataset) == 3 and dataset[2]['lq'].shape == (6, 40, 56)
    restormer = build_dataset({'name': 'r', 'type': 'Dataset_DefocusDeblur_DualPixel_16bit', 'phase': 'train',
                               'dataroot_gt': folders['gt'], 'dataroot_lqL': folders['lqL'],
                               'dataroot_lqR': folders['lqR'], 'gt_size': 16, 'geometric_augs': True,
                               'io_backend': {'type': 'disk'}, 'filename_tmpl': '{}'})
    assert restormer[0]['lq'].shape == (6, 16, 16)
    single = DPDDDataset({'name': 's', 'phase': 'val', 'mode': 'single', 'dataroot_lq': folders['lqC'],
                          'dataroot_gt': folders['gt']})
    assert single[0]['lq'].shape == (3, 40, 56)


def _transform_of(gt):
    """(horizontally mirrored, transposed) read back from the coordinate-coded target."""
    x = gt[0]
    transposed = bool((x[1:, 0] != x[0, 0]).any())  # x varies down the rows
    along = x[:, 0] if transposed else x[0, :]
    return bool(along[0] > along[-1]), transposed


@pytest.mark.parametrize('layout', ['official', 'crops'])
def test_training_crops_and_augments_every_view_identically_and_swaps_on_hflip(tmp_path, layout):
    folders = make_dpdd_tree(tmp_path, layout=layout, scenes=2, size=(40, 56))
    opt = {'name': 'dpdd', 'phase': 'train', 'gt_size': 24, 'use_hflip': True, 'use_rot': True}
    if layout == 'official':
        dataset = DPDDDataset({**opt, 'dataroot': str(tmp_path), 'split': 'train'})
    else:
        dataset = _crops(folders, **opt)
    random.seed(0)
    seen = set()
    for trial in range(40):
        scene = trial % 2
        sample = dataset[scene]
        gt, left, right = sample['gt'], sample['lq'][:3], sample['lq'][3:]
        assert gt.shape == (3, 24, 24)
        mirrored, transposed = _transform_of(gt)
        seen.add((mirrored, transposed))
        # the target is a window of the scene moved by the drawn transform
        source = torch.from_numpy(dpdd_scene(40, 56, seed=scene)['gt'].transpose(2, 0, 1).astype(np.float32) / 65535)
        x0 = int(round(float(gt[0].min()) * 55))
        y0 = int(round(float(gt[1].min()) * 39))
        window = source[:, y0:y0 + 24, x0:x0 + 24]
        if mirrored:
            window = window.flip(-1)
        if bool(gt[1, 0, 0] > gt[1, -1, -1]):
            window = window.flip(-2)
        if transposed:
            window = window.transpose(1, 2)
        torch.testing.assert_close(gt, window, rtol=0, atol=1e-6)
        # the views moved the same way; left and right exchange exactly when the flip mirrored x
        as_left, as_right = (1 - gt, gt) if mirrored else (gt, 1 - gt)
        torch.testing.assert_close(left, as_left, rtol=0, atol=1e-6)
        torch.testing.assert_close(right, as_right, rtol=0, atol=1e-6)
    assert {m for m, _ in seen} == {False, True} and {t for _, t in seen} == {False, True}


def test_swap_can_be_turned_off(tmp_path):
    make_dpdd_tree(tmp_path, scenes=1)
    dataset = _official(tmp_path, phase='train', gt_size=16, use_rot=False, swap_views_on_hflip=False)
    random.seed(1)
    for _ in range(12):
        sample = dataset[0]
        torch.testing.assert_close(sample['lq'][:3], sample['gt'], rtol=0, atol=1e-6)  # left stays left


def test_validation_returns_whole_images_without_augmentation(tmp_path):
    make_dpdd_tree(tmp_path, split='val', scenes=2)
    dataset = DPDDDataset({'name': 'v', 'dataroot': str(tmp_path), 'split': 'val', 'phase': 'val', 'gt_size': 16})
    sample = dataset[0]
    assert sample['gt'].shape == (3, 40, 56)
    torch.testing.assert_close(sample['lq'][:3], sample['gt'], rtol=0, atol=0)


@pytest.mark.integration
def test_loads_through_basicsr_dataloader_with_a_worker(tmp_path):
    from basicsr.data import build_dataloader
    make_dpdd_tree(tmp_path, scenes=4)
    dataset = build_dataset({'name': 'd', 'type': 'DPDDDataset', 'dataroot': str(tmp_path), 'split': 'train',
                             'phase': 'train', 'gt_size': 16})
    loader = build_dataloader(dataset, {'phase': 'train', 'num_worker_per_gpu': 1, 'batch_size_per_gpu': 2,
                                        'use_shuffle': True}, num_gpu=0, dist=False, sampler=None, seed=0)
    batch = next(iter(loader))
    assert batch['lq'].shape == (2, 6, 16, 16) and batch['gt'].shape == (2, 3, 16, 16)


# ---- bad input: named files, raised at construction for pairing, at load for decoding --------------

def test_missing_folder_is_named(tmp_path):
    make_dpdd_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match=r'folder .*val_l.source does not exist'):
        DPDDDataset({'name': 'd', 'dataroot': str(tmp_path), 'split': 'val'})


def test_different_counts_name_the_scene_and_folder(tmp_path):
    folders = make_dpdd_tree(tmp_path, scenes=3)
    os.remove(os.path.join(folders['lqR'], '1P0A1776_R.png'))
    with pytest.raises(ValueError, match=r"(?s)lqR 2 files.*lqR folder .*train_r.source has no file for 1 scene"
                                         r".*'1P0A1776' .e.g. lqL: 1P0A1776_L.png"):
        _official(tmp_path)


def test_source_names_that_do_not_pair_are_listed(tmp_path):
    folders = make_dpdd_tree(tmp_path, scenes=2)
    os.rename(os.path.join(folders['lqR'], '1P0A2544_R.png'), os.path.join(folders['lqR'], 'other_R.png'))
    with pytest.raises(ValueError, match=r"(?s)do not pair.*('1P0A2544'.*'other'|'other'.*'1P0A2544')"):
        _official(tmp_path)


def test_duplicate_scene_names_in_one_folder(tmp_path):
    folders = make_dpdd_tree(tmp_path, scenes=1)
    src = os.path.join(folders['lqL'], '1P0A0890_L.png')
    os.link(src, os.path.join(folders['lqL'], '1P0A0890.png'))
    with pytest.raises(ValueError,
                       match=r'1P0A0890.png and 1P0A0890_L.png are both scene|1P0A0890_L.png and 1P0A0890.png'):
        _official(tmp_path)


def test_views_of_different_sizes_are_named_at_construction(tmp_path):
    folders = make_dpdd_tree(tmp_path, scenes=2)
    path = os.path.join(folders['lqR'], '1P0A2544_R.png')
    cv2.imwrite(path, np.zeros((40, 50, 3), np.uint16))
    with pytest.raises(ValueError, match=r'views of different sizes.*1P0A2544_R.png is 40x50'):
        _official(tmp_path)


def test_crop_larger_than_the_image(tmp_path):
    make_dpdd_tree(tmp_path, scenes=1, size=(40, 56))
    with pytest.raises(ValueError, match=r'1P0A0890.*40x56, smaller than the crop gt_size 48'):
        _official(tmp_path, phase='train', gt_size=48)


@pytest.mark.parametrize('damage', ['truncate', 'garbage'])
def test_corrupt_png_is_named_at_load(tmp_path, damage):
    folders = make_dpdd_tree(tmp_path, scenes=2)
    path = os.path.join(folders['lqL'], '1P0A2544_L.png')
    content = open(path, 'rb').read()
    open(path, 'wb').write(content[:len(content) // 2] if damage == 'truncate' else b'not a png at all' * 4)
    if damage == 'garbage':  # the header is already unreadable: caught at construction
        with pytest.raises(OSError, match=r'1P0A2544_L.png: not a valid PNG'):
            _official(tmp_path)
        return
    dataset = _official(tmp_path)
    dataset[0]
    with pytest.raises(OSError, match=r'1P0A2544_L.png: cannot decode'):
        dataset[1]


@pytest.mark.parametrize('opt, error, message', [
    ({'mode': 'triple'}, ValueError, "mode must be one of dual_pixel, single, got 'triple'"),
    ({'split': 'training'}, ValueError, "split must be one of train, val, test, got 'training'"),
    ({'dataroot_gt': 'x'}, ValueError, 'either dataroot .* or the per-view folders'),
    ({'io_backend': {'type': 'lmdb'}}, ValueError, "io_backend type 'lmdb' is not supported"),
])
def test_bad_options(tmp_path, opt, error, message):
    make_dpdd_tree(tmp_path, scenes=1)
    with pytest.raises(error, match=message):
        _official(tmp_path, **opt)


def test_missing_folder_keys_are_listed():
    with pytest.raises(ValueError, match='needs dataroot \\+ split .* dataroot_lqL, dataroot_lqR, dataroot_gt'):
        DPDDDataset({'name': 'd', 'phase': 'train'})


def test_read_image_scales_by_each_files_bit_depth(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((4, 4), 65535, np.uint16))
    cv2.imwrite(str(tmp_path / 'b.png'), np.full((4, 4), 255, np.uint8))
    assert read_image(str(tmp_path / 'a.png')).shape == (4, 4, 3)
    assert read_image(str(tmp_path / 'a.png')).min() == 1.0 and read_image(str(tmp_path / 'b.png')).min() == 1.0


# ---- the release's pairing: sources by name, targets by checked sorted position -----------------------

@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_release_names_pair_as_the_published_file_lists(tmp_path, split):
    make_dpdd_tree(tmp_path, split=split, scenes=6, size=(8, 8))
    dataset = DPDDDataset({'name': 'd', 'dataroot': str(tmp_path), 'split': split, 'phase': 'val'})
    expected = dpdd_release_names(split, 6)
    assert any(int(t[-4:]) - int(s[-4:]) == -1 for s, t in expected)  # offsets of both signs are exercised
    assert any(int(t[-4:]) - int(s[-4:]) == 1 for s, t in expected)
    for scene, (source, target) in zip(dataset.scenes, expected):
        assert scene.name == source
        assert os.path.basename(scene.paths['gt']) == f'{target}.png'
        assert os.path.basename(scene.paths['lqL']) == f'{source}_L.png'


def test_name_pairing_refuses_the_release_and_says_why(tmp_path):
    make_dpdd_tree(tmp_path, scenes=2)
    with pytest.raises(ValueError, match=r"(?s)do not pair .* by name.*1P0A0890.*1P0A0891.*pairing: position"):
        _official(tmp_path, pairing='name')


def test_target_of_another_capture_is_listed(tmp_path):
    folders = make_dpdd_tree(tmp_path, scenes=3)
    os.rename(os.path.join(folders['gt'], '1P0A1775.png'), os.path.join(folders['gt'], '1P0A1790.png'))
    with pytest.raises(ValueError, match=r'1 of 3 .*pairs .* not the same capture: 1P0A1776 vs 1P0A1790'):
        _official(tmp_path)


def test_a_missing_target_is_not_silently_shifted(tmp_path):
    folders = make_dpdd_tree(tmp_path, scenes=3)
    os.remove(os.path.join(folders['gt'], '1P0A0891.png'))
    with pytest.raises(ValueError, match=r'3 sources but 2 targets; they pair by sorted position'):
        _official(tmp_path)
    with pytest.raises(ValueError, match=r'pairing must be one of auto, name, position'):
        _official(tmp_path, pairing='sorted')


def test_crops_named_alike_pair_by_name_and_by_position(tmp_path):
    folders = make_dpdd_tree(tmp_path, layout='crops', scenes=3)
    by_name, by_position = _crops(folders, pairing='name'), _crops(folders, pairing='position')
    assert [s.paths for s in by_name.scenes] == [s.paths for s in by_position.scenes]
    assert [s.name for s in by_name.scenes] == [f'{src}_0' for src, _ in dpdd_release_names('train', 3)]


def test_single_input_average_is_the_mean_of_the_16_bit_views(tmp_path):
    make_dpdd_tree(tmp_path, scenes=1, size=(12, 16))
    views = dpdd_scene(12, 16, seed=0, bits=16)
    expected = (views['lqL'].astype(np.float64) + views['lqR']) / 2 / 65535  # RGB
    sample = _official(tmp_path, mode='single', single_input='average')[0]
    torch.testing.assert_close(sample['lq'].double(), torch.from_numpy(expected.transpose(2, 0, 1)), rtol=0, atol=1e-6)
    combined = _official(tmp_path, mode='single')[0]['lq']  # default: the release's combined view
    assert not torch.allclose(combined, sample['lq'], atol=1e-3)
    with pytest.raises(ValueError, match="single_input must be one of combined, average, got 'mean'"):
        _official(tmp_path, mode='single', single_input='mean')


def test_restormer_class_name_does_not_swap_views_on_flip(tmp_path):
    folders = make_dpdd_tree(tmp_path, layout='crops', scenes=1, size=(16, 16))
    opt = {'name': 'r', 'phase': 'train', 'dataroot_gt': folders['gt'], 'dataroot_lqL': folders['lqL'],
           'dataroot_lqR': folders['lqR'], 'gt_size': 16, 'use_hflip': True, 'use_rot': False}
    restormer = build_dataset({**opt, 'type': 'Dataset_DefocusDeblur_DualPixel_16bit'})
    ours = build_dataset({**opt, 'type': 'DPDDDataset'})
    seen = set()
    for seed in range(12):
        random.seed(seed)
        sample = restormer[0]
        random.seed(seed)
        swapped = ours[0]
        flipped, _ = _transform_of(sample['gt'])
        seen.add(flipped)
        # without the swap the left channels always hold the (possibly mirrored) left view = gt here
        torch.testing.assert_close(sample['lq'][:3], sample['gt'])
        if flipped:
            torch.testing.assert_close(swapped['lq'][3:], sample['lq'][:3])
    assert seen == {True, False}
