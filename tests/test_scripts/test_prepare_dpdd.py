"""scripts/prepare_dpdd.py: DPDD patches by DPDNet's official rule (default) and the older split-wide
rule, on tiny generated trees that use the release's real names (targets named by their own capture)."""
import json
import math
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import REPO, dpdd_release_names, load_script, run

SCRIPT = REPO / 'scripts' / 'prepare_dpdd.py'
HEIGHT, WIDTH, PATCH = 150, 230, 64
VIEW_DIRS = {'lqL': 'inputL_crops', 'lqR': 'inputR_crops', 'lqC': 'inputC_crops', 'gt': 'target_crops'}

# official rule, train: stride int(0.4 * 64) = 25; rows 0..75 fit (75 + 64 <= 150), bottom edge 86;
# columns 0..150 fit, right edge 166. The reference's scan takes (0, 166) at column 175, then the
# corner (86, 166) at column 200 (its (0, 166) is taken), so the corner is the 9th window.
OFFICIAL = ([(0, x) for x in range(0, 151, 25)] + [(0, 166), (86, 166)]
            + [(y, x) for y in (25, 50, 75) for x in [*range(0, 151, 25), 166]]
            + [(86, x) for x in range(0, 151, 25)])
PER_SCENE = len(OFFICIAL)                     # 40
DROP = int(0.3 * PER_SCENE)                   # 12 per image

# split-mean-sobel rule: stride round(64 * 0.4) = 26, a last window flush with the edge
YS = [0, 26, 52, 78, 86]
XS = [0, 26, 52, 78, 104, 130, 156, 166]
OLD_ARGS = ['--rule', 'split-mean-sobel', '--patch-size', str(PATCH), '--overlap', '0.6', '--discard', '0.3']

prepare_dpdd = load_script('prepare_dpdd')
NAMES = dpdd_release_names('train', 3)       # [(source, target)], e.g. ('1P0A0890', '1P0A0891')
KINDS = dict(zip((s for s, _ in NAMES), ('cols', 'noise', 'rows')))
TARGETS = dict(NAMES)


def _target(kind, rng, dtype):
    """All-in-focus target: flat, noise, or noise only in columns >= 120 ('cols') / rows >= 100 ('rows')."""
    top = np.iinfo(dtype).max
    flat = np.full((HEIGHT, WIDTH, 3), top // 3, dtype)
    noise = rng.integers(0, top, (HEIGHT, WIDTH, 3), dtype=dtype, endpoint=True)
    if kind == 'noise':
        return noise
    if kind == 'cols':
        flat[:, 120:] = noise[:, 120:]
    elif kind == 'rows':
        flat[100:] = noise[100:]
    return flat


def _source_path(root, split, view, source, target=None):
    folder, suffix = {'lqL': ('_l/source', '_L'), 'lqR': ('_r/source', '_R'),
                      'lqC': ('_c/source', ''), 'gt': ('_c/target', '')}[view]
    return root / f'{split}{folder}' / f'{target if view == "gt" else source}{suffix}.png'


def make_tree(root, kinds, dtype=np.uint16, split='train', seed=0, names=None):
    """Official layout, one scene per entry of ``kinds`` ({source: target kind}), targets named as in the
    release (``names``: {source: target}); the blurry views are independent noise, so every view and
    position is distinguishable."""
    names = names or TARGETS
    rng = np.random.default_rng(seed)
    for source, kind in kinds.items():
        images = {'gt': _target(kind, rng, dtype)}
        for view in ('lqL', 'lqR', 'lqC'):
            images[view] = rng.integers(0, np.iinfo(dtype).max, (HEIGHT, WIDTH, 3), dtype=dtype, endpoint=True)
        for view, image in images.items():
            path = _source_path(root, split, view, source, names[source])
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), image)
    return root


def _argv(dpdd, out, *extra, workers='0', splits=('train',)):
    return ['--dpdd', str(dpdd), '--out', str(out), '--splits', *splits, '--patch-size', str(PATCH),
            '--workers', workers, *extra]


