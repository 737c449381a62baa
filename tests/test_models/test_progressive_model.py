"""Restormer-style progressive patch / batch sizes and mixup, driven by BasicSR's training loop."""
import copy

import pytest
import torch

from basicsr.models import build_model
from basicsr_vitloss.models.progressive_model import ImageCleanModel, ProgressiveSchedule, ProgressiveSRModel
from conftest import run, tiny_options

NETWORK = {'type': 'NAFNet', 'img_channel': 6, 'out_channels': 3, 'width': 8, 'enc_blk_nums': [1],
           'dec_blk_nums': [1], 'middle_blk_num': 1}
STAGES = {'gt_size': 32, 'batch_size_per_gpu': 4, 'iters': [2, 3, 4], 'gt_sizes': [16, 24, 32],
          'mini_batch_sizes': [4, 2, 1]}


def _model(model_type='ProgressiveSRModel', stages=STAGES, mixing=None):
    opt = {'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'scale': 1,
           'datasets': {'train': {'name': 't', 'type': 'SyntheticDualPixelDataset', **copy.deepcopy(stages)}},
           'network_g': dict(NETWORK), 'path': {'pretrain_network_g': None},
           'train': {'ema_decay': 0, 'total_iter': 9, 'optim_g': {'type': 'Adam', 'lr': 1e-3},
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}}}
    if mixing is not None:
        opt['train']['mixing_augs'] = mixing
    return build_model(opt)


def _batch(n=4, size=32):
    """gt codes each pixel's position and sample; lq = (gt, 1 - gt) so any crop can be checked."""
    yy, xx = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing='ij')
    gt = torch.stack([torch.stack([xx, yy, torch.full_like(xx, i / n)]) for i in range(n)])
    return {'lq': torch.cat([gt, 1 - gt], dim=1), 'gt': gt}


def test_stage_boundaries_follow_the_cumulative_iterations():
    schedule = ProgressiveSchedule(STAGES)
    assert schedule.ends == [2, 5, 9]
    assert [schedule.stage(i) for i in (1, 2, 3, 5, 6, 9, 10, 1000)] == [0, 0, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize('change, message', [
    ({'gt_sizes': [16, 24]}, 'one length'),
    ({'gt_sizes': [16, 24, 48]}, 'go beyond gt_size 32'),
    ({'mini_batch_sizes': [8, 2, 1]}, 'go beyond batch_size_per_gpu 4'),
])
def test_inconsistent_stages_are_refused_at_construction(change, message):
    with pytest.raises(ValueError, match=message):
        ProgressiveSchedule({**STAGES, **change})


@pytest.mark.integration
def test_each_stage_trains_on_its_patch_and_batch_size_with_one_window_for_lq_and_gt():
    model = _model()
    seen = []
    forward = model.net_g.forward

    def recording_forward(x):
        seen.append((model.lq.clone(), model.gt.clone()))
        return forward(x)

    model.net_g.forward = recording_forward
    for current_iter in range(1, 10):
        model.feed_data(_batch())
        model.optimize_parameters(current_iter)
    shapes = [tuple(gt.shape) for _, gt in seen]
    assert shapes == [(4, 3, 16, 16)] * 2 + [(2, 3, 24, 24)] * 3 + [(1, 3, 32, 32)] * 4
    full = _batch()['gt']
    for lq, gt in seen:
        torch.testing.assert_close(lq, torch.cat([gt, 1 - gt], dim=1))  # the same window and samples
        size = gt.shape[-1]
        x0, y0 = int(round(float(gt[0, 0, 0, 0]) * 32)), int(round(float(gt[0, 1, 0, 0]) * 32))
        for sample in gt:  # one window for the whole batch, samples taken whole from the loaded batch
            index = int(round(float(sample[2, 0, 0]) * 4))
            torch.testing.assert_close(sample, full[index, :, y0:y0 + size, x0:x0 + size])
    assert len({int(round(float(gt[0, 0, 0, 0]) * 32)) for _, gt in seen[:5]}) > 1  # windows are random


def test_without_stages_it_is_srmodel():
    model = _model(stages={'gt_size': 32, 'batch_size_per_gpu': 4})
    model.feed_data(_batch())
    model.optimize_parameters(1)
    assert model.schedule is None and model.gt.shape == (4, 3, 32, 32)


@pytest.mark.integration
def test_mixup_blends_lq_and_gt_with_one_weight_and_order():
    torch.manual_seed(0)
    model = _model(stages={'gt_size': 32, 'batch_size_per_gpu': 4},
                   mixing={'mixup': True, 'mixup_beta': 1.2, 'use_identity': False})
    batch = _batch()
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert not torch.equal(model.gt, batch['gt'])
    torch.testing.assert_close(model.lq, torch.cat([model.gt, 1 - model.gt], dim=1))
    # each mixed sample is a convex combination of two samples: its sample code lies between codes
    codes = model.gt[:, 2, 0, 0]
    assert ((codes >= 0) & (codes <= 0.75 + 1e-6)).all()


def test_restormers_model_name_is_registered():
    assert isinstance(_model('ImageCleanModel'), ImageCleanModel)
    assert issubclass(ImageCleanModel, ProgressiveSRModel)


@pytest.mark.integration
def test_progressive_stages_run_in_basicsr_train(tmp_path):
    tiny_options(tmp_path / 'prog.yml', name='prog', total_iter=4, **{
        'model_type': 'ImageCleanModel', 'datasets:train:gt_size': 24, 'datasets:train:batch_size_per_gpu': 2,
        'datasets:train:iters': [2, 2], 'datasets:train:gt_sizes': [16, 24],
        'datasets:train:mini_batch_sizes': [2, 1], 'val:val_freq': 4, 'logger:save_checkpoint_freq': 4})
    out = run(['python', '-m', 'basicsr.train', '-opt', 'prog.yml'], cwd=tmp_path)
    log = out.stdout + out.stderr
    assert 'Model [ImageCleanModel] is created' in log
    assert 'stage 1/2 from iteration 1: patch size 16, batch size 2' in log
    assert 'stage 2/2 from iteration 3: patch size 24, batch size 1' in log


def test_dataparallel_keeps_every_gpus_share_of_the_stage_batch():
    """num_gpu 2 without a launcher: BasicSR loads 2 x batch_size_per_gpu images, one batch for both GPUs."""
    model = _model()
    model.opt['num_gpu'] = 2
    model.feed_data(_batch(n=8))
    model.progressive_crop(3)  # stage 2: mini_batch_sizes 2 per GPU
    assert model.gt.shape[0] == 4
    model.opt['dist'] = True  # under DDP each process loads its own share
    model.feed_data(_batch(n=8))
    model.progressive_crop(3)
    assert model.gt.shape[0] == 2
