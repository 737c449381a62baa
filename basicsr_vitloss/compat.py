"""Fixes that make stock basicsr 1.4.2 work on current torch / torchvision / numpy / Python.

BasicSR's files are never edited. Each fix is a named function that replaces one small piece of
BasicSR at import time, and only when the installed BasicSR still has the problem (checked on
its source or behaviour): when BasicSR itself is fixed, the fix is skipped. ``applied_fixes()``
lists what was applied in this process. Modules that basicsr imports but that no longer exist
(torchvision's ``functional_tensor``, ``distutils``) are supplied by ``basicsr_vitloss_startup``
because they are needed before ``import basicsr`` can finish.
"""
import contextlib
import difflib
import inspect
import logging
import os
import os.path as osp
import threading
import uuid

import torch
import torch.distributed as dist

logger = logging.getLogger('basicsr_vitloss')

_APPLIED = []
_FIXES = []


def compat_fix(needed):
    """Declare a fix; ``needed()`` says whether the installed BasicSR still has the problem."""

    def register(apply):
        _FIXES.append((apply.__name__, needed, apply))
        return apply

    return register


def _source(obj):
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ''


def _is_original(func):
    return not getattr(func, '__basicsr_vitloss_fix__', False)


def _mark(func, original=None):
    """Tag a replacement (so a fix is never applied twice) and keep what it replaced."""
    func.__basicsr_vitloss_fix__ = True
    func.__basicsr_original__ = original
    return func


# --------------------------------------------------------------------------- registry messages
def _registry_needs_fix():
    from basicsr.utils.registry import Registry
    return _is_original(Registry.get) and 'get_close_matches' not in _source(Registry.get)


@compat_fix(_registry_needs_fix)
def registry_close_matches():
    """Unknown ``type:`` names raise a KeyError naming the registry and the closest names
    (stock BasicSR prints a line and raises a bare "not found"); re-registering the same class,
    e.g. after ``importlib.reload``, replaces it instead of failing the assertion."""
    from basicsr.utils.registry import Registry
    original_register = Registry._do_register

    def get(self, name, suffix='basicsr'):
        obj = self._obj_map.get(name)
        if obj is None:
            obj = self._obj_map.get(f'{name}_{suffix}')
        if obj is None:
            raise KeyError(unknown_name_message(self, name))
        return obj

    def _do_register(self, name, obj, suffix=None):
        key = f'{name}_{suffix}' if isinstance(suffix, str) else name
        old = self._obj_map.get(key)
        if old is not None and _same_definition(old, obj):
            self._obj_map[key] = obj
            return
        if old is not None:
            raise KeyError(f"'{key}' is already registered in BasicSR's {self._name} registry by "
                           f'{old.__module__}.{old.__qualname__}; cannot register '
                           f'{obj.__module__}.{obj.__qualname__} under the same name.')
        original_register(self, name, obj, suffix)

    Registry.get = _mark(get, Registry.get)
    Registry._do_register = _mark(_do_register, original_register)


def _same_definition(a, b):
    return getattr(a, '__module__', None) == getattr(b, '__module__', None) and \
        getattr(a, '__qualname__', None) == getattr(b, '__qualname__', None)


def unknown_name_message(registry, name):
    """Message for a name missing from a BasicSR registry, with the closest registered names."""
    names = sorted(registry._obj_map.keys())
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.6)
    msg = f"No object named '{name}' in BasicSR's {registry._name} registry."
    if close:
        msg += f' Did you mean: {", ".join(close)}?'
    else:
        msg += f' Registered names: {", ".join(names)}.'
    return msg


# --------------------------------------------------------------------------- distributed init
def _init_dist_needs_fix():
    from basicsr.utils import dist_util
    src = _source(dist_util._init_dist_pytorch)
    return _is_original(dist_util.init_dist) and 'set_device' in src and 'is_available' not in src