def _files(out, split='train'):
    """{relative path: (bytes, mtime_ns)} of everything under OUT/<split>."""
    base = out / split
    return {str(p.relative_to(base)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(base.rglob('*'))
            if p.is_file()}


def _manifest(out, split='train'):
    return json.loads((out / split / 'manifest.json').read_text())


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    """A 16-bit tree of three real-named scenes prepared once by the default rule, in-process."""
    base = tmp_path_factory.mktemp('dpdd')
    dpdd, out = make_tree(base / 'dpdd', KINDS), base / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    return dpdd, out, _manifest(out)


# ----------------------------------------------------------------------------- windows

def test_official_windows_of_a_dpdd_image():
    assert prepare_dpdd.official_stride(512, 0.6) == 204 and prepare_dpdd.official_stride(512, 0.01) == 506
    windows = prepare_dpdd.official_windows(1120, 1680, 512, 204)
    columns = [0, 204, 408, 612, 816, 1020, 1168]
    assert len(windows) == 28 == len(set(windows))
    assert sorted(windows) == sorted((y, x) for y in (0, 204, 408, 608) for x in columns)
    # the reference's order: the corner comes 8th, taken while the first row is scanned
    assert windows == ([(0, x) for x in columns] + [(608, 1168)] + [(y, x) for y in (204, 408) for x in columns]
                       + [(608, x) for x in columns[:-1]])
    # DPDNet's validation setting: overlap 0.01
    assert prepare_dpdd.official_windows(1120, 1680, 512, 506) == [
        (y, x) for y in (0, 506, 608) for x in (0, 506, 1012, 1168)]


def test_official_windows_small_and_the_repeat_quirk():
    assert prepare_dpdd.official_windows(HEIGHT, WIDTH, PATCH, 25) == OFFICIAL
    # only flush windows are remembered: when size - patch is a multiple of the stride (0 included) a
    # window repeats, as in the reference
    assert prepare_dpdd.official_windows(64, 64, 64, 25) == [(0, 0), (0, 0)]
    assert prepare_dpdd.official_windows(64, 128, 64, 32) == [(0, 0), (0, 32), (0, 64), (0, 64), (0, 0), (0, 32)]
    with pytest.raises(ValueError, match='smaller than the patch size'):
        prepare_dpdd.official_windows(100, 200, 128, 50)


def test_split_mean_sobel_window_positions():
    assert prepare_dpdd.window_positions(1120, 512, 0.6) == [0, 205, 410, 608]
    assert prepare_dpdd.window_positions(HEIGHT, PATCH, 0.6) == YS
    assert prepare_dpdd.window_positions(WIDTH, PATCH, 0.6) == XS
    assert prepare_dpdd.window_positions(128, 64, 0.5) == [0, 32, 64]


# ----------------------------------------------------------------------------- sharpness

def _sobel_kernels(ksize):
    """(smoothing, derivative) 1-D Sobel kernels of size ``ksize``, from binomial coefficients."""
    smooth = np.array([math.comb(ksize - 1, i) for i in range(ksize)], np.float64)
    derivative = np.convolve([math.comb(ksize - 2, i) for i in range(ksize - 1)], [1, -1]).astype(np.float64)
    return smooth, derivative


def _energy(gray, ksize):
    """Independent sum of the Sobel gradient magnitude: separable correlation, reflect-101 border."""
    half = ksize // 2
    padded = np.pad(gray.astype(np.float64), half, mode='reflect')
    smooth, derivative = _sobel_kernels(ksize)

    def correlate(image, kernel, axis):
        moved = np.moveaxis(image, axis, 0)
        out = sum(w * moved[i:i + moved.shape[0] - ksize + 1] for i, w in enumerate(kernel))
        return np.moveaxis(out, 0, axis)
    gx = correlate(correlate(padded, smooth, 0), derivative, 1)
    gy = correlate(correlate(padded, derivative, 0), smooth, 1)
    return np.sqrt(gx ** 2 + gy ** 2).sum()


def _independent_dropped(target_bgr, windows, patch, discard=0.3):
    """Indices of the windows the official rule drops, computed here from the definition."""
    gray = cv2.cvtColor(target_bgr, cv2.COLOR_BGR2GRAY)
    score = np.ones(len(windows))
    for ksize in (3, 7, 11, 15):
        e = np.array([_energy(gray[y:y + patch, x:x + patch], ksize) for y, x in windows])
        span = e.max() - e.min()
        score *= (e - e.min()) / span if span else 0
    order = sorted(range(len(windows)), key=lambda k: (round(score[k], 9), k))   # first minimum first
    return sorted(order[:int(discard * len(windows))]), score


def test_official_sharpness_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 65535, (40, 48), dtype=np.uint16, endpoint=True)
    for ksize in (3, 7, 11, 15):
        assert prepare_dpdd.sobel_energy(gray, ksize) == pytest.approx(_energy(gray, ksize), rel=1e-9), ksize
    assert prepare_dpdd.sobel_energy(np.full((32, 32), 1234, np.uint16), 15) == 0
    energies = {k: rng.random(7) * k for k in (3, 7, 11, 15)}
    expected = np.prod([(e - e.min()) / (e.max() - e.min()) for e in energies.values()], axis=0)
    np.testing.assert_allclose(prepare_dpdd.official_sharpness(energies), expected, rtol=1e-12)
    # a kernel whose sums are all equal (0 / 0 in the reference): every window scores the same
    energies[7] = np.full(7, 5.0)
    assert prepare_dpdd.official_sharpness(energies).tolist() == [0.0] * 7


