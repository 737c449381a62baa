"""Test harness for BasicSR source trees run WITHOUT basicsr-vitloss.

``basicsr-vitloss-upstream`` writes the plugin's code and options into a BasicSR checkout; tests prove
that the result works on its own by running the tree's ``basicsr/train.py`` / ``basicsr/test.py`` in a
subprocess where ``basicsr_vitloss`` and ``basicsr_vitloss_startup`` cannot be imported.

Trees: ``pristine_tree(dest)`` (BasicSR 1.4.2 as released, never downloaded here), ``prepare_git_checkout``
(a checkout of BasicSR master, which has no ``basicsr/version.py``).
Running: ``run_tree(tree, script, args)`` and ``assert_ok(proc)``; where outputs land:
``experiment_dir``, ``results_dir``, ``logs``.
Data in the real release layouts: ``make_gopro`` (community GoPro), ``make_dpdd`` (DPDD as the plugin's
DPDD options read it). Options: ``tiny_overrides(opt, data_root)``, ``write_vgg19_weights(cwd)``.

WHERE OUTPUTS LAND (basicsr 1.4.2's train.py / test.py compute ``root_path`` from ``__file__``: the
folder above ``basicsr/``, i.e. the TREE, whatever the current directory):

- training: ``TREE/experiments/<name>/`` holds ``train_<name>_<time>.log``, the options file copy,
  ``models/net_g_<iter>.pth`` and ``training_states/<iter>.state`` every ``save_checkpoint_freq``,
  ``models/net_g_latest.pth`` (always, at the end of training; keys ``params`` and, with EMA,
  ``params_ema``), ``visualization/<image>/<image>_<iter>.png`` (val images, with ``save_img``); an existing
  ``experiments/<name>`` is renamed to ``<name>_archived_<time>`` first. ``TREE/tb_logger/<name>/``
  only with ``use_tb_logger: true``.
- testing: ``TREE/results/<name>/`` holds ``test_<name>_<time>.log`` and
  ``visualization/<dataset name>/<image>_<suffix or name>.png``.
- relative paths INSIDE the options (``dataroot*``, ``path: pretrain_network_g``) and BasicSR's VGG
  weights file (``experiments/pretrained_models/vgg19-dcbb9e9d.pth``) resolve against the CURRENT
  directory, which ``run_tree`` sets to the tree root unless told otherwise (BasicSR's docs run
  ``python basicsr/train.py -opt options/...`` from the checkout root): with that default, a test
  options file's ``experiments/<train name>/models/net_g_latest.pth`` is the training run's output.
"""
import copy
import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from basicsr_vitloss.upstream.formatting import BASICSR_SETUP_CFG

HERE = Path(__file__).resolve().parent
RUNNER = HERE / 'run_without_plugin.py'

#: the BasicSR release the harness builds trees of
BASICSR_VERSION = '1.4.2'
SDIST_NAME = f'basicsr-{BASICSR_VERSION}.tar.gz'
#: set by .ci/run: the sdist it downloaded into the CI cache
SDIST_VARIABLE = 'BASICSR_SDIST'
#: where .ci/run keeps its cache (and the sdist under sdist/)
CI_CACHE_VARIABLE = 'BASICSR_VITLOSS_CI_CACHE'
DEFAULT_CI_CACHE = Path.home() / '.cache' / 'basicsr-vitloss-ci'

#: BasicSR 1.4.2's code style, as its setup.cfg states it (the sdist's file, these three sections
#: verbatim; recorded once, in the upstream command's formatting module). A tree rebuilt from the
#: installed package gets exactly this setup.cfg; the upstream command's output is checked against it.
SETUP_CFG_STYLE = BASICSR_SETUP_CFG
#: the same settings as values
STYLE = {'max_line_length': 120, 'flake8_ignore': ('W503', 'W504'), 'yapf_based_on_style': 'pep8',
         'yapf_column_limit': 120, 'isort_line_length': 120, 'isort_multi_line_output': 0,
         'isort_known_first_party': 'basicsr'}
#: basicsr/version.py as released in the 1.4.2 sdist (setup.py generated it at release time)
RELEASE_VERSION_PY = """\
# GENERATED VERSION FILE
# TIME: Tue Aug 30 04:33:52 2022
__version__ = '1.4.2'
__gitsha__ = '651835a'
version_info = (1, 4, 2)
"""

