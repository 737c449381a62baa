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


PRECISIONS = ('fp32', 'bf16', 'fp16')
NOT_REACHED = 'not reached (run stopped)'
LOSS_LABELS = [f'{key} {size}px {precision}' for key in ('local', 'global') for size in (32, 48)
               for precision in PRECISIONS]  # the quick suite's loss cells, in the order they run


@pytest.mark.integration
def test_gpu_suite_quick_on_cpu_writes_the_report(tmp_path):
    out = tmp_path / 'results'
    # one network keeps the CPU run under a minute; the suite's code is the same for every network (MPRNet's
    # MultiStageModel step in every precision is tested in tests/test_models/test_training_step.py)
    networks = ['Uformer-B']
    proc = run(['python', str(SUITE), '--device', 'cpu', '--quick', '--out', out, '--budget-s', '36000',
                '--networks', *networks], cwd=REPO, timeout=1800)
    assert proc.returncode == 0
    markdown = (out / 'gpu.md').read_text()
    data = json.loads((out / 'gpu.json').read_text())
    assert markdown.startswith('# GPU suite\n\nRun: complete.\n')
    assert data['run'] == {'state': 'complete', 'stopped_after': None, 'running': None, 'reason': None}
    for key in ('device_name', 'torch', 'date'):
        assert data['machine'][key]
    assert f"torch {torch.__version__}" in markdown and data['machine']['date'] in markdown

    losses = _table(markdown, 'ViT losses: forward + backward to pred')
    assert [(r[0], r[1], r[2]) for r in losses] == [
        (name, size, precision) for name in ('LocalMAEPerceptualLoss', 'GlobalDistributionLoss')
        for size in ('32', '48') for precision in PRECISIONS]
    for row in losses:
        assert float(row[4]) > 0 and row[5] == '-'  # ms; no CUDA peak memory on the CPU

    training = _table(markdown, 'Training step')
    assert [tuple(r[:4]) for r in training] == [
        (net, loss, precision, checkpoint) for net in networks for loss in ('L1', 'L1 + local', 'L1 + global')
        for precision in PRECISIONS for checkpoint in ('off', 'on')]
    # Uformer takes use_checkpoint, and trains in every precision (fp16 with the GradScaler)
    assert all(r['status'] == 'ok' for r in data['training'])
    assert all(float(row[5]) > 0 and row[6] == '-' for row in training)
    # they ran checkpoint off first, then by precision, then by loss (a budget cut drops the last of these)
    ran = re.findall(r'^gpu_suite: training: (.+): ok', proc.stderr, flags=re.M)
    assert ran == [f"Uformer-B / {loss} / {precision} / checkpoint {checkpoint}" for checkpoint in ('off', 'on')
                   for precision in PRECISIONS for loss in ('L1', 'L1 + local', 'L1 + global')]

    micro = _table(markdown, 'Micro-batches')
    assert [tuple(r[:3]) for r in micro] == [('Uformer-B', '4', '1'), ('Uformer-B', '4', '2')]
    assert all(float(r[3]) > 0 and r[4:] == ['-', '-'] for r in micro)  # no peak memory, so no ratio, on the CPU

    ddp = _table(markdown, 'Two-process DDP training')
    assert [r[:5] for r in ddp] == [['Uformer-B', '2', 'gloo', '2', 'ok']], data['ddp']  # --quick: one network
    assert float(ddp[0][5]) > 0
    assert "backend gloo on the CPU (CUDA_VISIBLE_DEVICES='' for the workers, num_gpu 0)" in markdown

    loading = _table(markdown, 'DPDD loading')
    assert [r[0] for r in loading] == ['0', '2'] and all(float(r[1]) > 0 for r in loading)
    assert 'No cell skipped.' in markdown and data['skipped'] == {}


def _stopped_run(tmp_path, stop_after):
    """The quick suite run with the stop hook; (process, gpu.json, gpu.md)."""
    out = tmp_path / 'results'
    proc = run(['python', str(SUITE), '--device', 'cpu', '--quick', '--out', out, '--budget-s', '36000',
                '--networks', 'Uformer-B'], cwd=REPO, timeout=1800, check=False, GPU_SUITE_STOP_AFTER=stop_after)
    return proc, json.loads((out / 'gpu.json').read_text()), (out / 'gpu.md').read_text()


def _assert_measured_then_not_reached(data, markdown, measured):
    """The first ``measured`` loss cells are in the report, every later cell of every section is marked."""
    assert [r['status'] for r in data['losses']] == ['ok'] * measured + [NOT_REACHED] * (12 - measured)
    assert all(r['ms'] > 0 for r in data['losses'][:measured])
    for section in ('training', 'micro_batches', 'ddp', 'data'):
        assert data[section] and all(r['status'] == NOT_REACHED for r in data[section]), section
    rows = _table(markdown, 'ViT losses: forward + backward to pred')
    assert all(float(r[4]) > 0 for r in rows[:measured])
    assert all(r[4:] == [NOT_REACHED, NOT_REACHED] for r in rows[measured:])
    assert [r[4] for r in _table(markdown, 'Two-process DDP training')] == [NOT_REACHED]
    assert data['run']['state'] == 'incomplete'
    assert data['run']['stopped_after'] == f'losses: {LOSS_LABELS[measured - 1]}'


