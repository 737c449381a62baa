"""BasicSR options for the bundle: this package's generated options files, mapped to keys the tree reads.

The source is the options files ``scripts/make_options.py`` generates (``options/`` of this repository,
checked against the generator by the test suite). Each file is mapped to stock BasicSR:

- ``MAPPINGS`` replace a plugin-only key or type with stock means; each says whether the result is
  exactly what the plugin runs (``exact``) or what changes (validation and test measurements only:
  no training behaviour is ever changed), and the change is written into the file's header;
- every remaining key must be read by the target tree's own code (``allowed_keys``); a file with a key
  that is not is refused with the keys named (``RefusedOptions``), never written with it dropped.
"""
import copy
import os
import os.path as osp
from collections import namedtuple

import yaml

from .allowed_keys import TreeKeys, unread_keys

#: One option source: the grid folder of this repository, the networks taken, the scope, and the name
#: of the data in BasicSR's file names.
Grid = namedtuple('Grid', 'folder networks scope data')
GRIDS = (
    Grid('gopro', ('nafnet', 'uformer'), 'method', 'GoPro'),
    Grid('dpdd_dual', ('dpdnet', 'nafnet', 'uformer'), 'dpdd', 'DPDD_dual'),
    Grid('dpdd_single', ('dpdnet', 'nafnet', 'uformer'), 'dpdd', 'DPDD_single'),
)
LOSSES = ('baseline', 'vgg', 'local', 'global')
NETWORK_NAMES = {'nafnet': 'NAFNet', 'uformer': 'Uformer', 'dpdnet': 'DPDNet'}
#: the bundle's folder in BasicSR's options/train and options/test
FOLDER = 'TransformerPerceptualLoss'
#: header lines of the source files kept in the written files (the others name this package's tools)
KEPT_HEADER_LINES = ('# Table', '# The paper reports', '# Recipe:', '# Left/right views', '# Single-image input')

Mapping = namedtuple('Mapping', 'what exact note')
MAPPINGS = {
    'recipe_gpus': Mapping('top-level recipe_gpus (a record of the recipe, no behaviour) -> this header', True,
                           'the recipe trains with {value} GPU process(es): batch_size_per_gpu is per process'),
    'datasets.train.use_shuffle': Mapping('datasets: train: use_shuffle removed (read by no code)', True,
                                          'BasicSR shuffles the training set always'),
    'val.tile': Mapping('val: tile removed', False, 'validation during training restores whole images (BasicSR '
                        'has no tiling; the plugin tiles validation only for speed)'),
    'val.save_16bit': Mapping('val: save_16bit removed', False, 'images are saved as 8-bit PNG (BasicSR); the '
                              "paper's DPDD numbers are on 16-bit outputs"),
    'calculate_psnr_float': Mapping('calculate_psnr_float -> calculate_psnr', False,
                                    'PSNR on 8-bit RGB (BasicSR), not on floats'),
    'calculate_ssim_float': Mapping('calculate_ssim_float -> calculate_ssim', False,
                                    'SSIM on 8-bit RGB (BasicSR), not on floats'),
    'calculate_ssim_matlab': Mapping('calculate_ssim_matlab -> calculate_ssim', False,
                                     "SSIM per channel (BasicSR), not MATLAB's 3-D ssim of the GoPro evaluation"),
    'calculate_mae': Mapping('calculate_mae removed', False, 'no MAE (BasicSR has none)'),
    'calculate_lpips': Mapping('calculate_lpips removed', False, 'no LPIPS (BasicSR has none)'),
    'TrueCosineAnnealingLR': Mapping('TrueCosineAnnealingLR(T_max, eta_min) -> CosineAnnealingRestartLR(periods: '
                                     '[T_max], restart_weights: [1], eta_min)', True, None),
    'MultiStepLR': Mapping('MultiStepLR -> MultiStepRestartLR (no restarts)', True, None),
}
_METRIC_MAP = {'calculate_psnr_float': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
               'calculate_ssim_float': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False},
               'calculate_ssim_matlab': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False},
               'calculate_mae': None, 'calculate_lpips': None}


class RefusedOptions(ValueError):
    """An options file needs keys the target tree does not read; ``problems`` maps file -> [(key, why)]."""

    def __init__(self, problems):
        self.problems = problems
        lines = [f'{path}: ' + '; '.join(f'{key} ({why})' for key, why in keys) for path, keys in problems.items()]
        super().__init__('These options files need keys the BasicSR tree does not read, so they are not written '
                         '(add the code that reads them to the bundle, or map them in '
                         'basicsr_vitloss/upstream/options.py):\n  ' + '\n  '.join(lines))


