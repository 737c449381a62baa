"""Every BasicSR attribute that basicsr-vitloss replaces at run time, and the fixes that make stock
basicsr 1.4.2 work on current torch / torchvision / numpy / Python.

BasicSR's files are never edited. A *patch* is a named function that replaces a few BasicSR
attributes, declared with the attributes it replaces:

- a *fix* (``@compat_fix(needed, replaces=...)``, one module of this package each) mends a problem
  of stock BasicSR; ``apply_all()`` applies it only when ``needed()`` says the installed BasicSR still
  has the problem (checked on its source or behaviour), so it disappears when BasicSR is fixed;
- a *feature* (``@basicsr_feature(name, replaces=...)``: ``enable_registry_coexistence``,
  ``enable_tiled_validation``, ``enable_float_validation``, ``enable_finite_validation``,
  ``enable_training_setup``, ``enable_training_step``) adds a rule or option keys; the package applies each
  once when it is imported.

A patch sets attributes only through ``replace()``, which refuses an attribute the patch did not
declare, tags the replacement with the patch's name (``MARK``) and the attribute it replaced
(``__basicsr_original__``), and records it. ``replaced_attributes()`` lists every declared attribute,
what replaced it and whether it was replaced in this process, together with the startup hook's
replacements (``basicsr_vitloss_startup``: the legacy modules basicsr imports, the activation of the
plugin and the ``python -m basicsr.train`` redirection, which must act before or while ``import
basicsr`` runs and so cannot use this module). ``applied_fixes()`` lists the fixes applied.
"""
import ast
import functools
import importlib
import inspect
import sys
from collections import namedtuple

#: Attribute set on each replacement: the name of the patch that installed it.
MARK = '__basicsr_vitloss_patch__'

Patch = namedtuple('Patch', 'name kind replaces needed apply')
#: One row of ``replaced_attributes()``: the dotted attribute; what replaces it (dotted name or description);
#: the patch; its kind ('startup', 'fix' or 'feature'); whether it is replaced in this process.
Replacement = namedtuple('Replacement', 'attribute replacement patch kind applied')

_PATCHES = {}  # name -> Patch, in declaration order
_APPLIED = []  # names of the patches applied in this process, in the order applied
_RECORDS = []  # (attribute, replacement, patch name), in the order replaced
_ACTIVE = []  # the patch being applied


def _declare(name, kind, replaces, needed, apply):
    if name in _PATCHES and _PATCHES[name].apply.__module__ != apply.__module__:
        raise ValueError(f'two patches are named {name!r}: {_PATCHES[name].apply.__module__} and {apply.__module__}')
    if isinstance(replaces, str):
        replaces = (replaces,)
    _PATCHES[name] = patch = Patch(name, kind, tuple(replaces), needed, apply)
    return patch


def compat_fix(needed, replaces):
    """Declare a fix of stock BasicSR that replaces the dotted attributes ``replaces``; ``needed()``
    says whether the installed BasicSR still has the problem. ``apply_all()`` applies it."""

    def register(apply):
        _declare(apply.__name__, 'fix', replaces, needed, apply)
        return apply

    return register


def basicsr_feature(name, replaces):
    """Declare a feature named ``name`` that replaces the dotted attributes ``replaces``; the decorated
    function applies it, once per process (later calls do nothing)."""

    def register(apply):
        patch = _declare(name, 'feature', replaces, None, apply)

        @functools.wraps(apply)
        def enable():
            _run(patch)

        return enable

    return register


def _run(patch):
    if patch.name in _APPLIED:
        return
    _ACTIVE.append(patch)
    try:
        patch.apply()
    finally:
        _ACTIVE.pop()
    _APPLIED.append(patch.name)


def _dotted(owner, name):
    if inspect.ismodule(owner):
        return f'{owner.__name__}.{name}'
    return f'{owner.__module__}.{owner.__qualname__}.{name}'


def replace(owner, name, replacement, attribute=None):
    """Within a patch: set ``owner.name`` (``owner[name]`` for a dict, whose dotted ``attribute`` must then be
    given) to ``replacement``, tag it and record it. Returns the replacement."""
    if not _ACTIVE:
        raise RuntimeError('basicsr_vitloss.compat.replace() is called only while a declared patch is applied.')
    patch = _ACTIVE[-1]
    attribute = attribute or _dotted(owner, name)
    if attribute not in patch.replaces:
        raise RuntimeError(f'patch {patch.name} replaces {attribute}, which its declaration does not list.')
    original = owner[name] if isinstance(owner, dict) else getattr(owner, name)
    if getattr(replacement, MARK, None) != patch.name:  # one replacement for several attributes: first original
        setattr(replacement, MARK, patch.name)
        replacement.__basicsr_original__ = original
    if isinstance(owner, dict):
        owner[name] = replacement
    else:
        setattr(owner, name, replacement)
    _RECORDS.append((attribute, replacement, patch.name))
    return replacement


