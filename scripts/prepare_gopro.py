"""Arrange the GoPro and HIDE downloads into the input/target folders that BasicSR's
``PairedImageDataset`` reads (``dataroot_lq`` = ``input``, ``dataroot_gt`` = ``target``,
``filename_tmpl: '{}'``), named as the community names GoPro (Restormer's, MPRNet's and NAFNet's
downloads and released results): ``<scene>-<frame>.png``.

    python scripts/prepare_gopro.py --out OUT [--gopro GOPRO] [--hide HIDE] \\
        [--gopro-blur blur|blur_gamma] [--mode copy|symlink|hardlink] \\
        [--crop 512 [--crop-overlap 256]] [--allow-partial] [--rename-underscore] [--workers N]

Layouts read, found by looking (each GoPro split on its own; the summary says which was found)::

    GOPRO_Large/{train,test}/<scene>/{blur,blur_gamma,sharp}/<frame>.png    (the official archive)
    GOPRO/{train,test}/{input,target}/<scene>-<frame>.png                   (the community's: NAFNet's
    GOPRO/{train,test}/GoPro/{input,target}/<scene>-<frame>.png              datasets/GoPro, Restormer's
                                                                               Datasets/test/GoPro)
    HIDE_dataset/test/{test-close-ups,test-long-shot}/<name>.png, GT/<name>.png  (the official archive)
    HIDE/{input,target}/<name>.png, or HIDE/test/{input,target}, HIDE/test/HIDE/{input,target}
                                                                   (Restormer's Datasets/test/HIDE)

Layout written::

    OUT/GoPro/{train,test}/{input,target}/<scene>-<frame>.png
    OUT/GoPro/train/{input,target}_crops/<scene>-<frame>_<k>.png   (with --crop)
    OUT/GoPro/train/crops.json                                     (the crop settings used)
    OUT/HIDE/test/{input,target}/<name>.png
    OUT/HIDE/test/subsets.csv            (name,subset; only from HIDE_dataset, which has the two subsets)

``<frame>`` is GOPRO_Large's 6-digit file name (``GOPR0384_11_00-000001.png``); input names of the
input/target layout in the ``<scene>_<frame>`` spelling are written in the hyphen one. The input comes
from ``blur/`` by default, as in the papers; ``--gopro-blur blur_gamma`` picks the gamma-corrected blur
instead (GOPRO_Large only). ``--crop P`` adds overlapping P x P training crops of GoPro train (the window
slides by P - overlap, and a last window sits flush with the image's right/bottom edge so every pixel is
covered); crops are cut from the images as stored (``cv2.IMREAD_UNCHANGED``) and saved as lossless PNG,
so their pixels equal the source's. ``k`` counts the windows row by row from 0.

Every input/output pair is checked before anything is written: missing folders, a blurry image
without its sharp partner or the reverse, blurry and sharp images of different sizes, crops larger
than an image, an input folder that is also the output folder. The counts are checked against the
full release (``basicsr_vitloss.data.gopro_files``: GoPro train 2103 pairs in 22 scenes, test 1111 in
11, per scene; HIDE test 2025 in all, the close-up / long-shot split is not checked), from the names
alone: a missing split or scene, a scene with other counts, a scene or name that is not GoPro's is an
error listing each (split, scene, how many), unless ``--allow-partial`` makes it a warning. A problem
is printed to stderr and the exit status is 2.

Trees written by earlier versions name GoPro ``<scene>_<frame>.png``. One folder never holds both
spellings: files so named in an output folder this run writes to stop it (listed), unless
``--rename-underscore`` renames them in place first (copies, links and crops then count as up to date).

Re-running is cheap and safe: an output that already matches its source (same size and
modification time for copies, the same file for links) or a crop that already exists is skipped;
files are written to a hidden temporary file and renamed into place, so an interrupted run never
leaves a half-written image that a later run would take as done.
"""
import argparse
import csv
import io
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
from tqdm import tqdm

