"""The main job: the demo options train a deblurring network on CPU with no download."""
import re
import sys

import pytest

from basicsr_vitloss import launch
from conftest import DEMO_OPTIONS, REPO, run


def test_demo_options_parse_with_basicsr_and_name_registered_types(tmp_path, monkeypatch):
    from basicsr.utils.options import parse_options
    monkeypatch.setattr(sys, 'argv', ['train', '-opt', str(DEMO_OPTIONS)])
    opt, _ = parse_options(str(tmp_path), is_train=True)
    assert opt['path']['experiments_root'] == str(tmp_path / 'experiments' / 'defocus_demo')
    types = {key: name for key, _, name in launch.registered_types(opt)}
    assert types['datasets:train:type'] == 'SyntheticDualPixelDataset'
    assert types['val:metrics:psnr:type'] == 'calculate_psnr'
    launch.check_types(opt, str(DEMO_OPTIONS))  # raises on an unknown name


def test_demo_trains_and_psnr_rises(tmp_path):
    """A shortened demo (same network, data and loss; 150 iterations, smaller validation set)."""
    proc = run(['python', '-m', 'basicsr.train', '-opt', DEMO_OPTIONS, '--force_yml', 'train:total_iter=150',
                'train:scheduler:periods=[150]', 'val:val_freq=50', 'logger:save_checkpoint_freq=150',
                'datasets:val:num_samples=3', 'datasets:val:gt_size=96'], cwd=tmp_path, timeout=600)
    exp = tmp_path / 'experiments' / 'defocus_demo'
    log = '\n'.join(p.read_text() for p in exp.glob('train_*.log'))
    psnr = [float(v) for v in re.findall(r'# psnr: ([\d.]+)', log)]
    ssim = [float(v) for v in re.findall(r'# ssim: ([\d.]+)', log)]
    assert len(psnr) >= 3 and len(ssim) == len(psnr)
    assert psnr[2] > psnr[0], f'PSNR did not rise over training: {psnr}'
    assert ssim[2] > ssim[0], f'SSIM did not rise over training: {ssim}'
    assert (exp / 'models' / 'net_g_150.pth').is_file() and (exp / 'training_states' / '150.state').is_file()
    assert len(list((exp / 'visualization').rglob('*_150.png'))) == 3
    assert 'Traceback' not in proc.stderr


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / 'README.md').read_text()
    ci = (REPO / '.ci' / 'run').read_text()
    match = re.search(r'<!-- test-command -->\s*```\w*\n(.+?)\n```', readme)
    assert match, 'README lacks the marked test command'
    assert 'test-command' in ci and 'README.md' in ci  # .ci/run reads the command from README
    assert match.group(1).startswith('python -m pytest')


@pytest.mark.parametrize('command', ['python -m basicsr.train -opt options/demo/defocus_demo.yml'])
def test_readme_main_job_exists(command):
    assert command in (REPO / 'README.md').read_text()
    assert (REPO / command.split('-opt ')[1]).is_file()


def test_check_install_reports_active_plugin(tmp_path):
    import json
    out = run(['python', REPO / 'scripts' / 'check_install.py', '--json'], cwd=tmp_path).stdout
    report = json.loads(out)
    assert report['plugin_activated_by_import_basicsr'] is True
    assert 'SyntheticDualPixelDataset' in report['plugin_classes']['DATASET_REGISTRY']
    assert report['versions']['basicsr'] is not None
