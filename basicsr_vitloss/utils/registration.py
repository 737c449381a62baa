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
