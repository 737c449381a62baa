"""Optimizers and schedulers of the official Restormer / NAFNet / Uformer recipes in BasicSR.

Stock BasicSR 1.4.2 builds only ``Adam`` (``train: optim_g: type:``) and three schedulers
(``train: scheduler: type:``). ``enable_training_setup()`` replaces ``BaseModel.get_optimizer``
to build any ``torch.optim`` optimizer by name (AdamW, SGD, ...) and ``BaseModel.setup_schedulers``
to build any scheduler of ``lr_schedulers.SCHEDULERS``, with errors that name the option and the
closest valid names. Unlike stock BasicSR, the options are not modified (``type`` stays in them).
"""
import copy
import difflib
import inspect

import torch

from basicsr_vitloss.compat import basicsr_feature, replace

from .lr_schedulers import SCHEDULERS



def optimizer_classes():
    """{name: class} of the optimizers torch.optim provides."""
    return {name: obj for name, obj in vars(torch.optim).items()
            if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer}


def _unknown(kind, key, name, names):
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.6)
    hint = f'Did you mean: {", ".join(close)}?' if close else f'Available: {", ".join(sorted(names))}.'
    return f"Unknown {kind} '{name}' ({key}). {hint}"


def _accepted_arguments(cls, skip=('self', 'optimizer', 'params')):
    params = inspect.signature(cls).parameters.values()
    return ', '.join(p.name if p.default is inspect.Parameter.empty else f'{p.name}={p.default!r}'
                     for p in params if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def build_optimizer(optim_type, params, lr, **kwargs):
    """Build ``torch.optim.<optim_type>(params, lr=lr, **kwargs)``; bad names or arguments raise a
    ValueError naming ``train:optim_g``."""
    classes = optimizer_classes()
    cls = classes.get(optim_type)
    if cls is None:
        raise ValueError(_unknown('optimizer', 'train:optim_g:type', optim_type, list(classes)))
    try:
        inspect.signature(cls).bind(params, lr=lr, **kwargs)
    except TypeError as error:
        raise ValueError(f'train:optim_g: {optim_type} does not accept the arguments {sorted(kwargs)} ({error}); '
                         f'it accepts: {_accepted_arguments(cls)}.') from error
    return cls(params, lr=lr, **kwargs)


def build_scheduler(optimizer, scheduler_opt):
    """Build the scheduler that ``scheduler_opt`` (the ``train: scheduler:`` mapping, not modified)
    describes, for ``optimizer``."""
    if not isinstance(scheduler_opt, dict) or 'type' not in scheduler_opt:
        raise ValueError(f"train:scheduler must be a mapping with a 'type' (one of {', '.join(SCHEDULERS)}), "
                         f'got {scheduler_opt!r}.')
    kwargs = copy.deepcopy(scheduler_opt)
    name = kwargs.pop('type')
    cls = SCHEDULERS.get(name)
    if cls is None:
        raise ValueError(_unknown('scheduler', 'train:scheduler:type', name, list(SCHEDULERS)))
    try:
        inspect.signature(cls).bind(optimizer, **kwargs)
    except TypeError as error:
        raise ValueError(f'train:scheduler: {name} does not accept the arguments {sorted(kwargs)} ({error}); '
                         f'it accepts: {_accepted_arguments(cls)}.') from error
    return cls(optimizer, **kwargs)


def get_optimizer(self, optim_type, params, lr, **kwargs):
    """Any torch.optim optimizer by name (stock BasicSR: Adam only)."""
    return build_optimizer(optim_type, params, lr, **kwargs)


def setup_schedulers(self):
    """One scheduler per optimizer, of ``train: scheduler: type:`` (options left unchanged)."""
    scheduler_opt = self.opt['train'].get('scheduler')
    for optimizer in self.optimizers:
        self.schedulers.append(build_scheduler(optimizer, scheduler_opt))


@basicsr_feature('training_setup', replaces=('basicsr.models.base_model.BaseModel.get_optimizer',
                                              'basicsr.models.base_model.BaseModel.setup_schedulers'))
def enable_training_setup():
    """Patch BasicSR's BaseModel to use ``get_optimizer`` / ``setup_schedulers`` above; once per process."""
    from basicsr.models.base_model import BaseModel
    replace(BaseModel, 'get_optimizer', get_optimizer)
    replace(BaseModel, 'setup_schedulers', setup_schedulers)