def init_dist(launcher, backend=None, **kwargs):
    """Initialize torch.distributed for BasicSR's ``pytorch`` (torchrun) or ``slurm`` launcher.

    ``backend`` None picks nccl when CUDA is available and gloo otherwise; the CUDA device is the
    process's local rank (not its global rank, which is wrong beyond one node).
    """
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f"Invalid launcher '{launcher}': expected 'pytorch' (torchrun) or 'slurm'.")
    if dist.is_available() and dist.is_initialized():
        return
    if torch.multiprocessing.get_start_method(allow_none=True) is None:
        torch.multiprocessing.set_start_method('spawn')  # as stock BasicSR: CUDA-safe data workers
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    port = kwargs.pop('port', None)
    if launcher == 'slurm':
        _export_slurm_env(port)
    elif port is not None:
        os.environ.setdefault('MASTER_PORT', str(port))
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher {launcher} needs the environment variables {', '.join(missing)}; "
                           'start the job with torchrun (or srun for slurm), or use --launcher none.')
    if backend == 'nccl':
        if not torch.cuda.is_available():
            raise RuntimeError("dist_params: backend 'nccl' needs CUDA GPUs; use backend: gloo on CPU.")
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs)


def _export_slurm_env(port):
    import subprocess
    proc_id = int(os.environ['SLURM_PROCID'])
    gpus = max(torch.cuda.device_count(), 1)
    nodes = os.environ['SLURM_NODELIST']
    os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
    os.environ['MASTER_PORT'] = str(port) if port is not None else os.environ.get('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', str(proc_id % gpus))


@compat_fix(_init_dist_needs_fix)
def distributed_backend():
    """Stock init_dist hard-codes nccl and ``torch.cuda.set_device``, so CPU / gloo runs crash."""
    from basicsr.utils import dist_util, options
    dist_util.init_dist = _mark(init_dist, dist_util.init_dist)
    options.init_dist = dist_util.init_dist


def _ddp_needs_fix():
    from basicsr.models.base_model import BaseModel
    src = _source(BaseModel.model_to_device)
    return _is_original(BaseModel.model_to_device) and 'current_device()' in src