#: modules stock basicsr 1.4.2 imports that current stacks moved or deprecated: module -> (where,
#: status on the tested stack: python 3.11, torch 2.14.1, torchvision 0.29.1, scipy 1.17; checked by
#: tests/test_upstream/test_harness.py)
LEGACY_IMPORTS = {
    'torchvision.transforms.functional_tensor': ('basicsr/data/degradations.py',
                                                 'MISSING (removed in torchvision 0.17): import basicsr fails'),
    'scipy.ndimage.filters': ('basicsr/metrics/niqe.py',
                              'works: `from scipy.ndimage.filters import convolve` warns DeprecationWarning '
                              '(SciPy 2.0 removes the module)'),
    'distutils.version': ('basicsr/archs/arch_util.py',
                          "works on Python 3.11: setuptools' copy (its distutils-precedence.pth) or the "
                          "standard library's (Python 3.12 removed it)"),
}
#: the one-line fix tests apply to a pristine tree so that it imports on this stack
FUNCTIONAL_TENSOR_FIX = ('from torchvision.transforms.functional_tensor import rgb_to_grayscale',
                         'from torchvision.transforms.functional import rgb_to_grayscale')

#: the tail of stdout / stderr shown when a run fails
TAIL = 6000


# ---------------------------------------------------------------------------------------------- trees

def _ci_cache_sdist():
    return Path(os.environ.get(CI_CACHE_VARIABLE) or DEFAULT_CI_CACHE) / 'sdist' / SDIST_NAME


def _installed_basicsr():
    import importlib.util
    spec = importlib.util.find_spec('basicsr')
    if spec is None or not spec.origin:
        raise RuntimeError('basicsr is not installed: cannot rebuild a BasicSR source tree without its sdist')
    return Path(spec.origin).parent


def _copy_package(src, dest):
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '*.so', '*.pyd'))


def _extract_sdist(sdist, into):
    with tarfile.open(sdist) as tar:
        kwargs = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
        tar.extractall(into, **kwargs)
    roots = [p for p in Path(into).iterdir() if p.is_dir()]
    if len(roots) != 1 or not (roots[0] / 'basicsr' / 'train.py').is_file():
        raise RuntimeError(f'{sdist} is not a BasicSR sdist (expected one folder holding basicsr/train.py)')
    return roots[0]


@functools.lru_cache(maxsize=None)
def _pristine_source():
    """(folder, how it was made): the pristine tree, made once per process in a temporary folder."""
    cache = Path(tempfile.mkdtemp(prefix='basicsr-pristine-'))
    import atexit
    atexit.register(shutil.rmtree, cache, True)
    variable = os.environ.get(SDIST_VARIABLE)
    if variable:
        if not Path(variable).is_file():
            raise FileNotFoundError(f'${SDIST_VARIABLE} is {variable!r}, which is not a file: point it at '
                                    f'{SDIST_NAME} (.ci/run downloads it into {_ci_cache_sdist().parent}) '
                                    'or unset it to use the CI cache or the installed basicsr')
        return _extract_sdist(variable, cache), f'sdist {variable} (${SDIST_VARIABLE})'
    cached = _ci_cache_sdist()
    if cached.is_file():
        return _extract_sdist(cached, cache), f'sdist {cached} (CI cache)'
    installed = _installed_basicsr()
    import basicsr.version
    if basicsr.version.__version__ != BASICSR_VERSION:
        raise RuntimeError(f'installed basicsr is {basicsr.version.__version__}, not {BASICSR_VERSION}, and no '
                           f'{SDIST_NAME} was found (${SDIST_VARIABLE}, {cached})')
    root = cache / f'basicsr-{BASICSR_VERSION}'
    _copy_package(installed, root / 'basicsr')
    (root / 'basicsr' / 'version.py').write_text(RELEASE_VERSION_PY)
    (root / 'setup.cfg').write_text(SETUP_CFG_STYLE)
    (root / 'VERSION').write_text(BASICSR_VERSION + '\n')
    return root, f'rebuilt from the installed package {installed}'


