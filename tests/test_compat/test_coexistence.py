"""Coexistence with other BasicSR code: other code keeps the plain name, the plugin's class is ``<Name>_vitloss``,
in both import orders (``basicsr_vitloss/compat/coexistence.py``).

The rule itself is tested in-process on fresh ``Registry`` objects; every real name the plugin registers is
tested in subprocesses (BasicSR's registries are process-global), with ``PYTHONPATH`` set to this checkout.
"""
import json
import logging
import textwrap
import warnings

import pytest

from basicsr_vitloss.compat import coexistence
from basicsr_vitloss.utils.registration import plugin_class, plugin_entries, plugin_type_name
from conftest import REPO, run, tiny_options

#: The downstream project's module for each registry (its dummies are defined there).
MODULES = {'arch': 'myproject.archs', 'loss': 'myproject.losses', 'dataset': 'myproject.datasets',
           'metric': 'myproject.metrics', 'model': 'myproject.models'}
#: Every name the plugin registers, per BasicSR registry (a new plugin class is added here).
PLUGIN_NAMES = {
    'arch': ['DPDNet', 'MPRNet', 'NAFNet', 'NAFNetLocal', 'Restormer', 'Uformer'],
    'loss': ['EdgeLoss', 'GlobalDistributionLoss', 'LocalMAEPerceptualLoss', 'PSNRLoss'],
    'dataset': ['DPDDDataset', 'Dataset_DefocusDeblur_DualPixel_16bit', 'SyntheticDualPixelDataset'],
    'metric': ['calculate_lpips', 'calculate_mae', 'calculate_psnr_float', 'calculate_ssim_float',
               'calculate_ssim_matlab'],
    'model': ['ImageCleanModel', 'ImageRestorationModel', 'MultiStageModel', 'ProgressiveSRModel'],
}


def test_plugin_names_are_all_covered():
    from basicsr.utils import registry
    found = {kind: sorted(plugin_entries(getattr(registry, f'{kind.upper()}_REGISTRY'))) for kind in PLUGIN_NAMES}
    assert found == PLUGIN_NAMES


# --------------------------------------------------------------------------- the rule, on fresh registries
def _classes(module, name, count=1):
    """``count`` distinct classes named ``name`` defined in a module called ``module``."""
    return [type(name, (), {'__module__': module, '__qualname__': name}) for _ in range(count)]


@pytest.fixture
def fresh():
    from basicsr.utils.registry import Registry
    return Registry('arch')


def _register(registry, obj):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        registry.register(obj)
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_plugin_first_then_other_code_takes_the_plain_name(fresh):
    [plugin] = _classes('basicsr_vitloss.archs.thing_arch', 'Thing')
    [other] = _classes('myproject.archs', 'Thing')
    assert _register(fresh, plugin) == []
    [message] = _register(fresh, other)
    assert fresh.get('Thing') is other and fresh.get('Thing_vitloss') is plugin
    assert plugin_class(fresh, 'Thing') is plugin and plugin_type_name(fresh, 'Thing') == 'Thing_vitloss'
    assert 'myproject.archs.Thing' in message and 'basicsr_vitloss.archs.thing_arch.Thing' in message
    assert 'type: Thing_vitloss' in message
    assert _register(fresh, plugin) == []  # the plugin's module reloaded: replaces itself under Thing_vitloss
    assert fresh.get('Thing_vitloss') is plugin and fresh.get('Thing') is other


def test_other_code_first_then_the_plugin_takes_the_suffixed_name(fresh):
    [plugin] = _classes('basicsr_vitloss.archs.thing_arch', 'Thing')
    [other] = _classes('myproject.archs', 'Thing')
    _register(fresh, other)
    [message] = _register(fresh, plugin)
    assert fresh.get('Thing') is other and fresh.get('Thing_vitloss') is plugin
    assert 'myproject.archs.Thing' in message and 'basicsr_vitloss.archs.thing_arch.Thing' in message
    assert _register(fresh, other) == [] and _register(fresh, plugin) == []  # reloads: silent
    assert sorted(fresh.keys()) == ['Thing', 'Thing_vitloss']


