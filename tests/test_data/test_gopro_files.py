"""basicsr_vitloss.data.gopro_files and the evaluation's pairing on the real GoPro names (the full lists in
tests/data/gopro_file_lists.json, names only: no images)."""
import json

import pytest

from conftest import REPO

from basicsr_vitloss.data import gopro_files
from basicsr_vitloss.evaluation.errors import EvaluateError
from basicsr_vitloss.evaluation.pairing import pair_files

LISTS = json.loads((REPO / 'tests' / 'data' / 'gopro_file_lists.json').read_text())


def release_stems(split, sep='-'):
    """Every stem of a GoPro split, <scene><sep><frame>, scene by scene."""
    return [f'{scene}{sep}{frame:06d}' for scene, info in LISTS[split].items()
            for frame in range(info['first'], info['first'] + info['count'])]


def test_release_counts_are_the_recorded_lists():
    for split in ('train', 'test'):
        assert gopro_files.GOPRO_RELEASE[split] == {s: info['count'] for s, info in LISTS[split].items()}
    assert gopro_files.GOPRO_TOTALS == {'train': 2103, 'test': 1111}
    assert len(release_stems('train')) == 2103 and len(release_stems('test')) == 1111
    assert gopro_files.HIDE_TEST_TOTAL == LISTS['hide_test_total'] == 2025


def test_spellings():
    assert gopro_files.canonical_stem('GOPR0384_11_00_000001') == 'GOPR0384_11_00-000001'
    assert gopro_files.canonical_stem('GOPR0384_11_00-000001') == 'GOPR0384_11_00-000001'
    assert gopro_files.canonical_stem('GOPR0372_07_00_000047_3') == 'GOPR0372_07_00-000047_3'  # a crop
    assert gopro_files.canonical_stem('GOPR0384_11_00_000001_NAFNet') == 'GOPR0384_11_00-000001_NAFNet'
    for other in ('1P0A0917', '1fromGOPR0950', 'GOPR0384_11_00_0000012', 'GOPR0384_11_00', 'GOPR384_11_00_000001'):
        assert gopro_files.canonical_stem(other) == other  # not a GoPro frame: unchanged
    assert gopro_files.is_underscore_stem('GOPR0384_11_00_000001_0')
    assert not gopro_files.is_underscore_stem('GOPR0384_11_00-000001_0')
    assert gopro_files.parse_stem('GOPR0410_11_00-000136') == ('GOPR0410_11_00', '-', '000136', '')


def test_count_check_on_the_full_lists():
    for split in ('train', 'test'):
        assert gopro_files.gopro_count_problems(split, release_stems(split)) == []
        assert gopro_files.gopro_count_problems(split, release_stems(split, '_')) == []  # either spelling
    test = release_stems('test')
    partial = [s for s in test if not s.startswith('GOPR0862_11_00')][3:]  # no 0862 (77), 3 of 0384_11_00 gone
    assert gopro_files.gopro_count_problems('test', partial) == [
        'GoPro test: scene GOPR0384_11_00 has 97 of 100 images (3 missing)',
        'GoPro test: scene GOPR0862_11_00 missing (77 images)']
    extra = test + ['GOPR0410_11_00-000999', 'GOPR0372_07_00-000047', 'notes']
    assert gopro_files.gopro_count_problems('test', extra) == [
        'GoPro test: scene GOPR0410_11_00 has 135 images, the release has 134 (1 extra)',
        'GoPro test: scene GOPR0372_07_00 (1 images) is not a GoPro test scene',
        'GoPro test: 1 images not named <scene>-<6-digit frame>: notes']
    assert gopro_files.hide_count_problems(2025) == []
    assert gopro_files.hide_count_problems(2000) == ['HIDE test: 2000 of 2025 images (25 missing)']


@pytest.mark.parametrize('suffix', ['', '_Restormer'])
def test_pairing_either_spelling_on_all_1111_test_names(suffix):
    """An official result set (hyphen, optionally BasicSR's _<suffix>) against gt in either spelling, and
    the reverse, pairs every one of the 1111 test images with its own frame, by name."""
    hyphen, underscore = release_stems('test'), release_stems('test', '_')
    for restored_stems, gt_stems in ((hyphen, underscore), (underscore, hyphen), (hyphen, hyphen)):
        restored = [f'r/{s}{suffix}.png' for s in reversed(restored_stems)]  # any listing order
        gt = [f'g/{s}.png' for s in gt_stems]
        for pairing in ('auto', 'name', 'position'):
            pairs, used = pair_files(restored, gt, pairing)
            assert used == ('position' if pairing == 'position' else 'name')
            assert len(pairs) == 1111
            assert all(gopro_files.canonical_stem(r[2:-4 - len(suffix)]) == gopro_files.canonical_stem(g[2:-4])
                       for r, g in pairs)
    # a frame missing from the results is named, never paired shifted
    with pytest.raises(EvaluateError, match='GOPR0410_11_00_000150.png'):
        pair_files([f'r/{s}{suffix}.png' for s in hyphen if s != 'GOPR0410_11_00-000150'],
                   [f'g/{s}.png' for s in underscore])
    # equal counts, one frame swapped for one the gt lacks: refused (a neighbouring frame is another image)
    swapped = [s for s in hyphen if s != 'GOPR0410_11_00-000150'] + ['GOPR0410_11_00-000235']
    with pytest.raises(EvaluateError, match='GOPR0410_11_00-000151.png vs GOPR0410_11_00_000150.png'):
        pair_files([f'r/{s}.png' for s in swapped], [f'g/{s}.png' for s in underscore])
    # both spellings of one frame among the gt: refused, both named
    with pytest.raises(EvaluateError, match='GOPR0384_11_00-000001.png, GOPR0384_11_00_000001.png'):
        pair_files([f'r/{s}.png' for s in hyphen], [f'g/{s}.png' for s in underscore[1:] + hyphen[:1]]
                   + ['g/GOPR0384_11_00_000001.png'])