from basicsr_vitloss.data.gopro_files import GOPRO_TOTALS, canonical_stem, gopro_count_problems, gopro_stem, \
    hide_count_problems, is_underscore_stem
from basicsr_vitloss.data.image_io import read_image_size, read_image_unchanged
from basicsr_vitloss.utils.atomic_write import atomic_path
from basicsr_vitloss.utils.windows import window_starts

GOPRO_SPLITS = ('train', 'test')
GOPRO_SHARP = 'sharp'
HIDE_SUBSETS = (('test-close-ups', 'close-ups'), ('test-long-shot', 'long-shot'))  # (folder, label)
IMAGE_EXT = '.png'
LAYOUT_GOPRO_LARGE = 'GOPRO_Large'  # <split>/<scene>/{blur,blur_gamma,sharp}/<frame>.png
LAYOUT_INPUT_TARGET = 'input/target'  # the community's <split>/{input,target}/<scene>-<frame>.png
LAYOUT_HIDE = 'HIDE_dataset'  # test/{test-close-ups,test-long-shot}/<name>.png, GT/<name>.png


class PrepareError(Exception):
    """A problem with the input data or the output folder, reported without a traceback."""


# ----------------------------------------------------------------------------------------- checks


def _require_dir(path, what):
    if not os.path.isdir(path):
        raise PrepareError(f'{what}: expected folder {path} does not exist')


def _png_names(folder):
    """Sorted PNG file names (not hidden) in ``folder``."""
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXT) and not n.startswith('.')
                  and os.path.isfile(os.path.join(folder, n)))


def png_size(path):
    """(height, width) from a PNG file's header, without decoding the image."""
    try:
        return read_image_size(path)
    except OSError as error:
        raise PrepareError(str(error)) from None


def _pair_names(blur_dir, sharp_dir):
    """Names present in both folders; raises naming the files that miss their partner."""
    blur, sharp = _png_names(blur_dir), _png_names(sharp_dir)
    only_blur = sorted(set(blur) - set(sharp))
    only_sharp = sorted(set(sharp) - set(blur))
    problems = [f'{os.path.join(blur_dir, n)} has no sharp partner {os.path.join(sharp_dir, n)}'
                for n in only_blur]
    problems += [f'{os.path.join(sharp_dir, n)} has no blurry partner {os.path.join(blur_dir, n)}'
                 for n in only_sharp]
    if problems:
        raise PrepareError(_listing('unpaired images', problems))
    if not blur:
        raise PrepareError(f'no PNG images in {blur_dir} (expected <name>.png files)')
    return blur


def _listing(title, problems, limit=20):
    lines = problems[:limit]
    if len(problems) > limit:
        lines.append(f'... and {len(problems) - limit} more')
    return f'{title} ({len(problems)}):\n  ' + '\n  '.join(lines)


def _check_sizes(pairs):
    """Reads every pair's PNG headers; raises naming the pairs whose sizes differ. Returns the sizes."""
    sizes, problems = [], []
    for blur, sharp in pairs:
        hb, hs = png_size(blur), png_size(sharp)
        if hb != hs:
            problems.append(f'{blur} is {hb[1]}x{hb[0]} but {sharp} is {hs[1]}x{hs[0]}')
        sizes.append(hb)
    if problems:
        raise PrepareError(_listing('blurry and sharp images of different sizes', problems))
    return sizes


def _check_unique(jobs, what):
    seen = {}
    for src, dst in jobs:
        if dst in seen:
            raise PrepareError(f'{what}: {seen[dst]} and {src} would both be written to {dst}')
        seen[dst] = src


def crop_starts(length, patch, overlap):
    """Window offsets along one axis: every ``patch - overlap`` pixels from 0, plus a last window
    flush with the end when the stride does not land there."""
    if length < patch:
        raise ValueError(f'length {length} is smaller than the crop size {patch}')
    return window_starts(length, patch, patch - overlap)


def crop_windows(height, width, patch, overlap):
    """(y, x) of every window, row by row: the order of the crop index ``k``."""
    return [(y, x) for y in crop_starts(height, patch, overlap) for x in crop_starts(width, patch, overlap)]


