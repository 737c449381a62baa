"""Report what a basicsr-vitloss installation runs on: versions, the startup hook, the compat fixes
applied to this BasicSR, every BasicSR attribute the plugin replaces, and the plugin classes registered.
Paste its output into bug reports.

    python scripts/check_install.py [--json] [--replaced-markdown]
    python scripts/check_install.py --opt FILE [FILE ...]

``--replaced-markdown`` prints only the replaced-attributes table, in Markdown (as in docs/compat.md).

``--opt`` reports, for each options file, the plugin-only keys and the ``type:`` names that need basicsr-vitloss
(``basicsr_vitloss.utils.plugin_keys``). Where the plugin is not active in this interpreter (hook switched off
with ``BASICSR_VITLOSS_DISABLE_HOOK=1``, or not installed) it says what stock BasicSR would do (ignore the key
silently, fail at the type) and exits 1; with the plugin active it lists them and exits 0. This mode does not
import ``basicsr_vitloss`` itself: the check sees the interpreter as ``python -m basicsr.train`` would.
"""
import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os.path as osp
import platform
import sys


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect():
    """The installation report as a dict."""
    hook_active = 'basicsr_vitloss_startup' in sys.modules
    import basicsr  # noqa: F401  (through the hook when it is active)
    activated_by_hook = 'basicsr_vitloss' in sys.modules
    import torch

    import basicsr_vitloss
    from basicsr.utils import registry
    from basicsr_vitloss import compat

    plugin = {}
    for name in ('ARCH_REGISTRY', 'DATASET_REGISTRY', 'LOSS_REGISTRY', 'METRIC_REGISTRY', 'MODEL_REGISTRY'):
        plugin[name] = sorted(k for k, v in getattr(registry, name) if v.__module__.startswith('basicsr_vitloss.'))
    return {
        'python': platform.python_version(),
        'platform': platform.platform(),
        'versions': {d: _version(d) for d in ('basicsr-vitloss', 'basicsr', 'torch', 'torchvision', 'numpy',
                                              'opencv-python', 'scikit-image', 'timm', 'lpips')},
        'cuda_available': torch.cuda.is_available(),
        'cuda_devices': torch.cuda.device_count(),
        'startup_hook_loaded': hook_active,
        'plugin_activated_by_import_basicsr': activated_by_hook,
        'compat_fixes_applied': compat.applied_fixes(),
        'replaced_attributes': [row._asdict() for row in compat.replaced_attributes()],
        'plugin_classes': plugin,
        'plugin_version': basicsr_vitloss.__version__,
    }


def replaced_markdown(rows):
    """The replaced-attributes rows as a Markdown table."""
    lines = ['| BasicSR attribute | replaced by | patch | kind | replaced here |', '|---|---|---|---|---|']
    for row in rows:
        lines.append(f"| `{row['attribute']}` | `{row['replacement']}` | `{row['patch']}` | {row['kind']} | "
                     f"{'yes' if row['applied'] else 'no'} |")
    return '\n'.join(lines)


def _plugin_keys_module():
    """``basicsr_vitloss.utils.plugin_keys``, loaded from its file when the plugin is not active (importing it
    as a submodule would activate the plugin), from the installed package or this checkout."""
    if 'basicsr_vitloss' in sys.modules:
        return importlib.import_module('basicsr_vitloss.utils.plugin_keys')
    spec = importlib.util.find_spec('basicsr_vitloss')  # locates the package without running it
    folders = list(spec.submodule_search_locations or []) if spec else []
    folders.append(osp.join(osp.dirname(osp.abspath(__file__)), '..', 'basicsr_vitloss'))
    for folder in folders:
        path = osp.join(folder, 'utils', 'plugin_keys.py')
        if osp.isfile(path):
            module_spec = importlib.util.spec_from_file_location('_basicsr_vitloss_plugin_keys', path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            return module
    raise FileNotFoundError('basicsr_vitloss/utils/plugin_keys.py not found: basicsr-vitloss is neither installed '
                            'nor next to this script.')


def check_options(paths):
    """Report what each options file of ``paths`` needs of the plugin; 1 if the plugin is not active here and a
    file needs it (or a file cannot be read), else 0."""
    import yaml

    import basicsr  # noqa: F401  (activates the plugin through the startup hook, as BasicSR's commands do)
    active = hasattr(sys.modules.get('basicsr_vitloss'), '__version__')  # imported to the end (not failed)
    keys = _plugin_keys_module()
    print(f"basicsr-vitloss is {'active' if active else 'NOT active'} in this interpreter.")
    status = 0
    for path in paths:
        try:
            with open(path, encoding='utf-8') as file:
                opt = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as error:
            print(f'{path}: cannot read it as YAML options ({error}).')
            status = 1
            continue
        if not isinstance(opt, dict):
            print(f'{path}: expected a mapping of BasicSR options, got {type(opt).__name__}.')
            status = 1
            continue
        needs = keys.needs_plugin(opt)
        if not needs['types'] and not needs['keys']:
            print(f'{path}: needs nothing of basicsr-vitloss.')
            continue
        print(f'{path}:')
        for use in needs['types']:
            print(f'  type {use.name} ({use.path})' + ('' if active else f': stock BasicSR {use.without_plugin}'))
        for use in needs['keys']:
            print(f'  key {use.path}' + ('' if active else f': stock BasicSR: {use.without_plugin}'))
        if not active:
            status = 1
    if status and not active:
        print('basicsr-vitloss is not active (BASICSR_VITLOSS_DISABLE_HOOK is set, or the plugin is not installed): '
              'stock BasicSR would ignore the keys above silently and fail at the types. Install the plugin '
              '(pip install .) or unset BASICSR_VITLOSS_DISABLE_HOOK.')
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(description='Report the basicsr-vitloss installation.')
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    parser.add_argument('--replaced-markdown', action='store_true',
                        help='print only the table of replaced BasicSR attributes, in Markdown')
    parser.add_argument('--opt', nargs='+', metavar='FILE',
                        help='report the plugin-only keys and types of these options files; exit 1 if they need '
                             'the plugin and it is not active')
    args = parser.parse_args(argv)
    if args.opt:
        return check_options(args.opt)
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if args.replaced_markdown:
        print(replaced_markdown(report['replaced_attributes']))
        return 0
    for key, value in report.items():
        if key == 'replaced_attributes':
            print(f'{key} (attribute <- replacement [patch, kind]; * = replaced in this process):')
            for row in value:
                print(f"  {'*' if row['applied'] else ' '} {row['attribute']} <- {row['replacement']} "
                      f"[{row['patch']}, {row['kind']}]")
        elif isinstance(value, dict):
            print(f'{key}:')
            for k, v in value.items():
                print(f'  {k}: {v}')
        else:
            print(f'{key}: {value}')
    if not report['plugin_activated_by_import_basicsr']:
        print('\nThe startup hook is not active: `python -m basicsr.train` will not see plugin classes. '
              'Reinstall with `pip install .`, or use `python -m basicsr_vitloss.train`.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
