"""The harness that runs BasicSR source trees without basicsr-vitloss (basicsr_tree.py): it really
blocks the plugin, a pristine 1.4.2 tree fails on this stack exactly where ``--scope compat`` of
basicsr-vitloss-upstream must fix it, and with that one import fixed stock BasicSR trains on the
community GoPro layout and restores its test set."""
import json
import time

import pytest
import torch
import yaml

import basicsr_tree as bt

FUNCTIONAL_TENSOR_ERROR = "ModuleNotFoundError: No module named 'torchvision.transforms.functional_tensor'"


@pytest.fixture
def pristine(tmp_path):
    """A fresh pristine BasicSR 1.4.2 tree."""
    return bt.pristine_tree(tmp_path / 'BasicSR')


@pytest.fixture
def fixed(pristine):
    """A pristine tree with only the functional_tensor import fixed."""
    bt.fix_functional_tensor(pristine)
    return pristine


def _probe(tree, code, name='probe.py', **kwargs):
    (tree / name).write_text(code)
    return bt.run_tree(tree, name, **kwargs)


def test_pristine_tree_is_basicsr_1_4_2_as_released(pristine):
    for name in ('__init__.py', 'train.py', 'test.py', 'version.py'):
        assert (pristine / 'basicsr' / name).is_file(), name
    assert (pristine / 'basicsr' / 'version.py').read_text() == bt.RELEASE_VERSION_PY
    setup_cfg = (pristine / 'setup.cfg').read_text()
    assert bt.SETUP_CFG_STYLE in setup_cfg.replace('\r\n', '\n')
    assert not list(pristine.rglob('__pycache__'))
    print('pristine tree source:', bt.pristine_source())


def test_pristine_trees_are_independent_copies(tmp_path):
    first = bt.pristine_tree(tmp_path / 'a')
    (first / 'basicsr' / 'train.py').write_text('changed')
    second = bt.pristine_tree(tmp_path / 'b')
    assert (second / 'basicsr' / 'train.py').read_text() != 'changed'


def test_a_missing_sdist_named_by_the_variable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(bt.SDIST_VARIABLE, str(tmp_path / 'nowhere.tar.gz'))
    bt._pristine_source.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match=r'\$BASICSR_SDIST is .*nowhere\.tar\.gz.*not a file'):
            bt.pristine_tree(tmp_path / 'tree')
    finally:
        bt._pristine_source.cache_clear()


def test_rebuilt_tree_matches_the_sdist_package(tmp_path, monkeypatch):
    """The fallback (no sdist anywhere) gives the same basicsr/ package as the sdist, when one is here."""
    bt._pristine_source.cache_clear()
    try:
        first = bt.pristine_tree(tmp_path / 'first')
        source = bt.pristine_source()
        monkeypatch.delenv(bt.SDIST_VARIABLE, raising=False)
        monkeypatch.setenv(bt.CI_CACHE_VARIABLE, str(tmp_path / 'empty-cache'))
        bt._pristine_source.cache_clear()
        rebuilt = bt.pristine_tree(tmp_path / 'rebuilt')
        assert bt.pristine_source().startswith('rebuilt from the installed package')
    finally:
        bt._pristine_source.cache_clear()
    assert (rebuilt / 'setup.cfg').read_text() == bt.SETUP_CFG_STYLE
    assert (rebuilt / 'VERSION').read_text().strip() == bt.BASICSR_VERSION
    files = sorted(p.relative_to(rebuilt) for p in (rebuilt / 'basicsr').rglob('*') if p.is_file())
    assert len(files) > 50
    if source.startswith('sdist'):
        assert files == sorted(p.relative_to(first) for p in (first / 'basicsr').rglob('*') if p.is_file())
        for path in files:
            assert (rebuilt / path).read_bytes() == (first / path).read_bytes(), path