def source(obj):
    """Source code of ``obj``, or '' when it has none (what fixes inspect to decide whether they are needed)."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ''


def is_original(func):
    """Whether ``func`` is not a replacement installed by a patch."""
    return not getattr(func, MARK, None)


def resolve(attribute):
    """The current value of a dotted attribute of ``replaced_attributes()`` (a module name gives the module
    in ``sys.modules``; ``...['key']`` indexes a mapping)."""
    key = None
    if attribute.endswith(']'):
        attribute, key = attribute[:-1].split('[', 1)
        key = ast.literal_eval(key)
    parts = attribute.split('.')
    for i in range(len(parts), 0, -1):
        obj = sys.modules.get('.'.join(parts[:i]))
        if obj is not None:
            break
    else:
        obj, i = importlib.import_module(parts[0]), 1
    for part in parts[i:]:
        obj = getattr(obj, part)
    return obj if key is None else obj[key]


def _name(obj):
    module, qualname = getattr(obj, '__module__', None), getattr(obj, '__qualname__', None)
    if module and qualname:
        return f'{module}.{qualname}'
    if inspect.ismodule(obj):
        return f'module {obj.__name__}'
    return f'{type(obj).__module__}.{type(obj).__qualname__} instance'


def _startup_rows():
    import basicsr_vitloss_startup as startup
    declared = [(name, f'alias of {target}' if target != startup.__name__ else
                 f'{startup.__name__}.LooseVersion shim', 'legacy_modules')
                for name, (target, _) in startup.LEGACY_MODULES.items()]
    declared.append(('basicsr.__loader__', f'{startup.__name__}._PluginActivatingLoader (imports basicsr_vitloss '
                     "after basicsr's package)", 'plugin_activation'))
    for name, target in startup.REDIRECTED_ENTRY_POINTS.items():
        declared.append((f'{name}.__spec__', f'{startup.__name__}._EntryPointLoader (runs {target}.main; only for '
                         f'python -m {name})', 'entry_point_redirect'))
    return [Replacement(attribute, description, patch, 'startup', attribute in startup.REPLACED)
            for attribute, description, patch in declared]


def replaced_attributes():
    """Every BasicSR attribute (or module) basicsr-vitloss replaces at run time, as ``Replacement`` rows:
    the startup hook's, then each declared patch's, in declaration order. An attribute replaced by two
    patches (``SRModel.test``) has a row for each, in the order they wrap it."""
    rows = _startup_rows()
    for patch in _PATCHES.values():
        for attribute in patch.replaces:
            done = [obj for attr, obj, name in _RECORDS if attr == attribute and name == patch.name]
            rows.append(Replacement(attribute, _name(done[-1]) if done else '-', patch.name, patch.kind, bool(done)))
    return rows


def recorded_replacements():
    """``(attribute, replacement object, patch name)`` for each replacement made in this process, in order,
    the startup hook's first (what ``replaced_attributes()`` is built from; the tests check it)."""
    import basicsr_vitloss_startup as startup
    rows = [(attribute, obj, patch) for attribute, (obj, patch) in startup.REPLACED.items()]
    return rows + list(_RECORDS)


def patches():
    """The declared patches, ``{name: Patch}``, in declaration order."""
    return dict(_PATCHES)


def apply_all():
    """Apply every fix whose problem is present; idempotent."""
    for patch in list(_PATCHES.values()):
        if patch.kind == 'fix' and patch.name not in _APPLIED and patch.needed():
            _run(patch)


def applied_fixes():
    """Names of the fixes applied in this process (features and the startup hook's replacements excluded)."""
    return [name for name in _APPLIED if _PATCHES[name].kind == 'fix']


# One module per fix; importing it declares the fix. The order is the order apply_all() applies them.
from . import registry_hints, atomic_checkpoints, distributed, checkpoint_hints, resume  # noqa: E402,F401
from . import perceptual_l2, paired_flip, niqe_small_images  # noqa: E402,F401
from . import coexistence  # noqa: E402,F401  (a feature: applied by the package before it registers anything)

__all__ = ['MARK', 'Patch', 'Replacement', 'compat_fix', 'basicsr_feature', 'replace', 'source', 'is_original',
           'resolve', 'replaced_attributes', 'recorded_replacements', 'patches', 'apply_all', 'applied_fixes']

# Names that lived in the single-module ``compat`` and moved; kept importable from here.
_MOVED = {
    'init_dist': 'basicsr_vitloss.utils.distributed',
    'unknown_name_message': 'basicsr_vitloss.utils.registration',
    'atomic_save': 'basicsr_vitloss.utils.atomic_write',
    'NIQE_BLOCK': 'basicsr_vitloss.metrics.niqe_size',
    'NIQE_MIN_BLOCKS': 'basicsr_vitloss.metrics.niqe_size',
    'niqe_defined': 'basicsr_vitloss.metrics.niqe_size',
    'atomic_torch_save': f'{__name__}.atomic_checkpoints',
    'checkpoint_mismatch_hint': f'{__name__}.checkpoint_hints',
    'CheckpointKeyError': f'{__name__}.checkpoint_hints',
    'find_resume_state': f'{__name__}.resume',
    'load_training_state': f'{__name__}.resume',
}


def __getattr__(name):
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
