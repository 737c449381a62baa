"""Crop the official DPDD release into training patches, by DPDNet's official rule (default).

``--rule official`` (the default) is the rule of DPDNet's ``image_to_patch_filter.py`` (Abuolaim and
Brown, ECCV 2020), which Restormer's ``generate_patches_dpdd.py`` repeats for the training set:

* windows of ``--patch-size`` (512) at a stride of ``int((1 - overlap) * patch)`` (train: overlap 0.6,
  stride 204), scanned row by row; where a stride would overshoot the image, a window flush with the
  right / bottom edge is taken instead, once (the reference's ``slice_stride`` loop, reproduced
  exactly, see ``official_windows``). A 1680x1120 image gives 28 windows: rows 0, 204, 408, 608 and
  columns 0, 204, ..., 1020, 1168; in the reference's order the bottom-right corner (608, 1168) is
  the 8th window (it is taken while the first row is scanned);
* train: the sharpness of a window is measured on its all-in-focus target (grey,
  ``cv2.COLOR_BGR2GRAY`` of the stored bit depth): for each Sobel kernel size 3, 7, 11, 15 the sum of
  the gradient magnitude, min-max normalised over the image's windows; the four are multiplied. The
  ``int(discard * n)`` least sharp windows of EACH IMAGE are dropped (discard 0.3: 8 of 28, so 20 per
  scene, 7000 for the 350 training scenes), the first of equal values first;
* val (and test, which the reference never crops): DPDNet's validation setting, overlap
  ``--val-overlap`` 0.01 (stride 506: 12 windows per image, rows 0, 506, 608, columns 0, 506, 1012,
  1168) and no filtering.

``--rule restormer``: Restormer's ``generate_patches_dpdd.py``: train as ``official``; val (and test)
one centre crop of ``--val-patch-size`` (256) per image.

``--rule split-mean-sobel``: this package's earlier rule: windows at a stride of
``round(patch * (1 - overlap))`` plus one flush with the edge, sharpness = mean 3x3 Sobel gradient
magnitude of the target's grey patch, and the ``floor(discard * total)`` least sharp windows of the
WHOLE SPLIT dropped (ties by scene, then window); the same rule for every split.

Usage:

    python scripts/prepare_dpdd.py --dpdd ROOT --out OUT [--splits train val] [--rule official] \\
        [--patch-size 512] [--overlap 0.6] [--discard 0.3] [--val-overlap 0.01] [--workers N]

``ROOT`` is the official layout (``<split>_l/source/<src>_L.png``, ``<split>_r/source/<src>_R.png``,
``<split>_c/source/<src>.png``, ``<split>_c/target/<trg>.png``; the release names each target by its
own capture number, so targets pair with sources by checked sorted position, see
``basicsr_vitloss.data.dpdd_files``). The patches of all four views are named after the SOURCE scene,
``OUT/<split>/{inputL,inputR,inputC,target}_crops/<src>_<k>.png`` (``k``: the window's index within the
scene in the rule's scan order; dropped windows leave gaps), so that they pair by name; they are byte
for byte the pixels of the release (16-bit stays 16-bit). ``OUT/<split>/manifest.json`` records the
settings and, per window, its source and target names, position, sharpness and whether it is kept.

Re-running is safe: existing patch files are skipped (each file is written under a temporary name and
then renamed, so an interrupted run leaves no half-written PNG), and a manifest made with other
settings, or from other source images, stops the run instead of mixing two patch sets.
"""
import argparse
import json
import math
import os
import multiprocessing
import sys

import cv2
import numpy as np
from tqdm import tqdm

from basicsr_vitloss.data.dpdd_files import check_scene_sizes, official_view_folders, pair_view_files
from basicsr_vitloss.data.image_io import read_image, read_image_unchanged
from basicsr_vitloss.utils.atomic_write import atomic_path, atomic_write
from basicsr_vitloss.utils.windows import window_starts

