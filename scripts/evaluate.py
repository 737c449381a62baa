"""The paper's evaluation report: PSNR, SSIM, MAE, LPIPS and NIQE per image, means per category
(DPDD: Indoor / Outdoor / Combined), markdown tables in the layout of the paper's Tabs. I-III.

Evaluate restored images against the ground truth::

    python scripts/evaluate.py run --restored DIR --gt DIR --out DIR [--labels DIR_OR_CSV]
        [--method NAME] [--loss NAME] [--dataset NAME] [--lpips-weights DIR]
        [--metrics psnr ssim mae lpips niqe] [--pairing auto|name|position] [--ssim float|matlab]

Restore first (a network from BasicSR options and weights), then evaluate::

    python scripts/evaluate.py run --opt OPTIONS.yml --weights net_g.pth --out DIR
        [--dataset-key test_1] [--tile 512 --tile-overlap 32] [options as above]

(whole images unless --tile is given: the official DPDD tests run whole images, and tiles change
every output pixel of networks whose attention spans the image, such as Restormer)

Merge several runs into one comparison table::

    python scripts/evaluate.py merge OUT1/results.json OUT2/results.json ... --out table.md [--json merged.json] [--force]

Pairing (``--pairing auto|name|position``, default auto). Restored images are named after their
*sources* (BasicSR's ``python -m basicsr.test`` writes ``<source>_<suffix>.png``; ``run --opt`` writes
``<source>.png``), ground-truth images after their *targets*, and the DPDD release names every target
by its own capture number (source ``1P0A0917``, target ``1P0A0916``). A restored name's *scene* is its
stem or a prefix of it ending before an ``_`` (``1P0A0917_DPDNet`` -> ``1P0A0917_DPDNet``, ``1P0A0917``).

* ``name``: a restored image pairs with the gt image whose stem is one of its scene candidates (the
  restored stem equals the gt stem, optionally followed by ``_<anything>``): GoPro, HIDE, any set
  whose targets carry their sources' names.
* ``position``: both folders natural-sorted (``img2`` before ``img10``; a ``_<suffix>`` shared by all
  restored names is ignored for sorting) and paired by position; the counts must be equal and every
  pair must be the same capture by ``basicsr_vitloss.data.dpdd_files.same_capture`` (one of the
  restored name's scene candidates is the gt stem, or has its prefix and a trailing capture number at
  most ``MAX_CAPTURE_OFFSET`` away): DPDD.
* ``auto``: by name when every restored image pairs by name (equal counts, one gt each), else by
  checked position.

Different counts, pairs of different captures or names that do not pair stop the run (status 2),
naming the files; nothing is paired by an unchecked guess. ``run --opt`` pairs its restored images
(named after the dataset's source scenes) with the dataset's gt files by the same rule.

Categories (``--labels``): a folder holding ``indoor_labels.npy`` and ``outdoor_labels.npy`` (any
``<category>_labels.npy``; 1-based indices into the natural-sorted gt list, as distributed with the
DPDD test set), or a CSV file of ``name,category`` rows (name = gt stem; a header row
``name,category`` is optional). Groups: each category, then Combined (all images). Without labels:
Combined only, and the report says so.

SSIM (``--ssim float|matlab``): ``float`` = scikit-image's structural_similarity on RGB in [0, 1]
(7x7 uniform window, per-channel mean; the DPDD evaluation, default for every other dataset);
``matlab`` = MATLAB's ``ssim`` on the 8-bit RGB images, a 3-D SSIM (11x11x11 Gaussian, sigma 1.5;
``calculate_ssim_matlab``), as the GoPro / HIDE numbers of Tab. III are computed: the default when
--dataset (or, with --opt, the test dataset's name) is GoPro or HIDE. 16-bit images are rounded to
8 bits for it.

Outputs of ``run`` (in --out):
    per_image.csv   name, restored, gt, category, psnr, ssim, mae, lpips, niqe, ssim_variant, then the
                    cache key restored_bytes, restored_mtime_ns, gt_bytes, gt_mtime_ns. Values at full
                    precision; an empty cell = not computed; ``nan`` = undefined (NIQE of an image
                    with fewer than two 96x96 blocks). It is also the cache: a rerun reuses every value whose
                    files' names, sizes and mtimes are unchanged (SSIM: and whose variant is the one asked
                    for), and computes only what is missing.
    results.json    method, loss, dataset, n_images, counts (per group), groups (per group: the
                    mean of each metric; undefined values left out; null when none), labelled /
                    note, settings (how each metric was computed, in words) and ``protocol``: what
                    decides whether two runs' numbers are comparable (see ``build_protocol``):
                    pairing (option and rule used), bit_depth (restored / gt, from the files),
                    colour_space, crop_border, inference (whole / tiled with tile and overlap /
                    unknown for given restored images), metrics (each metric's exact variant), lpips
                    (net, model version, package version).
    results.md      one row (method, loss); columns grouped by category, for each group
                    PSNR↑ SSIM↑ MAE↓ LPIPS↓ NIQE↓; notes (e.g. a bit-depth warning) and the protocol.
    restored/       (with --opt) the network's outputs as 16-bit PNGs, <source scene>.png, and
                    inference.json (options, weights, tiling); existing files are kept (resumable)
                    when inference.json matches, else the run stops rather than mix two settings.

A warning (stderr and the report's notes) is given when restored and gt bit depths differ, e.g.
8-bit results against DPDD's 16-bit targets: the metrics then include the results' 8-bit rounding
(a perfect 8-bit result scores about 58.9 dB PSNR, not infinity); save 16-bit results instead.

Number formats: PSNR 2 decimals (dB), SSIM, MAE and LPIPS 4 decimals (as the paper's tables), NIQE 3
(Tabs. I, IV, V; Tabs. II, III print 4); missing cells '-'. In the merged table, each column's best
value is **bold** and the second best <u>underlined</u> (PSNR, SSIM: higher is better; MAE, LPIPS,
NIQE: lower is better). Marks are decided on the unrounded values: only exactly equal values share a
mark, so two values that print alike can carry different marks; a column with one distinct value
has bold marks only. Columns are (dataset, group) x metric: with a single dataset the group names
head the columns (Indoor / Outdoor / Combined, Tabs. I/II); runs of several datasets without
categories (GoPro, HIDE: Tab. III) are headed by the dataset name. Rows are (method, loss) in input
order; one row may gather runs on several datasets.

``merge`` compares the protocols of the runs of each dataset (every field but pairing, which a
checked pairing does not change; a metric's variant only where both runs computed it). When they
differ it stops (status 2) naming the fields and files; a results.json without a protocol (an older
evaluate.py) counts as different. ``--force`` merges anyway and lists the differences under the table.

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
from basicsr_vitloss.data.dpdd_files import (IMAGE_EXTENSIONS, MAX_CAPTURE_OFFSET, PAIRINGS, list_images,
                                             natural_key, pair_by_rule, same_capture)
from basicsr_vitloss.data.image_io import PNG_SIGNATURE

METRICS = ('psnr', 'ssim', 'mae', 'lpips', 'niqe')
HIGHER_IS_BETTER = {'psnr': True, 'ssim': True, 'mae': False, 'lpips': False, 'niqe': False}
DECIMALS = {'psnr': 2, 'ssim': 4, 'mae': 4, 'lpips': 4, 'niqe': 3}
TITLES = {'psnr': 'PSNR', 'ssim': 'SSIM', 'mae': 'MAE', 'lpips': 'LPIPS', 'niqe': 'NIQE'}
COMBINED = 'Combined'
CSV_COLUMNS = ('name', 'restored', 'gt', 'category') + METRICS + ('ssim_variant',) + (
    'restored_bytes', 'restored_mtime_ns', 'gt_bytes', 'gt_mtime_ns')
KEY_COLUMNS = CSV_COLUMNS[-4:]
OLD_CSV_COLUMNS = tuple(c for c in CSV_COLUMNS if c != 'ssim_variant')  # before --ssim: SSIM was float
SSIM_VARIANTS = ('float', 'matlab')
MATLAB_SSIM_DATASETS = ('gopro', 'hide')  # Tab. III: MPRNet's / Restormer's evaluate_GOPRO_HIDE.m
LPIPS_NET, LPIPS_MODEL_VERSION = 'alex', '0.1'
#: protocol['metrics']: each metric's exact variant (SSIM per --ssim)
METRIC_VARIANTS = {
    'psnr': 'float, 10log10(1/MSE), RGB, data range 1',
    'ssim': {'float': 'skimage structural_similarity 7x7 uniform, per-channel mean, float',
             'matlab': 'MATLAB ssim 3-D, 11x11x11 Gaussian sigma 1.5, 8-bit'},
    'mae': 'float, mean |restored - gt|, RGB, data range 1',
    'lpips': None,  # net + package version, filled in by lpips_variant()
    'niqe': 'BasicSR calculate_niqe, 8-bit Y',
}
SETTINGS = {
    'psnr': '10*log10(1/MSE) on RGB in [0, 1] (8-bit /255, 16-bit /65535), MSE over all pixels and '
            'channels, no border crop (basicsr_vitloss calculate_psnr_float)',
    'ssim': "scikit-image structural_similarity on RGB in [0, 1], data_range 1, 7x7 uniform window, "
            'channel-averaged, no border crop (calculate_ssim_float)',
    'ssim_matlab': "MATLAB's ssim(restored, gt) on the 8-bit RGB images (16-bit rounded to 8 bits): a 3-D SSIM "
                   'over H x W x 3, 11x11x11 Gaussian window sigma 1.5, replicate padding, L = 255, mean of the '
                   'map, no border crop (calculate_ssim_matlab)',
    'mae': 'mean |restored - gt| on RGB in [0, 1] over all pixels and channels (calculate_mae)',
    'lpips': f"lpips {LPIPS_MODEL_VERSION}, AlexNet backbone (lpips.LPIPS(net='{LPIPS_NET}')), inputs in [0, 1] "
             '(calculate_lpips)',
    'niqe': "BasicSR calculate_niqe on the restored image only, rounded to 8 bits, Y channel, "
            f'crop_border 0; undefined (nan, left out of the means) for images with fewer than '
            f'{NIQE_MIN_BLOCKS} blocks of {NIQE_BLOCK}x{NIQE_BLOCK} pixels',
}
#: protocol fields merge does not compare: a checked pairing gives the same pairs either way
NOT_COMPARED = ('pairing',)
SHOWN = 5  # names listed per problem in an error message
NO_LABELS_NOTE = 'No category labels given (--labels): Combined only.'
NO_PROTOCOL = None  # marker in merge for a results.json written before the protocol existed


class EvaluateError(ValueError):
    """A problem with the user's inputs: printed as ``evaluate: error: ...``, exit status 2."""


