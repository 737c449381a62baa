"""Each compat fix: the problem exists on the tested stack (or is simulated), and the fix mends it."""
import importlib.util
import os
import stat

import pytest
import torch

import basicsr_vitloss
import basicsr_vitloss_startup as startup
from basicsr_vitloss import compat
from basicsr_vitloss.compat import atomic_checkpoints, resume
from basicsr_vitloss.utils import distributed
from conftest import run


def _load_alias(name):
    spec = startup.LegacyModuleFinder().find_spec(name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_all_fixes_apply_to_basicsr_1_4_2():
    import basicsr
    if basicsr.__version__ != '1.4.2':
        pytest.skip(f'fix detection is checked against basicsr 1.4.2, found {basicsr.__version__}')
    assert set(compat.applied_fixes()) == {
        'registry_close_matches', 'distributed_backend', 'parallel_wrappers', 'rank_zero_validation',
        'checkpoint_barrier', 'atomic_checkpoints', 'device_agnostic_resume', 'perceptual_l2_criterion',
        'checkpoint_mismatch_hints', 'paired_flip_key', 'niqe_small_images'}


@pytest.mark.integration
def test_functional_tensor_is_gone_and_basicsr_imports_anyway(tmp_path):
    # the problem: current torchvision has no functional_tensor module
    assert importlib.util.find_spec('torchvision.transforms.functional_tensor') is not None  # our alias
    proc = run(['python', '-c', 'import sys, basicsr_vitloss_startup as s; '
                'sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, s.LegacyModuleFinder)]; '
                'import torchvision.transforms.functional_tensor'], cwd=tmp_path, check=False,
               BASICSR_VITLOSS_DISABLE_HOOK=1)
    assert 'No module named' in proc.stderr and proc.returncode != 0
    # the fix: a plain `import basicsr` works, and the alias holds the function basicsr needs
    run(['python', '-c', 'import basicsr.data.degradations as d; assert callable(d.rgb_to_grayscale)'], cwd=tmp_path)
    from torchvision.transforms.functional import rgb_to_grayscale
    assert _load_alias('torchvision.transforms.functional_tensor').rgb_to_grayscale is rgb_to_grayscale


def test_scipy_ndimage_filters_alias_provides_convolve():
    from scipy.ndimage import convolve
    assert _load_alias('scipy.ndimage.filters').convolve is convolve


def test_distutils_alias_compares_versions_like_basicsr_needs():
    version = _load_alias('distutils.version')
    loose = version.LooseVersion
    assert loose('0.29.1') >= loose('0.9.0')  # basicsr/archs/arch_util.py's torchvision check
    assert loose('0.10') > loose('0.9') and loose('1.4.2') == loose('1.4.2') and loose('2.0') < '2.0.1'
    assert loose('2.14.1+cu130') > loose('2.14')


def test_legacy_finder_only_answers_for_missing_modules():
    finder = startup.LegacyModuleFinder()
    assert finder.find_spec('torchvision.transforms.functional') is None
    assert finder.find_spec('numpy') is None


def test_registry_typo_gives_close_matches():
    from basicsr.utils.registry import LOSS_REGISTRY
    with pytest.raises(KeyError, match=r"No object named 'L1Los' in BasicSR's loss registry. Did you mean: L1Loss"):
        LOSS_REGISTRY.get('L1Los')
    with pytest.raises(KeyError, match='Registered names: .*L1Loss'):
        LOSS_REGISTRY.get('zzzzzz')


def test_atomic_save_keeps_old_file_when_saving_fails(tmp_path):
    path = tmp_path / 'net_g_2.pth'
    torch.save({'params': torch.ones(3)}, path)
    with atomic_checkpoints.atomic_torch_save():
        with pytest.raises(Exception):
            torch.save({'params': torch.zeros(10000), 'bad': lambda: 0}, str(path))  # fails while pickling
    assert torch.equal(torch.load(path)['params'], torch.ones(3))
    assert os.listdir(tmp_path) == ['net_g_2.pth'], 'a temporary file was left behind'


def test_stock_save_would_leave_a_truncated_file(tmp_path):
    # the problem the fix removes: a plain torch.save that fails midway destroys the previous file
    path = tmp_path / 'net_g_2.pth'
    torch.save({'params': torch.ones(3)}, path)
    with pytest.raises(Exception):
        torch.save({'params': torch.zeros(10000), 'bad': lambda: 0}, path)
    with pytest.raises(Exception):
        torch.load(path)


def test_atomic_save_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_checkpoints.atomic_torch_save():
            torch.save({'a': 1}, str(tmp_path / 'x.pth'))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'x.pth').st_mode) == 0o644


