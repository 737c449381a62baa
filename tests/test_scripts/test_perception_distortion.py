"""scripts/perception_distortion.py: short runs at several loss weights, CSV and PNG, resuming, bad inputs.

One real sweep (two weights, a few iterations of the tiny options, LPIPS with random AlexNet weights
saved under torchvision's file name) is shared by the tests of this module; the other tests check
what happens around it without training again (the runner is replaced by one that fails the test)."""
import csv
import math
import os
import shutil

import cv2
import pytest
import yaml

from conftest import load_script, tiny_options

pd = load_script('perception_distortion')
WEIGHTS = ('0', '2')
ITERS = 3


def read_rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def args_for(opt, out, *extra, weights=WEIGHTS, iters=ITERS, lpips_weights=None):
    argv = ['--opt', str(opt), '--weights', *weights, '--iters', str(iters), '--out', str(out)]
    if lpips_weights:
        argv += ['--perception', 'lpips', '--lpips-weights', lpips_weights, '--val-images', '1']
    return argv + list(extra)


@pytest.fixture(scope='module')
def swept(tmp_path_factory, lpips_weights):
    """(options file, out folder, argv, exit status) of one real sweep over WEIGHTS."""
    root = tmp_path_factory.mktemp('pd')
    opt = tiny_options(root / 'tiny.yml', name='tiny')
    out = root / 'out'
    argv = args_for(opt, out, lpips_weights=lpips_weights)
    return opt, out, argv, pd.main(argv)


@pytest.mark.integration
def test_sweep_writes_a_row_per_weight_and_a_plot(swept):
    _, out, _, code = swept
    assert code == 0
    rows = read_rows(out / pd.CSV_NAME)
    assert list(rows[0]) == ['weight', 'iters', 'psnr', 'lpips', 'run', 'log', 'options']
    assert [float(r['weight']) for r in rows] == [0.0, 2.0]
    assert [r['run'] for r in rows] == ['tiny_pd_w0', 'tiny_pd_w2']
    for row in rows:
        assert int(row['iters']) == ITERS
        assert math.isfinite(float(row['psnr'])) and 0 < float(row['psnr']) < 100
        assert math.isfinite(float(row['lpips'])) and float(row['lpips']) >= 0
        assert os.path.isfile(row['log']) and os.path.isfile(row['options'])
        assert (out / 'experiments' / row['run'] / 'models' / pd.LATEST).is_file()
    image = cv2.imread(str(out / pd.PNG_NAME))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    assert (image < 128).any() and (image > 200).any()  # drawn on, not blank
    # the CSV's numbers are the final validation of BasicSR's log
    for row in rows:
        assert pd.final_validation(row['log'], ('psnr', 'lpips')) == {
            'psnr': pytest.approx(float(row['psnr'])), 'lpips': pytest.approx(float(row['lpips']))}


def test_weight_zero_run_has_no_perceptual_term(swept):
    _, out, _, _ = swept
    zero = yaml.safe_load((out / 'options' / 'tiny_pd_w0.yml').read_text())
    two = yaml.safe_load((out / 'options' / 'tiny_pd_w2.yml').read_text())
    assert 'perceptual_opt' not in zero['train'] and 'pixel_opt' in zero['train']
    assert two['train']['perceptual_opt']['loss_weight'] == 2.0
    for run in (zero, two):
        assert run['train']['total_iter'] == ITERS
        assert run['val']['val_freq'] == ITERS + 1
        assert set(run['val']['metrics']) == {'psnr', 'lpips'}
        assert run['datasets']['val']['num_samples'] == 1
    # the baseline never built the ViT loss; the other run did
    logs = {row['run']: open(row['log']).read() for row in read_rows(out / pd.CSV_NAME)}
    assert 'LocalMAEPerceptualLoss' not in logs['tiny_pd_w0']
    assert 'Loss [LocalMAEPerceptualLoss] is created' in logs['tiny_pd_w2']


def _never_train(*args, **kwargs):
    raise AssertionError(f'a finished run was trained again: {args}')


def test_rerun_skips_finished_runs(swept, monkeypatch):
    _, out, argv, _ = swept
    before = read_rows(out / pd.CSV_NAME)
    checkpoints = sorted(out.glob('experiments/*/models/*.pth'))
    mtimes = [p.stat().st_mtime_ns for p in checkpoints]
    logs = sorted(out.glob('experiments/*/*.log'))
    monkeypatch.setattr(pd, 'train_run', _never_train)
    assert pd.main(argv) == 0
    assert read_rows(out / pd.CSV_NAME) == before
    assert [p.stat().st_mtime_ns for p in checkpoints] == mtimes
    assert sorted(out.glob('experiments/*/*.log')) == logs


def test_changed_settings_are_refused_before_any_training(swept, monkeypatch, capsys):
    opt, out, argv, _ = swept
    monkeypatch.setattr(pd, 'train_run', _never_train)
    before = read_rows(out / pd.CSV_NAME)
    changed = [a if a != str(ITERS) else str(ITERS + 2) for a in argv]
    assert pd.main(changed) == 2
    err = capsys.readouterr().err
    assert 'tiny_pd_w0' in err and 'tiny_pd_w2' in err and f'train:total_iter: {ITERS} -> {ITERS + 2}' in err
    assert '--rerun-changed' in err
    assert read_rows(out / pd.CSV_NAME) == before  # nothing rewritten