VIEWS = ('lqL', 'lqR', 'lqC', 'gt')
#: view -> output folder name (the names Restormer's DPDD options use)
CROP_FOLDERS = {'lqL': 'inputL_crops', 'lqR': 'inputR_crops', 'lqC': 'inputC_crops', 'gt': 'target_crops'}
MANIFEST = 'manifest.json'
RULES = ('official', 'restormer', 'split-mean-sobel')
SETTINGS = ('rule', 'patch_size', 'overlap', 'discard')
#: Sobel kernel sizes of the official sharpness
OFFICIAL_KSIZES = (3, 7, 11, 15)
#: the manifest's patch fields that must match on a rerun
PATCH_KEY = ('source', 'target', 'k', 'y', 'x', 'kept')


class PrepareError(Exception):
    """A problem with the inputs or the output folder, reported as a message (no traceback)."""


# ----------------------------------------------------------------------------- windows

def official_stride(patch, overlap):
    """DPDNet's stride ``int((1 - overlap) * patch)`` (truncated: 512 at 0.6 -> 204, at 0.01 -> 506)."""
    stride = int((1 - overlap) * patch)
    if stride < 1:
        raise ValueError(f'overlap {overlap} leaves a stride of {stride} pixels for patch size {patch}; '
                         f'it must be at least 1')
    return stride


def official_windows(height, width, patch, stride):
    """(y, x) of the windows of DPDNet's ``slice_stride``, in its order.

    Rows ``r`` and columns ``c`` run over ``range(0, size, stride)``. Where the window at (r, c) fits,
    it is taken. Otherwise the first of these flush windows that was not taken before as a flush window
    is taken: (r, right edge) if row r fits, else (bottom edge, c) if column c fits; then the
    bottom-right corner. Only flush windows are remembered, so two quirks of the reference stay:
    the corner is taken early (while scanning the first row, once (0, right edge) is taken), and a
    flush window can repeat a regular one when ``size - patch`` is a multiple of the stride (not the
    case for DPDD's 1680x1120 at 512 / 204 or 506)."""
    if patch < 1 or stride < 1:
        raise ValueError(f'patch size and stride must be at least 1, got {patch} and {stride}')
    if height < patch or width < patch:
        raise ValueError(f'image {height}x{width} is smaller than the patch size {patch}')
    bottom, right = height - patch, width - patch
    flush_taken, windows = set(), []
    for r in range(0, height, stride):
        for c in range(0, width, stride):
            if r <= bottom and c <= right:
                windows.append((r, c))
                continue
            candidates = [(r, right)] if r <= bottom else [(bottom, c)] if c <= right else []
            for window in candidates + [(bottom, right)]:
                if window not in flush_taken:
                    flush_taken.add(window)
                    windows.append(window)
                    break
    return windows


def window_positions(length, patch, overlap):
    """Start offsets along one axis for ``--rule split-mean-sobel``.

    The stride is ``round(patch * (1 - overlap))``; a last window flush with the far edge is added
    when the regular ones stop short of it, so every pixel is covered."""
    if patch < 1:
        raise ValueError(f'patch size must be at least 1, got {patch}')
    if not 0 <= overlap < 1:
        raise ValueError(f'overlap must be in [0, 1), got {overlap}')
    if length < patch:
        raise ValueError(f'length {length} is smaller than the patch size {patch}')
    return window_starts(length, patch, max(1, round(patch * (1 - overlap))))


def split_plan(rule, split, patch, overlap, discard, val_overlap, val_patch):
    """Effective settings of ``split`` under ``rule``: {rule, patch_size, overlap, discard}
    (overlap None: one centre crop)."""
    if rule == 'split-mean-sobel' or split == 'train':
        return {'rule': rule, 'patch_size': patch, 'overlap': overlap, 'discard': discard}
    if rule == 'official':
        return {'rule': rule, 'patch_size': patch, 'overlap': val_overlap, 'discard': 0.0}
    return {'rule': rule, 'patch_size': val_patch, 'overlap': None, 'discard': 0.0}