def test_basicsr_save_methods_are_atomic(tmp_path, monkeypatch):
    from basicsr.models.base_model import BaseModel
    model = BaseModel({'num_gpu': 0, 'is_train': True, 'dist': False, 'path': {'models': str(tmp_path)}})
    net = torch.nn.Linear(2, 2)
    model.save_network(net, 'net_g', 7)
    good = (tmp_path / 'net_g_7.pth').read_bytes()

    def explode(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise OSError('disk full')

    real_atomic_save = atomic_checkpoints.atomic_save
    monkeypatch.setattr(atomic_checkpoints, 'atomic_save',
                        lambda obj, path, _save: real_atomic_save(obj, path, _save=explode))
    monkeypatch.setattr('time.sleep', lambda s: None)
    model.save_network(net, 'net_g', 7)  # BasicSR logs the error and goes on (3 retries)
    assert (tmp_path / 'net_g_7.pth').read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ['net_g_7.pth']


def test_load_training_state_reads_scheduler_counter_on_cpu(tmp_path):
    from collections import Counter
    path = tmp_path / '4.state'
    torch.save({'epoch': 0, 'iter': 4, 'optimizers': [], 'schedulers': [{'milestones': Counter([2, 4])}]}, path)
    state = resume.load_training_state(str(path))
    assert state['iter'] == 4 and state['schedulers'][0]['milestones'] == Counter([2, 4])


def test_load_training_state_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.state'):
        resume.load_training_state(str(tmp_path / 'missing.state'))
    torch.save([1, 2], tmp_path / 'list.state')
    with pytest.raises(ValueError, match='list.state is not a BasicSR training state'):
        resume.load_training_state(str(tmp_path / 'list.state'))


def test_plugin_version_is_exposed():
    assert basicsr_vitloss.__version__.count('.') == 2


needs_cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason='shows a failure of stock BasicSR without CUDA')


@needs_cpu_only
def test_stock_resume_crashes_without_cuda_and_the_fix_does_not(tmp_path):
    from basicsr import train
    path = tmp_path / '2.state'
    torch.save({'epoch': 0, 'iter': 2, 'optimizers': [], 'schedulers': []}, path)
    opt = {'auto_resume': False, 'name': 'x', 'path': {'resume_state': str(path), 'models': str(tmp_path)}}
    with pytest.raises((RuntimeError, AssertionError)):
        train.load_resume_state.__basicsr_original__(dict(opt, path=dict(opt['path'])))
    assert train.load_resume_state(dict(opt, path=dict(opt['path'])))['iter'] == 2


@needs_cpu_only
def test_stock_init_dist_crashes_on_cpu(monkeypatch):
    from basicsr.utils import dist_util
    monkeypatch.setenv('RANK', '0')
    with pytest.raises((ZeroDivisionError, RuntimeError, AssertionError)):
        dist_util.init_dist.__basicsr_original__('pytorch', backend='gloo')
    assert dist_util.init_dist is distributed.init_dist


