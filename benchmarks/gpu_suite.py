"""GPU suite: the ViT losses, the training step of each official network in fp32 / bf16 / fp16, micro-batches,
two-process DDP training, DPDD loading, on one GPU.

One command, under 10 minutes on a recent GPU. A time-budget guard (--budget-s, default 540 s) skips the
remaining cells of a section, and says so in the report, when the next cell would pass the section's
deadline; micro-batches, DDP and loading each have a share of the budget (1/12, 1/6, 1/12: 45, 90, 45 s of
the default) that the sections before them leave free, and that they may not overrun.

Sections, in the order they run:

1. ``losses``, ViT losses: LocalMAEPerceptualLoss and GlobalDistributionLoss (backbone mae = ViT-B/16,
   random weights (pretrained false), layer 5, token feature, mask 0.5), batch 8 at 256 and 384 px, float32,
   bfloat16 and float16 autocast: forward + backward to pred (``loss.value(pred, target).backward()``),
   median of 5 after 2 warm-up calls, ``torch.cuda.synchronize()`` around each call; peak memory =
   ``max_memory_allocated()`` during the timed calls minus ``memory_allocated()`` before them (the ViT
   weights and the two input batches are in the baseline: this is the loss's working memory).
2. ``training``, training step, official sizes (NAFNetLocal GoPro width 64, Restormer dual-pixel, Uformer-B,
   DPDNet 6->3, MPRNet), 256 px, batch 2 for every network (--train-batch), losses L1, L1 + local (weight
   1), L1 + global (weight 1e-5), in ``train: mixed_precision`` fp32 (off), bf16 and fp16 (autocast and
   torch.amp's GradScaler), with and without ``network_g: use_checkpoint: true``. The step is the
   plugin's own: ``build_model`` of a ``ProgressiveSRModel`` options dict (``MultiStageModel`` for MPRNet:
   L1 on every stage, ViT loss on the final image), AdamW, ``feed_data`` + ``optimize_parameters``
   (BasicSR's SRModel step with this plugin's autocast). Median of 5 steps after 1 warm-up step (which
   also allocates the optimizer state); peak memory = ``max_memory_allocated()`` during the timed steps
   minus ``memory_allocated()`` before the model was built: everything the training holds (network,
   gradients, AdamW state, the frozen ViT, the batch, activations). A network that does not accept
   ``use_checkpoint`` yet is reported n/a; an out-of-memory step OOM.
3. ``micro_batches``: the same step, L1, fp32, batch 4, with ``train: micro_batches`` 1 and 2 (two chunks
   of 2): time and peak memory, and the peak of 2 chunks as a fraction of the unsplit batch's.
4. ``ddp``, two-process DDP: ``python -m torch.distributed.run --standalone --nproc_per_node 2 -m
   basicsr_vitloss.train -opt <generated yml> --launcher pytorch`` on a tiny version of each network
   (the widths the tests use; L1 + local ViT loss on a tiny random ViT; synthetic dual-pixel data, 32 px,
   4 iterations of batch 2 per process, validation (PSNR) at the last iteration): pass / fail and wall
   time. With 2 or more visible GPUs: backend nccl, one GPU per process. With fewer (one H200): backend
   gloo on the CPU (``CUDA_VISIBLE_DEVICES=''`` for the workers, num_gpu 0), because two processes cannot
   each have a GPU and ``init_dist`` refuses more processes per node than visible GPUs. The report says
   which ran.
5. ``data``, DPDD loading: ``benchmarks/data_bench.py``'s generated 16-bit 512x512 tree and DataLoader
   throughput (batch 8, gt_size 256, dual_pixel) with 0, 2 and 4 workers (the GPU machine's CPUs).

Writes benchmarks/results/gpu.md and gpu.json with the device name, torch / CUDA versions and date, and
rewrites both (atomically: a temporary file in the same folder, then a rename) after every cell, each
time as the report of a run stopped there: cells not run yet say "not reached (run stopped)" and the
header says "incomplete: stopped after <section>: <cell>". A run killed at any point (time limit, OOM
killer) so keeps everything measured before. At the end the header says "complete". On SIGTERM (what
``timeout`` sends) or Ctrl-C the report also names the signal and the cell that was running ("stopped
while running"), and the command exits 143 (130 for Ctrl-C); Python handles the signal once the native
operation running then returns. A cell that raises is reported "error" with
the exception and the run goes on; the exit status is then 1 (also when a DDP run fails).

Without CUDA it prints "gpu_suite: no CUDA device; nothing measured" and exits 0. ``--device cpu --quick
--out DIR`` runs the same code with tiny networks (the widths the tests use), a tiny ViT (depth 6, width
64), 32-48 px, 1 repeat and no warm-up on the CPU, and the DDP section for the first selected network
only, 2 iterations (the tests run it; memory columns are '-' on the CPU, where max_memory_allocated has
no counterpart). ``--sections`` and ``--networks`` run a part. Test hook: the environment variable
``GPU_SUITE_STOP_AFTER=N`` (or ``N:SIGKILL``) makes the suite send itself SIGTERM (SIGKILL) once its N-th
cell is written, to check the report of a stopped run.

    python benchmarks/gpu_suite.py [--budget-s 540] [--train-batch 2] [--out benchmarks/results]
    python benchmarks/gpu_suite.py --device cpu --quick --out /tmp/gpu_suite
"""
import argparse
import contextlib
import copy
import datetime
import functools
import gc
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

