"""MPRNet (architecture), its EdgeLoss and MultiStageModel (losses on every stage).

``tests/data/mprnet_official_manifest.json`` was recorded by running the official code
(github.com/swz30/MPRNet, ``Deblurring/MPRNet.py`` and ``Deblurring/losses.py``; commit and recipes in
the file) outside this repository: the state_dict layout of the default (GoPro) model, the three stage
outputs of a tiny MPRNet on deterministic weights and input, and an EdgeLoss value."""
import copy
import hashlib
import json

import numpy as np
import pytest
import scipy.ndimage
import torch
from torch.nn import functional as F

from basicsr.losses import build_loss
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
from basicsr_vitloss.archs.mprnet_arch import MPRNet
from basicsr_vitloss.losses.mprnet_loss import EdgeLoss
from basicsr_vitloss.models.multi_stage_model import MultiStageModel
from conftest import REPO, TINY_VIT, run, tiny_options

MANIFEST = json.loads((REPO / 'tests' / 'data' / 'mprnet_official_manifest.json').read_text())
TINY = dict(MANIFEST['tiny_model']['kwargs'])  # n_feat 8, scale_unetfeats 4, scale_orsnetfeats 4, num_cab 1


def tiny_net(seed=0, **kwargs):
    torch.manual_seed(seed)
    return MPRNet(**{**TINY, **kwargs})


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- architecture
def test_registered():
    assert ARCH_REGISTRY.get('MPRNet') is MPRNet
    assert LOSS_REGISTRY.get('EdgeLoss') is EdgeLoss
    assert MODEL_REGISTRY.get('MultiStageModel') is MultiStageModel


def test_default_state_dict_layout_is_the_official_one():
    official = MANIFEST['default_model']
    net = MPRNet()
    state = net.state_dict()
    pairs = sorted([k, list(v.shape)] for k, v in state.items())
    assert len(state) == official['num_keys'] == 316
    assert sum(p.numel() for p in net.parameters()) == official['num_parameters'] == 20_127_073
    assert sum(v.numel() for v in state.values()) == official['state_dict_numel']
    assert hashlib.sha256(json.dumps(pairs).encode()).hexdigest() == official['sha256_sorted_key_shapes']
    assert [[k, list(v.shape)] for k, v in list(state.items())[:3]] == official['first_keys']


def test_one_prelu_is_shared_as_in_the_official_code():
    net = tiny_net()
    prelus = {id(m) for m in net.modules() if isinstance(m, torch.nn.PReLU)}
    assert len(prelus) == 1
    state = net.state_dict()
    keys = [k for k in state if k.endswith('body.1.weight') and state[k].numel() == 1]
    assert len(keys) > 10 and len({state[k].data_ptr() for k in keys}) == 1


