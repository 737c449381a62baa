"""Test setup: no network, offline hubs, caches in a temporary folder, helpers to run the CLIs."""
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO_OPTIONS = REPO / 'options' / 'demo' / 'defocus_demo.yml'
TINY_VIT = {'depth': 6, 'embed_dim': 64, 'num_heads': 2}

_CACHE = tempfile.mkdtemp(prefix='basicsr-vitloss-test-cache-')
OFFLINE_ENV = {
    'HF_HUB_OFFLINE': '1',
    'TRANSFORMERS_OFFLINE': '1',
    'HF_HOME': os.path.join(_CACHE, 'hf'),
    'TORCH_HOME': os.path.join(_CACHE, 'torch'),
    'XDG_CACHE_HOME': os.path.join(_CACHE, 'xdg'),
    'MPLCONFIGDIR': os.path.join(_CACHE, 'mpl'),
}
os.environ.update(OFFLINE_ENV)


class NetworkAccessError(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkAccessError(f'tests must not open network connections (attempted: {args[1:] or args})')


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to connect a socket (other than a Unix socket) fails the test."""
    original_connect = socket.socket.connect

    def connect(self, address):
        if self.family == getattr(socket, 'AF_UNIX', None):
            return original_connect(self, address)
        _refuse(self, address)

    monkeypatch.setattr(socket.socket, 'connect', connect)
    monkeypatch.setattr(socket.socket, 'connect_ex', lambda self, address: _refuse(self, address))
    monkeypatch.setattr(socket, 'create_connection', _refuse)


@pytest.fixture(scope='module')
def lpips_weights(tmp_path_factory):
    """A random AlexNet backbone in torchvision's format (its features.* tensors: what LPIPS loads)."""
    import torchvision
    folder = tmp_path_factory.mktemp('weights')
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith('features.')}
    torch.save(state, folder / 'alexnet-owt-7be5be79.pth')
    return str(folder)