def scene_windows(plan, height, width):
    """[(y, x)] of one image under a ``split_plan``."""
    patch, overlap = plan['patch_size'], plan['overlap']
    if plan['rule'] == 'split-mean-sobel':
        return [(y, x) for y in window_positions(height, patch, overlap)
                for x in window_positions(width, patch, overlap)]
    if overlap is None:  # Restormer's validation crop
        return [((height - patch) // 2, (width - patch) // 2)]
    return official_windows(height, width, patch, official_stride(patch, overlap))


# ----------------------------------------------------------------------------- sharpness

def patch_sharpness(gray_patch):
    """``--rule split-mean-sobel``: mean Sobel gradient magnitude of a 2-D grayscale patch.

    Computed in float64 with NumPy over the patch interior (no padding), so that a constant patch
    scores exactly 0 and the score does not depend on OpenCV's vectorised code paths."""
    gray = np.asarray(gray_patch, dtype=np.float64)
    if gray.ndim != 2 or min(gray.shape) < 3:
        raise ValueError(f'patch_sharpness expects a 2-D grayscale patch of at least 3x3, got shape {gray.shape}')
    rows = gray[:-2] + 2 * gray[1:-1] + gray[2:]            # vertical smoothing [1, 2, 1]
    cols = gray[:, :-2] + 2 * gray[:, 1:-1] + gray[:, 2:]   # horizontal smoothing [1, 2, 1]
    dx = rows[:, 2:] - rows[:, :-2]
    dy = cols[2:] - cols[:-2]
    return float(np.mean(np.hypot(dx, dy)))


def official_gray(image, path=''):
    """The grey image the official rule measures: ``cv2.COLOR_BGR2GRAY`` of the stored pixels."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        image = image[..., :3]
    if image.shape[2] != 3:
        raise OSError(f'{path}: expected a 3-channel image, got shape {image.shape}')
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)


def sobel_energy(gray_patch, ksize):
    """Sum over the patch of sqrt(gx^2 + gy^2), ``cv2.Sobel`` (CV_64F, default border) of size ``ksize``."""
    gx = cv2.Sobel(gray_patch, cv2.CV_64F, 1, 0, ksize=ksize)
    gy = cv2.Sobel(gray_patch, cv2.CV_64F, 0, 1, ksize=ksize)
    return float(np.sum(np.sqrt(gx * gx + gy * gy)))


def official_sharpness(energies):
    """Per-window sharpness from ``energies`` ({ksize: [sum per window]}): each list min-max normalised
    over the image's windows, the four multiplied (in kernel order). A list of equal values (0 / 0 in
    the reference, NaN for every window) gives 0 for every window: the same windows are dropped."""
    product = None
    for ksize in OFFICIAL_KSIZES:
        values = np.asarray(energies[ksize], dtype=np.float64)
        shifted = values - np.min(values)
        top = np.max(shifted)
        normalised = shifted / top if top > 0 else np.zeros_like(shifted)
        product = normalised if product is None else product * normalised
    return product


def official_dropped(sharpness, discard):
    """Indices of the ``int(discard * n)`` least sharp windows, the first of equal values first (the
    reference's repeated argmin)."""
    count = int(discard * len(sharpness))
    return sorted(np.argsort(np.asarray(sharpness), kind='stable')[:count].tolist())


# ----------------------------------------------------------------------------- workers

def _init_worker():
    # parallelism comes from the processes; keep each one's OpenCV single-threaded
    cv2.setNumThreads(1)


def _score_scene(task):
    """(scene index, sharpness per window) of one scene's target image."""
    index, target_path, windows, patch, rule = task
    if rule == 'split-mean-sobel':
        rgb = read_image(target_path).astype(np.float64)
        # BT.601 luma, elementwise: unlike cvtColor's vectorised path, a flat image stays exactly flat
        gray = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        return index, [patch_sharpness(gray[y:y + patch, x:x + patch]) for y, x in windows]
    gray = official_gray(read_image_unchanged(target_path), target_path)
    energies = {ksize: [] for ksize in OFFICIAL_KSIZES}
    for y, x in windows:
        crop = np.ascontiguousarray(gray[y:y + patch, x:x + patch])  # the patch alone: its own borders
        for ksize in OFFICIAL_KSIZES:
            energies[ksize].append(sobel_energy(crop, ksize))
    return index, official_sharpness(energies).tolist()


def _write_scene(task):
    """Write the kept patches of one scene for every view; returns (files written, files skipped)."""
    paths, crops, patch = task  # paths: {view: source}; crops: [(k, y, x, {view: destination})]
    images = {}
    written = skipped = 0
    for k, y, x, destinations in crops:
        for view, destination in destinations.items():
            if os.path.exists(destination):
                skipped += 1
                continue
            if view not in images:
                images[view] = read_image_unchanged(paths[view])
            crop = images[view][y:y + patch, x:x + patch]
            ok, encoded = cv2.imencode(os.path.splitext(destination)[1], crop)
            if not ok:
                raise OSError(f'{destination}: OpenCV could not encode the patch of {paths[view]}')
            with atomic_path(destination) as temporary:  # hidden: never listed as a patch (list_images)
                encoded.tofile(temporary)
            written += 1
    return written, skipped


def _pool(workers, tasks):
    """A process pool of ``workers`` (at most ``tasks``), or None to work in-process."""
    if workers <= 1 or tasks <= 1:
        return None
    # not fork: a child forked after OpenCV's thread pool ran in this process can deadlock
    method = 'forkserver' if 'forkserver' in multiprocessing.get_all_start_methods() else 'spawn'
    return multiprocessing.get_context(method).Pool(min(workers, tasks), initializer=_init_worker)


def _map(function, tasks, pool, desc):
    """Results of ``function`` over ``tasks`` (in any order), in ``pool`` or in-process (None)."""
    bar = dict(total=len(tasks), desc=desc, unit='scene', leave=False)
    if pool is None:
        return [function(task) for task in tqdm(tasks, **bar)]
    return list(tqdm(pool.imap_unordered(function, tasks), **bar))


# ----------------------------------------------------------------------------- manifest

def _write_json(path, data):
    atomic_write(path, lambda file: json.dump(data, file, indent=1), 'w')


def _check_manifest_settings(path, settings):
    """Stop if an existing manifest was made with other settings; return it (or None)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            manifest = json.load(file)
        # manifests written before --rule existed were made by the split-mean-sobel rule
        made_with = {key: manifest.get('rule', 'split-mean-sobel') if key == 'rule' else manifest[key]
                     for key in SETTINGS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PrepareError(f'{path}: cannot read this manifest of an earlier run ({error!r}); delete the '
                           f'folder {os.path.dirname(path)} or choose another --out.') from None
    if made_with != settings:
        differ = ', '.join(f'{key} {made_with[key]} there but {settings[key]} now'
                           for key in SETTINGS if made_with[key] != settings[key])
        raise PrepareError(f'{os.path.dirname(path)} holds patches made with other settings ({differ}, '
                           f'see {path}); refusing to mix two patch sets. Use another --out, delete that '
                           f'folder, or re-run with the same settings.')
    return manifest


# ----------------------------------------------------------------------------- one split

def _select(plan, scores, windows):
    """Set of dropped (scene index, k) under ``plan``."""
    if plan['discard'] == 0:
        return set()
    if plan['rule'] == 'split-mean-sobel':
        # rank over the split: the floor(discard * total) least sharp go, ties by (scene, k)
        order = [(scores[i][k], i, k) for i in range(len(windows)) for k in range(len(windows[i]))]
        n_discard = math.floor(round(plan['discard'] * len(order), 9))  # round: 0.29 * 100 gives 29
        return {(i, k) for _, i, k in sorted(order)[:n_discard]}
    return {(i, k) for i in range(len(windows)) for k in official_dropped(scores[i], plan['discard'])}


def prepare_split(root, out, split, patch, overlap, discard, workers, rule='official', val_overlap=0.01,
                  val_patch=256):
    """Crop one split; returns the numbers of the summary."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    plan = split_plan(rule, split, patch, overlap, discard, val_overlap, val_patch)
    size = plan['patch_size']
    split_out = os.path.join(out, split)
    manifest_path = os.path.join(split_out, MANIFEST)
    old_manifest = _check_manifest_settings(manifest_path, plan)

    folders = official_view_folders(root, split, VIEWS)
    scenes = pair_view_files(folders, f'DPDD {split}')
    sizes = check_scene_sizes(scenes, f'DPDD {split}')
    targets = [os.path.splitext(os.path.basename(scene.paths['gt']))[0] for scene in scenes]

    windows = []
    for scene, (height, width) in zip(scenes, sizes):
        if height < size or width < size:
            raise PrepareError(f'{scene.paths["gt"]} is {height}x{width}, smaller than the patch size {size}.')
        windows.append(scene_windows(plan, height, width))

    pool = _pool(workers, len(scenes))  # one pool for both passes: worker start-up is paid once
    try:
        return _crop_split(root, split, plan, scenes, targets, windows, old_manifest, manifest_path, pool)
    finally:
        if pool is not None:
            pool.terminate()


def _crop_split(root, split, plan, scenes, targets, windows, old_manifest, manifest_path, pool):
    rule, size = plan['rule'], plan['patch_size']
    split_out = os.path.dirname(manifest_path)
    # pass 1: sharpness of every window, from the targets only (only where patches are dropped)
    scores = [[None] * len(w) for w in windows]
    if plan['discard'] > 0:
        tasks = [(i, scene.paths['gt'], windows[i], size, rule) for i, scene in enumerate(scenes)]
        for index, values in _map(_score_scene, tasks, pool, f'{split}: sharpness'):
            scores[index] = values
    dropped = _select(plan, scores, windows)
    total = sum(len(w) for w in windows)
    patches = [{'source': scene.name, 'target': targets[i], 'k': k, 'y': y, 'x': x,
                'sharpness': scores[i][k], 'kept': (i, k) not in dropped}
               for i, scene in enumerate(scenes) for k, (y, x) in enumerate(windows[i])]

    if old_manifest is not None:
        old = [tuple(p.get(f) for f in PATCH_KEY) for p in old_manifest.get('patches', [])]
        new = [tuple(p[f] for f in PATCH_KEY) for p in patches]
        if old != new:
            raise PrepareError(f'{manifest_path} lists another patch set ({len(old)} patches) than the '
                               f'source images in {root} give now ({len(new)}); the source data changed '
                               f'since. Refusing to mix two patch sets: use another --out or delete '
                               f'{split_out}.')
    for view in VIEWS:
        os.makedirs(os.path.join(split_out, CROP_FOLDERS[view]), exist_ok=True)
    if old_manifest is None:  # written before any patch, so no patch exists without its manifest
        _write_json(manifest_path, dict(plan, split=split, scenes=len(scenes), patches=patches))

    # pass 2: the kept patches of every view, one task per scene
    tasks = []
    for i, scene in enumerate(scenes):
        crops = [(k, y, x, {view: os.path.join(split_out, CROP_FOLDERS[view], f'{scene.name}_{k}.png')
                            for view in VIEWS})
                 for k, (y, x) in enumerate(windows[i]) if (i, k) not in dropped]
        if crops:
            tasks.append((scene.paths, crops, size))
    counts = _map(_write_scene, tasks, pool, f'{split}: writing')
    return {'scenes': len(scenes), 'total': total, 'kept': total - len(dropped), 'discarded': len(dropped),
            'written': sum(c[0] for c in counts), 'skipped': sum(c[1] for c in counts), 'plan': plan}


# ----------------------------------------------------------------------------- command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--dpdd', required=True, help='root of the official DPDD release')
    parser.add_argument('--out', required=True, help='output root; patches go to OUT/<split>/')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'], choices=['train', 'val', 'test'])
    parser.add_argument('--rule', default='official', choices=RULES,
                        help="official: DPDNet's image_to_patch_filter.py (train: stride int((1-overlap)*patch), "
                             'the int(discard*n) least sharp windows of each image dropped by the 4-kernel Sobel '
                             'measure; val/test: --val-overlap, nothing dropped). restormer: train as official, '
                             'val/test one centre crop of --val-patch-size. split-mean-sobel: the earlier rule '
                             '(stride round(patch*(1-overlap)), mean 3x3 Sobel, discard ranked over the whole '
                             'split, every split alike)')
    parser.add_argument('--patch-size', type=int, default=512)
    parser.add_argument('--overlap', type=float, default=0.6,
                        help='overlap of neighbouring windows, in [0, 1) (official/restormer: train only)')
    parser.add_argument('--discard', type=float, default=0.3,
                        help='fraction of least sharp patches dropped, in [0, 1): per image (official, '
                             'restormer; train only) or per split (split-mean-sobel)')
    parser.add_argument('--val-overlap', type=float, default=0.01,
                        help='official: overlap of the val/test windows (DPDNet: 0.01, stride 506), in [0, 1)')
    parser.add_argument('--val-patch-size', type=int, default=256,
                        help="restormer: size of the val/test centre crop (Restormer: 256)")
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='processes (0 or 1: none); default min(4, CPU count)')
    args = parser.parse_args(argv)
    if args.patch_size < 1:
        parser.error(f'--patch-size must be at least 1, got {args.patch_size}')
    if args.val_patch_size < 1:
        parser.error(f'--val-patch-size must be at least 1, got {args.val_patch_size}')
    for flag in ('overlap', 'val_overlap', 'discard'):
        value = getattr(args, flag)
        if not 0 <= value < 1:
            parser.error(f'--{flag.replace("_", "-")} must be in [0, 1), got {value}')
    if args.rule != 'split-mean-sobel':
        for flag, overlap in (('--overlap', args.overlap), ('--val-overlap', args.val_overlap)):
            if int((1 - overlap) * args.patch_size) < 1:
                parser.error(f'{flag} {overlap} leaves no stride for --patch-size {args.patch_size}')
    if args.workers < 0:
        parser.error(f'--workers must be 0 or more, got {args.workers}')
    return args


def _describe(plan):
    if plan['overlap'] is None:
        return f"rule {plan['rule']}, one centre crop of {plan['patch_size']}"
    return (f"rule {plan['rule']}, patch {plan['patch_size']}, overlap {plan['overlap']}, "
            f"discard {plan['discard']}")


def main(argv=None):
    """Run the CLI; returns 0, or 2 after printing the problem to stderr."""
    args = parse_args(argv)
    try:
        for split in args.splits:
            stats = prepare_split(args.dpdd, args.out, split, args.patch_size, args.overlap, args.discard,
                                  args.workers, args.rule, args.val_overlap, args.val_patch_size)
            share = 100.0 * stats['discarded'] / stats['total']
            print(f'{split}: {stats["scenes"]} scenes, {stats["total"]} patches, kept {stats["kept"]}, '
                  f'discarded {stats["discarded"]} ({share:.1f}%) [{_describe(stats["plan"])}]; files written '
                  f'now {stats["written"]}, skipped {stats["skipped"]} (already there) -> '
                  f'{os.path.join(args.out, split)}')
    except (PrepareError, ValueError, OSError) as error:
        print(f'prepare_dpdd: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
