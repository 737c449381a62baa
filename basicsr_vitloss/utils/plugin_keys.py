"""The options that need basicsr-vitloss: the one list of the plugin's own option keys, and what an options
file uses of them and of the plugin's ``type:`` names.

Stock BasicSR silently ignores keys it does not read (``train: use_grad_clip`` -> no gradient clipping), and
fails at a ``type:`` its registries lack. ``scripts/make_options.py`` writes what each generated file needs into
its header; ``scripts/check_install.py --opt FILE`` reports it and fails where the plugin is not active.

This module imports nothing of the package at import time, so ``check_install.py`` can load it by path
without activating the plugin; the plugin's ``type:`` names come from BasicSR's registries.
"""
from collections import namedtuple

#: One plugin-only option key: ``section`` (``train``, ``val``, ``datasets:*``, ``datasets:train`` or '' for the
#: top level), ``key``, and what stock BasicSR does with it.
PluginKey = namedtuple('PluginKey', 'section key without_plugin')

IGNORED = 'ignored silently'
PLUGIN_KEYS = (
    PluginKey('', 'recipe_gpus', f'{IGNORED} (a record: scripts/scale_recipe.py reads it)'),
    PluginKey('train', 'mixed_precision', f'{IGNORED}: trains in fp32'),
    PluginKey('train', 'micro_batches', f'{IGNORED}: the whole batch in one forward (more memory)'),
    PluginKey('train', 'use_grad_clip', f'{IGNORED}: no gradient clipping'),
    PluginKey('train', 'grad_clip_norm', f'{IGNORED}: no gradient clipping'),
    PluginKey('train', 'edge_opt', f'{IGNORED}: MPRNet trains without its edge loss'),
    PluginKey('train', 'mixing_augs', f'{IGNORED}: no mixup'),
    PluginKey('val', 'mixed_precision', f'{IGNORED}: validates in fp32'),
    PluginKey('val', 'tile', f'{IGNORED}: whole images at once (memory)'),
    PluginKey('val', 'save_16bit', f'{IGNORED}: 8-bit PNGs'),
    PluginKey('val', 'save_comparison', f'{IGNORED}: no comparison.png'),
    PluginKey('datasets:train', 'iters', f'{IGNORED}: no progressive patch sizes'),
    PluginKey('datasets:train', 'gt_sizes', f'{IGNORED}: no progressive patch sizes'),
    PluginKey('datasets:train', 'mini_batch_sizes', f'{IGNORED}: no progressive batch sizes'),
    PluginKey('datasets:*', 'use_flip', "PairedImageDataset fails at the first sample (KeyError 'use_hflip')"),
)

#: ``train: optim_*: type:`` and ``train: scheduler: type:`` names stock basicsr 1.4.2 builds.
STOCK_OPTIMIZERS = ('Adam',)
STOCK_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
UNKNOWN_TYPE = 'fails: unknown type'

#: One use in an options file: ``path`` (``train:use_grad_clip``, ``network_g:type``), the ``name`` used (the
#: key, or the type name) and what stock BasicSR does with it.
Use = namedtuple('Use', 'path name without_plugin')


def _sections(opt, section):
    """``(path, mapping)`` of the options' sections called ``section`` (``datasets:*``: every dataset)."""
    if not section:
        return [('', opt)]
    if section == 'datasets:*':
        datasets = opt.get('datasets') or {}
        return [(f'datasets:{phase}', value) for phase, value in datasets.items() if isinstance(value, dict)]
    node = opt
    for part in section.split(':'):
        node = node.get(part) if isinstance(node, dict) else None
    return [(section, node)] if isinstance(node, dict) else []


def keys_used(opt):
    """The plugin-only keys ``opt`` sets, as ``Use`` rows in ``PLUGIN_KEYS`` order."""
    found = []
    for plugin_key in PLUGIN_KEYS:
        for path, mapping in _sections(opt, plugin_key.section):
            if plugin_key.key in mapping:
                found.append(Use(f'{path}:{plugin_key.key}'.lstrip(':'), plugin_key.key, plugin_key.without_plugin))
    return found


