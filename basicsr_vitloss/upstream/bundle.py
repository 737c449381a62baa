"""Scopes ``method`` and ``dpdd``: this package's modules written into BasicSR's layout.

Each ``BundleFile`` names a module of this package and where it goes in a BasicSR tree; its text is
the module's own source with the imports of this package rewritten to the bundle's paths and the
plugin-only parts removed (``CHECKPOINT_SIGNATURE``: this package's load-error hints). The files keep
BasicSR's discovery rules: losses end in ``_loss.py``, archs in ``_arch.py``, datasets in
``_dataset.py``, models in ``_model.py``, so BasicSR's own scans import them.
"""
import ast
import importlib
import inspect
import re
from collections import namedtuple

#: module: this package's module; path: where it goes in the tree; scope; licence of the architecture
#: or code it implements, with the source that states it.
BundleFile = namedtuple('BundleFile', 'module path scope licence')

BUNDLE = (
    BundleFile('basicsr_vitloss.archs.arch_util', 'basicsr/archs/padding_util.py', 'method', 'own code'),
    BundleFile('basicsr_vitloss.losses.vit_features', 'basicsr/losses/vit_features.py', 'method', 'own code'),
    BundleFile('basicsr_vitloss.losses.vit_losses', 'basicsr/losses/vit_perceptual_loss.py', 'method', 'own code'),
    BundleFile('basicsr_vitloss.losses.psnr_loss', 'basicsr/losses/psnr_loss.py', 'method',
               'MIT (NAFNet, megvii-research/NAFNet)'),
    BundleFile('basicsr_vitloss.archs.nafnet_arch', 'basicsr/archs/nafnet_arch.py', 'method',
               'MIT (megvii-research/NAFNet)'),
    BundleFile('basicsr_vitloss.archs.uformer_arch', 'basicsr/archs/uformer_arch.py', 'method',
               'MIT (ZhendongWang6/Uformer)'),
    BundleFile('basicsr_vitloss.models.progressive_model', 'basicsr/models/progressive_model.py', 'method',
               'own code'),
    BundleFile('basicsr_vitloss.archs.dpdnet_arch', 'basicsr/archs/dpdnet_arch.py', 'dpdd',
               'MIT (Abdullah-Abuolaim/defocus-deblurring-dual-pixel)'),
    BundleFile('basicsr_vitloss.data.image_io', 'basicsr/data/image_io.py', 'dpdd', 'own code'),
    BundleFile('basicsr_vitloss.data.view_transforms', 'basicsr/data/view_transforms.py', 'dpdd', 'own code'),
    BundleFile('basicsr_vitloss.data.dpdd_files', 'basicsr/data/dpdd_files.py', 'dpdd', 'own code'),
    BundleFile('basicsr_vitloss.data.dpdd_dataset', 'basicsr/data/dpdd_dataset.py', 'dpdd', 'own code'),
)

#: Code of this package that is never written into BasicSR (Apache-2.0): module -> why.
LEFT_OUT = {
    'basicsr_vitloss.archs.restormer_arch': 'Restormer is under a non-commercial academic licence '
    '(swz30/Restormer LICENSE.md)',
    'basicsr_vitloss.archs.mprnet_arch': 'MPRNet is under a non-commercial academic licence (swz30/MPRNet LICENSE.md)',
    'basicsr_vitloss.losses.mprnet_loss': "MPRNet's EdgeLoss, used only with MPRNet",
}

#: Names defined at module level in this package that have no meaning in BasicSR.
PLUGIN_ONLY_NAMES = ('CHECKPOINT_SIGNATURE', )


class BundleError(RuntimeError):
    """A module of the bundle imports something the bundle does not contain."""


def files_of(scopes):
    """The ``BundleFile`` rows of ``scopes``, in order."""
    return [f for f in BUNDLE if f.scope in scopes]


def _module_targets(bundle):
    return {f.module: f.path[:-len('.py')].replace('/', '.') for f in bundle}


def _strip_plugin_only(source):
    """Remove module-level assignments of ``PLUGIN_ONLY_NAMES`` with the ``#:`` comment lines above them."""
    lines = source.split('\n')
    drop = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) in PLUGIN_ONLY_NAMES for t in node.targets):
            start = node.lineno - 1
            while start > 0 and lines[start - 1].startswith('#:'):
                start -= 1
            drop.update(range(start, node.end_lineno))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return re.sub(r'\n{3,}$', '\n', '\n'.join(kept).rstrip('\n') + '\n')


def _rewrite_imports(source, module, targets, all_scopes_targets):
    """Point imports of this package (absolute or relative) at the bundle's modules."""
    package = module.rsplit('.', 1)[0]

    def absolute(name, level):
        if level == 0:
            return name
        base = package.split('.')
        base = base[:len(base) - (level - 1)]
        return '.'.join(base + ([name] if name else []))

    lines = source.split('\n')
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ImportFrom):
            continue
        name = absolute(node.module or '', node.level)
        if not name.startswith('basicsr_vitloss'):
            continue
        if name not in targets:
            where = 'another scope' if name in all_scopes_targets else 'no scope'
            raise BundleError(f'{module} imports {name}, which the bundle writes in {where}; add it to '
                              'basicsr_vitloss/upstream/bundle.py BUNDLE (or the scope).')
        first = lines[node.lineno - 1]
        lines[node.lineno - 1] = re.sub(r'from \S+ import', f'from {targets[name]} import', first, count=1)
    return '\n'.join(lines)


def module_source(module):
    """The source text of a module of this package."""
    return inspect.getsource(importlib.import_module(module))


def files(scopes):
    """``{tree path: text}`` of the bundle's code for ``scopes`` (before formatting)."""
    bundle = files_of(scopes)
    targets = _module_targets(bundle)
    everything = _module_targets(BUNDLE)
    out = {}
    for entry in bundle:
        source = _strip_plugin_only(module_source(entry.module))
        text = _rewrite_imports(source, entry.module, targets, everything)
        leftover = re.findall(r'^\s*(?:from|import) basicsr_vitloss\S*', text, re.M)
        if leftover:
            raise BundleError(f'{entry.module}: imports of this package remain after rewriting: {leftover}')
        out[entry.path] = text
    return out