def test_official_discard_is_per_image_first_minimum_first():
    values = [0.5, 0.0, 0.2, 0.0, 0.0, 0.9, 0.0, 0.1, 0.3, 0.4]
    assert prepare_dpdd.official_dropped(values, 0.3) == [1, 3, 4]              # int(0.3 * 10) = 3 of four zeros
    assert prepare_dpdd.official_dropped([0.0] * 28, 0.3) == list(range(8))    # int(8.4) = 8
    assert prepare_dpdd.official_dropped(values, 0.0) == []


def test_official_rule_on_a_tree(prepared):
    dpdd, out, manifest = prepared
    assert (manifest['rule'], manifest['patch_size'], manifest['overlap'], manifest['discard']) == (
        'official', PATCH, 0.6, 0.3)
    patches = manifest['patches']
    assert len(patches) == 3 * PER_SCENE
    for source, target in NAMES:
        mine = [p for p in patches if p['source'] == source]
        assert [(p['k'], p['y'], p['x']) for p in mine] == [(k, y, x) for k, (y, x) in enumerate(OFFICIAL)]
        assert {p['target'] for p in mine} == {target} != {source}
        dropped = [p['k'] for p in mine if not p['kept']]
        assert len(dropped) == DROP                                             # per image, not per split
        bgr = cv2.imread(str(_source_path(dpdd, 'train', 'gt', source, target)), cv2.IMREAD_UNCHANGED)
        expected, score = _independent_dropped(bgr, OFFICIAL, PATCH)
        assert dropped == expected, source
        np.testing.assert_allclose([p['sharpness'] for p in mine], score, rtol=1e-9, atol=1e-12)
    # 'cols': 15 flat windows (x <= 50) tie at 0: the first 12 in the scan order go
    flat = [k for k, (y, x) in enumerate(OFFICIAL) if x + PATCH <= 120]
    assert len(flat) == 15
    assert [p['k'] for p in patches if p['source'] == NAMES[0][0] and not p['kept']] == flat[:DROP]


def test_crops_are_named_after_sources_and_exact_16bit(prepared):
    dpdd, out, manifest = prepared
    kept = [p for p in manifest['patches'] if p['kept']]
    assert len(kept) == 3 * (PER_SCENE - DROP)
    expected = sorted(f'{p["source"]}_{p["k"]}.png' for p in kept)
    for folder in VIEW_DIRS.values():
        assert sorted(os.listdir(out / 'train' / folder)) == expected, folder
    assert _check_crops_exact(dpdd, out, manifest, np.uint16) == 4 * len(kept)


def _check_crops_exact(dpdd, out, manifest, dtype, split='train', patch=PATCH):
    """Compare every kept crop of every view with its source slice; returns how many were compared."""
    sources, compared = {}, 0
    for p in manifest['patches']:
        if not p['kept']:
            continue
        for view, folder in VIEW_DIRS.items():
            key = (view, p['source'])
            if key not in sources:
                path = _source_path(dpdd, split, view, p['source'], p['target'])
                sources[key] = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            crop = cv2.imread(str(out / split / folder / f'{p["source"]}_{p["k"]}.png'), cv2.IMREAD_UNCHANGED)
            assert crop.dtype == dtype
            np.testing.assert_array_equal(crop, sources[key][p['y']:p['y'] + patch, p['x']:p['x'] + patch])
            compared += 1
    return compared


