"""The paper's evaluation report: PSNR, SSIM, MAE, LPIPS and NIQE per image, means per category
(DPDD: Indoor / Outdoor / Combined), markdown tables in the layout of the paper's Tabs. I-III.

Evaluate restored images against the ground truth::

    python scripts/evaluate.py run --restored DIR --gt DIR --out DIR [--labels DIR_OR_CSV]
        [--method NAME] [--loss NAME] [--dataset NAME] [--lpips-weights DIR]
        [--metrics psnr ssim mae lpips niqe]

Restore first (a network from BasicSR options and weights), then evaluate::

    python scripts/evaluate.py run --opt OPTIONS.yml --weights net_g.pth --out DIR
        [--dataset-key test_1] [--tile 512 --tile-overlap 32] [options as above]

Merge several runs into one comparison table::

    python scripts/evaluate.py merge OUT1/results.json OUT2/results.json ... --out table.md [--json merged.json]

Pairing (``run --restored/--gt``): both folders' images are sorted by natural name order
(``img2`` before ``img10``) and paired by position; the counts must be equal. A pair matches when the
restored stem equals the gt stem or starts with the gt stem followed by ``_``: this accepts BasicSR's
``<input name>_<suffix>`` and DPDD's dual-pixel input names ``<scene>_L`` / ``_R`` / ``_C``
(e.g. gt ``scene7`` with ``scene7_L.png`` or ``scene7_L_NAFNet.png``), and refuses ``scene70``.

Categories (``--labels``): a folder holding ``indoor_labels.npy`` and ``outdoor_labels.npy`` (any
``<category>_labels.npy``; 1-based indices into the natural-sorted gt list, as distributed with the
DPDD test set), or a CSV file of ``name,category`` rows (name = gt stem; a header row
``name,category`` is optional). Groups: each category, then Combined (all images). Without labels:
Combined only, and the report says so.

Outputs of ``run`` (in --out):
    per_image.csv   name, restored, gt, category, psnr, ssim, mae, lpips, niqe, then the cache key
                    restored_bytes, restored_mtime_ns, gt_bytes, gt_mtime_ns. Values at full
                    precision; an empty cell = not computed; ``nan`` = undefined (NIQE of an image
                    with fewer than two 96x96 blocks). It is also the cache: a rerun reuses every value whose
                    files' names, sizes and mtimes are unchanged, and computes only what is missing.
    results.json    method, loss, dataset, n_images, counts (per group), groups (per group: the
                    mean of each metric; undefined values left out; null when none), labelled /
                    note, settings (how each metric was computed).
    results.md      one row (method, loss); columns grouped by category, for each group
                    PSNR↑ SSIM↑ MAE↓ LPIPS↓ NIQE↓.
    restored/       (with --opt) the network's outputs as 16-bit PNGs, <lq name stem>.png; existing
                    files are kept (resumable).

Number formats: PSNR 2 decimals (dB), SSIM, MAE, LPIPS and NIQE 3 decimals; missing cells '-'.
In the merged table, each column's best value is **bold** and the second best <u>underlined</u>
(PSNR, SSIM: higher is better; MAE, LPIPS, NIQE: lower is better). Values are compared as
displayed (rounded), so values that print alike are tied and all get the same mark; a column with
one distinct value has bold marks only. Columns are (dataset, group) x metric: with a single dataset
the group names head the columns (Indoor / Outdoor / Combined, Tabs. I/II); runs of several datasets
without categories (GoPro, HIDE: Tab. III) are headed by the dataset name. Rows are (method, loss)
in input order; one row may gather runs on several datasets.

Bad inputs print ``evaluate: error: ...`` to stderr and exit with status 2.
"""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np

from basicsr_vitloss.compat import NIQE_BLOCK, NIQE_MIN_BLOCKS, niqe_defined
from basicsr_vitloss.data.dpdd_files import IMAGE_EXTENSIONS, list_images, natural_key

METRICS = ('psnr', 'ssim', 'mae', 'lpips', 'niqe')
HIGHER_IS_BETTER = {'psnr': True, 'ssim': True, 'mae': False, 'lpips': False, 'niqe': False}
DECIMALS = {'psnr': 2, 'ssim': 3, 'mae': 3, 'lpips': 3, 'niqe': 3}
TITLES = {'psnr': 'PSNR', 'ssim': 'SSIM', 'mae': 'MAE', 'lpips': 'LPIPS', 'niqe': 'NIQE'}
COMBINED = 'Combined'
CSV_COLUMNS = ('name', 'restored', 'gt', 'category') + METRICS + (
    'restored_bytes', 'restored_mtime_ns', 'gt_bytes', 'gt_mtime_ns')