def registry_types(opt):
    """``(path, registry name, type name)`` of each ``type:`` of ``opt`` that BasicSR looks up in a registry:
    the model, datasets, networks, losses (``train: *_opt``) and validation metrics."""
    found = []
    if 'model_type' in opt:
        found.append(('model_type', 'MODEL_REGISTRY', opt['model_type']))
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict) and 'type' in dataset:
            found.append((f'datasets:{phase}:type', 'DATASET_REGISTRY', dataset['type']))
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, dict) and 'type' in value:
            found.append((f'{key}:type', 'ARCH_REGISTRY', value['type']))
    for key, value in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(value, dict) and 'type' in value:
            found.append((f'train:{key}:type', 'LOSS_REGISTRY', value['type']))
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, dict) and 'type' in metric:
            found.append((f'val:metrics:{name}:type', 'METRIC_REGISTRY', metric['type']))
    return found


def _is_plugin_entry(registry, name):
    """Whether ``name`` builds one of the plugin's objects in ``registry`` (plain or ``_vitloss`` name)."""
    suffix = '_vitloss'
    for key in (name, name[:-len(suffix)] if name.endswith(suffix) else None):
        obj = registry._obj_map.get(key) if key else None
        if obj is not None and (getattr(obj, '__module__', '') or '').startswith('basicsr_vitloss'):
            from basicsr_vitloss.utils.registration import is_plugin_object  # the plugin is active here
            return is_plugin_object(obj)
    return False


def types_used(opt):
    """The ``type:`` names of ``opt`` that stock BasicSR cannot build, as ``Use`` rows: those that name a plugin
    class in BasicSR's registries (or that no registry holds: the plugin is then not active), and optimizers
    and schedulers stock basicsr 1.4.2 does not have."""
    from basicsr.utils import registry as registries
    found = []
    for path, registry_name, name in registry_types(opt):
        registry = getattr(registries, registry_name)
        name = str(name)
        known = name in registry._obj_map or f'{name}_basicsr' in registry._obj_map
        if _is_plugin_entry(registry, name) or not known:
            found.append(Use(path, name, UNKNOWN_TYPE))
    train = opt.get('train') or {}
    for key, value in train.items():
        if key.startswith('optim_') and isinstance(value, dict) and value.get('type') not in STOCK_OPTIMIZERS:
            found.append(Use(f'train:{key}:type', str(value.get('type')), 'fails: optimizer not supported'))
    scheduler = train.get('scheduler')
    if isinstance(scheduler, dict) and scheduler.get('type') not in STOCK_SCHEDULERS:
        found.append(Use('train:scheduler:type', str(scheduler.get('type')), 'fails: scheduler not supported'))
    return found


def needs_plugin(opt):
    """``{'keys': [Use], 'types': [Use]}``: what of ``opt`` needs basicsr-vitloss (empty lists: nothing)."""
    return {'keys': keys_used(opt), 'types': types_used(opt)}


def summary(opt):
    """One line saying what of ``opt`` needs the plugin, grouped by what stock BasicSR does without it, or ''."""
    needs = needs_plugin(opt)
    groups = {}  # consequence -> names, in order of first use
    for use in needs['types']:
        name = use.name if use.without_plugin == UNKNOWN_TYPE else f'{use.path} {use.name}'
        groups.setdefault(f'stock BasicSR {use.without_plugin}', []).append(name)
    for use in needs['keys']:
        consequence = 'stock BasicSR ignores them silently' if use.without_plugin.startswith(IGNORED) else \
            f'stock BasicSR: {use.without_plugin}'
        groups.setdefault(consequence, []).append(use.path)
    parts = [f"{', '.join(dict.fromkeys(names))} ({consequence})" for consequence, names in groups.items()]
    return 'Needs basicsr-vitloss: ' + '; '.join(parts) + '.' if parts else ''