# ------------------------------------------------------------------------------------------ plans


def _scene_dirs(folder):
    return sorted(s for s in os.listdir(folder) if not s.startswith('.') and os.path.isdir(os.path.join(folder, s)))


def find_gopro_layout(root, split):
    """(layout, folder) of one GoPro split under ``root``: ``LAYOUT_INPUT_TARGET`` when ``<split>/input``
    or ``<split>/GoPro/input`` (or its target) exists, ``LAYOUT_GOPRO_LARGE`` when ``<split>`` holds
    scene folders with ``sharp/`` (Restormer's ``train/GoPro/{input,target}_crops`` alone is neither),
    else (None, ``<split>``)."""
    split_dir = os.path.join(root, split)
    for folder in (split_dir, os.path.join(split_dir, 'GoPro')):
        if any(os.path.isdir(os.path.join(folder, sub)) for sub in ('input', 'target')):
            return LAYOUT_INPUT_TARGET, folder
    if os.path.isdir(split_dir) and any(os.path.isdir(os.path.join(split_dir, scene, GOPRO_SHARP))
                                        for scene in _scene_dirs(split_dir)):
        return LAYOUT_GOPRO_LARGE, split_dir
    return None, split_dir


def _gopro_large_pairs(split_dir, split, blur_folder):
    """[(blur, sharp, out stem)] of GOPRO_Large/<split>/<scene>/{blur,sharp}/<frame>.png."""
    pairs = []
    for scene in _scene_dirs(split_dir):
        blur_dir = os.path.join(split_dir, scene, blur_folder)
        sharp_dir = os.path.join(split_dir, scene, GOPRO_SHARP)
        _require_dir(blur_dir, f'GoPro {split} scene {scene}')
        _require_dir(sharp_dir, f'GoPro {split} scene {scene}')
        for name in _pair_names(blur_dir, sharp_dir):
            stem = gopro_stem(scene, os.path.splitext(name)[0])
            pairs.append((os.path.join(blur_dir, name), os.path.join(sharp_dir, name), stem))
    return pairs


def _input_target_pairs(folder, split):
    """[(input, target, out stem)] of <folder>/{input,target}/<name>.png (names in the hyphen spelling)."""
    input_dir, target_dir = os.path.join(folder, 'input'), os.path.join(folder, 'target')
    _require_dir(input_dir, f'GoPro {split} blurry images')
    _require_dir(target_dir, f'GoPro {split} sharp images')
    return [(os.path.join(input_dir, n), os.path.join(target_dir, n), canonical_stem(os.path.splitext(n)[0]))
            for n in _pair_names(input_dir, target_dir)]


