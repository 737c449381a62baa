"""``BASICSR_VITLOSS_DISABLE_HOOK=1``: ``import basicsr`` runs BasicSR alone; only the legacy-module finder stays."""
import json

import pytest

import basicsr_vitloss_startup as startup
from basicsr_vitloss import compat
from conftest import REPO, run

_DISABLED = '''
import ast, importlib, json, sys
import basicsr
import basicsr_vitloss_startup as startup
from basicsr.utils import registry

def resolve(attribute):
    """The current value of a dotted attribute (``...['key']`` indexes a mapping): basicsr_vitloss.compat.resolve
    written out, since importing the package here would activate the plugin this test checks is off."""
    key = None
    if attribute.endswith(']'):
        attribute, key = attribute[:-1].split('[', 1)
        key = ast.literal_eval(key)
    parts = attribute.split('.')
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
            break
        except ImportError:
            continue
    for part in parts[i:]:
        obj = getattr(obj, part)
    return obj if key is None else obj[key]

attributes = json.loads(sys.argv[1])
marked = {a: getattr(resolve(a), '__basicsr_vitloss_patch__', None) for a in attributes}
REGISTRIES = ('ARCH_REGISTRY', 'DATASET_REGISTRY', 'LOSS_REGISTRY', 'METRIC_REGISTRY', 'MODEL_REGISTRY')
plugin_entries = [f'{name}:{key}' for name in REGISTRIES for key, obj in getattr(registry, name)
                  if getattr(obj, '__module__', '').startswith('basicsr_vitloss')]
plugin_modules = sorted(m for m in sys.modules if m.startswith('basicsr_vitloss') and m != 'basicsr_vitloss_startup')
print('RESULT', json.dumps({
    'plugin_modules': plugin_modules,
    'plugin_entries': plugin_entries,
    'marked': {a: m for a, m in marked.items() if m},
    'loader': type(basicsr.__loader__).__name__,
    'spec_loader': type(basicsr.__spec__.loader).__name__,
    'train_spec_loader': type(sys.modules['basicsr.train'].__spec__.loader).__name__,
    'replaced': {k: patch for k, (obj, patch) in startup.REPLACED.items()},
    'registry_get': registry.Registry.get.__module__}))
'''


@pytest.mark.integration
def test_disabled_hook_leaves_basicsr_alone(tmp_path):
    attributes = sorted({row.attribute for row in compat.replaced_attributes() if row.kind != 'startup'})
    assert 'basicsr.utils.registry.Registry._do_register' in attributes and len(attributes) > 15
    proc = run(['python', '-c', _DISABLED, json.dumps(attributes)], cwd=tmp_path, BASICSR_VITLOSS_DISABLE_HOOK=1)
    [line] = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    result = json.loads(line[len('RESULT '):])
    assert result['plugin_modules'] == []  # basicsr_vitloss was never imported
    assert result['plugin_entries'] == []  # no plugin class in any BasicSR registry
    assert result['marked'] == {}  # no BasicSR attribute the plugin declares is replaced
    assert result['registry_get'] == 'basicsr.utils.registry'
    assert 'PluginActivating' not in result['loader'] and 'PluginActivating' not in result['spec_loader']
    assert result['train_spec_loader'] != '_EntryPointLoader'
    # only the legacy-module finder acted: basicsr 1.4.2 imports torchvision's removed functional_tensor
    assert result['replaced'] and set(result['replaced'].values()) == {'legacy_modules'}
    assert set(result['replaced']) <= set(startup.LEGACY_MODULES)


@pytest.mark.integration
def test_the_same_check_sees_an_active_plugin(tmp_path):
    """The check above can fail: without the variable, the plugin's marks and classes are found."""
    attributes = ['basicsr.utils.registry.Registry._do_register', 'basicsr.models.sr_model.SRModel.test']
    proc = run(['python', '-c', _DISABLED, json.dumps(attributes)], cwd=tmp_path)
    [line] = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    result = json.loads(line[len('RESULT '):])
    assert result['marked'] == {'basicsr.utils.registry.Registry._do_register': 'registry_coexistence',
                                'basicsr.models.sr_model.SRModel.test': 'training_step'}
    assert 'ARCH_REGISTRY:NAFNet' in result['plugin_entries'] and 'basicsr_vitloss' in result['plugin_modules']
    assert result['loader'] == '_PluginActivatingLoader'
    assert set(result['replaced'].values()) >= {'legacy_modules', 'plugin_activation'}


def test_activating_loader_delegates_to_the_real_loader(tmp_path, monkeypatch):
    """Attributes the wrapper does not define (is_package, get_filename, resource readers) are the real loader's."""
    import importlib.machinery
    import importlib.util
    import sys
    # this checkout's hook (the process imported the installed copy through the .pth before the cwd was on sys.path)
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))  # the module's install() adds finders: undone
    spec = importlib.util.spec_from_file_location('startup_under_test', REPO / 'basicsr_vitloss_startup.py')
    checkout_startup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checkout_startup)
    path = tmp_path / 'pkg' / '__init__.py'
    path.parent.mkdir()
    path.write_text('')
    real = importlib.machinery.SourceFileLoader('pkg', str(path))
    loader = checkout_startup._PluginActivatingLoader(real)
    assert loader.is_package('pkg') is True and loader.get_filename('pkg') == str(path)
    assert loader.get_resource_reader('pkg') is not None
