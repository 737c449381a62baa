"""Every plugin architecture in BasicSR's ARCH_REGISTRY (a class whose module is in ``basicsr_vitloss``,
found in the registry, not listed here) has its pieces, and each test below fails for one that lacks them:

* a tiny configuration: the one source is ``scripts/make_options.py`` (``network_g`` of a network that
  the options grid uses, with ``TINY_NETWORK`` of that network on top); a registered class that no
  options file builds is mapped to a network here (``OPTIONS_NETWORK_OF``);
* a tiny forward / backward: output shape, finite gradients on every trainable parameter, nonzero on the
  first and last;
* checkpoints in every format (BasicSR ``params``, ``params_ema``, both, a bare state dict, DataParallel
  ``module.`` keys and the official release's wrapper, ``RELEASE_CHECKPOINT``), read by the package's one
  reader (``basicsr_vitloss.utils.checkpoints.load_network_weights``) and by BasicSR's
  ``BaseModel.load_network``: the same tensors and the same output after reloading;
* the key layout of the official code: ``tests/data/<module>_official_manifest.json``, recorded from the
  official repositories by ``scripts/record_arch_manifest.py`` (MPRNet's by an earlier script); the
  architecture built with each recorded official configuration has exactly the same state_dict keys and
  shapes (DPDNet, whose official code is Keras: its convolutions, in Keras call order, have the Keras
  layers' kernel and bias shapes).
"""
import copy
import hashlib
import json
from pathlib import Path

import pytest
import torch

import basicsr_vitloss  # noqa: F401  (registration)
from basicsr.models.base_model import BaseModel
from basicsr.utils.registry import ARCH_REGISTRY
from basicsr_vitloss.utils.checkpoints import load_network_weights
from conftest import load_script

DATA = Path(__file__).resolve().parents[1] / 'data'
make_options = load_script('make_options')

#: registered plugin classes, by name, found in the registry
PLUGIN_ARCHS = sorted(name for name, cls in ARCH_REGISTRY._obj_map.items()
                      if cls.__module__.startswith('basicsr_vitloss.'))
#: a registered class that no options file builds -> the options network whose tiny configuration it takes
#: (with its own type): NAFNetLocal is what the nafnet options build; NAFNet is the same network and weights
#: with global pools (official NAFNet-width64.yml trains NAFNet and tests NAFNetLocal)
OPTIONS_NETWORK_OF = {'NAFNet': 'nafnet'}
#: the official release's checkpoint wrapper: (key holding the state dict, prefix of its keys, other entries);
#: None: no PyTorch release (DPDNet's weights are a Keras HDF5 file). Sources: the manifests' release_checkpoint.
RELEASE_CHECKPOINT = {
    'MPRNet': ('state_dict', 'module.', ('epoch', 'optimizer')),  # swz30/MPRNet train.py, DataParallel
    'Uformer': ('state_dict', 'module.', ('epoch', 'optimizer')),  # train_motiondeblur.py, DataParallel
    'NAFNet': ('params', '', ()),  # BasicSR files (NAFNet-GoPro-width64.pth)
    'NAFNetLocal': ('params', '', ()),
    'Restormer': ('params', '', ()),  # BasicSR files; the test scripts load checkpoint['params']
    'DPDNet': None,
}
FORMATS = ['params', 'params_ema', 'params+params_ema', 'bare', 'module.', 'params module.', 'release']
SIZE = (32, 32)


def _tiny_configs():
    """Class name -> [network_g of each options variant at its tiny size], from scripts/make_options.py."""
    configs = {}
    for data, mode, networks, _ in make_options.GRIDS.values():
        for net in networks:
            opt = make_options.network_g(net, 6 if mode == 'dual_pixel' else 3, data)
            opt.update(make_options.TINY_NETWORK[net])
            if opt not in configs.setdefault(opt['type'], []):
                configs[opt['type']].append(opt)
    for cls, net in OPTIONS_NETWORK_OF.items():
        assert cls not in configs, f'{cls} is built by the options: drop it from OPTIONS_NETWORK_OF'
        source = next(opts for opts in configs.values() if opts[0]['type'] == make_options.network_g(net, 3, 'gopro')
                      ['type'])
        configs[cls] = [dict(opt, type=cls) for opt in source]
    return configs


TINY = _tiny_configs()


def tiny_configs(arch):
    if arch not in TINY:
        pytest.fail(f'{arch} is a registered plugin architecture without a tiny configuration: no options '
                    f'network of scripts/make_options.py (network_g + TINY_NETWORK) builds it; add it there, or '
                    f'map it to an options network in OPTIONS_NETWORK_OF of {Path(__file__).name}')
    return TINY[arch]


