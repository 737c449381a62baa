"""Startup hook of basicsr-vitloss, imported at interpreter start by ``basicsr_vitloss.pth``.

It makes an installed basicsr-vitloss active for BasicSR's own entry points
(``python -m basicsr.train -opt ...``) without any import by the user, and costs nothing
otherwise: only two tiny import finders are installed and no third-party module is imported.

- ``BasicSRImportHook`` waits for ``import basicsr``; right after BasicSR's package has run it
  imports ``basicsr_vitloss`` (compat fixes, registration) and, when the interpreter was started
  as ``python -m basicsr.train`` / ``basicsr.test``, runs basicsr-vitloss's entry point instead
  of BasicSR's ``__main__`` block, so that outputs go under the current working directory.
- ``LegacyModuleFinder`` supplies modules that basicsr 1.4.2 imports but current releases of its
  dependencies removed. It sits at the end of ``sys.meta_path``, so it is asked only when the real
  module is missing: when a dependency restores a module, the alias disappears by itself.

If activating the plugin fails (an exception while importing ``basicsr_vitloss``), ``import basicsr``
still succeeds: a RuntimeWarning names the error, where it was raised and the switch below, and BasicSR
runs without the plugin (``type:`` names of plugin classes are then unknown to its registries).

Set ``BASICSR_VITLOSS_DISABLE_HOOK=1`` to switch the hook off. Then ``import basicsr`` does not import
``basicsr_vitloss``: no plugin class is registered, no BasicSR attribute is replaced and ``python -m
basicsr.train`` runs BasicSR's own entry point. What stays active is ``LegacyModuleFinder`` alone (basicsr
1.4.2 does not import at all without it on current torchvision / Python); it only supplies modules that
are missing, and ``REPLACED`` then holds only its ``legacy_modules`` entries. An explicit ``import
basicsr_vitloss`` still activates the whole plugin.

Every replacement made here is recorded in ``REPLACED``; ``basicsr_vitloss.compat.replaced_attributes()``
lists it with the package's own replacements. This module imports nothing of ``basicsr_vitloss``.

Import circle: ``basicsr_vitloss/__init__.py`` imports this module (to install the legacy-module finder
before its own ``import basicsr`` when the ``.pth`` file did not run), and the hook imports
``basicsr_vitloss`` once ``basicsr`` has run. When the package is imported first, its ``import basicsr``
reaches the hook while the package is still initializing: ``import_module('basicsr_vitloss')`` then
returns the partly initialized package and does nothing, which is why the hook never uses the package's
attributes. When ``basicsr`` is imported first, the hook imports the package, whose ``import basicsr``
finds BasicSR already in ``sys.modules``.
"""
import os
import sys

# Finders and loaders here are plain classes (the import system is duck-typed) and importlib is
# imported only when they act: importlib.abc alone would cost ~7 ms at every interpreter start.

#: Missing module name -> (replacement module, reason). Each entry is one named compat fix.
LEGACY_MODULES = {
    # basicsr/data/degradations.py imports rgb_to_grayscale from here; torchvision 0.17 removed
    # the private module and kept the function in torchvision.transforms.functional.
    'torchvision.transforms.functional_tensor': ('torchvision.transforms.functional',
                                                 'removed in torchvision 0.17'),
    # basicsr/metrics/niqe.py imports convolve from here; deprecated, removed in SciPy 2.0.
    'scipy.ndimage.filters': ('scipy.ndimage', 'removed in SciPy 2.0'),
    # basicsr/archs/arch_util.py imports LooseVersion; Python 3.12 removed distutils.
    'distutils': ('basicsr_vitloss_startup', 'removed from the standard library in Python 3.12'),
    'distutils.version': ('basicsr_vitloss_startup', 'removed from the standard library in Python 3.12'),
}

#: ``python -m <name>`` targets that are run through basicsr-vitloss's entry points.
REDIRECTED_ENTRY_POINTS = {'basicsr.train': 'basicsr_vitloss.train', 'basicsr.test': 'basicsr_vitloss.test'}

#: What the hook replaced in this process: dotted attribute (or module name) -> (replacement, patch name).
REPLACED = {}

#: The environment variable that switches the hook off.
DISABLE_VARIABLE = 'BASICSR_VITLOSS_DISABLE_HOOK'


class LooseVersion:
    """Minimal stand-in for ``distutils.version.LooseVersion``: compares dotted versions part by
    part, numbers numerically, missing parts as 0 ('2.0' == '2.0.0' < '2.0.1')."""

    def __init__(self, vstring):
        self.vstring = str(vstring)
        parts = self.vstring.replace('+', '.').replace('-', '.').split('.')
        self.version = [(0, int(p)) if p.isdigit() else (-1, p) for p in parts]

    def _keys(self, other):
        other = other if isinstance(other, LooseVersion) else LooseVersion(other)
        n = max(len(self.version), len(other.version))
        return [v + [(0, 0)] * (n - len(v)) for v in (self.version, other.version)]

    def __eq__(self, other):
        mine, theirs = self._keys(other)
        return mine == theirs

    def __lt__(self, other):
        mine, theirs = self._keys(other)
        return mine < theirs

    def __le__(self, other):
        return self < other or self == other

    def __gt__(self, other):
        return not self <= other

    def __ge__(self, other):
        return not self < other

    def __repr__(self):
        return f"LooseVersion('{self.vstring}')"


