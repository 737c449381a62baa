"""Choose a perceptual-loss weight: short training runs at several weights, the perception-distortion plot.

For every weight w, a copy of the options is trained with BasicSR's training pipeline and its final
network is validated on the options' validation set: PSNR (distortion, higher is better) against
LPIPS or NIQE (perception, lower is better), one point per weight::

    python scripts/perception_distortion.py --opt OPTIONS.yml --weights 0 0.1 1 10 --iters 300 \\
        [--out DIR] [--perception niqe|lpips] [--loss-key perceptual_opt] [--val-images K] \\
        [--lpips-weights DIR] [--force_yml KEY=VALUE ...] [--rerun-changed]

Each run's options (``DIR/options/<run>.yml``) are the given options with
  - ``train:<loss-key>:loss_weight = w`` (``perceptual_weight`` for BasicSR's VGG ``PerceptualLoss``);
    w = 0 deletes ``train:<loss-key>``, so that run is the baseline without the term (and never builds
    the ViT);
  - ``train:total_iter = --iters``, ``name = <name>_pd_w<w>``;
  - ``val:metrics`` replaced by ``psnr`` (``calculate_psnr_float``: floats in [0, 1], RGB, no border
    crop) and ``niqe`` (BasicSR's ``calculate_niqe``, 8-bit Y, crop 0) or ``lpips`` (``calculate_lpips``,
    AlexNet; ``--lpips-weights`` = its ``weights_dir``); ``val_freq = iters + 1``: no validation inside
    the loop, BasicSR validates once, after the last iteration, the network it saves as
    ``net_g_latest.pth``;
  - only the first validation dataset (``datasets:val*``), with ``--val-images`` its ``num_samples``
    (datasets that have this option, e.g. SyntheticDualPixelDataset);
  - tensorboard and wandb off; relative data / weight paths made absolute (runs start in DIR);
  - ``--force_yml`` entries applied first (BasicSR's syntax, ``train:optim_g:lr=1e-3``), so they cannot
    override the settings above.
The schedule is left as it is: every weight gets the same one, so the points are comparable.

Runs: ``python -m basicsr_vitloss.train -opt DIR/options/<run>.yml --auto_resume`` in a subprocess with
cwd DIR (the plugin's entry = ``python -m basicsr.train``, independent of the startup hook), so
BasicSR's ``experiments/<run>/`` (checkpoints, ``train_<run>_*.log``) lie under DIR; the console
output of each run goes to ``DIR/logs/<run>.txt``. Metrics are read from the run's BasicSR log: the
``Validation`` block written after ``Save the latest model.`` (4 decimals, BasicSR's format).
Reusing BasicSR's validation means the numbers are exactly what the options' own validation
computes (same dataset, same float/8-bit handling, same model wrapper: EMA net when there is one).

Resuming. A run is finished when its ``options/<run>.yml`` equals the options this call generates
(same iterations, metric, validation set, source options, overrides), ``models/net_g_latest.pth``
exists and its newest log holds the final validation: it is skipped, its numbers re-read from the
log. An unfinished run with the same options continues from its newest training state
(``--auto_resume``). A run whose stored options differ is not mixed in: the script stops before
training anything (status 2), naming the runs and the differing keys; ``--rerun-changed`` retrains
them instead (the old experiment folder is kept, renamed ``<run>_archived_<time>``).

Outputs in DIR: ``perception_distortion.csv`` (weight, iters, psnr, niqe|lpips, run, log, options;
sorted by weight) and ``perception_distortion.png`` (PSNR against the perception metric, a point per
weight labelled ``w=<w>``, a line in weight order), both rewritten after every finished run.

Status: 0 done; 1 a training run failed (the run's console tail is printed, with the log paths);
2 bad input (missing options file, unknown --loss-key, negative weight, ...) or changed settings.
"""
import argparse
import copy
import csv
import math
import os
import os.path as osp
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import yaml
from tqdm import tqdm