def test_prepare_git_checkout_writes_version_py_as_basicsrs_setup_py(tmp_path):
    tree = tmp_path / 'BasicSR'
    (tree / 'basicsr').mkdir(parents=True)
    (tree / 'VERSION').write_text('1.4.2\n')
    assert bt.prepare_git_checkout(tree, sha='abc1234') == '1.4.2'
    namespace = {}
    exec((tree / 'basicsr' / 'version.py').read_text(), namespace)
    assert namespace['__version__'] == '1.4.2' and namespace['__gitsha__'] == 'abc1234'
    assert namespace['version_info'] == (1, 4, 2)
    (tree / 'basicsr' / 'version.py').unlink()
    (tree / 'VERSION').write_text('1.5.0rc1\n')  # non-numeric parts stay strings, as setup.py writes them
    bt.prepare_git_checkout(tree)
    namespace = {}
    exec((tree / 'basicsr' / 'version.py').read_text(), namespace)
    assert namespace['version_info'] == (1, 5, '0rc1') and namespace['__gitsha__'] == 'unknown'  # no .git


def test_prepare_git_checkout_records_the_commit_as_setup_py_does(tmp_path):
    import subprocess
    tree = bt.pristine_tree(tmp_path / 'BasicSR')
    (tree / 'basicsr' / 'version.py').unlink()  # as in a checkout of master
    git = ['git', '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false']
    subprocess.run(['git', 'init', '-q'], cwd=tree, check=True)
    subprocess.run([*git, 'add', '-A'], cwd=tree, check=True)
    subprocess.run([*git, 'commit', '-qm', 'tree'], cwd=tree, check=True)
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=tree, capture_output=True, text=True).stdout.strip()
    assert bt.prepare_git_checkout(tree) == bt.BASICSR_VERSION
    namespace = {}
    exec((tree / 'basicsr' / 'version.py').read_text(), namespace)
    assert namespace['__gitsha__'] == head[:7] and namespace['version_info'] == (1, 4, 2)


def test_the_plugin_is_importable_here_so_blocking_it_means_something():
    import importlib.util
    assert importlib.util.find_spec('basicsr_vitloss') is not None
    assert importlib.util.find_spec('basicsr_vitloss_startup') is not None


@pytest.mark.integration
def test_runner_blocks_the_plugin_and_imports_basicsr_from_the_tree(fixed):
    proc = _probe(fixed, '''
import json, sys
result = {}
for name in ('basicsr_vitloss', 'basicsr_vitloss_startup', 'basicsr_vitloss.losses'):
    try:
        __import__(name)
        result[name] = 'imported'
    except ImportError as error:
        result[name] = type(error).__name__
import basicsr
result['basicsr'] = basicsr.__file__
result['path0'] = sys.path[0]
result['argv0'] = sys.argv[0]
result['hooks'] = [type(f).__name__ for f in sys.meta_path]
print(json.dumps(result))
''')
    bt.assert_ok(proc)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ('basicsr_vitloss', 'basicsr_vitloss_startup', 'basicsr_vitloss.losses'):
        assert result[name] == 'ModuleNotFoundError', name
    assert result['basicsr'] == str(fixed.resolve() / 'basicsr' / '__init__.py')
    assert result['path0'] == str(fixed.resolve()) and result['argv0'].endswith('probe.py')
    assert 'BasicSRImportHook' not in result['hooks'] and 'LegacyModuleFinder' not in result['hooks']


@pytest.mark.integration
def test_runner_fails_loudly_when_the_plugin_gets_imported(fixed):
    """A script that smuggles the plugin in past the blocker is caught after it ran."""
    proc = _probe(fixed, '''
import sys
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != 'BlockPlugin']  # remove the blocker
import basicsr_vitloss_startup
print('imported')
''')
    assert proc.returncode == 3, bt.failure_message(proc)
    assert "run_without_plugin: plugin modules were imported: ['basicsr_vitloss_startup']" in proc.stderr


@pytest.mark.integration
def test_runner_refuses_a_tree_without_basicsr(tmp_path):
    tree = tmp_path / 'empty'
    (tree / 'basicsr').mkdir(parents=True)
    (tree / 'basicsr' / 'train.py').write_text('print("ran")\n')
    proc = bt.run_tree(tree, 'train')
    assert proc.returncode == 3 and 'ran' not in proc.stdout
    assert 'run_without_plugin: basicsr would be imported from' in proc.stderr
    assert 'not from the tree' in proc.stderr


