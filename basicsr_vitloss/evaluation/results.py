"""One run's results: the per-image cache (per_image.csv), the group means, results.json / results.md,
and the protocol that decides whether two runs' numbers are comparable."""
import csv
import json
import math
import os
import sys

import numpy as np

from basicsr_vitloss.evaluation.categories import COMBINED, NO_LABELS_NOTE
from basicsr_vitloss.evaluation.errors import EvaluateError, listing
from basicsr_vitloss.evaluation.images import read_bgr
from basicsr_vitloss.evaluation.metrics import LPIPS_NET, METRIC_VARIANTS, METRICS, SETTINGS, TITLES, \
    compute_metrics, lpips_variant
from basicsr_vitloss.evaluation.pairing import stem
from basicsr_vitloss.evaluation.tables import FORMATS_NOTE, markdown_table, run_columns
from basicsr_vitloss.utils.atomic_write import atomic_write

#: metric -> (its variant column in per_image.csv, the variant of files written before that column existed)
VARIANT_COLUMNS = {'ssim': ('ssim_variant', 'float'), 'niqe': ('niqe_variant', 'y'), 'lpips': ('lpips_variant', 'alex')}
CSV_COLUMNS = ('name', 'restored', 'gt', 'category') + METRICS + tuple(c for c, _ in VARIANT_COLUMNS.values()) + (
    'restored_bytes', 'restored_mtime_ns', 'gt_bytes', 'gt_mtime_ns')
KEY_COLUMNS = CSV_COLUMNS[-4:]
NOT_COMPARED = ('pairing',)
NO_PROTOCOL = None  # marker in merge for a results.json written before the protocol existed


def _file_key(path):
    info = os.stat(path)
    return str(info.st_size), str(info.st_mtime_ns)