PERCEPTION = {
    'niqe': {'type': 'calculate_niqe', 'crop_border': 0, 'better': 'lower'},
    'lpips': {'type': 'calculate_lpips', 'net': 'alex', 'better': 'lower'},
}
PSNR_METRIC = {'type': 'calculate_psnr_float'}
CSV_NAME, PNG_NAME = 'perception_distortion.csv', 'perception_distortion.png'
LATEST = 'net_g_latest.pth'
END_MARK = 'Save the latest model.'
#: option keys whose string values are file or folder paths (made absolute: runs start elsewhere)
PATH_KEY = re.compile(r'^(dataroot.*|meta_info.*|pretrain_network_.*|resume_state|pretrained|weights_dir'
                      r'|.*_(path|dir|file))$')
TAIL_LINES = 40
#: BasicSR's MessageLogger line: [name..][epoch:  0, iter:     200, lr:(...)] ...
ITER_LINE = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+)')


class InputError(ValueError):
    """A problem with the inputs: reported on stderr, exit status 2."""


class RunError(RuntimeError):
    """A training run failed: reported with its log tail, exit status 1."""


# ----------------------------------------------------------------------------------------------------
# options

def weight_label(weight):
    """Short text of a weight for names and labels: 0, 0.1, 10, 1e-05."""
    return f'{weight:g}'


def run_name(name, weight):
    return f'{name}_pd_w{weight_label(weight)}'


def weight_key(loss_opt):
    """The key that scales the loss: ``loss_weight``, or ``perceptual_weight`` for BasicSR's VGG
    PerceptualLoss (which has no loss_weight)."""
    if 'loss_weight' not in loss_opt and ('perceptual_weight' in loss_opt or loss_opt.get('type') == 'PerceptualLoss'):
        return 'perceptual_weight'
    return 'loss_weight'


def force_yml(opt, entries, source):
    """Apply BasicSR ``--force_yml`` entries (``a:b:c=value``, value parsed as BasicSR does)."""
    from basicsr.utils.options import _postprocess_yml_value
    for entry in entries or []:
        if '=' not in entry:
            raise InputError(f'--force_yml {entry!r}: expected KEY=VALUE, e.g. train:optim_g:lr=1e-3')
        keys, value = (part.strip() for part in entry.split('=', 1))
        node = opt
        *parents, last = keys.split(':')
        for depth, key in enumerate(parents):
            if not isinstance(node, dict) or key not in node:
                raise InputError(f'--force_yml {entry!r}: {source} has no key {":".join(parents[:depth + 1])}')
            node = node[key]
        if not isinstance(node, dict):
            raise InputError(f'--force_yml {entry!r}: {source}: {":".join(parents)} is not a mapping')
        node[last] = _postprocess_yml_value(value)