KEY_COLUMNS = CSV_COLUMNS[-4:]
SETTINGS = {
    'psnr': '10*log10(1/MSE) on RGB in [0, 1] (8-bit /255, 16-bit /65535), MSE over all pixels and '
            'channels, no border crop (basicsr_vitloss calculate_psnr_float)',
    'ssim': "scikit-image structural_similarity on RGB in [0, 1], data_range 1, 7x7 uniform window, "
            'channel-averaged, no border crop (calculate_ssim_float)',
    'mae': 'mean |restored - gt| on RGB in [0, 1] over all pixels and channels (calculate_mae)',
    'lpips': "lpips 0.1, AlexNet backbone (lpips.LPIPS(net='alex')), inputs in [0, 1] (calculate_lpips)",
    'niqe': "BasicSR calculate_niqe on the restored image only, rounded to 8 bits, Y channel, "
            f'crop_border 0; undefined (nan, left out of the means) for images with fewer than '
            f'{NIQE_MIN_BLOCKS} blocks of {NIQE_BLOCK}x{NIQE_BLOCK} pixels',
}
SHOWN = 5  # names listed per problem in an error message
NO_LABELS_NOTE = 'No category labels given (--labels): Combined only.'


class EvaluateError(ValueError):
    """A problem with the user's inputs: printed as ``evaluate: error: ...``, exit status 2."""


# ----------------------------------------------------------------------------------------- files

def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def stems_match(restored_stem, gt_stem):
    """The pairing rule: equal stems, or the restored stem is the gt stem + '_' + anything."""
    return restored_stem == gt_stem or restored_stem.startswith(gt_stem + '_')


def _listing(names):
    names = list(names)
    more = f' (and {len(names) - SHOWN} more)' if len(names) > SHOWN else ''
    return ', '.join(names[:SHOWN]) + more if names else 'none'


def match_folders(restored_dir, gt_dir):
    """[(restored path, gt path)] paired by natural-sorted position; EvaluateError naming the files
    when the counts differ or a pair breaks the naming rule."""
    restored = list_images(restored_dir, 'restored')
    gt = list_images(gt_dir, 'ground-truth')
    if len(restored) != len(gt):
        gt_stems = {stem(n): n for n in gt}
        paired, only_restored = set(), []
        for name in restored:
            candidates = [g for g in gt_stems if stems_match(stem(name), g)]
            if candidates:
                paired.add(max(candidates, key=len))
            else:
                only_restored.append(name)
        only_gt = [n for s, n in gt_stems.items() if s not in paired]
        raise EvaluateError(
            f'{len(restored)} restored images in {restored_dir} but {len(gt)} ground-truth images in '
            f'{gt_dir}; only in restored: {_listing(only_restored)}; only in ground truth: {_listing(only_gt)}.')
    bad = [(r, g) for r, g in zip(restored, gt) if not stems_match(stem(r), stem(g))]
    if bad:
        pairs = '; '.join(f'{r} vs {g}' for r, g in bad[:SHOWN])
        raise EvaluateError(
            f'{len(bad)} of {len(gt)} pairs (by sorted name) do not match: {pairs}. A restored name must be '
            f'the gt stem, optionally followed by _<anything> (e.g. scene1_L.png for scene1.png); '
            f'restored: {restored_dir}, ground truth: {gt_dir}.')
    return [(os.path.join(restored_dir, r), os.path.join(gt_dir, g)) for r, g in zip(restored, gt)]


def read_bgr(path):
    """An image file as HWC BGR, 3 channels, uint8 or uint16 (grey expanded, alpha dropped)."""
    from basicsr_vitloss.data.image_io import read_image_unchanged
    image = read_image_unchanged(path)
    if image.dtype not in (np.uint8, np.uint16):
        raise EvaluateError(f'{path}: pixel type {image.dtype}; expected 8- or 16-bit images.')
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


# ---------------------------------------------------------------------------------------- labels

