"""What basicsr-vitloss's entry points do before handing over to BasicSR's pipelines.

- check the options file and every ``type:`` name in it against BasicSR's registries, so that a
  typo fails at once, before BasicSR creates (or archives) an experiment folder;
- initialize torch.distributed for ``--launcher pytorch|slurm`` with ``dist_params`` (``backend``,
  ``port``, ``timeout`` in seconds; stock BasicSR ignores dist_params for the pytorch launcher), each
  process on its own GPU unless ``num_gpu: 0``.
"""
import argparse
import os
import os.path as osp
import sys

import yaml

from basicsr.utils import registry

from .utils.distributed import init_dist
from .utils.registration import PLUGIN_SUFFIX, plugin_type_name, unknown_name_message


def _arguments(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', type=str, required=True)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    return parser.parse_known_args(argv)[0]


def read_options(path):
    """The options file as a dict, with errors that name the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Options file not found: {path}')
    with open(path, encoding='utf-8') as f:
        try:
            opt = yaml.safe_load(f)
        except yaml.YAMLError as error:
            raise ValueError(f'Options file {path} is not valid YAML: {error}') from error
    if not isinstance(opt, dict):
        raise ValueError(f'Options file {path} must hold a mapping of option keys, got {type(opt).__name__}.')
    return opt


def registered_types(opt):
    """``(key path, registry, type name)`` for every ``type:`` of the options that names a
    registered class: model, datasets, networks, losses and validation metrics."""
    found = []
    if 'model_type' in opt:
        found.append(('model_type', registry.MODEL_REGISTRY, opt['model_type']))
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict) and 'type' in dataset:
            found.append((f'datasets:{phase}:type', registry.DATASET_REGISTRY, dataset['type']))
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, dict) and 'type' in value:
            found.append((f'{key}:type', registry.ARCH_REGISTRY, value['type']))
    for key, value in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(value, dict) and 'type' in value:  # pixel_opt, gan_opt, ...
            found.append((f'train:{key}:type', registry.LOSS_REGISTRY, value['type']))
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, dict) and 'type' in metric:
            found.append((f'val:metrics:{name}:type', registry.METRIC_REGISTRY, metric['type']))
    return found


def _plugin_suffixed(reg, name):
    """Whether ``name`` is ``<Name>_vitloss`` of a plugin object (registered under either key)."""
    suffix = f'_{PLUGIN_SUFFIX}'
    return isinstance(name, str) and name.endswith(suffix) and \
        plugin_type_name(reg, name[:-len(suffix)]) is not None


def check_types(opt, path):
    """Raise a KeyError naming the file, the key and the closest registered names for the first
    ``type:`` that no registry holds."""
    for key, reg, name in registered_types(opt):
        if name not in reg and f'{name}_basicsr' not in reg and not _plugin_suffixed(reg, name):
            raise KeyError(f'{path}: {key}: {unknown_name_message(reg, name)}')


def prepare(argv):
    """Checks and distributed initialization for the command line ``argv`` (without program name)."""
    args = _arguments(argv)
    opt = read_options(args.opt)
    check_types(opt, args.opt)
    if args.launcher != 'none':
        params = dict(opt.get('dist_params') or {})
        params.setdefault('use_cuda', opt.get('num_gpu', 'auto') != 0)  # BasicSR: num_gpu 0 trains on the CPU
        init_dist(args.launcher, **params)
    return opt


def run(pipeline, argv=None):
    """Run a BasicSR pipeline (``train_pipeline`` / ``test_pipeline``) for the command line ``argv``
    (default: ``sys.argv[1:]``), after ``prepare``, with the current directory as root."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]  # BasicSR's parse_options reads sys.argv
    prepare(sys.argv[1:])
    pipeline(os.getcwd())