def absolute_paths(node, base):
    """Make relative string values of path keys absolute against ``base`` (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and PATH_KEY.match(str(key)) and value not in ('', '~') and not osp.isabs(value):
                node[key] = osp.normpath(osp.join(base, osp.expanduser(value)))
            else:
                absolute_paths(value, base)
    elif isinstance(node, list):
        for item in node:
            absolute_paths(item, base)


def check_options(opt, path, loss_key, val_images):
    """Raise InputError unless the options can be swept: the loss key, a validation dataset."""
    train = opt.get('train')
    if not isinstance(train, dict):
        raise InputError(f'{path}: no train: section (needed: train:{loss_key}, train:total_iter)')
    if loss_key not in train:
        losses = [k for k in train if k.endswith('_opt')]
        raise InputError(f'{path}: --loss-key {loss_key!r} is not under train:. Keys present under train: '
                         f'{", ".join(train)}' + (f' (losses: {", ".join(losses)})' if losses else ''))
    if not isinstance(train[loss_key], dict):
        raise InputError(f'{path}: train:{loss_key} is {train[loss_key]!r}, expected a loss mapping with a type:')
    val_phases = [p for p, d in (opt.get('datasets') or {}).items()
                  if str(p).split('_')[0] == 'val' and isinstance(d, dict)]
    if not val_phases:
        raise InputError(f'{path}: no validation dataset (datasets:val): the sweep evaluates on it. '
                         f'Datasets present: {", ".join(opt.get("datasets") or {}) or "none"}')
    if val_images is not None and 'num_samples' not in opt['datasets'][val_phases[0]]:
        dataset = opt['datasets'][val_phases[0]]
        raise InputError(f'{path}: --val-images needs a validation dataset with a num_samples option '
                         f'(e.g. SyntheticDualPixelDataset); datasets:{val_phases[0]} is {dataset.get("type")!r}')
    return val_phases[0]


def run_options(opt, weight, args, val_phase):
    """The options of the run at ``weight`` (a new dict)."""
    run = copy.deepcopy(opt)
    run['name'] = run_name(opt['name'], weight)
    train = run['train']
    if weight == 0:
        del train[args.loss_key]
    else:
        train[args.loss_key][weight_key(train[args.loss_key])] = weight
    train['total_iter'] = args.iters
    run['datasets'] = {k: v for k, v in run['datasets'].items() if str(k).split('_')[0] != 'val' or k == val_phase}
    if args.val_images is not None:
        run['datasets'][val_phase]['num_samples'] = args.val_images
    perception = dict(PERCEPTION[args.perception])
    if args.perception == 'lpips' and args.lpips_weights:
        perception['weights_dir'] = osp.abspath(args.lpips_weights)
    val = run.get('val') or {}
    val['metrics'] = {'psnr': dict(PSNR_METRIC), args.perception: perception}
    val['val_freq'] = args.iters + 1  # no validation inside the loop; BasicSR validates after it
    run['val'] = val
    logger = run.setdefault('logger', {})
    logger['use_tb_logger'] = False
    logger['wandb'] = {'project': None, 'resume_id': None}
    logger.setdefault('print_freq', 50)
    logger.setdefault('save_checkpoint_freq', max(args.iters, 1))
    return run


def differences(old, new, prefix=''):
    """['key: old -> new'] of two option dicts (nested keys joined by ':')."""
    found = []
    for key in list(old) + [k for k in new if k not in old]:
        where = f'{prefix}{key}'
        if key not in new:
            found.append(f'{where}: {old[key]!r} -> (absent)')
        elif key not in old:
            found.append(f'{where}: (absent) -> {new[key]!r}')
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            found.extend(differences(old[key], new[key], where + ':'))
        elif old[key] != new[key]:
            found.append(f'{where}: {old[key]!r} -> {new[key]!r}')
    return found


# ----------------------------------------------------------------------------------------------------
# runs and their logs

def experiment_dir(out, name):
    return osp.join(out, 'experiments', name)


def newest_log(out, name):
    """The newest ``train_<name>_*.log`` of the experiment, or None."""
    folder = experiment_dir(out, name)
    if not osp.isdir(folder):
        return None
    logs = [f for f in os.listdir(folder) if f.startswith(f'train_{name}_') and f.endswith('.log')]
    return osp.join(folder, max(logs)) if logs else None  # names end in a sortable time stamp


def final_validation(log_path, metrics):
    """{metric: value} of the validation BasicSR logs after saving the latest model, or None when the
    log has none (run unfinished) or lacks one of ``metrics``."""
    with open(log_path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    end = text.rfind(END_MARK)
    if end < 0:
        return None
    block = re.search(r'Validation [^\n]*\n((?:[ \t]*# .*(?:\n|$))+)', text[end:])
    if not block:
        return None
    values = {}
    for line in block.group(1).splitlines():
        match = re.match(r'\s*# (\S+): ([-+\w.]+)', line)
        if match:
            try:
                values[match.group(1)] = float(match.group(2))
            except ValueError:
                pass
    return values if all(m in values for m in metrics) else None


def finished(out, name, metrics):
    """(values, log path) of a finished run, else None."""
    log = newest_log(out, name)
    if log is None or not osp.isfile(osp.join(experiment_dir(out, name), 'models', LATEST)):
        return None
    values = final_validation(log, metrics)
    return (values, log) if values is not None else None


def train_run(options_path, cwd, console_path, total_iter, position=1):
    """Run BasicSR's training on ``options_path`` in ``cwd``; console output to ``console_path``, a
    progress bar over iterations from BasicSR's log lines. Returns the exit status."""
    command = [sys.executable, '-m', 'basicsr_vitloss.train', '-opt', options_path, '--auto_resume']
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    bar = tqdm(total=total_iter, desc=osp.splitext(osp.basename(options_path))[0], unit='it', position=position,
               leave=False, dynamic_ncols=True)
    with open(console_path, 'w', encoding='utf-8') as console:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors='replace', bufsize=1)
        for line in proc.stdout:
            console.write(line)
            console.flush()  # the file is the run's live console
            match = ITER_LINE.search(line)
            if match:
                bar.n = min(int(match.group(1).replace(',', '')), total_iter)
                bar.refresh()
        code = proc.wait()
    bar.close()
    return code