NO_CUDA_MESSAGE = 'gpu_suite: no CUDA device; nothing measured'
SKIPPED = 'skipped (time budget)'
NOT_REACHED = 'not reached (run stopped)'
STOPPED_WHILE_RUNNING = 'stopped while running'
PRECISIONS = ('fp32', 'bf16', 'fp16')
SECTIONS = ('losses', 'training', 'micro_batches', 'ddp', 'data')
#: fractions of --budget-s that the earlier sections leave free for these, and that these may not overrun
SHARES = {'micro_batches': 1 / 12, 'ddp': 1 / 6, 'data': 1 / 12}
#: one two-process run (tiny network, a few iterations: ~15-25 s on 2 CPU cores) may take at most this
#: fraction of the DDP share, so that one hanging run leaves time for the next network
DDP_RUN_SHARE = 2 / 3
STOP_AFTER_ENV = 'GPU_SUITE_STOP_AFTER'
FAILED_STATUSES = ('error', 'failed', 'timeout')

#: name -> (input channels, model type, official network_g, tiny network_g for --quick and DDP)
NETWORKS = {
    'NAFNetLocal GoPro width64': (3, 'ProgressiveSRModel',
                                  dict(type='NAFNetLocal', img_channel=3, width=64, middle_blk_num=1,
                                       enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1]),
                                  dict(width=8, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1])),
    'Restormer dual-pixel': (6, 'ProgressiveSRModel',
                             dict(type='Restormer', inp_channels=6, out_channels=3, dual_pixel_task=True),
                             dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])),
    'Uformer-B': (3, 'ProgressiveSRModel',
                  dict(type='Uformer', img_size=256, embed_dim=32, win_size=8, token_projection='linear',
                       token_mlp='leff', modulator=True, depths=[1, 2, 8, 8, 2, 8, 8, 2, 1]),
                  dict(embed_dim=8, depths=[1] * 9, img_size=64)),
    'DPDNet dual-pixel': (6, 'ProgressiveSRModel', dict(type='DPDNet', in_channels=6, out_channels=3),
                          dict(base_channels=4)),
    'MPRNet': (3, 'MultiStageModel',
               dict(type='MPRNet', in_c=3, out_c=3, n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32,
                    num_cab=8, kernel_size=3, reduction=4, bias=False),
               dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)),
}

VIT_LOSSES = {'local': ('LocalMAEPerceptualLoss', 1.0), 'global': ('GlobalDistributionLoss', 1e-5)}
TRAIN_LOSSES = ('L1', 'L1 + local', 'L1 + global')
TINY_VIT = {'depth': 6, 'embed_dim': 64, 'num_heads': 2}


class Budget:
    """Total time budget. ``allows(section)`` is False when the next cell, estimated as the longest cell of
    that section so far, would end past the section's deadline; skipped cells are recorded by section.

    ``shares`` {section: seconds}: while a section runs, the shares of the listed sections that have not
    started yet are kept free, and a listed section's own deadline is its start plus its share."""

    def __init__(self, seconds, clock=time.perf_counter, shares=None):
        self.clock = clock
        self.deadline = clock() + float(seconds)
        self.shares = dict(shares or {})
        self.started = {}
        self.longest = {}
        self.skipped = {}

    def section_deadline(self, section):
        self.started.setdefault(section, self.clock())
        deadline = self.deadline - sum(s for name, s in self.shares.items() if name not in self.started)
        if section in self.shares:
            deadline = min(deadline, self.started[section] + self.shares[section])
        return deadline

    def remaining(self, section):
        """Seconds left to ``section`` (negative past its deadline)."""
        return self.section_deadline(section) - self.clock()

    def allows(self, section):
        return self.clock() + self.longest.get(section, 0.0) <= self.section_deadline(section)

    def record(self, section, seconds):
        self.longest[section] = max(self.longest.get(section, 0.0), seconds)

    def skip(self, section, label):
        self.skipped.setdefault(section, []).append(label)