def test_model_registry_messages_name_model_type():
    from basicsr.utils.registry import Registry
    models = Registry('model')
    [plugin] = _classes('basicsr_vitloss.models.m_model', 'M')
    [other] = _classes('myproject.models', 'M')
    models.register(plugin)
    [message] = _register(models, other)
    assert 'model_type: M_vitloss' in message


def test_two_classes_of_other_code_still_fail(fresh):
    first, second = _classes('myproject.archs', 'Thing', 2)
    second.__qualname__ = 'Other.Thing'
    fresh.register(first)
    with pytest.raises(KeyError, match=r"'Thing' is already registered in BasicSR's arch registry by "
                                       r'myproject.archs.Thing; cannot register myproject.archs.Other.Thing'):
        fresh.register(second)
    assert fresh.get('Thing') is first


def test_same_definition_replaces_itself_silently(fresh):
    first, again = _classes('myproject.archs', 'Thing', 2)  # what importlib.reload makes
    fresh.register(first)
    assert _register(fresh, again) == [] and fresh.get('Thing') is again


def test_basicsr_own_names_are_never_taken_by_a_project():
    from basicsr.losses.basic_loss import L1Loss
    from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY
    [other] = _classes('myproject.losses', 'L1Loss')
    with pytest.raises(KeyError, match='already registered'):
        LOSS_REGISTRY.register(other)
    assert LOSS_REGISTRY.get('L1Loss') is L1Loss
    niqe = METRIC_REGISTRY.get('calculate_niqe')  # BasicSR's name, wrapped by a compat fix: still BasicSR's
    with pytest.raises(KeyError, match='already registered'):
        METRIC_REGISTRY.register(_classes('myproject.metrics', 'calculate_niqe')[0])
    assert METRIC_REGISTRY.get('calculate_niqe') is niqe and 'calculate_niqe_vitloss' not in METRIC_REGISTRY


def test_suffixed_name_builds_the_plugin_class_when_uncontested():
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY
    from basicsr_vitloss import NAFNet
    assert 'NAFNet_vitloss' not in ARCH_REGISTRY.keys()
    assert ARCH_REGISTRY.get('NAFNet_vitloss') is NAFNet
    net = build_network({'type': 'NAFNet_vitloss', 'width': 8, 'enc_blk_nums': [1], 'dec_blk_nums': [1],
                         'middle_blk_num': 1})
    assert type(net) is NAFNet
    with pytest.raises(KeyError, match="No object named 'L1Loss_vitloss'"):  # BasicSR's own names: no alias
        __import__('basicsr.utils.registry', fromlist=['x']).LOSS_REGISTRY.get('L1Loss_vitloss')


def test_plugin_class_names_the_registry_when_missing(fresh):
    with pytest.raises(KeyError, match=r"no object named 'Nope' in BasicSR's arch registry .*'Nope_vitloss'"):
        plugin_class(fresh, 'Nope')


def test_contested_lookup_is_logged_once(fresh):
    [plugin] = _classes('basicsr_vitloss.archs.thing_arch', 'Thing')
    [other] = _classes('myproject.archs', 'Thing')
    fresh.register(plugin)
    _register(fresh, other)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        fresh.get('Thing'), fresh.get('Thing'), fresh.get('Thing_vitloss')
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert [r.getMessage() for r in records] == [
        "type: Thing builds myproject.archs.Thing; basicsr-vitloss's basicsr_vitloss.archs.thing_arch.Thing is "
        "'Thing_vitloss' in the arch registry."]


def test_coexistence_is_a_feature_listed_with_the_replaced_attributes():
    from basicsr.utils.registry import Registry
    from basicsr_vitloss import compat
    rows = [row for row in compat.replaced_attributes() if row.patch == 'registry_coexistence']
    assert {row.attribute for row in rows} == {'basicsr.utils.registry.Registry._do_register',
                                              'basicsr.utils.registry.Registry.get'}
    assert all(row.kind == 'feature' and row.applied for row in rows)
    assert getattr(Registry._do_register, compat.MARK) == 'registry_coexistence'
    # composed with the close-matches fix: the coexistence get wraps the fixed get
    assert getattr(Registry.get.__basicsr_original__, compat.MARK) == 'registry_close_matches'


