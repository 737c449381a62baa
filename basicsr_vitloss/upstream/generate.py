"""What one pull request writes into a BasicSR tree, for a set of scopes."""
from collections import namedtuple

from . import SCOPES, bundle, compat_edits, options
from .formatting import Formatter
from .readme import readme_text

#: files: {path: text} to write; scopes: the scopes generated; compat: the SourceEdit rows; refused_compat:
#: legacy imports that could not be rewritten, (path, module, why); left_out: {module: why} of code never written
Change = namedtuple('Change', 'files scopes compat refused_compat left_out')


def parse_scopes(text):
    """``'compat,method'`` -> ('compat', 'method') in SCOPES order; ValueError for unknown names. ``dpdd``
    builds on ``method`` (its options use the method's losses), so it brings ``method`` along."""
    names = [s.strip() for s in str(text).split(',') if s.strip()]
    unknown = [s for s in names if s not in SCOPES]
    if unknown or not names:
        raise ValueError(f"--scope: unknown scope(s) {', '.join(unknown) or '(none)'}; expected a comma-separated "
                         f"list of {', '.join(SCOPES)}.")
    if 'dpdd' in names and 'method' not in names:
        names.append('method')
    return tuple(s for s in SCOPES if s in names)


def generate(tree, scopes, options_root=None, formatter=None):
    """The ``Change`` for ``tree`` (a ``BasicSRTree``; its overlay receives the files) and ``scopes``."""
    formatter = formatter or Formatter(tree.setup_cfg())
    files = {}
    edits, refused = [], []
    if 'compat' in scopes:
        edits, refused = compat_edits.plan(tree)
        files.update({e.path: e.text for e in edits})
    code_scopes = [s for s in scopes if s != 'compat']
    if code_scopes:
        files.update({path: formatter(text) for path, text in bundle.files(code_scopes).items()})
        tree.overlay.update(files)  # the options are checked against the tree as it will be
        written = options.files(tree, code_scopes, options_root)
        files.update(written)
        files[f'options/train/{options.FOLDER}/README.md'] = readme_text(code_scopes, sorted(written))
    tree.overlay.update(files)
    left_out = dict(bundle.LEFT_OUT) if code_scopes else {}
    return Change(files, scopes, edits, refused, left_out)
