"""Run a script of a BasicSR source tree as ``python basicsr/<script>.py`` would, with basicsr-vitloss
made unimportable. Started by ``basicsr_tree.run_tree`` as

    python -S run_without_plugin.py TREE SCRIPT [ARGS...]

(standard library only: nothing may be imported before the blocker is in place).

- ``-S``: site.py does not run, so no ``.pth`` file is processed by Python itself; this runner then
  adds the site directories listed in ``$BASICSR_TREE_SITE_DIRS`` (os.pathsep-separated) and processes
  their ``.pth`` files EXCEPT those that mention basicsr_vitloss (``basicsr_vitloss.pth`` imports the
  plugin's startup hook; an editable install's ``__editable__`` file installs a finder for it). Every
  other ``.pth`` file (setuptools' ``distutils-precedence.pth``, editable installs of other packages)
  runs as in a normal interpreter.
- A finder first on ``sys.meta_path`` raises ModuleNotFoundError for ``basicsr_vitloss`` and
  ``basicsr_vitloss_startup`` (and their submodules), wherever they are installed.
- ``sys.path`` is ``[TREE/basicsr (the script's folder, as Python puts it), TREE, site dirs ...]``, as for
  ``PYTHONPATH=TREE python TREE/basicsr/train.py`` (BasicSR's documented way to run a checkout).

It fails loudly (exit status 3, a line starting ``run_without_plugin:``) if either blocked module can
still be imported, if ``basicsr`` would not be imported from TREE, or if, after the script, a
``basicsr_vitloss*`` module is in ``sys.modules`` or ``basicsr`` came from elsewhere. The script's own
exceptions propagate unchanged (exit status 1, the traceback on stderr).
"""
import os
import runpy
import sys

BLOCKED = ('basicsr_vitloss', 'basicsr_vitloss_startup')
SITE_DIRS_VARIABLE = 'BASICSR_TREE_SITE_DIRS'


class BlockPlugin:
    """Meta-path finder that makes the plugin unimportable, whichever finder would have found it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{fullname}' (blocked by run_without_plugin)", name=fullname)
        return None


def fail(message):
    sys.stdout.flush()
    sys.stderr.write(f'run_without_plugin: {message}\n')
    sys.stderr.flush()
    os._exit(3)


def inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def add_site_dir(sitedir):
    """``site.addsitedir`` without the plugin's .pth files; returns the names of the files skipped."""
    import site
    if sitedir not in sys.path:
        sys.path.append(sitedir)
    skipped = []
    try:
        names = sorted(n for n in os.listdir(sitedir) if n.endswith('.pth') and not n.startswith('.'))
    except OSError:
        return skipped
    for name in names:
        try:
            with open(os.path.join(sitedir, name), encoding='utf-8', errors='replace') as f:
                text = f.read()
        except OSError:
            continue
        if 'basicsr_vitloss' in text:
            skipped.append(name)
            continue
        site.addpackage(sitedir, name, None)
    return skipped


def main():
    if len(sys.argv) < 3:
        fail('usage: python -S run_without_plugin.py TREE SCRIPT [ARGS...]')
    if not sys.flags.no_site:
        fail('must be started with python -S (otherwise site.py has already run basicsr_vitloss.pth)')
    tree, script = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    blocker = BlockPlugin()
    sys.meta_path.insert(0, blocker)
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))]
    sys.path[:0] = [os.path.dirname(script), tree]
    for sitedir in filter(None, os.environ.get(SITE_DIRS_VARIABLE, '').split(os.pathsep)):
        add_site_dir(sitedir)
    sys.meta_path.remove(blocker)  # first again: .pth files may have inserted finders before it
    sys.meta_path.insert(0, blocker)

    import importlib.util
    for name in BLOCKED:
        if name in sys.modules:
            fail(f'{name} was imported before the script started')
        try:
            __import__(name)
        except ImportError:
            continue
        fail(f'{name} is importable: the plugin is not blocked')
    spec = importlib.util.find_spec('basicsr')
    if spec is None or not spec.origin or not inside(spec.origin, tree):
        fail(f'basicsr would be imported from {spec and spec.origin}, not from the tree {tree}')

    sys.argv = [script] + sys.argv[3:]
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        leaked = sorted(n for n in sys.modules if n.split('.')[0] in BLOCKED)
        if leaked:
            fail(f'plugin modules were imported: {leaked}')
        basicsr = sys.modules.get('basicsr')
        if basicsr is not None and not inside(basicsr.__file__, tree):
            fail(f'basicsr was imported from {basicsr.__file__}, not from the tree {tree}')


if __name__ == '__main__':
    main()
