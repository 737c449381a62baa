"""Mixed precision and micro-batches in BasicSR's training step (models/training_step.py).

The fp16 tests run the real fp16 path on the CPU: CPU autocast computes in float16 (every convolution, checked
below) and ``torch.amp.GradScaler('cpu')`` scales, unscales, finds infs and skips steps as on GPUs; fused
Adam / AdamW run on the CPU too."""
import copy

import pytest
import torch

import basicsr_vitloss  # noqa: F401  (registration, the patched step)
from basicsr.models import build_model
from conftest import run, tiny_options

NET = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'middle_blk_num': 1, 'enc_blk_nums': [1], 'dec_blk_nums': [1]}


def model_options(model_type='SRModel', **train):
    opt = {'name': 'step', 'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'scale': 1,
           'network_g': copy.deepcopy(NET),
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                     'total_iter': 10, 'warmup_iter': -1,
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}}}
    opt['train'].update(train)
    return opt


def built(opt, seed=0):
    torch.manual_seed(seed)
    model = build_model(opt)
    for p in model.net_g.parameters():  # NAFNet's beta / gamma start at 0: make every path matter
        torch.nn.init.normal_(p, std=0.05)
    return model


def one_step(opt, batch, seed=0):
    model = built(opt, seed)
    model.feed_data(batch)
    model.optimize_parameters(1)
    return model


def batch(size=4, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(size, 3, 16, 16, generator=generator),
            'gt': torch.rand(size, 3, 16, 16, generator=generator)}