def options_root(explicit=None):
    """The folder holding this repository's ``options/`` (the sources): ``explicit``, else the checkout the
    package lives in, else the current directory."""
    candidates = [explicit] if explicit else [osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                              os.getcwd()]
    for root in candidates:
        if osp.isdir(osp.join(root, 'options', 'gopro')):
            return root
    raise FileNotFoundError(f'No options/ folder of basicsr-vitloss found in {", ".join(candidates)}: run the '
                            'command from a clone of basicsr-vitloss, or pass --options-root.')


def _read(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    header = [line for line in text.splitlines() if line.startswith('#')]
    return yaml.safe_load(text), header


def map_to_stock(opt):
    """``(stock options, [mapping key])``: ``opt`` with every ``MAPPINGS`` entry applied."""
    opt = copy.deepcopy(opt)
    used = []
    if 'recipe_gpus' in opt:
        used.append(('recipe_gpus', opt.pop('recipe_gpus')))
    train_set = (opt.get('datasets') or {}).get('train') or {}
    if 'use_shuffle' in train_set:
        used.append(('datasets.train.use_shuffle', train_set.pop('use_shuffle')))
    val = opt.get('val') or {}
    for key in ('tile', 'save_16bit'):
        if key in val:
            used.append((f'val.{key}', val.pop(key)))
    metrics = val.get('metrics') or {}
    for name in list(metrics):
        kind = metrics[name].get('type')
        if kind in _METRIC_MAP:
            used.append((kind, None))
            if _METRIC_MAP[kind] is None:
                del metrics[name]
            else:
                metrics[name] = dict(_METRIC_MAP[kind])
    scheduler = (opt.get('train') or {}).get('scheduler') or {}
    if scheduler.get('type') == 'TrueCosineAnnealingLR':
        used.append(('TrueCosineAnnealingLR', None))
        opt['train']['scheduler'] = {'type': 'CosineAnnealingRestartLR', 'periods': [scheduler['T_max']],
                                     'restart_weights': [1], 'eta_min': scheduler.get('eta_min', 0)}
    elif scheduler.get('type') == 'MultiStepLR':
        used.append(('MultiStepLR', None))
        scheduler['type'] = 'MultiStepRestartLR'
    return opt, used


def _header(source_rel, source_header, used, train_rel, test_rel):
    lines = [f'# Generated by basicsr-vitloss-upstream from basicsr-vitloss {source_rel}.']
    lines += [line for line in source_header if line.startswith(KEPT_HEADER_LINES)]
    for key, value in used:
        mapping = MAPPINGS[key]
        note = mapping.note.format(value=value) if mapping.note else None
        kind = 'exact' if mapping.exact else 'changes measurements only'
        lines.append(f'# Stock BasicSR: {mapping.what} ({kind})' + (f': {note}.' if note else '.'))
    lines.append(f'# Train: PYTHONPATH="./:${{PYTHONPATH}}" python basicsr/train.py -opt {train_rel}')
    lines.append(f'# Test:  PYTHONPATH="./:${{PYTHONPATH}}" python basicsr/test.py -opt {test_rel}')
    return '\n'.join(lines) + '\n'


def _dump(opt):
    return yaml.safe_dump(opt, sort_keys=False, default_flow_style=None, width=120)


def target_paths(grid, net, loss):
    name = f'{NETWORK_NAMES[net]}_{grid.data}_{loss}.yml'
    return f'options/train/{FOLDER}/train_{name}', f'options/test/{FOLDER}/test_{name}'


def files(tree, scopes, root=None):
    """``{tree path: text}`` of the options files of ``scopes``, checked against ``tree`` (whose overlay must
    already hold the bundle's code). Raises ``RefusedOptions`` naming every key the tree does not read."""
    root = options_root(root)
    keys = TreeKeys(tree)
    out, problems = {}, {}
    for grid in GRIDS:
        if grid.scope not in scopes:
            continue
        for net in grid.networks:
            for loss in LOSSES:
                train_rel, test_rel = target_paths(grid, net, loss)
                sources = {train_rel: f'options/{grid.folder}/{net}_{loss}.yml',
                           test_rel: f'options/test/{grid.folder}/{net}_{loss}.yml'}
                for rel, source in sources.items():
                    opt, header = _read(osp.join(root, source))
                    stock, used = map_to_stock(opt)
                    unread = unread_keys(stock, keys)
                    if unread:
                        problems[source] = unread
                        continue
                    out[rel] = _header(source, header, used, train_rel, test_rel) + _dump(stock)
    if problems:
        raise RefusedOptions(problems)
    return out