def plan_gopro(root, out, blur_folder, crop, overlap):
    """Checks the GoPro folder (either layout, per split) and returns ({split: [(blur, sharp, out stem)]},
    copy jobs, crop jobs, {split: (layout, description)}, count problems). A split that is absent is left out and
    reported among the count problems."""
    _require_dir(root, 'GoPro (--gopro)')
    plans, layouts, problems = {}, {}, []
    for split in GOPRO_SPLITS:
        layout, folder = find_gopro_layout(root, split)
        if layout is None:
            problems.append(f'GoPro {split}: missing ({GOPRO_TOTALS[split]} images; expected {folder}/<scene>/'
                            f'{{{blur_folder},{GOPRO_SHARP}}} or {folder}/{{input,target}})')
            continue
        if layout == LAYOUT_INPUT_TARGET:
            if blur_folder != 'blur':
                raise PrepareError(f'--gopro-blur {blur_folder}: GoPro {split} in {folder} is in the input/target '
                                   'layout, which has no blur_gamma images; use the GOPRO_Large folder')
            plans[split] = _input_target_pairs(folder, split)
            layouts[split] = (layout, f'{os.path.join(folder, "{input,target}")} (input/target layout)')
        else:
            plans[split] = _gopro_large_pairs(folder, split, blur_folder)
            layouts[split] = (layout, f'{os.path.join(folder, "<scene>", "{" + blur_folder + "," + GOPRO_SHARP + "}")}'
                                      ' (GOPRO_Large layout)')
        problems += gopro_count_problems(split, [stem for _, _, stem in plans[split]])
    if not plans:
        raise PrepareError(f'GoPro (--gopro): no split found in {root}; expected GOPRO_Large\'s '
                           '{train,test}/<scene>/{blur,sharp}/ or the community\'s {train,test}/{input,target}/ '
                           '(also {train,test}/GoPro/{input,target}/)')
    sizes = {split: _check_sizes([(b, s) for b, s, _ in pairs]) for split, pairs in plans.items()}

    copies = {}
    for split, pairs in plans.items():
        base = os.path.join(out, 'GoPro', split)
        jobs = [(b, os.path.join(base, 'input', stem + IMAGE_EXT)) for b, _, stem in pairs]
        jobs += [(s, os.path.join(base, 'target', stem + IMAGE_EXT)) for _, s, stem in pairs]
        _check_unique(jobs, f'GoPro {split}')
        copies[split] = jobs

    crops = []
    if crop:
        if 'train' not in plans:
            raise PrepareError(f'--crop cuts GoPro train, but {problems[0]}')
        base = os.path.join(out, 'GoPro', 'train')
        too_small = [f'{b} is {w}x{h}' for (b, _, _), (h, w) in zip(plans['train'], sizes['train'])
                     if h < crop or w < crop]
        if too_small:
            raise PrepareError(_listing(f'images smaller than the crop size {crop}', too_small))
        for (b, s, stem), (h, w) in zip(plans['train'], sizes['train']):
            crops.append((b, s, os.path.join(base, 'input_crops'), os.path.join(base, 'target_crops'),
                          stem, crop_windows(h, w, crop, overlap)))
    return plans, copies, crops, layouts, problems


def find_hide_layout(root):
    """(layout, folder) of the HIDE folder: ``LAYOUT_HIDE`` (test/{test-close-ups,test-long-shot}, GT),
    ``LAYOUT_INPUT_TARGET`` when ``{input,target}``, ``test/{input,target}`` or ``test/HIDE/{input,target}``
    exists (Restormer's Datasets/, mmagic's data/HIDE), else (None, root)."""
    if os.path.isdir(os.path.join(root, 'GT')):
        return LAYOUT_HIDE, root
    for folder in (root, os.path.join(root, 'test'), os.path.join(root, 'test', 'HIDE')):
        if any(os.path.isdir(os.path.join(folder, sub)) for sub in ('input', 'target')):
            return LAYOUT_INPUT_TARGET, folder
    return None, root


def plan_hide(root, out):
    """Checks the HIDE folder and returns ([(blurry, sharp, name, subset or None)], copy jobs, layout text,
    count problems)."""
    _require_dir(root, 'HIDE (--hide)')
    layout, folder = find_hide_layout(root)
    if layout is None:
        raise PrepareError(f'HIDE (--hide): no HIDE layout in {root}; expected HIDE_dataset\'s '
                           'test/{test-close-ups,test-long-shot}/ and GT/, or {input,target}/ '
                           '(also test/{input,target}/, test/HIDE/{input,target}/)')
    if layout == LAYOUT_INPUT_TARGET:
        input_dir, target_dir = os.path.join(folder, 'input'), os.path.join(folder, 'target')
        _require_dir(input_dir, 'HIDE test blurry images')
        _require_dir(target_dir, 'HIDE test sharp images')
        pairs = [(os.path.join(input_dir, n), os.path.join(target_dir, n), n, None)
                 for n in _pair_names(input_dir, target_dir)]
        described = f'{os.path.join(folder, "{input,target}")} (input/target layout)'
    else:
        pairs = _hide_release_pairs(folder)
        described = f'{folder} (HIDE_dataset layout: test/{{test-close-ups,test-long-shot}}, GT)'
    _check_sizes([(b, s) for b, s, _, _ in pairs])
    base = os.path.join(out, 'HIDE', 'test')
    jobs = [(b, os.path.join(base, 'input', n)) for b, _, n, _ in pairs]
    jobs += [(s, os.path.join(base, 'target', n)) for _, s, n, _ in pairs]
    _check_unique(jobs, 'HIDE test (the same name in close-ups and long-shot)')
    return pairs, jobs, described, hide_count_problems(len(pairs))