def test_rerun_changed_archives_and_retrains(swept, tmp_path, monkeypatch, capsys):
    _, out, argv, _ = swept
    copy = tmp_path / 'out'
    shutil.copytree(out, copy)
    calls = []

    def failing_run(options_path, cwd, console_path, total_iter, position=1):
        calls.append((options_path, total_iter))
        with open(console_path, 'w') as f:
            f.write('RuntimeError: simulated failure\n')
        return 3

    monkeypatch.setattr(pd, 'train_run', failing_run)
    changed = [str(copy) if a == str(out) else a for a in argv]
    changed[changed.index('--iters') + 1] = str(ITERS + 1)
    assert pd.main(changed + ['--rerun-changed']) == 1
    assert calls == [(str(copy / 'options' / 'tiny_pd_w0.yml'), ITERS + 1)]  # stopped at the first failure
    assert yaml.safe_load((copy / 'options' / 'tiny_pd_w0.yml').read_text())['train']['total_iter'] == ITERS + 1
    assert len(list((copy / 'experiments').glob('tiny_pd_w0_archived_*'))) == 1
    err = capsys.readouterr().err
    assert 'simulated failure' in err and 'exited with status 3' in err


@pytest.mark.integration
def test_failed_run_is_reported_with_its_log_tail(tmp_path, capsys):
    opt = tiny_options(tmp_path / 'tiny.yml', name='broken')
    code = pd.main(['--opt', str(opt), '--weights', '1', '--iters', '2', '--out', str(tmp_path / 'out'),
                    '--force_yml', 'network_g:type=NAFNett'])
    assert code == 1
    err = capsys.readouterr().err
    assert 'broken_pd_w1' in err and 'exited with status' in err
    assert "No object named 'NAFNett'" in err  # the run's own error, from its console tail
    assert not (tmp_path / 'out' / pd.CSV_NAME).exists()


@pytest.mark.parametrize('case', ['missing', 'loss_key', 'negative', 'duplicate', 'iters', 'no_val', 'force_yml'])
def test_bad_inputs_exit_2_with_a_message(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pd, 'train_run', _never_train)
    opt = tiny_options(tmp_path / 'tiny.yml')
    argv = ['--opt', str(opt), '--weights', '0', '1', '--iters', '2', '--out', str(tmp_path / 'out')]
    expected = {
        'missing': (['--opt', str(tmp_path / 'nope.yml')], 'nope.yml'),
        'loss_key': (['--loss-key', 'percep_opt'], "'percep_opt'"),
        'negative': (['--weights', '0', '-0.5'], '-0.5'),
        'duplicate': (['--weights', '1', '1.0'], 'more than once'),
        'iters': (['--iters', '0'], '--iters must be >= 1'),
        'no_val': (['--force_yml', 'datasets:val=~'], 'no validation dataset'),
        'force_yml': (['--force_yml', 'trian:total_iter=3'], 'trian'),
    }
    extra, message = expected[case]
    assert pd.main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err
    if case == 'loss_key':
        assert 'pixel_opt' in err and 'perceptual_opt' in err  # the keys that are there
    if case == 'no_val':
        assert 'datasets' in err
    assert not (tmp_path / 'out').exists()


def test_final_validation_is_the_one_after_the_last_save(tmp_path):
    log = tmp_path / 'train.log'
    in_loop = 'x INFO: Validation Val\n\t # psnr: 20.0000\tBest: 20.0000 @ 2 iter\n\t # niqe: 9.0000\n'
    log.write_text(in_loop)
    assert pd.final_validation(str(log), ('psnr', 'niqe')) is None  # not finished
    log.write_text(in_loop + f'x INFO: {pd.END_MARK}\nx INFO: Validation Val\n'
                   '\t # psnr: 21.5000\tBest: 21.5000 @ 4 iter\n\t # niqe: 8.2500\tBest: 8.2500 @ 4 iter\n\n')
    assert pd.final_validation(str(log), ('psnr', 'niqe')) == {'psnr': 21.5, 'niqe': 8.25}
    assert pd.final_validation(str(log), ('psnr', 'lpips')) is None


def test_relative_paths_become_absolute(tmp_path):
    opt = {'datasets': {'val': {'dataroot_gt': 'datasets/DPDD/test', 'type': 'X', 'name': 'datasets'}},
           'path': {'pretrain_network_g': '~', 'resume_state': None},
           'train': {'perceptual_opt': {'pretrained': 'weights/mae.pth', 'backbone': 'mae'},
                     'other_opt': {'pretrained': True}}}
    pd.absolute_paths(opt, str(tmp_path))
    assert opt['datasets']['val']['dataroot_gt'] == str(tmp_path / 'datasets/DPDD/test')
    assert opt['datasets']['val']['name'] == 'datasets' and opt['train']['perceptual_opt']['backbone'] == 'mae'
    assert opt['train']['perceptual_opt']['pretrained'] == str(tmp_path / 'weights/mae.pth')
    assert opt['path']['pretrain_network_g'] == '~' and opt['train']['other_opt']['pretrained'] is True