def tail(path, lines=TAIL_LINES):
    if not path or not osp.isfile(path):
        return '(no output)'
    with open(path, encoding='utf-8', errors='replace') as f:
        return ''.join(f.readlines()[-lines:]).rstrip()


def archive(folder):
    """Rename ``folder`` out of the way as BasicSR does (``<folder>_archived_<time>``)."""
    if osp.exists(folder):
        os.rename(folder, f'{folder}_archived_{time.strftime("%Y%m%d_%H%M%S")}')


# ----------------------------------------------------------------------------------------------------
# CSV and figure

def write_csv(path, rows, perception):
    columns = ['weight', 'iters', 'psnr', perception, 'run', 'log', 'options']
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in sorted(rows, key=lambda r: r['weight']):
            writer.writerow({k: row[k] for k in columns})
    os.replace(tmp, path)


def nice_ticks(low, high, count=6):
    """Round tick values covering [low, high] (about ``count`` of them), and the padded range."""
    span = high - low
    if span <= 0:
        pad = abs(low) * 0.05 or 1.0
        low, high, span = low - pad, high + pad, 2 * pad
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start, stop = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [start + i * step for i in range(int(round((stop - start) / step)) + 1)]
    return ticks, start, stop, max(0, -int(math.floor(math.log10(step))) + (1 if step / magnitude == 2.5 else 0))


FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, GREY, LIGHT, WHITE = (0, 0, 0), (110, 110, 110), (225, 225, 225), (255, 255, 255)
GREEN = (40, 140, 40)


def _text(image, text, org, scale=0.45, color=BLACK, thickness=1, anchor='left'):
    (w, h), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = org
    if anchor == 'center':
        x -= w // 2
    elif anchor == 'right':
        x -= w
    cv2.putText(image, text, (int(x), int(y)), FONT, scale, color, thickness, cv2.LINE_AA)
    return w, h