def _hide_release_pairs(root):
    """[(blurry, sharp, name, subset)] of HIDE_dataset/test/{test-close-ups,test-long-shot} and GT."""
    gt_dir = os.path.join(root, 'GT')
    gt_names = set(_png_names(gt_dir))
    pairs, missing = [], []
    for folder, label in HIDE_SUBSETS:
        blur_dir = os.path.join(root, 'test', folder)
        _require_dir(blur_dir, f'HIDE {label} test images')
        names = _png_names(blur_dir)
        if not names:
            raise PrepareError(f'no PNG images in {blur_dir} (expected <name>.png files)')
        for name in names:
            if name not in gt_names:
                missing.append(f'{os.path.join(blur_dir, name)} has no sharp partner {os.path.join(gt_dir, name)}')
            pairs.append((os.path.join(blur_dir, name), os.path.join(gt_dir, name), name, label))
    if missing:
        raise PrepareError(_listing('HIDE blurry images missing from GT', missing))
    return pairs


def plan_renames(folders, rename):
    """Files an earlier prepare_gopro wrote as ``<scene>_<frame>...png`` in the output ``folders`` this run
    writes ``<scene>-<frame>...png`` to. None found: []. Found: with ``rename`` the (old, new) paths to
    rename, else PrepareError naming them (one folder never holds both spellings)."""
    found = []
    for folder in folders:
        if os.path.isdir(folder):
            found += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                      if n.lower().endswith(IMAGE_EXT) and not n.startswith('.')
                      and is_underscore_stem(os.path.splitext(n)[0])]
    if not found:
        return []
    if not rename:
        raise PrepareError(_listing(
            'GoPro files named <scene>_<frame> (earlier prepare_gopro versions) where this version writes '
            '<scene>-<frame>, the community\'s spelling; rerun with --rename-underscore to rename them in place '
            '(nothing is copied again), or delete them', found))
    renames = [(old, os.path.join(os.path.dirname(old), canonical_stem(os.path.splitext(os.path.basename(old))[0])
                                  + os.path.splitext(old)[1])) for old in found]
    both = [f'{old} and {new}' for old, new in renames if os.path.lexists(new)]
    if both:
        raise PrepareError(_listing('both spellings of one GoPro file exist; delete one of each', both))
    return renames


def _check_crop_settings(path, settings):
    """Crops from other settings would be taken as done; refuse to mix them."""
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            previous = json.load(f)
    except (OSError, ValueError) as error:
        raise PrepareError(f'cannot read {path} ({error}); delete it and the crop folders next to it')
    if previous != settings:
        raise PrepareError(f'the crops next to {path} were made with {previous}, not {settings}: delete '
                           'input_crops/, target_crops/ and crops.json there, or repeat the same settings')


def _check_not_in_place(folder_pairs):
    """A community tree given as its own output would have files replaced by themselves (a symlink onto
    itself loses the image): refuse it before writing."""
    same = sorted(src for src, dst in folder_pairs if os.path.realpath(src) == os.path.realpath(dst))
    if same:
        raise PrepareError(_listing('input folders that are also the output folders; give another --out '
                                    '(--mode symlink keeps it cheap)', same))


def _check_links(mode, source_dirs, out):
    """Hard links cannot cross file systems: find out before writing anything."""
    if mode != 'hardlink':
        return
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    out_dev = os.stat(existing).st_dev
    for folder in sorted(source_dirs):
        if os.stat(folder).st_dev != out_dev:
            raise PrepareError(f'--mode hardlink: {folder} is on another file system than {out}; '
                               'use --mode copy or symlink')


# ------------------------------------------------------------------------------------------ work