def build(opt, seed=0):
    opt = copy.deepcopy(opt)
    torch.manual_seed(seed)
    return ARCH_REGISTRY.get(opt.pop('type'))(**opt)


def in_channels(net):
    first = next(p for p in net.parameters() if p.dim() == 4)
    return first.shape[1]


def outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


# --------------------------------------------------------------------------- coverage
def test_every_plugin_arch_is_parametrized():
    assert {'NAFNet', 'NAFNetLocal', 'Restormer', 'Uformer', 'DPDNet', 'MPRNet'} <= set(PLUGIN_ARCHS)
    assert set(TINY) == set(PLUGIN_ARCHS), 'tiny configurations of classes that are not registered plugin archs'


# --------------------------------------------------------------------------- forward / backward
@pytest.mark.parametrize('arch', PLUGIN_ARCHS)
@pytest.mark.integration
def test_tiny_forward_backward(arch):
    for opt in tiny_configs(arch):
        net = build(opt).train()
        x = torch.rand(1, in_channels(net), *SIZE, generator=torch.Generator().manual_seed(1))
        outs = outputs(net(x))
        for out in outs:
            assert out.shape == (1, 3, *SIZE), (opt, out.shape)
            assert torch.isfinite(out).all(), opt
        sum(out.square().mean() for out in outs).backward()
        params = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
        no_grad = [name for name, p in params if p.grad is None]
        assert not no_grad, f'{opt}: no gradient for {no_grad[:5]}'
        not_finite = [name for name, p in params if not torch.isfinite(p.grad).all()]
        assert not not_finite, f'{opt}: non-finite gradient of {not_finite[:5]}'
        for name, p in (params[0], params[-1]):
            assert p.grad.abs().sum() > 0, f'{opt}: zero gradient of {name}'


# --------------------------------------------------------------------------- checkpoint formats
def random_state(net, seed):
    """The net's state_dict with random float tensors (unlike any fresh init); a tensor the network lists
    under several keys (MPRNet's one shared PReLU) gets one value, as in real files."""
    generator = torch.Generator().manual_seed(seed)
    state, drawn = net.state_dict(), {}
    for v in state.values():
        if (v.data_ptr(), v.shape) not in drawn:
            drawn[v.data_ptr(), v.shape] = 0.2 * torch.randn(v.shape, generator=generator) \
                if v.is_floating_point() else v.clone()
    return {k: drawn[v.data_ptr(), v.shape] for k, v in state.items()}


def checkpoint(arch, fmt, sd, sd_ema):
    """(object saved, BasicSR param_key_g to read it, the state dict it holds)."""
    prefixed = {f'module.{k}': v for k, v in sd.items()}
    if fmt == 'release':
        key, prefix, others = RELEASE_CHECKPOINT[arch]
        saved = {key: {prefix + k: v for k, v in sd.items()}}
        saved.update({other: {'step': torch.tensor(3)} if other == 'optimizer' else 7 for other in others})
        return saved, key, sd
    return {
        'params': ({'params': sd}, 'params', sd),
        'params_ema': ({'params_ema': sd}, 'params_ema', sd),
        'params+params_ema': ({'params': sd, 'params_ema': sd_ema}, 'params_ema', sd_ema),
        'bare': (sd, None, sd),
        'module.': (prefixed, None, sd),
        'params module.': ({'params': prefixed}, 'params', sd),
    }[fmt]


def assert_same(net, expected, x, expected_out, how):
    state = net.state_dict()
    assert state.keys() == expected.keys(), how
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=lambda m: f'{how}: {key}: {m}')
    with torch.no_grad():
        for out, ref in zip(outputs(net.eval()(x)), expected_out, strict=True):
            torch.testing.assert_close(out, ref, rtol=0, atol=0, equal_nan=True, msg=lambda m: f'{how}: output {m}')


@pytest.mark.parametrize('arch', PLUGIN_ARCHS)
@pytest.mark.integration
def test_checkpoint_formats(tmp_path, arch):
    opt = tiny_configs(arch)[0]
    if arch not in RELEASE_CHECKPOINT:
        pytest.fail(f'{arch}: say in RELEASE_CHECKPOINT of {Path(__file__).name} how its official release wraps '
                    f'the weights (None if there is no PyTorch release)')
    reference = build(opt).eval()
    sd, sd_ema = random_state(reference, 1), random_state(reference, 2)
    x = torch.rand(1, in_channels(reference), *SIZE, generator=torch.Generator().manual_seed(3))
    expected_outs = {}
    for name, state in (('sd', sd), ('sd_ema', sd_ema)):
        reference.load_state_dict(state)
        with torch.no_grad():
            expected_outs[name] = outputs(reference(x))
    model = BaseModel({'num_gpu': 0, 'is_train': False, 'dist': False})
    net = build(opt, seed=5)
    scrambled = random_state(net, 9)  # not the file's values
    for fmt in FORMATS:
        if fmt == 'release' and RELEASE_CHECKPOINT[arch] is None:
            continue  # no PyTorch weights released (DPDNet: Keras)
        saved, param_key, expected = checkpoint(arch, fmt, sd, sd_ema)
        expected_out = expected_outs['sd' if expected is sd else 'sd_ema']
        path = tmp_path / f'{arch}_{fmt}.pth'
        torch.save(saved, path)
        readers = {
            'load_network_weights': lambda: load_network_weights(net, path),
            f'load_network_weights(param_key={param_key})': lambda: load_network_weights(net, path, param_key),
            f'BaseModel.load_network(param_key={param_key})': lambda: model.load_network(net, str(path), True,
                                                                                        param_key),
        }
        for how, read in readers.items():
            net.load_state_dict(scrambled)
            read()
            assert_same(net, expected, x, expected_out, f'{arch} {fmt} through {how}')


