"""Finding and pairing the files of a DPDD-style dataset: one scene = several views of one picture.

Two layouts are understood (see docs, "Data"):

* the official DPDD release, ``dataroot: <root>`` and ``split: train|val|test``::

      <root>/<split>_l/source/<src>_L.png   left dual-pixel view   (lqL)
      <root>/<split>_r/source/<src>_R.png   right dual-pixel view  (lqR)
      <root>/<split>_c/source/<src>.png     combined blurry image  (lqC)
      <root>/<split>_c/target/<trg>.png     all-in-focus target    (gt)

* one folder per view, with Restormer's keys ``dataroot_lqL``, ``dataroot_lqR``, ``dataroot_lqC``
  (``dataroot_lq`` is accepted for the combined view) and ``dataroot_gt``, e.g. the crops written by
  ``scripts/prepare_dpdd.py`` (``inputL_crops``, ``inputR_crops``, ``inputC_crops``, ``target_crops``).

How files pair, as the reference code does it (DPDNet's ``data.py`` and file lists, Restormer's DPDD
test): the release names every target by its own capture number (source ``1P0A0917`` has target
``1P0A0916``; offsets -1, +1, +2 in the published lists), so

* the source views pair by name: a file's scene name is its stem with the view's own suffix (``_L`` in
  the left folder, ``_R`` in the right, ``_C`` in the combined, any case) removed;
* targets pair with the sources by natural-sorted position, checked: equal counts, and each pair is
  the same name or the same prefix with trailing capture numbers at most ``MAX_CAPTURE_OFFSET`` apart.

``pairing: name`` (every target named like its source) and ``pairing: position`` force one rule;
``auto`` (the default) pairs by name when every name matches and by checked position otherwise. Every
problem (missing folder, different counts, names that do not pair, views of different sizes) is
reported at once with the offending folders and files; nothing is paired by an unchecked guess.
"""
import os
import re
from typing import NamedTuple

from basicsr_vitloss.data.image_io import read_image_size

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
#: view key -> (official sub-folder pattern, suffix that file names may carry)
OFFICIAL_FOLDERS = {
    'lqL': ('{split}_l/source', '_L'),
    'lqR': ('{split}_r/source', '_R'),
    'lqC': ('{split}_c/source', '_C'),
    'gt': ('{split}_c/target', ''),
}
SPLITS = ('train', 'val', 'test')
PAIRINGS = ('auto', 'name', 'position')
#: largest |target capture number - source capture number| accepted when pairing by position
MAX_CAPTURE_OFFSET = 3
_SHOWN = 5  # names listed per problem in an error message


def official_view_folders(root, split, views):
    """{view: folder} of the official release for ``split``."""
    if split not in SPLITS:
        raise ValueError(f"DPDD split must be one of {', '.join(SPLITS)}, got {split!r}.")
    return {view: os.path.join(root, OFFICIAL_FOLDERS[view][0].format(split=split)) for view in views}


def scene_name(filename, view):
    """Scene name of ``filename`` in ``view``'s folder: its stem without the view's suffix."""
    stem = os.path.splitext(filename)[0]
    suffix = OFFICIAL_FOLDERS[view][1]
    if suffix and stem.lower().endswith(suffix.lower()):
        stem = stem[:-len(suffix)]
    return stem


def natural_key(name):
    """Sort key putting ``img2`` before ``img10`` (the order DPDD's label indices refer to)."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def list_images(folder, what):
    """Sorted image file names in ``folder``; ``what`` names the folder in errors. Hidden names (a
    leading dot) are left out, as BasicSR's ``scandir`` does: the temporary files of an interrupted
    atomic write are never listed as images."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'{what}: folder {folder} does not exist.')
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith('.')
                    and os.path.isfile(os.path.join(folder, n))), key=natural_key)
    if not names:
        raise ValueError(f'{what}: folder {folder} has no images ({", ".join(IMAGE_EXTENSIONS)}).')
    return names


class Scene(NamedTuple):
    """One scene: its name (the source's, without view suffix) and {view: path}."""
    name: str
    paths: dict


def capture_number(name):
    """(prefix, trailing number) of a file stem such as ``1P0A0917`` -> ('1P0A', 917), or None."""
    match = re.fullmatch(r'(.*?)(\d+)', name)
    return (match.group(1), int(match.group(2))) if match else None


def same_capture(source, target, max_offset=MAX_CAPTURE_OFFSET):
    """Whether ``target`` can be the target of scene ``source``: the same name, or the same prefix with
    trailing numbers at most ``max_offset`` apart (DPDD names a target by its own capture number)."""
    if source == target:
        return True
    a, b = capture_number(source), capture_number(target)
    return a is not None and b is not None and a[0] == b[0] and abs(a[1] - b[1]) <= max_offset


def check_pairing(pairing, what='pairing'):
    if pairing not in PAIRINGS:
        raise ValueError(f"{what} must be one of {', '.join(PAIRINGS)}, got {pairing!r}.")
    return pairing


def _shown(items):
    items = list(items)
    return ', '.join(items[:_SHOWN]) + (f' ... ({len(items)} in all)' if len(items) > _SHOWN else '')


