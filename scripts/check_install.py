"""Report what a basicsr-vitloss installation runs on: versions, the startup hook, the compat fixes
applied to this BasicSR, every BasicSR attribute the plugin replaces, and the plugin classes registered.
Paste its output into bug reports.

    python scripts/check_install.py [--json] [--replaced-markdown]

``--replaced-markdown`` prints only the replaced-attributes table, in Markdown (as in docs/compat.md).
"""
import argparse
import importlib.metadata
import json
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


def main(argv=None):
    parser = argparse.ArgumentParser(description='Report the basicsr-vitloss installation.')
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    parser.add_argument('--replaced-markdown', action='store_true',
                        help='print only the table of replaced BasicSR attributes, in Markdown')
    args = parser.parse_args(argv)
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if args.replaced_markdown:
        print(replaced_markdown(report['replaced_attributes']))
        return
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


if __name__ == '__main__':
    main()