def plot(path, rows, perception, title, subtitle, size=(760, 560)):
    """PSNR (y) against the perception metric (x, lower is better): a point per weight, labelled, a
    line through the points in weight order. Drawn with OpenCV (as scripts/compare_figure.py)."""
    width, height = size
    left, right, top, bottom = 84, 34, 70, 78
    image = np.full((height, width, 3), 255, np.uint8)
    rows = sorted((r for r in rows if math.isfinite(r['psnr']) and math.isfinite(r[perception])),
                  key=lambda r: r['weight'])
    xs, ys = [r[perception] for r in rows], [r['psnr'] for r in rows]
    x_ticks, x0, x1, x_dec = nice_ticks(min(xs, default=0), max(xs, default=1))
    y_ticks, y0, y1, y_dec = nice_ticks(min(ys, default=0), max(ys, default=1))
    # padding so that points never sit on the frame
    x_pad, y_pad = (x1 - x0) * 0.06, (y1 - y0) * 0.08
    x0, x1, y0, y1 = x0 - x_pad, x1 + x_pad, y0 - y_pad, y1 + y_pad
    px0, px1, py0, py1 = left, width - right, height - bottom, top

    def to_pixel(x, y):
        return (int(round(px0 + (x - x0) / (x1 - x0) * (px1 - px0))),
                int(round(py0 + (y - y0) / (y1 - y0) * (py1 - py0))))

    for tick in x_ticks:
        px, _ = to_pixel(tick, y0)
        cv2.line(image, (px, py1), (px, py0), LIGHT, 1)
        cv2.line(image, (px, py0), (px, py0 + 5), BLACK, 1)
        _text(image, f'{tick:.{x_dec}f}', (px, py0 + 20), anchor='center')
    for tick in y_ticks:
        _, py = to_pixel(x0, tick)
        cv2.line(image, (px0, py), (px1, py), LIGHT, 1)
        cv2.line(image, (px0 - 5, py), (px0, py), BLACK, 1)
        _text(image, f'{tick:.{y_dec}f}', (px0 - 8, py + 5), anchor='right')
    cv2.rectangle(image, (px0, py1), (px1, py0), BLACK, 1)

    # axis labels, with an arrow pointing to the better direction
    metric = perception.upper()
    x_label = f'{metric} (perception, lower is better)'
    w, _ = _text(image, x_label, ((px0 + px1) // 2, height - 24), scale=0.55, anchor='center')
    arrow_y = height - 29
    start = (px0 + px1) // 2 - w // 2 - 12
    cv2.arrowedLine(image, (start, arrow_y), (start - 50, arrow_y), GREEN, 2, cv2.LINE_AA, tipLength=0.3)
    _text(image, 'better', (start - 56, arrow_y + 5), scale=0.45, color=GREEN, anchor='right')
    y_label = 'PSNR dB (distortion, higher is better)'
    (lw, lh), _ = cv2.getTextSize(y_label, FONT, 0.55, 1)
    band = np.full((lh + 10, lw + 4, 3), 255, np.uint8)
    cv2.putText(band, y_label, (2, lh + 3), FONT, 0.55, BLACK, 1, cv2.LINE_AA)
    band = np.rot90(band).copy()  # reads bottom to top
    bx, by = 8, max(py1, (py0 + py1) // 2 - band.shape[0] // 2)
    bh = min(band.shape[0], height - by)
    image[by:by + bh, bx:bx + band.shape[1]] = band[:bh]
    arrow_x = bx + band.shape[1] // 2
    top_of_label = by - 10
    cv2.arrowedLine(image, (arrow_x, top_of_label), (arrow_x, top_of_label - 50), GREEN, 2, cv2.LINE_AA,
                    tipLength=0.3)
    _text(image, 'better', (max(arrow_x, 22), top_of_label - 58), scale=0.45, color=GREEN, anchor='center')

    # title
    _text(image, title, (width // 2, 26), scale=0.62, thickness=2, anchor='center')
    _text(image, subtitle, (width // 2, 50), scale=0.45, color=GREY, anchor='center')

    # line in weight order, then points with their labels
    points = [to_pixel(x, y) for x, y in zip(xs, ys)]
    if len(points) > 1:
        cv2.polylines(image, [np.array(points, np.int32)], False, GREY, 2, cv2.LINE_AA)
    colours = cv2.applyColorMap(np.linspace(40, 220, max(len(points), 1)).astype(np.uint8).reshape(-1, 1),
                                cv2.COLORMAP_VIRIDIS)[:, 0]
    for (px, py), colour in zip(points, colours):
        cv2.circle(image, (px, py), 7, tuple(int(c) for c in colour), -1, cv2.LINE_AA)
        cv2.circle(image, (px, py), 7, BLACK, 1, cv2.LINE_AA)
    taken = [(px - 8, py - 8, px + 8, py + 8) for px, py in points]  # boxes labels must not cover
    for (px, py), row in zip(points, rows):
        label = f'w={weight_label(row["weight"])}'
        (tw, th), _ = cv2.getTextSize(label, FONT, 0.5, 1)
        place = None
        for dx, dy in ((10, -9), (10, 9 + th), (-10 - tw, -9), (-10 - tw, 9 + th), (10, -9 - 2 * th),
                       (-10 - tw, -9 - 2 * th), (10, 9 + 3 * th), (-10 - tw, 9 + 3 * th)):
            box = (px + dx, py + dy - th, px + dx + tw, py + dy + 2)
            inside = box[0] > px0 + 2 and box[2] < px1 - 2 and box[1] > py1 + 2 and box[3] < py0 - 2
            free = not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken)
            if inside and free:
                place = box
                break
        place = place or (px + 10, py - 9 - th, px + 10 + tw, py - 7)  # crowded: first choice anyway
        taken.append(place)
        _text(image, label, (place[0], place[1] + th), scale=0.5)
    if not points:
        _text(image, 'no finished runs', ((px0 + px1) // 2, (py0 + py1) // 2), anchor='center')
    tmp = path + '.tmp.png'
    if not cv2.imwrite(tmp, image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f'could not write {path}')
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------
# command line

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Train short runs of a BasicSR options file at several perceptual-loss weights and plot '
                    'PSNR against LPIPS or NIQE (the perception-distortion trade-off).')
    parser.add_argument('--opt', required=True, help='BasicSR training options (YAML)')
    parser.add_argument('--weights', type=float, nargs='+', required=True,
                        help='loss weights to try; 0 = without the loss term (the pixel-loss baseline)')
    parser.add_argument('--iters', type=int, required=True, help='training iterations per weight (train:total_iter)')
    parser.add_argument('--out', help='output folder (default: perception_distortion/<options name>)')
    parser.add_argument('--perception', choices=sorted(PERCEPTION), default='niqe',
                        help='perception metric, lower is better (default niqe: no download; lpips needs '
                             "torchvision's AlexNet weights, see --lpips-weights)")
    parser.add_argument('--loss-key', default='perceptual_opt', help='the train: key of the swept loss')
    parser.add_argument('--val-images', type=int, help='validate on the first K images (datasets with num_samples)')
    parser.add_argument('--lpips-weights', help="folder holding torchvision's alexnet-owt-7be5be79.pth (LPIPS)")
    parser.add_argument('--force_yml', nargs='+', default=[], metavar='KEY=VALUE',
                        help="override options as BasicSR's --force_yml does, e.g. train:optim_g:lr=1e-3")
    parser.add_argument('--rerun-changed', action='store_true',
                        help='retrain runs whose stored options differ (default: stop and list the differences)')
    return parser.parse_args(argv)


def check_args(args):
    if not osp.isfile(args.opt):
        raise InputError(f'options file not found: {args.opt}')
    bad = [w for w in args.weights if not math.isfinite(w) or w < 0]
    if bad:
        raise InputError(f'--weights must be finite and >= 0 (0 = without the loss term), got '
                         f'{", ".join(weight_label(w) for w in bad)}')
    labels = [weight_label(w) for w in args.weights]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise InputError(f'--weights: {", ".join(repeated)} given more than once')
    if args.iters < 1:
        raise InputError(f'--iters must be >= 1, got {args.iters}')
    if args.val_images is not None and args.val_images < 1:
        raise InputError(f'--val-images must be >= 1, got {args.val_images}')
    if args.lpips_weights and args.perception != 'lpips':
        raise InputError('--lpips-weights is for --perception lpips')
    if args.lpips_weights and not osp.isdir(args.lpips_weights):
        raise InputError(f'--lpips-weights: folder not found: {args.lpips_weights}')


def load_options(args):
    from basicsr_vitloss.launch import read_options
    try:
        opt = read_options(args.opt)
    except (FileNotFoundError, ValueError) as error:
        raise InputError(str(error)) from None
    if not opt.get('name'):
        raise InputError(f'{args.opt}: no name:')
    force_yml(opt, args.force_yml, args.opt)
    val_phase = check_options(opt, args.opt, args.loss_key, args.val_images)
    absolute_paths(opt, os.getcwd())
    return opt, val_phase


def sweep(args):
    """Plan, check, train and report; returns the exit status."""
    check_args(args)
    opt, val_phase = load_options(args)
    out = osp.abspath(args.out or osp.join('perception_distortion', opt['name']))
    metrics = ('psnr', args.perception)
    plans, changed = [], []
    for weight in args.weights:
        run = run_options(opt, weight, args, val_phase)
        options_path = osp.join(out, 'options', f'{run["name"]}.yml')
        if osp.isfile(options_path):
            with open(options_path, encoding='utf-8') as f:
                stored = yaml.safe_load(f) or {}
            diff = differences(stored, run)
            if diff:
                changed.append((run['name'], options_path, diff))
        plans.append((weight, run, options_path))
    if changed and not args.rerun_changed:
        lines = [f'  {name} ({path}):\n' + '\n'.join(f'    {d}' for d in diff[:8]) + (
            f'\n    ... {len(diff) - 8} more' if len(diff) > 8 else '') for name, path, diff in changed]
        raise InputError(f'{out} holds runs made with other settings; not mixing them:\n' + '\n'.join(lines) +
                         '\nUse another --out, or --rerun-changed to retrain these runs (their experiment '
                         'folders are kept as <run>_archived_<time>).')
    changed_names = {name for name, _, _ in changed}
    for sub in ('options', 'logs', 'experiments'):
        os.makedirs(osp.join(out, sub), exist_ok=True)
    csv_path, png_path = osp.join(out, CSV_NAME), osp.join(out, PNG_NAME)
    loss_type = opt['train'][args.loss_key].get('type', args.loss_key)
    title = f'{opt["name"]}: perception-distortion, {args.iters} iterations per weight'
    subtitle = f'w = weight of {loss_type} (train:{args.loss_key}); w=0: without it; {len(plans)} runs'
    rows = []

    def report():
        write_csv(csv_path, rows, args.perception)
        plot(png_path, rows, args.perception, title, subtitle)

    bar = tqdm(plans, desc='weights', unit='run', position=0, dynamic_ncols=True)
    for weight, run, options_path in bar:
        name = run['name']
        bar.set_postfix_str(f'w={weight_label(weight)}')
        done = None if name in changed_names else finished(out, name, metrics)
        if done is None:
            if name in changed_names:
                archive(experiment_dir(out, name))
            with open(options_path, 'w', encoding='utf-8') as f:
                yaml.safe_dump(run, f, sort_keys=False)
            console = osp.join(out, 'logs', f'{name}.txt')
            code = train_run(options_path, out, console, args.iters)
            done = finished(out, name, metrics)
            if code != 0 or done is None:
                bar.close()
                if rows:
                    report()
                why = f'exited with status {code}' if code != 0 else 'left no final validation in its log'
                raise RunError(f'run {name} (w={weight_label(weight)}) {why}.\n'
                               f'--- last {TAIL_LINES} lines of {console} ---\n{tail(console)}\n---\n'
                               f'BasicSR log: {newest_log(out, name) or "(none)"}; options: {options_path}')
        else:
            tqdm.write(f'{name}: finished earlier, skipped ({done[1]})')
        values, log = done
        rows.append({'weight': weight, 'iters': args.iters, 'psnr': values['psnr'],
                     args.perception: values[args.perception], 'run': name, 'log': log, 'options': options_path})
        report()
    bar.close()
    print(f'{"weight":>8}  {"PSNR":>8}  {args.perception.upper():>8}  run')
    for row in sorted(rows, key=lambda r: r['weight']):
        print(f'{weight_label(row["weight"]):>8}  {row["psnr"]:8.4f}  {row[args.perception]:8.4f}  {row["run"]}')
    print(f'wrote {csv_path} and {png_path}')
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return sweep(args)
    except InputError as error:
        print(f'perception_distortion: error: {error}', file=sys.stderr)
        return 2
    except RunError as error:
        print(f'perception_distortion: training failed: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