def pair_by_rule(sources, targets, pairing='auto', what='DPDD', source_label='source', target_label='target',
                 match=same_capture):
    """Index pairs [(i, j)] of ``sources`` (scene names) with ``targets`` (names), both in natural-sorted
    order, by ``pairing`` (auto | name | position, see the module docstring). ``match(source, target)``
    is the position check. Raises ValueError listing the offending names."""
    check_pairing(pairing, f'{what}: pairing')
    by_name = {name: j for j, name in enumerate(targets)}
    all_named = len(sources) == len(targets) and all(name in by_name for name in sources)
    if pairing == 'name' or (pairing == 'auto' and all_named):
        unmatched = [s for s in sources if s not in by_name]
        extra = sorted(set(targets) - set(sources), key=natural_key)
        if unmatched or extra:
            raise ValueError(
                f'{what}: {target_label}s do not pair with {source_label}s by name ({len(sources)} {source_label}s, '
                f'{len(targets)} {target_label}s): no {target_label} named like {_shown(unmatched) or "-"}; '
                f'no {source_label} named like {_shown(extra) or "-"}. The DPDD release names targets by '
                f'their own capture numbers: use pairing: position (or auto).')
        return [(i, by_name[name]) for i, name in enumerate(sources)]
    if len(sources) != len(targets):
        raise ValueError(
            f'{what}: {len(sources)} {source_label}s but {len(targets)} {target_label}s; they pair by sorted '
            f'position, so the counts must be equal. {source_label}s: {_shown(sources)}; '
            f'{target_label}s: {_shown(targets)}.')
    bad = [f'{s} vs {t}' for s, t in zip(sources, targets) if not match(s, t)]
    if bad:
        raise ValueError(
            f'{what}: {len(bad)} of {len(sources)} {source_label}/{target_label} pairs (by sorted position) are not '
            f'the same capture: {_shown(bad)}. A {target_label} must have its {source_label}\'s name, or the same '
            f'prefix and a trailing capture number at most {MAX_CAPTURE_OFFSET} away (DPDD: 1P0A0917 -> '
            f'1P0A0916); a missing or extra file shifts every later pair.')
    return list(zip(range(len(sources)), range(len(targets))))


def _pair_sources_by_name(folders, what):
    """{view: {scene: file name}} of the source views, checked to hold the same scenes."""
    by_view, problems = {}, []
    for view, folder in folders.items():
        scenes = {}
        for name in list_images(folder, f'{what} {view}'):
            scene = scene_name(name, view)
            if scene in scenes:
                problems.append(f'{view} folder {folder}: {scenes[scene]} and {name} are both scene {scene!r}')
            scenes[scene] = name
        by_view[view] = scenes
    all_scenes = set().union(*(set(s) for s in by_view.values()))
    for view, scenes in by_view.items():
        missing = sorted(all_scenes - set(scenes), key=natural_key)
        if missing:
            others = {v: by_view[v][s] for s in missing[:_SHOWN] for v in by_view if s in by_view[v]}
            example = ', '.join(f'{v}: {n}' for v, n in list(others.items())[:3])
            problems.append(f'{view} folder {folders[view]} has no file for {len(missing)} scene(s) '
                            f'the other views have: {_shown(repr(s) for s in missing)} (e.g. {example})')
    if problems:
        counts = ', '.join(f'{view} {len(scenes)} files in {folders[view]}' for view, scenes in by_view.items())
        raise ValueError(f'{what}: the source view folders do not pair ({counts}):\n  - ' + '\n  - '.join(problems)
                         + '\nSource views pair by name (a view suffix such as _L / _R / _C is ignored).')
    return by_view, sorted(all_scenes, key=natural_key)


def pair_view_files(folders, what='DPDD', pairing='auto'):
    """Scenes (list of ``Scene``), sorted by scene name, from {view: folder}: source views by name, the
    target (view ``gt``) by ``pairing`` (see the module docstring).

    Raises FileNotFoundError for a missing folder and ValueError when the folders do not hold the
    same scenes (different counts, unpaired or duplicate names, targets of other captures), naming
    folders and files."""
    sources = {view: folder for view, folder in folders.items() if view != 'gt'}
    if not sources:
        raise ValueError(f'{what}: no source view folder given (only {", ".join(folders)}).')
    by_view, scenes = _pair_sources_by_name(sources, what)
    paths = [{view: os.path.join(folder, by_view[view][scene]) for view, folder in sources.items()}
             for scene in scenes]
    if 'gt' in folders:
        targets = list_images(folders['gt'], f'{what} gt')
        stems = [os.path.splitext(t)[0] for t in targets]
        pairs = pair_by_rule(scenes, stems, pairing, what=f'{what} ({folders["gt"]} against '
                             f'{next(iter(sources.values()))})')
        for i, j in pairs:
            paths[i]['gt'] = os.path.join(folders['gt'], targets[j])
    return [Scene(scene, {view: p[view] for view in folders}) for scene, p in zip(scenes, paths)]


def check_scene_sizes(scenes, what='DPDD', min_size=None):
    """Check that all views of each scene have one size (and, if given, fit a ``min_size`` crop),
    reading only the image headers. Returns the list of (height, width) per scene."""
    sizes, problems = [], []
    for scene in scenes:
        shapes = {view: read_image_size(path) for view, path in scene.paths.items()}
        if len(set(shapes.values())) > 1:
            problems.append('views of different sizes: ' + ', '.join(
                f'{path} is {shapes[view][0]}x{shapes[view][1]}' for view, path in scene.paths.items()))
        height, width = next(iter(shapes.values()))
        if min_size is not None and min(height, width) < min_size:
            problems.append(f'{next(iter(scene.paths.values()))} is {height}x{width}, smaller than the crop '
                            f'gt_size {min_size}')
        sizes.append((height, width))
        if len(problems) >= _SHOWN:
            break
    if problems:
        raise ValueError(f'{what}:\n  - ' + '\n  - '.join(problems))
    return sizes
