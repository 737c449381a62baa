"""basicsr-vitloss-upstream on a pristine basicsr 1.4.2 tree: what each scope writes, BasicSR's lint,
--check, --patch, and the refusal of options keys the tree does not read."""
import shutil
import subprocess
import sys

import pytest
import yaml

from basicsr_vitloss.upstream import bundle, cli, formatting
from basicsr_vitloss.upstream.generate import parse_scopes
from basicsr_vitloss.upstream.options import RefusedOptions

from basicsr_tree import pristine_tree
from upstream_helpers import REPO, written_tree

LEGACY_IMPORTS = {'basicsr/data/degradations.py': 'torchvision.transforms.functional_tensor',
                  'basicsr/metrics/niqe.py': 'scipy.ndimage.filters',
                  'basicsr/archs/arch_util.py': 'distutils.version'}


@pytest.fixture(scope='module')
def full_tree(tmp_path_factory):
    return written_tree(tmp_path_factory.mktemp('upstream') / 'BasicSR', 'compat,method,dpdd')


def _python_files(change):
    return sorted(p for p in change.files if p.endswith('.py'))


def test_scopes_parse_and_dpdd_brings_method():
    assert parse_scopes('dpdd') == ('method', 'dpdd')
    assert parse_scopes('method, compat') == ('compat', 'method')
    with pytest.raises(ValueError, match="unknown scope.*'?mehtod"):
        parse_scopes('mehtod')


def test_compat_scope_rewrites_exactly_the_legacy_imports(tmp_path):
    root, change = written_tree(tmp_path / 'BasicSR', 'compat')
    assert sorted(change.files) == sorted(LEGACY_IMPORTS)
    for path, module in LEGACY_IMPORTS.items():
        text = (root / path).read_text()
        assert f'from {module} import' not in text
    assert 'from torchvision.transforms.functional import rgb_to_grayscale' in \
        (root / 'basicsr/data/degradations.py').read_text()
    assert '_version_tuple(torchvision.__version__) >= (0, 9, 0)' in (root / 'basicsr/archs/arch_util.py').read_text()
    # the only lines that change are those edits (and the helper they need)
    pristine = pristine_tree(tmp_path / 'pristine')
    for path in LEGACY_IMPORTS:
        old = (pristine / path).read_text().splitlines()
        new = (root / path).read_text().splitlines()
        removed = [line for line in old if line not in new]
        assert removed and all('functional_tensor' in r or 'ndimage.filters' in r or 'LooseVersion' in r
                               for r in removed), removed


def test_method_and_dpdd_write_the_bundle_and_never_noncommercial_code(full_tree):
    root, change = full_tree
    for entry in bundle.BUNDLE:
        assert entry.path in change.files
    assert not any('restormer' in p.lower() or 'mprnet' in p.lower() for p in change.files)
    texts = '\n'.join(change.files[p] for p in _python_files(change))
    assert 'basicsr_vitloss' not in texts and 'CHECKPOINT_SIGNATURE' not in texts
    trains = [p for p in change.files if p.startswith('options/train/TransformerPerceptualLoss/train_')]
    tests = [p for p in change.files if p.startswith('options/test/TransformerPerceptualLoss/test_')]
    assert len(trains) == len(tests) == 32  # GoPro 2 nets x 4 losses + DPDD 3 nets x 4 losses x 2 inputs
    assert (root / 'options/train/TransformerPerceptualLoss/README.md').is_file()
    readme = change.files['options/train/TransformerPerceptualLoss/README.md']
    assert 'non-commercial' in readme and 'MIT' in readme and 'pip install timm' in readme


def test_options_use_only_keys_the_tree_reads_and_say_what_was_mapped(full_tree):
    root, change = full_tree
    nafnet = yaml.safe_load(change.files['options/train/TransformerPerceptualLoss/train_NAFNet_GoPro_local.yml'])
    assert 'recipe_gpus' not in nafnet and 'tile' not in nafnet['val']
    assert nafnet['train']['scheduler'] == {'type': 'CosineAnnealingRestartLR', 'periods': [200000],
                                            'restart_weights': [1], 'eta_min': 1.0e-07}
    assert nafnet['train']['use_grad_clip'] is True and nafnet['model_type'] == 'ProgressiveSRModel'
    header = change.files['options/train/TransformerPerceptualLoss/train_NAFNet_GoPro_local.yml'].split('\nname:')[0]
    assert 'TrueCosineAnnealingLR' in header and 'val: tile removed' in header and '(exact)' in header
    source = yaml.safe_load((REPO / 'options/gopro/nafnet_local.yml').read_text())
    assert nafnet['train']['perceptual_opt'] == source['train']['perceptual_opt']
    assert nafnet['network_g'] == source['network_g']