@compat_fix(_ddp_needs_fix)
def ddp_on_cpu():
    """Stock model_to_device passes ``device_ids=[torch.cuda.current_device()]`` to DDP, which
    fails without CUDA; on CPU, DDP gets no device_ids."""
    from torch.nn.parallel import DistributedDataParallel
    from basicsr.models.base_model import BaseModel
    original = BaseModel.model_to_device

    def model_to_device(self, net):
        if self.opt['dist'] and self.device.type != 'cuda':
            return DistributedDataParallel(
                net.to(self.device), find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return original(self, net)

    BaseModel.model_to_device = _mark(model_to_device, original)


# --------------------------------------------------------------------------- checkpoints
_save_lock = threading.RLock()


def atomic_save(obj, path, _save=torch.save):
    """``torch.save`` to a temporary file in the same folder, then rename: never a torn file.
    The file gets the permissions a plain ``torch.save`` would give it (0666 minus the umask)."""
    path = os.fspath(path)
    tmp = osp.join(osp.dirname(osp.abspath(path)), f'.{osp.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with open(tmp, 'xb') as f:
            _save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_torch_save():
    """Within the block, ``torch.save(obj, path)`` writes atomically (file objects pass through)."""
    with _save_lock:
        original = torch.save

        def save(obj, f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)) and not args and not kwargs:
                return atomic_save(obj, f, _save=original)
            return original(obj, f, *args, **kwargs)

        torch.save = save
        try:
            yield
        finally:
            torch.save = original


def _checkpoints_need_fix():
    from basicsr.models.base_model import BaseModel
    return _is_original(BaseModel.save_training_state) and 'os.replace' not in _source(BaseModel.save_network)


@compat_fix(_checkpoints_need_fix)
def atomic_checkpoints():
    """A run killed while saving must not leave a truncated .pth or .state behind."""
    from basicsr.models.base_model import BaseModel

    def atomic(method):

        def wrapper(self, *args, **kwargs):
            with atomic_torch_save():
                return method(self, *args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
        return _mark(wrapper, method)

    BaseModel.save_network = atomic(BaseModel.save_network)
    BaseModel.save_training_state = atomic(BaseModel.save_training_state)


# --------------------------------------------------------------------------- checkpoint mismatch hints
# Key layout of each plugin architecture: a key every checkpoint has, and prefixes of which at least one
# occurs; the architectures sharing the layout; the configuration arguments that change the shapes.
# A new architecture adds its entry here.
ARCH_KEY_SIGNATURES = {
    'NAFNet': {
        'key': 'intro.weight', 'prefixes': ('encoders.', 'middle_blks.'), 'archs': ('NAFNet', 'NAFNetLocal'),
        'args': ('width', 'enc_blk_nums', 'middle_blk_num', 'dec_blk_nums', 'img_channel', 'out_channels',
                 'dw_expand', 'ffn_expand')},
    'Restormer': {
        'key': 'patch_embed.proj.weight', 'prefixes': ('encoder_level1.',), 'archs': ('Restormer',),
        'args': ('dim', 'num_blocks', 'num_refinement_blocks', 'heads', 'inp_channels', 'out_channels',
                 'ffn_expansion_factor', 'bias', 'LayerNorm_type', 'dual_pixel_task')},
    'Uformer': {
        'key': 'input_proj.proj.0.weight', 'prefixes': ('encoderlayer_0.',), 'archs': ('Uformer',),
        'args': ('embed_dim', 'depths', 'num_heads', 'win_size', 'in_chans', 'dd_in', 'out_chans',
                 'token_projection', 'token_mlp', 'modulator')},
    'DPDNet': {
        'key': 'out_conv.weight', 'prefixes': ('bottleneck.',), 'archs': ('DPDNet',),
        'args': ('in_channels', 'out_channels', 'base_channels')},
    'MPRNet': {
        'key': 'sam12.conv2.weight', 'prefixes': ('stage1_encoder.',), 'archs': ('MPRNet',),
        'args': ('n_feat', 'scale_unetfeats', 'scale_orsnetfeats', 'num_cab', 'in_c', 'out_c', 'kernel_size',
                 'reduction', 'bias')},
}
_GENERIC_ARGS = ('width', 'dim', 'embed_dim', 'depths', 'in_channels')


class CheckpointKeyError(KeyError):
    """A KeyError whose message prints as written (a plain KeyError prints its repr)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


def _key_layout(keys):
    """Name of the ARCH_KEY_SIGNATURES layout the state_dict keys follow, or None."""
    keys = set(keys)
    for layout, sig in ARCH_KEY_SIGNATURES.items():
        if sig['key'] in keys and any(k.startswith(p) for k in keys for p in sig['prefixes']):
            return layout
    return None


def _registered_archs(layout):
    from basicsr.utils.registry import ARCH_REGISTRY
    return [name for name in ARCH_KEY_SIGNATURES[layout]['archs'] if name in ARCH_REGISTRY]


def _shape(tensor):
    return tuple(getattr(tensor, 'shape', ()))


def _is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def _first(names, n=3):
    names = list(names)
    text = ', '.join(repr(k) for k in names[:n])
    return text + (f' (+{len(names) - n} more)' if len(names) > n else '')


def checkpoint_mismatch_hint(net, load_path, param_key):
    """Why ``load_path`` does not load into ``net`` with ``param_key`` (BasicSR's ``param_key_g``), as
    a sentence, or None when no reason is found. The file is read again on the CPU."""
    try:
        ckpt = torch.load(load_path, map_location='cpu')
    except Exception:  # noqa: BLE001 - an unreadable file: the original error says it
        return None
    if not isinstance(ckpt, dict):
        return None
    top = list(ckpt.keys())
    wrapped = [k for k in top if _is_state_dict(ckpt[k])]
    if param_key is not None:
        key = param_key if param_key in ckpt or 'params' not in ckpt else 'params'
        if key not in ckpt:
            if _is_state_dict(ckpt):
                return (f"the file has no '{param_key}' entry: it is a bare state_dict (keys such as "
                        f'{_first(top, 2)}); set param_key_g: ~ (None) in the path section.')
            suggestion = f"param_key_g: {wrapped[0]}" if wrapped else 'param_key_g'
            return (f"the file has no '{param_key}' entry; its top-level keys are {_first(top, 10)}. "
                    f'Set {suggestion} in the path section to the entry that holds the weights.')
        ckpt = ckpt[key]
        if not isinstance(ckpt, dict):
            return None
    elif wrapped and not _is_state_dict(ckpt):
        return (f'param_key_g is ~ (None) but the file is not a bare state_dict: its top-level keys are '
                f'{_first(top, 10)}; set param_key_g: {wrapped[0]} in the path section.')
    loaded = {(k[7:] if k.startswith('module.') else k): v for k, v in ckpt.items()}
    current = net.state_dict()
    net_name = type(net).__name__
    file_layout, net_layout = _key_layout(loaded), _key_layout(current)
    if file_layout is not None and file_layout != net_layout:
        archs = _registered_archs(file_layout) or [file_layout]
        sig = ARCH_KEY_SIGNATURES[file_layout]
        names = ' or '.join(archs)
        return (f"the file looks like a {names} checkpoint (it has '{sig['key']}' and "
                f"'{sig['prefixes'][0]}*' keys), not a {net_name} one: set network_g's type to {archs[0]} "
                'with the configuration the checkpoint was trained with, or load a checkpoint of '
                f'{net_name}.')
    common = [k for k in current if k in loaded]
    same_arch = (file_layout is not None and file_layout == net_layout) or \
        (len(common) >= max(1, len(current) // 2))
    if not same_arch:
        return None
    resized = [k for k in common if _shape(current[k]) != _shape(loaded[k])]
    missing = [k for k in current if k not in loaded]
    unexpected = [k for k in loaded if k not in current]
    if not (resized or missing or unexpected):
        return None
    args = ARCH_KEY_SIGNATURES[net_layout]['args'] if net_layout else _GENERIC_ARGS
    parts = [f'{k!r} is {_shape(loaded[k])} in the file but {_shape(current[k])} in the network'
             for k in resized[:3]]
    if len(resized) > 3:
        parts.append(f'{len(resized) - 3} more keys differ in shape')
    if missing:
        parts.append(f'{len(missing)} network keys are missing from the file (first: {missing[0]!r})')
    if unexpected:
        parts.append(f'{len(unexpected)} file keys are not in the network (first: {unexpected[0]!r})')
    return (f'the file holds a {net_name} checkpoint of another configuration: ' + '; '.join(parts) +
            f". Check network_g's configuration arguments ({', '.join(args)}) against the ones the "
            'checkpoint was trained with.')


def _load_hints_need_fix():
    from basicsr.models.base_model import BaseModel
    return _is_original(BaseModel.load_network) and 'param_key_g' not in _source(BaseModel.load_network)


@compat_fix(_load_hints_need_fix)
def checkpoint_mismatch_hints():
    """A checkpoint that does not fit network_g fails with torch's list of missing / unexpected keys
    (or a bare ``KeyError: 'params'``); the error now names the file and says why: another
    architecture's checkpoint, another configuration (first keys with both shapes), or a wrong
    ``param_key_g`` (the file's top-level keys)."""
    from basicsr.models.base_model import BaseModel
    original = BaseModel.load_network

    def load_network(self, net, load_path, strict=True, param_key='params'):
        try:
            return original(self, net, load_path, strict, param_key)
        except (RuntimeError, KeyError) as error:
            hint = checkpoint_mismatch_hint(self.get_bare_model(net), load_path, param_key)
            if hint is None:
                raise
            message = str(error) if isinstance(error, RuntimeError) or isinstance(error, CheckpointKeyError) \
                else f'KeyError: {error}'
            message = (f'{message}\nCannot load {load_path} into {type(self.get_bare_model(net)).__name__} '
                       f'(param_key_g: {param_key}): {hint}')
            cls = RuntimeError if isinstance(error, RuntimeError) else CheckpointKeyError
            raise cls(message) from error

    load_network.__doc__ = original.__doc__
    BaseModel.load_network = _mark(load_network, original)


# --------------------------------------------------------------------------- resuming
def _resume_needs_fix():
    from basicsr import train
    return _is_original(train.load_resume_state) and 'current_device()' in _source(train.load_resume_state)


def _state_iteration(filename):
    try:
        return int(float(filename[:-len('.state')]))
    except ValueError:
        return None


def find_resume_state(opt):
    """Newest readable training state of an experiment as ``(path, state)``, or ``(None, None)``.

    States that cannot be read (a run killed while saving with a stock BasicSR) or whose network
    files are missing are skipped with a warning naming the file.
    """
    state_dir = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
    if not osp.isdir(state_dir):
        return None, None
    candidates = [(_state_iteration(f), f) for f in os.listdir(state_dir) if f.endswith('.state')]
    for iteration, name in sorted((c for c in candidates if c[0] is not None), reverse=True):
        path = osp.join(state_dir, name)
        missing = [p for p in _network_files(opt, iteration) if not osp.isfile(p)]
        if missing:
            logger.warning('Skipping training state %s: network file %s is missing.', path, missing[0])
            continue
        try:
            return path, load_training_state(path)
        except Exception as error:  # noqa: BLE001 - any unreadable file is skipped, and said so
            logger.warning('Skipping unreadable training state %s (%s: %s).', path, type(error).__name__, error)
    return None, None


def _network_files(opt, iteration):
    models = opt['path'].get('models')
    if not models:
        return []
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [osp.join(models, f"net_{key[len('network_'):]}_{iteration}.pth") for key in opt
            if key.startswith('network_') and key not in ignored]


def load_training_state(path):
    """Load a BasicSR ``.state`` file on the CPU (optimizers move their state to the parameters'
    device when it is loaded), with torch's safe ``weights_only`` loader."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Training state not found: {path} (path: resume_state in the options file).')
    state = torch.load(path, map_location='cpu')
    if not isinstance(state, dict) or 'iter' not in state or 'optimizers' not in state:
        raise ValueError(f'{path} is not a BasicSR training state (expected a dict with iter, optimizers).')
    return state


@compat_fix(_resume_needs_fix)
def device_agnostic_resume():
    """Stock load_resume_state maps the state to ``torch.cuda.current_device()`` (no CUDA: crash),
    looks for states relative to the cwd instead of the experiment folder, and takes the newest
    state even when it is truncated."""
    from basicsr import train
    from basicsr.utils import check_resume

    def load_resume_state(opt):
        if opt['auto_resume']:
            path, state = find_resume_state(opt)
            if path is None:
                return None
            opt['path']['resume_state'] = path
        elif opt['path'].get('resume_state'):
            state = load_training_state(opt['path']['resume_state'])
        else:
            return None
        check_resume(opt, state['iter'])
        return state

    train.load_resume_state = _mark(load_resume_state, train.load_resume_state)


# --------------------------------------------------------------------------- losses
def _perceptual_l2_needs_fix():
    from basicsr.losses.basic_loss import PerceptualLoss
    return _is_original(PerceptualLoss.__init__) and 'L2loss' in _source(PerceptualLoss.__init__)


@compat_fix(_perceptual_l2_needs_fix)
def perceptual_l2_criterion():
    """BasicSR's VGG PerceptualLoss with ``criterion: l2`` calls ``torch.nn.L2loss``, which does not
    exist; build it as l1 and swap in the mean squared error the option names."""
    from basicsr.losses.basic_loss import PerceptualLoss
    original = PerceptualLoss.__init__

    def __init__(self, *args, criterion='l1', **kwargs):
        original(self, *args, criterion='l1' if criterion == 'l2' else criterion, **kwargs)
        if criterion == 'l2':
            self.criterion_type = 'l2'
            self.criterion = torch.nn.MSELoss()

    PerceptualLoss.__init__ = _mark(__init__, original)


# --------------------------------------------------------------------------- data
def _paired_flip_key_needs_fix():
    from basicsr.data.paired_image_dataset import PairedImageDataset
    return _is_original(PairedImageDataset.__init__) and "self.opt['use_hflip']" in _source(PairedImageDataset)


@compat_fix(_paired_flip_key_needs_fix)
def paired_flip_key():
    """BasicSR's PairedImageDataset reads ``use_hflip`` / ``use_rot`` only when the first training
    sample loads (a bare KeyError in a worker), and NAFNet's options call the first ``use_flip``.
    Accept ``use_flip`` as ``use_hflip``, and report a missing key when the dataset is built."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    original = PairedImageDataset.__init__

    def __init__(self, opt):
        if opt.get('phase') == 'train':
            if 'use_hflip' not in opt and 'use_flip' in opt:
                opt['use_hflip'] = opt['use_flip']
            missing = [key for key in ('use_hflip', 'use_rot') if key not in opt]
            if missing:
                raise KeyError(f"PairedImageDataset '{opt.get('name')}': training needs "
                               f"{' and '.join(f'datasets:train:{k}' for k in missing)} (true or false).")
        original(self, opt)

    PairedImageDataset.__init__ = _mark(__init__, original)


# --------------------------------------------------------------------------- metrics
NIQE_BLOCK = 96  # BasicSR's NIQE: statistics of non-overlapping 96x96 blocks
NIQE_MIN_BLOCKS = 2  # one block has no covariance (the fit fails), smaller images have none


def niqe_defined(height, width):
    """Whether BasicSR's NIQE is defined on an image of ``height`` x ``width`` (after border crop)."""
    return (height // NIQE_BLOCK) * (width // NIQE_BLOCK) >= NIQE_MIN_BLOCKS


def _niqe_needs_fix():
    from basicsr.metrics import niqe
    return _is_original(niqe.calculate_niqe) and 'at least two' not in _source(niqe.calculate_niqe)


@compat_fix(_niqe_needs_fix)
def niqe_small_images():
    """BasicSR's NIQE fits a Gaussian to the features of 96x96 blocks: an image with fewer than two
    blocks fails deep inside (``SVD did not converge``, or a NumPy warning and NaN). Say so up front,
    with the image size and what is needed."""
    from basicsr.metrics import niqe
    from basicsr.utils.registry import METRIC_REGISTRY
    original = niqe.calculate_niqe

    def calculate_niqe(img, crop_border, input_order='HWC', convert_to='y', **kwargs):
        height, width = (img.shape[1:3] if input_order == 'CHW' and img.ndim == 3 else img.shape[:2])
        height, width = height - 2 * crop_border, width - 2 * crop_border
        if not niqe_defined(height, width):
            raise ValueError(f'NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks; this image is '
                             f'{height}x{width} after crop_border {crop_border}. Use images of at least '
                             f'{NIQE_BLOCK}x{2 * NIQE_BLOCK} (e.g. a larger val gt_size) or drop NIQE here.')
        return original(img, crop_border, input_order=input_order, convert_to=convert_to, **kwargs)

    calculate_niqe.__doc__ = original.__doc__
    _mark(calculate_niqe, original)
    niqe.calculate_niqe = calculate_niqe
    import basicsr.metrics
    basicsr.metrics.calculate_niqe = calculate_niqe
    METRIC_REGISTRY._obj_map['calculate_niqe'] = calculate_niqe


# --------------------------------------------------------------------------- entry
def apply_all():
    """Apply every fix whose problem is present; idempotent."""
    for name, needed, apply in _FIXES:
        if name in _APPLIED:
            continue
        if needed():
            apply()
            _APPLIED.append(name)


def applied_fixes():
    """Names of the fixes applied in this process (the startup hook's module aliases excluded)."""
    return list(_APPLIED)