def settings(quick):
    """Sizes, repeats, workers of the full suite, or of ``--quick`` (same code, tiny)."""
    if quick:
        return dict(loss_sizes=(32, 48), loss_batch=2, loss_repeats=1, loss_warmup=0, vit_kwargs=TINY_VIT,
                    train_size=32, train_repeats=1, train_warmup=0, micro_batch=4, ddp_networks=1, ddp_iters=2,
                    data_scenes=24, data_size=64, data_gt_size=32, data_samples=16, data_repeats=1,
                    data_workers=(0, 2))
    return dict(loss_sizes=(256, 384), loss_batch=8, loss_repeats=5, loss_warmup=2, vit_kwargs=None,
                train_size=256, train_repeats=5, train_warmup=1, micro_batch=4, ddp_networks=None, ddp_iters=4,
                data_scenes=48, data_size=512, data_gt_size=256, data_samples=96, data_repeats=3,
                data_workers=(0, 2, 4))


class Meter:
    """Median wall time (synchronized on CUDA) and peak allocated memory above a baseline."""

    def __init__(self, device):
        import torch
        self.torch = torch
        self.cuda = device.type == 'cuda'

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def allocated(self):
        return self.torch.cuda.memory_allocated() if self.cuda else None

    def free(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()

    def measure(self, step, repeats, warmup, baseline=None):
        """(median seconds, peak MiB above ``baseline`` or above the memory before the timed calls;
        None on the CPU)."""
        for _ in range(warmup):
            step()
        self.sync()
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
            if baseline is None:
                baseline = self.torch.cuda.memory_allocated()
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            step()
            self.sync()
            times.append(time.perf_counter() - start)
        peak = (self.torch.cuda.max_memory_allocated() - baseline) / 2**20 if self.cuda else None
        return statistics.median(times), peak


def _is_oom(error):
    import torch
    oom = getattr(torch, 'OutOfMemoryError', None) or getattr(torch.cuda, 'OutOfMemoryError', RuntimeError)
    return isinstance(error, oom) or 'out of memory' in str(error)


def run_cell(section, label, budget, meter, function):
    """``function() -> dict`` under the budget guard; a row dict with 'status': ok (or the status the dict
    gives), n/a, OOM, error (any other exception, named in 'note'), skipped. Stops (signals, Ctrl-C,
    SystemExit) pass through."""
    if not budget.allows(section):
        budget.skip(section, label)
        return {'status': SKIPPED}
    start = budget.clock()
    try:
        row = {'status': 'ok', **function()}
    except TypeError as error:
        row = ({'status': 'n/a', 'note': 'use_checkpoint not accepted'} if 'use_checkpoint' in str(error)
               else _error_row(error))
    except Exception as error:  # noqa: BLE001 (one failing cell must not lose the others' numbers)
        row = {'status': 'OOM'} if isinstance(error, RuntimeError) and _is_oom(error) else _error_row(error)
    finally:
        meter.free()
    budget.record(section, budget.clock() - start)
    return row


def _error_row(error):
    traceback.print_exception(error, file=sys.stderr)
    return {'status': 'error', 'note': f'{type(error).__name__}: {error}'.splitlines()[0][:300]}


class Cell:
    """One measurement: ``section``, ``label`` (unique in the run), ``row`` (the identifying columns),
    ``function() -> dict`` (the measured columns). A section's cells run in the order of ``priority``
    (then of the table), so that what the budget cuts is the least needed."""

    def __init__(self, section, label, row, function, priority=0):
        self.section, self.label, self.row, self.function = section, label, row, function
        self.priority = priority


class Stop(BaseException):
    """A signal asked the suite to stop (raised by the SIGTERM handler)."""

    def __init__(self, reason, exit_code):
        super().__init__(reason)
        self.reason, self.exit_code = reason, exit_code


def _raise_stop(signum, frame):
    raise Stop(signal.Signals(signum).name, 128 + signum)


# ---- the sections: each returns (cells, close) where close() frees what the cells kept ----

def _autocast_dtype(precision):
    import torch
    return {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]


def loss_cells(device, cfg, meter):
    import torch
    from basicsr_vitloss.losses import vit_losses
    built = {}  # the one loss kept between cells: {key: module}

    def measure(key, size, precision):
        if key not in built:
            built.clear()
            meter.free()
            class_name, weight = VIT_LOSSES[key]
            torch.manual_seed(0)
            built[key] = getattr(vit_losses, class_name)(
                loss_weight=weight, backbone='mae', pretrained=False, layers=5, feature='token',
                mask_ratio=0.5, backbone_kwargs=cfg['vit_kwargs']).to(device)
        loss = built[key]
        shape = (cfg['loss_batch'], 3, size, size)
        pred = torch.rand(shape, device=device, requires_grad=True)
        target = torch.rand(shape, device=device)
        dtype = _autocast_dtype(precision)

        def step():
            pred.grad = None
            with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                value = loss.value(pred, target)
            value.backward()
        seconds, peak = meter.measure(step, cfg['loss_repeats'], cfg['loss_warmup'])
        return {'ms': seconds * 1e3, 'peak_mib': peak}

    cells = [Cell('losses', f'{key} {size}px {precision}',
                  dict(loss=class_name, size=size, precision=precision, batch=cfg['loss_batch']),
                  functools.partial(measure, key, size, precision))
             for key, (class_name, _) in VIT_LOSSES.items() for size in cfg['loss_sizes'] for precision in PRECISIONS]
    return cells, built.clear


def model_options(net_name, loss, precision, checkpoint, device, quick, micro_batches=1):
    """A ProgressiveSRModel / MultiStageModel options dict for one training-step cell."""
    _, model_type, network, tiny = NETWORKS[net_name]
    network = dict(copy.deepcopy(network), **(copy.deepcopy(tiny) if quick else {}))
    if checkpoint:
        network['use_checkpoint'] = True
    train = {'ema_decay': 0, 'use_grad_clip': False, 'total_iter': 10**6, 'warmup_iter': -1,
             'optim_g': {'type': 'AdamW', 'lr': 1e-4, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [10**6], 'gamma': 0.5},
             'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
             'mixed_precision': None if precision == 'fp32' else precision, 'micro_batches': micro_batches}
    if loss != 'L1':
        class_name, weight = VIT_LOSSES[loss.split(' + ')[1]]
        train['perceptual_opt'] = {'type': class_name, 'loss_weight': weight, 'backbone': 'mae', 'pretrained': False,
                                   'layers': 5, 'feature': 'token', 'mask_ratio': 0.5}
        if quick:
            train['perceptual_opt']['backbone_kwargs'] = dict(TINY_VIT)
    return {'name': 'gpu_suite', 'model_type': model_type, 'is_train': True, 'dist': False, 'rank': 0,
            'world_size': 1, 'num_gpu': 1 if device.type == 'cuda' else 0, 'scale': 1, 'network_g': network,
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}, 'train': train}


