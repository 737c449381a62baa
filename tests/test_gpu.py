"""CUDA: training, resuming, tiled validation, bf16 + micro-batches through `python -m basicsr.train`
(marked gpu: `pytest -m gpu`, skipped without CUDA); and the GPU suite (benchmarks/gpu_suite.py), whose
code runs here on the CPU with --device cpu --quick."""
import importlib.util
import json
import re
import shutil

import pytest
import torch

from conftest import REPO, run, tiny_options

SUITE = REPO / 'benchmarks' / 'gpu_suite.py'
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _log(work, name):
    return '\n'.join(p.read_text() for p in sorted((work / 'experiments' / name).glob('train_*.log')))


def _cuda_options(path, name, total_iter=4, **changes):
    return tiny_options(path, name=name, total_iter=total_iter, num_gpu=1, **{
        'logger:save_checkpoint_freq': 2, 'val:val_freq': 2, **changes})


@pytest.fixture(scope='module')
def cuda_run(tmp_path_factory):
    """A 4-iteration run on the GPU, states every 2 iterations (shared by the CUDA tests below)."""
    work = tmp_path_factory.mktemp('cuda_train')
    _cuda_options(work / 'tiny.yml', 'tiny')
    run(['python', '-m', 'basicsr.train', '-opt', 'tiny.yml'], cwd=work)
    return work


@pytest.mark.gpu
@cuda
def test_training_runs_on_cuda(cuda_run):
    log = _log(cuda_run, 'tiny')
    assert 'iter:       4' in log and '# psnr:' in log
    # the optimizer's moments live where the parameters were trained: on the GPU
    state = torch.load(cuda_run / 'experiments/tiny/training_states/4.state', weights_only=False)
    moments = [v for s in state['optimizers'][0]['state'].values() for k, v in s.items() if k == 'exp_avg']
    assert moments and all(m.is_cuda for m in moments)
    saved = torch.load(cuda_run / 'experiments/tiny/models/net_g_4.pth', map_location='cpu')
    assert all(torch.isfinite(v).all() for v in saved['params'].values())


@pytest.mark.gpu
@cuda
def test_auto_resume_on_cuda_continues(cuda_run, tmp_path):
    work = tmp_path / 'resume'
    shutil.copytree(cuda_run, work)
    run(['python', '-m', 'basicsr.train', '-opt', 'tiny.yml', '--auto_resume', '--force_yml', 'train:total_iter=6'],
        cwd=work)
    log = _log(work, 'tiny')
    assert 'Resuming training from epoch' in log and 'iter:       6' in log
    assert (work / 'experiments/tiny/training_states/6.state').exists()


@pytest.mark.gpu
@cuda
def test_tiled_validation_on_cuda(tmp_path):
    _cuda_options(tmp_path / 'tiled.yml', 'tiled', total_iter=2, **{'val:tile': {'size': 16, 'overlap': 4}})
    run(['python', '-m', 'basicsr.train', '-opt', 'tiled.yml'], cwd=tmp_path)
    log = _log(tmp_path, 'tiled')
    assert re.search(r'# psnr: [\d.]+', log) and re.search(r'# ssim: [\d.]+', log)


@pytest.mark.gpu
@cuda
def test_bf16_and_micro_batches_on_cuda(tmp_path):
    _cuda_options(tmp_path / 'bf16.yml', 'bf16', **{
        'train:mixed_precision': 'bf16', 'train:micro_batches': 2, 'val:mixed_precision': 'bf16'})
    run(['python', '-m', 'basicsr.train', '-opt', 'bf16.yml'], cwd=tmp_path)
    log = _log(tmp_path, 'bf16')
    assert 'iter:       4' in log and '# psnr:' in log
    losses = [float(v) for v in re.findall(r'l_pix: ([-+\d.e]+)', log)]
    assert losses and all(v == v and abs(v) < 1e3 for v in losses)  # finite


# ---- the GPU suite's own code, run on the CPU ----

