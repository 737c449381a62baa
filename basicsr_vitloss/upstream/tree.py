"""A BasicSR source checkout (git clone or unpacked release) that the upstream command writes into."""
import os
import os.path as osp


class NotABasicSRTree(ValueError):
    """The given folder is not the root of a BasicSR source checkout."""


class BasicSRTree:
    """Files of a BasicSR checkout, read and written by paths relative to its root (``/``-separated).

    ``overlay`` holds files generated but not yet written, so that later steps (the options check)
    see the tree as it will be."""

    def __init__(self, root):
        self.root = osp.abspath(root)
        missing = [p for p in ('basicsr/__init__.py', 'basicsr/train.py', 'basicsr/utils/registry.py')
                   if not osp.isfile(osp.join(self.root, p))]
        if missing:
            raise NotABasicSRTree(f'{root} is not the root of a BasicSR source checkout: {", ".join(missing)} '
                                  'missing (expected a git clone of XPixelGroup/BasicSR or an unpacked release, '
                                  'with basicsr/ and setup.cfg at its top).')
        self.overlay = {}

    def path(self, rel):
        return osp.join(self.root, *rel.split('/'))

    def exists(self, rel):
        return rel in self.overlay or osp.isfile(self.path(rel))

    def read(self, rel):
        if rel in self.overlay:
            return self.overlay[rel]
        with open(self.path(rel), encoding='utf-8') as f:
            return f.read()

    def on_disk(self, rel):
        """The text of ``rel`` as the checkout holds it now (the overlay ignored); '' when it does not exist."""
        if not osp.isfile(self.path(rel)):
            return ''
        with open(self.path(rel), encoding='utf-8') as f:
            return f.read()

    def python_files(self, folder='basicsr'):
        """Relative paths of every .py file under ``folder``, the overlay's included, sorted."""
        found = set()
        for dirpath, dirnames, filenames in os.walk(self.path(folder)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.') and d != '__pycache__')
            for name in filenames:
                if name.endswith('.py'):
                    found.add(osp.relpath(osp.join(dirpath, name), self.root).replace(os.sep, '/'))
        found.update(rel for rel in self.overlay if rel.startswith(folder + '/') and rel.endswith('.py'))
        return sorted(found)

    def version(self):
        """BasicSR's version as its VERSION file states it ('unknown' when absent)."""
        try:
            return self.read('VERSION').strip()
        except OSError:
            return 'unknown'

    def setup_cfg(self):
        """Path of the tree's setup.cfg (its flake8 / yapf / isort settings), or None."""
        path = self.path('setup.cfg')
        return path if osp.isfile(path) else None

    def write(self, files):
        """Write ``{relative path: text}``; returns the paths whose content changed."""
        changed = []
        for rel, text in files.items():
            path = self.path(rel)
            if osp.isfile(path) and self.on_disk(rel) == text:
                continue
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'w', encoding='utf-8', newline='\n') as f:
                f.write(text)
            changed.append(rel)
        return changed