def warn(message):
    print(f'evaluate: warning: {message}', file=sys.stderr)


# ----------------------------------------------------------------------------------------- files

def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def scene_candidates(restored_stem):
    """The scenes a restored name can be of, longest first: the stem itself, then each prefix ending
    before an '_' (BasicSR's ``<source>_<suffix>``): ``1P0A0917_x_y`` -> 1P0A0917_x_y, 1P0A0917_x, 1P0A0917."""
    parts = restored_stem.split('_')
    prefixes = ('_'.join(parts[:k]) for k in range(len(parts), 0, -1))
    return [p for p in prefixes if p]


def stems_match(restored_stem, gt_stem):
    """The name rule: the restored stem is the gt stem, optionally followed by '_' + anything."""
    return gt_stem in scene_candidates(restored_stem)


def same_capture_names(restored_stem, gt_stem):
    """The position check: one of the restored name's scene candidates is the gt's capture
    (``dpdd_files.same_capture``: the same name, or DPDD's target of its own capture number)."""
    return any(same_capture(scene, gt_stem) for scene in scene_candidates(restored_stem))


def _listing(names):
    names = list(names)
    more = f' (and {len(names) - SHOWN} more)' if len(names) > SHOWN else ''
    return ', '.join(names[:SHOWN]) + more if names else 'none'


