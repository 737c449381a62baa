"""Feature ``registry_coexistence``: the plugin and other BasicSR code share BasicSR's registries.

The rule, the same in both import orders: **code other than the plugin keeps the plain name; the
plugin's class is reachable under ``<Name>_vitloss``** (BasicSR's suffix convention of
``Registry._do_register(name, obj, suffix)``).

- The plugin registered ``Name`` first and other code registers ``Name`` later (a downstream project's
  own ``Restormer``): the other class takes ``Name`` and the plugin's moves to ``Name_vitloss``.
- Other code holds ``Name`` when the plugin registers (a BasicSR tree that ships ``NAFNet``, or a project
  imported before the plugin): the plugin's class is registered as ``Name_vitloss``; everything else of
  the plugin stays active.

Either way one ``RuntimeWarning`` names both classes and the ``type:`` that builds the plugin's. Two
classes of other code under one name still fail (KeyError naming both); registering the same definition
again (``importlib.reload``) replaces it silently. ``type: Name_vitloss`` also builds the plugin's class
when nobody contests ``Name``, so options can name the plugin's class explicitly. When a contested
``type: Name`` is looked up, BasicSR's root logger says once which class is built.

This is a feature, applied whatever the installed BasicSR: a BasicSR that no longer needs the fix
``registry_close_matches`` still needs the rule. Registration is decided here only (that fix replaces
``Registry.get`` alone); this feature's ``get`` wraps whichever ``get`` is in place.
"""
import logging
import os
import sys
import warnings
import weakref

from basicsr_vitloss.utils.registration import PLUGIN_SUFFIX, is_plugin_object, plugin_key

from . import basicsr_feature, replace

#: The options key that names an object of each BasicSR registry (for the messages).
_OPTION_KEY = {'model': 'model_type'}
_LOGGED = weakref.WeakKeyDictionary()  # registry -> type names whose contested lookup was logged


def describe(obj):
    """``module.qualname`` of a registered class or function."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def same_definition(a, b):
    """Whether ``a`` and ``b`` are the same definition (module and qualname), e.g. before and after a reload."""
    return getattr(a, '__module__', None) == getattr(b, '__module__', None) and \
        getattr(a, '__qualname__', None) == getattr(b, '__qualname__', None)


def _option(registry, key):
    return f"{_OPTION_KEY.get(registry._name, 'type')}: {key}"


def _caller_stacklevel():
    """Stack level of the first frame outside BasicSR's registry and this module (the registering code)."""
    skip = {os.path.normcase(os.path.abspath(__file__))}
    level, frame = 1, sys._getframe(1)
    while frame is not None:
        filename = os.path.normcase(os.path.abspath(frame.f_code.co_filename))
        if filename not in skip and not filename.endswith(os.path.join('basicsr', 'utils', 'registry.py')):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def _warn_shared(registry, key, other, plugin):
    warnings.warn(f"'{key}' in BasicSR's {registry._name} registry is registered by {describe(other)} and by "
                  f'basicsr-vitloss ({describe(plugin)}). Other code keeps the plain name: `{_option(registry, key)}` '
                  f'builds {describe(other)}; the plugin\'s is registered as \'{plugin_key(key)}\' '
                  f'(`{_option(registry, plugin_key(key))}`). See docs/compat.md, "Coexisting with other BasicSR '
                  'code".', RuntimeWarning, stacklevel=_caller_stacklevel())


def _refuse(registry, key, old, obj):
    raise KeyError(f"'{key}' is already registered in BasicSR's {registry._name} registry by {describe(old)}; "
                   f'cannot register {describe(obj)} under the same name.')


@basicsr_feature('registry_coexistence', replaces=('basicsr.utils.registry.Registry._do_register',
                                                   'basicsr.utils.registry.Registry.get'))
def enable_registry_coexistence():
    """Apply the coexistence rule to every BasicSR registry (module docstring). Once per process; applied
    by the package before it registers its own classes."""
    from basicsr.utils.registry import Registry
    original_register, original_get = Registry._do_register, Registry.get

    def _do_register(self, name, obj, suffix=None):
        key = f'{name}_{suffix}' if isinstance(suffix, str) else name
        old = self._obj_map.get(key)
        if old is None:
            original_register(self, name, obj, suffix)
        elif same_definition(old, obj):  # the same class again (reload): replaces itself
            self._obj_map[key] = obj
        elif is_plugin_object(old) and not is_plugin_object(obj):  # plugin first: the other code takes the name
            moved = self._obj_map.get(plugin_key(key))
            if moved is not None and not same_definition(moved, old):
                _refuse(self, plugin_key(key), moved, old)
            self._obj_map[plugin_key(key)] = old
            self._obj_map[key] = obj
            _warn_shared(self, key, obj, old)
        elif is_plugin_object(obj) and not is_plugin_object(old):  # other code first: the plugin takes Name_vitloss
            moved = self._obj_map.get(plugin_key(key))
            if moved is not None and not same_definition(moved, obj):
                _refuse(self, plugin_key(key), moved, obj)
            self._obj_map[plugin_key(key)] = obj
            if moved is None:
                _warn_shared(self, key, old, obj)
        else:  # two classes of other code (or two of the plugin): BasicSR's rule, with both named
            _refuse(self, key, old, obj)

    def get(self, name, suffix='basicsr'):
        obj = self._obj_map.get(name)
        if obj is None and isinstance(name, str) and name.endswith('_' + PLUGIN_SUFFIX):
            plain = self._obj_map.get(name[:-len(PLUGIN_SUFFIX) - 1])  # Name_vitloss of an uncontested plugin name
            if plain is not None and is_plugin_object(plain) and plugin_key(plain.__name__) == name:
                return plain
        obj = original_get(self, name, suffix)
        moved = self._obj_map.get(plugin_key(name)) if isinstance(name, str) else None
        logged = _LOGGED.setdefault(self, set())
        if moved is not None and moved is not obj and name not in logged:
            logged.add(name)
            logging.getLogger('basicsr').info(
                f"{_option(self, name)} builds {describe(obj)}; basicsr-vitloss's {describe(moved)} is "
                f"'{plugin_key(name)}' in the {self._name} registry.")
        return obj

    replace(Registry, '_do_register', _do_register)
    replace(Registry, 'get', get)
