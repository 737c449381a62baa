"""Checkpoints of every plugin architecture load through BasicSR's own path (SRModel, test mode) in each
of BasicSR's formats, and a checkpoint that does not fit says why (compat ``checkpoint_mismatch_hints``)."""
import copy

import pytest
import torch

import basicsr_vitloss  # noqa: F401  (registration, compat fixes)
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_vitloss import compat
from basicsr_vitloss.compat import checkpoint_hints

NAFNET = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]}
TINY = {
    'NAFNet': NAFNET,
    'NAFNetLocal': dict(NAFNET, type='NAFNetLocal', train_size=[1, 3, 32, 32]),
    'Restormer': {'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1,
                  'heads': [1, 1, 1, 1]},
    'Uformer': {'type': 'Uformer', 'embed_dim': 8, 'depths': [1] * 9, 'num_heads': [1] * 9, 'win_size': 4,
                'img_size': 64},
    'DPDNet': {'type': 'DPDNet', 'in_channels': 6, 'out_channels': 3, 'base_channels': 8},
    'MPRNet': {'type': 'MPRNet', 'n_feat': 8, 'scale_unetfeats': 4, 'scale_orsnetfeats': 4, 'num_cab': 1,
               'reduction': 2},
}


def build_net(network_opt):
    opt = copy.deepcopy(network_opt)
    return ARCH_REGISTRY.get(opt.pop('type'))(**opt)


def random_state(network_opt, seed):
    """A state_dict of the architecture whose float tensors are random (unlike any fresh init); a tensor
    the network lists under several keys (MPRNet's one shared PReLU) gets one value, as in real files."""
    generator = torch.Generator().manual_seed(seed)
    state, drawn = build_net(network_opt).state_dict(), {}
    for v in state.values():  # in key order; a shared tensor is drawn once
        if (v.data_ptr(), v.shape) not in drawn:
            drawn[v.data_ptr(), v.shape] = torch.randn(v.shape, generator=generator) if v.is_floating_point() \
                else v.clone()
    return {k: drawn[v.data_ptr(), v.shape] for k, v in state.items()}


def load_model(network_opt, path, param_key='params', strict=True):
    opt = {
        'name': 'checkpoint_test', 'model_type': 'SRModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
        'network_g': copy.deepcopy(network_opt),
        'path': {'pretrain_network_g': str(path), 'param_key_g': param_key, 'strict_load_g': strict},
    }
    return build_model(opt)


def assert_same_state(net, expected):
    actual = net.state_dict()
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=0, atol=0, msg=f'{key} differs')


# every format of every architecture: tests/test_archs/test_every_arch.py::test_checkpoint_formats


def test_params_key_of_a_two_key_checkpoint_takes_params(tmp_path):
    sd, sd_ema = random_state(NAFNET, 1), random_state(NAFNET, 2)
    torch.save({'params': sd, 'params_ema': sd_ema}, tmp_path / 'net.pth')
    assert_same_state(load_model(NAFNET, tmp_path / 'net.pth', 'params').net_g, sd)


def test_missing_params_ema_falls_back_to_params(tmp_path):
    sd = random_state(NAFNET, 1)  # BasicSR's documented fallback: params_ema absent, params used
    torch.save({'params': sd}, tmp_path / 'net.pth')
    assert_same_state(load_model(NAFNET, tmp_path / 'net.pth', 'params_ema').net_g, sd)


# --------------------------------------------------------------------------- mismatch hints
def test_fix_wraps_basicsr_load_network():
    from basicsr.models.base_model import BaseModel
    assert 'checkpoint_mismatch_hints' in compat.applied_fixes()
    assert getattr(BaseModel.load_network, compat.MARK) == 'checkpoint_mismatch_hints'
    assert BaseModel.load_network.__basicsr_original__ is not None