def _suffix_free_key(stems):
    """Sort key for restored stems: natural order of the stem without a '_<suffix>' that all stems share
    (BasicSR's one suffix per test run), so ``a_x`` sorts like its scene ``a``."""
    parts = [s.split('_') for s in stems]
    shared = 0
    while parts and all(len(p) > shared + 1 for p in parts) and \
            len({tuple(p[len(p) - shared - 1:]) for p in parts}) == 1:
        shared += 1
    return lambda s: (natural_key('_'.join(s.split('_')[:-shared]) if shared else s), natural_key(s))


def _align(restored, gt, match):
    """(only in restored, only in gt, mismatched 'a vs b') of two sorted lists whose counts differ:
    a walk that skips a file when the next one on the other side matches (for the error message)."""
    i = j = 0
    only_restored, only_gt, bad = [], [], []
    while i < len(restored) and j < len(gt):
        if match(restored[i], gt[j]):
            i, j = i + 1, j + 1
        elif j + 1 < len(gt) and match(restored[i], gt[j + 1]):
            only_gt.append(gt[j])
            j += 1
        elif i + 1 < len(restored) and match(restored[i + 1], gt[j]):
            only_restored.append(restored[i])
            i += 1
        else:
            bad.append(f'{restored[i]} vs {gt[j]}')
            i, j = i + 1, j + 1
    return only_restored + restored[i:], only_gt + gt[j:], bad