def pristine_source():
    """How ``pristine_tree`` gets its files: 'sdist PATH ($BASICSR_SDIST)', 'sdist PATH (CI cache)' or
    'rebuilt from the installed package PATH'."""
    return _pristine_source()[1]


def pristine_tree(dest):
    """Write a pristine BasicSR 1.4.2 source tree at ``dest`` (which must not exist) and return it as a
    Path. Never downloads, never skips. Source, first found:

    1. ``$BASICSR_SDIST`` (set by .ci/run): that sdist, extracted; FileNotFoundError if the variable is
       set but names no file;
    2. ``$BASICSR_VITLOSS_CI_CACHE/sdist/basicsr-1.4.2.tar.gz`` (default cache ``~/.cache/basicsr-vitloss-ci``);
    3. the installed ``basicsr`` package (must be 1.4.2): its files copied to ``dest/basicsr`` (no
       ``__pycache__``, no compiled extensions), ``basicsr/version.py`` as released, ``VERSION`` and a
       ``setup.cfg`` with the release's [flake8]/[yapf]/[isort] sections (``SETUP_CFG_STYLE``). This
       tree has no setup.py, README, requirements.txt (the package itself is identical to the sdist's).

    Guaranteed in every case: ``dest/basicsr/{__init__,train,test,version}.py`` as released and
    ``dest/setup.cfg`` with ``SETUP_CFG_STYLE``'s settings. The extraction is done once per process;
    each call copies it, so callers may edit their copy freely. ``pristine_source()`` says which source."""
    source, _ = _pristine_source()
    dest = Path(dest)
    shutil.copytree(source, dest)
    return dest


def git_sha(tree):
    """The short commit id BasicSR's setup.py (``get_hash``) records: ``git rev-parse HEAD``[:7] when
    ``tree/.git`` exists (empty if git fails), else 'unknown'."""
    if not (Path(tree) / '.git').exists():
        return 'unknown'
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=tree, capture_output=True, text=True).stdout
    except OSError:
        return 'unknown'
    return out.strip()[:7]


def prepare_git_checkout(tree, sha=None):
    """Make a git checkout of BasicSR (master has no ``basicsr/version.py``: its setup.py writes it at
    install time) importable from the tree without installing it, and return the version string.

    Writes ``tree/basicsr/version.py`` with the content BasicSR's setup.py (``write_version_py``) gives
    it: the header ``# GENERATED VERSION FILE`` / ``# TIME: <time.asctime()>``, ``__version__`` = the
    stripped text of ``tree/VERSION``, ``__gitsha__`` = ``sha`` (default ``git_sha(tree)``, as setup.py)
    and ``version_info`` = the dot-separated parts, digits as ints and others as strings
    ('1.5.0rc1' -> ``(1, 5, "0rc1")``). An existing version.py is left unchanged (a pristine sdist
    tree has the released one). FileNotFoundError if ``tree/VERSION`` is missing."""
    import time
    tree = Path(tree)
    target = tree / 'basicsr' / 'version.py'
    version = (tree / 'VERSION').read_text().strip()
    if target.exists():
        return version
    sha = git_sha(tree) if sha is None else sha
    info = ', '.join(part if part.isdigit() else f'"{part}"' for part in version.split('.'))
    target.write_text(f"# GENERATED VERSION FILE\n# TIME: {time.asctime()}\n__version__ = '{version}'\n"
                      f"__gitsha__ = '{sha}'\nversion_info = ({info})\n")
    return version


def fix_functional_tensor(tree):
    """Apply ``FUNCTIONAL_TENSOR_FIX`` to ``tree/basicsr/data/degradations.py`` (exactly one occurrence,
    else AssertionError): the only change stock 1.4.2 needs to import with torchvision >= 0.17."""
    path = Path(tree) / 'basicsr' / 'data' / 'degradations.py'
    text = path.read_text()
    old, new = FUNCTIONAL_TENSOR_FIX
    assert text.count(old) == 1, f'{path}: expected one line {old!r}'
    path.write_text(text.replace(old, new))


# -------------------------------------------------------------------------------------------- running

def site_dirs():
    """The site-packages folders of this interpreter's environment (purelib, platlib, user site when
    enabled): what the runner puts on ``sys.path`` after the tree."""
    import site
    dirs = [sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']]
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(dirs))