def _replace_atomically(dst, make):
    """Calls ``make(temp)`` on a hidden temporary name next to ``dst`` (never listed by BasicSR's folder
    scan nor by ``dpdd_files.list_images``) and renames it onto ``dst`` (the package's atomic_path)."""
    with atomic_path(dst) as tmp:
        make(tmp)


def _up_to_date(src, dst, mode):
    if not os.path.lexists(dst):
        return False
    if mode == 'symlink':
        return os.path.islink(dst) and os.readlink(dst) == os.path.abspath(src)
    if os.path.islink(dst) or not os.path.isfile(dst):
        return False
    if mode == 'hardlink':
        return os.path.samefile(src, dst)
    a, b = os.stat(src), os.stat(dst)
    return a.st_size == b.st_size and _same_mtime(a.st_mtime_ns, b.st_mtime_ns)


def _same_mtime(src_ns, dst_ns):
    """Whether a copy's mtime is its source's: copy2 sets it, rounded to what the destination's file
    system keeps (nanoseconds, microseconds, 2 s on FAT), read off the trailing zeros of ``dst_ns``."""
    if src_ns == dst_ns:
        return True
    step = 1
    while step < 10 ** 9 and dst_ns % (step * 10) == 0:
        step *= 10
    return abs(src_ns - dst_ns) < 2 * step


def place(src, dst, mode):
    """Puts ``src`` at ``dst`` (copy, symlink or hardlink); 'skipped' when it is already there."""
    if _up_to_date(src, dst, mode):
        return 'skipped'
    if mode == 'symlink':
        make = lambda tmp: os.symlink(os.path.abspath(src), tmp)  # noqa: E731
    elif mode == 'hardlink':
        make = lambda tmp: os.link(src, tmp)  # noqa: E731
    else:
        make = lambda tmp: shutil.copy2(src, tmp)  # noqa: E731  (copy2 keeps the mtime the skip test uses)
    replaced = os.path.lexists(dst)
    _replace_atomically(dst, make)
    return 'replaced' if replaced else 'written'


def _read(path):
    try:
        return read_image_unchanged(path)
    except OSError as error:
        raise PrepareError(str(error)) from None


def _write_png(path, image):
    ok, data = cv2.imencode(IMAGE_EXT, image)
    if not ok:
        raise PrepareError(f'cannot encode a crop for {path}')

    def make(tmp):
        with open(tmp, 'wb') as f:
            f.write(data.tobytes())
    _replace_atomically(path, make)


def cut_crops(blur, sharp, input_dir, target_dir, stem, windows, patch):
    """Writes the missing crops of one pair; returns {'written': n, 'skipped': m} (files)."""
    names = [f'{stem}_{k}{IMAGE_EXT}' for k in range(len(windows))]
    todo = [(k, folder) for k, name in enumerate(names) for folder in (input_dir, target_dir)
            if not os.path.isfile(os.path.join(folder, name))]
    counts = {'written': len(todo), 'skipped': 2 * len(names) - len(todo)}
    if not todo:
        return counts
    images = {input_dir: _read(blur), target_dir: _read(sharp)}
    for k, folder in todo:
        y, x = windows[k]
        _write_png(os.path.join(folder, names[k]), images[folder][y:y + patch, x:x + patch])
    return counts


def _run(tasks, desc, workers, counts, unit='file'):
    """Runs callables returning a status or a {status: n} dict in a thread pool, with a progress bar."""
    if not tasks:
        return
    with ThreadPoolExecutor(max_workers=workers) as pool, tqdm(total=len(tasks), desc=desc, unit=unit) as bar:
        for result in pool.map(lambda task: task(), tasks):
            for status, n in (result.items() if isinstance(result, dict) else [(result, 1)]):
                counts[status] = counts.get(status, 0) + n
            bar.update()


def _write_text(path, text):
    """Writes ``text`` unless the file already holds it; returns the status."""
    if os.path.isfile(path):
        with open(path, encoding='utf-8', newline='') as f:
            if f.read() == text:
                return 'skipped'
    replaced = os.path.exists(path)

    def make(tmp):
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
    _replace_atomically(path, make)
    return 'replaced' if replaced else 'written'