def pair_files(restored, gt, pairing='auto', restored_where='', gt_where=''):
    """Pair restored image paths with ground-truth image paths by ``pairing`` (auto | name | position;
    see the module docstring). Returns ([(restored path, gt path)] in natural gt order, the rule used:
    'name' or 'position'). EvaluateError naming the files when they do not pair."""
    if pairing not in PAIRINGS:
        raise EvaluateError(f"--pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}.")
    gt = sorted(gt, key=lambda p: natural_key(os.path.basename(p)))
    gt_stems = [stem(p) for p in gt]
    key = _suffix_free_key([stem(p) for p in restored])
    restored = sorted(restored, key=lambda p: key(stem(p)))
    restored_stems = [stem(p) for p in restored]
    where = f' (restored: {restored_where}, ground truth: {gt_where})' if restored_where or gt_where else ''
    if len(set(gt_stems)) != len(gt_stems):
        raise EvaluateError('two ground-truth images share a name: '
                            f'{_listing(sorted({n for n in gt_stems if gt_stems.count(n) > 1}))}{where}.')
    known = set(gt_stems)
    scenes = [next((c for c in scene_candidates(r) if c in known), r) for r in restored_stems]
    by_name = len(restored) == len(gt) and set(scenes) == known  # equal counts and one gt each
    used = 'name' if pairing == 'name' or (pairing == 'auto' and by_name) else 'position'
    restored_names = [os.path.basename(p) for p in restored]
    gt_names = [os.path.basename(p) for p in gt]
    if used == 'name':
        claimed = {}
        for name, scene in zip(restored_names, scenes):
            claimed.setdefault(scene, []).append(name)
        twice = [f'{" and ".join(names)} (both {scene})' for scene, names in claimed.items() if len(names) > 1]
        if twice:
            raise EvaluateError(f'restored images that pair with the same ground-truth image by name: '
                                f'{_listing(twice)}{where}.')
        try:
            index_pairs = pair_by_rule(scenes, gt_stems, 'name', f'pairing by name{where}',
                                       'restored image', 'ground-truth image')
        except ValueError as error:
            raise EvaluateError(f'{error} (--pairing name: a restored name is the gt stem, optionally followed '
                                f'by _<anything>.)') from None
    else:
        def match(restored_name, gt_name):
            return same_capture_names(stem(restored_name), stem(gt_name))
        if len(restored) != len(gt):
            only_restored, only_gt, bad = _align(restored_names, gt_names, match)
            raise EvaluateError(
                f'{len(restored)} restored images but {len(gt)} ground-truth images{where}; '
                f'{"they do not all pair by name, so " if pairing == "auto" else ""}they pair by sorted position '
                f'and the counts must be equal (nothing is paired shifted). Only in restored: '
                f'{_listing(only_restored)}; only in ground truth: {_listing(only_gt)}'
                + (f'; other captures: {_listing(bad)}' if bad else '') + '.')
        try:
            index_pairs = pair_by_rule(restored_names, gt_names, 'position', f'pairing by position{where}',
                                       'restored image', 'ground-truth image', match=match)
        except ValueError as error:
            raise EvaluateError(f'{error} A restored name\'s scene is its stem or a prefix of it ending before '
                                f'an _ (1P0A0917_NAFNet.png -> 1P0A0917, whose target is 1P0A0916.png; capture '
                                f'numbers at most {MAX_CAPTURE_OFFSET} apart).') from None
    pairs = [(restored[i], gt[j]) for i, j in sorted(index_pairs, key=lambda ij: ij[1])]
    return pairs, used


def match_folders(restored_dir, gt_dir, pairing='auto'):
    """pair_files of the images in two folders: ([(restored path, gt path)], rule used)."""
    restored = [os.path.join(restored_dir, n) for n in list_images(restored_dir, 'restored')]
    gt = [os.path.join(gt_dir, n) for n in list_images(gt_dir, 'ground-truth')]
    return pair_files(restored, gt, pairing, restored_dir, gt_dir)


def bit_depth(path):
    """Bits per sample of an image file: from the PNG header (8 for palette / low-depth grey, as they
    decode), 8 for JPEG / BMP, else from the decoded image."""
    with open(path, 'rb') as file:
        head = file.read(25)
    if head[:8] == PNG_SIGNATURE and head[12:16] == b'IHDR' and len(head) == 25:
        return 16 if head[24] == 16 else 8
    if path.lower().endswith(('.jpg', '.jpeg', '.bmp')):
        return 8
    return 8 * read_bgr(path).dtype.itemsize