def _official_tiny_weights(net):
    """The weights recipe of the manifest's tiny model (the official net got the same)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(net.named_parameters()):
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=generator) / p[0].numel() ** 0.5)
            else:
                p.copy_(0.25 + 0.05 * torch.randn(p.shape, generator=generator))
    return net


def test_stage_outputs_equal_the_official_ones():
    recorded = MANIFEST['tiny_model']
    net = _official_tiny_weights(MPRNet(**TINY)).train()
    x = rand(1, 3, 32, 48, seed=1)
    with torch.no_grad():
        stages = net(x)
        final = net.eval()(x)
    assert isinstance(stages, list) and len(stages) == 3
    for out, ref in zip(stages, recorded['stages']):
        assert out.shape == (1, 3, 32, 48)
        assert out.sum().item() == pytest.approx(ref['sum'], rel=1e-5, abs=1e-3)
        assert out.abs().sum().item() == pytest.approx(ref['abs_sum'], rel=1e-5)
        values = [out[0, c, i, j].item() for c, i, j in recorded['positions']]
        np.testing.assert_allclose(values, ref['values'], rtol=1e-5, atol=1e-5)  # outputs ~1-40
    assert torch.equal(final, stages[0])


def test_train_mode_returns_three_stages_and_eval_mode_the_final_tensor():
    net = tiny_net().train()
    x = rand(2, 3, 24, 32)
    with torch.no_grad():
        stages = net(x)
        final = net.eval()(x)
    assert isinstance(stages, list) and [tuple(s.shape) for s in stages] == [(2, 3, 24, 32)] * 3
    assert torch.is_tensor(final)
    torch.testing.assert_close(final, stages[0], rtol=0, atol=0)
    assert (stages[0] - stages[1]).abs().max() > 1e-3 and (stages[1] - stages[2]).abs().max() > 1e-3


@pytest.mark.parametrize('size', [(37, 53), (8, 13), (5, 3), (1, 1)])
def test_any_size_comes_back_the_same_size(size):
    net = tiny_net().train()
    x = rand(1, 3, *size)
    with torch.no_grad():
        stages = net(x)
    assert [tuple(s.shape[-2:]) for s in stages] == [size] * 3
    assert all(torch.isfinite(s).all() for s in stages)


@pytest.mark.integration
def test_odd_size_is_reflect_padded_to_a_multiple_of_8_and_cropped():
    net = tiny_net().eval()
    x = rand(2, 3, 37, 53)
    padded = F.pad(x, (0, 3, 0, 3), mode='reflect')  # 40 x 56
    with torch.no_grad():
        expected = net.forward_stages(padded)[0][..., :37, :53]
        actual = net(x)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@pytest.mark.integration
def test_multiple_of_8_is_not_padded():
    net = tiny_net().eval()
    x = rand(1, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.forward_stages(x)[0], rtol=0, atol=0)
        # a crop of the padded computation differs: the check above could fail
        other = net.forward_stages(F.pad(x, (0, 8, 0, 8), mode='reflect'))[0][..., :40, :56]
    assert (other - net(x)).abs().max() > 1e-4


def test_bad_channels_are_refused():
    with pytest.raises(ValueError, match=r'in_c \(4\) must be a positive multiple of out_c \(3\)'):
        MPRNet(in_c=4, out_c=3, **TINY)
    with pytest.raises(ValueError, match=r'expected an input of shape \(B, 6, H, W\)'):
        MPRNet(in_c=6, out_c=3, **TINY)(torch.zeros(1, 3, 16, 16))


@pytest.mark.integration
def test_dual_pixel_six_to_three_channels():
    net = tiny_net(in_c=6, out_c=3).train()
    x = rand(2, 6, 24, 24)
    stages = net(x)
    assert [tuple(s.shape) for s in stages] == [(2, 3, 24, 24)] * 3
    sum(s.mean() for s in stages).backward()
    assert net.shallow_feat1[0].weight.grad.abs().sum() > 0


def test_dual_pixel_residual_is_the_mean_of_the_views():
    net = tiny_net(in_c=6, out_c=3).eval()
    with torch.no_grad():  # nothing but the residual: no stage image, no tail
        for conv in (net.tail, net.sam12.conv2, net.sam23.conv2):
            conv.weight.zero_()
    left, right = rand(1, 3, 16, 24, seed=1), rand(1, 3, 16, 24, seed=2)
    with torch.no_grad():
        final = net(torch.cat([left, right], dim=1))
        stages = net.train()(torch.cat([left, right], dim=1))
    for out in [final, *stages]:
        torch.testing.assert_close(out, (left + right) / 2, rtol=0, atol=1e-6)


def test_six_channels_with_identical_views_equal_three_channels():
    """Shallow convs that average the two views make the 6 -> 3 net the 3 -> 3 net on (x, x): the
    features and every residual agree only if the residual is the views' mean."""
    net3 = tiny_net().eval()
    net6 = tiny_net(in_c=6, out_c=3).eval()
    state = net3.state_dict()
    for i in (1, 2, 3):
        w = state[f'shallow_feat{i}.0.weight']
        state[f'shallow_feat{i}.0.weight'] = torch.cat([w / 2, w / 2], dim=1)
    net6.load_state_dict(state, strict=True)
    x = rand(1, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(net6(torch.cat([x, x], dim=1)), net3(x), rtol=1e-5, atol=1e-5)


@pytest.mark.integration
def test_official_checkpoint_format_loads_with_param_key_state_dict(tmp_path):
    """The official files: {'state_dict', 'optimizer', 'epoch'}, keys with 'module.' (DataParallel)."""
    source = _official_tiny_weights(MPRNet(**TINY))
    state = {f'module.{k}': v for k, v in source.state_dict().items()}
    torch.save({'epoch': 3000, 'state_dict': state, 'optimizer': {'state': {}, 'param_groups': []}},
               tmp_path / 'model_deblurring.pth')
    opt = {'name': 'mprnet', 'model_type': 'SRModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
           'network_g': {'type': 'MPRNet', **TINY},
           'path': {'pretrain_network_g': str(tmp_path / 'model_deblurring.pth'), 'param_key_g': 'state_dict',
                    'strict_load_g': True}}
    net = build_model(opt).net_g
    for key, value in source.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0)


