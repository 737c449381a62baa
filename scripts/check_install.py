"""Report what a basicsr-vitloss installation runs on: versions, the startup hook, the compat fixes
applied to this BasicSR, and the plugin classes registered. Paste its output into bug reports.

    python scripts/check_install.py [--json]
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
        'plugin_classes': plugin,
        'plugin_version': basicsr_vitloss.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description='Report the basicsr-vitloss installation.')
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    args = parser.parse_args(argv)
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if isinstance(value, dict):
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