def set_bit_depth(paths):
    """The bit depth of a set of files: 8 or 16, or the sorted list when they are mixed."""
    depths = sorted({bit_depth(p) for p in paths})
    return depths[0] if len(depths) == 1 else depths


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


def matlab_ssim_function():
    """BasicSR's METRIC_REGISTRY entry calculate_ssim_matlab (basicsr_vitloss.metrics.ssim_matlab_metric)."""
    import basicsr_vitloss.metrics  # noqa: F401  (registers the plugin's metrics)
    from basicsr.utils.registry import METRIC_REGISTRY
    try:
        return METRIC_REGISTRY.get('calculate_ssim_matlab')
    except KeyError:
        raise EvaluateError('--ssim matlab needs the metric calculate_ssim_matlab '
                            '(basicsr_vitloss/metrics/ssim_matlab_metric.py), which this installation lacks; '
                            'use --ssim float or update basicsr-vitloss.') from None


def compute_metrics(restored, gt, metrics, lpips_weights=None, ssim='float'):
    """{metric: value} of one restored image against its gt (NIQE: of the restored image alone).
    ``ssim``: 'float' (scikit-image on [0, 1]) or 'matlab' (MATLAB's 3-D SSIM on the 8-bit images)."""
    from basicsr_vitloss.metrics import fidelity_metric, lpips_metric
    from basicsr.metrics import niqe as niqe_module
    values = {}
    if 'psnr' in metrics:
        values['psnr'] = float(fidelity_metric.calculate_psnr_float(restored, gt, crop_border=0))
    if 'ssim' in metrics:
        if ssim == 'matlab':
            values['ssim'] = float(matlab_ssim_function()(to_uint8(restored), to_uint8(gt), crop_border=0,
                                                          input_order='HWC', test_y_channel=False))
        else:
            values['ssim'] = float(fidelity_metric.calculate_ssim_float(restored, gt, crop_border=0))
    if 'mae' in metrics:
        values['mae'] = float(fidelity_metric.calculate_mae(restored, gt, crop_border=0))
    if 'lpips' in metrics:
        values['lpips'] = float(lpips_metric.calculate_lpips(restored, gt, net=LPIPS_NET, weights_dir=lpips_weights))
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
        if tuple(reader.fieldnames or ()) == OLD_CSV_COLUMNS:  # written before --ssim: SSIM was float
            return {os.path.basename(row['restored']): dict(row, ssim_variant='float' if row['ssim'] else '')
                    for row in reader}
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


def evaluate_pairs(pairs, out_dir, metrics, categories, lpips_weights=None, ssim='float'):
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
            row.update({m: old[m] for m in METRICS}, ssim_variant=old['ssim_variant'])
            if row['ssim_variant'] != ssim:  # computed with the other SSIM: not this run's number
                row.update(ssim='', ssim_variant='')
        else:
            row.update({m: '' for m in METRICS}, ssim_variant='')
        missing = [m for m in metrics if row[m] == '']
        if missing:
            restored, gt = read_bgr(restored_path), read_bgr(gt_path)
            if restored.shape != gt.shape:
                raise EvaluateError(f'{restored_path} is {restored.shape[1]}x{restored.shape[0]} but its ground '
                                    f'truth {gt_path} is {gt.shape[1]}x{gt.shape[0]}.')
            try:
                values = compute_metrics(restored, gt, missing, lpips_weights, ssim)
            except ValueError as error:  # e.g. a NIQE fit that fails: name the images
                raise EvaluateError(f'computing {", ".join(missing)} of {restored_path} against {gt_path} '
                                    f'failed: {type(error).__name__}: {error}') from None
            row.update({m: _cell(v) for m, v in values.items()})
            if 'ssim' in values:
                row['ssim_variant'] = ssim
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
    """['best' | 'second' | None] per value, decided on the unrounded values: only exactly equal
    values share a mark (two values that print alike but differ get different marks)."""
    valid = [None if v is None or math.isnan(v) else float(v) for v in values]
    distinct = sorted({v for v in valid if v is not None}, reverse=HIGHER_IS_BETTER[metric])
    rank = {v: ('best' if i == 0 else 'second') for i, v in enumerate(distinct[:2])}
    return [rank.get(v) if v is not None else None for v in valid]


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


FORMATS_NOTE = ('Formats: PSNR (dB) 2 decimals; SSIM, MAE, LPIPS 4 decimals; NIQE 3 decimals. '
                '↑ higher is better, ↓ lower is better.')


