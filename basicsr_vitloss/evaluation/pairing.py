"""Pairing restored images with their ground truth: by name, or by natural-sorted position with each
pair checked to be the same capture (DPDD's targets carry their own capture numbers); see
docs/evaluation.md. Names are compared in ``gopro_files.canonical_stem`` form, so a GoPro frame spelled
``<scene>-<frame>`` (the community's downloads and released results) pairs with ``<scene>_<frame>``
(trees from earlier prepare_gopro versions) and the reverse."""
import os

from basicsr_vitloss.data.dpdd_files import MAX_CAPTURE_OFFSET, PAIRINGS, list_images, natural_key, pair_by_rule, \
    same_capture
from basicsr_vitloss.data.gopro_files import canonical_stem, parse_stem
from basicsr_vitloss.evaluation.errors import EvaluateError, listing


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _canonical_name(path):
    """The file name with a GoPro stem in the hyphen spelling (any other name unchanged): the sort key's
    base, so both spellings sort alike and every other set keeps its natural order."""
    return canonical_stem(stem(path)) + os.path.splitext(path)[1]


def scene_candidates(restored_stem):
    """The scenes a restored name can be of, longest first: the stem itself, then each prefix ending
    before an '_' (BasicSR's ``<source>_<suffix>``): ``1P0A0917_x_y`` -> 1P0A0917_x_y, 1P0A0917_x, 1P0A0917.
    A GoPro stem is first put in the hyphen spelling: ``GOPR0384_11_00_000001_x`` -> GOPR0384_11_00-000001_x,
    GOPR0384_11_00-000001, GOPR0384_11, GOPR0384."""
    parts = canonical_stem(restored_stem).split('_')
    prefixes = ('_'.join(parts[:k]) for k in range(len(parts), 0, -1))
    return [p for p in prefixes if p]


def stems_match(restored_stem, gt_stem):
    """The name rule: the restored stem is the gt stem, optionally followed by '_' + anything (GoPro
    frames in either spelling, ``<scene>-<frame>`` or ``<scene>_<frame>``, on either side)."""
    return canonical_stem(gt_stem) in scene_candidates(restored_stem)


def same_capture_names(restored_stem, gt_stem):
    """The position check: one of the restored name's scene candidates is the gt's capture
    (``dpdd_files.same_capture``: the same name, or DPDD's target of its own capture number). A GoPro
    frame's capture is its own name only: neighbouring frames are other images."""
    gt_stem = canonical_stem(gt_stem)
    if parse_stem(gt_stem):
        return gt_stem in scene_candidates(restored_stem)
    return any(same_capture(scene, gt_stem) for scene in scene_candidates(restored_stem))

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
    see docs/evaluation.md). Returns ([(restored path, gt path)] in natural gt order, the rule used:
    'name' or 'position'). EvaluateError naming the files when they do not pair."""
    if pairing not in PAIRINGS:
        raise EvaluateError(f"--pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}.")
    gt = sorted(gt, key=lambda p: (natural_key(_canonical_name(p)), natural_key(os.path.basename(p))))
    gt_stems = [canonical_stem(stem(p)) for p in gt]
    canonical = {p: canonical_stem(stem(p)) for p in restored}
    key = _suffix_free_key(list(canonical.values()))
    restored = sorted(restored, key=lambda p: key(canonical[p]))
    restored_stems = [canonical[p] for p in restored]
    where = f' (restored: {restored_where}, ground truth: {gt_where})' if restored_where or gt_where else ''
    if len(set(gt_stems)) != len(gt_stems):
        twice = sorted(os.path.basename(p) for p, s in zip(gt, gt_stems) if gt_stems.count(s) > 1)
        raise EvaluateError(f'two ground-truth images share a name (GoPro <scene>-<frame> and <scene>_<frame> '
                            f'are one name): {listing(twice)}{where}.')
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
                                f'{listing(twice)}{where}.')
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
                f'{listing(only_restored)}; only in ground truth: {listing(only_gt)}'
                + (f'; other captures: {listing(bad)}' if bad else '') + '.')
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
