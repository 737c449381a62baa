"""Validation on float images for the metrics that take them, 16-bit result images, and the
metrics in a `python -m basicsr.train` run."""
import re

import cv2
import numpy as np
import pytest
import torch
import torchvision
from torch.utils.data import DataLoader

from basicsr.metrics.psnr_ssim import calculate_psnr
from basicsr.models import build_model
from basicsr.utils import tensor2img
from basicsr_vitloss.data.synthetic_dp_dataset import SyntheticDualPixelDataset
from conftest import run, tiny_options

NETWORK = {'type': 'NAFNet', 'img_channel': 6, 'out_channels': 3, 'width': 8, 'enc_blk_nums': [1],
           'dec_blk_nums': [1], 'middle_blk_num': 1}
METRICS = {'psnr8': {'type': 'calculate_psnr', 'crop_border': 0}, 'psnr': {'type': 'calculate_psnr_float'},
           'ssim': {'type': 'calculate_ssim_float'}, 'mae': {'type': 'calculate_mae'}}


def _model(tmp_path, metrics, **val):
    torch.manual_seed(0)
    opt = {'name': 'fv', 'model_type': 'SRModel', 'is_train': False, 'dist': False, 'rank': 0, 'num_gpu': 0,
           'scale': 1, 'network_g': dict(NETWORK),
           'path': {'pretrain_network_g': None, 'visualization': str(tmp_path / 'vis')},
           'val': {'metrics': metrics, 'suffix': 'out', **val}}
    return build_model(opt)


def _loader():
    dataset = SyntheticDualPixelDataset({'name': 'synthetic', 'phase': 'val', 'num_samples': 3, 'gt_size': 40,
                                         'seed': 7, 'noise_std': 0.01})
    return dataset, DataLoader(dataset, batch_size=1)


def test_float_metrics_get_unrounded_images_and_8_bit_metrics_stay_as_basicsr(tmp_path):
    model = _model(tmp_path, METRICS)
    dataset, loader = _loader()
    model.validation(loader, current_iter=1, tb_logger=None, save_img=False)
    expected_float, expected_8bit, expected_mae = [], [], []
    with torch.no_grad():
        for sample in dataset:
            out = model.net_g(sample['lq'][None]).clamp(0, 1)[0].double()
            gt = sample['gt'].double()
            expected_float.append(10 * np.log10(1 / float(((out - gt)**2).mean())))
            expected_mae.append(float((out - gt).abs().mean()))
            expected_8bit.append(calculate_psnr(tensor2img(out), tensor2img(gt), crop_border=0))
    results = model.metric_results
    assert results['psnr'] == pytest.approx(np.mean(expected_float), abs=1e-4)
    assert results['mae'] == pytest.approx(np.mean(expected_mae), abs=1e-6)
    assert results['psnr8'] == pytest.approx(np.mean(expected_8bit), abs=1e-9)
    assert 0 < results['ssim'] < 1


def test_without_float_metrics_basicsrs_own_validation_runs(tmp_path, monkeypatch):
    from basicsr_vitloss.utils import float_validation
    calls = []
    monkeypatch.setattr(float_validation, 'float_validation', lambda *a: calls.append(a))
    model = _model(tmp_path, {'psnr8': METRICS['psnr8']})
    model.validation(_loader()[1], current_iter=1, tb_logger=None, save_img=False)
    assert calls == [] and model.metric_results['psnr8'] > 0


def test_save_16bit_writes_the_unrounded_result(tmp_path):
    model = _model(tmp_path, {'mae': METRICS['mae']}, save_16bit=True)
    dataset, loader = _loader()
    model.validation(loader, current_iter=1, tb_logger=None, save_img=True)
    saved = sorted((tmp_path / 'vis' / 'synthetic').glob('*_out.png'))
    assert len(saved) == 3
    image = cv2.imread(str(saved[0]), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint16 and image.shape == (40, 40, 3)
    with torch.no_grad():
        out = model.net_g(dataset[0]['lq'][None]).clamp(0, 1)[0].numpy().transpose(1, 2, 0)[..., ::-1]
    np.testing.assert_array_equal(image, (out * 65535).round().astype(np.uint16))
    assert len(np.unique(image)) > 256  # more levels than 8 bits hold


@pytest.mark.integration
def test_all_five_metrics_in_a_basicsr_training_run(tmp_path):
    weights = tmp_path / 'weights'
    weights.mkdir()
    torch.save(torchvision.models.alexnet().state_dict(), weights / 'alexnet-owt-7be5be79.pth')
    metrics = {'psnr': {'type': 'calculate_psnr_float'}, 'ssim': {'type': 'calculate_ssim_float'},
               'mae': {'type': 'calculate_mae'},
               'lpips': {'type': 'calculate_lpips', 'net': 'alex', 'weights_dir': str(weights), 'better': 'lower'},
               'niqe': {'type': 'calculate_niqe', 'crop_border': 0, 'better': 'lower'}}
    tiny_options(tmp_path / 'm.yml', name='m', total_iter=2, **{
        'val:metrics': metrics, 'val:val_freq': 2, 'val:save_16bit': True,
        'datasets:val:gt_size': 192,  # NIQE needs two 96x96 blocks
        'datasets:val:num_samples': 1, 'logger:save_checkpoint_freq': 2})
    run(['python', '-m', 'basicsr.train', '-opt', 'm.yml'], cwd=tmp_path)
    log = '\n'.join(p.read_text() for p in (tmp_path / 'experiments' / 'm').glob('train_*.log'))
    for name in metrics:
        values = re.findall(rf'# {name}: ([-\d.e+]+|nan|inf)', log)
        assert values and all(np.isfinite(float(v)) for v in values), (name, values)
    saved = next((tmp_path / 'experiments' / 'm' / 'visualization').rglob('*_2.png'))
    assert cv2.imread(str(saved), cv2.IMREAD_UNCHANGED).dtype == np.uint16