def lpips_variant():
    """LPIPS as computed here: net, model version and the lpips package's version."""
    from importlib import metadata
    try:
        package = metadata.version('lpips')
    except metadata.PackageNotFoundError:
        package = 'not installed'
    return {'net': LPIPS_NET, 'version': LPIPS_MODEL_VERSION, 'package': f'lpips {package}'}


def default_ssim(dataset):
    """'matlab' for GoPro / HIDE (Tab. III, by dataset name: GoPro, HIDE_test ...), else 'float'."""
    first = ''.join(c if c.isalnum() else ' ' for c in (dataset or '').lower()).split()
    return 'matlab' if first and first[0] in MATLAB_SSIM_DATASETS else 'float'


def build_protocol(metrics, pairing, pairing_used, depths, inference, ssim):
    """What decides whether two runs' numbers are comparable (results.json ``protocol``)."""
    variants = {}
    for metric in metrics:
        variant = METRIC_VARIANTS[metric]
        if metric == 'ssim':
            variant = variant[ssim]
        elif metric == 'lpips':
            lpips = lpips_variant()
            variant = f"lpips.LPIPS(net='{lpips['net']}', version='{lpips['version']}'), {lpips['package']}"
        variants[metric] = variant
    protocol = {'pairing': {'option': pairing, 'used': pairing_used},
                'bit_depth': {'restored': depths[0], 'gt': depths[1]},
                'colour_space': 'RGB (NIQE: Y of the 8-bit result)' if 'niqe' in metrics else 'RGB',
                'crop_border': 0,
                'inference': inference,
                'metrics': variants}
    if 'lpips' in metrics:
        protocol['lpips'] = lpips_variant()
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


def describe_depths(depths):
    return 'mixed ' + ' and '.join(f'{d}-bit' for d in depths) if isinstance(depths, list) else f'{depths}-bit'


def bit_depth_warning(depths):
    """The warning text when restored and gt bit depths differ, else None."""
    restored, gt = depths
    if restored == gt:
        return None
    return (f'restored images are {describe_depths(restored)} but the ground truth is {describe_depths(gt)}: '
            f'the metrics include the rounding of the coarser images (against 16-bit targets a perfect 8-bit '
            f'result scores about 58.9 dB PSNR, not infinity; the 4th decimal of SSIM and MAE moves). '
            f'Compare only runs of equal bit depths; save 16-bit results (val: save_16bit: true) for DPDD.')


def write_results(out_dir, args, metrics, categories, rows, notes, extra_settings=None, protocol=None):
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
    settings = {m: SETTINGS['ssim_matlab' if m == 'ssim' and args.ssim == 'matlab' else m] for m in metrics}
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
              FORMATS_NOTE, '', 'Metrics:', '']
    lines += [f'- {TITLES[m]}: {settings[m]}' for m in metrics]
    if protocol:
        lines += ['', 'Protocol (compared by evaluate.py merge):', '']
        lines += [f'- {key}: {value}' for key, value in flatten(protocol).items()]
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


DPDD_DATASET_TYPES = ('DPDDDataset', 'Dataset_DefocusDeblur_DualPixel_16bit')  # take the pairing option


def _inference_record(args, net_name, dataset_opt):
    """What made the files in OUT/restored (restored/inference.json): resuming needs the same."""
    return {'options': os.path.abspath(args.opt), 'weights': os.path.abspath(args.weights), 'network': net_name,
            'dataset': dataset_opt['name'],
            'inference': {'mode': 'tiled', 'tile': args.tile, 'overlap': args.tile_overlap} if args.tile
            else {'mode': 'whole'}}


def _check_restored_folder(folder, record):
    """Refuse to resume in a restored/ folder made with other options, weights or tiling."""
    marker = os.path.join(folder, 'inference.json')
    pngs = [n for n in os.listdir(folder) if n.endswith('.png') and not n.startswith('.')] if os.path.isdir(folder) \
        else []
    if os.path.isfile(marker):
        with open(marker, encoding='utf-8') as file:
            try:
                earlier = json.load(file)
            except ValueError:
                earlier = None
        if earlier != record:
            earlier = earlier if isinstance(earlier, dict) else {}
            changes = '; '.join(f'{key}: {earlier.get(key)} then, {value} now' for key, value in record.items()
                                if earlier.get(key) != value)
            raise EvaluateError(f'{folder} holds results made differently ({changes}; from {marker}); delete the '
                                f'folder or choose another --out.')
        return  # the same settings: resume
    if pngs:
        raise EvaluateError(f'{folder} holds {len(pngs)} restored images but no inference.json saying how they were '
                            f'made (an older evaluate.py, which tiled by default); delete the folder or choose another '
                            f'--out.')
    os.makedirs(folder, exist_ok=True)
    with open(marker, 'w', encoding='utf-8') as file:
        json.dump(record, file, indent=2)
        file.write('\n')