def test_coexistence_is_applied_even_when_the_close_matches_fix_is_not_needed(monkeypatch):
    """A BasicSR that already names close matches still gets the rule: the feature has no needed()."""
    patch = __import__('basicsr_vitloss.compat', fromlist=['x']).patches()['registry_coexistence']
    assert patch.kind == 'feature' and patch.needed is None
    assert coexistence.enable_registry_coexistence.__wrapped__ is patch.apply


# --------------------------------------------------------------------------- every real name, both orders
_DUMMIES = '''
import json, sys, types, warnings


def describe(obj):
    return f'{obj.__module__}.{obj.__qualname__}'

NAMES = json.loads(sys.argv[1])
MODULES = {'arch': 'myproject.archs', 'loss': 'myproject.losses', 'dataset': 'myproject.datasets',
           'metric': 'myproject.metrics', 'model': 'myproject.models'}

def register_dummies(names):
    """Register a class (a function for metrics) of a downstream project under each name; their warnings."""
    from basicsr.utils import registry
    caught_all = {}
    for kind, kind_names in names.items():
        module = sys.modules.setdefault(MODULES[kind], types.ModuleType(MODULES[kind]))
        reg = getattr(registry, f'{kind.upper()}_REGISTRY')
        for name in kind_names:
            source = f'def {name}(**kwargs):\\n    return "project"\\n' if kind == 'metric' else \\
                f'class {name}:\\n    pass\\n'
            exec(source, module.__dict__)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                reg.register(getattr(module, name))
            caught_all[f'{kind}:{name}'] = [f'{w.category.__name__}: {w.message}' for w in caught]
    return caught_all

def state(names):
    """Per name: what the plain name, the suffixed name and plugin_class() give."""
    from basicsr.utils import registry
    from basicsr_vitloss.utils.registration import plugin_class
    out = {}
    for kind, kind_names in names.items():
        reg = getattr(registry, f'{kind.upper()}_REGISTRY')
        for name in kind_names:
            out[f'{kind}:{name}'] = {'plain': describe(reg.get(name)), 'suffixed': describe(reg.get(name + '_vitloss')),
                                     'plugin_class': describe(plugin_class(reg, name))}
    return out
'''

_ORDER_1 = _DUMMIES + '''
import basicsr  # the startup hook activates the plugin, which registers first
from basicsr.utils import registry
assert 'basicsr_vitloss' in sys.modules
before = state(NAMES)
caught = register_dummies(NAMES)
after = state(NAMES)
from basicsr.archs import build_network
from basicsr.losses import build_loss
built = {'arch': type(build_network({'type': 'Restormer'})).__module__,
         'arch_vitloss': type(build_network({'type': 'Restormer_vitloss', 'dim': 8, 'num_blocks': [1, 1, 1, 1],
                                              'num_refinement_blocks': 1, 'heads': [1, 1, 1, 1]})).__module__,
         'loss': type(build_loss({'type': 'PSNRLoss'})).__module__,
         'loss_vitloss': type(build_loss({'type': 'PSNRLoss_vitloss'})).__module__}
print('RESULT', json.dumps({'before': before, 'caught': caught, 'after': after, 'built': built}))
'''