def _npy_categories(folder, gt_names):
    files = sorted(n for n in os.listdir(folder) if n.endswith('_labels.npy'))
    if not files:
        raise EvaluateError(f'labels folder {folder} has no *_labels.npy files; expected indoor_labels.npy '
                            f'and outdoor_labels.npy (from the DPDD test set) or a name,category CSV file.')
    order = {'indoor': 0, 'outdoor': 1}
    files.sort(key=lambda n: (order.get(n[:-len('_labels.npy')].lower(), 2), n))
    assignment = {}
    categories = []
    for file in files:
        path = os.path.join(folder, file)
        category = file[:-len('_labels.npy')].capitalize()
        try:
            indices = np.load(path, allow_pickle=False).reshape(-1)
        except (OSError, ValueError) as error:
            raise EvaluateError(f'{path}: cannot read it as a numpy array ({error}).') from None
        if indices.dtype.kind not in 'iuf' or not np.all(np.mod(indices, 1) == 0):
            raise EvaluateError(f'{path}: expected integer image indices (1-based), got {indices.dtype} values.')
        indices = [int(i) for i in indices]
        wrong = [i for i in indices if not 1 <= i <= len(gt_names)]
        if wrong:
            raise EvaluateError(f'{path}: indices {_listing(map(str, wrong))} out of range 1..{len(gt_names)} '
                                f'(1-based indices into the {len(gt_names)} sorted ground-truth images).')
        categories.append(category)
        for index in sorted(set(indices)):
            name = gt_names[index - 1]
            if name in assignment and assignment[name][0] != category:
                raise EvaluateError(f'image {name} (index {index}) is in two categories: '
                                    f'{assignment[name][1]} and {file} ({folder}).')
            assignment[name] = (category, file)
    return categories, {name: c for name, (c, _) in assignment.items()}


def _csv_categories(path, gt_names):
    known = set(gt_names)
    categories, assignment, unknown = [], {}, []
    with open(path, newline='', encoding='utf-8') as file:
        for line, row in enumerate(csv.reader(file), 1):
            row = [cell.strip() for cell in row]
            if not any(row) or row[0].startswith('#'):
                continue
            if line == 1 and [c.lower() for c in row] == ['name', 'category']:
                continue
            if len(row) != 2 or not all(row):
                raise EvaluateError(f'{path} line {line}: expected "name,category", got {",".join(row)!r}.')
            name, category = row
            if name.lower().endswith(IMAGE_EXTENSIONS):
                name = stem(name)
            if category.lower() == COMBINED.lower():
                raise EvaluateError(f'{path} line {line}: {COMBINED} is the group of all images, not a category.')
            if name not in known:
                unknown.append(name)
                continue
            if name in assignment and assignment[name] != category:
                raise EvaluateError(f'{path}: image {name} is in two categories, {assignment[name]} and {category}.')
            assignment[name] = category
            if category not in categories:
                categories.append(category)
    if unknown:
        raise EvaluateError(f'{path}: names that match no ground-truth image: {_listing(unknown)} '
                            f'(names are gt file stems, e.g. {gt_names[0]}).')
    if not assignment:
        raise EvaluateError(f'{path}: no name,category rows.')
    return categories, assignment


def load_categories(labels, gt_names):
    """(categories in order, {gt stem: category}) from --labels (None: no categories)."""
    if labels is None:
        return [], {}
    if os.path.isdir(labels):
        return _npy_categories(labels, gt_names)
    if os.path.isfile(labels) and labels.lower().endswith('.csv'):
        return _csv_categories(labels, gt_names)
    raise EvaluateError(f'--labels {labels}: expected a folder with indoor_labels.npy / outdoor_labels.npy '
                        f'or a .csv file of name,category rows; '
                        f'{"it is not a .csv file" if os.path.exists(labels) else "it does not exist"}.')


# ---------------------------------------------------------------------------------------- metrics