def test_key_layouts_match_the_real_architectures():
    for arch, network_opt in TINY.items():
        layout = checkpoint_hints._key_layout(build_net(network_opt).state_dict())
        assert layout is not None and arch in checkpoint_hints.arch_key_signatures()[layout]['archs'], arch


def test_nafnet_checkpoint_into_restormer_names_nafnet(tmp_path):
    path = tmp_path / 'nafnet.pth'
    torch.save({'params': random_state(NAFNET, 1)}, path)
    with pytest.raises(RuntimeError) as info:
        load_model(TINY['Restormer'], path)
    message = str(info.value)
    assert 'Error(s) in loading state_dict for Restormer' in message  # BasicSR's / torch's message is kept
    assert str(path) in message
    assert 'looks like a NAFNet or NAFNetLocal checkpoint' in message
    assert 'not a Restormer one' in message


@pytest.mark.parametrize('source, target', [('Restormer', 'Uformer'), ('Uformer', 'NAFNet'), ('DPDNet', 'Restormer')])
def test_other_architectures_are_named(tmp_path, source, target):
    path = tmp_path / 'net.pth'
    torch.save({'params': random_state(TINY[source], 1)}, path)
    with pytest.raises(RuntimeError, match=f'looks like a {source} checkpoint'):
        load_model(TINY[target], path)


def test_other_width_names_a_key_with_both_shapes(tmp_path):
    path = tmp_path / 'nafnet_w8.pth'
    torch.save({'params': random_state(NAFNET, 1)}, path)
    with pytest.raises(RuntimeError) as info:
        load_model(dict(NAFNET, width=16), path)
    message = str(info.value)
    assert 'size mismatch' in message  # torch's message is kept
    assert str(path) in message
    assert "'intro.weight' is (8, 3, 3, 3) in the file but (16, 3, 3, 3) in the network" in message
    assert 'width' in message and 'configuration arguments' in message
    assert 'looks like' not in message


def test_other_depth_counts_missing_keys(tmp_path):
    path = tmp_path / 'nafnet.pth'
    torch.save({'params': random_state(NAFNET, 1)}, path)
    with pytest.raises(RuntimeError) as info:
        load_model(dict(NAFNET, middle_blk_num=2), path)
    assert 'network keys are missing from the file' in str(info.value)
    assert 'middle_blk_num' in str(info.value)


def test_missing_param_key_lists_the_file_keys(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'state_dict': random_state(NAFNET, 1), 'iter': torch.tensor(5)}, path)
    with pytest.raises(KeyError) as info:
        load_model(NAFNET, path, 'params')
    message = str(info.value)
    assert str(path) in message
    assert "no 'params' entry" in message
    assert "'state_dict', 'iter'" in message
    assert 'param_key_g: state_dict' in message


def test_bare_state_dict_with_param_key_suggests_none(tmp_path):
    path = tmp_path / 'bare.pth'
    torch.save(random_state(NAFNET, 1), path)
    with pytest.raises(KeyError, match=r'bare state_dict .* param_key_g: ~'):
        load_model(NAFNET, path, 'params')


def test_wrapped_checkpoint_with_param_key_none_suggests_the_key(tmp_path):
    path = tmp_path / 'wrapped.pth'
    torch.save({'params_ema': random_state(NAFNET, 1)}, path)
    with pytest.raises(RuntimeError, match='param_key_g: params_ema'):
        load_model(NAFNET, path, None)


def test_non_strict_loading_is_unchanged(tmp_path):
    path = tmp_path / 'nafnet_w8.pth'
    saved = random_state(NAFNET, 1)
    torch.save({'params': saved}, path)
    model = load_model(dict(NAFNET, width=16), path, strict=False)  # BasicSR skips the resized keys, as before
    loaded = model.net_g.state_dict()
    torch.testing.assert_close(loaded['ending.bias'], saved['ending.bias'], rtol=0, atol=0)  # same shape: loaded
    assert loaded['intro.weight'].shape == (16, 3, 3, 3)  # other shape: skipped, not an error
