"""Console command ``basicsr-vitloss-upstream``: write, check or export the BasicSR pull request.

    basicsr-vitloss-upstream --basicsr PATH --scope compat,method,dpdd [--check] [--patch FILE]

Without ``--check`` / ``--patch`` the files are written into the checkout at PATH. ``--check`` writes them
into a temporary copy of the checkout instead and exits 1 with a diff when the checkout differs from
what this version writes (0 when it is in sync). ``--patch FILE`` leaves the checkout unchanged and
writes the change as a ``git am``-able patch FILE plus its pull-request description (FILE with ``.md``).
Exit 2: a usage error (not a BasicSR checkout, unknown scope, an options file refused).
"""
import argparse
import difflib
import os.path as osp
import shutil
import sys
import tempfile

from . import SCOPES
from .formatting import FormatterMissing
from .generate import generate, parse_scopes
from .options import RefusedOptions
from .patch import description, format_patch
from .tree import BasicSRTree, NotABasicSRTree

_COPIED = ('basicsr', 'options', 'setup.cfg', 'VERSION')


def build_parser():
    parser = argparse.ArgumentParser(prog='basicsr-vitloss-upstream', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--basicsr', required=True, help='root of a BasicSR source checkout (git clone or release)')
    parser.add_argument('--scope', required=True, help=f"comma-separated: {', '.join(SCOPES)}")
    parser.add_argument('--check', action='store_true', help='only compare the checkout with what would be written')
    parser.add_argument('--patch', metavar='FILE', help='write a patch and a PR description instead of the files')
    parser.add_argument('--options-root', help="basicsr-vitloss checkout whose options/ are the sources "
                        '(default: the one this package lives in, else the current directory)')
    return parser


def _copy_for_check(root, dest):
    for name in _COPIED:
        src = osp.join(root, name)
        if osp.isdir(src):
            shutil.copytree(src, osp.join(dest, name), ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        elif osp.isfile(src):
            shutil.copy2(src, osp.join(dest, name))


def check(tree, scopes, options_root, out):
    """0 when ``tree`` holds what this version writes for ``scopes``, else 1 with a unified diff on ``out``."""
    with tempfile.TemporaryDirectory(prefix='basicsr_upstream_check_') as tmp:
        _copy_for_check(tree.root, tmp)
        copy = BasicSRTree(tmp)
        change = generate(copy, scopes, options_root)
        copy.write(change.files)
        differs = []
        for path in sorted(change.files):
            expected = change.files[path]
            actual = tree.on_disk(path)
            if expected != actual:
                differs.append(path)
                out.writelines(difflib.unified_diff(actual.splitlines(True), expected.splitlines(True),
                                                    f'checkout/{path}', f'generated/{path}'))
    if differs:
        out.write(f'\n{len(differs)} of {len(change.files)} files differ from what basicsr-vitloss-upstream '
                  f'writes for --scope {",".join(scopes)}: {", ".join(differs)}\n')
        return 1
    out.write(f'In sync: {len(change.files)} files for --scope {",".join(scopes)}.\n')
    return 0


def summary(change, changed=None):
    lines = []
    for edit in change.compat:
        lines.append(f'compat: {edit.path}: {edit.module} ({edit.reason})')
    for path, module, why in change.refused_compat:
        lines.append(f'compat: NOT fixed: {path}: {module}: {why}')
    code = [p for p in change.files if p.endswith('.py') and p not in {e.path for e in change.compat}]
    options = [p for p in change.files if p.endswith('.yml')]
    if code:
        lines.append(f'code: {len(code)} files: {", ".join(sorted(code))}')
    if options:
        lines.append(f'options: {len(options)} files under options/train|test/TransformerPerceptualLoss/')
    for module, why in change.left_out.items():
        lines.append(f'left out: {module}: {why}')
    if changed is not None:
        lines.append(f'{len(changed)} of {len(change.files)} files written or changed.')
    return '\n'.join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        scopes = parse_scopes(args.scope)
        tree = BasicSRTree(args.basicsr)
        if args.check:
            return sys.exit(check(tree, scopes, args.options_root, sys.stdout))
        change = generate(tree, scopes, args.options_root)
    except (NotABasicSRTree, RefusedOptions, ValueError, FileNotFoundError, FormatterMissing) as error:
        print(f'basicsr-vitloss-upstream: {error}', file=sys.stderr)
        return sys.exit(2)
    if args.patch:
        tree.overlay.clear()
        with open(args.patch, 'w', encoding='utf-8', newline='\n') as f:
            f.write(format_patch(tree, change))
        pr = osp.splitext(args.patch)[0] + '.md'
        with open(pr, 'w', encoding='utf-8', newline='\n') as f:
            f.write(description(change))
        print(summary(change) + f'\npatch: {args.patch}\npull-request description: {pr}')
        return sys.exit(0)
    tree.overlay.clear()
    changed = tree.write(change.files)
    print(summary(change, changed))
    return sys.exit(0)


if __name__ == '__main__':  # pragma: no cover
    main()