def restore(args):
    """Run the options' network on its test dataset, whole images unless --tile (16-bit PNGs named after the
    source scenes in OUT/restored). Returns ([(restored path, gt path)] paired by --pairing, the rule used,
    settings, protocol's inference)."""
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
    if args.pairing_given and dataset_opt.get('type') in DPDD_DATASET_TYPES:
        dataset_opt['pairing'] = args.pairing
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
    record = _inference_record(args, type(net).__name__, dataset_opt)
    _check_restored_folder(folder, record)
    restored, gt, seen = [], [], {}
    for index in tqdm(range(len(dataset)), desc='restore', unit='img', file=sys.stderr, dynamic_ncols=True):
        sample = dataset[index]
        name = stem(sample['lq_path'])  # the source scene (DPDDDataset) or the input's name
        if name in seen:
            raise EvaluateError(f'dataset {dataset_opt["name"]}: two inputs named {name}: {seen[name]} and '
                                f'{sample["lq_path"]}.')
        seen[name] = sample['lq_path']
        path = os.path.join(folder, f'{name}.png')
        restored.append(path)
        gt.append(sample['gt_path'])
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
    gt_folders = sorted({os.path.dirname(g) for g in gt})
    pairs, used = pair_files(restored, gt, args.pairing, folder, ', '.join(gt_folders))
    args.method = args.method or opt.get('name') or stem(args.opt)
    args.dataset = args.dataset if args.dataset is not None else dataset_opt.get('name', '')
    inference = record['inference']
    settings = {'inference': f'{type(net).__name__} from {os.path.abspath(args.opt)} (datasets: '
                             f'{dataset_opt["name"]}), weights {os.path.abspath(args.weights)}, '
                             + (f'tiles {args.tile} px, overlap {args.tile_overlap}' if args.tile else 'whole images')
                             + f', on {device.type}; saved as 16-bit PNG'}
    return pairs, used, settings, inference


# ------------------------------------------------------------------------------------------- CLI

def command_run(args):
    metrics = tuple(m for m in METRICS if m in args.metrics)
    args.pairing_given = args.pairing is not None
    args.pairing = args.pairing or 'auto'
    if args.opt:
        if args.restored or args.gt:
            raise EvaluateError('give either --opt and --weights (restore, then evaluate) or --restored and --gt, '
                                'not both.')
        if not args.weights:
            raise EvaluateError('--opt needs --weights (the network weights, e.g. net_g_latest.pth).')
        os.makedirs(args.out, exist_ok=True)
        pairs, used, extra, inference = restore(args)
    else:
        if not (args.restored and args.gt):
            raise EvaluateError('run needs --restored DIR and --gt DIR (or --opt OPTIONS.yml --weights FILE).')
        if args.weights or args.dataset_key or args.tile:
            raise EvaluateError('--weights, --dataset-key and --tile go with --opt.')
        pairs, used = match_folders(args.restored, args.gt, args.pairing)
        extra, inference = {}, {'mode': 'unknown (given restored images)'}
        args.method = args.method or os.path.basename(os.path.normpath(args.restored))
        os.makedirs(args.out, exist_ok=True)
    args.ssim = args.ssim or default_ssim(args.dataset)
    if 'ssim' in metrics and args.ssim == 'matlab':
        matlab_ssim_function()  # fails early (status 2) when the metric is missing
    gt_names = [stem(g) for _, g in pairs]
    categories, assignment = load_categories(args.labels, gt_names)
    depths = (set_bit_depth([r for r, _ in pairs]), set_bit_depth([g for _, g in pairs]))
    protocol = build_protocol(metrics, args.pairing, used, depths, inference, args.ssim)
    notes = []
    warning = bit_depth_warning(depths)
    if warning:
        warn(warning)
        notes.append(f'Warning: {warning}')
    rows, computed, skipped = evaluate_pairs(pairs, args.out, metrics, assignment, args.lpips_weights, args.ssim)
    result = write_results(args.out, args, metrics, categories, rows, notes, extra, protocol)
    print(f'evaluated {len(rows)} images (paired by {used}, SSIM {args.ssim}): computed {computed}, skipped '
          f'{skipped} (cached in {os.path.join(args.out, "per_image.csv")})')
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