_ORDER_2 = _DUMMIES + '''
import basicsr  # the hook is disabled: BasicSR alone
from basicsr.utils import registry
assert 'basicsr_vitloss' not in sys.modules
register_dummies(NAMES)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import basicsr_vitloss
from basicsr_vitloss import compat
from basicsr_vitloss.utils.registration import plugin_entries
import torch
from basicsr.losses import build_loss
from basicsr.archs import build_network
loss = build_loss({'type': 'LocalMAEPerceptualLoss_vitloss', 'pretrained': False, 'layers': 1,
                   'backbone_kwargs': {'depth': 2, 'embed_dim': 32, 'num_heads': 2}})
x = torch.rand(1, 3, 32, 32)
percep, _ = loss(x, x.flip(-1))
untaken = {}
for kind, reg_name in (('arch', 'NAFNet'), ('loss', 'LocalMAEPerceptualLoss'), ('model', 'ImageCleanModel')):
    reg = getattr(registry, f'{kind.upper()}_REGISTRY')
    untaken[f'{kind}:{reg_name}'] = describe(reg.get(reg_name))
NET_TYPE = 'NAFNet_vitloss'
net = build_network({'type': NET_TYPE, 'width': 8, 'enc_blk_nums': [1], 'dec_blk_nums': [1], 'middle_blk_num': 1})
entries = {kind: plugin_entries(getattr(registry, f'{kind.upper()}_REGISTRY')) for kind in NAMES}
features = sorted({row.patch for row in compat.replaced_attributes() if row.kind == 'feature' and row.applied})
print('RESULT', json.dumps({'state': state(NAMES), 'warnings': [f'{w.category.__name__}: {w.message}' for w in caught],
                            'percep': float(percep), 'untaken': untaken, 'net': type(net).__module__,
                            'entries': entries, 'fixes': compat.applied_fixes(), 'features': features}))
'''


def _result(proc):
    [line] = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    return json.loads(line[len('RESULT '):])


def _is_plugin(described):
    return described.startswith('basicsr_vitloss.')


@pytest.mark.integration
def test_order_1_plugin_first_then_a_project_registers_every_name(tmp_path):
    proc = run(['python', '-c', _ORDER_1, json.dumps(PLUGIN_NAMES)], cwd=tmp_path, PYTHONPATH=REPO)
    result = _result(proc)
    for kind, names in PLUGIN_NAMES.items():
        for name in names:
            key = f'{kind}:{name}'
            before, after, caught = result['before'][key], result['after'][key], result['caught'][key]
            plugin = before['plain']
            assert _is_plugin(plugin) and before['suffixed'] == plugin, key  # uncontested: both names, one class
            assert after['plain'] == f'{MODULES[kind]}.{name}', key  # the project takes the plain name
            assert after['suffixed'] == after['plugin_class'] == plugin, key  # the plugin's is Name_vitloss
            assert len(caught) == 1 and caught[0].startswith('RuntimeWarning: '), (key, caught)
            assert f'{MODULES[kind]}.{name}' in caught[0] and plugin in caught[0], (key, caught)
            assert f"registered as '{name}_vitloss'" in caught[0], (key, caught)
    assert result['built'] == {'arch': 'myproject.archs', 'arch_vitloss': 'basicsr_vitloss.archs.restormer_arch',
                               'loss': 'myproject.losses', 'loss_vitloss': 'basicsr_vitloss.losses.psnr_loss'}


@pytest.mark.integration
def test_order_2_names_taken_before_the_plugin_is_imported(tmp_path):
    proc = run(['python', '-c', _ORDER_2, json.dumps(PLUGIN_NAMES)], cwd=tmp_path, PYTHONPATH=REPO,
               BASICSR_VITLOSS_DISABLE_HOOK=1)
    result = _result(proc)
    shared = [w for w in result['warnings'] if 'Other code keeps the plain name' in w]
    assert len(shared) == sum(len(names) for names in PLUGIN_NAMES.values()), result['warnings']
    for kind, names in PLUGIN_NAMES.items():
        for name in names:
            key = f'{kind}:{name}'
            state = result['state'][key]
            assert state['plain'] == f'{MODULES[kind]}.{name}', key
            assert _is_plugin(state['suffixed']) and state['plugin_class'] == state['suffixed'], key
            assert state['suffixed'].endswith(f'.{name}'), key
            assert result['entries'][kind][name] == f'{name}_vitloss', key
            [warning] = [w for w in shared if f"'{name}' in BasicSR's {kind} registry" in w]
            assert f'{MODULES[kind]}.{name}' in warning and state['suffixed'] in warning, key
    # the rest of the plugin is active: fixes, features, and the plugin's classes under their suffixed names
    assert 'registry_close_matches' in result['fixes'] and 'checkpoint_mismatch_hints' in result['fixes']
    assert {'registry_coexistence', 'tiled_validation', 'float_validation', 'finite_validation', 'training_setup',
            'training_step'} <= set(result['features'])
    assert result['percep'] > 0 and result['net'] == 'basicsr_vitloss.archs.nafnet_arch'