def to_uint8(image):
    """8-bit copy of a uint8/uint16 image (rounded), for NIQE which is defined on [0, 255]."""
    if image.dtype == np.uint8:
        return image
    return np.round(image.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def compute_metrics(restored, gt, metrics, lpips_weights=None):
    """{metric: value} of one restored image against its gt (NIQE: of the restored image alone)."""
    from basicsr_vitloss.metrics import fidelity_metric, lpips_metric
    from basicsr.metrics import niqe as niqe_module
    values = {}
    if 'psnr' in metrics:
        values['psnr'] = float(fidelity_metric.calculate_psnr_float(restored, gt, crop_border=0))
    if 'ssim' in metrics:
        values['ssim'] = float(fidelity_metric.calculate_ssim_float(restored, gt, crop_border=0))
    if 'mae' in metrics:
        values['mae'] = float(fidelity_metric.calculate_mae(restored, gt, crop_border=0))
    if 'lpips' in metrics:
        values['lpips'] = float(lpips_metric.calculate_lpips(restored, gt, net='alex', weights_dir=lpips_weights))
    if 'niqe' in metrics:
        height, width = restored.shape[:2]
        if not niqe_defined(height, width):
            values['niqe'] = math.nan
        else:
            values['niqe'] = float(niqe_module.calculate_niqe(to_uint8(restored), 0, input_order='HWC',
                                                              convert_to='y'))
    return values


def _file_key(path):
    info = os.stat(path)
    return str(info.st_size), str(info.st_mtime_ns)


def read_cache(path):
    """{restored file name: row} of an earlier per_image.csv (empty when there is none)."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline='', encoding='utf-8') as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise EvaluateError(f'{path} exists but is not a per_image.csv of this script (columns '
                                f'{reader.fieldnames}, expected {", ".join(CSV_COLUMNS)}); delete it or '
                                f'choose another --out.')
        return {os.path.basename(row['restored']): row for row in reader}


def write_rows(path, rows):
    """Write per_image.csv atomically (a crash leaves the previous complete file)."""
    temporary = path + '.tmp'
    with open(temporary, 'w', newline='', encoding='utf-8') as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def _cell(value):
    return repr(float(value))


def evaluate_pairs(pairs, out_dir, metrics, categories, lpips_weights=None):
    """Per-image metrics of [(restored, gt)] with the cache in OUT/per_image.csv.
    Returns (rows as dicts of floats, number of images computed, number skipped)."""
    from tqdm import tqdm
    csv_path = os.path.join(out_dir, 'per_image.csv')
    cache = read_cache(csv_path)
    rows, computed, skipped = [], 0, 0
    for index, (restored_path, gt_path) in enumerate(tqdm(pairs, desc='evaluate', unit='img',
                                                            file=sys.stderr, dynamic_ncols=True)):
        name = stem(gt_path)
        row = {'name': name, 'restored': restored_path, 'gt': gt_path, 'category': categories.get(name, '')}
        row.update(zip(KEY_COLUMNS, _file_key(restored_path) + _file_key(gt_path)))
        old = cache.get(os.path.basename(restored_path))
        if old is not None and all(old[k] == row[k] for k in KEY_COLUMNS) and os.path.basename(old['gt']) == \
                os.path.basename(gt_path):
            row.update({m: old[m] for m in METRICS})
        else:
            row.update({m: '' for m in METRICS})
        missing = [m for m in metrics if row[m] == '']
        if missing:
            restored, gt = read_bgr(restored_path), read_bgr(gt_path)
            if restored.shape != gt.shape:
                raise EvaluateError(f'{restored_path} is {restored.shape[1]}x{restored.shape[0]} but its ground '
                                    f'truth {gt_path} is {gt.shape[1]}x{gt.shape[0]}.')
            try:
                values = compute_metrics(restored, gt, missing, lpips_weights)
            except ValueError as error:  # e.g. a NIQE fit that fails: name the images
                raise EvaluateError(f'computing {", ".join(missing)} of {restored_path} against {gt_path} '
                                    f'failed: {type(error).__name__}: {error}') from None
            row.update({m: _cell(v) for m, v in values.items()})
            computed += 1
        else:
            skipped += 1
        rows.append(row)
        if missing or index == len(pairs) - 1:
            write_rows(csv_path, rows + [r for r in _remaining(cache, pairs[index + 1:])])
    return rows, computed, skipped


def _remaining(cache, pairs):
    """Cached rows of pairs not reached yet, kept in the CSV while a run is under way."""
    for restored_path, _ in pairs:
        if os.path.basename(restored_path) in cache:
            yield cache[os.path.basename(restored_path)]


def group_means(rows, categories, metrics):
    """({group: {metric: mean or None}}, {group: count}); groups = categories + Combined.
    Undefined values (nan) are left out of a mean; a group without values gets None."""
    groups = {c: [r for r in rows if r['category'] == c] for c in categories}
    groups[COMBINED] = rows
    means, counts = {}, {}
    for group, members in groups.items():
        counts[group] = len(members)
        means[group] = {}
        for metric in metrics:
            values = [float(r[metric]) for r in members if r[metric] != '' and not math.isnan(float(r[metric]))]
            means[group][metric] = float(np.mean(values)) if values else None
    return means, counts


# ---------------------------------------------------------------------------------------- tables

def format_value(value, metric):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    if math.isinf(value):
        return 'inf' if value > 0 else '-inf'
    return f'{value:.{DECIMALS[metric]}f}'


def metric_header(metric):
    return TITLES[metric] + ('↑' if HIGHER_IS_BETTER[metric] else '↓')


def column_headers(columns):
    """Header text per (dataset, group, metric) column: the group names alone for one dataset,
    the dataset name for a dataset shown as Combined only, else '<dataset> <group>'."""
    datasets = list(dict.fromkeys(d for d, _, _ in columns))
    headers = []
    for dataset, group, metric in columns:
        groups = {g for d, g, _ in columns if d == dataset}
        if len(datasets) == 1 or not dataset:
            label = group
        elif groups == {COMBINED}:
            label = dataset
        else:
            label = f'{dataset} {group}'
        headers.append(f'{label} {metric_header(metric)}')
    return headers


def marks(values, metric):
    """['best' | 'second' | None] per value: compared as displayed, ties share a mark."""
    shown = [None if v is None or math.isnan(v) else round(v, DECIMALS[metric]) for v in values]
    distinct = sorted({v for v in shown if v is not None}, reverse=HIGHER_IS_BETTER[metric])
    rank = {v: ('best' if i == 0 else 'second') for i, v in enumerate(distinct[:2])}
    return [rank.get(v) if v is not None else None for v in shown]


def markdown_table(rows, columns, mark=True):
    """rows: [(method, loss, {column: value})]; columns: [(dataset, group, metric)]."""
    show_loss = any(loss for _, loss, _ in rows)
    head = ['Method'] + (['Loss'] if show_loss else []) + column_headers(columns)
    cells = [[method] + ([loss or '-'] if show_loss else []) for method, loss, _ in rows]
    for column in columns:
        metric = column[2]
        values = [row[2].get(column) for row in rows]
        kinds = marks(values, metric) if mark else [None] * len(values)
        for line, value, kind in zip(cells, values, kinds):
            text = format_value(value, metric)
            line.append(f'**{text}**' if kind == 'best' else f'<u>{text}</u>' if kind == 'second' else text)
    align = [':--'] * (2 if show_loss else 1) + ['--:'] * len(columns)
    lines = ['| ' + ' | '.join(head) + ' |', '| ' + ' | '.join(align) + ' |']
    lines += ['| ' + ' | '.join(line) + ' |' for line in cells]
    return '\n'.join(lines) + '\n'


def run_columns(dataset, groups, metrics):
    return [(dataset, group, metric) for group in groups for metric in metrics]


def write_results(out_dir, args, metrics, categories, rows, notes, extra_settings=None):
    """results.json and results.md of one run; returns the JSON dict."""
    means, counts = group_means(rows, categories, metrics)
    unlabelled = [r['name'] for r in rows if not r['category']]
    if not categories:
        notes = [NO_LABELS_NOTE] + notes
    elif unlabelled:
        notes = [f'{len(unlabelled)} images have no category (in {COMBINED} only): {_listing(unlabelled)}.'] + notes
    undefined = {m: [r['name'] for r in rows if r[m] not in ('',) and math.isnan(float(r[m]))] for m in metrics}
    for metric, names in undefined.items():
        if names:
            notes.append(f'{TITLES[metric]} undefined for {len(names)} images (left out of its means): '
                         f'{_listing(names)}.')
    settings = {m: SETTINGS[m] for m in metrics}
    settings.update(crop_border=0, pairing='natural-sorted names; restored stem = gt stem [+ _anything]',
                    means='arithmetic mean over the images of each group')
    settings.update(extra_settings or {})
    result = {'method': args.method, 'loss': args.loss or '', 'dataset': args.dataset or '',
              'n_images': len(rows), 'counts': counts, 'groups': means, 'metrics': list(metrics),
              'labelled': bool(categories), 'labels': os.path.abspath(args.labels) if args.labels else None,
              'note': ' '.join(notes) if notes else None, 'unlabelled': unlabelled, 'settings': settings}
    with open(os.path.join(out_dir, 'results.json'), 'w', encoding='utf-8') as file:
        json.dump(result, file, indent=2)
        file.write('\n')
    title = args.method + (f' ({args.loss})' if args.loss else '') + (f' on {args.dataset}' if args.dataset else '')
    groups = list(means)
    table_row = (args.method, args.loss or '', {(args.dataset or '', g, m): means[g][m] for g in groups
                                                 for m in metrics})
    lines = [f'# Evaluation: {title}', '']
    lines += [f'Note: {note}' for note in notes] + ([''] if notes else [])
    lines += [markdown_table([table_row], run_columns(args.dataset or '', groups, metrics), mark=False)]
    lines += ['Images: ' + ', '.join(f'{g} {n}' for g, n in counts.items()) + '.', '',
              'Formats: PSNR (dB) 2 decimals; SSIM, MAE, LPIPS, NIQE 3 decimals. '
              '↑ higher is better, ↓ lower is better.', '', 'Metrics:', '']
    lines += [f'- {TITLES[m]}: {SETTINGS[m]}' for m in metrics]
    with open(os.path.join(out_dir, 'results.md'), 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')
    return result


# ------------------------------------------------------------------------------------- inference

def load_options(path, key):
    """(options dict, test dataset options) of a BasicSR YAML file."""
    import yaml
    if not os.path.isfile(path):
        raise EvaluateError(f'--opt {path} does not exist.')
    try:
        with open(path, encoding='utf-8') as file:
            opt = yaml.safe_load(file)
    except yaml.YAMLError as error:
        raise EvaluateError(f'--opt {path}: not valid YAML ({error}).') from None
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict):
        raise EvaluateError(f'--opt {path}: expected BasicSR options with a network_g mapping.')
    datasets = opt.get('datasets')
    if not isinstance(datasets, dict) or not datasets:
        raise EvaluateError(f'--opt {path}: expected a datasets mapping with a test dataset.')
    if key is None:
        key = next((k for k, v in datasets.items() if isinstance(v, dict)
                    and v.get('phase', k.split('_')[0]) != 'train'), None)
        if key is None:
            raise EvaluateError(f'--opt {path}: no dataset whose phase is not train in datasets '
                                f'({", ".join(datasets)}); add a test entry or give --dataset-key.')
    elif not isinstance(datasets.get(key), dict):
        raise EvaluateError(f'--opt {path}: no dataset {key!r} in datasets ({", ".join(datasets)}).')
    dataset_opt = dict(datasets[key])
    dataset_opt['phase'] = dataset_opt.get('phase', key.split('_')[0])
    dataset_opt.setdefault('name', key)
    dataset_opt.setdefault('io_backend', {'type': 'disk'})
    dataset_opt.setdefault('scale', opt.get('scale', 1))
    return opt, dataset_opt


def load_weights(path):
    """The state dict of a BasicSR checkpoint ('params_ema', else 'params') or a bare state dict."""
    import torch
    if not os.path.isfile(path):
        raise EvaluateError(f'--weights {path} does not exist.')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # pickle, zip, truncation: one message naming the file
        raise EvaluateError(f'--weights {path}: cannot load it with torch.load ({type(error).__name__}: '
                            f'{error}).') from None
    if isinstance(checkpoint, dict):
        for key in ('params_ema', 'params'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        keys = ', '.join(list(checkpoint)[:SHOWN]) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise EvaluateError(f'--weights {path}: expected a BasicSR checkpoint with params_ema or params, or a '
                            f'state dict of tensors; got {keys}.')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in checkpoint.items()}


def restore(args):
    """Run the options' network on its test dataset; [(restored path, gt path)] natural-sorted by gt."""
    import cv2
    import torch
    from tqdm import tqdm
    # basicsr_vitloss first: its compatibility fixes and registrations precede basicsr's imports
    from basicsr_vitloss.utils.tiling import tiled_forward
    from basicsr.archs import build_network
    from basicsr.data import build_dataset

    opt, dataset_opt = load_options(args.opt, args.dataset_key)
    if args.tile < 0 or (args.tile and not 0 <= args.tile_overlap < args.tile):
        raise EvaluateError(f'--tile {args.tile} --tile-overlap {args.tile_overlap}: need tile >= 0 '
                            f'(0 = whole image) and 0 <= overlap < tile.')
    try:
        net = build_network(opt['network_g'])
    except (KeyError, TypeError) as error:
        raise EvaluateError(f'--opt {args.opt}: cannot build network_g ({type(error).__name__}: {error}).') from None
    try:
        net.load_state_dict(load_weights(args.weights), strict=True)
    except RuntimeError as error:
        raise EvaluateError(f'--weights {args.weights} does not fit network_g of {args.opt}: '
                            f'{str(error)[:600]}') from None
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    net = net.to(device).eval()
    try:
        dataset = build_dataset(dataset_opt)
    except (KeyError, TypeError) as error:
        raise EvaluateError(f'--opt {args.opt}: cannot build dataset {dataset_opt["name"]} '
                            f'({type(error).__name__}: {error}).') from None
    folder = os.path.join(args.out, 'restored')
    os.makedirs(folder, exist_ok=True)
    pairs, seen = [], {}
    for index in tqdm(range(len(dataset)), desc='restore', unit='img', file=sys.stderr, dynamic_ncols=True):
        sample = dataset[index]
        name = stem(sample['lq_path'])
        if name in seen:
            raise EvaluateError(f'dataset {dataset_opt["name"]}: two inputs named {name}: {seen[name]} and '
                                f'{sample["lq_path"]}.')
        seen[name] = sample['lq_path']
        path = os.path.join(folder, f'{name}.png')
        pairs.append((path, sample['gt_path']))
        if os.path.isfile(path):
            continue
        x = sample['lq'].unsqueeze(0).to(device)
        with torch.no_grad():
            y = tiled_forward(net, x, args.tile, args.tile_overlap) if args.tile else net(x)
        image = y[0].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        if image.shape[2] == 3:
            image = image[..., ::-1]
        image = np.round(image * 65535.0).astype(np.uint16)
        temporary = os.path.join(folder, f'.{name}.tmp.png')
        if not cv2.imwrite(temporary, image):
            raise EvaluateError(f'cannot write {temporary}.')
        os.replace(temporary, path)
    pairs.sort(key=lambda pair: natural_key(os.path.basename(pair[1])))
    args.method = args.method or opt.get('name') or stem(args.opt)
    args.dataset = args.dataset if args.dataset is not None else dataset_opt.get('name', '')
    settings = {'inference': f'{type(net).__name__} from {os.path.abspath(args.opt)} (datasets: '
                             f'{dataset_opt["name"]}), weights {os.path.abspath(args.weights)}, '
                             + (f'tiles {args.tile} px, overlap {args.tile_overlap}' if args.tile else 'whole images')
                             + f', on {device.type}; saved as 16-bit PNG'}
    return pairs, settings


# ------------------------------------------------------------------------------------------- CLI

def command_run(args):
    metrics = tuple(m for m in METRICS if m in args.metrics)
    if args.opt:
        if args.restored or args.gt:
            raise EvaluateError('give either --opt and --weights (restore, then evaluate) or --restored and --gt, '
                                'not both.')
        if not args.weights:
            raise EvaluateError('--opt needs --weights (the network weights, e.g. net_g_latest.pth).')
        os.makedirs(args.out, exist_ok=True)
        pairs, extra = restore(args)
    else:
        if not (args.restored and args.gt):
            raise EvaluateError('run needs --restored DIR and --gt DIR (or --opt OPTIONS.yml --weights FILE).')
        if args.weights or args.dataset_key:
            raise EvaluateError('--weights and --dataset-key go with --opt.')
        pairs, extra = match_folders(args.restored, args.gt), {}
        args.method = args.method or os.path.basename(os.path.normpath(args.restored))
        os.makedirs(args.out, exist_ok=True)
    gt_names = [stem(g) for _, g in pairs]
    if len(set(gt_names)) != len(gt_names):
        raise EvaluateError('two ground-truth images share a name: '
                            f'{_listing(sorted({n for n in gt_names if gt_names.count(n) > 1}))}.')
    categories, assignment = load_categories(args.labels, gt_names)
    rows, computed, skipped = evaluate_pairs(pairs, args.out, metrics, assignment, args.lpips_weights)
    result = write_results(args.out, args, metrics, categories, rows, [], extra)
    print(f'evaluated {len(rows)} images: computed {computed}, skipped {skipped} (cached in '
          f'{os.path.join(args.out, "per_image.csv")})')
    for group, values in result['groups'].items():
        print(f'{group} ({result["counts"][group]}): '
              + ', '.join(f'{TITLES[m]} {format_value(values[m], m)}' for m in metrics))
    print(f'wrote {os.path.join(args.out, "results.json")} and {os.path.join(args.out, "results.md")}')
    return 0


def load_result(path):
    if not os.path.isfile(path):
        raise EvaluateError(f'results file {path} does not exist.')
    try:
        with open(path, encoding='utf-8') as file:
            result = json.load(file)
    except (ValueError, UnicodeDecodeError) as error:
        raise EvaluateError(f'{path}: not valid JSON ({error}).') from None
    if not isinstance(result, dict) or not isinstance(result.get('groups'), dict) or not result.get('method'):
        raise EvaluateError(f'{path}: expected a results.json of "evaluate.py run" (method, groups).')
    for group, values in result['groups'].items():
        if not isinstance(values, dict) or not all(v is None or isinstance(v, (int, float)) for v in values.values()):
            raise EvaluateError(f'{path}: group {group!r} must map metric names to numbers or null.')
    return result


def command_merge(args):
    rows, sources, columns = {}, {}, []
    for path in args.results:
        result = load_result(path)
        row_key = (str(result['method']), str(result.get('loss') or ''))
        dataset = str(result.get('dataset') or '')
        values = rows.setdefault(row_key, {})
        groups = sorted(result['groups'], key=lambda g: g == COMBINED)  # Combined last, else as given
        for group in groups:
            for metric in METRICS:
                if metric not in result['groups'][group]:
                    continue
                column = (dataset, group, metric)
                if column in values:
                    raise EvaluateError(f'{path} and {sources[row_key + column]} both give {row_key[0]} '
                                        f'{row_key[1]} {dataset} {group} {metric}.'.replace('  ', ' '))
                value = result['groups'][group][metric]
                values[column] = None if value is None else float(value)
                sources[row_key + column] = path
                if column not in columns:
                    columns.append(column)
    dataset_order = list(dict.fromkeys(d for d, _, _ in columns))
    group_order = list(dict.fromkeys(g for _, g, _ in columns))
    columns.sort(key=lambda c: (dataset_order.index(c[0]), c[1] == COMBINED, group_order.index(c[1]),
                                METRICS.index(c[2])))
    table_rows = [(method, loss, values) for (method, loss), values in rows.items()]
    text = markdown_table(table_rows, columns)
    legend = ('Best in **bold**, second best <u>underlined</u> (compared as shown); ↑ higher is better, '
              '↓ lower is better; - = not evaluated. PSNR in dB (2 decimals); SSIM, MAE, LPIPS, NIQE 3 decimals.')
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as file:
        file.write(text + '\n' + legend + '\n\nSources: ' + ', '.join(args.results) + '\n')
    if args.json:
        headers = column_headers(columns)
        merged = {'columns': [{'header': h, 'dataset': d, 'group': g, 'metric': m}
                              for h, (d, g, m) in zip(headers, columns)], 'rows': []}
        column_marks = {c: marks([r[2].get(c) for r in table_rows], c[2]) for c in columns}
        for i, (method, loss, values) in enumerate(table_rows):
            merged['rows'].append({'method': method, 'loss': loss,
                                   'values': {h: values.get(c) for h, c in zip(headers, columns)},
                                   'marks': {h: column_marks[c][i] for h, c in zip(headers, columns)
                                             if column_marks[c][i]}})
        with open(args.json, 'w', encoding='utf-8') as file:
            json.dump(merged, file, indent=2)
            file.write('\n')
    print(text, end='')
    print(f'wrote {args.out}' + (f' and {args.json}' if args.json else ''))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog='evaluate', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('run', help='evaluate restored images (optionally restoring them first)')
    run.add_argument('--restored', help='folder of restored images')
    run.add_argument('--gt', help='folder of ground-truth images')
    run.add_argument('--opt', help='BasicSR options (network_g, datasets): restore first')
    run.add_argument('--weights', help='network weights for --opt (params_ema / params / state dict)')
    run.add_argument('--dataset-key', help='datasets entry for --opt (default: first whose phase is not train)')
    run.add_argument('--tile', type=int, default=512, help='tile size for --opt inference; 0 = whole image')
    run.add_argument('--tile-overlap', type=int, default=32, help='tile overlap in pixels')
    run.add_argument('--out', required=True, help='output folder (per_image.csv, results.json, results.md)')
    run.add_argument('--labels', help='folder with indoor_labels.npy / outdoor_labels.npy, or a name,category CSV')
    run.add_argument('--method', help='method name (default: options name or restored folder name)')
    run.add_argument('--loss', default='', help='loss name (e.g. L1, L1+ViT)')
    run.add_argument('--dataset', help='dataset name (e.g. DPDD, GoPro, HIDE)')
    run.add_argument('--lpips-weights', help="folder holding torchvision's alexnet-owt-7be5be79.pth")
    run.add_argument('--metrics', nargs='+', choices=METRICS, default=list(METRICS), help='metrics to compute')
    merge = commands.add_parser('merge', help='merge results.json files into one comparison table')
    merge.add_argument('results', nargs='+', help='results.json files of evaluate.py run')
    merge.add_argument('--out', required=True, help='markdown table to write')
    merge.add_argument('--json', help='also write the merged table as JSON')
    return parser


def main(argv=None):
    """Entry point; returns the exit status (0, or 2 for bad inputs)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code
    try:
        return command_run(args) if args.command == 'run' else command_merge(args)
    except (EvaluateError, OSError, ValueError) as error:
        print(f'evaluate: error: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
