"""scripts/prepare_dpdd.py: DPDD patches (sliding window, sharpness-based discard), on a tiny generated tree."""
import json
import math
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import REPO, load_script, run

SCRIPT = REPO / 'scripts' / 'prepare_dpdd.py'
HEIGHT, WIDTH, PATCH = 150, 230, 64
ARGS = ['--patch-size', str(PATCH), '--overlap', '0.6', '--discard', '0.3']
# stride round(64 * 0.4) = round(25.6) = 26
YS = [0, 26, 52, 78, 86]                      # 78 + 64 = 142 < 150, so a last window at 150 - 64 = 86
XS = [0, 26, 52, 78, 104, 130, 156, 166]      # 156 + 64 = 220 < 230, so a last window at 230 - 64 = 166
PER_SCENE = len(YS) * len(XS)                 # 40
VIEW_DIRS = {'lqL': 'inputL_crops', 'lqR': 'inputR_crops', 'lqC': 'inputC_crops', 'gt': 'target_crops'}




prepare_dpdd = load_script('prepare_dpdd')


def _target(kind, rng, dtype):
    """All-in-focus target: flat (one gray value), noise, or noise in part of the image only.
    'cols': texture only in columns >= 120, so windows at x 0, 26, 52 (ending <= 116) are flat;
    'rows': texture only in rows >= 100, so windows at y 0, 26 (ending <= 90) are flat."""
    top = np.iinfo(dtype).max
    flat = np.full((HEIGHT, WIDTH, 3), top // 3, dtype)
    noise = rng.integers(0, top, (HEIGHT, WIDTH, 3), dtype=dtype, endpoint=True)
    if kind == 'flat':
        return flat
    if kind == 'noise':
        return noise
    if kind == 'cols':
        flat[:, 120:] = noise[:, 120:]
    elif kind == 'rows':
        flat[100:] = noise[100:]
    return flat


def _source_path(root, split, view, scene):
    folder, suffix = {'lqL': ('_l/source', '_L'), 'lqR': ('_r/source', '_R'),
                      'lqC': ('_c/source', ''), 'gt': ('_c/target', '')}[view]
    return root / f'{split}{folder}' / f'{scene}{suffix}.png'


def make_tree(root, kinds, dtype=np.uint16, split='train', seed=0):
    """Official DPDD layout with one scene per entry of ``kinds`` ({scene: target kind}); the blurry
    views are independent noise, so every view and every position is distinguishable."""
    rng = np.random.default_rng(seed)
    for scene, kind in kinds.items():
        images = {'gt': _target(kind, rng, dtype)}
        for view in ('lqL', 'lqR', 'lqC'):
            images[view] = rng.integers(0, np.iinfo(dtype).max, (HEIGHT, WIDTH, 3), dtype=dtype, endpoint=True)
        for view, image in images.items():
            path = _source_path(root, split, view, scene)
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), image)
    return root