def test_val_official_and_restormer(tmp_path, capsys):
    names = dict(dpdd_release_names('val', 2))
    dpdd = make_tree(tmp_path / 'dpdd', dict(zip(names, ('noise', 'cols'))), split='val', names=names)
    out = tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out, splits=('val',))) == 0
    manifest = _manifest(out, 'val')
    # DPDNet's val setting: overlap 0.01 (stride int(0.99 * 64) = 63), nothing dropped
    windows = prepare_dpdd.official_windows(HEIGHT, WIDTH, PATCH, 63)
    assert windows == [(y, x) for y in (0, 63, 86) for x in (0, 63, 126, 166)]
    assert (manifest['overlap'], manifest['discard']) == (0.01, 0.0)
    assert [(p['source'], p['y'], p['x']) for p in manifest['patches']] == [
        (s, y, x) for s in names for y, x in windows]
    assert all(p['kept'] and p['target'] == names[p['source']] for p in manifest['patches'])
    assert _check_crops_exact(dpdd, out, manifest, np.uint16, 'val') == 4 * 2 * 12
    assert 'val: 2 scenes, 24 patches, kept 24, discarded 0' in capsys.readouterr().out
    # Restormer: one centre crop per image
    out = tmp_path / 'restormer'
    assert prepare_dpdd.main(_argv(dpdd, out, '--rule', 'restormer', '--val-patch-size', '32', splits=('val',))) == 0
    manifest = _manifest(out, 'val')
    assert [(p['source'], p['y'], p['x']) for p in manifest['patches']] == [(s, 59, 99) for s in names]
    assert _check_crops_exact(dpdd, out, manifest, np.uint16, 'val', patch=32) == 4 * 2


# ----------------------------------------------------------------------------- the split-mean-sobel option