def measure_training(device, cfg, meter, options, batch, in_channels):
    """Median step time and peak memory of the plugin's training step built from ``options``, on random
    batches of ``batch`` images with ``in_channels`` input channels."""
    import torch
    from basicsr.models import build_model
    size = cfg['train_size']
    meter.free()
    baseline = meter.allocated()
    torch.manual_seed(0)
    model = build_model(options)
    data = {'lq': torch.rand(batch, in_channels, size, size, device=device),
            'gt': torch.rand(batch, 3, size, size, device=device)}
    iteration = [0]

    def step():
        iteration[0] += 1
        model.feed_data(data)
        model.optimize_parameters(iteration[0])
    try:
        seconds, peak = meter.measure(step, cfg['train_repeats'], cfg['train_warmup'], baseline)
    finally:
        model = data = None  # free them (not `del`: ruff misreads del of names the closure uses)
    return {'ms': seconds * 1e3, 'peak_mib': peak}


def _selected(networks):
    return [name for name in NETWORKS if networks is None or name in networks]


def training_cells(device, cfg, meter, batch, quick, networks=None):
    """The table by network; the cells run checkpoint off before on, then by precision, then by loss, every
    network at each step, so that a budget cut drops the same combinations of every network, not the
    last networks."""
    cells = []
    for net_name in _selected(networks):
        for loss in TRAIN_LOSSES:
            for precision in PRECISIONS:
                for checkpoint in (False, True):
                    options = model_options(net_name, loss, precision, checkpoint, device, quick)
                    cells.append(Cell(
                        'training', f"{net_name} / {loss} / {precision} / checkpoint {'on' if checkpoint else 'off'}",
                        dict(network=net_name, loss=loss, precision=precision, checkpoint=checkpoint, batch=batch,
                             size=cfg['train_size']),
                        functools.partial(measure_training, device, cfg, meter, options, batch, NETWORKS[net_name][0]),
                        priority=(checkpoint, PRECISIONS.index(precision), TRAIN_LOSSES.index(loss))))
    return cells, None


def micro_batch_cells(device, cfg, meter, quick, networks=None):
    batch = cfg['micro_batch']
    return [Cell('micro_batches', f'{net_name} / batch {batch} / micro_batches {count}',
                 dict(network=net_name, batch=batch, micro_batches=count, size=cfg['train_size']),
                 functools.partial(measure_training, device, cfg, meter,
                                   model_options(net_name, 'L1', 'fp32', False, device, quick, count), batch,
                                   NETWORKS[net_name][0]))
            for net_name in _selected(networks) for count in (1, 2)], None


def ddp_mode(device):
    """How the two processes run here: nccl with a GPU each where 2 GPUs are visible, else gloo on the CPU."""
    import torch
    gpus = torch.cuda.device_count() if device.type == 'cuda' else 0
    if gpus >= 2:
        return {'backend': 'nccl', 'num_gpu': 'auto', 'env': {}, 'gpus_visible': gpus,
                'text': f'backend nccl, one GPU per process ({gpus} GPUs visible)'}
    return {'backend': 'gloo', 'num_gpu': 0, 'env': {'CUDA_VISIBLE_DEVICES': ''}, 'gpus_visible': gpus,
            'text': (f"backend gloo on the CPU (CUDA_VISIBLE_DEVICES='' for the workers, num_gpu 0): {gpus} GPU(s) "
                     'visible, so two processes cannot each have a GPU (init_dist refuses more processes per node '
                     'than visible GPUs)')}