@pytest.mark.parametrize('count', [2, 4])
def test_micro_batches_give_the_unsplit_update(count):
    data = batch()
    whole = one_step(model_options(), data)
    split = one_step(model_options(micro_batches=count), data)
    for (name, a), b in zip(whole.net_g.state_dict().items(), split.net_g.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(split.log_dict['l_pix'], whole.log_dict['l_pix'], rtol=1e-5, atol=1e-7)
    assert split.output.shape == whole.output.shape == (4, 3, 16, 16)


def test_micro_batches_must_divide_the_batch():
    with pytest.raises(ValueError, match='train:micro_batches = 3 does not divide the batch of 4 images'):
        one_step(model_options(micro_batches=3), batch())
    with pytest.raises(ValueError, match='train:micro_batches must be a positive integer'):
        one_step(model_options(micro_batches=0.5), batch())


def test_micro_batches_per_progressive_stage():
    opt = model_options('ProgressiveSRModel', micro_batches=[2, 1])
    opt['datasets'] = {'train': {'iters': [1, 9], 'gt_sizes': [16, 16], 'mini_batch_sizes': [4, 2], 'gt_size': 16,
                                 'batch_size_per_gpu': 4}}
    model = one_step(opt, batch())
    assert model.output.shape[0] == 4  # stage 1: 4 images in 2 chunks
    with pytest.raises(ValueError, match=r'one entry per progressive stage \(datasets:train:iters has 2'):
        opt['train']['micro_batches'] = [2, 1, 1]
        one_step(opt, batch())


@pytest.mark.parametrize('precision, dtype', [('bf16', torch.bfloat16), ('fp16', torch.float16)])
def test_mixed_precision_step_runs_the_net_in_low_precision_and_trains_close_to_float32(precision, dtype, monkeypatch):
    data = batch()
    full = one_step(model_options(), data)
    seen = []
    original = torch.nn.Conv2d.forward
    monkeypatch.setattr(torch.nn.Conv2d, 'forward',
                        lambda self, x: seen.append(original(self, x).dtype) or original(self, x))
    mixed = one_step(model_options(mixed_precision=precision), data)
    assert seen and set(seen) == {dtype}  # every convolution ran under autocast
    assert mixed.log_dict['l_pix'] == pytest.approx(full.log_dict['l_pix'], rel=0.02)
    assert mixed.output.dtype == torch.float32
    moved = max((a - b).abs().max() for a, b in zip(mixed.net_g.parameters(), full.net_g.parameters()))
    assert 0 < moved < 5e-3  # Adam's first step moves each weight by about lr = 1e-3, in both


def test_fp16_scaler_state_is_saved_and_restored(tmp_path):
    opt = model_options(mixed_precision='fp16')
    opt['path']['training_states'] = str(tmp_path)
    model = one_step(opt, batch())
    scaler = model.schedulers[-1].scaler
    scaler.update(1234.0)  # a scale no fresh scaler has
    model.save_training_state(epoch=0, current_iter=1)
    state = torch.load(tmp_path / '1.state', map_location='cpu', weights_only=False)
    assert state['schedulers'][-1]['grad_scaler']['scale'] == 1234.0
    resumed = build_model(copy.deepcopy(opt))
    resumed.resume_training(state)
    assert resumed.schedulers[-1].scaler.get_scale() == 1234.0
    plain = build_model(model_options())
    with pytest.raises(ValueError, match='saved with train: mixed_precision: fp16'):  # not BasicSR's assertion
        plain.resume_training(state)


def test_bad_precision_is_named():
    with pytest.raises(ValueError, match="train:mixed_precision must be one of bf16, fp16 or null, got 'fp8'"):
        build_model(model_options(mixed_precision='fp8'))


@pytest.mark.integration
def test_bf16_trains_and_resumes_through_basicsr_train(tmp_path):
    tiny_options(tmp_path / 'bf16.yml', name='bf16', total_iter=4, **{
        'train:mixed_precision': 'bf16', 'train:micro_batches': 2, 'val:mixed_precision': 'bf16',
        'logger:save_checkpoint_freq': 2, 'val:val_freq': 4})
    run(['python', '-m', 'basicsr.train', '-opt', 'bf16.yml'], cwd=tmp_path)
    log = '\n'.join(p.read_text() for p in (tmp_path / 'experiments' / 'bf16').glob('train_*.log'))
    assert 'iter:       4' in log and '# psnr:' in log
    assert 'Training step: mixed_precision bf16, micro_batches 2.' in log  # the plugin's step ran
    tiny_options(tmp_path / 'bf16.yml', name='bf16', total_iter=6, **{
        'train:mixed_precision': 'bf16', 'train:micro_batches': 2, 'logger:save_checkpoint_freq': 2,
        'val:val_freq': 6})
    run(['python', '-m', 'basicsr.train', '-opt', 'bf16.yml', '--auto_resume'], cwd=tmp_path)
    log = '\n'.join(p.read_text() for p in (tmp_path / 'experiments' / 'bf16').glob('train_*.log'))
    assert 'Resuming training from epoch' in log and 'iter:       6' in log


@pytest.fixture
def clip_norms(monkeypatch):
    """The norms torch.nn.utils.clip_grad_norm_ returns, recorded call by call (the clipping itself unchanged)."""
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def recording(parameters, max_norm, *args, **kwargs):
        norm = original(parameters, max_norm, *args, **kwargs)
        norms.append(float(norm))
        return norm
    monkeypatch.setattr(torch.nn.utils, 'clip_grad_norm_', recording)
    return norms


def test_fp16_gradients_are_unscaled_before_clipping(clip_norms):
    data = batch()
    one_step(model_options('ProgressiveSRModel', use_grad_clip=True), data)
    one_step(model_options('ProgressiveSRModel', use_grad_clip=True, mixed_precision='fp16'), data)
    float32, fp16 = clip_norms
    assert fp16 == pytest.approx(float32, rel=0.05)  # scaled gradients would be ~65536x larger


@pytest.mark.integration
def test_multi_stage_model_with_micro_batches_logs_every_part_and_equals_the_unsplit_step():
    mprnet = {'type': 'MPRNet', 'n_feat': 8, 'scale_unetfeats': 4, 'scale_orsnetfeats': 4, 'num_cab': 1}
    edge = {'type': 'EdgeLoss', 'loss_weight': 0.05}
    whole = model_options('MultiStageModel', edge_opt=edge)
    split = model_options('MultiStageModel', edge_opt=edge, micro_batches=2)
    whole['network_g'] = split['network_g'] = mprnet
    data = batch()
    a, b = one_step(whole, data), one_step(split, data)
    assert set(b.log_dict) == {'l_pix', 'l_edge'}
    for key in ('l_pix', 'l_edge'):
        torch.testing.assert_close(b.log_dict[key], a.log_dict[key], rtol=1e-5, atol=1e-7)
    for x, y in zip(a.net_g.parameters(), b.net_g.parameters()):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)
    assert b.output.shape == (4, 3, 16, 16)


@pytest.mark.parametrize('optimizer', ['Adam', 'AdamW'])
def test_fp16_fused_optimizer_clips_unscaled_gradients(optimizer, clip_norms):
    """GradScaler.step hands fused Adam / AdamW the scaled gradients (the kernel unscales them itself), so a
    clip inside optimizer.step saw norms x65536 unless the step unscales explicitly first."""
    norms = clip_norms  # building the start copy below clips nothing
    data = batch()
    # eps 1 makes Adam's update proportional to the gradient, so a second unscale would show (65536x smaller)
    optim = {'type': optimizer, 'lr': 1e-3, 'betas': [0.9, 0.99], 'eps': 1.0, 'fused': True}
    start = [p.detach().clone() for p in built(model_options()).net_g.parameters()]  # what one_step starts from
    float32 = one_step(model_options('ProgressiveSRModel', use_grad_clip=True, optim_g=dict(optim)), data)
    fp16 = one_step(model_options('ProgressiveSRModel', use_grad_clip=True, optim_g=dict(optim),
                                  mixed_precision='fp16'), data)
    assert fp16.optimizer_g.defaults['fused'] is True
    assert len(norms) == 2
    assert norms[1] == pytest.approx(norms[0], rel=0.05)  # scaled: ~65536x larger
    update32 = torch.cat([(p.detach() - s).flatten() for p, s in zip(float32.net_g.parameters(), start)])
    update16 = torch.cat([(p.detach() - s).flatten() for p, s in zip(fp16.net_g.parameters(), start)])
    assert update32.abs().max() > 1e-6
    torch.testing.assert_close(update16, update32, rtol=0.05, atol=0.05 * float(update32.abs().max()))


