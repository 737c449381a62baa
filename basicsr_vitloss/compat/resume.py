"""Fix ``device_agnostic_resume``: BasicSR resumes without CUDA, from the experiment's own folder, and
skips training states that cannot be read."""
import logging
import os
import os.path as osp

import torch

from . import compat_fix, is_original, replace, source

logger = logging.getLogger('basicsr_vitloss')


def _resume_needs_fix():
    from basicsr import train
    return is_original(train.load_resume_state) and 'current_device()' in source(train.load_resume_state)


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


@compat_fix(_resume_needs_fix, replaces='basicsr.train.load_resume_state')
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

    replace(train, 'load_resume_state', load_resume_state)