def run_env(**extra):
    """The environment of a tree run: this one, with tests/conftest.py's OFFLINE_ENV, no PYTHONPATH, the
    plugin hook's switch removed (the plugin is blocked, not switched off), and ``extra``."""
    from conftest import OFFLINE_ENV
    env = dict(os.environ)
    for name in ('PYTHONPATH', 'PYTHONSTARTUP', 'PYTHONHOME', 'BASICSR_VITLOSS_DISABLE_HOOK'):
        env.pop(name, None)
    env.update(OFFLINE_ENV)
    env['PYTHONWARNINGS'] = 'default'
    env['BASICSR_TREE_SITE_DIRS'] = os.pathsep.join(site_dirs())
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_tree(tree, script, args=(), cwd=None, timeout=600, **env):
    """Run ``<tree>/basicsr/<script>.py`` (``script``: 'train', 'test' or a path relative to ``tree``
    or absolute) with ``args`` and return the CompletedProcess (text stdout / stderr captured; not
    checked: see ``assert_ok``).

    The subprocess (this interpreter, ``python -S`` + run_without_plugin.py) guarantees:
    - ``basicsr_vitloss`` and ``basicsr_vitloss_startup`` are NOT importable (a meta-path blocker; the
      plugin's .pth file is not run) - checked before the script starts, and no plugin module may be in
      ``sys.modules`` afterwards; a violation exits with status 3 and a 'run_without_plugin:' line;
    - ``basicsr`` is imported from ``tree`` (checked before and after the script), other packages from
      this environment's site-packages, whose other .pth files are processed;
    - ``sys.path[0]`` is the script's folder and ``sys.argv[0]`` the script, as ``python script.py``;
    - offline: tests/conftest.py's OFFLINE_ENV (HF/torch caches in a temporary folder), no PYTHONPATH.
    ``cwd`` defaults to the tree root (see the module docstring for where outputs land). ``env`` adds
    environment variables."""
    tree = Path(tree).resolve()
    path = Path(script)
    if not path.suffix:
        path = tree / 'basicsr' / f'{script}.py'
    elif not path.is_absolute():
        path = tree / path
    command = [sys.executable, '-S', str(RUNNER), str(tree), str(path), *map(str, args)]
    return subprocess.run(command, cwd=str(cwd or tree), env=run_env(**env), capture_output=True, text=True,
                          timeout=timeout)


def failure_message(proc, what=None):
    """The command, exit status and the tails of stdout and stderr of ``proc``."""
    command = what or ' '.join(map(str, proc.args))
    return (f'{command} exited with {proc.returncode}\n--- stdout (tail) ---\n{proc.stdout[-TAIL:]}\n'
            f'--- stderr (tail) ---\n{proc.stderr[-TAIL:]}')


def assert_ok(proc, what=None):
    """Return ``proc`` if it exited with 0, else raise AssertionError with ``failure_message``."""
    if proc.returncode != 0:
        raise AssertionError(failure_message(proc, what))
    return proc


def experiment_dir(tree, name):
    """``TREE/experiments/<name>``: where train.py writes its log, options copy, models/ and training_states/."""
    return Path(tree) / 'experiments' / name


def results_dir(tree, name):
    """``TREE/results/<name>``: where test.py writes its log and visualization/<dataset name>/."""
    return Path(tree) / 'results' / name


def logs(folder, phase='train'):
    """Text of the ``<phase>_*.log`` files in ``folder`` (oldest name first), joined."""
    return '\n'.join(p.read_text() for p in sorted(Path(folder).glob(f'{phase}_*.log')))


# ----------------------------------------------------------------------------------------------- data

#: GoPro pairs as the community ships GoPro (Restormer / MPRNet / NAFNet downloads): real scenes and
#: frame numbers of GOPRO_Large, named <scene>-<6-digit frame>.png
GOPRO_TRAIN = [('GOPR0372_07_00', 47), ('GOPR0372_07_00', 48), ('GOPR0374_11_00', 1), ('GOPR0378_13_00', 110)]
GOPRO_TEST = [('GOPR0384_11_00', 1), ('GOPR0862_11_00', 1), ('GOPR0881_11_01', 200)]
#: HIDE test images as the community ships HIDE beside GoPro (``HIDE/test/{input,target}/``): real names
HIDE_TEST = ['1fromGOPR0950.png', '3fromGOPR1006.png', '5fromGOPR0863.png']


