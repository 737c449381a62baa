"""Fix ``registry_close_matches``: BasicSR's registries name the closest names of an unknown ``type:``."""
from basicsr_vitloss.utils.registration import unknown_name_message

from . import compat_fix, is_original, replace, source


def _registry_needs_fix():
    from basicsr.utils.registry import Registry
    return is_original(Registry.get) and 'get_close_matches' not in source(Registry.get)


@compat_fix(_registry_needs_fix, replaces=('basicsr.utils.registry.Registry.get',
                                           'basicsr.utils.registry.Registry._do_register'))
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

    replace(Registry, 'get', get)
    replace(Registry, '_do_register', _do_register)


def _same_definition(a, b):
    return getattr(a, '__module__', None) == getattr(b, '__module__', None) and \
        getattr(a, '__qualname__', None) == getattr(b, '__qualname__', None)