@needs_cpu_only
def test_stock_ddp_wrapping_crashes_on_cpu():
    from basicsr.models.base_model import BaseModel
    model = BaseModel({'num_gpu': 0, 'is_train': True, 'dist': True})
    with pytest.raises((RuntimeError, AssertionError)):
        BaseModel.model_to_device.__basicsr_original__(model, torch.nn.Linear(2, 2))


def test_fixes_are_not_applied_twice():
    from basicsr.models.base_model import BaseModel
    before = BaseModel.save_network
    compat.apply_all()
    assert BaseModel.save_network is before
    assert compat.is_original(before.__basicsr_original__)


@pytest.mark.integration
def test_perceptual_loss_l2_criterion_is_mse(monkeypatch):
    from basicsr.losses.basic_loss import PerceptualLoss
    from basicsr.archs import vgg_arch
    # a VGG with random weights and no download: stand in for torchvision's constructor
    monkeypatch.setattr(vgg_arch.vgg, 'vgg19', lambda **kwargs: __import__('torchvision').models.vgg19(weights=None))
    with pytest.raises(AttributeError, match='L2loss'):  # the problem
        PerceptualLoss.__init__.__basicsr_original__(PerceptualLoss.__new__(PerceptualLoss), {'conv1_2': 1.0},
                                                     criterion='l2')
    loss = PerceptualLoss({'conv1_2': 1.0}, criterion='l2')
    assert isinstance(loss.criterion, torch.nn.MSELoss) and loss.criterion_type == 'l2'
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    expected = torch.nn.functional.mse_loss(loss.vgg(x)['conv1_2'], loss.vgg(y)['conv1_2'])
    torch.testing.assert_close(loss(x, y)[0], expected)


def _paired_tree(root):
    import cv2
    import numpy as np
    for folder in ('lq', 'gt'):
        (root / folder).mkdir(parents=True)
        cv2.imwrite(str(root / folder / 'a.png'), np.full((32, 32, 3), 100, np.uint8))
    return {'name': 'paired', 'phase': 'train', 'scale': 1, 'io_backend': {'type': 'disk'}, 'filename_tmpl': '{}',
            'dataroot_lq': str(root / 'lq'), 'dataroot_gt': str(root / 'gt'), 'gt_size': 16}


def test_paired_dataset_flip_key(tmp_path):
    import copy
    from basicsr.data.paired_image_dataset import PairedImageDataset
    base = _paired_tree(tmp_path)

    def opt(**changes):  # BasicSR pops io_backend's type: a fresh copy each time
        return dict(copy.deepcopy(base), **changes)

    # the problem: stock builds without use_hflip, then fails on the first sample with a bare KeyError
    stock = PairedImageDataset.__new__(PairedImageDataset)
    PairedImageDataset.__init__.__basicsr_original__(stock, opt())
    with pytest.raises(KeyError, match='use_hflip'):
        stock[0]
    # fixed: reported when built, naming the option; NAFNet's use_flip is accepted
    with pytest.raises(KeyError, match='needs datasets:train:use_hflip and datasets:train:use_rot'):
        PairedImageDataset(opt())
    dataset = PairedImageDataset(opt(use_flip=True, use_rot=False))
    assert dataset.opt['use_hflip'] is True and dataset[0]['gt'].shape == (3, 16, 16)
    assert PairedImageDataset(opt(phase='val'))[0]['gt'].shape == (3, 32, 32)  # validation needs neither


def test_niqe_on_too_small_images_says_what_is_needed():
    import warnings
    import numpy as np
    from basicsr.metrics import calculate_metric
    from basicsr.metrics.niqe import calculate_niqe
    small = (np.random.default_rng(0).random((96, 120, 3)) * 255).astype(np.uint8)
    # the problem: stock NIQE on a single 96x96 block fails deep inside or returns NaN
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            value = calculate_niqe.__basicsr_original__(small, 0)
            assert not np.isfinite(value)
        except np.linalg.LinAlgError:
            pass
    with pytest.raises(ValueError, match=r'NIQE needs at least two 96x96 blocks; this image is 96x120'):
        calculate_metric({'img': small}, {'type': 'calculate_niqe', 'crop_border': 0})
    with pytest.raises(ValueError, match=r'this image is 188x188 after crop_border 4'):
        calculate_niqe(np.zeros((196, 196, 3), np.uint8), 4)
    wide = (np.random.default_rng(1).random((96, 192, 3)) * 255).astype(np.uint8)
    assert np.isfinite(calculate_niqe(wide, 0))


