"""Fix ``checkpoint_mismatch_hints``: a checkpoint that does not fit network_g fails with an error that
names the file and says why. The key layouts come from the ``CHECKPOINT_SIGNATURE`` of each registered
architecture's module (a new architecture appends one to its ``*_arch.py``)."""
import sys

import torch

from . import compat_fix, is_original, replace, source

_GENERIC_ARGS = ('width', 'dim', 'embed_dim', 'depths', 'in_channels')


class CheckpointKeyError(KeyError):
    """A KeyError whose message prints as written (a plain KeyError prints its repr)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


def arch_key_signatures():
    """``{layout name: CHECKPOINT_SIGNATURE}`` of every registered architecture whose module defines a
    ``CHECKPOINT_SIGNATURE`` (each plugin architecture's module does), named by its first architecture."""
    from basicsr.utils.registry import ARCH_REGISTRY
    signatures = {}
    for _, cls in ARCH_REGISTRY:
        signature = getattr(sys.modules.get(getattr(cls, '__module__', None)), 'CHECKPOINT_SIGNATURE', None)
        if isinstance(signature, dict) and signature['archs'][0] not in signatures:
            signatures[signature['archs'][0]] = signature
    return signatures


def _key_layout(keys, signatures=None):
    """Name of the layout of ``arch_key_signatures()`` the state_dict keys follow, or None."""
    keys = set(keys)
    signatures = arch_key_signatures() if signatures is None else signatures
    for layout, sig in signatures.items():
        if sig['key'] in keys and any(k.startswith(p) for k in keys for p in sig['prefixes']):
            return layout
    return None


def _registered_archs(signature):
    """The ``type:`` names that build the plugin's architectures of ``signature`` (``Name_vitloss`` where other
    code holds ``Name``)."""
    from basicsr.utils.registry import ARCH_REGISTRY
    from basicsr_vitloss.utils.registration import plugin_type_name
    names = (plugin_type_name(ARCH_REGISTRY, name) for name in signature['archs'])
    return [name for name in names if name is not None]


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
    signatures = arch_key_signatures()
    file_layout, net_layout = _key_layout(loaded, signatures), _key_layout(current, signatures)
    if file_layout is not None and file_layout != net_layout:
        sig = signatures[file_layout]
        archs = _registered_archs(sig) or [file_layout]
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
    args = signatures[net_layout]['args'] if net_layout else _GENERIC_ARGS
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
    return is_original(BaseModel.load_network) and 'param_key_g' not in source(BaseModel.load_network)


@compat_fix(_load_hints_need_fix, replaces='basicsr.models.base_model.BaseModel.load_network')
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
    replace(BaseModel, 'load_network', load_network)
