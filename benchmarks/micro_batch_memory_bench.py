"""What micro-batches and mixed precision save on the CPU: peak memory and time of one training step.

One ``optimize_parameters`` call of BasicSR's ProgressiveSRModel (the plugin's training step) at batch
4, 256x256, L1 loss, Adam, for a Restormer (dim 16, blocks [2, 2, 2, 2]) and a NAFNet (width 16, blocks
[1, 1, 1, 8]) at small width, with ``train: micro_batches`` 1, 2, 4 and ``mixed_precision`` null /
bf16. Peak memory: the peak resident-memory increase of the timed step in a fresh process, measured as
loss_bench.py does (VmHWM after clear_refs, after one untimed step; glibc told to keep freed memory).
Time: median of --repeats steps in that process. Writes benchmarks/results/micro_batch_memory_bench.{json,md}.

    python benchmarks/micro_batch_memory_bench.py [--repeats 3]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from bench_results import write_results

NETWORKS = {
    'Restormer dim 16': {'type': 'Restormer', 'dim': 16, 'num_blocks': [2, 2, 2, 2], 'num_refinement_blocks': 2,
                         'heads': [1, 2, 4, 8]},
    'NAFNet width 16': {'type': 'NAFNet', 'width': 16, 'enc_blk_nums': [1, 1, 1, 8], 'middle_blk_num': 1,
                        'dec_blk_nums': [1, 1, 1, 1]},
}
SETTINGS = [(1, None), (2, None), (4, None), (1, 'bf16'), (4, 'bf16')]
BATCH, SIZE = 4, 256


def worker(network, micro_batches, precision, repeats):
    """Peak RSS increase (MiB) and median time (s) of one training step, in this (fresh) process."""
    import torch
    import basicsr_vitloss  # noqa: F401  (registration, the training step)
    from basicsr.models import build_model
    from loss_bench import keep_freed_memory, peak_rss_increase_mib
    keep_freed_memory()
    torch.manual_seed(0)
    opt = {'name': 'bench', 'model_type': 'ProgressiveSRModel', 'is_train': True, 'dist': False, 'num_gpu': 0,
           'scale': 1, 'network_g': dict(NETWORKS[network]),
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'total_iter': 100, 'warmup_iter': -1,
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}, 'micro_batches': micro_batches,
                     'mixed_precision': precision}}
    model = build_model(opt)
    data = {'lq': torch.rand(BATCH, 3, SIZE, SIZE), 'gt': torch.rand(BATCH, 3, SIZE, SIZE)}
    times = []

    def step():
        model.feed_data(data)
        start = time.perf_counter()
        model.optimize_parameters(len(times) + 1)
        times.append(time.perf_counter() - start)

    peak = peak_rss_increase_mib(step)  # times[0] is the untimed warm-up step
    for _ in range(repeats - 1):
        step()
    return {'peak_mib': peak, 'seconds': statistics.median(times[1:])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--worker', nargs=3, metavar=('NETWORK', 'MICRO', 'PRECISION'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        network, micro, precision = args.worker
        print(json.dumps(worker(network, int(micro), None if precision == 'none' else precision, args.repeats)))
        return
    rows = []
    for network in NETWORKS:
        for micro, precision in SETTINGS:
            proc = subprocess.run([sys.executable, __file__, '--repeats', str(args.repeats), '--worker', network,
                                   str(micro), precision or 'none'], capture_output=True, text=True,
                                  cwd=os.path.dirname(os.path.abspath(__file__)))
            if proc.returncode:
                raise RuntimeError(f'{network} micro {micro} {precision}: {proc.stderr[-2000:]}')
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({'network': network, 'micro_batches': micro, 'precision': precision or 'fp32', **result})
    lines = ['# Training step on the CPU: micro-batches and mixed precision', '',
             f'{platform.machine()}, {os.cpu_count()} cores; ProgressiveSRModel step, batch {BATCH}, {SIZE}x{SIZE}, '
             f'L1, Adam; peak RSS increase of the step (fresh process), median time of {args.repeats} steps', '',
             '| network | micro_batches | precision | peak memory increase | x (1, fp32) | step time | x (1, fp32) |',
             '|---|---:|---|---:|---:|---:|---:|']
    for row in rows:
        base = next(r for r in rows if r['network'] == row['network'] and r['micro_batches'] == 1
                    and r['precision'] == 'fp32')
        lines.append(f"| {row['network']} | {row['micro_batches']} | {row['precision']} | {row['peak_mib']:.0f} MiB | "
                     f"{row['peak_mib'] / base['peak_mib']:.2f} | {row['seconds']:.2f} s | "
                     f"{row['seconds'] / base['seconds']:.2f} |")
    write_results('micro_batch_memory_bench', {'batch': BATCH, 'size': SIZE, 'rows': rows}, lines)


if __name__ == '__main__':
    main()
