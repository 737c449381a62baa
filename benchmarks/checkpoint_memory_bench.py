"""Activation checkpointing (``use_checkpoint: true``): peak memory and time of one training step.

For Restormer (dim 16, num_blocks [2, 2, 2, 2], 2 refinement blocks, heads [1, 2, 4, 8]) and NAFNet
(width 16, enc_blk_nums [1, 1, 1, 8], middle 1, dec_blk_nums [1, 1, 1, 1]), batch 2 of 3x256x256, training
mode, with and without ``use_checkpoint``: one step = ``zero_grad(set_to_none=True)``, forward, L1 loss
against a fixed target, backward (the parameter gradients are allocated inside the step, as in training).

* Peak memory of one step above the steady state (network + inputs):
  CUDA: ``torch.cuda.max_memory_allocated()`` minus ``torch.cuda.memory_allocated()`` before the step.
  CPU: the method of ``loss_bench.py`` (its helpers are imported): a fresh subprocess per measurement
  runs one untimed step, frees memory back to the OS (``gc.collect()``, glibc ``malloc_trim(0)``),
  resets the kernel's peak-RSS mark (``5 > /proc/self/clear_refs``) and reports ``VmHWM`` after one step
  minus ``VmRSS`` before it. An RSS measure (allocator slack and oneDNN scratch included), not exact tensor
  bytes; n/a where /proc/self/clear_refs is not writable.
* Time of one step: median of ``--repeats`` after one warm-up, the two variants alternating (round-robin)
  so that load drifts on a shared machine hit both alike; CPU timing runs with glibc told to keep freed
  memory (``loss_bench.keep_freed_memory``), as the other CPU timings here.

Memory values are medians of ``--repeats`` measurements. Writes benchmarks/results/checkpoint_memory_bench.md
and .json. Run: ``python benchmarks/checkpoint_memory_bench.py [--device cpu|cuda] [--repeats 3]``.
"""
import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch.nn import functional as F

import basicsr_vitloss  # noqa: F401  (registers the architectures; makes basicsr importable)
from basicsr.archs import build_network
from bench_results import write_results
from loss_bench import keep_freed_memory, peak_rss_increase_mib

CONFIGS = {
    'Restormer': dict(type='Restormer', inp_channels=3, out_channels=3, dim=16, num_blocks=[2, 2, 2, 2],
                      num_refinement_blocks=2, heads=[1, 2, 4, 8]),
    'NAFNet': dict(type='NAFNet', img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 8],
                   dec_blk_nums=[1, 1, 1, 1]),
}
BATCH = 2
SIZE = 256


def build(name, use_checkpoint, device):
    torch.manual_seed(0)
    net = build_network(dict(CONFIGS[name], use_checkpoint=use_checkpoint)).to(device)
    net.train()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(BATCH, 3, SIZE, SIZE, generator=gen).to(device)
    target = torch.rand(BATCH, 3, SIZE, SIZE, generator=gen).to(device)
    return net, x, target


def step(net, x, target):
    net.zero_grad(set_to_none=True)
    F.l1_loss(net(x), target).backward()


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def memory_worker(name, use_checkpoint):
    """CPU peak-RSS increase (MiB) of one training step, in this fresh process."""
    net, x, target = build(name, use_checkpoint, torch.device('cpu'))
    return peak_rss_increase_mib(lambda: step(net, x, target))


def peak_memory_mib(name, use_checkpoint, device):
    if device.type == 'cuda':
        net, x, target = build(name, use_checkpoint, device)
        step(net, x, target)
        sync(device)
        net.zero_grad(set_to_none=True)
        gc.collect()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(net, x, target)
        sync(device)
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        del net, x, target
        torch.cuda.empty_cache()
        return peak
    proc = subprocess.run([sys.executable, __file__, '--memory-worker', name, str(int(use_checkpoint))],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])['peak_mib']


def step_times(name, device, repeats):
    """Median step time (s) without / with checkpointing, measured round-robin after one warm-up each."""
    runs = {flag: build(name, flag, device) for flag in (False, True)}
    times = {False: [], True: []}
    for round_index in range(repeats + 1):
        for flag, (net, x, target) in runs.items():
            sync(device)
            start = time.perf_counter()
            step(net, x, target)
            sync(device)
            if round_index > 0:
                times[flag].append(time.perf_counter() - start)
    return {flag: statistics.median(values) for flag, values in times.items()}


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_mib(value):
    return 'n/a' if value is None else f'{value:.0f} MiB'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--memory-worker', nargs=2, metavar=('ARCH', 'USE_CHECKPOINT'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        name, flag = args.memory_worker
        print(json.dumps({'peak_mib': memory_worker(name, bool(int(flag)))}))
        return

    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    malloc_kept = keep_freed_memory() if device.type == 'cpu' else None
    rows = []
    for name in CONFIGS:
        memory = {False: [], True: []}
        for _ in range(args.repeats):  # alternate the variants
            for flag in (False, True):
                memory[flag].append(peak_memory_mib(name, flag, device))
        times = step_times(name, device, args.repeats)
        row = {
            'arch': name,
            'options': CONFIGS[name],
            'peak_mib': median_or_none(memory[False]),
            'peak_mib_checkpoint': median_or_none(memory[True]),
            'peak_mib_samples': memory[False],
            'peak_mib_checkpoint_samples': memory[True],
            'step_s': times[False],
            'step_s_checkpoint': times[True],
        }
        if row['peak_mib'] and row['peak_mib_checkpoint'] is not None:
            row['memory_ratio'] = row['peak_mib_checkpoint'] / row['peak_mib']
        row['time_ratio'] = times[True] / times[False]
        rows.append(row)
        print(json.dumps(row), flush=True)

    memory_what = ('max_memory_allocated increase' if device.type == 'cuda'
                   else 'peak resident memory increase, fresh process per measurement')
    lines = [
        '# Activation checkpointing (`use_checkpoint: true`): memory and time of one training step', '',
        f'{platform.machine()}, {device.type}'
        + (f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else
           f', {torch.get_num_threads()} threads')
        + f', torch {torch.__version__}; batch {BATCH} x 3 x {SIZE} x {SIZE}, '
        f'step = forward + L1 + backward; medians of {args.repeats}; memory: {memory_what}; '
        '`python benchmarks/checkpoint_memory_bench.py`.', '',
        '| network | peak memory | with `use_checkpoint` | memory ratio '
        '| step time | with `use_checkpoint` | time ratio |',
        '|---|---|---|---|---|---|---|',
    ]
    for row in rows:
        ratio = f"{row['memory_ratio']:.2f}" if 'memory_ratio' in row else 'n/a'
        lines.append(f"| {row['arch']} | {fmt_mib(row['peak_mib'])} | "
                     f"{fmt_mib(row['peak_mib_checkpoint'])} | {ratio} | "
                     f"{row['step_s']:.2f} s | {row['step_s_checkpoint']:.2f} s | {row['time_ratio']:.2f} |")
    lines += ['', 'Options: ' + '; '.join(f"{r['arch']} `{json.dumps(r['options'])}`" for r in rows)]
    write_results('checkpoint_memory_bench', {
        'device': device.type, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'batch': BATCH,
        'size': SIZE, 'repeats': args.repeats, 'glibc_keeps_freed_memory_for_timing': malloc_kept, 'rows': rows,
    }, lines)


if __name__ == '__main__':
    main()