def ddp_options(net_name, mode, iterations):
    """Options of a tiny two-process training of ``net_name`` (its tiny widths), validation at the end."""
    in_channels, model_type, network, tiny = NETWORKS[net_name]
    data = {'type': 'SyntheticDualPixelDataset', 'mode': 'dual_pixel' if in_channels == 6 else 'single',
            'gt_size': 32}
    return {
        'name': 'ddp', 'model_type': model_type, 'scale': 1, 'num_gpu': mode['num_gpu'], 'manual_seed': 10,
        'datasets': {
            'train': dict(data, name='train', num_samples=16, seed=0, use_hflip=True, use_rot=True,
                          num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1, prefetch_mode=None),
            'val': dict(data, name='val', num_samples=2, seed=1)},
        'network_g': dict(copy.deepcopy(network), **copy.deepcopy(tiny)),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0, 'total_iter': iterations, 'warmup_iter': -1,
                  'optim_g': {'type': 'AdamW', 'lr': 1e-4, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10**6], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
                  'perceptual_opt': {'type': 'LocalMAEPerceptualLoss', 'loss_weight': 1.0, 'backbone': 'mae',
                                     'pretrained': False, 'layers': 5, 'feature': 'token', 'mask_ratio': 0.5,
                                     'backbone_kwargs': dict(TINY_VIT)}},
        'val': {'val_freq': iterations, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': iterations, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': mode['backend']}}


def _end_group(proc):
    """SIGTERM, then SIGKILL, to the process group the suite started for ``proc`` (torchrun and its workers)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def run_ddp(net_name, mode, iterations, timeout):
    """Train ``net_name`` tiny with torchrun, 2 processes; the row's status ok / failed / timeout, wall time."""
    import basicsr_vitloss
    package_root = str(Path(basicsr_vitloss.__file__).resolve().parents[1])  # the children run this same code
    env = dict(os.environ, **mode['env'])
    env['PYTHONPATH'] = os.pathsep.join(p for p in (package_root, env.get('PYTHONPATH', '')) if p)
    args = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
            '-m', 'basicsr_vitloss.train', '-opt', 'ddp.yml', '--launcher', 'pytorch']
    with tempfile.TemporaryDirectory(prefix='gpu_suite_ddp_') as work:
        Path(work, 'ddp.yml').write_text(yaml.safe_dump(ddp_options(net_name, mode, iterations), sort_keys=False))
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        timed_out = False
        try:
            output, _ = proc.communicate(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            timed_out = True
            _end_group(proc)
            output, _ = proc.communicate()
        except BaseException:
            _end_group(proc)
            raise
        seconds = time.perf_counter() - start
        log = '\n'.join(p.read_text(errors='replace') for p in Path(work).glob('experiments/ddp/train_*.log'))
    row = {'wall_s': seconds, 'output_tail': output[-3000:]}
    if timed_out:
        return dict(row, status='timeout', note=f'stopped at its time limit, {timeout:.0f} s')
    checks = {'exit status 0': proc.returncode == 0, 'world size 2 in the log': 'World size (gpu number): 2' in log,
              'validation PSNR in the log': '# psnr:' in log}
    missing = [name for name, passed in checks.items() if not passed]
    if not missing:
        return dict(row, status='ok', note='')
    note = f"missing: {', '.join(missing)} (exit status {proc.returncode})"
    cause = first_error(output)
    return dict(row, status='failed', note=note + (f'; {cause[:240]}' if cause else ''))


def first_error(output):
    """The first ``SomeError: message`` line a worker printed (torchrun's own ChildFailedError summary
    names no cause), or None."""
    for line in output.splitlines():
        match = re.match(r'\s*([\w.]*(?:Error|Exception|Interrupt)(?::.*)?)$', line)
        if match and 'ChildFailedError' not in line:
            return match.group(1).strip()
    return None


def ddp_cells(device, cfg, budget, networks=None):
    mode = ddp_mode(device)
    names = _selected(networks)[:cfg['ddp_networks']]
    longest = budget.shares.get('ddp', float('inf')) * DDP_RUN_SHARE
    return [Cell('ddp', f'{net_name} / 2 processes',
                 dict(network=net_name, processes=2, backend=mode['backend'], iterations=cfg['ddp_iters']),
                 lambda net_name=net_name: run_ddp(net_name, mode, cfg['ddp_iters'],
                                                   min(budget.remaining('ddp'), longest)))
            for net_name in names], None


def data_cells(cfg):
    from data_bench import make_tree, throughput
    from basicsr_vitloss.data.dpdd_dataset import DPDDDataset
    kept = {}  # the generated tree, made by the first cell

    def measure(workers):
        if 'dataset' not in kept:
            kept['folder'] = tempfile.TemporaryDirectory(prefix='gpu_suite_data_')
            folders = make_tree(kept['folder'].name, scenes=cfg['data_scenes'], size=cfg['data_size'])
            kept['dataset'] = DPDDDataset({'name': 'gpu_suite', 'phase': 'train', 'gt_size': cfg['data_gt_size'],
                                           'mode': 'dual_pixel', **folders})
        return {'samples_per_s': throughput(kept['dataset'], workers, cfg['data_samples'], cfg['data_repeats'])}

    def close():
        if 'folder' in kept:
            kept.pop('folder').cleanup()
        kept.clear()

    return [Cell('data', f'{workers} workers',
                 dict(workers=workers, size=cfg['data_size'], gt_size=cfg['data_gt_size']),
                 functools.partial(measure, workers)) for workers in cfg['data_workers']], close


# ---- the report ----

def _write_atomically(path, text):
    from basicsr_vitloss.utils.atomic_write import atomic_write
    atomic_write(path, lambda file: file.write(text), mode='w', encoding='utf-8')


class Report:
    """The results so far, written as gpu.json and gpu.md after every cell, each time as the report of a
    run stopped there: ``run`` = {state: complete | incomplete, stopped_after: the last cell written,
    running: the cell a stop interrupted, reason: the signal or exception that stopped the run}."""

    def __init__(self, out, data, sections):
        self.out = Path(out)
        self.data = data
        self.cells = dict(sections)  # {section: [Cell]}
        for name, cells in sections:
            data[name] = [dict(cell.row, status=NOT_REACHED) for cell in cells]
        data['run'] = {'state': 'incomplete', 'stopped_after': None, 'running': None, 'reason': None}
        self.start = time.perf_counter()
        self.current = None  # (section, index) of the cell running now

    def _name(self, section, index):
        return f'{section}: {self.cells[section][index].label}'

    def begin(self, section, index):
        self.current = (section, index)

    def done(self, section, index, row):
        self.data[section][index].update(row)
        self.data['run']['stopped_after'] = self._name(section, index)
        self.current = None

    def finish(self, reason=None):
        """The end of the run: complete without ``reason``; else stopped by ``reason`` (the cell running then,
        if any, is marked)."""
        run = self.data['run']
        if reason is None:
            run.update(state='complete', stopped_after=None)
            return
        run['reason'] = reason
        if self.current is not None:
            section, index = self.current
            self.data[section][index]['status'] = STOPPED_WHILE_RUNNING
            run['running'] = self._name(section, index)

    def write(self):
        self.data['total_s'] = time.perf_counter() - self.start
        self.out.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.out / 'gpu.json', json.dumps(self.data, indent=2) + '\n')
        lines = markdown(self.data)
        _write_atomically(self.out / 'gpu.md', '\n'.join(lines) + '\n')
        return lines