def read_cache(path):
    """{restored file name: row} of an earlier per_image.csv (empty when there is none)."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline='', encoding='utf-8') as file:
        reader = csv.DictReader(file)
        columns = tuple(reader.fieldnames or ())
        # files of older versions lack variant columns: their values are of the variant that was the only one
        absent = {metric: default for metric, (column, default) in VARIANT_COLUMNS.items() if column not in columns}
        if absent and columns == tuple(c for c in CSV_COLUMNS if c in columns) and \
                set(CSV_COLUMNS) - set(columns) == {VARIANT_COLUMNS[m][0] for m in absent}:
            return {os.path.basename(row['restored']): dict(row, **{
                VARIANT_COLUMNS[m][0]: default if row[m] else '' for m, default in absent.items()}) for row in reader}
        if columns != CSV_COLUMNS:
            raise EvaluateError(f'{path} exists but is not a per_image.csv of this script (columns '
                                f'{reader.fieldnames}, expected {", ".join(CSV_COLUMNS)}); delete it or '
                                f'choose another --out.')
        return {os.path.basename(row['restored']): row for row in reader}


def write_rows(path, rows):
    """Write per_image.csv atomically (a crash leaves the previous complete file)."""
    def write(file):
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write(path, write, 'w', newline='', encoding='utf-8')


def _cell(value):
    return repr(float(value))


def evaluate_pairs(pairs, out_dir, metrics, categories, lpips_weights=None, ssim='float', niqe_channel='y',
                   lpips_net=LPIPS_NET):
    """Per-image metrics of [(restored, gt)] with the cache in OUT/per_image.csv; a cached value of another
    variant (SSIM, NIQE channel, LPIPS net) than the one asked for is computed again.
    Returns (rows as dicts of floats, number of images computed, number skipped)."""
    from tqdm import tqdm
    csv_path = os.path.join(out_dir, 'per_image.csv')
    cache = read_cache(csv_path)
    wanted = {'ssim': ssim, 'niqe': niqe_channel, 'lpips': lpips_net}
    rows, computed, skipped = [], 0, 0
    for index, (restored_path, gt_path) in enumerate(tqdm(pairs, desc='evaluate', unit='img',
                                                            file=sys.stderr, dynamic_ncols=True)):
        name = stem(gt_path)
        row = {'name': name, 'restored': restored_path, 'gt': gt_path, 'category': categories.get(name, '')}
        row.update(zip(KEY_COLUMNS, _file_key(restored_path) + _file_key(gt_path)))
        old = cache.get(os.path.basename(restored_path))
        if old is not None and all(old[k] == row[k] for k in KEY_COLUMNS) and os.path.basename(old['gt']) == \
                os.path.basename(gt_path):
            row.update({m: old[m] for m in METRICS}, **{c: old[c] for c, _ in VARIANT_COLUMNS.values()})
            for metric, (column, _) in VARIANT_COLUMNS.items():
                if row[column] != wanted[metric]:  # computed as another variant: not this run's number
                    row.update({metric: '', column: ''})
        else:
            row.update({m: '' for m in METRICS}, **{c: '' for c, _ in VARIANT_COLUMNS.values()})
        missing = [m for m in metrics if row[m] == '']
        if missing:
            restored, gt = read_bgr(restored_path), read_bgr(gt_path)
            if restored.shape != gt.shape:
                raise EvaluateError(f'{restored_path} is {restored.shape[1]}x{restored.shape[0]} but its ground '
                                    f'truth {gt_path} is {gt.shape[1]}x{gt.shape[0]}.')
            try:
                values = compute_metrics(restored, gt, missing, lpips_weights, ssim, niqe_channel, lpips_net)
            except ValueError as error:  # e.g. a NIQE fit that fails: name the images
                raise EvaluateError(f'computing {", ".join(missing)} of {restored_path} against {gt_path} '
                                    f'failed: {type(error).__name__}: {error}') from None
            row.update({m: _cell(v) for m, v in values.items()})
            row.update({column: wanted[m] for m, (column, _) in VARIANT_COLUMNS.items() if m in values})
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
def build_protocol(metrics, pairing, pairing_used, depths, inference, ssim, niqe_channel='y', lpips_net=LPIPS_NET):
    """What decides whether two runs' numbers are comparable (results.json ``protocol``). The NIQE channel is
    part of ``metrics.niqe`` (the Y text is the one of results written before --niqe-channel existed)."""
    variants = {}
    for metric in metrics:
        variant = METRIC_VARIANTS[metric]
        if metric == 'ssim':
            variant = variant[ssim]
        elif metric == 'niqe':
            variant = variant[niqe_channel]
        elif metric == 'lpips':
            lpips = lpips_variant(lpips_net)
            variant = f"lpips.LPIPS(net='{lpips['net']}', version='{lpips['version']}'), {lpips['package']}"
        variants[metric] = variant
    protocol = {'pairing': {'option': pairing, 'used': pairing_used},
                'bit_depth': {'restored': depths[0], 'gt': depths[1]},
                'colour_space': (f"RGB (NIQE: {'Y' if niqe_channel == 'y' else 'grayscale'} of the 8-bit result)"
                                 if 'niqe' in metrics else 'RGB'),
                'crop_border': 0,
                'inference': inference,
                'metrics': variants}
    if 'lpips' in metrics:
        protocol['lpips'] = lpips_variant(lpips_net)
    return protocol


def flatten(protocol, prefix=''):
    """{'a.b': value} of a nested protocol dict."""
    flat = {}
    for key, value in protocol.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat
def write_results(out_dir, args, metrics, categories, rows, notes, extra_settings=None, protocol=None):
    """results.json and results.md of one run; returns the JSON dict."""
    means, counts = group_means(rows, categories, metrics)
    unlabelled = [r['name'] for r in rows if not r['category']]
    if not categories:
        notes = [NO_LABELS_NOTE] + notes
    elif unlabelled:
        notes = [f'{len(unlabelled)} images have no category (in {COMBINED} only): {listing(unlabelled)}.'] + notes
    undefined = {m: [r['name'] for r in rows if r[m] not in ('',) and math.isnan(float(r[m]))] for m in metrics}
    for metric, names in undefined.items():
        if names:
            notes.append(f'{TITLES[metric]} undefined for {len(names)} images (left out of its means): '
                         f'{listing(names)}.')
    variant_keys = {'ssim': 'ssim_matlab' if args.ssim == 'matlab' else 'ssim',
                    'niqe': 'niqe_gray' if getattr(args, 'niqe_channel', 'y') == 'gray' else 'niqe',
                    'lpips': 'lpips_vgg' if getattr(args, 'lpips_net', LPIPS_NET) == 'vgg' else 'lpips'}
    settings = {m: SETTINGS[variant_keys.get(m, m)] for m in metrics}
    pairing = protocol['pairing'] if protocol else {'option': args.pairing, 'used': ''}
    settings.update(crop_border=0, pairing=(
        f"--pairing {pairing['option']}: " + ('by name (restored stem = gt stem [+ _anything])'
                                            if pairing['used'] == 'name' else
                                            'by natural-sorted position, each pair checked to be the same capture')),
        means='arithmetic mean over the images of each group')
    settings.update(extra_settings or {})
    result = {'method': args.method, 'loss': args.loss or '', 'dataset': args.dataset or '',
              'n_images': len(rows), 'counts': counts, 'groups': means, 'metrics': list(metrics),
              'labelled': bool(categories), 'labels': os.path.abspath(args.labels) if args.labels else None,
              'note': ' '.join(notes) if notes else None, 'unlabelled': unlabelled, 'settings': settings,
              'protocol': protocol}
    atomic_write(os.path.join(out_dir, 'results.json'), lambda file: file.write(json.dumps(result, indent=2) + '\n'),
                 'w', encoding='utf-8')
    title = args.method + (f' ({args.loss})' if args.loss else '') + (f' on {args.dataset}' if args.dataset else '')
    groups = list(means)
    table_row = (args.method, args.loss or '', {(args.dataset or '', g, m): means[g][m] for g in groups
                                                 for m in metrics})
    lines = [f'# Evaluation: {title}', '']
    lines += [f'Note: {note}' for note in notes] + ([''] if notes else [])
    lines += [markdown_table([table_row], run_columns(args.dataset or '', groups, metrics), mark=False)]
    lines += ['Images: ' + ', '.join(f'{g} {n}' for g, n in counts.items()) + '.', '',
              FORMATS_NOTE, '', 'Metrics:', '']
    lines += [f'- {TITLES[m]}: {settings[m]}' for m in metrics]
    if protocol:
        lines += ['', 'Protocol (compared by evaluate.py merge):', '']
        lines += [f'- {key}: {value}' for key, value in flatten(protocol).items()]
    atomic_write(os.path.join(out_dir, 'results.md'), lambda file: file.write('\n'.join(lines) + '\n'), 'w',
                 encoding='utf-8')
    return result

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


def protocol_differences(runs):
    """Differences between the protocols of runs on the same dataset: [(field, text)] for
    runs = [(path, dataset, protocol or None)]. Every field but NOT_COMPARED is compared with the dataset's
    first run; a metric's variant (and lpips.*) only where both runs computed it; a run without a protocol
    (an older results.json) differs."""
    differences = []
    by_dataset = {}
    for path, dataset, protocol in runs:
        by_dataset.setdefault(dataset, []).append((path, protocol))
    for dataset, members in by_dataset.items():
        if len(members) < 2:
            continue
        on = f' on {dataset}' if dataset else ''
        for path, protocol in members:
            if not isinstance(protocol, dict):
                differences.append(('protocol', f'{path}{on} has no protocol (a results.json of an older '
                                                f'evaluate.py; rerun "evaluate.py run" into its folder to add it: '
                                                f'cached per-image values are reused)'))
        having = [(path, flatten(protocol)) for path, protocol in members if isinstance(protocol, dict)]
        if len(having) < 2:
            continue
        first_path, first = having[0]
        for path, flat in having[1:]:
            for key in list(dict.fromkeys(list(first) + list(flat))):
                if key.split('.')[0] in NOT_COMPARED:
                    continue
                if key not in first or key not in flat:
                    if key.startswith(('metrics.', 'lpips.')):
                        continue  # a metric only one run computed: nothing to compare
                elif first[key] == flat[key]:
                    continue
                differences.append((key, f'{key}{on}: {first.get(key, "absent")!r} in {first_path} but '
                                         f'{flat.get(key, "absent")!r} in {path}'))
    return differences
