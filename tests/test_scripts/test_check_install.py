"""scripts/check_install.py --opt: the plugin-only keys and types of options files, and whether this interpreter
would honour them (the plugin active) or not (exit 1)."""
import sys

import pytest
import yaml

from conftest import REPO, load_script, run

OPTIONS = REPO / 'options' / 'gopro' / 'mprnet_local.yml'


def _stock_options(tmp_path):
    path = tmp_path / 'stock.yml'
    path.write_text(yaml.safe_dump({'name': 'x', 'model_type': 'SRModel', 'network_g': {'type': 'RRDBNet'},
                                    'train': {'pixel_opt': {'type': 'L1Loss'}, 'optim_g': {'type': 'Adam'}}}))
    return path


@pytest.mark.integration
def test_plugin_active_lists_and_succeeds(tmp_path):
    proc = run(['python', REPO / 'scripts' / 'check_install.py', '--opt', OPTIONS, _stock_options(tmp_path)],
               cwd=tmp_path)
    out = proc.stdout
    assert out.startswith('basicsr-vitloss is active in this interpreter.')
    assert 'type MPRNet (network_g:type)' in out and 'key train:edge_opt' in out and 'key train:use_grad_clip' in out
    assert 'stock BasicSR' not in out
    assert 'stock.yml: needs nothing of basicsr-vitloss.' in out


@pytest.mark.integration
def test_plugin_disabled_says_what_stock_basicsr_does_and_fails(tmp_path):
    proc = run(['python', REPO / 'scripts' / 'check_install.py', '--opt', OPTIONS], cwd=tmp_path, check=False,
               BASICSR_VITLOSS_DISABLE_HOOK=1)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith('basicsr-vitloss is NOT active in this interpreter.')
    assert 'type MPRNet (network_g:type): stock BasicSR fails: unknown type' in out
    assert 'key train:edge_opt: stock BasicSR: ignored silently: MPRNet trains without its edge loss' in out
    assert 'key train:use_grad_clip: stock BasicSR: ignored silently: no gradient clipping' in out
    assert 'BASICSR_VITLOSS_DISABLE_HOOK' in out.splitlines()[-1]
    # options that need nothing of the plugin pass without it
    proc = run(['python', REPO / 'scripts' / 'check_install.py', '--opt', _stock_options(tmp_path)], cwd=tmp_path,
               BASICSR_VITLOSS_DISABLE_HOOK=1)
    assert 'needs nothing of basicsr-vitloss' in proc.stdout


def test_unreadable_options_are_named(tmp_path, capsys, monkeypatch):
    check_install = load_script('check_install')
    bad = tmp_path / 'bad.yml'
    bad.write_text('a: [1, 2\n')
    monkeypatch.setattr(sys, 'argv', ['check_install.py'])
    assert check_install.main(['--opt', str(bad), str(tmp_path / 'missing.yml')]) == 1
    out = capsys.readouterr().out
    assert f'{bad}: cannot read it as YAML options' in out and 'missing.yml: cannot read it' in out


def test_active_plugin_in_process_lists_the_keys(capsys):
    check_install = load_script('check_install')
    assert check_install.main(['--opt', str(OPTIONS)]) == 0
    out = capsys.readouterr().out
    assert 'type EdgeLoss (train:edge_opt:type)' in out and 'key val:tile' in out
