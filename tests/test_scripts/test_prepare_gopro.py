"""scripts/prepare_gopro.py: GoPro/HIDE official layouts -> input/target folders for PairedImageDataset."""
import importlib
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import load_script

importlib.import_module('basicsr_vitloss')  # compat fixes on basicsr before its dataset is used
from basicsr.data.paired_image_dataset import PairedImageDataset  # noqa: E402

HEIGHT, WIDTH = 96, 130
GOPRO_SCENES = {'train': ['GOPR0372_07_00', 'GOPR0374_11_01'], 'test': ['GOPR0384_11_00']}
FRAMES = ['000047.png', '000048.png']
HIDE_SUBSETS = {'test-close-ups': ['1fromGOPR0950.png', '3fromGOPR1006.png'],
                'test-long-shot': ['5fromGOPR0863.png']}
CROP, OVERLAP = 48, 16
# windows by hand for 96x130 with stride 48 - 16 = 32: regular steps, then one flush with the edge
CROP_YS = [0, 32, 48]          # 0, 32; 64 + 48 > 96, so the last window starts at 96 - 48
CROP_XS = [0, 32, 64, 82]      # 0, 32, 64; 96 + 48 > 130, so the last window starts at 130 - 48


prepare_gopro = load_script('prepare_gopro')


def _main(argv):
    """prepare_gopro.main on the tiny (partial) trees here: --allow-partial."""
    return prepare_gopro.main(list(argv) + ['--allow-partial'])