KINDS = {'scene1': 'cols', 'scene2': 'noise', 'scene3': 'rows'}
FLAT = {('scene1', k) for k in range(PER_SCENE) if XS[k % len(XS)] + PATCH <= 120} | \
       {('scene3', k) for k in range(PER_SCENE) if YS[k // len(XS)] + PATCH <= 100}


def _argv(dpdd, out, *extra, workers='0'):
    return ['--dpdd', str(dpdd), '--out', str(out), '--splits', 'train', *ARGS, '--workers', workers, *extra]


def _files(out, split='train'):
    """{relative path: (bytes, mtime_ns)} of everything under OUT/<split>."""
    base = out / split
    return {str(p.relative_to(base)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(base.rglob('*'))
            if p.is_file()}


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    """A 16-bit tree of three scenes prepared once, in-process, without worker processes."""
    base = tmp_path_factory.mktemp('dpdd')
    dpdd, out = make_tree(base / 'dpdd', KINDS), base / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    manifest = json.loads((out / 'train' / 'manifest.json').read_text())
    return dpdd, out, manifest


def test_window_positions_by_hand():
    # DPDD: stride round(512 * 0.4) = round(204.8) = 205
    assert prepare_dpdd.window_positions(1120, 512, 0.6) == [0, 205, 410, 608]          # 615 > 608
    assert prepare_dpdd.window_positions(1680, 512, 0.6) == [0, 205, 410, 615, 820, 1025, 1168]
    assert prepare_dpdd.window_positions(HEIGHT, PATCH, 0.6) == YS
    assert prepare_dpdd.window_positions(WIDTH, PATCH, 0.6) == XS
    assert prepare_dpdd.window_positions(512, 512, 0.6) == [0]
    assert prepare_dpdd.window_positions(128, 64, 0.5) == [0, 32, 64]                   # reaches the edge: no duplicate
    assert prepare_dpdd.window_positions(130, 64, 0.0) == [0, 64, 66]
    with pytest.raises(ValueError, match='smaller than the patch size'):
        prepare_dpdd.window_positions(100, 128, 0.6)


def test_patch_sharpness():
    rng = np.random.default_rng(1)
    assert prepare_dpdd.patch_sharpness(np.full((32, 32), 0.7, np.float32)) == 0.0
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    noise = rng.random((32, 32), dtype=np.float32)
    assert 0 < prepare_dpdd.patch_sharpness(ramp) < prepare_dpdd.patch_sharpness(noise)
    # the Sobel operator, over the patch interior
    dx, dy = (cv2.Sobel(noise.astype(np.float64), cv2.CV_64F, *d, ksize=3)[1:-1, 1:-1] for d in ((1, 0), (0, 1)))
    assert prepare_dpdd.patch_sharpness(noise) == pytest.approx(np.mean(np.hypot(dx, dy)), rel=1e-9)
    with pytest.raises(ValueError, match='2-D'):
        prepare_dpdd.patch_sharpness(np.zeros((8, 8, 3)))


def test_counts_and_manifest(prepared):
    dpdd, out, manifest = prepared
    total = len(KINDS) * PER_SCENE                       # 120
    discarded = math.floor(0.3 * total)                  # 36
    assert (manifest['patch_size'], manifest['overlap'], manifest['discard']) == (PATCH, 0.6, 0.3)
    assert len(manifest['patches']) == total
    assert sum(not p['kept'] for p in manifest['patches']) == discarded
    for view, folder in VIEW_DIRS.items():
        names = sorted(os.listdir(out / 'train' / folder))
        assert len(names) == total - discarded, view
        assert names == sorted(f'{p["scene"]}_{p["k"]}.png' for p in manifest['patches'] if p['kept'])
    # row-major windows, same positions in every scene
    for p in manifest['patches']:
        assert (p['y'], p['x']) == (YS[p['k'] // len(XS)], XS[p['k'] % len(XS)])


def test_discards_the_least_sharp_patches(prepared):
    dpdd, out, manifest = prepared
    patches = manifest['patches']
    dropped = {(p['scene'], p['k']) for p in patches if not p['kept']}
    assert len(FLAT) == 31
    assert FLAT <= dropped                               # every flat patch goes ...
    assert all(p['sharpness'] == 0 for p in patches if (p['scene'], p['k']) in FLAT)
    assert not any(p['scene'] == 'scene2' for p in patches if not p['kept'])   # ... and no pure-noise one
    kept_min = min(p['sharpness'] for p in patches if p['kept'])
    assert max(p['sharpness'] for p in patches if not p['kept']) <= kept_min
    # the recorded sharpness is that of the target patch
    bgr = cv2.imread(str(_source_path(dpdd, 'train', 'gt', 'scene1')), cv2.IMREAD_UNCHANGED) / 65535
    gt = cv2.cvtColor(bgr.astype(np.float32), cv2.COLOR_BGR2GRAY)
    p = next(p for p in patches if p['scene'] == 'scene1' and p['k'] == 4)
    assert p['sharpness'] == pytest.approx(
        prepare_dpdd.patch_sharpness(gt[p['y']:p['y'] + PATCH, p['x']:p['x'] + PATCH]), rel=1e-3)


def _check_crops_exact(dpdd, out, manifest, dtype):
    """Compare every kept crop of every view with its source slice; returns how many were compared."""
    sources = {}
    compared = 0
    for p in manifest['patches']:
        if not p['kept']:
            continue
        for view, folder in VIEW_DIRS.items():
            key = (view, p['scene'])
            if key not in sources:
                sources[key] = cv2.imread(str(_source_path(dpdd, 'train', view, p['scene'])), cv2.IMREAD_UNCHANGED)
            crop = cv2.imread(str(out / 'train' / folder / f'{p["scene"]}_{p["k"]}.png'), cv2.IMREAD_UNCHANGED)
            assert crop.dtype == dtype
            np.testing.assert_array_equal(crop, sources[key][p['y']:p['y'] + PATCH, p['x']:p['x'] + PATCH])
            compared += 1
    return compared


def test_crops_are_exact_16bit_slices(prepared):
    dpdd, out, manifest = prepared
    kept = sum(p['kept'] for p in manifest['patches'])
    assert _check_crops_exact(dpdd, out, manifest, np.uint16) == 4 * kept > 0


def test_rerun_writes_nothing_and_other_settings_refuse(tmp_path, capsys):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    first = _files(out)
    capsys.readouterr()
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    summary = capsys.readouterr().out
    assert 'written now 0' in summary and f'skipped {4 * 84}' in summary, summary
    assert _files(out) == first                          # same bytes, same mtimes, no new file

    # an interrupted run: a missing patch is written again, the others are left alone
    missing = out / 'train' / 'inputR_crops' / 'scene2_7.png'
    missing.unlink()
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    assert 'written now 1,' in capsys.readouterr().out
    assert _files(out) == {**first, 'inputR_crops/scene2_7.png': (first['inputR_crops/scene2_7.png'][0],
                                                                  missing.stat().st_mtime_ns)}

    # other settings: refused, nothing touched
    assert prepare_dpdd.main(['--dpdd', str(dpdd), '--out', str(out), '--splits', 'train', '--patch-size',
                              str(PATCH), '--overlap', '0.5', '--discard', '0.3', '--workers', '0']) == 2
    err = capsys.readouterr().err
    assert 'other settings' in err and 'overlap 0.6 there but 0.5 now' in err, err
    assert _files(out)['manifest.json'] == first['manifest.json']
    assert len(_files(out)) == len(first)


def test_changed_source_refuses(tmp_path, capsys):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    # scene2's target becomes flat: the ranking changes, the old patch set must not be extended
    assert cv2.imwrite(str(_source_path(dpdd, 'train', 'gt', 'scene2')), np.zeros((HEIGHT, WIDTH, 3), np.uint16))
    capsys.readouterr()
    assert prepare_dpdd.main(_argv(dpdd, out)) == 2
    assert 'source data changed' in capsys.readouterr().err


def test_ties_break_by_scene_and_index(tmp_path):
    dpdd, out = make_tree(tmp_path / 'dpdd', {'a2': 'flat', 'a10': 'flat'}), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    manifest = json.loads((out / 'train' / 'manifest.json').read_text())
    dropped = [(p['scene'], p['k']) for p in manifest['patches'] if not p['kept']]
    # all sharpness 0: the first floor(0.3 * 80) = 24 in (scene, k) order go, scenes in natural order
    assert dropped == [('a2', k) for k in range(24)]


def test_missing_right_view_is_a_clean_error(tmp_path, capsys):
    dpdd = make_tree(tmp_path / 'dpdd', KINDS)
    _source_path(dpdd, 'train', 'lqR', 'scene2').unlink()
    assert prepare_dpdd.main(_argv(dpdd, tmp_path / 'out')) == 2     # the exit code (sys.exit(main()))
    err = capsys.readouterr().err
    assert "'scene2'" in err and 'lqR folder' in err and 'Traceback' not in err, err
    assert not (tmp_path / 'out' / 'train' / 'manifest.json').exists()


def test_image_smaller_than_patch_names_the_file(tmp_path, capsys):
    dpdd = make_tree(tmp_path / 'dpdd', {'scene1': 'noise'})
    argv = ['--dpdd', str(dpdd), '--out', str(tmp_path / 'out'), '--splits', 'train', '--patch-size', '160',
            '--workers', '0']
    assert prepare_dpdd.main(argv) == 2
    err = capsys.readouterr().err
    assert 'scene1.png is 150x230, smaller than the patch size 160' in err, err


def test_8bit_input(tmp_path):
    dpdd, out = make_tree(tmp_path / 'dpdd', KINDS, dtype=np.uint8), tmp_path / 'out'
    assert prepare_dpdd.main(_argv(dpdd, out)) == 0
    manifest = json.loads((out / 'train' / 'manifest.json').read_text())
    assert FLAT <= {(p['scene'], p['k']) for p in manifest['patches'] if not p['kept']}
    assert _check_crops_exact(dpdd, out, manifest, np.uint8) == 4 * sum(p['kept'] for p in manifest['patches']) > 0


def test_worker_processes_give_the_same_patches(prepared, tmp_path):
    """--workers 2, through the command line, on two splits: the same files as the in-process run."""
    dpdd = tmp_path / 'dpdd'
    shutil.copytree(prepared[0], dpdd)
    for name in ('val_l', 'val_r', 'val_c'):                 # val: the same three scenes
        shutil.copytree(dpdd / name.replace('val', 'train'), dpdd / name)
    out = tmp_path / 'out'
    proc = run(['python', SCRIPT, '--dpdd', dpdd, '--out', out, *ARGS, '--workers', '2'], cwd=REPO)
    assert 'train: 3 scenes, 120 patches, kept 84, discarded 36 (30.0%)' in proc.stdout, proc.stdout
    assert 'val: 3 scenes' in proc.stdout, proc.stdout
    serial = {name: data for name, (data, _) in _files(prepared[1]).items()}
    for split in ('train', 'val'):
        parallel = {name: data for name, (data, _) in _files(out, split).items()}
        if split == 'val':
            serial['manifest.json'] = serial['manifest.json'].replace(b'"split": "train"', b'"split": "val"')
        assert parallel == serial, split
