"""The main job: the demo options train a deblurring network on CPU with no download."""
import re
import sys

import pytest

from basicsr_vitloss import launch
from conftest import DEMO_OPTIONS, REPO, run


@pytest.mark.parametrize('options', [DEMO_OPTIONS, DEMO_OPTIONS.with_name('defocus_demo_long.yml')])
def test_demo_options_parse_with_basicsr_and_name_registered_types(options, tmp_path, monkeypatch):
    from basicsr.utils.options import parse_options
    monkeypatch.setattr(sys, 'argv', ['train', '-opt', str(options)])
    opt, _ = parse_options(str(tmp_path), is_train=True)
    assert opt['path']['experiments_root'] == str(tmp_path / 'experiments' / options.stem)
    types = {key: name for key, _, name in launch.registered_types(opt)}
    assert types['datasets:train:type'] == 'SyntheticDualPixelDataset'
    assert types['val:metrics:psnr:type'] == 'calculate_psnr'
    assert types['train:perceptual_opt:type'] == 'LocalMAEPerceptualLoss'  # the paper's local ViT loss
    assert opt['val']['save_comparison'] is True
    launch.check_types(opt, str(options))  # raises on an unknown name


def test_quick_demo_is_the_long_one_with_a_small_vit_and_fewer_iterations():
    import yaml
    long_options = DEMO_OPTIONS.with_name('defocus_demo_long.yml')
    quick, long = (yaml.safe_load(p.read_text()) for p in (DEMO_OPTIONS, long_options))
    assert quick['train']['total_iter'] < long['train']['total_iter'] == 2000
    assert quick['train']['perceptual_opt'].pop('backbone_kwargs') == {'embed_dim': 192, 'depth': 5, 'num_heads': 3}
    for key in ('type', 'backbone', 'pretrained', 'layers', 'feature', 'mask_ratio'):  # ViT-B/16 in the long one
        assert quick['train']['perceptual_opt'][key] == long['train']['perceptual_opt'][key]
    assert 'backbone_kwargs' not in long['train']['perceptual_opt']
    assert quick['datasets'] == long['datasets'] and quick['network_g'] == long['network_g']


@pytest.mark.integration
def test_demo_trains_and_psnr_rises_and_ends_with_the_comparison_picture(tmp_path):
    """A shortened demo (same network, data and loss; 150 iterations, smaller validation set)."""
    import cv2
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
    # the picture: one row per validation scene, three 96-px panels side by side; the log ends with its path
    picture = exp / 'comparison.png'
    assert log.strip().splitlines()[-1].endswith(f': {picture}')
    image = cv2.imread(str(picture))
    from basicsr_vitloss.utils.comparison_figure import GAP
    assert image.shape[1] == 3 * 96 + 4 * GAP and image.shape[0] > 3 * 96 + 4 * GAP
    assert not list(exp.glob('.comparison*'))  # written atomically: no temporary file left


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


@pytest.mark.integration
def test_check_install_reports_active_plugin(tmp_path):
    import json
    out = run(['python', REPO / 'scripts' / 'check_install.py', '--json'], cwd=tmp_path).stdout
    report = json.loads(out)
    assert report['plugin_activated_by_import_basicsr'] is True
    assert 'SyntheticDualPixelDataset' in report['plugin_classes']['DATASET_REGISTRY']
    assert report['versions']['basicsr'] is not None
