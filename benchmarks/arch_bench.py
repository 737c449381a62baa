"""Cost of each architecture in its official configuration at 256x256, on the machine that runs it.

For each configuration: parameters, multiply-accumulates per megapixel (torch's FlopCounterMode on
one forward, FLOPs / 2), forward time and forward+backward time (median of --repeats after one
warm-up, batch 1), and peak memory (CUDA: max_memory_allocated; CPU: increase of the process's
peak resident memory, each configuration in a fresh process). Writes
benchmarks/results/arch_bench.md and arch_bench.json.

    python benchmarks/arch_bench.py [--size 256] [--repeats 3] [--device cpu|cuda]
"""
import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'

#: name -> (in_channels, options dict for BasicSR's build_network), official configurations
CONFIGS = {
    'NAFNetLocal GoPro width64': (3, dict(type='NAFNetLocal', img_channel=3, width=64, middle_blk_num=1,
                                          enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])),
    'NAFNet SIDD width32': (3, dict(type='NAFNet', img_channel=3, width=32, middle_blk_num=12,
                                    enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])),
    'Restormer dual-pixel': (6, dict(type='Restormer', inp_channels=6, out_channels=3, dual_pixel_task=True)),
    'Restormer single / motion': (3, dict(type='Restormer', inp_channels=3, out_channels=3)),
    'Uformer-T': (3, dict(type='Uformer', img_size=256, embed_dim=16, win_size=8, token_projection='linear',
                          token_mlp='leff', modulator=True)),
    'Uformer-S': (3, dict(type='Uformer', img_size=256, embed_dim=32, win_size=8, token_projection='linear',
                          token_mlp='leff', modulator=True)),
    'Uformer-B': (3, dict(type='Uformer', img_size=256, embed_dim=32, win_size=8, token_projection='linear',
                          token_mlp='leff', modulator=True, depths=[1, 2, 8, 8, 2, 8, 8, 2, 1])),
    'DPDNet dual-pixel': (6, dict(type='DPDNet', in_channels=6, out_channels=3)),
}


def measure(name, size, repeats, device):
    """One configuration, in this process: a dict of measurements."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import basicsr_vitloss  # noqa: F401  (registers the archs)
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY

    in_channels, opt = CONFIGS[name]
    if opt['type'] not in ARCH_REGISTRY:
        return {'name': name, 'skipped': f"{opt['type']} is not registered"}
    torch.manual_seed(0)
    net = build_network(dict(opt)).to(device)
    x = torch.rand(1, in_channels, size, size, device=device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            net(x)
    macs_per_mp = counter.get_total_flops() / 2 / (size * size / 1e6)

    def timed(fn):
        fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def forward():
        with torch.no_grad():
            net(x)

    def forward_backward():
        net.zero_grad(set_to_none=True)
        net(x).mean().backward()

    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    forward_s = timed(forward)
    train_s = timed(forward_backward)
    if device == 'cuda':
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {'name': name, 'params': sum(p.numel() for p in net.parameters()), 'gmacs_per_mp': macs_per_mp / 1e9,
            'forward_s': forward_s, 'forward_backward_s': train_s, 'peak_mib': peak_mib}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default=None)
    parser.add_argument('--one', default=None, help=argparse.SUPPRESS)  # internal: measure one config
    args = parser.parse_args()
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.one:
        print(json.dumps(measure(args.one, args.size, args.repeats, device)))
        return
    rows = []
    for name in CONFIGS:
        proc = subprocess.run([sys.executable, __file__, '--one', name, '--size', str(args.size), '--repeats',
                               str(args.repeats), '--device', device], capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    memory = 'max_memory_allocated increase' if device == 'cuda' else 'peak resident memory increase (fresh process)'
    lines = ['# Architectures: cost at the official configurations', '',
             f'{platform.machine()}, {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; input '
             f'1x C x {args.size} x {args.size}; median of {args.repeats} after a warm-up; '
             f'`python benchmarks/arch_bench.py`.', '',
             f'| configuration | parameters | GMACs / megapixel | forward | forward + backward | {memory} |',
             '|---|---|---|---|---|---|']
    for row in rows:
        if 'skipped' in row:
            lines.append(f"| {row['name']} | skipped: {row['skipped']} | | | | |")
            continue
        lines.append(f"| {row['name']} | {row['params']:,} | {row['gmacs_per_mp']:.0f} | {row['forward_s']:.2f} s | "
                     f"{row['forward_backward_s']:.2f} s | {row['peak_mib']:.0f} MiB |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'arch_bench.json').write_text(json.dumps({'device': device, 'size': args.size, 'rows': rows}, indent=2))
    (RESULTS / 'arch_bench.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
