"""The embedded default data: defocus-blurred crops of scikit-image's photographs."""
import numpy as np
import pytest
import torch

from basicsr.data import build_dataset
from basicsr_vitloss.data.synthetic_defocus_dataset import (PHOTOGRAPHS, SyntheticDefocusDataset, defocus,
                                                            disk_kernel, load_photograph)


def _dataset(**opt):
    base = dict(name='t', type='SyntheticDefocusDataset', phase='val', num_samples=4, gt_size=48)
    base.update(opt)
    return SyntheticDefocusDataset(base)


def _gradient_energy(t):
    return float((t[:, :, 1:] - t[:, :, :-1]).pow(2).mean() + (t[:, 1:, :] - t[:, :-1, :]).pow(2).mean())


def test_photographs_ship_with_the_installed_package():
    for name in PHOTOGRAPHS:
        image = load_photograph(name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05


def test_disk_kernel_is_a_normalized_symmetric_disk():
    kernel = disk_kernel(3.0)
    assert kernel.shape == (7, 7)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-7)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-7)
    assert kernel[3, 3] == kernel.max() and kernel[0, 0] == 0  # corners lie outside the disk
    assert disk_kernel(0.2).shape == (1, 1)


def test_defocus_preserves_flat_regions_and_blurs_edges():
    flat = np.full((20, 20, 3), 0.3, np.float32)
    np.testing.assert_allclose(defocus(flat, 2.5), flat, atol=1e-6)
    step = np.zeros((20, 20, 1), np.float32)
    step[:, 10:] = 1
    row = defocus(step, 2.5)[10]
    assert 0.05 < row[9] < 0.5 < row[10] < 0.95  # the edge is spread over neighbouring pixels


def test_sample_format_matches_basicsr():
    sample = _dataset()[1]
    assert set(sample) == {'lq', 'gt', 'lq_path', 'gt_path'}
    for key in ('lq', 'gt'):
        assert sample[key].shape == (3, 48, 48) and sample[key].dtype == torch.float32
        assert 0.0 <= sample[key].min() and sample[key].max() <= 1.0
    assert sample['lq_path'].endswith('_00001.png')


def test_lq_is_a_blurred_gt():
    dataset = _dataset(radius_range=[3.0, 3.0], num_samples=len(PHOTOGRAPHS))
    for sample in dataset:
        assert _gradient_energy(sample['lq']) < 0.7 * _gradient_energy(sample['gt'])
        assert (sample['lq'] - sample['gt']).abs().mean() < 0.1  # the same crop, blurred


def test_samples_are_deterministic_per_index_and_seed():
    a, b = _dataset(seed=3, phase='train'), _dataset(seed=3, phase='train')
    assert torch.equal(a[2]['lq'], b[2]['lq']) and torch.equal(a[2]['gt'], b[2]['gt'])
    assert not torch.equal(a[2]['gt'], a[3]['gt'])
    assert not torch.equal(a[2]['gt'], _dataset(seed=4, phase='train')[2]['gt'])


def test_noise_is_added_to_lq_only():
    clean, noisy = _dataset(noise_std=0.0)[0], _dataset(noise_std=0.05)[0]
    assert torch.equal(clean['gt'], noisy['gt'])
    assert 0.03 < float((noisy['lq'] - clean['lq']).std()) < 0.07


def test_iteration_ends_and_index_is_checked():
    assert len(list(_dataset(num_samples=3))) == 3
    with pytest.raises(IndexError):
        _dataset(num_samples=3)[3]


def test_built_through_basicsr_registry():
    dataset = build_dataset(dict(name='t', type='SyntheticDefocusDataset', phase='train', num_samples=5, gt_size=32))
    assert isinstance(dataset, SyntheticDefocusDataset) and len(dataset) == 5


@pytest.mark.parametrize('opt, message', [
    (dict(gt_size=5000), "gt_size 5000 does not fit photograph"),
    (dict(images=['nope']), "Unknown photograph 'nope'"),
    (dict(radius_range=[3, 1]), 'radius_range must be'),
    (dict(num_samples=0), 'num_samples must be >= 1'),
    (dict(noise_std=-1), 'noise_std must be >= 0'),
])
def test_bad_options_name_the_key(opt, message):
    with pytest.raises((ValueError, KeyError), match=message):
        _dataset(**opt)
