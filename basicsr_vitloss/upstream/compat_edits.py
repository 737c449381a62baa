"""Scope ``compat``: the runtime fixes a BasicSR tree still needs on current stacks, as source edits.

One source of truth: the modules that ``basicsr_vitloss_startup.LEGACY_MODULES`` supplies at run time
(removed from torchvision 0.17, SciPy 2.0, Python 3.12). For each one a tree still imports, the import
is rewritten to the module that replaced it, which exists in every version BasicSR supports; the
``distutils.version.LooseVersion`` import becomes a plain version tuple comparison. An edit is made only
where the tree still has the import, so a tree that is already fixed is left unchanged.
"""
import re
from collections import namedtuple

import basicsr_vitloss_startup as startup

#: One source edit: the legacy module it removes, the file, why, and the new text of that file.
SourceEdit = namedtuple('SourceEdit', 'module path reason text')

_DISTUTILS_IMPORT = re.compile(r'^from distutils\.version import LooseVersion\n', re.M)
_LOOSE_COMPARISON = re.compile(r"LooseVersion\(([\w.]+)\) (>=|>|<=|<|==) LooseVersion\('([\d.]+)'\)")


def _import_pattern(module):
    return re.compile(rf'^(\s*)from {re.escape(module)} import ', re.M)


def _version_tuple_helper():
    return ('\n\ndef _version_tuple(version):\n'
            '    """Numeric parts of a version string, (major, minor, patch): \'0.15.2+cu118\' -> (0, 15, 2)."""\n'
            "    return tuple(int(part) for part in re.findall(r'\\d+', version.split('+')[0])[:3])\n")


def _replace_loose_version(text):
    """``LooseVersion(x) >= LooseVersion('0.9.0')`` -> ``_version_tuple(x) >= (0, 9, 0)``, with the helper
    defined after the imports; None when the file uses LooseVersion in any other way."""
    body = _DISTUTILS_IMPORT.sub('', text, count=1)

    def tuple_of(match):
        numbers = tuple(int(p) for p in match.group(3).split('.'))
        return f'_version_tuple({match.group(1)}) {match.group(2)} {numbers!r}'

    body = _LOOSE_COMPARISON.sub(tuple_of, body)
    if 'LooseVersion' in body:
        return None
    if not re.search(r'^import re$', body, re.M):
        body = re.sub(r'^(import \w+)$', r'\1\nimport re', body, count=1, flags=re.M)
    lines = body.split('\n')
    last_import = max(i for i, line in enumerate(lines) if line.startswith(('import ', 'from ')))
    while lines[last_import].rstrip().endswith(('(', ',', '\\')):  # a multi-line import: find its end
        last_import += 1
    lines.insert(last_import + 1, _version_tuple_helper().rstrip('\n'))
    return '\n'.join(lines)


def plan(tree):
    """The source edits ``tree`` (a ``BasicSRTree``) needs, as ``SourceEdit`` rows, and the legacy imports
    that could not be rewritten, as ``(path, module, why)``."""
    edits, refused = [], []
    for rel in tree.python_files():
        text = original = tree.read(rel)
        fixed = []
        for module, (replacement, reason) in startup.LEGACY_MODULES.items():
            if module == 'distutils':
                continue  # the package itself is never imported by BasicSR; distutils.version is
            if not _import_pattern(module).search(text):
                continue
            if replacement == startup.__name__:  # the LooseVersion shim: no module to point at
                new = _replace_loose_version(text)
                if new is None:
                    refused.append((rel, module, 'LooseVersion is used other than in a comparison with a literal'))
                    continue
                text = new
            else:
                text = _import_pattern(module).sub(rf'\1from {replacement} import ', text)
            fixed.append((module, reason))
        if text != original:
            for module, reason in fixed:
                edits.append(SourceEdit(module, rel, reason, text))
    return edits, refused
