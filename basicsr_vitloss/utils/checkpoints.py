"""The one checkpoint reader of the package: network weights from a BasicSR checkpoint
(``params_ema`` / ``params``), an official release's wrapper (``state_dict``, ``model``, ...) or a bare
state dict, in ``.pth`` or ``.safetensors`` form."""
import os

#: Keys that wrap the weights, in the order they are looked for when no ``param_key`` is given:
#: BasicSR saves ``params`` (and ``params_ema`` when EMA is on, the better one to test with);
#: MPRNet / Uformer releases use ``state_dict``, others ``model``.
PARAM_KEYS = ('params_ema', 'params', 'state_dict', 'model')
SHOWN = 5  # keys listed in an error message


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as network weights; the message names the file."""


def _load(path):
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    import torch
    return torch.load(path, map_location='cpu', weights_only=True)


def _is_state_dict(obj):
    import torch
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_state_dict(path, param_key=None, strip_prefixes=('module.',)):
    """The weights in ``path`` as a state dict on the CPU. ``param_key``: the wrapping key to read
    (None: the first of PARAM_KEYS present, else the file itself must be a state dict). A
    ``module.`` prefix (DataParallel / DDP) is stripped. Raises CheckpointError naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'{path} does not exist.')
    try:
        checkpoint = _load(path)
    except Exception as error:  # pickle, zip, truncation, safetensors header: one message naming the file
        raise CheckpointError(f'{path}: cannot load it ({type(error).__name__}: {error}).') from None
    if param_key is not None:
        if not isinstance(checkpoint, dict) or param_key not in checkpoint:
            keys = ', '.join(map(str, list(checkpoint)[:SHOWN])) if isinstance(checkpoint, dict) else \
                type(checkpoint).__name__
            raise CheckpointError(f'{path}: no key {param_key!r} (it has {keys}).')
        checkpoint = checkpoint[param_key]
    elif isinstance(checkpoint, dict) and not _is_state_dict(checkpoint):
        checkpoint = next((checkpoint[k] for k in PARAM_KEYS if isinstance(checkpoint.get(k), dict)), checkpoint)
    if not _is_state_dict(checkpoint):
        what = ', '.join(map(str, list(checkpoint)[:SHOWN])) if isinstance(checkpoint, dict) else \
            type(checkpoint).__name__
        raise CheckpointError(f'{path}: expected a state dict of tensors, or one under '
                              f'{" / ".join(PARAM_KEYS)}; got {what or "an empty dict"}.')
    for prefix in strip_prefixes:
        if all(k.startswith(prefix) for k in checkpoint):
            checkpoint = {k[len(prefix):]: v for k, v in checkpoint.items()}
    return checkpoint


def load_network_weights(net, path, param_key=None, strict=True):
    """Loads ``path`` into ``net`` (read_state_dict); a mismatch raises CheckpointError naming the
    file, the network and the first missing / unexpected / mis-shaped keys."""
    state = read_state_dict(path, param_key)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in own
              if k in state and state[k].shape != own[k].shape]
    if shapes or (strict and (missing or unexpected)):
        parts = [f'{label} ({len(keys)}): {", ".join(keys[:SHOWN])}' for label, keys in
                 (('missing', missing), ('unexpected', unexpected), ('shape mismatch', shapes)) if keys]
        raise CheckpointError(f'{path} does not fit {type(net).__name__}: ' + '; '.join(parts) + '.')
    net.load_state_dict(state, strict=strict)
    return net
