"""Crop the official DPDD release into the paper's training patches.

The 1680x1120 images are cut into square patches (512x512 by default) with a sliding window of 60%
overlap, and the ~30% most homogeneous patches are discarded, so that training sees mostly textured
content. Homogeneity is measured on the all-in-focus target (mean Sobel gradient magnitude of its
grayscale patch) and ranked over the whole split; the same patches are kept for all four views.

Usage:

    python scripts/prepare_dpdd.py --dpdd ROOT --out OUT [--splits train val] [--patch-size 512] \\
        [--overlap 0.6] [--discard 0.3] [--workers N]

``ROOT`` is the official layout (``<split>_l/source/*_L.png``, ``<split>_r/source/*_R.png``,
``<split>_c/source/*.png``, ``<split>_c/target/*.png``). The patches are written to
``OUT/<split>/{inputL,inputR,inputC,target}_crops/<scene>_<k>.png`` (``k``: the patch index within
the scene, row-major), byte for byte the pixels of the source (16-bit stays 16-bit), together with
``OUT/<split>/manifest.json`` (settings, and per patch its position, sharpness and whether it is kept).

Re-running is safe: existing patch files are skipped (each file is written under a temporary name and
then renamed, so an interrupted run leaves no half-written PNG), and a manifest made with other
settings, or from other source images, stops the run instead of mixing two patch sets.
"""
import argparse
import json
import math
import os
import sys
from multiprocessing import Pool

import cv2
import numpy as np
from tqdm import tqdm

from basicsr_vitloss.data.dpdd_files import (check_scene_sizes, official_view_folders, pair_view_files,
                                             scene_name)
from basicsr_vitloss.data.image_io import read_image, read_image_unchanged
from basicsr_vitloss.utils.windows import window_starts

VIEWS = ('lqL', 'lqR', 'lqC', 'gt')
#: view -> output folder name (the names Restormer's DPDD options use)
CROP_FOLDERS = {'lqL': 'inputL_crops', 'lqR': 'inputR_crops', 'lqC': 'inputC_crops', 'gt': 'target_crops'}
MANIFEST = 'manifest.json'
SETTINGS = ('patch_size', 'overlap', 'discard')


class PrepareError(Exception):
    """A problem with the inputs or the output folder, reported as a message (no traceback)."""


def window_positions(length, patch, overlap):
    """Start offsets of the sliding windows along an axis of ``length`` pixels.

    The stride is ``round(patch * (1 - overlap))``; a last window flush with the far edge is added
    when the regular ones stop short of it, so every pixel is covered."""
    if patch < 1:
        raise ValueError(f'patch size must be at least 1, got {patch}')
    if not 0 <= overlap < 1:
        raise ValueError(f'overlap must be in [0, 1), got {overlap}')
    if length < patch:
        raise ValueError(f'length {length} is smaller than the patch size {patch}')
    return window_starts(length, patch, max(1, round(patch * (1 - overlap))))


def patch_sharpness(gray_patch):
    """Mean Sobel gradient magnitude of a 2-D grayscale patch: low for homogeneous (flat) content.

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


def _init_worker():
    # parallelism comes from the processes; keep each one's OpenCV single-threaded
    cv2.setNumThreads(1)


def _score_scene(task):
    """(scene index, sharpness per window) of one scene's target image."""
    index, target_path, windows, patch = task
    rgb = read_image(target_path).astype(np.float64)
    # BT.601 luma, elementwise: unlike cvtColor's vectorised path, a flat image stays exactly flat
    gray = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return index, [patch_sharpness(gray[y:y + patch, x:x + patch]) for y, x in windows]


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
            temporary = destination + '.part'  # no image extension: never listed as a patch
            encoded.tofile(temporary)
            os.replace(temporary, destination)
            written += 1
    return written, skipped


def _map(function, tasks, workers, desc):
    """Results of ``function`` over ``tasks`` (in any order), in a pool of ``workers`` or in-process."""
    bar = dict(total=len(tasks), desc=desc, unit='scene', leave=False)
    if workers <= 1 or len(tasks) <= 1:
        return [function(task) for task in tqdm(tasks, **bar)]
    with Pool(min(workers, len(tasks)), initializer=_init_worker) as pool:
        return list(tqdm(pool.imap_unordered(function, tasks), **bar))


def _write_json(path, data):
    temporary = path + '.part'
    with open(temporary, 'w') as file:
        json.dump(data, file, indent=1)
    os.replace(temporary, path)