class _AliasLoader:
    """Creates a missing legacy module from the public attributes of its replacement."""

    def __init__(self, replacement):
        self.replacement = replacement

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        import importlib
        source = importlib.import_module(self.replacement)
        if sys.modules.get(module.__name__) is module:  # imported, not built by hand (the tests do)
            REPLACED[module.__name__] = (module, 'legacy_modules')
        if self.replacement == __name__:  # distutils shim: a package holding `version`
            module.__path__ = []
            module.LooseVersion = LooseVersion
            return
        module.__dict__.update({k: v for k, v in vars(source).items() if not k.startswith('__')})


class LegacyModuleFinder:
    """Supplies the modules in ``LEGACY_MODULES`` when, and only when, they do not exist."""

    def find_spec(self, fullname, path=None, target=None):
        entry = LEGACY_MODULES.get(fullname)
        if entry is None:
            return None
        import importlib.machinery
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(entry[0]), is_package=fullname == 'distutils')


class _EntryPointLoader:
    """Gives runpy a two-line program that calls basicsr-vitloss's entry point."""

    def __init__(self, target, origin):
        self.target = target
        self.origin = origin

    def get_source(self, fullname):
        return f'import {self.target} as _entry\n_entry.main()\n'

    def get_code(self, fullname):
        return compile(self.get_source(fullname), self.origin or '<basicsr-vitloss entry point>', 'exec')

    def is_package(self, fullname):
        return False


def _module_run_with_dash_m():
    """Name given to ``python -m`` while runpy is still locating it, else None."""
    if not sys.argv or sys.argv[0] != '-m':
        return None
    argv = list(getattr(sys, 'orig_argv', []))[1:]
    for i, arg in enumerate(argv):
        if arg == '-m' and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('-m') and len(arg) > 2:
            return arg[2:]
    return None


def _redirect_entry_point():
    main_name = _module_run_with_dash_m()
    target = REDIRECTED_ENTRY_POINTS.get(main_name)
    if target is None or main_name not in sys.modules:
        return
    import importlib.machinery
    import warnings
    module = sys.modules[main_name]
    origin = getattr(module.__spec__, 'origin', None)
    module.__spec__ = importlib.machinery.ModuleSpec(main_name, _EntryPointLoader(target, origin), origin=origin)
    REPLACED[f'{main_name}.__spec__'] = (module.__spec__, 'entry_point_redirect')
    # basicsr/__init__.py imports its train and test modules, so runpy always warns that the
    # module to run is already imported; harmless here because the entry point runs instead.
    warnings.filterwarnings('ignore', message=f"'{main_name}' found in sys.modules", category=RuntimeWarning)


class _PluginActivatingLoader:
    """Runs BasicSR's package, then activates basicsr-vitloss."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        import importlib
        self.loader.exec_module(module)
        REPLACED[f'{module.__name__}.__loader__'] = (self, 'plugin_activation')
        try:
            importlib.import_module('basicsr_vitloss')
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break `import basicsr`
            _warn_not_activated(error)
            return
        _redirect_entry_point()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self.loader, name)


def _raised_at(error):
    """``file:line`` where ``error`` was raised (import machinery frames skipped)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f'{error.filename}:{error.lineno}'
    import traceback
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith('<frozen')]
    return f'{frames[-1].filename}:{frames[-1].lineno}' if frames else 'unknown location'


def _warn_not_activated(error):
    import warnings
    warnings.warn(f'basicsr-vitloss could not be activated ({type(error).__name__}: {error}; raised at '
                  f'{_raised_at(error)}). BasicSR runs without the plugin: its classes are not registered and '
                  "python -m basicsr.train / basicsr.test run BasicSR's own entry points. Repair or reinstall "
                  f'basicsr-vitloss, or set {DISABLE_VARIABLE}=1 to switch its startup hook off.',
                  RuntimeWarning, stacklevel=2)


class BasicSRImportHook:
    """Wraps the loader of the ``basicsr`` package the first time it is imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'basicsr':
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None:
            return spec
        spec.loader = _PluginActivatingLoader(spec.loader)
        return spec


def install():
    """Install both finders once; safe to call repeatedly."""
    if not any(isinstance(f, LegacyModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(LegacyModuleFinder())
    if os.environ.get(DISABLE_VARIABLE, '') not in ('', '0'):
        return
    if not any(isinstance(f, BasicSRImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, BasicSRImportHook())


install()