@pytest.mark.integration
def test_pristine_1_4_2_train_fails_on_this_torchvision(pristine, tmp_path):
    """Why basicsr-vitloss-upstream has ``--scope compat``: stock 1.4.2 cannot even be imported with
    torchvision >= 0.17 (basicsr/data/degradations.py imports a module torchvision removed)."""
    options = bt.write_options({'name': 'never'}, tmp_path / 'never.yml')
    proc = bt.run_tree(pristine, 'train', ['-opt', options])
    assert proc.returncode == 1, bt.failure_message(proc)
    assert FUNCTIONAL_TENSOR_ERROR in proc.stderr
    assert f'{pristine.resolve()}/basicsr/data/degradations.py' in proc.stderr
    assert not (pristine / 'experiments').exists()


@pytest.mark.integration
def test_legacy_imports_of_1_4_2_on_this_stack(fixed):
    """Which of stock 1.4.2's legacy imports work here (recorded in basicsr_tree.LEGACY_IMPORTS)."""
    proc = _probe(fixed, '''
import importlib, json, warnings
result = {}
for name in ('torchvision.transforms.functional_tensor', 'scipy.ndimage.filters', 'distutils.version'):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            importlib.import_module(name)
            result[name] = ['ok', sorted({w.category.__name__ for w in caught})]
        except ImportError as error:
            result[name] = ['missing', str(error)]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    from scipy.ndimage.filters import convolve  # what basicsr/metrics/niqe.py imports
    result['convolve'] = sorted({w.category.__name__ for w in caught})
    from distutils.version import LooseVersion  # what basicsr/archs/arch_util.py imports
    import distutils
    result['distutils'] = [distutils.__file__, LooseVersion('0.29.1+cu130') >= LooseVersion('0.9.0'),
                           sorted({w.category.__name__ for w in caught})]
import basicsr.metrics.niqe, basicsr.archs.arch_util  # the modules that import the last two
print(json.dumps(result))
''')
    bt.assert_ok(proc)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(result)
    assert result['torchvision.transforms.functional_tensor'][0] == 'missing'
    assert result['scipy.ndimage.filters'][0] == 'ok'
    assert result['distutils.version'][0] == 'ok'
    assert 'DeprecationWarning' in result['convolve']  # works, deprecated (SciPy 2.0 removes it)
    assert result['distutils'][1] is True  # LooseVersion compares torchvision's version as arch_util does
    for name, (where, status) in bt.LEGACY_IMPORTS.items():
        assert status.startswith('MISSING') == (result[name][0] == 'missing'), name
        assert name.split('.')[0] in (fixed / where).read_text()


#: BasicSR's EDSR as its options/train/EDSR/train_EDSR_Mx2.yml builds it, at scale 1 (MSRResNet has no
#: x1: its __init__ needs upconv1, which only x2-x4 create)
STOCK_NETWORK = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'upscale': 1,
                 'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}