# --------------------------------------------------------------------------- the replaced-attributes registry
def test_every_recorded_replacement_is_in_place():
    from basicsr_vitloss.compat import MARK, recorded_replacements, resolve
    records = recorded_replacements()
    assert records, 'nothing recorded'
    for attribute, replacement, patch in records:
        current, chain = resolve(attribute), []
        while current is not None and current is not replacement:  # a later patch may wrap it (SRModel.test)
            chain.append(current)
            current = getattr(current, '__basicsr_original__', None) if getattr(current, MARK, None) else None
        assert current is replacement, f'{attribute} is not the replacement recorded by {patch}'
        if not attribute.endswith(('__spec__', '__loader__')) and not isinstance(replacement, type(os)):
            assert getattr(replacement, MARK) == patch
    last = {attribute: replacement for attribute, replacement, _ in records}
    for attribute, replacement in last.items():  # the latest replacement is what BasicSR sees
        assert resolve(attribute) is replacement, attribute


def test_replaced_attributes_lists_every_patch_and_its_replacements():
    import basicsr
    rows = compat.replaced_attributes()
    applied = {(row.attribute, row.patch) for row in rows if row.applied}
    recorded = {(attribute, patch) for attribute, _, patch in compat.recorded_replacements()}
    assert applied == recorded
    patches = compat.patches()
    assert {row.patch for row in rows if row.kind in ('fix', 'feature')} == set(patches)
    features = {name for name, patch in patches.items() if patch.kind == 'feature'}
    assert features == {'registry_coexistence', 'tiled_validation', 'float_validation', 'finite_validation',
                        'training_setup', 'training_step'}
    for name in features:  # each enable_* function applied its feature, and every attribute it declares
        assert all(row.applied for row in rows if row.patch == name), name
    if basicsr.__version__ == '1.4.2':
        assert all(row.applied for row in rows if row.kind == 'fix')
    assert ('basicsr.models.sr_model.SRModel.test', 'tiled_validation') in applied
    assert ('basicsr.models.sr_model.SRModel.test', 'training_step') in applied
    assert ('basicsr.models.sr_model.SRModel.nondist_validation', 'float_validation') in applied
    assert ('basicsr.models.sr_model.SRModel.nondist_validation', 'finite_validation') in applied
    assert ('basicsr.__loader__', 'plugin_activation') in applied  # the hook activated the plugin
    assert ('torchvision.transforms.functional_tensor', 'legacy_modules') in applied
    assert {row.patch for row in rows if row.kind == 'startup'} == {'legacy_modules', 'plugin_activation',
                                                                    'entry_point_redirect'}


def test_enable_functions_are_registered_patches():
    from basicsr_vitloss.models.training_setup import enable_training_setup
    from basicsr_vitloss.models.training_step import enable_training_step
    from basicsr_vitloss.utils.finite_validation import enable_finite_validation
    from basicsr_vitloss.utils.float_validation import enable_float_validation
    from basicsr_vitloss.utils.tiling import enable_tiled_validation
    applies = {patch.apply for patch in compat.patches().values()}
    for enable in (enable_tiled_validation, enable_float_validation, enable_finite_validation, enable_training_setup,
                   enable_training_step):
        assert enable.__wrapped__ in applies, enable.__name__
    before = len(compat.recorded_replacements())
    enable_tiled_validation(), enable_training_step()  # once per process
    assert len(compat.recorded_replacements()) == before