def _check_manifest_settings(path, settings):
    """Stop if an existing manifest was made with other settings; return it (or None)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            manifest = json.load(file)
        made_with = {key: manifest[key] for key in SETTINGS}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PrepareError(f'{path}: cannot read this manifest of an earlier run ({error}); delete the '
                           f'folder {os.path.dirname(path)} or choose another --out.') from None
    if made_with != settings:
        differ = ', '.join(f'{key} {made_with[key]} there but {settings[key]} now'
                           for key in SETTINGS if made_with[key] != settings[key])
        raise PrepareError(f'{os.path.dirname(path)} holds patches made with other settings ({differ}, '
                           f'see {path}); refusing to mix two patch sets. Use another --out, delete that '
                           f'folder, or re-run with the same settings.')
    return manifest


def prepare_split(root, out, split, patch, overlap, discard, workers):
    """Crop one split; returns the numbers of the summary."""
    split_out = os.path.join(out, split)
    settings = {'patch_size': patch, 'overlap': overlap, 'discard': discard}
    manifest_path = os.path.join(split_out, MANIFEST)
    old_manifest = _check_manifest_settings(manifest_path, settings)

    folders = official_view_folders(root, split, VIEWS)
    scenes = pair_view_files(folders, f'DPDD {split}')
    sizes = check_scene_sizes(scenes, f'DPDD {split}')
    names = [scene_name(os.path.basename(paths['gt']), 'gt') for paths in scenes]

    windows = []
    for paths, (height, width) in zip(scenes, sizes):
        if height < patch or width < patch:
            raise PrepareError(f'{paths["gt"]} is {height}x{width}, smaller than the patch size {patch}.')
        windows.append([(y, x) for y in window_positions(height, patch, overlap)
                        for x in window_positions(width, patch, overlap)])

    # pass 1: sharpness of every window, from the targets only
    scores = [None] * len(scenes)
    tasks = [(i, paths['gt'], windows[i], patch) for i, paths in enumerate(scenes)]
    for index, values in _map(_score_scene, tasks, workers, f'{split}: sharpness'):
        scores[index] = values

    # rank over the split: the floor(discard * total) least sharp go, ties by (scene, k)
    order = [(scores[i][k], i, k) for i in range(len(scenes)) for k in range(len(windows[i]))]
    total = len(order)
    n_discard = math.floor(round(discard * total, 9))  # round: 0.29 * 100 must give 29, not 28
    dropped = {(i, k) for _, i, k in sorted(order)[:n_discard]}
    patches = [{'scene': names[i], 'k': k, 'y': y, 'x': x, 'sharpness': scores[i][k],
                'kept': (i, k) not in dropped}
               for i in range(len(scenes)) for k, (y, x) in enumerate(windows[i])]

    if old_manifest is not None:
        key = ('scene', 'k', 'y', 'x', 'kept')
        old = [tuple(p.get(f) for f in key) for p in old_manifest.get('patches', [])]
        new = [tuple(p[f] for f in key) for p in patches]
        if old != new:
            raise PrepareError(f'{manifest_path} lists another patch set ({len(old)} patches) than the '
                               f'source images in {root} give now ({len(new)}); the source data changed '
                               f'since. Refusing to mix two patch sets: use another --out or delete '
                               f'{split_out}.')
    for view in VIEWS:
        os.makedirs(os.path.join(split_out, CROP_FOLDERS[view]), exist_ok=True)
    if old_manifest is None:  # written before any patch, so no patch exists without its manifest
        _write_json(manifest_path, dict(settings, split=split, scenes=len(scenes), patches=patches))

    # pass 2: the kept patches of every view, one task per scene
    tasks = []
    for i, paths in enumerate(scenes):
        crops = [(k, y, x, {view: os.path.join(split_out, CROP_FOLDERS[view], f'{names[i]}_{k}.png')
                            for view in VIEWS})
                 for k, (y, x) in enumerate(windows[i]) if (i, k) not in dropped]
        if crops:
            tasks.append((paths, crops, patch))
    counts = _map(_write_scene, tasks, workers, f'{split}: writing')
    return {'scenes': len(scenes), 'total': total, 'kept': total - n_discard, 'discarded': n_discard,
            'written': sum(c[0] for c in counts), 'skipped': sum(c[1] for c in counts)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dpdd', required=True, help='root of the official DPDD release')
    parser.add_argument('--out', required=True, help='output root; patches go to OUT/<split>/')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'], choices=['train', 'val', 'test'])
    parser.add_argument('--patch-size', type=int, default=512)
    parser.add_argument('--overlap', type=float, default=0.6, help='overlap of neighbouring windows, in [0, 1)')
    parser.add_argument('--discard', type=float, default=0.3,
                        help='fraction of least sharp patches dropped per split, in [0, 1)')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='processes (0 or 1: none); default min(4, CPU count)')
    args = parser.parse_args(argv)
    if args.patch_size < 1:
        parser.error(f'--patch-size must be at least 1, got {args.patch_size}')
    if not 0 <= args.overlap < 1:
        parser.error(f'--overlap must be in [0, 1), got {args.overlap}')
    if not 0 <= args.discard < 1:
        parser.error(f'--discard must be in [0, 1), got {args.discard}')
    if args.workers < 0:
        parser.error(f'--workers must be 0 or more, got {args.workers}')
    return args


def main(argv=None):
    """Run the CLI; returns 0, or 2 after printing the problem to stderr."""
    args = parse_args(argv)
    try:
        for split in args.splits:
            stats = prepare_split(args.dpdd, args.out, split, args.patch_size, args.overlap, args.discard,
                                  args.workers)
            share = 100.0 * stats['discarded'] / stats['total']
            print(f'{split}: {stats["scenes"]} scenes, {stats["total"]} patches, kept {stats["kept"]}, '
                  f'discarded {stats["discarded"]} ({share:.1f}%); files written now {stats["written"]}, '
                  f'skipped {stats["skipped"]} (already there) -> {os.path.join(args.out, split)}')
    except (PrepareError, ValueError, OSError) as error:
        print(f'prepare_dpdd: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
