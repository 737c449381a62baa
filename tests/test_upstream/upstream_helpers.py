"""Helpers of the upstream tests: a BasicSR tree with the pull request written into it.

``BASICSR_UPSTREAM_SOURCE=/path/to/BasicSR`` runs the same tests on another checkout (e.g. BasicSR
master, prepared with ``basicsr_tree.prepare_git_checkout``) instead of the pristine 1.4.2 tree; that
is how docs/upstream.md's master column was measured."""
import os
import shutil
from pathlib import Path

from basicsr_vitloss.upstream.generate import generate, parse_scopes
from basicsr_vitloss.upstream.tree import BasicSRTree

from basicsr_tree import pristine_tree

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: a tiny MAE-layout ViT (timm keyword arguments)
TINY_VIT_KW = {'depth': 3, 'embed_dim': 48, 'num_heads': 3}


def written_tree(dest, scopes='compat,method,dpdd'):
    """A pristine BasicSR tree at ``dest`` with ``basicsr-vitloss-upstream --scope scopes`` applied (in
    process, as the command does); returns (tree root, the Change written)."""
    source = os.environ.get('BASICSR_UPSTREAM_SOURCE')
    if source:
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns('.git', 'experiments', 'results', 'tb_logger'))
        root = Path(dest)
    else:
        root = pristine_tree(dest)
    tree = BasicSRTree(root)
    change = generate(tree, parse_scopes(scopes), str(REPO))
    tree.overlay.clear()
    tree.write(change.files)
    return Path(root), change