def test_replace_refuses_undeclared_attributes(monkeypatch):
    from basicsr.models.sr_model import SRModel
    monkeypatch.setattr(compat, '_PATCHES', {})
    monkeypatch.setattr(compat, '_APPLIED', [])
    monkeypatch.setattr(compat, '_RECORDS', [])
    with pytest.raises(RuntimeError, match='only while a declared patch is applied'):
        compat.replace(SRModel, 'test', lambda self: None)

    @compat.basicsr_feature('sneaky', replaces='basicsr.models.sr_model.SRModel.feed_data')
    def enable_sneaky():
        compat.replace(SRModel, 'test', lambda self: None)

    before = SRModel.test
    with pytest.raises(RuntimeError, match='patch sneaky replaces basicsr.models.sr_model.SRModel.test, which its '
                                           'declaration does not list'):
        enable_sneaky()
    assert SRModel.test is before


def test_moved_names_stay_importable():
    from basicsr_vitloss.compat import NIQE_BLOCK, init_dist, niqe_defined, unknown_name_message  # noqa: F401
    from basicsr_vitloss.metrics import niqe_size
    from basicsr_vitloss.utils import distributed as dist_helpers
    assert niqe_defined is niqe_size.niqe_defined and NIQE_BLOCK == 96 and init_dist is dist_helpers.init_dist
    with pytest.raises(AttributeError):
        compat.no_such_name


@pytest.mark.integration
def test_check_install_prints_the_replaced_attributes(tmp_path):
    from conftest import REPO
    out = run(['python', REPO / 'scripts' / 'check_install.py'], cwd=tmp_path).stdout
    assert 'replaced_attributes' in out
    for row in compat.replaced_attributes():
        assert f'{row.attribute} <- {row.replacement} [{row.patch}, {row.kind}]' in out


# --------------------------------------------------------------------------- a plugin that fails to activate
@pytest.mark.integration
def test_import_basicsr_survives_a_broken_plugin(tmp_path):
    code = '''
import sys, warnings
class Broken:
    def find_spec(self, name, path=None, target=None):
        if name == 'basicsr_vitloss.losses.vit_losses':
            raise ImportError('simulated breakage')
sys.meta_path.insert(0, Broken())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import basicsr
from basicsr.losses import build_loss
from basicsr.utils.registry import LOSS_REGISTRY
assert 'LocalMAEPerceptualLoss' not in LOSS_REGISTRY
build_loss({'type': 'L1Loss'})  # BasicSR's own classes work
try:
    build_loss({'type': 'LocalMAEPerceptualLoss'})
except KeyError as error:
    print('KEYERROR', error)
for w in caught:
    print('WARNING', w.category.__name__, w.message)
'''
    proc = run(['python', '-c', code], cwd=tmp_path)
    warning = [line for line in proc.stdout.splitlines() if line.startswith('WARNING RuntimeWarning')]
    assert len(warning) == 1, proc.stdout + proc.stderr
    assert 'basicsr-vitloss could not be activated (ImportError: simulated breakage; raised at <string>:' \
        in warning[0]
    assert 'BASICSR_VITLOSS_DISABLE_HOOK=1' in warning[0]
    keyerror = [line for line in proc.stdout.splitlines() if line.startswith('KEYERROR')]
    assert keyerror and "No object named 'LocalMAEPerceptualLoss'" in keyerror[0]  # BasicSR's KeyError


def test_docs_compat_table_is_the_generated_one():
    """docs/compat.md holds ``check_install.py --replaced-markdown`` for this process's replacements; regenerate it
    with that command when a patch changes."""
    from conftest import REPO, load_script
    rows = [row._asdict() for row in compat.replaced_attributes()]
    table = load_script('check_install').replaced_markdown(rows)
    assert table in (REPO / 'docs' / 'compat.md').read_text(encoding='utf-8')