@pytest.mark.integration
def test_gpu_suite_stopped_by_sigterm_keeps_what_it_measured(tmp_path):
    proc, data, markdown = _stopped_run(tmp_path, '3')  # the suite sends itself SIGTERM after its 3rd cell
    assert proc.returncode == 143, proc.stderr[-3000:]  # 128 + SIGTERM
    _assert_measured_then_not_reached(data, markdown, 3)
    assert data['run']['reason'] == 'SIGTERM' and data['run']['running'] is None  # sent between two cells
    assert f'Run: incomplete: stopped after losses: {LOSS_LABELS[2]} (SIGTERM).' in markdown
    assert proc.stdout.startswith('# GPU suite\n')  # the report is printed as well


@pytest.mark.integration
def test_gpu_suite_killed_keeps_the_report_written_after_each_cell(tmp_path):
    # SIGKILL runs no handler: what is on disk is what the suite wrote after its 5th cell
    proc, data, markdown = _stopped_run(tmp_path, '5:SIGKILL')
    assert proc.returncode == -9
    _assert_measured_then_not_reached(data, markdown, 5)
    assert data['run']['reason'] is None and data['run']['running'] is None
    assert f'Run: incomplete: stopped after losses: {LOSS_LABELS[4]}.' in markdown
    assert not [p.name for p in (tmp_path / 'results').iterdir() if p.name not in ('gpu.json', 'gpu.md')]


@pytest.mark.integration
def test_gpu_suite_cell_that_exits_stops_the_run_and_says_where(tmp_path, monkeypatch):
    suite = _suite_module()

    def cells(device, cfg, meter):
        def measured():
            return {'ms': 1.5, 'peak_mib': None}

        def exits():
            raise SystemExit(3)
        row = dict(loss='L', size=8, batch=1)
        return [suite.Cell('losses', f'cell {i}', dict(row, precision=p), f)
                for i, (p, f) in enumerate([('fp32', measured), ('bf16', exits), ('fp16', measured)])], None
    monkeypatch.setattr(suite, 'loss_cells', cells)
    code = suite.main(['--device', 'cpu', '--quick', '--out', str(tmp_path), '--sections', 'losses'])
    data = json.loads((tmp_path / 'gpu.json').read_text())
    assert code == 3
    assert [r['status'] for r in data['losses']] == ['ok', 'stopped while running', NOT_REACHED]
    assert data['run'] == {'state': 'incomplete', 'stopped_after': 'losses: cell 0', 'running': 'losses: cell 1',
                           'reason': 'SystemExit(3)'}
    markdown = (tmp_path / 'gpu.md').read_text()
    assert 'Run: incomplete: stopped after losses: cell 0, while running losses: cell 1 (SystemExit(3)).' in markdown
    assert '## Training step' not in markdown  # sections not selected are not in the report


@pytest.mark.integration
def test_gpu_suite_failing_cell_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    suite = _suite_module()

    def cells(device, cfg, meter):
        def fails():
            raise ValueError('a broken cell')
        row = dict(loss='L', size=8, batch=1)
        return [suite.Cell('losses', 'broken', dict(row, precision='fp32'), fails),
                suite.Cell('losses', 'fine', dict(row, precision='bf16'), lambda: {'ms': 2.0, 'peak_mib': None})], None
    monkeypatch.setattr(suite, 'loss_cells', cells)
    code = suite.main(['--device', 'cpu', '--quick', '--out', str(tmp_path), '--sections', 'losses'])
    data = json.loads((tmp_path / 'gpu.json').read_text())
    assert code == 1
    assert [(r['status'], r.get('note')) for r in data['losses']] == [('error', 'ValueError: a broken cell'),
                                                                      ('ok', None)]
    assert data['run']['state'] == 'complete'
    assert '1 cell(s) failed' in (tmp_path / 'gpu.md').read_text()


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


@pytest.mark.integration
def test_gpu_suite_budget_keeps_the_shares_of_later_sections():
    suite = _suite_module()
    now = [0.0]
    budget = suite.Budget(100, clock=lambda: now[0], shares={'ddp': 30})
    meter = suite.Meter(torch.device('cpu'))

    def cell(seconds):
        def function():
            now[0] += seconds
            return {}
        return function
    training = [suite.run_cell('training', str(i), budget, meter, cell(20)) for i in range(5)]
    # 0, 20, 40 -> end at 60; 60 + 20 > 100 - 30 kept for ddp: skipped
    assert [r['status'] for r in training] == ['ok'] * 3 + [suite.SKIPPED] * 2
    assert budget.remaining('ddp') == 30  # ddp starts at 60: its deadline is 60 + its share
    ddp = [suite.run_cell('ddp', str(i), budget, meter, cell(12)) for i in range(3)]
    assert [r['status'] for r in ddp] == ['ok', 'ok', suite.SKIPPED]  # 60 -> 72 -> 84; 84 + 12 > 90
    assert budget.skipped == {'training': ['3', '4'], 'ddp': ['2']}


def test_gpu_suite_micro_batch_peak_is_compared_with_the_unsplit_batch_of_the_same_network():
    suite = _suite_module()
    rows = [dict(network='A', micro_batches=1, status='ok', peak_mib=200.0),
            dict(network='A', micro_batches=2, status='ok', peak_mib=110.0),
            dict(network='B', micro_batches=1, status='OOM'),
            dict(network='B', micro_batches=2, status='ok', peak_mib=90.0),
            dict(network='C', micro_batches=2, status='ok', peak_mib=None)]  # the CPU: no peak
    assert [suite._peak_fraction(r, rows) for r in rows] == ['1.00', '0.55', '-', '-', '-']
