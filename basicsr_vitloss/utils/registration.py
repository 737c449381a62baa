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
