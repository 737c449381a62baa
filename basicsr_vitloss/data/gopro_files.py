"""GoPro / HIDE file names and the counts of their releases.

The community's GoPro sets (the test and train downloads of Restormer, MPRNet and NAFNet, and the result
images they release) name a frame ``<scene>-<frame>.png``: ``GOPR0384_11_00-000001.png``, the scene of
GOPRO_Large (``GOPR\\d{4}_\\d{2}_\\d{2}``), a hyphen, the 6-digit frame number GOPRO_Large's file has
(``GOPRO_Large/test/GOPR0384_11_00/blur/000001.png``). Earlier versions of ``scripts/prepare_gopro.py``
wrote ``<scene>_<frame>.png``; ``canonical_stem`` maps both spellings to the hyphen one, which is how the
evaluation pairs them (``basicsr_vitloss/evaluation/pairing.py``).

Release counts (``scripts/prepare_gopro.py`` checks a prepared tree against them):

* GoPro train, 22 scenes, 2103 pairs: per-scene counts and first frames from SRN-Deblur's
  ``datalist_gopro.txt`` (the full GOPRO_Large train list, one line per pair; every scene's frames are
  consecutive).
* GoPro test, 11 scenes, 1111 pairs: scene names as in the test folders of GOPRO_Large; per-scene counts
  (100 each, GOPR0410_11_00 134, GOPR0862_11_00 77) from a public data loader's list of the test
  sequences; they add up to 1111. ``tests/data/gopro_file_lists.json`` records which first frames are
  verified.
* HIDE test: 2025 pairs in all. The split into close-ups and long-shot could not be verified from a
  public list, so only the total is checked.
"""
import re

#: a GoPro frame's stem in either spelling: scene, separator ('-' community, '_' earlier prepare_gopro),
#: 6-digit frame, then anything not a digit (BasicSR's ``_<suffix>``, a crop's ``_<k>``) or nothing
GOPRO_STEM = re.compile(r'(GOPR\d{4}_\d{2}_\d{2})([-_])(\d{6})(?!\d)(.*)', re.DOTALL)

#: {split: {scene: number of pairs}} of GOPRO_Large (see the module docstring for the sources)
GOPRO_RELEASE = {
    'train': {
        'GOPR0372_07_00': 100, 'GOPR0372_07_01': 75, 'GOPR0374_11_00': 150, 'GOPR0374_11_01': 80,
        'GOPR0374_11_02': 100, 'GOPR0374_11_03': 48, 'GOPR0378_13_00': 110, 'GOPR0379_11_00': 100,
        'GOPR0380_11_00': 60, 'GOPR0384_11_01': 100, 'GOPR0384_11_02': 100, 'GOPR0384_11_03': 100,
        'GOPR0384_11_04': 100, 'GOPR0385_11_00': 100, 'GOPR0386_11_00': 100, 'GOPR0477_11_00': 80,
        'GOPR0857_11_00': 100, 'GOPR0868_11_01': 100, 'GOPR0868_11_02': 100, 'GOPR0871_11_01': 100,
        'GOPR0881_11_00': 100, 'GOPR0884_11_00': 100,
    },
    'test': {
        'GOPR0384_11_00': 100, 'GOPR0384_11_05': 100, 'GOPR0385_11_01': 100, 'GOPR0396_11_00': 100,
        'GOPR0410_11_00': 134, 'GOPR0854_11_00': 100, 'GOPR0862_11_00': 77, 'GOPR0868_11_00': 100,
        'GOPR0869_11_00': 100, 'GOPR0871_11_00': 100, 'GOPR0881_11_01': 100,
    },
}
GOPRO_TOTALS = {split: sum(scenes.values()) for split, scenes in GOPRO_RELEASE.items()}  # train 2103, test 1111
#: HIDE's test set (close-ups and long-shot together)
HIDE_TEST_TOTAL = 2025


def parse_stem(stem):
    """(scene, separator, frame, rest) of a GoPro frame's stem in either spelling, or None."""
    match = GOPRO_STEM.fullmatch(stem)
    return match.groups() if match else None


def gopro_stem(scene, frame, rest=''):
    """The community's stem of a GoPro frame: ``GOPR0384_11_00-000001`` (+ ``rest``, e.g. ``_3``)."""
    return f'{scene}-{frame}{rest}'


def canonical_stem(stem):
    """``stem`` with a GoPro scene and its frame joined by '-' (the community's spelling) whichever of
    '-' / '_' joined them; any other stem unchanged (DPDD's ``1P0A0917``, HIDE's ``1fromGOPR0950``)."""
    parts = parse_stem(stem)
    return gopro_stem(parts[0], parts[2], parts[3]) if parts else stem


def is_underscore_stem(stem):
    """Whether ``stem`` is a GoPro frame spelled ``<scene>_<frame>`` (earlier prepare_gopro versions)."""
    parts = parse_stem(stem)
    return parts is not None and parts[1] == '_'


def _missing_or_extra(found, expected):
    if found < expected:
        return f'{found} of {expected} images ({expected - found} missing)'
    return f'{found} images, the release has {expected} ({found - expected} extra)'


def gopro_count_problems(split, stems):
    """What a GoPro ``split`` folder of these image stems lacks (or has beyond) the release: one line per
    missing scene, scene with other counts, scene not in the release and name that is no GoPro frame.
    Works on names alone, so a full release's check costs no image reads."""
    expected = GOPRO_RELEASE[split]
    found, strange = {}, []
    for stem in stems:
        parts = parse_stem(stem)
        if parts is None or parts[3]:
            strange.append(stem)
        else:
            found[parts[0]] = found.get(parts[0], 0) + 1
    problems = []
    for scene, n in expected.items():
        if scene not in found:
            problems.append(f'GoPro {split}: scene {scene} missing ({n} images)')
        elif found[scene] != n:
            problems.append(f'GoPro {split}: scene {scene} has {_missing_or_extra(found[scene], n)}')
    problems += [f'GoPro {split}: scene {scene} ({n} images) is not a GoPro {split} scene'
                 for scene, n in sorted(found.items()) if scene not in expected]
    if strange:
        shown = ', '.join(strange[:5]) + (f' ... ({len(strange)} in all)' if len(strange) > 5 else '')
        problems.append(f'GoPro {split}: {len(strange)} images not named <scene>-<6-digit frame>: {shown}')
    return problems


def hide_count_problems(total):
    """The HIDE test count against the release's 2025 (the close-up / long-shot split is not checked)."""
    if total == HIDE_TEST_TOTAL:
        return []
    return [f'HIDE test: {_missing_or_extra(total, HIDE_TEST_TOTAL)}']