_ORDER_2_PARTIAL = _ORDER_2.replace('register_dummies(NAMES)', 'register_dummies(TAKEN)').replace(
    'NAMES = json.loads(sys.argv[1])', 'NAMES = json.loads(sys.argv[1]); TAKEN = json.loads(sys.argv[2])').replace(
    'state(NAMES)', 'state(TAKEN)').replace("NET_TYPE = 'NAFNet_vitloss'", "NET_TYPE = 'NAFNet'")


@pytest.mark.integration
def test_order_2_other_plugin_classes_keep_their_plain_names(tmp_path):
    taken = {'arch': ['Restormer'], 'loss': ['PSNRLoss']}
    proc = run(['python', '-c', _ORDER_2_PARTIAL, json.dumps(PLUGIN_NAMES), json.dumps(taken)], cwd=tmp_path,
               PYTHONPATH=REPO, BASICSR_VITLOSS_DISABLE_HOOK=1)
    result = _result(proc)
    assert result['state']['arch:Restormer']['plain'] == 'myproject.archs.Restormer'
    assert result['state']['arch:Restormer']['suffixed'] == 'basicsr_vitloss.archs.restormer_arch.Restormer'
    assert result['state']['loss:PSNRLoss']['suffixed'] == 'basicsr_vitloss.losses.psnr_loss.PSNRLoss'
    assert result['untaken'] == {
        'arch:NAFNet': 'basicsr_vitloss.archs.nafnet_arch.NAFNet',
        'loss:LocalMAEPerceptualLoss': 'basicsr_vitloss.losses.vit_losses.LocalMAEPerceptualLoss',
        'model:ImageCleanModel': 'basicsr_vitloss.models.progressive_model.ImageCleanModel'}
    assert result['net'] == 'basicsr_vitloss.archs.nafnet_arch'
    assert result['entries']['arch']['NAFNet'] == 'NAFNet' and result['entries']['arch']['Restormer'] == \
        'Restormer_vitloss'
    assert len([w for w in result['warnings'] if 'Other code keeps the plain name' in w]) == 2


@pytest.mark.integration
def test_basicsr_train_with_a_taken_name_logs_the_class_it_built(tmp_path):
    """A project's ``NAFNet`` registered at interpreter start (its sitecustomize) while ``python -m basicsr.train``
    runs options with ``type: NAFNet``: the project's network is trained and the log says so."""
    project = tmp_path / 'project'
    (project / 'myproject').mkdir(parents=True)
    (project / 'myproject' / '__init__.py').write_text('')
    (project / 'myproject' / 'archs.py').write_text(textwrap.dedent('''
        import torch
        from basicsr.utils.registry import ARCH_REGISTRY


        @ARCH_REGISTRY.register()
        class NAFNet(torch.nn.Module):
            """A downstream project's own NAFNet (one convolution)."""

            def __init__(self, img_channel=3, out_channels=3, **kwargs):
                super().__init__()
                self.conv = torch.nn.Conv2d(img_channel, out_channels, 3, padding=1)

            def forward(self, x):
                return self.conv(x)
        '''))
    (project / 'sitecustomize.py').write_text('import myproject.archs  # noqa: F401\n')
    work = tmp_path / 'work'
    work.mkdir()
    tiny_options(work / 'tiny.yml', name='taken', total_iter=2)
    proc = run(['python', '-m', 'basicsr.train', '-opt', 'tiny.yml'], cwd=work,
               PYTHONPATH=f'{REPO}:{project}')
    log = '\n'.join(p.read_text() for p in (work / 'experiments' / 'taken').glob('train_*.log'))
    assert ("type: NAFNet builds myproject.archs.NAFNet; basicsr-vitloss's basicsr_vitloss.archs.nafnet_arch.NAFNet "
            "is 'NAFNet_vitloss' in the arch registry.") in log
    assert log.count('type: NAFNet builds') == 1
    assert 'Network [NAFNet] is created' in log  # BasicSR's own line: the project's class
    assert proc.stderr.count("Other code keeps the plain name") == 1