def subprocess_env(**extra):
    """The environment of a test subprocess: offline, the hook on, and this checkout first on ``PYTHONPATH`` so that
    its ``basicsr_vitloss`` and ``basicsr_vitloss_startup`` (imported by the installed ``.pth``) are the ones run,
    not an installed copy."""
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO), env.get('PYTHONPATH', '')) if p)
    env.pop('BASICSR_VITLOSS_DISABLE_HOOK', None)
    env['PYTHONWARNINGS'] = 'default'
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, cwd, timeout=300, check=True, **env):
    """Run ``args`` (a list; ``python`` means this interpreter) and return the CompletedProcess."""
    args = [sys.executable if a == 'python' else str(a) for a in args]
    proc = subprocess.run(args, cwd=cwd, env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc


def tiny_options(path, name='tiny', total_iter=6, **changes):
    """Write the demo options shrunk to seconds on a CPU: tiny net, tiny crops, few iterations.
    ``changes`` maps 'section:key' paths to values."""
    opt = yaml.safe_load(DEMO_OPTIONS.read_text())
    opt['name'] = name
    opt['num_gpu'] = 0
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(num_samples=64, gt_size=24, batch_size_per_gpu=2, num_worker_per_gpu=0)
    val.update(num_samples=2, gt_size=32)
    opt['network_g'].update(width=8, enc_blk_nums=[1], dec_blk_nums=[1])
    if 'perceptual_opt' in opt['train']:  # a tiny random ViT instead of ViT-B
        opt['train']['perceptual_opt']['backbone_kwargs'] = TINY_VIT
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler'] = {'type': 'MultiStepLR', 'milestones': [4], 'gamma': 0.5}
    opt['val']['val_freq'] = 2
    opt['val']['save_comparison'] = False  # the demo's picture: tests that want it ask for it
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    for key, value in changes.items():
        node = opt
        *parents, last = key.split(':')
        for parent in parents:
            node = node[parent]
        node[last] = value
    Path(path).write_text(yaml.safe_dump(opt, sort_keys=False))
    return Path(path)


def adam_l1_step(net, optimizer, x, target, check_gradients=True):
    """One L1 training step with ``optimizer``; with ``check_gradients``, asserts that every parameter
    got a finite gradient and that some gradient is non-zero. Returns the loss tensor; the gradients
    stay on the parameters until the next step."""
    optimizer.zero_grad()
    loss = torch.nn.functional.l1_loss(net(x), target)
    loss.backward()
    if check_gradients:
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    optimizer.step()
    return loss


DPDD_VIEWS = {'lqL': ('{split}_l/source', '_L', 'inputL_crops'), 'lqR': ('{split}_r/source', '_R', 'inputR_crops'),
              'lqC': ('{split}_c/source', '', 'inputC_crops'), 'gt': ('{split}_c/target', '', 'target_crops')}


def dpdd_scene(height, width, seed, bits=16):
    """{view: (H, W, 3) integer RGB array} of a fake scene whose views are related pixel by pixel:
    gt = left = base, right = max - base, combined = base // 2. The base's red channel is the x
    coordinate and its green channel the y coordinate, so any crop, flip or rotation can be read
    back from the pixels."""
    peak = 2**bits - 1
    dtype = np.uint16 if bits == 16 else np.uint8
    yy, xx = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).random((height, width))
    base = np.stack([xx / (width - 1), yy / (height - 1), noise], axis=2)
    base = np.round(base * peak).astype(dtype)
    return {'gt': base, 'lqL': base.copy(), 'lqR': (peak - base).astype(dtype), 'lqC': base // 2}


def dpdd_release_names(split='train', scenes=3):
    """[(source, target)] of ``scenes`` real DPDD pairs of ``split``, spread over the release's file
    list (tests/data/dpdd_file_lists.json, from DPDNet's published file lists): every target has its
    own capture number, never its source's name."""
    import json
    lists = json.loads((REPO / 'tests' / 'data' / 'dpdd_file_lists.json').read_text())[split]
    count = len(lists['src'])
    picks = sorted({round(i * (count - 1) / max(scenes - 1, 1)) for i in range(scenes)}) if scenes > 1 else [0]
    return [(lists['src'][i], lists['trg'][i]) for i in picks]


def make_dpdd_tree(root, layout='official', split='train', scenes=3, size=(40, 56), bits=16):
    """Write a fake DPDD tree of ``scenes`` scenes of ``size`` (H, W) with the release's real names;
    returns {view: folder}.

    ``official``: the release layout and names (``<split>_l/source/<src>_L.png``, ...,
    ``<split>_c/target/<trg>.png``, targets named by their own capture numbers). ``crops``: per-view
    folders as ``scripts/prepare_dpdd.py`` writes them (``<src>_0.png`` in every folder)."""
    import cv2
    folders = {}
    for view, (official, suffix, crops) in DPDD_VIEWS.items():
        folder = Path(root) / (official.format(split=split) if layout == 'official' else f'{split}/{crops}')
        folder.mkdir(parents=True, exist_ok=True)
        folders[view] = str(folder)
    release_split = split if split in ('train', 'val', 'test') else 'train'  # names for other folder names
    for index, (source, target) in enumerate(dpdd_release_names(release_split, scenes)):
        views = dpdd_scene(*size, seed=index, bits=bits)
        for view, array in views.items():
            if layout == 'official':
                name = (target if view == 'gt' else source) + DPDD_VIEWS[view][1]
            else:
                name = f'{source}_0'
            cv2.imwrite(str(Path(folders[view]) / f'{name}.png'), array[..., ::-1])
    return folders


def load_script(name):
    """Import ``scripts/<name>.py`` as a module, so tests can call its functions in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, REPO / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class NonFiniteForBright(torch.nn.Module):
    """A 1x1 convolution (the identity) whose output holds ``value`` at ``pixel`` (batch, channel, row, column)
    for inputs brighter than 0.5: one image of two fails, and only one value of it is not finite."""

    def __init__(self, value, pixel=(0, 1, 2, 3)):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1, bias=False)
        torch.nn.init.dirac_(self.conv.weight)
        self.value, self.pixel = value, pixel

    def forward(self, x):
        out = self.conv(x)
        if x.mean() > 0.5:
            out = out.clone()
            out[self.pixel] = self.value
        return out
