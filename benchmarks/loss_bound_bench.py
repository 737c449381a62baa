"""The ViT losses against the strict compute bound, as the speed target of the losses is defined.

Setting: ViT-B/16 (``vit_base_patch16_224.mae`` with random weights), batch 2, 256x256, block 5,
token feature, mask_ratio 0.5. One call = forward + backward to pred of ``loss.value(pred, target)``.

Bound: the matmul FLOPs strictly needed -- the target forward, the pred forward and the pred
input-gradient backward (the ViT is frozen: no weight gradients) on the kept tokens, formulas in
loss_bench.py -- divided by the float32 throughput of a 2048^3 matmul measured in the same repetition
(right before the loss call). Ratio = loss time / bound; the median over --repeats repetitions, each
repetition timing every variant once (round-robin), after --warmup untimed calls (compilation).

Variants: local and global loss, eager and ``compile: true``. On CUDA it also counts the
device-to-host synchronisations one call makes (CUDA's sync debug mode: every synchronising call is
reported as a warning and counted). Writes benchmarks/results/loss_bound_bench.{json,md}.

    python benchmarks/loss_bound_bench.py [--repeats 5] [--warmup 3] [--no-compile]
"""
import argparse
import os
import platform
import statistics
import time
import warnings

import torch

from bench_results import write_results
from loss_bench import MASK_RATIO, bound_flops, sync, timed as seconds

BATCH, SIZE, LAYER = 2, 256, 5
MATMUL = 2048


def build(kind, compiled, device):
    from basicsr_vitloss.losses.vit_losses import GlobalDistributionLoss, LocalMAEPerceptualLoss
    cls = LocalMAEPerceptualLoss if kind == 'local' else GlobalDistributionLoss
    torch.manual_seed(0)
    return cls(pretrained=False, layers=LAYER, mask_ratio=MASK_RATIO, compile=compiled).to(device)


def call(loss, pred, target):
    pred.grad = None
    loss.value(pred, target).backward()


def count_syncs(loss, pred, target):
    """Device-to-host synchronisations of one call on CUDA (None elsewhere)."""
    if pred.device.type != 'cuda':
        return None
    torch.cuda.set_sync_debug_mode('warn')
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            call(loss, pred, target)
    finally:
        torch.cuda.set_sync_debug_mode('default')
    return sum('synchroniz' in str(w.message) for w in caught)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--no-compile', action='store_true', help='only the eager variants')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    pred = torch.rand(BATCH, 3, SIZE, SIZE, generator=generator).to(device).requires_grad_(True)
    target = torch.rand(BATCH, 3, SIZE, SIZE, generator=generator).to(device)
    a = torch.randn(MATMUL, MATMUL, device=device)
    b = torch.randn(MATMUL, MATMUL, device=device)
    flops = bound_flops(BATCH)
    variants = [(kind, compiled) for compiled in ((False,) if args.no_compile else (False, True))
                for kind in ('local', 'global')]
    losses = {}
    for kind, compiled in variants:
        loss = build(kind, compiled, device)
        start = time.perf_counter()
        for _ in range(args.warmup):
            call(loss, pred, target)
        sync(device)
        losses[(kind, compiled)] = (loss, time.perf_counter() - start)
    ratios = {v: [] for v in variants}
    times = {v: [] for v in variants}
    bounds = []
    for _ in range(args.repeats):
        for variant in variants:
            matmul = statistics.median(seconds(lambda: a @ b, device) for _ in range(3))
            bound = flops['total'] / (2 * MATMUL**3 / matmul)
            elapsed = seconds(lambda: call(losses[variant][0], pred, target), device)
            times[variant].append(elapsed)
            ratios[variant].append(elapsed / bound)
            bounds.append(bound)
    rows = []
    for (kind, compiled) in variants:
        loss, warm = losses[(kind, compiled)]
        rows.append({'loss': kind, 'compile': compiled, 'median_s': statistics.median(times[(kind, compiled)]),
                     'ratio_to_bound': statistics.median(ratios[(kind, compiled)]),
                     'ratio_range': [min(ratios[(kind, compiled)]), max(ratios[(kind, compiled)])],
                     'warmup_s': warm, 'syncs_per_call': count_syncs(loss, pred, target)})
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{platform.machine()} CPU, ' \
        f'{os.cpu_count()} cores, {torch.get_num_threads()} threads'
    lines = ['# ViT losses against the compute bound', '',
             f'{name}; torch {torch.__version__}; batch {BATCH}, {SIZE}x{SIZE}, block {LAYER}, mask {MASK_RATIO}; '
             f'bound = {flops["total"] / 1e9:.1f} GFLOP (target fwd + pred fwd + pred input-grad bwd, matmuls only) '
             f'/ {MATMUL}^3 float32 matmul throughput measured in the same repetition (median bound '
             f'{statistics.median(bounds) * 1e3:.0f} ms); median of {args.repeats}', '',
             '| loss | compile | median time | x bound (median) | x bound (range) | first calls (compile) | '
             'device syncs / call |', '|---|---|---:|---:|---|---:|---:|']
    for r in rows:
        syncs = 'n/a (CPU)' if r['syncs_per_call'] is None else str(r['syncs_per_call'])
        lines.append(f"| {r['loss']} | {'yes' if r['compile'] else 'no'} | {r['median_s'] * 1e3:.0f} ms | "
                     f"{r['ratio_to_bound']:.2f} | {r['ratio_range'][0]:.2f} - {r['ratio_range'][1]:.2f} | "
                     f"{r['warmup_s']:.1f} s | {syncs} |")
    write_results('loss_bound_bench', {'device': name, 'bound_gflop': flops['total'] / 1e9, 'rows': rows}, lines)


if __name__ == '__main__':
    main()