def inf_batch():
    data = batch()
    data['lq'][0, 0, 0, 0] = float('inf')  # an fp16 overflow: inf / NaN gradients, the scaler skips the step
    return data


def test_fp16_skipped_step_leaves_net_g_and_its_ema_unchanged():
    opt = model_options(mixed_precision='fp16', ema_decay=0.5)
    torch.manual_seed(0)
    model = build_model(opt)
    for p in model.net_g.parameters():  # net_g_ema starts as net_g's copy: make them differ
        torch.nn.init.normal_(p, std=0.05)
    net = copy.deepcopy(model.net_g.state_dict())
    ema = copy.deepcopy(model.net_g_ema.state_dict())
    scale = model.schedulers[-1].scaler.get_scale()
    model.feed_data(inf_batch())
    model.optimize_parameters(1)
    assert model.schedulers[-1].scaler.get_scale() == scale / 2  # the scaler found infs and skipped
    for name, value in model.net_g.state_dict().items():
        torch.testing.assert_close(value, net[name], rtol=0, atol=0, msg=name)
    for name, value in model.net_g_ema.state_dict().items():
        torch.testing.assert_close(value, ema[name], rtol=0, atol=0, msg=name)
    model.feed_data(batch())  # a finite step updates both again
    model.optimize_parameters(2)
    assert any(not torch.equal(v, ema[k]) for k, v in model.net_g_ema.state_dict().items())
    assert any(not torch.equal(v, net[k]) for k, v in model.net_g.state_dict().items())


def test_fp16_skipped_first_step_gives_no_scheduler_order_warning_and_the_schedule_advances():
    """BasicSR steps the schedulers at the start of every iteration after the first; a first step the scaler
    skipped made torch warn that lr_scheduler.step() came before optimizer.step()."""
    import warnings
    opt = model_options(mixed_precision='fp16', scheduler={'type': 'MultiStepLR', 'milestones': [1], 'gamma': 0.5})
    model = build_model(opt)
    model.feed_data(inf_batch())
    model.optimize_parameters(1)
    assert model.schedulers[-1].scaler.get_scale() == 32768.0  # skipped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model.update_learning_rate(2)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if 'lr_scheduler.step()' in m], messages
    assert model.get_current_learning_rate() == [pytest.approx(5e-4)]  # one schedule step per iteration


def test_fused_fp16_skipped_step_leaves_net_g_unchanged():
    optim = {'type': 'AdamW', 'lr': 1e-3, 'fused': True}
    opt = model_options('ProgressiveSRModel', use_grad_clip=True, optim_g=optim, mixed_precision='fp16')
    torch.manual_seed(0)
    model = build_model(opt)
    net = copy.deepcopy(model.net_g.state_dict())
    model.feed_data(inf_batch())
    model.optimize_parameters(1)
    assert model.schedulers[-1].scaler.get_scale() == 32768.0
    for name, value in model.net_g.state_dict().items():
        torch.testing.assert_close(value, net[name], rtol=0, atol=0, msg=name)
    assert all(int(s['step']) == 0 for s in model.optimizer_g.state.values())  # the kernel undid its count


@pytest.mark.parametrize('saved, resumed', [('fp16', None), (None, 'fp16'), ('fp16', 'bf16'), ('bf16', 'fp16')])
def test_resuming_across_the_fp16_scaler_names_the_precisions(saved, resumed, tmp_path):
    opt = model_options(mixed_precision=saved)
    opt['path']['training_states'] = str(tmp_path)
    one_step(opt, batch()).save_training_state(epoch=0, current_iter=1)
    state = torch.load(tmp_path / '1.state', map_location='cpu', weights_only=False)
    model = build_model(model_options(mixed_precision=resumed))
    with pytest.raises(ValueError) as error:
        model.resume_training(state)
    message = str(error.value)
    assert f'train: mixed_precision: {resumed or "null"}' in message
    if saved == 'fp16':
        assert 'saved with train: mixed_precision: fp16' in message
    else:
        assert 'saved without the fp16 gradient scaler (train: mixed_precision: bf16 or null)' in message


def test_resuming_between_bf16_and_float32_needs_no_scaler(tmp_path):
    opt = model_options(mixed_precision='bf16')
    opt['path']['training_states'] = str(tmp_path)
    one_step(opt, batch()).save_training_state(epoch=0, current_iter=1)
    state = torch.load(tmp_path / '1.state', map_location='cpu', weights_only=False)
    model = build_model(model_options())
    model.resume_training(state)
    assert model.schedulers[0].last_epoch == state['schedulers'][0]['last_epoch']