def _stop_hook():
    """(N, signal) from GPU_SUITE_STOP_AFTER ('N' or 'N:SIGKILL'), or None."""
    value = os.environ.get(STOP_AFTER_ENV, '').strip()
    if not value:
        return None
    count, _, name = value.partition(':')
    if not count.isdigit() or name not in ('', 'SIGTERM', 'SIGKILL'):
        raise ValueError(f"{STOP_AFTER_ENV} must be 'N', 'N:SIGTERM' or 'N:SIGKILL' (N cells), got {value!r}.")
    return int(count), getattr(signal, name or 'SIGTERM')


def run_sections(report, sections, closers, budget, meter):
    """Run every cell in order, writing the report after each; returns normally only when all ran."""
    hook = _stop_hook()
    done = 0
    for (name, cells), close in zip(sections, closers):
        try:
            for index in sorted(range(len(cells)), key=lambda i: cells[i].priority):
                cell = cells[index]
                start = time.perf_counter()
                report.begin(name, index)
                row = run_cell(name, cell.label, budget, meter, cell.function)
                report.done(name, index, row)
                report.write()
                done += 1
                print(f"gpu_suite: {name}: {cell.label}: {row['status']} ({time.perf_counter() - start:.1f} s)",
                      file=sys.stderr, flush=True)
                if hook and done == hook[0]:
                    os.kill(os.getpid(), hook[1])
        finally:
            if close is not None:
                close()
            meter.free()


def _number(value, digits):
    return '-' if value is None else f'{value:.{digits}f}'


def _cells(row, *keys):
    """The measured columns of a row, or its status in each of them (n/a, OOM, skipped, not reached)."""
    if row['status'] != 'ok':
        return [row['status']] * len(keys)
    return [_number(row[key], digits) for key, digits in keys]


def _table(header, rows):
    return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] + \
        ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]