def gopro_name(scene, frame):
    """The community file name of a GoPro frame: ``GOPR0372_07_00-000047.png``."""
    return f'{scene}-{frame:06d}.png'


def _blurred_pair(rng, height, width):
    """(blurred, sharp) 8-bit BGR arrays: a smooth random picture with edges, blurred horizontally."""
    import cv2
    import numpy as np
    small = rng.random((height // 8 + 1, width // 8 + 1, 3))
    sharp = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)  # blocks: edges
    sharp = (np.clip(sharp * 0.8 + rng.random((height, width, 3)) * 0.2, 0, 1) * 255).astype(np.uint8)
    return cv2.blur(sharp, (9, 1), borderType=cv2.BORDER_REFLECT), sharp


def make_gopro(root, train=2, test=2, size=(64, 64), crops=True, hide=2, seed=0):
    """Write a tiny GoPro in the community layout under ``root`` and return ``root / 'GoPro'``:
    ``GoPro/{train,test}/{input,target}/<scene>-<frame>.png`` (``train`` / ``test`` pairs, at most 4 / 3,
    names from GOPRO_TRAIN / GOPRO_TEST), 8-bit RGB PNGs of ``size`` (H, W); the target is a smooth
    random picture with edges, the input the same picture blurred horizontally (a 9-pixel box: motion
    blur). With ``crops`` also ``GoPro/train/{input,target}_crops/<stem>_0.png`` (one whole-image crop
    per pair, as scripts/prepare_gopro.py --crop names them): the plugin's GoPro options train on those.
    With ``hide`` (at most 3) also ``root/HIDE/test/{input,target}/<n>fromGOPR<nnnn>.png`` (HIDE's real
    names, same kind of pairs): the plugin's GoPro test options restore HIDE too."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    height, width = size
    root = Path(root)
    gopro = root / 'GoPro'
    if hide > len(HIDE_TEST):
        raise ValueError(f'at most {len(HIDE_TEST)} HIDE pairs, not {hide}')
    for name in HIDE_TEST[:hide]:
        blurred, sharp = _blurred_pair(rng, height, width)
        for folder, image in (('input', blurred), ('target', sharp)):
            (root / 'HIDE' / 'test' / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / 'HIDE' / 'test' / folder / name), image)
    folders = ['train/input', 'train/target', 'test/input', 'test/target']
    if crops:
        folders += ['train/input_crops', 'train/target_crops']
    for folder in folders:
        (gopro / folder).mkdir(parents=True, exist_ok=True)
    for split, names, count in (('train', GOPRO_TRAIN, train), ('test', GOPRO_TEST, test)):
        if count > len(names):
            raise ValueError(f'at most {len(names)} {split} pairs, not {count}')
        for scene, frame in names[:count]:
            blurred, sharp = _blurred_pair(rng, height, width)
            name = gopro_name(scene, frame)
            cv2.imwrite(str(gopro / split / 'target' / name), sharp)
            cv2.imwrite(str(gopro / split / 'input' / name), blurred)
            if crops and split == 'train':
                stem = name[:-len('.png')]
                cv2.imwrite(str(gopro / 'train' / 'target_crops' / f'{stem}_0.png'), sharp)
                cv2.imwrite(str(gopro / 'train' / 'input_crops' / f'{stem}_0.png'), blurred)
    return gopro


def make_dpdd(root, train=2, val=1, test=2, size=(64, 64)):
    """Write a tiny DPDD under ``root`` in the layouts the plugin's DPDD options read (dataroots
    ``datasets/DPDD_crops/train/...`` and ``datasets/DPDD`` with ``split: val|test``) and return ``root``:

    - ``DPDD_crops/train/{inputL,inputR,inputC,target}_crops/<source>_0.png`` (scripts/prepare_dpdd.py's
      crops), ``train`` scenes;
    - ``DPDD/{val,test}_{l,r,c}/source/<source>[_L|_R].png`` and ``DPDD/{val,test}_c/target/<target>.png``:
      the release's layout and REAL names (targets numbered by their own capture), ``val`` / ``test`` scenes.
    16-bit RGB PNGs of ``size`` (H, W), written by tests/conftest.py's make_dpdd_tree."""
    from conftest import make_dpdd_tree
    root = Path(root)
    make_dpdd_tree(root / 'DPDD_crops', layout='crops', split='train', scenes=train, size=size)
    for split, scenes in (('val', val), ('test', test)):
        make_dpdd_tree(root / 'DPDD', layout='official', split=split, scenes=scenes, size=size)
    return root