def stock_train_options(name):
    """A stock BasicSR options file in the style of its options/train/SRResNet_SRGAN/train_MSRResNet_x4.yml
    (SRModel, L1Loss, CosineAnnealingRestartLR, EMA), with EDSR, for deblurring (scale 1) on GoPro as
    the community ships it; dataroots under datasets/."""
    return {
        'name': name, 'model_type': 'SRModel', 'scale': 1, 'num_gpu': 1, 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'GoPro', 'type': 'PairedImageDataset', 'dataroot_gt': 'datasets/GoPro/train/target',
                      'dataroot_lq': 'datasets/GoPro/train/input', 'filename_tmpl': '{}',
                      'io_backend': {'type': 'disk'}, 'gt_size': 256, 'use_hflip': True, 'use_rot': True,
                      'num_worker_per_gpu': 6, 'batch_size_per_gpu': 16, 'dataset_enlarge_ratio': 1,
                      'prefetch_mode': None},
            'val': {'name': 'GoPro_test', 'type': 'PairedImageDataset', 'dataroot_gt': 'datasets/GoPro/test/target',
                    'dataroot_lq': 'datasets/GoPro/test/input', 'io_backend': {'type': 'disk'}}},
        'network_g': STOCK_NETWORK,
        'path': {'pretrain_network_g': None, 'param_key_g': 'params', 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0.999,
                  'optim_g': {'type': 'Adam', 'lr': 2e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [250000] * 4,
                                'restart_weights': [1] * 4, 'eta_min': 1e-7},
                  'total_iter': 1000000, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': 5000, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
        'logger': {'print_freq': 100, 'save_checkpoint_freq': 5000, 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }


def stock_test_options(name, train_name):
    return {
        'name': name, 'model_type': 'SRModel', 'scale': 1, 'num_gpu': 1, 'manual_seed': 0,
        'datasets': {'test_1': {'name': 'GoPro_test', 'type': 'PairedImageDataset',
                                'dataroot_gt': 'datasets/GoPro/test/target', 'dataroot_lq': 'datasets/GoPro/test/input',
                                'io_backend': {'type': 'disk'}}},
        'network_g': STOCK_NETWORK,
        'path': {'pretrain_network_g': f'experiments/{train_name}/models/net_g_latest.pth', 'param_key_g': 'params',
                 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
                            'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False}}},
    }


@pytest.mark.integration
def test_stock_1_4_2_with_the_import_fixed_trains_and_tests_on_community_gopro(fixed, tmp_path):
    """Stock SRModel + EDSR (tiny) + L1Loss + PairedImageDataset + CosineAnnealingRestartLR, trained
    2 iterations by the tree's own train.py without the plugin, then test.py restores the test set."""
    from basicsr.archs.edsr_arch import EDSR
    data = tmp_path / 'datasets'
    gopro = bt.make_gopro(data, train=2, test=2)
    train_opt = bt.tiny_overrides(stock_train_options('stock_edsr_gopro'), data)
    assert train_opt['network_g']['num_feat'] == 8 and train_opt['train']['scheduler']['periods'] == [2]
    assert train_opt['datasets']['train']['dataroot_lq'] == str(gopro / 'train' / 'input')
    test_opt = bt.tiny_overrides(stock_test_options('test_stock_edsr_gopro', train_opt['name']), data)
    train_file = bt.write_options(train_opt, tmp_path / 'options' / 'train.yml')
    test_file = bt.write_options(test_opt, tmp_path / 'options' / 'test.yml')

    start = time.perf_counter()
    train = bt.assert_ok(bt.run_tree(fixed, 'train', ['-opt', train_file]))
    train_seconds = time.perf_counter() - start
    experiment = bt.experiment_dir(fixed, train_opt['name'])
    log = bt.logs(experiment, 'train')
    losses = bt.log_losses(log, 'l_pix')
    assert len(losses) == 2 and all(value > 0 for value in losses), log[-3000:]
    assert 'End of training' in log and '# psnr:' in log
    checkpoint = experiment / 'models' / 'net_g_latest.pth'
    assert (experiment / 'models' / 'net_g_2.pth').is_file() and (experiment / 'training_states' / '2.state').is_file()
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    assert set(state) == {'params', 'params_ema'}  # ema_decay 0.999: both, as BasicSR saves them
    net = EDSR(**{k: v for k, v in train_opt['network_g'].items() if k != 'type'})
    net.load_state_dict(state['params'], strict=True)
    assert not (fixed / 'tb_logger').exists()

    start = time.perf_counter()
    test = bt.assert_ok(bt.run_tree(fixed, 'test', ['-opt', test_file]))
    test_seconds = time.perf_counter() - start
    results = bt.results_dir(fixed, test_opt['name'])
    restored = sorted(p.name for p in (results / 'visualization' / 'GoPro_test').glob('*.png'))
    assert restored == sorted(f'{bt.gopro_name(*pair)[:-4]}_{test_opt["name"]}.png' for pair in bt.GOPRO_TEST[:2])
    test_log = bt.logs(results, 'test')
    assert 'Loading EDSR model from' in test_log and '# psnr:' in test_log and '# ssim:' in test_log
    print(f'\nstock BasicSR 1.4.2 without the plugin: train.py 2 iterations {train_seconds:.1f} s, '
          f'test.py 2 images {test_seconds:.1f} s (each includes interpreter and torch start-up)')
    assert train.stdout is not None and test.stdout is not None


def test_tiny_overrides_shrink_a_plugin_options_file(tmp_path):
    """The plugin's DPDD NAFNet +local file, tiny: only existing keys change, plus the ViT's kwargs."""
    from conftest import REPO, TINY_VIT
    original = yaml.safe_load((REPO / 'options' / 'dpdd_dual' / 'nafnet_local.yml').read_text())
    opt = bt.tiny_overrides(original, tmp_path)
    assert opt['num_gpu'] == 0 and opt['network_g']['width'] == 8
    train = opt['datasets']['train']
    assert train['dataroot_gt'] == str(tmp_path / 'DPDD_crops' / 'train' / 'target_crops')
    assert (train['gt_size'], train['batch_size_per_gpu'], train['num_worker_per_gpu']) == (32, 2, 0)
    assert opt['datasets']['val']['dataroot'] == str(tmp_path / 'DPDD')
    assert opt['train']['total_iter'] == 2 and opt['train']['scheduler']['T_max'] == 2
    percep = opt['train']['perceptual_opt']
    assert percep['pretrained'] is False and percep['backbone_kwargs'] == TINY_VIT
    assert opt['val']['val_freq'] == 2 and opt['val']['tile'] == {'size': 32, 'overlap': 8}
    assert opt['logger'] == dict(original['logger'], print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)

    def keys(node, prefix=''):
        if not isinstance(node, dict):
            return set()
        return {prefix + k for k in node} | {x for k, v in node.items() for x in keys(v, f'{prefix}{k}:')}
    assert keys(opt) - keys(original) == {'train:perceptual_opt:backbone_kwargs'} | {
        f'train:perceptual_opt:backbone_kwargs:{k}' for k in TINY_VIT}
    assert original['network_g']['width'] == 32  # the input is not changed (the paper's NAFNet: width 32)

    test = yaml.safe_load((REPO / 'options' / 'test' / 'dpdd_dual' / 'nafnet_local.yml').read_text())
    test = bt.tiny_overrides(test, tmp_path)
    assert set(test['val']['metrics']) == {'psnr', 'ssim', 'mae'}  # LPIPS, NIQE dropped
    assert test['path']['pretrain_network_g'] == 'experiments/dpdd_dual_nafnet_local/models/net_g_latest.pth'


@pytest.mark.parametrize('relative', ['options/gopro/uformer_vgg.yml', 'options/dpdd_single/dpdnet_global.yml',
                                      'options/gopro/restormer_local.yml', 'options/gopro/nafnet_baseline.yml'])
def test_tiny_overrides_fit_the_scheduler_and_data_of_each_network(relative, tmp_path):
    from conftest import REPO
    opt = bt.tiny_overrides(yaml.safe_load((REPO / relative).read_text()), tmp_path, total_iter=3)
    train = opt['train']
    assert train['total_iter'] == 3
    scheduler = train['scheduler']
    assert scheduler.get('periods', [3]) == [3] and scheduler.get('T_max', 3) == 3
    assert all(m <= 3 for m in scheduler.get('milestones', []))
    assert len(scheduler.get('restart_weights', [1])) == len(scheduler.get('periods', [3]))
    data = opt['datasets']['train']
    if 'iters' in data:
        assert (data['iters'], data['gt_sizes'], data['mini_batch_sizes']) == ([3], [32], [2])
    for dataset in opt['datasets'].values():
        for key, value in dataset.items():
            if key.startswith('dataroot'):
                assert value.startswith(str(tmp_path)), (key, value)


def test_data_generators_write_the_release_layouts(tmp_path):
    import cv2
    gopro = bt.make_gopro(tmp_path, train=2, test=2)
    names = sorted(p.name for p in (gopro / 'train' / 'input').iterdir())
    assert names == ['GOPR0372_07_00-000047.png', 'GOPR0372_07_00-000048.png']
    assert names == sorted(p.name for p in (gopro / 'train' / 'target').iterdir())
    lq = cv2.imread(str(gopro / 'test' / 'input' / 'GOPR0384_11_00-000001.png'), cv2.IMREAD_UNCHANGED)
    gt = cv2.imread(str(gopro / 'test' / 'target' / 'GOPR0384_11_00-000001.png'), cv2.IMREAD_UNCHANGED)
    assert lq.shape == gt.shape == (64, 64, 3) and lq.dtype == 'uint8' and (lq != gt).any()
    assert lq.std() < gt.std()  # blurred
    assert sorted(p.name for p in (gopro / 'train' / 'input_crops').iterdir())[0] == 'GOPR0372_07_00-000047_0.png'
    assert sorted(p.name for p in (tmp_path / 'HIDE' / 'test' / 'target').iterdir()) == bt.HIDE_TEST[:2]

    root = bt.make_dpdd(tmp_path / 'datasets')
    gt = cv2.imread(str(next((root / 'DPDD' / 'test_c' / 'target').iterdir())), cv2.IMREAD_UNCHANGED)
    assert gt.dtype == 'uint16' and gt.shape == (64, 64, 3)
    assert len(list((root / 'DPDD_crops' / 'train' / 'inputL_crops').iterdir())) == 2
    assert len(list((root / 'DPDD' / 'val_l' / 'source').iterdir())) == 1


@pytest.mark.integration
@pytest.mark.parametrize('relative', ['options/dpdd_dual/nafnet_local.yml', 'options/dpdd_single/dpdnet_global.yml',
                                      'options/gopro/uformer_vgg.yml'])
def test_tiny_plugin_options_run_with_the_plugin(relative, tmp_path):
    """tiny_overrides + make_dpdd / make_gopro + write_vgg19_weights give runnable options: checked here
    with the plugin installed (``python -m basicsr.train`` / ``basicsr.test``, outputs under the current
    directory), so that a failure of the same options in an upstream tree is the tree's, not the harness's."""
    from conftest import REPO, run
    data = tmp_path / 'datasets'
    bt.make_dpdd(data)
    bt.make_gopro(data)
    train_opt = bt.tiny_overrides(yaml.safe_load((REPO / relative).read_text()), data)
    vgg = bt.write_vgg19_weights(tmp_path) if train_opt['train']['perceptual_opt']['type'] == 'PerceptualLoss' else None
    start = time.perf_counter()
    try:
        run(['python', '-m', 'basicsr.train', '-opt', bt.write_options(train_opt, tmp_path / 'train.yml')],
            cwd=tmp_path)
    finally:
        if vgg is not None:
            vgg.unlink()  # 575 MB: not left in pytest's kept temporary folders
    seconds = time.perf_counter() - start
    experiment = tmp_path / 'experiments' / train_opt['name']
    log = bt.logs(experiment, 'train')
    assert len(bt.log_losses(log, 'l_pix')) == 2 and len(bt.log_losses(log, 'l_percep')) == 2, log[-3000:]
    assert '# psnr:' in log and (experiment / 'models' / 'net_g_latest.pth').is_file()
    test_opt = bt.tiny_overrides(yaml.safe_load((REPO / 'options' / 'test' / relative[len('options/'):]).read_text()),
                                 data)
    run(['python', '-m', 'basicsr.test', '-opt', bt.write_options(test_opt, tmp_path / 'test.yml')], cwd=tmp_path)
    for dataset in test_opt['datasets'].values():  # GoPro: GoPro and HIDE
        folder = tmp_path / 'results' / test_opt['name'] / 'visualization' / dataset['name']
        assert len(list(folder.glob('*.png'))) == 2, folder
    print(f'\n{relative} tiny with the plugin: train.py 2 iterations {seconds:.1f} s')