# --------------------------------------------------------------------------- official key layout
def manifest(arch):
    stem = ARCH_REGISTRY.get(arch).__module__.rsplit('.', 1)[-1].removesuffix('_arch')
    path = DATA / f'{stem}_official_manifest.json'
    if not path.is_file():
        pytest.fail(f'{arch}: no manifest of the official key layout, {path.relative_to(DATA.parents[1])}; '
                    f'record it with scripts/record_arch_manifest.py')
    return json.loads(path.read_text())


def pairs(state):
    return [[k, list(v.shape)] for k, v in state.items()]


def build_meta(arch, kwargs):
    try:
        with torch.device('meta'):  # no memory, no init; shapes only
            return ARCH_REGISTRY.get(arch)(**kwargs)
    except RuntimeError:  # a constructor that reads a value (Uformer's drop-path rates: .item())
        return ARCH_REGISTRY.get(arch)(**kwargs)


def layout_diff(ours, official):
    ours_d, official_d = dict(map(tuple, [(k, tuple(s)) for k, s in ours])), {k: tuple(s) for k, s in official}
    missing = [k for k in official_d if k not in ours_d]
    extra = [k for k in ours_d if k not in official_d]
    shapes = [f'{k}: {ours_d[k]} vs official {official_d[k]}' for k in ours_d
              if k in official_d and ours_d[k] != official_d[k]]
    return f'missing {missing[:8]} ({len(missing)}), extra {extra[:8]} ({len(extra)}), shapes {shapes[:8]}'


def keras_order(net):
    """DPDNet's convolutions in the call order of the official Keras ``unet``: encoder levels and bottleneck
    (two 3x3 convs each), then per decoder level the 2x2 up-conv and two 3x3 convs, conv9, conv10."""
    convs = [level[i] for level in [*net.encoders, net.bottleneck] for i in (0, 2)]
    for up, decoder in zip(net.ups, net.decoders, strict=True):
        convs += [up.conv, decoder[0], decoder[2]]
    return convs + [net.tail, net.out_conv]


@pytest.mark.parametrize('arch', PLUGIN_ARCHS)
@pytest.mark.integration
def test_key_layout_is_the_official_one(arch):
    recorded = manifest(arch)
    if 'default_model' in recorded:  # MPRNet's manifest (earlier format): the constructor defaults, a hash
        official = recorded['default_model']
        state = build_meta(arch, {}).state_dict()
        assert len(state) == official['num_keys']
        assert hashlib.sha256(json.dumps(sorted(pairs(state))).encode()).hexdigest() == \
            official['sha256_sorted_key_shapes']
        return
    models = {name: m for name, m in recorded['models'].items() if m.get('official_class', arch) == arch}
    assert models, f'{arch}: no official model in the manifest'
    for name, official in models.items():
        net = build_meta(arch, official['kwargs'])
        if 'keras_conv2d_layers' in official:
            convs, layers = keras_order(net), official['keras_conv2d_layers']
            assert len(convs) == len(layers) and len(net.state_dict()) == 2 * len(layers), name
            for conv, layer in zip(convs, layers, strict=True):
                assert list(conv.weight.permute(2, 3, 1, 0).shape) == layer['kernel'], (layer, conv)
                assert list(conv.bias.shape) == layer['bias'], (layer, conv)
            assert sum(p.numel() for p in net.parameters()) == official['num_parameters']
            continue
        ours = pairs(net.state_dict())
        assert sorted(ours) == sorted(official['keys']), f'{arch} vs official {name}: ' + \
            layout_diff(ours, official['keys'])
        assert ours == official['keys'], f'{arch} vs official {name}: same keys and shapes, other order'
        assert len(ours) == official['num_keys']
        assert hashlib.sha256(json.dumps(sorted(ours)).encode()).hexdigest() == official['sha256_sorted_key_shapes']
