"""Module discovery for the registry subpackages, following BasicSR's file-name convention."""
import importlib
import pkgutil


def import_modules_with_suffix(package, path, suffix):
    """Import every module of ``package`` whose name ends with ``suffix`` (a str or tuple), so that
    their registry decorators run; returns the imported module names, sorted."""
    names = sorted(m.name for m in pkgutil.iter_modules(path) if m.name.endswith(suffix))
    for name in names:
        importlib.import_module(f'{package}.{name}')
    return names


def unknown_name_message(registry, name):
    """Message for a name missing from a BasicSR registry, with the closest registered names."""
    import difflib
    names = sorted(registry._obj_map.keys())
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.6)
    msg = f"No object named '{name}' in BasicSR's {registry._name} registry."
    if close:
        msg += f' Did you mean: {", ".join(close)}?'
    else:
        msg += f' Registered names: {", ".join(names)}.'
    return msg


#: Suffix of the registry key under which a plugin class lives when other code holds its plain name
#: (BasicSR's ``Registry._do_register(name, obj, suffix)`` convention: key ``f'{name}_{suffix}'``).
PLUGIN_SUFFIX = 'vitloss'
PLUGIN_PACKAGE = 'basicsr_vitloss'


def is_plugin_object(obj):
    """Whether ``obj`` (a registered class or function) is one of basicsr-vitloss's own; a compat fix's
    replacement of a BasicSR entry (``calculate_niqe``) is not: that name stays BasicSR's."""
    from basicsr_vitloss.compat import MARK
    if getattr(obj, MARK, None):
        return False
    module = getattr(obj, '__module__', None) or ''
    return module == PLUGIN_PACKAGE or module.startswith(PLUGIN_PACKAGE + '.')


def plugin_key(name):
    """The registry key of the plugin's ``name`` when other code holds the plain name: ``<name>_vitloss``."""
    return f'{name}_{PLUGIN_SUFFIX}'


def plugin_entries(registry):
    """``{plain name: key}`` of every plugin object in ``registry``: the key is the plain name, or
    ``<name>_vitloss`` where other code holds the plain name."""
    entries = {}
    for key, obj in registry:
        if is_plugin_object(obj):
            plain = key[:-len(PLUGIN_SUFFIX) - 1] if key == plugin_key(getattr(obj, '__name__', '')) else key
            entries[plain] = key
    return entries


def plugin_class(registry, name):
    """The plugin's own object registered as ``name`` in ``registry``, whichever key holds it (the plain
    name, or ``<name>_vitloss`` when other code registered ``name`` too): what plugin code uses when it
    needs its own class by name. KeyError naming the registry and the name if the plugin has none."""
    for key in (name, plugin_key(name)):
        obj = registry._obj_map.get(key)
        if obj is not None and is_plugin_object(obj):
            return obj
    raise KeyError(f"basicsr-vitloss registered no object named '{name}' in BasicSR's {registry._name} registry "
                   f"(looked up '{name}' and '{plugin_key(name)}').")


def plugin_type_name(registry, name):
    """The ``type:`` that builds the plugin's ``name`` in ``registry`` in this process: ``name`` itself, or
    ``<name>_vitloss`` when other code holds the plain name; None when the plugin did not register it."""
    for key in (name, plugin_key(name)):
        obj = registry._obj_map.get(key)
        if obj is not None and is_plugin_object(obj):
            return key
    return None