def _suite_module():
    spec = importlib.util.spec_from_file_location('gpu_suite', SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(markdown, heading):
    """The rows (lists of cells) of the table under ``## heading``."""
    section = markdown.split(f'## {heading}\n', 1)[1].split('\n## ', 1)[0]
    rows = [line.strip('|').split('|') for line in section.splitlines() if line.startswith('|')]
    return [[c.strip() for c in row] for row in rows[2:]]  # drop the header and the separator


@pytest.mark.integration
def test_gpu_suite_quick_on_cpu_writes_the_report(tmp_path):
    out = tmp_path / 'results'
    networks = ['Uformer-B', 'MPRNet']  # two of the five keep the CPU run short; the code path is the same
    run(['python', str(SUITE), '--device', 'cpu', '--quick', '--out', out, '--budget-s', '36000',
         '--networks', *networks], cwd=REPO, timeout=1800)
    markdown = (out / 'gpu.md').read_text()
    data = json.loads((out / 'gpu.json').read_text())
    assert markdown.startswith('# GPU suite\n')
    for key in ('device_name', 'torch', 'date'):
        assert data['machine'][key]
    assert f"torch {torch.__version__}" in markdown and data['machine']['date'] in markdown

    losses = _table(markdown, 'ViT losses: forward + backward to pred')
    assert [(r[0], r[1], r[2]) for r in losses] == [
        (name, size, precision) for name in ('LocalMAEPerceptualLoss', 'GlobalDistributionLoss')
        for size in ('32', '48') for precision in ('fp32', 'bf16')]
    for row in losses:
        assert float(row[4]) > 0 and row[5] == '-'  # ms; no CUDA peak memory on the CPU

    training = _table(markdown, 'Training step')
    assert [tuple(r[:4]) for r in training] == [
        (net, loss, precision, checkpoint) for net in networks for loss in ('L1', 'L1 + local', 'L1 + global')
        for precision in ('fp32', 'bf16') for checkpoint in ('off', 'on')]
    for row, record in zip(training, data['training']):
        if row[3] == 'off':
            assert record['status'] == 'ok' and float(row[5]) > 0 and row[6] == '-'
        else:  # use_checkpoint: measured where the arch takes the keyword, n/a where it does not (yet)
            assert record['status'] in ('ok', 'n/a')
            assert (float(row[5]) > 0) if record['status'] == 'ok' else row[5:] == ['n/a', 'n/a']
    # Uformer has always had use_checkpoint
    assert all(r['status'] == 'ok' for r in data['training'] if r['network'] == 'Uformer-B')

    loading = _table(markdown, 'DPDD loading')
    assert [r[0] for r in loading] == ['0', '2'] and all(float(r[1]) > 0 for r in loading)
    assert 'No cell skipped.' in markdown and data['skipped'] == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the behaviour without CUDA')
@pytest.mark.integration
def test_gpu_suite_without_cuda_measures_nothing(tmp_path):
    proc = run(['python', str(SUITE), '--out', tmp_path / 'results'], cwd=REPO)
    assert proc.returncode == 0
    assert proc.stdout.strip() == 'gpu_suite: no CUDA device; nothing measured'
    assert not (tmp_path / 'results').exists()


@pytest.mark.integration
def test_gpu_suite_budget_guard_skips_and_reports():
    suite = _suite_module()
    now = [0.0]
    budget = suite.Budget(10, clock=lambda: now[0])
    meter = suite.Meter(torch.device('cpu'))

    def cell(seconds):
        def function():
            now[0] += seconds
            return {'ms': seconds * 1e3, 'peak_mib': None}
        return function
    rows = [suite.run_cell('training', 'first', budget, meter, cell(4)),   # ends at 4
            suite.run_cell('training', 'second', budget, meter, cell(4)),  # 4 + 4 <= 10: runs, ends at 8
            suite.run_cell('training', 'third', budget, meter, cell(4)),   # 8 + 4 > 10: skipped
            suite.run_cell('data', 'other section', budget, meter, cell(1))]  # no estimate yet: runs
    assert [r['status'] for r in rows] == ['ok', 'ok', suite.SKIPPED, 'ok']
    assert budget.skipped == {'training': ['third']}