# --------------------------------------------------------------------------- EdgeLoss
def reference_edge_loss(pred, target, eps=1e-3):
    """MPRNet's edge loss written out in numpy float64 with scipy's filters: 'nearest' is replicate padding."""
    taps = np.array([0.05, 0.25, 0.4, 0.25, 0.05])
    kernel = np.outer(taps, taps)

    def blur(img):
        return scipy.ndimage.correlate(img, kernel, mode='nearest')

    def laplacian(img):
        coarse = np.zeros_like(img)
        coarse[::2, ::2] = 4 * blur(img)[::2, ::2]
        return img - blur(coarse)

    p, t = pred.double().numpy(), target.double().numpy()
    diffs = [laplacian(p[b, c]) - laplacian(t[b, c]) for b in range(p.shape[0]) for c in range(p.shape[1])]
    return float(np.mean(np.sqrt(np.stack(diffs) ** 2 + eps**2)))


@pytest.mark.parametrize('shape', [(2, 3, 20, 28), (1, 3, 17, 9), (1, 6, 12, 12)])
def test_edge_loss_matches_an_independent_computation(shape):
    pred, target = rand(*shape, seed=4), rand(*shape, seed=5)
    expected = reference_edge_loss(pred, target)
    assert EdgeLoss()(pred, target).item() == pytest.approx(expected, rel=1e-6)
    assert EdgeLoss(loss_weight=0.05)(pred, target).item() == pytest.approx(0.05 * expected, rel=1e-6)
    assert EdgeLoss(eps=0.1)(pred, target).item() == pytest.approx(reference_edge_loss(pred, target, 0.1), rel=1e-6)


def test_edge_loss_equals_the_official_value():
    a, b = rand(2, 3, 20, 28, seed=2), rand(2, 3, 20, 28, seed=3)
    assert EdgeLoss()(a, b).item() == pytest.approx(MANIFEST['edge_loss']['value'], rel=1e-6)


def test_edge_loss_of_identical_images_is_its_floor_eps_with_zero_gradient():
    """As in MPRNet (Charbonnier sqrt(d^2 + eps^2)): identical images give eps, not 0."""
    x = rand(2, 3, 16, 16).requires_grad_()
    loss = EdgeLoss(loss_weight=2.0)(x, x.detach().clone())
    assert loss.item() == pytest.approx(2.0 * 1e-3, rel=1e-6)
    loss.backward()
    assert x.grad.abs().max() == 0
    # a brightness offset has no edges: the floor inside; at the borders the replicate-padded zero-insertion
    # upsampling of the official loss does not reconstruct a constant, so the offset shows there
    shifted = EdgeLoss(reduction='none')(x.detach(), x.detach() + 0.2)
    torch.testing.assert_close(shifted[..., 2:-2, 2:-2], torch.full_like(shifted[..., 2:-2, 2:-2], 1e-3))
    assert shifted.max() > 0.01


def test_edge_loss_options_and_yaml():
    loss = build_loss({'type': 'EdgeLoss', 'loss_weight': 0.05})
    assert isinstance(loss, EdgeLoss) and loss.loss_weight == 0.05 and loss.eps == 1e-3
    assert 'kernel' not in loss.state_dict()  # a constant, never in checkpoints
    pred, target = rand(2, 3, 16, 16, seed=1), rand(2, 3, 16, 16, seed=2)
    none = EdgeLoss(reduction='none')(pred, target)
    assert none.shape == pred.shape
    assert EdgeLoss(reduction='sum')(pred, target).item() == pytest.approx(none.sum().item(), rel=1e-6)
    with pytest.raises(ValueError, match='reduction'):
        EdgeLoss(reduction='max')
    with pytest.raises(ValueError, match='one shape'):
        EdgeLoss()(pred, target[..., :8])