def _write(path, seed, dtype=np.uint8):
    """A distinct random PNG; the seed makes every file different from every other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    high = 256 if dtype == np.uint8 else 65536
    image = np.random.default_rng(seed).integers(0, high, (HEIGHT, WIDTH, 3), dtype=dtype)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def gopro(tmp_path):
    """A tiny GOPRO_Large; the second train scene is 16-bit to check that pixels are kept as stored."""
    root = tmp_path / 'GOPRO_Large'
    seed = 0
    for split, scenes in GOPRO_SCENES.items():
        for i, scene in enumerate(scenes):
            dtype = np.uint16 if (split, i) == ('train', 1) else np.uint8
            for frame in FRAMES:
                for kind in ('blur', 'blur_gamma', 'sharp'):
                    seed += 1
                    _write(root / split / scene / kind / frame, seed, dtype)
    (root / 'train' / GOPRO_SCENES['train'][0] / 'frames X offset 0.txt').write_text('ignored')
    return root


@pytest.fixture
def hide(tmp_path):
    """A tiny HIDE_dataset; GT also holds a training image with no test partner, as the real one does."""
    root = tmp_path / 'HIDE_dataset'
    seed = 1000
    for subset, names in HIDE_SUBSETS.items():
        for name in names:
            _write(root / 'test' / subset / name, seed := seed + 1)
            _write(root / 'GT' / name, seed := seed + 1)
    _write(root / 'GT' / '9fromGOPR9999.png', 1)
    return root


def _gopro_pairs(root, split, blur='blur'):
    """{output name: (blurry source, sharp source)}."""
    return {f'{scene}-{frame}': (root / split / scene / blur / frame, root / split / scene / 'sharp' / frame)
            for scene in GOPRO_SCENES[split] for frame in FRAMES}


def _hide_pairs(root):
    return {name: (root / 'test' / subset / name, root / 'GT' / name)
            for subset, names in HIDE_SUBSETS.items() for name in names}


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def _check_pairs(out_split, pairs):
    """input/ and target/ list exactly the pairs, each file byte-identical to its source."""
    assert _files(out_split / 'input') == sorted(pairs)
    assert _files(out_split / 'target') == sorted(pairs)
    for name, (blur, sharp) in pairs.items():
        assert (out_split / 'input' / name).read_bytes() == blur.read_bytes(), name
        assert (out_split / 'target' / name).read_bytes() == sharp.read_bytes(), name


def _all_files(root):
    return {p: p.lstat().st_mtime_ns for p in root.rglob('*') if not p.is_dir()}


def test_copy_gopro_and_hide_then_rerun_skips(gopro, hide, tmp_path, capsys):
    out = tmp_path / 'out'
    argv = ['--out', str(out), '--gopro', str(gopro), '--hide', str(hide), '--workers', '2']
    assert _main(argv) == 0
    first = capsys.readouterr().out
    assert 'GoPro train: 4 pairs' in first and 'GoPro test: 2 pairs' in first
    assert 'HIDE test: 3 pairs (2 close-ups, 1 long-shot)' in first
    assert 'files written: 19' in first  # 2 x (4 + 2 + 3) images + subsets.csv
    assert _files(out) == ['GoPro', 'HIDE']
    assert _files(out / 'GoPro') == ['test', 'train']
    _check_pairs(out / 'GoPro' / 'train', _gopro_pairs(gopro, 'train'))
    _check_pairs(out / 'GoPro' / 'test', _gopro_pairs(gopro, 'test'))
    assert _files(out / 'HIDE' / 'test') == ['input', 'subsets.csv', 'target']
    _check_pairs(out / 'HIDE' / 'test', _hide_pairs(hide))
    assert (out / 'HIDE' / 'test' / 'subsets.csv').read_text() == (
        'name,subset\n1fromGOPR0950,close-ups\n3fromGOPR1006,close-ups\n5fromGOPR0863,long-shot\n')
    assert not [p for p in _all_files(out) if p.is_symlink()]

    before = _all_files(out)
    assert _main(argv) == 0
    second = capsys.readouterr().out
    assert 'files written: 0' in second and 'replaced (out of date): 0' in second
    assert f'skipped (already there): {len(before)}' in second
    assert _all_files(out) == before


def test_gopro_blur_gamma_replaces_stale_inputs(gopro, tmp_path):
    out = tmp_path / 'out'
    assert _main(['--out', str(out), '--gopro', str(gopro)]) == 0
    assert _main(['--out', str(out), '--gopro', str(gopro), '--gopro-blur', 'blur_gamma']) == 0
    _check_pairs(out / 'GoPro' / 'train', _gopro_pairs(gopro, 'train', 'blur_gamma'))
    _check_pairs(out / 'GoPro' / 'test', _gopro_pairs(gopro, 'test', 'blur_gamma'))


def test_symlink_mode(gopro, hide, tmp_path):
    out = tmp_path / 'out'
    assert _main(['--out', str(out), '--gopro', str(gopro), '--hide', str(hide),
                               '--mode', 'symlink']) == 0
    for out_split, pairs in ((out / 'GoPro' / 'train', _gopro_pairs(gopro, 'train')),
                             (out / 'GoPro' / 'test', _gopro_pairs(gopro, 'test')),
                             (out / 'HIDE' / 'test', _hide_pairs(hide))):
        assert _files(out_split / 'input') == sorted(pairs)
        for name, (blur, sharp) in pairs.items():
            for link, source in ((out_split / 'input' / name, blur), (out_split / 'target' / name, sharp)):
                assert link.is_symlink(), link
                assert os.readlink(link) == str(source)  # absolute: valid wherever OUT is read from
    before = _all_files(out)
    assert _main(['--out', str(out), '--gopro', str(gopro), '--mode', 'symlink']) == 0
    assert _all_files(out) == before


def test_hardlink_mode(gopro, tmp_path):
    out = tmp_path / 'out'
    assert _main(['--out', str(out), '--gopro', str(gopro), '--mode', 'hardlink']) == 0
    for name, (blur, sharp) in _gopro_pairs(gopro, 'test').items():
        assert os.path.samefile(out / 'GoPro' / 'test' / 'input' / name, blur)
        assert os.path.samefile(out / 'GoPro' / 'test' / 'target' / name, sharp)


def test_crops(gopro, tmp_path, capsys):
    out = tmp_path / 'out'
    argv = ['--out', str(out), '--gopro', str(gopro), '--crop', str(CROP), '--crop-overlap', str(OVERLAP)]
    assert _main(argv) == 0
    assert 'GoPro train crops: 48 pairs of 48x48 (overlap 16) from 4 images' in capsys.readouterr().out
    assert prepare_gopro.crop_windows(HEIGHT, WIDTH, CROP, OVERLAP) == [(y, x) for y in CROP_YS for x in CROP_XS]
    train = out / 'GoPro' / 'train'
    windows = [(y, x) for y in CROP_YS for x in CROP_XS]
    expected = sorted(f'{stem[:-4]}_{k}.png' for stem in _gopro_pairs(gopro, 'train') for k in range(len(windows)))
    assert len(expected) == 4 * 12
    assert _files(train / 'input_crops') == expected
    assert _files(train / 'target_crops') == expected
    for stem, (blur, sharp) in _gopro_pairs(gopro, 'train').items():
        sources = {'input_crops': cv2.imread(str(blur), cv2.IMREAD_UNCHANGED),
                   'target_crops': cv2.imread(str(sharp), cv2.IMREAD_UNCHANGED)}
        for folder, source in sources.items():
            for k, (y, x) in enumerate(windows):
                crop = cv2.imread(str(train / folder / f'{stem[:-4]}_{k}.png'), cv2.IMREAD_UNCHANGED)
                assert crop.dtype == source.dtype
                np.testing.assert_array_equal(crop, source[y:y + CROP, x:x + CROP])
    assert _files(out / 'GoPro' / 'test') == ['input', 'target']  # test is never cropped

    before = _all_files(out)
    assert _main(argv) == 0
    assert 'files written: 0' in capsys.readouterr().out
    assert _all_files(out) == before
    # other crop settings would mix with the existing crops
    assert _main(argv[:-1] + ['8']) == 2
    assert 'crops.json' in capsys.readouterr().err


def test_missing_sharp_file_fails_before_writing(gopro, tmp_path, capsys):
    missing = gopro / 'test' / GOPRO_SCENES['test'][0] / 'sharp' / FRAMES[1]
    missing.unlink()
    out = tmp_path / 'out'
    assert _main(['--out', str(out), '--gopro', str(gopro)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and str(missing.parent.parent / 'blur' / FRAMES[1]) in err
    assert 'Traceback' not in err
    assert not out.exists()


def test_errors_exit_2(gopro, hide, tmp_path, capsys):
    out = str(tmp_path / 'out')

    assert _main(['--out', out, '--gopro', str(tmp_path / 'nowhere')]) == 2
    assert str(tmp_path / 'nowhere') in capsys.readouterr().err

    (hide / 'GT' / HIDE_SUBSETS['test-long-shot'][0]).unlink()
    assert _main(['--out', out, '--hide', str(hide)]) == 2
    assert str(hide / 'GT' / HIDE_SUBSETS['test-long-shot'][0]) in capsys.readouterr().err

    sharp = gopro / 'train' / GOPRO_SCENES['train'][0] / 'sharp' / FRAMES[0]
    assert cv2.imwrite(str(sharp), np.zeros((HEIGHT, WIDTH - 2, 3), np.uint8))
    assert _main(['--out', out, '--gopro', str(gopro)]) == 2
    assert str(sharp) in capsys.readouterr().err

    assert not os.path.exists(out)
    with pytest.raises(SystemExit) as exit_info:  # usage errors: argparse's exit status 2
        prepare_gopro.main(['--out', out])
    assert exit_info.value.code == 2


def test_paired_image_dataset_reads_gopro_test(gopro, tmp_path):
    out = tmp_path / 'out'
    assert _main(['--out', str(out), '--gopro', str(gopro)]) == 0
    test = out / 'GoPro' / 'test'
    dataset = PairedImageDataset({'name': 'GoPro', 'dataroot_gt': str(test / 'target'),
                                  'dataroot_lq': str(test / 'input'), 'io_backend': {'type': 'disk'},
                                  'filename_tmpl': '{}', 'phase': 'val', 'scale': 1})
    pairs = _gopro_pairs(gopro, 'test')
    assert len(dataset) == len(pairs)
    for i in range(len(dataset)):
        item = dataset[i]
        name = os.path.basename(item['lq_path'])
        assert os.path.basename(item['gt_path']) == name
        blur, sharp = pairs[name]
        for key, source in (('lq', blur), ('gt', sharp)):
            expected = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB).transpose(2, 0, 1) / 255.0
            np.testing.assert_allclose(item[key].numpy(), expected, atol=1e-6)


def _community(root, layout='nafnet'):
    """A tiny GoPro in the community's input/target layout, names <scene>-<frame>.png: NAFNet's
    datasets/GoPro/{train,test}/{input,target} or Restormer's Datasets/test/GoPro/{input,target} (train
    from its Downloads/GoPro, here train/GoPro). Returns {split: {name: (input, target)}}."""
    pairs, seed = {}, 2000
    for split, scenes in GOPRO_SCENES.items():
        base = root / split / ('GoPro' if layout == 'restormer' else '')
        pairs[split] = {}
        for scene in scenes:
            for frame in FRAMES:
                name = f'{scene}-{frame}'
                for sub in ('input', 'target'):
                    _write(base / sub / name, seed := seed + 1)
                pairs[split][name] = (base / 'input' / name, base / 'target' / name)
    return pairs


@pytest.mark.parametrize('layout', ['nafnet', 'restormer'])
def test_community_layout_is_read(tmp_path, capsys, layout):
    pairs = _community(tmp_path / 'GoPro', layout)
    hide = tmp_path / 'Datasets' / 'test' / 'HIDE'  # Restormer's HIDE download
    for i, name in enumerate(HIDE_SUBSETS['test-close-ups']):
        for sub in ('input', 'target'):
            _write(hide / sub / name, 3000 + 2 * i + (sub == 'target'))
    out = tmp_path / 'out'
    assert _main(['--out', str(out), '--gopro', str(tmp_path / 'GoPro'), '--hide', str(tmp_path / 'Datasets'),
                  '--crop', str(CROP)]) == 0
    printed = capsys.readouterr().out
    sub = 'GoPro' + os.sep if layout == 'restormer' else ''
    assert f'GoPro test: 2 pairs (input -> input, target -> target) from {tmp_path / "GoPro" / "test"}' \
           f'{os.sep}{sub}{{input,target}} (input/target layout)' in printed
    assert 'HIDE test: 2 pairs from' in printed and 'no subsets.csv written' in printed
    for split in ('train', 'test'):
        _check_pairs(out / 'GoPro' / split, pairs[split])
    assert _files(out / 'GoPro' / 'train' / 'input_crops')[0] == 'GOPR0372_07_00-000047_0.png'
    assert _files(out / 'HIDE' / 'test') == ['input', 'target']
    assert _main(['--out', str(out), '--gopro', str(tmp_path / 'GoPro'), '--gopro-blur', 'blur_gamma']) == 2
    assert 'input/target layout' in capsys.readouterr().err
    # the prepared tree as its own input: refused, nothing replaced by itself
    before = _all_files(out)
    assert _main(['--out', str(out), '--gopro', str(out / 'GoPro'), '--mode', 'symlink']) == 2
    assert 'also the output folders' in capsys.readouterr().err and _all_files(out) == before


def test_partial_release_needs_allow_partial(gopro, hide, tmp_path, capsys):
    """Counts other than the release's stop the run, naming split / scene and how many; --allow-partial
    turns that into a warning."""
    out = tmp_path / 'out'
    argv = ['--out', str(out), '--gopro', str(gopro), '--hide', str(hide)]
    assert prepare_gopro.main(argv) == 2
    err = capsys.readouterr().err
    assert 'not the full release' in err and '--allow-partial' in err
    assert 'GoPro train: scene GOPR0372_07_00 has 2 of 100 images (98 missing)' in err
    assert 'GoPro test: scene GOPR0410_11_00 missing (134 images)' in err
    assert 'HIDE test: 3 of 2025 images (2022 missing)' in err
    assert not out.exists()
    shutil.rmtree(gopro / 'train')
    (gopro / 'train' / 'GoPro' / 'input_crops').mkdir(parents=True)  # Restormer's crops only: no train images
    assert prepare_gopro.main(argv + ['--allow-partial']) == 0
    captured = capsys.readouterr()
    assert 'warning' in captured.err and 'GoPro train: missing (2103 images' in captured.err
    assert 'GoPro train: missing, nothing written' in captured.out
    assert _files(out / 'GoPro') == ['test']


def test_old_underscore_names_are_refused_or_renamed(gopro, tmp_path, capsys):
    """An output folder of an earlier version (<scene>_<frame>) never gets hyphen names beside: refused,
    naming the files; --rename-underscore renames them, and the renamed copies are up to date."""
    out = tmp_path / 'out'
    argv = ['--out', str(out), '--gopro', str(gopro), '--crop', str(CROP)]
    assert _main(argv) == 0
    for folder in ('test/input', 'test/target', 'train/input_crops'):
        for path in (out / 'GoPro' / folder).iterdir():
            path.rename(path.with_name(path.name.replace('-', '_')))
    old = out / 'GoPro' / 'test' / 'input' / f'{GOPRO_SCENES["test"][0]}_{FRAMES[0]}'
    assert old.exists()
    before = _all_files(out)
    assert _main(argv) == 2
    err = capsys.readouterr().err
    assert str(old) in err and '--rename-underscore' in err
    assert _all_files(out) == before  # nothing written
    assert _main(argv + ['--rename-underscore']) == 0
    printed = capsys.readouterr().out
    n_crops = 4 * len(prepare_gopro.crop_windows(HEIGHT, WIDTH, CROP, CROP // 2))  # input crops of 4 images
    assert f'renamed {2 * 2 + n_crops} files' in printed  # and test input + target
    assert 'files written: 0' in printed  # the renamed copies and crops are up to date
    _check_pairs(out / 'GoPro' / 'test', _gopro_pairs(gopro, 'test'))
    assert not [p for p in (out / 'GoPro').rglob('*.png') if '_0000' in p.name]
