"""Finding and pairing the files of a DPDD-style dataset: one scene = several views of one picture.

Two layouts are understood (see README, "Data"):

* the official DPDD release, ``dataroot: <root>`` and ``split: train|val|test``::

      <root>/<split>_l/source/*_L.png   left dual-pixel view   (lqL)
      <root>/<split>_r/source/*_R.png   right dual-pixel view  (lqR)
      <root>/<split>_c/source/*.png     combined blurry image  (lqC)
      <root>/<split>_c/target/*.png     all-in-focus target    (gt)

* one folder per view, with Restormer's keys ``dataroot_lqL``, ``dataroot_lqR``, ``dataroot_lqC``
  (``dataroot_lq`` is accepted for the combined view) and ``dataroot_gt``, e.g. the crops written by
  ``scripts/prepare_dpdd.py`` (``inputL_crops``, ``inputR_crops``, ``inputC_crops``, ``target_crops``).

Files pair by name: a file's scene name is its stem with the view's own suffix (``_L`` in the left
folder, ``_R`` in the right, ``_C`` in the combined, any case) removed. Every problem (missing
folder, different counts, names that do not pair, views of different sizes) is reported at once with
the offending folders and files.
"""
import os
import re

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
    """Sorted image file names in ``folder``; ``what`` names the folder in errors."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'{what}: folder {folder} does not exist.')
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
                    and os.path.isfile(os.path.join(folder, n))), key=natural_key)
    if not names:
        raise ValueError(f'{what}: folder {folder} has no images ({", ".join(IMAGE_EXTENSIONS)}).')
    return names


def pair_view_files(folders, what='DPDD'):
    """Scenes as a list of {view: path}, sorted by scene name, from {view: folder}.

    Raises FileNotFoundError for a missing folder and ValueError when the folders do not hold the
    same scenes (different counts, unpaired or duplicate names), naming folders and files."""
    by_view = {}
    problems = []
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
            shown = ', '.join(f'{s!r}' for s in missing[:_SHOWN]) + (' ...' if len(missing) > _SHOWN else '')
            example = ', '.join(f'{v}: {n}' for v, n in list(others.items())[:3])
            problems.append(f'{view} folder {folders[view]} has no file for {len(missing)} scene(s) '
                            f'the other views have: {shown} (e.g. {example})')
    if problems:
        counts = ', '.join(f'{view} {len(scenes)} files in {folders[view]}' for view, scenes in by_view.items())
        raise ValueError(f'{what}: the view folders do not pair ({counts}):\n  - ' + '\n  - '.join(problems)
                         + '\nFiles pair by name (a view suffix such as _L / _R / _C is ignored).')
    ordered = sorted(all_scenes, key=natural_key)
    return [{view: os.path.join(folders[view], by_view[view][scene]) for view in folders} for scene in ordered]


def check_scene_sizes(scenes, what='DPDD', min_size=None):
    """Check that all views of each scene have one size (and, if given, fit a ``min_size`` crop),
    reading only the image headers. Returns the list of (height, width) per scene."""
    sizes, problems = [], []
    for scene in scenes:
        shapes = {view: read_image_size(path) for view, path in scene.items()}
        if len(set(shapes.values())) > 1:
            problems.append('views of different sizes: ' + ', '.join(
                f'{path} is {shapes[view][0]}x{shapes[view][1]}' for view, path in scene.items()))
        height, width = next(iter(shapes.values()))
        if min_size is not None and min(height, width) < min_size:
            problems.append(f'{next(iter(scene.values()))} is {height}x{width}, smaller than the crop '
                            f'gt_size {min_size}')
        sizes.append((height, width))
        if len(problems) >= _SHOWN:
            break
    if problems:
        raise ValueError(f'{what}:\n  - ' + '\n  - '.join(problems))
    return sizes
