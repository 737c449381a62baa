"""The embedded default data: dual-pixel defocus rendered from scikit-image's photographs."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from basicsr.data import build_dataset
from basicsr_vitloss.data.dual_pixel_defocus import aperture_kernels, render_dual_pixel
from basicsr_vitloss.data.sample_photographs import PHOTOGRAPHS, load_disparity, load_photograph
from basicsr_vitloss.data.synthetic_dp_dataset import SyntheticDualPixelDataset


def _dataset(**opt):
    base = dict(name='t', phase='val', num_samples=4, gt_size=48)
    base.update(opt)
    return SyntheticDualPixelDataset(base)


def _centroid_x(kernel):
    xs = np.arange(kernel.shape[1]) - kernel.shape[1] // 2
    return float((kernel.sum(axis=0) * xs).sum())


def test_photographs_and_the_motorcycle_disparity_ship_with_scikit_image():
    for name in PHOTOGRAPHS:
        image = load_photograph(name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    disparity = load_disparity('motorcycle')
    assert disparity.shape == load_photograph('motorcycle').shape[:2] and np.isfinite(disparity).all()
    assert disparity.max() > 2 * disparity.min() > 0  # a real depth range, occlusions filled
    assert load_disparity('astronaut') is None


@pytest.mark.parametrize('radius', [0.8, 3.0, -3.0, 5.5])
def test_aperture_kernels_are_mirrored_half_disks_of_the_full_disk(radius):
    left, right, full = aperture_kernels(radius)
    size = 2 * math.ceil(abs(radius)) + 1
    assert left.shape == right.shape == full.shape == (size, size)
    for kernel in (left, right, full):
        assert kernel.sum() == pytest.approx(1.0, abs=1e-6) and kernel.min() >= 0
    np.testing.assert_allclose(right, left[:, ::-1], atol=1e-7)
    np.testing.assert_allclose(left + right, 2 * full, atol=1e-6)
    np.testing.assert_allclose(full, full.T, atol=1e-7)
    # r > 0: the left view sees the left half (mass at x < 0); the side flips with the sign of r
    assert np.sign(_centroid_x(left)) == -np.sign(radius)
    if abs(radius) >= 3:  # centroid of a half-disk: 4 r / (3 pi) from the centre
        assert abs(_centroid_x(left)) == pytest.approx(4 * abs(radius) / (3 * math.pi), rel=0.05)


def test_in_focus_kernels_are_the_identity():
    for kernel in aperture_kernels(0.3):
        assert kernel.shape == (1, 1) and kernel[0, 0] == 1


def test_constant_radius_render_equals_a_direct_convolution():
    image = load_photograph('astronaut')[100:160, 200:270]
    left, right, combined = render_dual_pixel(image, np.full(image.shape[:2], 3.0, np.float32))
    kernel_left, kernel_right, kernel_full = aperture_kernels(3.0)
    for view, kernel in ((left, kernel_left), (right, kernel_right), (combined, kernel_full)):
        reference = np.stack([ndimage.correlate(image[..., c], kernel, mode='mirror') for c in range(3)], axis=2)
        np.testing.assert_allclose(view, reference, atol=2e-5)


def test_in_focus_pixels_stay_sharp_and_the_views_agree_there():
    image = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    radius = np.zeros((40, 60), np.float32)
    radius[:, 40:] = 4.0  # right part far behind the focal plane
    left, right, combined = render_dual_pixel(image, radius)
    np.testing.assert_allclose(left[:, :30], image[:, :30], atol=1e-6)  # away from the blurred part
    np.testing.assert_allclose(right[:, :30], image[:, :30], atol=1e-6)
    assert np.abs(left[:, 45:] - right[:, 45:]).mean() > 0.01
    np.testing.assert_allclose(combined, (left + right) / 2, atol=1e-6)


def test_mirroring_the_scene_mirrors_the_views_with_left_and_right_exchanged():
    image = load_photograph('chelsea')[50:114, 80:160]
    yy, xx = np.mgrid[0:64, 0:80]
    radius = (xx / 80.0 * 8 - 3 + np.sin(yy / 9.0)).astype(np.float32)  # both signs, varying
    left, right, combined = render_dual_pixel(image, radius)
    m_left, m_right, m_combined = render_dual_pixel(image[:, ::-1], radius[:, ::-1])
    np.testing.assert_allclose(m_left, right[:, ::-1], atol=1e-5)
    np.testing.assert_allclose(m_right, left[:, ::-1], atol=1e-5)
    np.testing.assert_allclose(m_combined, combined[:, ::-1], atol=1e-5)


@pytest.mark.parametrize('radius', [4.0, -4.0])
def test_defocus_disparity_shifts_the_views_against_each_other(radius):
    edge = np.zeros((9, 60, 1), np.float32)
    edge[:, 30:] = 1.0
    left, right, _ = render_dual_pixel(np.repeat(edge, 3, axis=2), np.full((9, 60), radius, np.float32))
    # where each view's edge crosses one half: a sub-pixel position
    cross = [float(np.interp(0.5, row[4, :, 0], np.arange(60))) for row in (left, right)]
    expected = 2 * 4 * abs(radius) / (3 * math.pi)  # distance between the half-disk centroids
    assert abs(cross[0] - cross[1]) == pytest.approx(expected, rel=0.25)
    assert np.sign(cross[1] - cross[0]) == -np.sign(radius)


@pytest.mark.parametrize('mode, channels', [('dual_pixel', 6), ('single', 3)])
def test_sample_format_matches_dpdd_dataset(mode, channels):
    sample = _dataset(mode=mode)[1]
    assert set(sample) == {'lq', 'gt', 'lq_path', 'gt_path', 'lqL_path', 'lqR_path', 'lqC_path'}
    assert sample['lq'].shape == (channels, 48, 48) and sample['gt'].shape == (3, 48, 48)
    for key in ('lq', 'gt'):
        assert sample[key].dtype == torch.float32 and 0 <= sample[key].min() and sample[key].max() <= 1
    assert sample['gt_path'].endswith('_00001.png')
    assert sample['lq_path'].endswith('_00001.png')  # named after the scene, as DPDDDataset's
    assert sample['lqL_path'].endswith('_00001_L.png') and sample['lqC_path'].endswith('_00001_C.png')


def test_modes_share_the_scene():
    dual, single = _dataset()[2], _dataset(mode='single')[2]
    assert torch.equal(dual['gt'], single['gt'])
    torch.testing.assert_close(single['lq'], (dual['lq'][:3] + dual['lq'][3:]) / 2, rtol=0, atol=1e-6)


def test_left_and_right_differ_off_focus_and_agree_in_focus():
    dataset = _dataset(num_samples=len(PHOTOGRAPHS), gt_size=96, radius_range=[4.0, 4.0])
    for index in range(len(dataset)):
        views, scene, _ = dataset.render(index)
        radius = scene['radius']
        difference = np.abs(views['lqL'] - views['lqR']).mean(axis=2)
        in_focus, off_focus = np.abs(radius) < 0.1, np.abs(radius) > 2.5
        assert in_focus.any() and off_focus.any()  # the focal plane lies inside every crop
        assert difference[off_focus].mean() > 0.005
        assert difference[in_focus].max() < 1e-6  # a blur under half a pixel: both views are the scene
        np.testing.assert_allclose(views['lqC'][in_focus], views['gt'][in_focus], atol=1e-6)


def test_motorcycle_blur_follows_the_scene_disparity():
    dataset = _dataset(images=['motorcycle'], gt_size=128, num_samples=3)
    disparity = load_disparity('motorcycle')
    for index in range(3):
        _, scene, _ = dataset.render(index)
        assert scene['photograph'] == 'motorcycle'
        crop = disparity[scene['top']:scene['top'] + 128, scene['left']:scene['left'] + 128]
        # blur radius is linear in inverse depth (disparity), growing towards the camera
        slope, offset = np.polyfit(crop.ravel(), scene['radius'].ravel(), 1)
        assert slope > 0
        np.testing.assert_allclose(scene['radius'], slope * crop + offset, atol=1e-4)
    random_depth = _dataset(images=['motorcycle'], gt_size=128, depth='random').render(0)[1]['radius']
    assert not np.allclose(random_depth, dataset.render(0)[1]['radius'])


def test_samples_are_deterministic_per_index_and_seed_augmentation_included():
    a, b = _dataset(seed=3, phase='train'), _dataset(seed=3, phase='train')
    assert torch.equal(a[2]['lq'], b[2]['lq']) and torch.equal(a[2]['gt'], b[2]['gt'])
    assert not torch.equal(a[2]['gt'], a[3]['gt'])
    assert not torch.equal(a[2]['gt'], _dataset(seed=4, phase='train')[2]['gt'])


def test_training_augmentation_swaps_the_views_on_horizontal_flips():
    dataset = _dataset(phase='train', num_samples=24, use_rot=False, images=['astronaut'])
    flips = 0
    for index in range(len(dataset)):
        views = dataset.render(index)[0]
        sample = dataset[index]
        gt = sample['gt'].numpy().transpose(1, 2, 0)
        flipped = not np.array_equal(gt, views['gt'])
        if flipped:
            flips += 1
            np.testing.assert_array_equal(gt, views['gt'][:, ::-1])
            left, right = views['lqR'][:, ::-1], views['lqL'][:, ::-1]
        else:
            left, right = views['lqL'], views['lqR']
        np.testing.assert_array_equal(sample['lq'].numpy().transpose(1, 2, 0), np.concatenate([left, right], 2))
    assert 0 < flips < len(dataset)


def test_noise_is_added_to_the_blurry_views_only():
    clean, noisy = _dataset(noise_std=0.0)[0], _dataset(noise_std=0.05)[0]
    assert torch.equal(clean['gt'], noisy['gt'])
    assert 0.03 < float((noisy['lq'] - clean['lq']).std()) < 0.07


def test_iteration_ends_and_index_is_checked():
    assert len(list(_dataset(num_samples=3))) == 3
    with pytest.raises(IndexError):
        _dataset(num_samples=3)[3]


def test_built_through_basicsr_registry():
    dataset = build_dataset(dict(name='t', type='SyntheticDualPixelDataset', phase='train', num_samples=5,
                                 gt_size=32))
    assert isinstance(dataset, SyntheticDualPixelDataset) and len(dataset) == 5


@pytest.mark.parametrize('opt, message', [
    (dict(gt_size=5000), "gt_size 5000 does not fit photograph"),
    (dict(images=['nope']), "Unknown photograph 'nope'"),
    (dict(radius_range=[3, 1]), 'radius_range must be'),
    (dict(num_samples=0), 'num_samples must be >= 1'),
    (dict(noise_std=-1), 'noise_std must be >= 0'),
    (dict(mode='stereo'), "mode must be one of dual_pixel, single, got 'stereo'"),
    (dict(depth='lidar'), "depth must be one of auto, random, got 'lidar'"),
])
def test_bad_options_name_the_key(opt, message):
    with pytest.raises((ValueError, KeyError), match=message):
        _dataset(**opt)


@pytest.mark.integration
def test_contact_sheet_script_writes_one_row_per_sample(tmp_path):
    import cv2
    from conftest import REPO, run
    out = tmp_path / 'sheet.png'
    run(['python', REPO / 'scripts' / 'dual_pixel_contact_sheet.py', '--out', out, '--size', '40',
         '--images', 'astronaut', 'motorcycle'], cwd=tmp_path)
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 44, 6 * 44, 3)
    tiles = [sheet[46:86, 2 + 44 * c:42 + 44 * c].astype(int) for c in range(6)]
    assert np.abs(tiles[1] - tiles[2]).mean() > 0  # the motorcycle's left and right views differ
