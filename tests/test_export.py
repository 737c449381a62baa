"""ONNX export (``basicsr-vitloss-export``): parity with PyTorch through onnxruntime for every arch, dual
pixel and single image, dynamic sizes checked at a second size, the fixed-size fallback, the exporter
fallback, and the failure paths (parity above the tolerance, bad weights, bad options)."""
import os
import re
import subprocess
import sys

import onnx
import pytest
import torch
import yaml

import basicsr_vitloss  # noqa: F401  (registers the architectures)
from basicsr.archs import build_network
from basicsr_vitloss import export
from conftest import REPO

TINY_NAFNET = dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
TINY_RESTORMER = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])
# win_size 2: padding multiple 32; a shifted-window block in the bottleneck and the last decoder level
TINY_UFORMER = dict(embed_dim=8, depths=[1, 1, 1, 1, 2, 1, 1, 1, 2], num_heads=[1, 1, 2, 2, 2, 2, 2, 1, 1],
                    win_size=2, img_size=64, modulator=True)
TINY_MPRNET = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One thread for PyTorch and onnxruntime: tiny networks, and CI machines whose cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(export, 'ORT_THREADS', 1)
    yield
    torch.set_num_threads(threads)


PARITY = re.compile(r'parity vs PyTorch \(onnxruntime\) at (\d+)x(\d+).*max abs diff (\S+)')


def write_case(tmp_path, network_g, seed=0, key='params'):
    """Options YAML and a checkpoint of ``network_g`` with random (non-trivial) weights; returns their paths."""
    torch.manual_seed(seed)
    net = build_network(dict(network_g))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # NAFNet's beta / gamma start at zero (identity blocks): perturb every parameter
        for param in net.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    opt, weights = tmp_path / 'net.yml', tmp_path / 'net.pth'
    opt.write_text(yaml.safe_dump({'name': 'export_test', 'network_g': dict(network_g)}))
    torch.save({key: net.state_dict()}, weights)
    return opt, weights


def run_export(capsys, opt, weights, output, *extra):
    """``main`` in-process; returns its stdout and the (size, diff) parity lines it printed."""
    assert export.main(['--opt', str(opt), '--weights', str(weights), '--output', str(output), *extra]) == 0
    out = capsys.readouterr().out
    checks = [((int(h), int(w)), float(d)) for h, w, d in PARITY.findall(out)]
    assert len(checks) == 2, out
    assert all(diff <= export.TOLERANCE for _, diff in checks), out
    onnx.checker.check_model(str(output))
    return out, checks


BATCH_SIZE, SIZE_ONLY = 'dynamic batch/height/width', 'dynamic height/width, batch 1'
CASES = {  # name: (network_g, --height, --width, kind of model expected)
    'nafnet_dual': (dict(type='NAFNet', img_channel=6, out_channels=3, **TINY_NAFNET), 16, 20, BATCH_SIZE),
    'nafnet_single': (dict(type='NAFNet', img_channel=3, **TINY_NAFNET), 13, 18, BATCH_SIZE),
    'restormer_dual': (dict(type='Restormer', inp_channels=6, dual_pixel_task=True, **TINY_RESTORMER), 16, 20,
                       BATCH_SIZE),
    'restormer_single': (dict(type='Restormer', inp_channels=3, **TINY_RESTORMER), 11, 16, BATCH_SIZE),
    'uformer_dual': (dict(type='Uformer', dd_in=6, **TINY_UFORMER), 32, 40, BATCH_SIZE),
    'uformer_single': (dict(type='Uformer', **TINY_UFORMER), 35, 32, BATCH_SIZE),
    'dpdnet_dual': (dict(type='DPDNet', in_channels=6, base_channels=4), 16, 20, BATCH_SIZE),
    'dpdnet_single': (dict(type='DPDNet', in_channels=3, base_channels=4), 19, 16, BATCH_SIZE),
    # MPRNet's forward takes len(x) (a Python int when traced): the batch stays 1
    'mprnet_dual': (dict(type='MPRNet', in_c=6, out_c=3, **TINY_MPRNET), 16, 24, SIZE_ONLY),
}