def command_merge(args):
    rows, sources, columns, runs = {}, {}, [], []
    for path in args.results:
        result = load_result(path)
        row_key = (str(result['method']), str(result.get('loss') or ''))
        dataset = str(result.get('dataset') or '')
        runs.append((path, dataset, result.get('protocol', NO_PROTOCOL)))
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
    differences = protocol_differences(runs)
    if differences and not args.force:
        fields = list(dict.fromkeys(field for field, _ in differences))
        raise EvaluateError(f'the runs were evaluated differently (protocol fields {", ".join(fields)}), so their '
                            f'numbers are not comparable:\n  - ' + '\n  - '.join(why for _, why in differences)
                            + '\nEvaluate them alike, or merge anyway with --force (the table then lists the '
                              'differences).')
    for _, why in differences:
        warn(f'merged with --force although {why}')
    table_rows = [(method, loss, values) for (method, loss), values in rows.items()]
    text = markdown_table(table_rows, columns)
    legend = ('Best in **bold**, second best <u>underlined</u>, decided on the unrounded values (only exactly '
              'equal values share a mark); ↑ higher is better, ↓ lower is better; - = not evaluated. PSNR in dB '
              '(2 decimals); SSIM, MAE, LPIPS 4 decimals; NIQE 3 decimals.')
    protocols = {}
    for _, dataset, protocol in runs:
        if isinstance(protocol, dict):
            protocols.setdefault(dataset, protocol)
    lines = [text, legend, '']
    if differences:
        lines += ['**Protocol differences** (merged with --force; the marked comparisons are not like for like):',
                  ''] + [f'- {why}' for _, why in differences] + ['']
    for dataset, protocol in protocols.items():
        shown = {k: v for k, v in flatten(protocol).items() if k.split('.')[0] not in NOT_COMPARED}
        lines += [f'Protocol{" of " + dataset if dataset else ""} (first run): '
                  + '; '.join(f'{k} = {v}' for k, v in shown.items()), '']
    lines += ['Sources: ' + ', '.join(args.results)]
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')
    if args.json:
        headers = column_headers(columns)
        merged = {'columns': [{'header': h, 'dataset': d, 'group': g, 'metric': m}
                              for h, (d, g, m) in zip(headers, columns)], 'rows': [],
                  'protocols': protocols, 'protocol_differences': [why for _, why in differences]}
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
    run.add_argument('--tile', type=int, default=0,
                     help='--opt inference in tiles of this size (default 0: whole images, as the official DPDD '
                          'tests; tiles change every output pixel of networks whose attention spans the image, '
                          'e.g. Restormer)')
    run.add_argument('--tile-overlap', type=int, default=32, help='tile overlap in pixels (with --tile)')
    run.add_argument('--pairing', choices=PAIRINGS, default=None,
                     help='how restored images pair with the ground truth: name (restored stem = gt stem '
                          '[+ _anything]), position (natural-sorted, each pair checked to be the same capture: '
                          "DPDD's targets carry their own capture numbers) or auto (name when every image "
                          'pairs by name, else position; the default)')
    run.add_argument('--ssim', choices=SSIM_VARIANTS, default=None,
                     help="float: scikit-image SSIM on [0, 1] (DPDD); matlab: MATLAB's 3-D SSIM on the 8-bit "
                          'images (GoPro / HIDE, Tab. III). Default: matlab when the dataset is GoPro or HIDE, '
                          'else float')
    run.add_argument('--out', required=True, help='output folder (per_image.csv, results.json, results.md)')
    run.add_argument('--labels', help='folder with indoor_labels.npy / outdoor_labels.npy, or a name,category CSV')
    run.add_argument('--method', help='method name (default: options name or restored folder name)')
    run.add_argument('--loss', default='', help='loss name (e.g. L1, L1+ViT)')
    run.add_argument('--dataset', help='dataset name (e.g. DPDD, GoPro, HIDE; GoPro and HIDE default to --ssim matlab)')
    run.add_argument('--lpips-weights', help="folder holding torchvision's alexnet-owt-7be5be79.pth")
    run.add_argument('--metrics', nargs='+', choices=METRICS, default=list(METRICS), help='metrics to compute')
    merge = commands.add_parser('merge', help='merge results.json files into one comparison table')
    merge.add_argument('results', nargs='+', help='results.json files of evaluate.py run')
    merge.add_argument('--out', required=True, help='markdown table to write')
    merge.add_argument('--json', help='also write the merged table as JSON')
    merge.add_argument('--force', action='store_true',
                       help='merge runs whose protocols differ (the table lists the differences)')
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