@functools.lru_cache(maxsize=None)
def _random_vgg19_file():
    import atexit

    import torch
    import torchvision
    folder = Path(tempfile.mkdtemp(prefix='basicsr-vgg19-'))
    atexit.register(shutil.rmtree, folder, True)
    torch.manual_seed(0)
    path = folder / VGG19_FILE
    torch.save(torchvision.models.vgg19(weights=None).state_dict(), path)
    return path


VGG19_FILE = 'vgg19-dcbb9e9d.pth'
#: where basicsr 1.4.2's VGGFeatureExtractor looks first, relative to the current directory
VGG19_PATH = f'experiments/pretrained_models/{VGG19_FILE}'


def write_vgg19_weights(cwd):
    """Put RANDOM VGG-19 weights (torchvision's state_dict format, ~575 MB, made once per process) at
    ``cwd/experiments/pretrained_models/vgg19-dcbb9e9d.pth``, where basicsr's VGG PerceptualLoss loads
    them instead of downloading (relative to the run's current directory: the tree root by default).
    Hard-linked when possible. Returns the path."""
    target = Path(cwd) / VGG19_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        source = _random_vgg19_file()
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return target


# -------------------------------------------------------------------------------------------- options

#: tiny constructor overrides of BasicSR's own architectures (the plugin's come from make_options.py)
STOCK_TINY_NETWORK = {
    'MSRResNet': {'num_feat': 8, 'num_block': 1},
    'EDSR': {'num_feat': 8, 'num_block': 1},
}
#: network_g type -> scripts/make_options.py TINY_NETWORK key
PLUGIN_NETWORK_KEYS = {'NAFNet': 'nafnet', 'NAFNetLocal': 'nafnet', 'Uformer': 'uformer', 'DPDNet': 'dpdnet',
                       'Restormer': 'restormer', 'MPRNet': 'mprnet'}
VIT_LOSSES = ('LocalMAEPerceptualLoss', 'GlobalDistributionLoss')
#: metrics that need downloaded weights or large images (NIQE: 96x96 blocks); tiny_overrides drops them
HEAVY_METRICS = ('calculate_lpips', 'calculate_niqe')


def tiny_network(network_g):
    """The tiny constructor overrides for ``network_g`` (by its type): the plugin's archs from
    scripts/make_options.py's TINY_NETWORK, BasicSR's from STOCK_TINY_NETWORK; KeyError otherwise."""
    kind = network_g['type']
    if kind in STOCK_TINY_NETWORK:
        return dict(STOCK_TINY_NETWORK[kind])
    if kind in PLUGIN_NETWORK_KEYS:
        from conftest import load_script
        return copy.deepcopy(load_script('make_options').TINY_NETWORK[PLUGIN_NETWORK_KEYS[kind]])
    raise KeyError(f'no tiny overrides for network type {kind!r}: known '
                   f'{sorted(STOCK_TINY_NETWORK) + sorted(PLUGIN_NETWORK_KEYS)}')


def _tiny_scheduler(scheduler, total_iter):
    if 'T_max' in scheduler:
        scheduler['T_max'] = total_iter
    if 'milestones' in scheduler:
        scheduler['milestones'] = [total_iter]
    if 'periods' in scheduler:  # one cycle of total_iter (CosineAnnealingRestart[Cyclic]LR)
        scheduler['periods'] = [total_iter]
        for key in ('restart_weights', 'eta_mins'):
            if key in scheduler:
                scheduler[key] = scheduler[key][:1]
    return scheduler