@pytest.mark.parametrize('name', list(CASES))
@pytest.mark.integration
def test_dynamic_export_matches_pytorch_at_two_sizes(tmp_path, capsys, name):
    network_g, height, width, kind = CASES[name]
    opt, weights = write_case(tmp_path, network_g)
    output = tmp_path / 'model.onnx'
    out, checks = run_export(capsys, opt, weights, output, '--height', str(height), '--width', str(width),
                             '--dynamic')
    assert f'{kind}, torchscript exporter' in out
    second = (height + export.SECOND_SIZE_STEP[0], width + export.SECOND_SIZE_STEP[1])
    assert [size for size, _ in checks] == [(height, width), second]
    assert ('(onnxruntime) at {}x{} (batch 2)'.format(*second) in out) == (kind == BATCH_SIZE)
    dims = onnx.load(str(output)).graph.input[0].type.tensor_type.shape.dim
    assert bool(dims[0].dim_param) == (kind == BATCH_SIZE)
    assert dims[1].dim_value == network_g.get('img_channel', network_g.get('inp_channels', network_g.get(
        'dd_in', network_g.get('in_channels', network_g.get('in_c', 3)))))
    assert all(d.dim_param and not d.dim_value for d in (dims[2], dims[3]))


def test_fixed_export_checks_a_second_input_at_the_same_size(tmp_path, capsys):
    opt, weights = write_case(tmp_path, dict(type='NAFNet', img_channel=3, **TINY_NAFNET))
    output = tmp_path / 'fixed.onnx'
    out, checks = run_export(capsys, opt, weights, output, '--height', '12', '--width', '20')
    assert 'fixed size 12x20' in out and 'a second random input at the fixed size' in out
    assert [size for size, _ in checks] == [(12, 20), (12, 20)]
    dims = onnx.load(str(output)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 12, 20]


@pytest.mark.integration
def test_uformer_below_its_padding_multiple_falls_back_to_a_fixed_size(tmp_path, capsys):
    """Single-image Uformer at 24x24 < 32 (the padding multiple): replicate padding, right for this size only."""
    opt, weights = write_case(tmp_path, dict(type='Uformer', **TINY_UFORMER))
    out, checks = run_export(capsys, opt, weights, tmp_path / 'u.onnx', '--height', '24', '--width', '24',
                             '--dynamic')
    assert 'Uformer: no dynamic sizes here' in out and 'at least 32' in out
    assert 'fixed size 24x24' in out and [size for size, _ in checks] == [(24, 24), (24, 24)]


@pytest.mark.integration
def test_uformer_square_zero_padding_is_exported_for_a_fixed_size(tmp_path, capsys):
    """input_padding square_zero: the centred square depends on max(H, W) in Python, so --dynamic falls back to
    the fixed size, whose model still matches PyTorch (the network pads itself inside the trace)."""
    opt, weights = write_case(tmp_path, dict(type='Uformer', input_padding='square_zero', **TINY_UFORMER))
    out, checks = run_export(capsys, opt, weights, tmp_path / 'sq.onnx', '--height', '20', '--width', '45',
                             '--dynamic')
    assert "input_padding 'square_zero'" in out and 'fixed size 20x45' in out
    assert [size for size, _ in checks] == [(20, 45), (20, 45)]


def test_nafnet_local_is_exported_for_a_fixed_size(tmp_path, capsys):
    """NAFNetLocal's local pools (windowed at 40x48 > base size 24) depend on the size in Python."""
    network_g = dict(type='NAFNetLocal', img_channel=6, out_channels=3, train_size=[1, 6, 16, 16], **TINY_NAFNET)
    opt, weights = write_case(tmp_path, network_g)
    out, _ = run_export(capsys, opt, weights, tmp_path / 'local.onnx', '--height', '40', '--width', '48',
                        '--dynamic')
    assert 'NAFNetLocal: no dynamic sizes here' in out and 'local average pools' in out
    assert 'fixed size 40x48' in out


