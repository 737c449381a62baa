"""Official Restormer / NAFNet training recipes in BasicSR: any torch optimizer, their schedulers,
PSNRLoss and gradient clipping."""
import copy
import math

import pytest
import torch

from basicsr.losses import build_loss
from basicsr.models import build_model
from basicsr_vitloss import compat
from basicsr_vitloss.losses.psnr_loss import PSNRLoss
from basicsr_vitloss.models.lr_schedulers import CosineAnnealingRestartCyclicLR, TrueCosineAnnealingLR
from basicsr_vitloss.models.training_setup import build_optimizer, enable_training_setup
from conftest import run, tiny_options

NETWORK = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'enc_blk_nums': [1], 'dec_blk_nums': [1],
           'middle_blk_num': 1}


def _optimizer(lr=1e-3):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _lrs(scheduler, steps):
    """The learning rate at iterations 0..steps (stepping once per iteration, as BasicSR does)."""
    lrs = [scheduler.optimizer.param_groups[0]['lr']]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.optimizer.param_groups[0]['lr'])
    return lrs


def _opt(model_type='SRModel', **train):
    return {'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'scale': 1,
            'network_g': dict(NETWORK), 'path': {'pretrain_network_g': None},
            'train': {'ema_decay': 0, 'total_iter': 10,
                      'optim_g': {'type': 'AdamW', 'lr': 3e-4, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
                      'scheduler': {'type': 'CosineAnnealingRestartCyclicLR', 'periods': [4, 6],
                                    'restart_weights': [1, 1], 'eta_mins': [3e-4, 1e-6]},
                      'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}, **train}}


# --------------------------------------------------------------------------- schedulers
def test_cyclic_cosine_holds_then_anneals_and_stays_at_the_end():
    base = 3e-4
    scheduler = CosineAnnealingRestartCyclicLR(_optimizer(base), periods=[4, 6], restart_weights=[1, 1],
                                               eta_mins=[base, 1e-6])
    lrs = _lrs(scheduler, 14)
    expected = [base] * 5 + [1e-6 + 0.5 * (base - 1e-6) * (1 + math.cos(math.pi * (t - 4) / 6)) for t in range(5, 11)]
    assert lrs[:11] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert lrs[10] == pytest.approx(1e-6)
    assert lrs[11:] == pytest.approx([1e-6] * 4)  # past the last cycle: the final value, no crash


def test_cyclic_cosine_refuses_lists_of_different_lengths():
    with pytest.raises(ValueError, match=r"restart_weights.*lengths \{'periods': 2, 'restart_weights': 1"):
        CosineAnnealingRestartCyclicLR(_optimizer(), periods=[4, 6], restart_weights=[1], eta_mins=[0, 0])


def test_true_cosine_goes_from_base_to_eta_min():
    scheduler = TrueCosineAnnealingLR(_optimizer(1e-3), T_max=10, eta_min=1e-7)
    lrs = _lrs(scheduler, 10)
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[5] == pytest.approx((1e-3 + 1e-7) / 2)
    assert lrs[10] == pytest.approx(1e-7)


# --------------------------------------------------------------------------- optimizers
def test_get_optimizer_builds_any_torch_optimizer_with_its_options():
    enable_training_setup()
    from basicsr.models.base_model import BaseModel
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = BaseModel.get_optimizer(None, 'AdamW', params, lr=2e-4, weight_decay=0.05, betas=[0.9, 0.9])
    assert type(optimizer) is torch.optim.AdamW
    group = optimizer.param_groups[0]
    assert (group['lr'], group['weight_decay'], tuple(group['betas'])) == (2e-4, 0.05, (0.9, 0.9))
    assert type(build_optimizer('SGD', params, lr=0.1, momentum=0.9)) is torch.optim.SGD


def test_unknown_optimizer_names_the_option_and_close_matches():
    with pytest.raises(ValueError, match=r"'AdamW2' \(train:optim_g:type\).*Did you mean: AdamW"):
        build_optimizer('AdamW2', [torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    with pytest.raises(ValueError, match='train:optim_g: AdamW does not accept.*momentum'):
        build_optimizer('AdamW', [torch.nn.Parameter(torch.zeros(1))], lr=1e-3, momentum=0.9)


def test_enable_training_setup_is_idempotent():
    from basicsr.models.base_model import BaseModel
    before = (BaseModel.get_optimizer, BaseModel.setup_schedulers)
    enable_training_setup()
    assert (BaseModel.get_optimizer, BaseModel.setup_schedulers) == before
    assert getattr(BaseModel.get_optimizer, compat.MARK) == 'training_setup'
    assert compat.is_original(BaseModel.get_optimizer.__basicsr_original__)


# --------------------------------------------------------------------------- through a model
def test_model_gets_adamw_and_the_cyclic_scheduler_and_keeps_its_options():
    opt = _opt()
    model = build_model(opt)
    assert type(model.optimizer_g) is torch.optim.AdamW
    assert model.optimizer_g.param_groups[0]['weight_decay'] == 1e-4
    assert [type(s) for s in model.schedulers] == [CosineAnnealingRestartCyclicLR]
    assert opt['train']['scheduler']['type'] == 'CosineAnnealingRestartCyclicLR'


@pytest.mark.parametrize('scheduler, message', [
    ({'type': 'CosineAnnealingRestartCycleLR', 'periods': [4]},
     r"'CosineAnnealingRestartCycleLR' \(train:scheduler:type\).*Did you mean: CosineAnnealingRestartCyclicLR"),
    ({'type': 'TrueCosineAnnealingLR', 'periods': [4]},
     r'train:scheduler: TrueCosineAnnealingLR does not accept.*accepts: T_max, eta_min'),
])
def test_bad_scheduler_options_name_the_option(scheduler, message):
    with pytest.raises(ValueError, match=message):
        build_model(_opt(scheduler=scheduler))


# --------------------------------------------------------------------------- PSNRLoss
def test_psnr_loss_is_minus_the_mean_psnr_of_each_image():
    target = torch.full((2, 3, 8, 8), 0.5)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01: PSNR 20 dB
    pred[1] += 0.01  # MSE 1e-4: PSNR 40 dB
    mses = [0.01, 1e-4]
    expected = -sum(10 * math.log10(1 / m) for m in mses) / 2
    assert float(PSNRLoss()(pred, target)) == pytest.approx(expected, rel=1e-4)
    assert float(PSNRLoss(loss_weight=0.5)(pred, target)) == pytest.approx(expected / 2, rel=1e-4)


def test_psnr_loss_on_y_compares_luma_only():
    target = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8
    pred = target + torch.tensor([0.2, 0.0, -0.1]).view(1, 3, 1, 1)
    y_difference = (65.481 * 0.2 + 24.966 * -0.1) / 255  # the same at every pixel
    expected = -10 * math.log10(1 / y_difference**2)
    assert float(PSNRLoss(toY=True)(pred, target)) == pytest.approx(expected, rel=1e-3)


def test_psnr_loss_gradients_flow_and_autocast_is_float32():
    pred = torch.rand(2, 3, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 8, 8)
    loss = PSNRLoss()(pred, target)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with torch.autocast('cpu', dtype=torch.bfloat16):
        half = PSNRLoss()(pred.bfloat16(), target.bfloat16())
    assert half.dtype == torch.float32


def test_psnr_loss_refuses_other_reductions_and_is_registered():
    with pytest.raises(ValueError, match="reduction 'sum'"):
        PSNRLoss(reduction='sum')
    loss = build_loss({'type': 'PSNRLoss', 'loss_weight': 2.0, 'toY': True})
    assert type(loss) is PSNRLoss and loss.loss_weight == 2.0 and loss.toY


# --------------------------------------------------------------------------- gradient clipping
def _norm_seen_by_step(use_grad_clip):
    opt = _opt('ProgressiveSRModel', use_grad_clip=use_grad_clip, grad_clip_norm=0.01)
    opt['train']['pixel_opt'] = {'type': 'MSELoss', 'loss_weight': 100.0}
    model = build_model(copy.deepcopy(opt))
    seen = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    model.optimizer_g.register_step_pre_hook(record)
    generator = torch.Generator().manual_seed(0)
    model.feed_data({'lq': torch.rand(2, 3, 16, 16, generator=generator),
                     'gt': torch.rand(2, 3, 16, 16, generator=generator)})
    model.optimize_parameters(1)
    assert len(seen) == 1
    return seen[0]


def test_gradient_clipping_bounds_the_global_norm_before_the_step():
    assert _norm_seen_by_step(True) <= 0.01 + 1e-6
    assert _norm_seen_by_step(False) > 0.02


def test_bad_clip_norm_is_refused():
    with pytest.raises(ValueError, match="train:grad_clip_norm must be a positive number, got 'x'"):
        build_model(_opt('ProgressiveSRModel', use_grad_clip=True, grad_clip_norm='x'))


# --------------------------------------------------------------------------- end to end
@pytest.mark.integration
def test_nafnet_recipe_trains_with_basicsr_train(tmp_path):
    options = tiny_options(tmp_path / 'recipe.yml', 'recipe', 4, **{
        'model_type': 'ProgressiveSRModel',
        'train:optim_g': {'type': 'AdamW', 'lr': 0.001, 'weight_decay': 0.001, 'betas': [0.9, 0.9]},
        'train:scheduler': {'type': 'TrueCosineAnnealingLR', 'T_max': 4, 'eta_min': 1e-7},
        'train:pixel_opt': {'type': 'PSNRLoss', 'loss_weight': 1.0},
        'train:use_grad_clip': True})
    run(['python', '-m', 'basicsr.train', '-opt', options], cwd=tmp_path)
    log = next((tmp_path / 'experiments' / 'recipe').glob('train_recipe_*.log')).read_text()
    assert 'End of training' in log
    assert 'l_pix: -' in log  # PSNRLoss is negative
    assert (tmp_path / 'experiments' / 'recipe' / 'training_states' / '4.state').is_file()