def tiny_overrides(opt, data_root, total_iter=2, gt_size=32, val_freq=2):
    """Return a copy of the loaded options dict ``opt`` (a train or a test file) shrunk to seconds on a
    CPU. Only keys already in ``opt`` are changed, except ``perceptual_opt: backbone_kwargs`` (ViT losses):

    - ``num_gpu: 0``; ``network_g`` updated with ``tiny_network`` (NAFNet/NAFNetLocal/Uformer/DPDNet/
      Restormer/MPRNet from make_options.TINY_NETWORK; MSRResNet, EDSR);
    - every ``dataroot*`` starting with ``datasets/`` re-rooted at ``data_root`` (make_gopro / make_dpdd
      write there); train set: ``gt_size`` (a multiple of 16, the ViT patch; >= 32), batch 2, 0 workers,
      Restormer's progressive ``iters/gt_sizes/mini_batch_sizes`` to one stage;
    - train: ``total_iter``, ``warmup_iter: -1``, the scheduler fitted to total_iter (T_max, periods,
      milestones); ViT losses ``pretrained: false`` and ``backbone_kwargs`` = conftest.TINY_VIT with
      enough blocks for ``layers``; BasicSR's VGG ``PerceptualLoss`` unchanged (call
      ``write_vgg19_weights(cwd)``); pixel losses (L1Loss, PSNRLoss, CharbonnierLoss) unchanged;
    - val: ``val_freq``, a tile (if any) of gt_size with overlap 8, metrics without HEAVY_METRICS
      (LPIPS, NIQE); logger: ``print_freq: 1``, ``save_checkpoint_freq: total_iter`` (so
      ``net_g_<total_iter>.pth`` and, as always at the end, ``net_g_latest.pth``), ``use_tb_logger:
      false``, ``wandb: project: null``.
    The validation set's size is the data's: make_gopro / make_dpdd write 1-2 val/test images."""
    from conftest import TINY_VIT
    if gt_size < 32 or gt_size % 16:
        raise ValueError(f'gt_size must be a multiple of 16 (the ViT patch) and >= 32, not {gt_size}')
    opt = copy.deepcopy(opt)
    data_root = Path(data_root)
    opt['num_gpu'] = 0
    opt['network_g'].update(tiny_network(opt['network_g']))
    for phase, dataset in opt.get('datasets', {}).items():
        for key, value in dataset.items():
            if key.startswith('dataroot') and isinstance(value, str) and value.startswith('datasets/'):
                dataset[key] = str(data_root / value[len('datasets/'):])
        if phase == 'train':
            dataset.update(gt_size=gt_size, batch_size_per_gpu=2, num_worker_per_gpu=0)
            if 'iters' in dataset:
                dataset.update(iters=[total_iter], gt_sizes=[gt_size], mini_batch_sizes=[2])
    train = opt.get('train')
    if train is not None:
        train['total_iter'] = total_iter
        if 'warmup_iter' in train:
            train['warmup_iter'] = -1
        if 'scheduler' in train:
            _tiny_scheduler(train['scheduler'], total_iter)
        percep = train.get('perceptual_opt')
        if percep and percep.get('type') in VIT_LOSSES:
            layers = percep.get('layers', 5)
            layers = layers if isinstance(layers, list) else [layers]
            percep['pretrained'] = False
            percep['backbone_kwargs'] = dict(TINY_VIT, depth=max(TINY_VIT['depth'], *layers))
    val = opt.get('val')
    if val is not None:
        if 'val_freq' in val:
            val['val_freq'] = val_freq
        if isinstance(val.get('tile'), dict):
            val['tile'] = {'size': gt_size, 'overlap': 8}
        if val.get('metrics'):
            val['metrics'] = {k: v for k, v in val['metrics'].items() if v.get('type') not in HEAVY_METRICS}
    logger = opt.get('logger')
    if logger is not None:
        logger.update(print_freq=1, use_tb_logger=False)
        if 'save_checkpoint_freq' in logger:
            logger['save_checkpoint_freq'] = total_iter
        if isinstance(logger.get('wandb'), dict):
            logger['wandb']['project'] = None
    return opt


def write_options(opt, path):
    """Write ``opt`` as YAML to ``path`` (BasicSR's loader reads it back unchanged) and return the Path."""
    import yaml
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def log_losses(log, name='l_pix'):
    """The values of loss ``name`` in a BasicSR training log (one per printed iteration)."""
    return [float(v) for v in re.findall(rf'{re.escape(name)}: ([-+\d.e]+)', log)]