def test_split_mean_sobel_rule_still_works(tmp_path):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out, *OLD_ARGS)) == 0
    manifest = _manifest(out)
    patches = manifest['patches']
    per_scene = len(YS) * len(XS)
    assert manifest['rule'] == 'split-mean-sobel' and len(patches) == 3 * per_scene
    assert sum(not p['kept'] for p in patches) == math.floor(0.3 * 3 * per_scene)     # 36 over the split
    for p in patches:
        assert (p['y'], p['x']) == (YS[p['k'] // len(XS)], XS[p['k'] % len(XS)])
    flat = {(NAMES[0][0], k) for k in range(per_scene) if XS[k % len(XS)] + PATCH <= 120} | \
           {(NAMES[2][0], k) for k in range(per_scene) if YS[k // len(XS)] + PATCH <= 100}
    dropped = {(p['source'], p['k']) for p in patches if not p['kept']}
    assert len(flat) == 31 and flat <= dropped
    assert not any(p['source'] == NAMES[1][0] for p in patches if not p['kept'])      # the all-noise scene
    assert max(p['sharpness'] for p in patches if not p['kept']) <= min(p['sharpness'] for p in patches if p['kept'])
    assert _check_crops_exact(dpdd, out, manifest, np.uint16) == 4 * (3 * per_scene - 36)
    # ties over the split: by scene (natural order), then window
    dpdd2, out2 = make_tree(tmp_path / 'flat', dict.fromkeys(TARGETS, 'cols')), tmp_path / 'out2'
    for source, target in NAMES:   # every target flat
        assert cv2.imwrite(str(_source_path(dpdd2, 'train', 'gt', source, target)),
                           np.full((HEIGHT, WIDTH, 3), 7, np.uint16))
    assert prepare_dpdd.main(_argv(dpdd2, out2, *OLD_ARGS)) == 0
    dropped = [(p['source'], p['k']) for p in _manifest(out2)['patches'] if not p['kept']]
    assert dropped == [(NAMES[0][0], k) for k in range(36)]        # all from the first scene, in window order


# ----------------------------------------------------------------------------- reruns and errors

def test_rerun_writes_nothing_and_other_settings_refuse(tmp_path, capsys):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    first = _files(out)
    capsys.readouterr()
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    summary = capsys.readouterr().out
    kept = 3 * (PER_SCENE - DROP)
    assert 'written now 0' in summary and f'skipped {4 * kept}' in summary, summary
    assert _files(out) == first                          # same bytes, same mtimes, no new file

    # an interrupted run: a missing patch is written again, the others are left alone
    name = f'inputR_crops/{NAMES[1][0]}_39.png'
    missing = out / 'train' / name
    missing.unlink()
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    assert 'written now 1,' in capsys.readouterr().out
    assert _files(out) == {**first, name: (first[name][0], missing.stat().st_mtime_ns)}

    # other settings, or another rule: refused, nothing touched
    assert prepare_dpdd.main(_argv(dpdd, out, '--overlap', '0.5')) == 2
    err = capsys.readouterr().err
    assert 'other settings' in err and 'overlap 0.6 there but 0.5 now' in err, err
    assert prepare_dpdd.main(_argv(dpdd, out, '--rule', 'split-mean-sobel')) == 2
    assert 'rule official there but split-mean-sobel now' in capsys.readouterr().err
    assert _files(out) == {**first, name: (first[name][0], missing.stat().st_mtime_ns)}


def test_changed_source_refuses(tmp_path, capsys):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    # the 'noise' scene's target gets a flat left half: the kept windows change
    path = _source_path(dpdd, 'train', 'gt', *NAMES[1])
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    image[:, :120] = 0
    assert cv2.imwrite(str(path), image)
    capsys.readouterr()
    assert prepare_dpdd.main(_argv(dpdd, out)) == 2
    assert 'source data changed' in capsys.readouterr().err


def test_missing_right_view_is_a_clean_error(tmp_path, capsys):
    dpdd = make_tree(tmp_path / 'dpdd', KINDS)
    _source_path(dpdd, 'train', 'lqR', NAMES[1][0]).unlink()
    assert prepare_dpdd.main(_argv(dpdd, tmp_path / 'out')) == 2
    err = capsys.readouterr().err
    assert repr(NAMES[1][0]) in err and 'lqR folder' in err and 'Traceback' not in err, err
    assert not (tmp_path / 'out' / 'train' / 'manifest.json').exists()


def test_image_smaller_than_patch_names_the_file(tmp_path, capsys):
    dpdd = make_tree(tmp_path / 'dpdd', {NAMES[0][0]: 'noise'})
    argv = ['--dpdd', str(dpdd), '--out', str(tmp_path / 'out'), '--splits', 'train', '--patch-size', '160',
            '--workers', '0']
    assert prepare_dpdd.main(argv) == 2
    err = capsys.readouterr().err
    assert f'{NAMES[0][1]}.png is 150x230, smaller than the patch size 160' in err, err


def test_8bit_input(tmp_path):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS, dtype=np.uint8), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    manifest = _manifest(out)
    assert sum(not p['kept'] for p in manifest['patches']) == 3 * DROP
    assert _check_crops_exact(dpdd, out, manifest, np.uint8) == 4 * 3 * (PER_SCENE - DROP)


@pytest.mark.integration
def test_worker_processes_give_the_same_patches(prepared, tmp_path):
    """--workers 2, through the command line, on two splits: train as the in-process run; val by the
    validation setting."""
    dpdd = tmp_path / 'dpdd'
    shutil.copytree(prepared[0], dpdd)
    for name in ('val_l', 'val_r', 'val_c'):                 # val: the same three scenes
        shutil.copytree(dpdd / name.replace('val', 'train'), dpdd / name)
    out = tmp_path / 'out'
    proc = run(['python', SCRIPT, '--dpdd', dpdd, '--out', out, '--patch-size', str(PATCH), '--workers', '2'],
               cwd=REPO)
    assert f'train: 3 scenes, 120 patches, kept {120 - 3 * DROP}, discarded {3 * DROP} (30.0%)' in proc.stdout, \
        proc.stdout
    assert 'val: 3 scenes, 36 patches, kept 36, discarded 0' in proc.stdout, proc.stdout
    serial = {name: data for name, (data, _) in _files(prepared[1]).items()}
    assert {name: data for name, (data, _) in _files(out).items()} == serial
    assert _check_crops_exact(dpdd, out, _manifest(out, 'val'), np.uint16, 'val') == 4 * 36


@pytest.mark.integration
def test_help_documents_the_rules():
    proc = run(['python', SCRIPT, '--help'], cwd=REPO)
    for flag in ('--rule', 'official', 'split-mean-sobel', 'restormer', '--val-overlap', '--val-patch-size'):
        assert flag in proc.stdout, flag


def test_a_killed_write_leaves_nothing_listed_as_a_patch(prepared, tmp_path):
    """Patches are written under the atomic helper's hidden temporary name: a run killed mid-write leaves a
    hidden file that the dataset's listing (dpdd_files.list_images) skips, like BasicSR's scandir."""
    from basicsr_vitloss.data.dpdd_files import list_images
    from basicsr_vitloss.utils.atomic_write import temporary_path
    _, out, _ = prepared
    folder = tmp_path / 'inputR_crops'
    shutil.copytree(out / 'train' / 'inputR_crops', folder)
    names = list_images(str(folder), 'patches')
    leftover = temporary_path(folder / names[0])
    shutil.copy(folder / names[0], leftover)
    assert os.path.basename(leftover).startswith('.') and leftover.endswith('.png')
    assert list_images(str(folder), 'patches') == names