# --------------------------------------------------------------------------- MultiStageModel
def model_opt(network, perceptual=True, edge=True, model_type='MultiStageModel'):
    train = {'ema_decay': 0, 'total_iter': 4, 'optim_g': {'type': 'Adam', 'lr': 1e-3},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
             'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'eps': 1e-6}}
    if edge:
        train['edge_opt'] = {'type': 'EdgeLoss', 'loss_weight': 0.05}
    if perceptual:
        train['perceptual_opt'] = {'type': 'LocalMAEPerceptualLoss', 'loss_weight': 0.5, 'pretrained': False,
                                   'backbone_kwargs': TINY_VIT, 'layers': 2, 'mask_ratio': 0}
    return {'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'scale': 1,
            'network_g': copy.deepcopy(network), 'path': {'pretrain_network_g': None}, 'train': train}


@pytest.mark.integration
def test_stage_losses_are_summed_and_the_perceptual_loss_sees_the_final_stage():
    torch.manual_seed(0)
    model = build_model(model_opt({'type': 'MPRNet', **TINY}))
    stages, seen = [], []
    forward, perceptual = model.net_g.forward, model.cri_perceptual.loss.forward

    def record_forward(x):
        out = forward(x)
        stages.extend(s.detach().clone() for s in out)
        return out

    def record_perceptual(pred, target):
        seen.append(pred.detach().clone())
        return perceptual(pred, target)

    model.net_g.forward = record_forward
    model.cri_perceptual.loss.forward = record_perceptual
    gt = rand(2, 3, 32, 32, seed=1)
    model.feed_data({'lq': (gt + 0.1 * rand(2, 3, 32, 32, seed=2)).clamp(0, 1), 'gt': gt})
    model.optimize_parameters(1)

    assert len(stages) == 3
    charbonnier = sum(torch.sqrt((s - gt) ** 2 + 1e-6).mean() for s in stages)
    edge = 0.05 * sum(reference_edge_loss(s, gt) for s in stages)
    assert list(model.log_dict) == ['l_pix', 'l_edge', 'l_percep']
    assert model.log_dict['l_pix'] == pytest.approx(charbonnier.item(), rel=1e-5)
    assert model.log_dict['l_edge'] == pytest.approx(edge, rel=1e-5)
    assert len(seen) == 1 and torch.equal(seen[0], stages[0])  # the final output only
    with torch.no_grad():
        percep, _ = perceptual(stages[0], gt)
    assert model.log_dict['l_percep'] == pytest.approx(percep.item(), rel=1e-5)
    assert torch.is_tensor(model.output) and torch.equal(model.output.detach(), stages[0])
    model.test()
    assert torch.is_tensor(model.output) and model.output.shape == (2, 3, 32, 32)


def test_with_a_tensor_network_it_is_progressive_sr_model():
    network = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1], 'dec_blk_nums': [1], 'middle_blk_num': 1}
    batch = {'lq': rand(2, 3, 16, 16, seed=1), 'gt': rand(2, 3, 16, 16, seed=2)}
    models = []
    for model_type in ('ProgressiveSRModel', 'MultiStageModel'):
        torch.manual_seed(0)
        model = build_model(model_opt(network, perceptual=False, edge=False, model_type=model_type))
        model.feed_data(batch)
        model.optimize_parameters(1)
        models.append(model)
    plain, multi = models
    assert multi.log_dict == plain.log_dict and list(multi.log_dict) == ['l_pix']
    torch.testing.assert_close(multi.output, plain.output, rtol=0, atol=0)
    for (name, a), b in zip(plain.net_g.state_dict().items(), multi.net_g.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_edge_loss_alone_is_refused():
    opt = model_opt({'type': 'MPRNet', **TINY}, perceptual=False)
    del opt['train']['pixel_opt']
    with pytest.raises(ValueError, match='edge_opt needs a train:pixel_opt'):
        build_model(opt)


@pytest.mark.integration
def test_basicsr_train_runs_mprnet_with_stage_losses(tmp_path):
    """One BasicSR run: dual-pixel MPRNet, Charbonnier + edge on every stage, ViT loss on the final one."""
    tiny_options(tmp_path / 'm.yml', name='m', total_iter=1, **{
        'model_type': 'MultiStageModel',
        'network_g': {'type': 'MPRNet', 'in_c': 6, 'out_c': 3, **TINY},
        'train:pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'eps': 1e-6},
        'train:edge_opt': {'type': 'EdgeLoss', 'loss_weight': 0.05},
        'datasets:val:num_samples': 1, 'val:save_img': False})
    run(['python', '-m', 'basicsr.train', '-opt', 'm.yml'], cwd=tmp_path, PYTHONPATH=REPO)
    exp = tmp_path / 'experiments' / 'm'
    log = '\n'.join(p.read_text() for p in exp.glob('train_*.log'))
    for name in ('l_pix', 'l_edge', 'l_percep'):
        assert f'{name}: ' in log, name
    assert '# psnr: ' in log  # validation ran on the eval-mode tensor
    saved = torch.load(exp / 'models' / 'net_g_latest.pth', map_location='cpu')['params']
    net = MPRNet(in_c=6, out_c=3, **TINY)
    net.load_state_dict(saved, strict=True)
