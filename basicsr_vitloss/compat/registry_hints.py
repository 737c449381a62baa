"""Fix ``registry_close_matches``: BasicSR's registries name the closest names of an unknown ``type:``.
Registration (taken names, reloads, names shared with other code) is the feature ``registry_coexistence``
(``compat/coexistence.py``)."""
from basicsr_vitloss.utils.registration import unknown_name_message

from . import compat_fix, is_original, replace, source


def _registry_needs_fix():
    from basicsr.utils.registry import Registry
    return is_original(Registry.get) and 'get_close_matches' not in source(Registry.get)


@compat_fix(_registry_needs_fix, replaces='basicsr.utils.registry.Registry.get')
def registry_close_matches():
    """Unknown ``type:`` names raise a KeyError naming the registry and the closest names
    (stock BasicSR prints a line and raises a bare "not found")."""
    from basicsr.utils.registry import Registry

    def get(self, name, suffix='basicsr'):
        obj = self._obj_map.get(name)
        if obj is None:
            obj = self._obj_map.get(f'{name}_{suffix}')
        if obj is None:
            raise KeyError(unknown_name_message(self, name))
        return obj

    replace(Registry, 'get', get)