@pytest.mark.integration
def test_mprnet_single_through_python_m_exports_the_final_stage(tmp_path):
    network_g = dict(type='MPRNet', in_c=3, out_c=3, **TINY_MPRNET)
    opt, weights = write_case(tmp_path, network_g, key='params_ema')
    output = tmp_path / 'mprnet.onnx'
    proc = subprocess.run([sys.executable, '-m', 'basicsr_vitloss.export', '--opt', str(opt), '--weights',
                           str(weights), '--output', str(output), '--height', '16', '--width', '16', '--dynamic'],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr
    checks = [float(d) for *_, d in PARITY.findall(proc.stdout)]
    assert len(checks) == 2 and max(checks) <= export.TOLERANCE, proc.stdout
    graph = onnx.load(str(output)).graph
    assert len(graph.output) == 1  # the final image only, not the three stage outputs
    assert 'MPRNet: no dynamic batch, only dynamic sizes here' in proc.stdout and 'at 25x29 (batch 2)' in proc.stdout
    assert f'{SIZE_ONLY}, torchscript exporter' in proc.stdout


@pytest.mark.integration
def test_exporter_fallback_to_dynamo(tmp_path, capsys, monkeypatch):
    """When the TorchScript exporter fails, auto falls back to torch.export (dynamo) and says so."""
    real = export._export_once

    def no_torchscript(wrapper, example, path, exporter, dynamic, opset):
        if exporter == 'torchscript':
            raise RuntimeError('TorchScript exporter unavailable (test)')
        return real(wrapper, example, path, exporter, dynamic, opset)

    monkeypatch.setattr(export, '_export_once', no_torchscript)
    opt, weights = write_case(tmp_path, dict(type='DPDNet', in_channels=6, base_channels=4))
    out, checks = run_export(capsys, opt, weights, tmp_path / 'd.onnx', '--height', '16', '--width', '16',
                             '--dynamic')
    assert 'torchscript exporter (dynamic batch+size) failed: RuntimeError: TorchScript exporter unavailable' in out
    assert 'dynamic batch/height/width, dynamo exporter' in out
    assert [size for size, _ in checks] == [(16, 16), (25, 29)]


def test_parity_above_the_tolerance_fails_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, 'TOLERANCE', -1.0)  # any difference, even 0, is above it
    opt, weights = write_case(tmp_path, dict(type='NAFNet', img_channel=3, **TINY_NAFNET))
    output = tmp_path / 'bad.onnx'
    with pytest.raises(SystemExit) as info:
        export.main(['--opt', str(opt), '--weights', str(weights), '--output', str(output), '--height', '8',
                     '--width', '8', '--exporter', 'torchscript'])
    message = str(info.value.code)
    assert 'NAFNet: the ONNX export does not match PyTorch' in message and 'was not written' in message
    assert 'torchscript exporter (fixed size): max abs difference above -1: ' in message and 'at 8x8' in message
    assert not output.exists() and list(tmp_path.glob('.*')) == []  # no temporary file left either


@pytest.mark.parametrize('problem', ['missing', 'garbage', 'other_arch', 'param_key'])
def test_bad_weights_give_a_clear_error(tmp_path, problem):
    opt, weights = write_case(tmp_path, dict(type='NAFNet', img_channel=3, **TINY_NAFNET))
    extra = []
    if problem == 'missing':
        weights = tmp_path / 'nope.pth'
    elif problem == 'garbage':
        weights.write_bytes(b'not a checkpoint')
    elif problem == 'other_arch':
        torch.save({'params': build_network(dict(type='DPDNet', base_channels=4)).state_dict()}, weights)
    else:
        extra = ['--param-key', 'params_ema']
    expected = {'missing': 'does not exist', 'garbage': 'cannot load it', 'other_arch': 'does not fit NAFNet',
                'param_key': "no key 'params_ema'"}[problem]
    with pytest.raises(SystemExit) as info:
        export.main(['--opt', str(opt), '--weights', str(weights), '--output', str(tmp_path / 'm.onnx'), *extra])
    message = str(info.value.code)
    assert message.startswith('basicsr-vitloss-export: ') and str(weights) in message and expected in message
    assert not (tmp_path / 'm.onnx').exists()


@pytest.mark.parametrize('text, expected', [
    ('name: x\n', 'expected a BasicSR options file with a network_g mapping'),
    ('network_g: {type: NoSuchNet}\n', "cannot build network_g {'type': 'NoSuchNet'} (KeyError"),
    ('network_g: {type: NAFNet, wdth: 8}\n', "unexpected keyword argument 'wdth'"),
])
def test_bad_options_give_a_clear_error(tmp_path, text, expected):
    opt = tmp_path / 'bad.yml'
    opt.write_text(text)
    with pytest.raises(SystemExit) as info:
        export.main(['--opt', str(opt), '--weights', str(tmp_path / 'w.pth'), '--output', str(tmp_path / 'm.onnx')])
    message = str(info.value.code)
    assert message.startswith(f'basicsr-vitloss-export: --opt {opt}: ') and expected in message