# ------------------------------------------------------------------------------------------- CLI


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Arrange GoPro and HIDE into input/target folders for BasicSR (<scene>-<frame>.png names).')
    parser.add_argument('--out', required=True, help='output root (GoPro/ and HIDE/ are made in it)')
    parser.add_argument('--gopro', help='GOPRO_Large ({train,test}/<scene>/{blur,sharp}) or a community GoPro '
                        'folder ({train,test}/{input,target}, also {train,test}/GoPro/{input,target})')
    parser.add_argument('--hide', help='HIDE_dataset (test/ and GT/) or a community HIDE folder ({input,target}, '
                        'also test/{input,target}, test/HIDE/{input,target})')
    parser.add_argument('--gopro-blur', choices=('blur', 'blur_gamma'), default='blur',
                        help='GoPro folder the inputs come from (default blur, as in the papers)')
    parser.add_argument('--mode', choices=('copy', 'symlink', 'hardlink'), default='copy',
                        help='how full images are placed (default copy; crops are always new files)')
    parser.add_argument('--crop', type=int, metavar='P', help='also write PxP crops of GoPro train')
    parser.add_argument('--crop-overlap', type=int, metavar='O',
                        help='overlap of neighbouring crops in pixels (default P // 2)')
    parser.add_argument('--allow-partial', action='store_true',
                        help='accept a tree with other counts than the full release (a warning, not an error)')
    parser.add_argument('--rename-underscore', action='store_true',
                        help='rename <scene>_<frame> files of earlier versions in the output to <scene>-<frame>')
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                        help='parallel file operations (default: CPU count, at most 8)')
    args = parser.parse_args(argv)
    if not (args.gopro or args.hide):
        parser.error('give at least one of --gopro and --hide')
    if args.crop is not None:
        if not args.gopro:
            parser.error('--crop cuts GoPro train: it needs --gopro')
        if args.crop < 1:
            parser.error(f'--crop must be a positive size, got {args.crop}')
        if args.crop_overlap is None:
            args.crop_overlap = args.crop // 2
        if not 0 <= args.crop_overlap < args.crop:
            parser.error(f'--crop-overlap must be in [0, {args.crop}), got {args.crop_overlap}')
    elif args.crop_overlap is not None:
        parser.error('--crop-overlap needs --crop')
    if args.workers < 1:
        parser.error(f'--workers must be at least 1, got {args.workers}')
    return args


