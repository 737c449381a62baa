"""BasicSR's own entry points (`python -m basicsr.train` / `basicsr.test`) with the plugin installed,
and basicsr-vitloss's entry points: outputs under the cwd, resuming, truncated states, test run."""
import re
import shutil
import sysconfig
from pathlib import Path

import pytest
import torch
import yaml

from conftest import run, tiny_options


def _site_packages_outputs():
    site = Path(sysconfig.get_paths()['purelib'])
    return {p for p in (site / n for n in ('experiments', 'tb_logger', 'results')) if p.exists()}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One 6-iteration run of `python -m basicsr.train` in a fresh cwd (shared by the tests below)."""
    cwd = tmp_path_factory.mktemp('train_cwd')
    home = tmp_path_factory.mktemp('home')
    before = _site_packages_outputs()
    opt_file = tiny_options(cwd / 'tiny.yml', **{'train:ema_decay': 0.999})  # keeps the EMA save / resume path tested
    proc = run(['python', '-m', 'basicsr.train', '-opt', opt_file.name], cwd=cwd, HOME=home)
    return cwd, proc, (before, home)


def _log_text(exp):
    return '\n'.join(p.read_text() for p in sorted(exp.glob('train_*.log')))


@pytest.mark.integration
def test_train_writes_everything_under_cwd(trained):
    cwd, proc, (before, home) = trained
    exp = cwd / 'experiments' / 'tiny'
    assert sorted(p.name for p in (exp / 'models').iterdir()) == [
        'net_g_2.pth', 'net_g_4.pth', 'net_g_6.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['2.state', '4.state', '6.state']
    assert any((exp / 'visualization').rglob('*.png')), 'validation images were not saved'
    assert (cwd / 'tb_logger' / 'tiny').is_dir()
    assert _site_packages_outputs() == before, 'BasicSR wrote outputs into site-packages'
    assert not any(home.iterdir()), f'files written into HOME: {list(home.rglob("*"))}'
    assert {p.name for p in cwd.iterdir()} == {'tiny.yml', 'experiments', 'tb_logger'}
    log = _log_text(exp)
    assert len(re.findall(r'# psnr: [\d.]+', log)) >= 3 and len(re.findall(r'# ssim: [\d.]+', log)) >= 3
    saved = torch.load(exp / 'models' / 'net_g_6.pth', map_location='cpu')
    assert set(saved) == {'params', 'params_ema'}
    assert not any(p.name.endswith('.tmp') for p in exp.rglob('*')), 'temporary checkpoint files left behind'


@pytest.mark.integration
def test_auto_resume_continues_from_saved_iteration(trained, tmp_path):
    cwd, _, _ = trained
    work = tmp_path / 'resume'
    shutil.copytree(cwd, work)
    saved_ema = torch.load(work / 'experiments/tiny/models/net_g_6.pth', map_location='cpu')['params_ema']
    proc = run(['python', '-m', 'basicsr.train', '-opt', 'tiny.yml', '--auto_resume', '--force_yml',
                'train:total_iter=8'], cwd=work)
    exp = work / 'experiments' / 'tiny'
    log = _log_text(exp)
    assert 'Resuming training from epoch: 0, iter: 6.' in log
    assert 'with param key: [params_ema]' in log and 'net_g_6.pth' in log  # EMA weights restored
    assert (exp / 'models' / 'net_g_8.pth').is_file() and (exp / 'training_states' / '8.state').is_file()
    state = torch.load(exp / 'training_states' / '8.state', map_location='cpu', weights_only=False)
    assert state['iter'] == 8
    # the optimizer continued: its step counter holds the iterations of both runs
    assert int(next(iter(state['optimizers'][0]['state'].values()))['step']) == 8
    # the MultiStepLR milestone (4) stays passed: lr is halved, not reset to the initial value
    assert state['schedulers'][0]['last_epoch'] == 7
    resumed_ema = torch.load(exp / 'models' / 'net_g_8.pth', map_location='cpu')['params_ema']
    first = next(iter(saved_ema))
    assert not torch.equal(resumed_ema[first], saved_ema[first])
    assert 'Found no NVIDIA driver' not in proc.stderr


@pytest.mark.integration
def test_resume_state_path_option(trained, tmp_path):
    cwd, _, _ = trained
    work = tmp_path / 'resume_path'
    shutil.copytree(cwd, work)
    state = work / 'experiments/tiny/training_states/4.state'
    run(['python', '-m', 'basicsr_vitloss.train', '-opt', 'tiny.yml', '--force_yml',
         f'path:resume_state={state}', 'train:total_iter=5'], cwd=work)
    assert 'Resuming training from epoch: 0, iter: 4.' in _log_text(work / 'experiments' / 'tiny')


@pytest.mark.integration
def test_auto_resume_skips_truncated_newest_state(trained, tmp_path):
    cwd, _, _ = trained
    work = tmp_path / 'truncated'
    shutil.copytree(cwd, work)
    newest = work / 'experiments/tiny/training_states/6.state'
    newest.write_bytes(newest.read_bytes()[:1000])
    proc = run(['python', '-m', 'basicsr.train', '-opt', 'tiny.yml', '--auto_resume'], cwd=work)
    assert f'Skipping unreadable training state {newest}' in proc.stderr
    assert 'Resuming training from epoch: 0, iter: 4.' in _log_text(work / 'experiments' / 'tiny')


@pytest.mark.integration
def test_basicsr_test_entry_runs_on_trained_model(trained, tmp_path):
    cwd, _, _ = trained
    opt = yaml.safe_load((cwd / 'tiny.yml').read_text())
    test_opt = {
        'name': 'tiny_test', 'model_type': 'SRModel', 'scale': 1, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'test_1': opt['datasets']['val']},
        'network_g': opt['network_g'],
        'path': {'pretrain_network_g': str(cwd / 'experiments/tiny/models/net_g_latest.pth'),
                 'param_key_g': 'params_ema', 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'metrics': opt['val']['metrics']},
    }
    (tmp_path / 'test.yml').write_text(yaml.safe_dump(test_opt))
    run(['python', '-m', 'basicsr.test', '-opt', 'test.yml'], cwd=tmp_path)
    results = tmp_path / 'results' / 'tiny_test'
    log = '\n'.join(p.read_text() for p in results.glob('test_*.log'))
    assert re.search(r'# psnr: \d+\.\d+', log) and re.search(r'# ssim: 0\.\d+', log)
    assert len(list((results / 'visualization').rglob('*.png'))) == 2


@pytest.mark.integration
def test_console_script_trains(tmp_path):
    tiny_options(tmp_path / 'tiny.yml', total_iter=2, **{'val:val_freq': 2})
    script = Path(sysconfig.get_paths()['scripts']) / 'basicsr-vitloss-train'
    run([script, '-opt', 'tiny.yml'], cwd=tmp_path)
    assert (tmp_path / 'experiments/tiny/models/net_g_2.pth').is_file()


@pytest.mark.integration
def test_typo_in_type_name_fails_at_once_with_close_matches(tmp_path):
    tiny_options(tmp_path / 'typo.yml', **{'train:pixel_opt:type': 'L1Los'})
    proc = run(['python', '-m', 'basicsr.train', '-opt', 'typo.yml'], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "train:pixel_opt:type: No object named 'L1Los' in BasicSR's loss registry. Did you mean: L1Loss" \
        in proc.stderr
    assert not (tmp_path / 'experiments').exists(), 'an experiment folder was created before the check'


@pytest.mark.integration
def test_missing_options_file_names_the_path(tmp_path):
    proc = run(['python', '-m', 'basicsr.train', '-opt', 'nope.yml'], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and 'Options file not found: nope.yml' in proc.stderr