def test_options_with_a_key_the_tree_does_not_read_are_refused(tmp_path, capsys):
    fake = tmp_path / 'plugin'
    shutil.copytree(REPO / 'options', fake / 'options')
    path = fake / 'options/gopro/nafnet_vgg.yml'
    opt = yaml.safe_load(path.read_text())
    opt['train']['mixed_precision'] = 'bf16'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    tree = pristine_tree(tmp_path / 'BasicSR')
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--basicsr', str(tree), '--scope', 'method', '--options-root', str(fake)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'options/gopro/nafnet_vgg.yml: train.mixed_precision (not read by the tree)' in err
    assert not (tree / 'options/train/TransformerPerceptualLoss').exists()  # nothing written
    with pytest.raises(RefusedOptions):
        from basicsr_vitloss.upstream.generate import generate
        from basicsr_vitloss.upstream.tree import BasicSRTree
        generate(BasicSRTree(tree), ('method', ), str(fake))


def test_not_a_basicsr_tree_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--basicsr', str(tmp_path), '--scope', 'method'])
    assert exit_info.value.code == 2
    assert 'is not the root of a BasicSR source checkout' in capsys.readouterr().err


@pytest.mark.integration
def test_generated_python_passes_basicsrs_lint(full_tree):
    """flake8, isort --check-only and yapf --diff with the tree's own setup.cfg, on every file written."""
    root, change = full_tree
    files = _python_files(change)
    assert (root / 'setup.cfg').is_file()
    max_line, ignore = formatting.flake8_settings(str(root / 'setup.cfg'))
    assert max_line == 120
    for tool in (['flake8'], ['isort', '--check-only', '--diff'], ['yapf', '--diff']):
        proc = subprocess.run([sys.executable, '-m', *tool, *files], cwd=root, capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stdout.strip(), f'{tool[0]}:\n{proc.stdout}{proc.stderr}'


@pytest.mark.integration
def test_check_is_clean_after_writing_and_fails_after_an_edit(full_tree, tmp_path, capsys):
    root, _ = full_tree
    copy = tmp_path / 'BasicSR'
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns('experiments', 'results', 'tb_logger'))
    args = ['--basicsr', str(copy), '--scope', 'compat,method,dpdd', '--check']
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 0, capsys.readouterr().out
    assert 'In sync' in capsys.readouterr().out
    loss = copy / 'basicsr/losses/psnr_loss.py'
    loss.write_text(loss.read_text().replace('10 / math.log(10)', '10.0 / math.log(10)'))
    degradations = copy / 'basicsr/data/degradations.py'  # a compat edit undone
    degradations.write_text(degradations.read_text().replace('transforms.functional import',
                                                             'transforms.functional_tensor import'))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert 'basicsr/losses/psnr_loss.py' in out and 'basicsr/data/degradations.py' in out
    assert '-from torchvision.transforms.functional_tensor import' in out


@pytest.mark.integration
def test_patch_applies_to_the_pristine_tree_and_equals_the_written_files(full_tree, tmp_path, capsys):
    root, change = full_tree
    tree = pristine_tree(tmp_path / 'BasicSR')
    patch = tmp_path / 'upstream.patch'
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--basicsr', str(tree), '--scope', 'compat,method,dpdd', '--patch', str(patch)])
    assert exit_info.value.code == 0
    assert not (tree / 'basicsr/losses/vit_perceptual_loss.py').exists()  # --patch leaves the tree unchanged
    description = (tmp_path / 'upstream.md').read_text()
    for section in ('## What', '## Why', '## Tests run', '## Licences'):
        assert section in description
    assert 'restormer_arch' in description  # what was left out, and why
    text = patch.read_text()
    assert text.startswith('From ') and 'Subject: [PATCH]' in text
    proc = subprocess.run(['git', 'apply', '--whitespace=nowarn', str(patch)], cwd=tree, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    for path in change.files:
        assert (tree / path).read_text() == (root / path).read_text(), path