def prepare(args):
    """Checks everything, then writes; returns the summary text."""
    out = args.out
    gopro = plan_gopro(args.gopro, out, args.gopro_blur, args.crop, args.crop_overlap) if args.gopro else None
    hide = plan_hide(args.hide, out) if args.hide else None
    problems = (gopro[4] if gopro else []) + (hide[3] if hide else [])
    if problems and not args.allow_partial:
        raise PrepareError(_listing('not the full release (GoPro 2103 train / 1111 test, HIDE 2025 test); '
                                    '--allow-partial accepts it', problems, limit=len(problems)))
    if problems:
        print('prepare_gopro: warning: ' + _listing('not the full release (--allow-partial)', problems,
                                                     limit=len(problems)), file=sys.stderr)
    crop_settings = crop_file = None
    if gopro and args.crop:
        crop_file = os.path.join(out, 'GoPro', 'train', 'crops.json')
        # the source of the inputs: GOPRO_Large's blur / blur_gamma, or a prepared set's input/ folder
        source = args.gopro_blur if gopro[3]['train'][0] == LAYOUT_GOPRO_LARGE else 'input'
        crop_settings = {'crop': args.crop, 'overlap': args.crop_overlap, 'gopro_blur': source}
        _check_crop_settings(crop_file, crop_settings)
    all_jobs = [job for split_jobs in (gopro[1].values() if gopro else []) for job in split_jobs]
    all_jobs += hide[1] if hide else []
    _check_not_in_place({(os.path.dirname(src), os.path.dirname(dst)) for src, dst in all_jobs})
    _check_links(args.mode, {os.path.dirname(src) for src, _ in all_jobs}, out)
    renames = []
    if gopro:
        written = [os.path.join(out, 'GoPro', split, sub) for split in gopro[0] for sub in ('input', 'target')]
        if args.crop:
            written += [os.path.join(out, 'GoPro', 'train', sub) for sub in ('input_crops', 'target_crops')]
        renames = plan_renames(written, args.rename_underscore)

    counts = {}
    summary = []
    for old, new in renames:
        os.rename(old, new)
    if renames:
        summary.append(f'renamed {len(renames)} files from <scene>_<frame> to <scene>-<frame>')
    if gopro:
        plans, copies, crops, layouts, _ = gopro
        for split in GOPRO_SPLITS:
            if split not in plans:
                summary.append(f'GoPro {split}: missing, nothing written')
                continue
            for sub in ('input', 'target'):
                os.makedirs(os.path.join(out, 'GoPro', split, sub), exist_ok=True)
            _run([lambda s=s, d=d: place(s, d, args.mode) for s, d in copies[split]],
                 f'GoPro {split}', args.workers, counts)
            layout, described = layouts[split]
            sources = (f'{args.gopro_blur} -> input, sharp -> target' if layout == LAYOUT_GOPRO_LARGE
                       else 'input -> input, target -> target')
            summary.append(f'GoPro {split}: {len(plans[split])} pairs ({sources}) from {described}')
        if crops:
            base = os.path.join(out, 'GoPro', 'train')
            for sub in ('input_crops', 'target_crops'):
                os.makedirs(os.path.join(base, sub), exist_ok=True)
            status = _write_text(crop_file, json.dumps(crop_settings, sort_keys=True) + '\n')
            counts[status] = counts.get(status, 0) + 1
            _run([lambda c=c: cut_crops(*c, args.crop) for c in crops], 'GoPro train crops', args.workers, counts,
                 unit='pair')
            n_crops = sum(len(c[-1]) for c in crops)
            summary.append(f'GoPro train crops: {n_crops} pairs of {args.crop}x{args.crop} '
                           f'(overlap {args.crop_overlap}) from {len(crops)} images')
    if hide:
        pairs, jobs, described, _ = hide
        base = os.path.join(out, 'HIDE', 'test')
        for sub in ('input', 'target'):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        _run([lambda s=s, d=d: place(s, d, args.mode) for s, d in jobs], 'HIDE test', args.workers, counts)
        if pairs[0][3] is None:
            summary.append(f'HIDE test: {len(pairs)} pairs from {described}; this layout does not say which '
                           'are close-ups and which long-shot: no subsets.csv written')
        else:
            table = io.StringIO()
            writer = csv.writer(table, lineterminator='\n')
            writer.writerow(['name', 'subset'])
            writer.writerows((os.path.splitext(name)[0], label) for _, _, name, label in pairs)
            status = _write_text(os.path.join(base, 'subsets.csv'), table.getvalue())
            counts[status] = counts.get(status, 0) + 1
            per_subset = ', '.join(f'{sum(p[3] == label for p in pairs)} {label}' for _, label in HIDE_SUBSETS)
            summary.append(f'HIDE test: {len(pairs)} pairs ({per_subset}) from {described}')
    summary.append(f'files written: {counts.get("written", 0)}, replaced (out of date): '
                   f'{counts.get("replaced", 0)}, skipped (already there): {counts.get("skipped", 0)}')
    summary.append(f'output: {os.path.abspath(out)} (mode {args.mode})')
    return '\n'.join(summary)


def main(argv=None):
    """Command-line entry; returns 0 on success and 2 (after a message on stderr) on a data problem."""
    args = parse_args(argv)
    try:
        summary = prepare(args)
    except PrepareError as error:
        print(f'prepare_gopro: error: {error}', file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permissions, ...: the message names the file
        print(f'prepare_gopro: error: {error}', file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