def _peak_fraction(row, rows):
    """Peak memory of ``row`` as a fraction of the micro_batches 1 row of the same network, or '-'."""
    base = [r for r in rows if r['network'] == row['network'] and r['micro_batches'] == 1]
    if row['status'] != 'ok' or not base or base[0]['status'] != 'ok' or None in (row['peak_mib'], base[0]['peak_mib']):
        return '-'
    return f"{row['peak_mib'] / base[0]['peak_mib']:.2f}" if base[0]['peak_mib'] else '-'


def markdown(data):
    m, s, run = data['machine'], data['settings'], data['run']
    vit = 'a tiny ViT (depth 6, width 64: --quick)' if data['quick'] else 'ViT-B/16'
    state = 'complete'
    if run['state'] != 'complete':
        state = 'incomplete: ' + (f"stopped after {run['stopped_after']}" if run['stopped_after'] else
                                  'stopped before the first cell ended')
        state += f", while running {run['running']}" if run['running'] else ''
        state += f" ({run['reason']})" if run['reason'] else ''
    lines = ['# GPU suite', '',
             f"Run: {state}.", '',
             f"Device: {m['device_name']}; torch {m['torch']} (CUDA {m['cuda']}); {m['date']}; "
             f"{m['cpu_count']} CPU cores; mode: {'quick (tiny sizes, CPU test run)' if data['quick'] else 'full'}; "
             f"total {data['total_s']:.0f} s of a {data['budget_s']:.0f} s budget.", '']
    sections = data['sections']
    if 'losses' in sections:
        lines += ['## ViT losses: forward + backward to pred', '',
                  f"{vit} (backbone mae, random weights), layer 5, token, mask 0.5, batch {s['loss_batch']}; median "
                  f"of {s['loss_repeats']} after {s['loss_warmup']} warm-up; bf16 / fp16 = autocast; "
                  "peak = memory above the ViT weights and inputs.", '']
        lines += _table(['loss', 'size', 'precision', 'batch', 'ms', 'peak MiB'], [
            [r['loss'], r['size'], r['precision'], r['batch'], *_cells(r, ('ms', 1), ('peak_mib', 0))]
            for r in data['losses']]) + ['']
    if 'training' in sections:
        lines += ['## Training step', '',
                  f"{'Tiny widths (--quick), official names. ' if data['quick'] else 'Official configurations. '}"
                  f"The plugin's step (build_model: ProgressiveSRModel, MultiStageModel for MPRNet; AdamW; feed_data "
                  f"+ optimize_parameters), {s['train_size']} px, median of {s['train_repeats']} steps after "
                  f"{s['train_warmup']} warm-up; bf16 / fp16 = train: mixed_precision (fp16 with torch.amp's "
                  'GradScaler); checkpoint = network_g: use_checkpoint: true; peak = all memory the training holds '
                  '(network, gradients, AdamW state, ViT, batch, activations).', '']
        lines += _table(['network', 'loss', 'precision', 'checkpoint', 'batch', 'ms', 'peak MiB'], [
            [r['network'], r['loss'], r['precision'], 'on' if r['checkpoint'] else 'off', r['batch'],
             *_cells(r, ('ms', 1), ('peak_mib', 0))] for r in data['training']]) + ['']
    if 'micro_batches' in sections:
        lines += ['## Micro-batches', '',
                  f"The training step (L1, fp32) at batch {s['micro_batch']}, {s['train_size']} px, with train: "
                  'micro_batches 1 (the unsplit batch) and 2 (two chunks, gradients accumulated, one optimizer '
                  'step); peak as in the training step; "vs 1" = peak / peak of micro_batches 1.', '']
        lines += _table(['network', 'batch', 'micro_batches', 'ms', 'peak MiB', 'peak vs 1'], [
            [r['network'], r['batch'], r['micro_batches'], *_cells(r, ('ms', 1), ('peak_mib', 0)),
             _peak_fraction(r, data['micro_batches'])] for r in data['micro_batches']]) + ['']
    if 'ddp' in sections:
        lines += ['## Two-process DDP training', '',
                  'python -m torch.distributed.run --standalone --nproc_per_node 2 -m basicsr_vitloss.train -opt '
                  '<generated> --launcher pytorch; tiny networks' + (' (--quick: the first one only)' if data['quick']
                                                                     else '')
                  + ', L1 + local ViT loss (tiny random ViT), synthetic dual-pixel data 32 px (both views for the '
                  f"6-channel networks, the combined view for the others), {s['ddp_iters']} iterations of batch 2 per "
                  'process, validation at the last. '
                  f"Ran with {data['ddp_mode']}. ok = exit status 0, world size 2 and a validation PSNR in the "
                  'log.', '']
        lines += _table(['network', 'processes', 'backend', 'iterations', 'status', 'wall s', 'note'], [
            [r['network'], r['processes'], r['backend'], r['iterations'], r['status'],
             _number(r.get('wall_s'), 1), r.get('note', '')] for r in data['ddp']]) + ['']
    if 'data' in sections:
        lines += ['## DPDD loading', '',
                  f"DPDDDataset dual_pixel, generated 16-bit {s['data_size']}x{s['data_size']} crops -> gt_size "
                  f"{s['data_gt_size']}, DataLoader batch 8, median of {s['data_repeats']} passes of "
                  f"{s['data_samples']} samples.", '']
        lines += _table(['workers', 'samples/s'], [[r['workers'], _cells(r, ('samples_per_s', 1))[0]]
                                                   for r in data['data']]) + ['']
    lines += ['## Time budget', '']
    if data['shares_s']:
        lines += ['Kept for the later sections (and their limit): ' + ', '.join(
            f'{name} {seconds:.0f} s' for name, seconds in data['shares_s'].items()) + '.', '']
    if data['skipped']:
        for section, labels in data['skipped'].items():
            lines.append(f"- {section}: {len(labels)} cells skipped to stay within the budget "
                         f"({data['budget_s']:.0f} s in all): " + '; '.join(labels))
    else:
        lines.append('No cell skipped.')
    failed = [f"{name}: {r['status']}" for name in sections for r in data[name] if r['status'] in FAILED_STATUSES]
    if failed:
        lines += ['', f'{len(failed)} cell(s) failed; see the note column and gpu.json.']
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda')
    parser.add_argument('--quick', action='store_true', help='tiny sizes, 1 repeat (tests); needs --out')
    parser.add_argument('--out', type=Path, default=None,
                        help='folder for gpu.md / gpu.json (default benchmarks/results)')
    parser.add_argument('--budget-s', type=float, default=540.0, help='total time budget in seconds (default 540)')
    parser.add_argument('--train-batch', type=int, default=2, help='batch of the training-step cells (default 2)')
    parser.add_argument('--networks', nargs='+', choices=list(NETWORKS), default=None,
                        help='only these networks in the training, micro-batch and DDP sections (default: all)')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS),
                        help='only these sections (default: all, in the order ' + ', '.join(SECTIONS) + ')')
    args = parser.parse_args(argv)

    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        print(NO_CUDA_MESSAGE)
        return 0
    if args.device == 'cpu' and not args.quick:
        parser.error('--device cpu runs only with --quick (the full suite is sized for a GPU)')
    if args.quick and args.out is None:
        parser.error('--quick needs --out (quick results never replace benchmarks/results)')
    out = args.out or HERE / 'results'
    _stop_hook()  # a malformed test hook fails before any work

    import basicsr_vitloss  # noqa: F401  (registers archs, losses, models, datasets; patches the step)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # as basicsr.train does
    cfg = settings(args.quick)
    selected = [name for name in SECTIONS if name in args.sections]
    budget = Budget(args.budget_s, shares={k: v * args.budget_s for k, v in SHARES.items() if k in selected})
    meter = Meter(device)
    builders = {'losses': lambda: loss_cells(device, cfg, meter),
                'training': lambda: training_cells(device, cfg, meter, args.train_batch, args.quick, args.networks),
                'micro_batches': lambda: micro_batch_cells(device, cfg, meter, args.quick, args.networks),
                'ddp': lambda: ddp_cells(device, cfg, budget, args.networks),
                'data': lambda: data_cells(cfg)}
    planned = {name: builders[name]() for name in selected}

    cpu_name = f'CPU ({platform.processor() or platform.machine()})'
    machine = {'device_name': torch.cuda.get_device_name() if device.type == 'cuda' else cpu_name,
               'torch': torch.__version__, 'cuda': torch.version.cuda, 'python': sys.version.split()[0],
               'cpu_count': os.cpu_count(), 'platform': platform.platform(),
               'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}
    data = {'machine': machine, 'quick': args.quick, 'device': args.device, 'budget_s': args.budget_s,
            'settings': {k: v for k, v in cfg.items() if k != 'vit_kwargs'}, 'train_batch': args.train_batch,
            'sections': selected, 'ddp_mode': ddp_mode(device)['text'], 'shares_s': budget.shares,
            'skipped': budget.skipped}
    report = Report(out, data, [(name, planned[name][0]) for name in selected])
    report.write()  # the plan, every cell not reached yet
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    code = 0
    try:
        run_sections(report, [(name, planned[name][0]) for name in selected], [planned[name][1] for name in selected],
                     budget, meter)
        report.finish()
        failed = [r for name in selected for r in data[name] if r['status'] in FAILED_STATUSES]
        code = 1 if failed else 0
    except Stop as stop:
        report.finish(stop.reason)
        code = stop.exit_code
    except KeyboardInterrupt:
        report.finish('KeyboardInterrupt')
        code = 130
    except SystemExit as stop:
        report.finish(f'SystemExit({stop.code!r})')
        code = stop.code if isinstance(stop.code, int) and stop.code else 1
    except BaseException as error:
        report.finish(f'{type(error).__name__}: {error}'.splitlines()[0][:300])
        report.write()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    print('\n'.join(report.write()))
    return code


if __name__ == '__main__':
    sys.exit(main())
