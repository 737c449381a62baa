"""Speed of the inference command (basicsr-vitloss-infer) against a plain loop over the same files.

NAFNet as in options/dpdd_single/nafnet_baseline.yml (NAFNetLocal, width 64, the official GoPro
configuration; --width makes it narrower where a slow CPU needs it) restores --images random 8-bit
1680x1120 PNGs (DPDD's size), whole and in tiles (--tile, --tile-overlap). For each way, images per
second of

* plain: a loop that reads each file (cv2), runs the network on it under inference mode, quantizes
  and writes the PNG (cv2.imwrite): the least any tool has to do;
* command: ``restore_files`` in-process (the command's core: the same work plus its checks, atomic
  writes, per-image error handling);

median of --repeats after one untimed warm-up image, the two alternating so that a drifting machine
load hits both alike; ratio = command time / plain time (the goal: at most 1.05). The full console
command (a fresh ``python -m basicsr_vitloss.infer``: interpreter start, imports, weights) is timed
once, tiled. A third row times both ways with a 1x1 convolution for a network: the cost of reading,
converting and writing alone, which is what the command could add. Random weights: speed does not
depend on them. Writes benchmarks/results/infer_bench.{json,md}.

    python benchmarks/infer_bench.py [--images 2] [--repeats 1] [--width 64] [--threads N]
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_results import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / 'options' / 'dpdd_single' / 'nafnet_baseline.yml'
HEIGHT, WIDTH = 1120, 1680


def plain_loop(net, files, output, tile, overlap):
    """Read, forward, quantize, write: the baseline the command is measured against."""
    from basicsr_vitloss.utils.tiling import tiled_forward
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        x = torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / 255)[None]
        with torch.inference_mode():
            out = tiled_forward(net, x, tile, overlap) if tile else net(x)
        result = (out[0].clamp(0, 1) * 255).round().to(torch.uint8).flip(0).permute(1, 2, 0).numpy()
        cv2.imwrite(str(Path(output) / (Path(path).stem + '.png')), result)


def report(args, network_opt, rows, console_s=None):
    """Write benchmarks/results/infer_bench.json and .md for what was measured so far (a stopped run keeps it)."""
    width = network_opt.get('width')
    data = {'machine': platform.machine(), 'device': 'cpu', 'torch': torch.__version__,
            'threads': torch.get_num_threads(), 'network': network_opt, 'size': [HEIGHT, WIDTH], 'images': args.images,
            'repeats': args.repeats, 'rows': rows, 'console_tiled_s': console_s,
            'console_tiled_images_per_s': args.images / console_s if console_s else None}
    lines = ['# Inference command: images per second against a plain loop', '',
             f'{platform.machine()}, cpu, torch {torch.__version__}, {torch.get_num_threads()} threads; '
             f'{network_opt["type"]} width {width} (options/dpdd_single/nafnet_baseline.yml'
             f'{", width overridden" if args.width else ""}); {args.images} random {WIDTH}x{HEIGHT} 8-bit PNGs; '
             f'median of {args.repeats} (I/O row: 9) after a warm-up; '
             f'`python benchmarks/infer_bench.py --images {args.images} '
             f'--repeats {args.repeats}{f" --width {args.width}" if args.width else ""}`.', '',
             '| way | plain loop | restore_files (command core) | command / plain (medians) | (minimums) |',
             '|---|---|---|---|---|']
    for row in rows:
        lines.append(f"| {row['way']} | {row['plain_images_per_s']:.3f} images/s ({row['plain_s']:.1f} s) | "
                     f"{row['command_images_per_s']:.3f} images/s ({row['command_s']:.1f} s) | {row['ratio']:.3f} | "
                     f"{row['ratio_of_minimums']:.3f} |")
    lines += ['', 'Every timing: ' + '; '.join(f"{row['way']}: " + ', '.join(
        f"{way} " + ' / '.join(f'{t:.1f}' for t in times) for way, times in row['all_s'].items()) + ' s'
        for row in rows) + '. On a machine shared with other work the minimums are the less disturbed figures.',
        '', f'Full console command (fresh `python -m basicsr_vitloss.infer`, tiled, start-up and weights '
              f'included): {console_s:.1f} s for {args.images} images ({args.images / console_s:.3f} images/s).'
        if console_s else 'Full console command: not measured yet (the run was stopped before it).']
    write_results('infer_bench', data, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--width', type=int, default=None, help='NAFNet width (default: the options file, 64)')
    parser.add_argument('--tile', type=int, default=512)
    parser.add_argument('--tile-overlap', type=int, default=32)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import basicsr_vitloss  # noqa: F401  (registers the architectures)
    from basicsr.archs import build_network
    from basicsr_vitloss.infer import restore_files

    network_opt = yaml.safe_load(OPTIONS.read_text())['network_g']
    if args.width:
        network_opt['width'] = args.width
    torch.manual_seed(0)
    net = build_network(dict(network_opt)).eval()
    work = Path(tempfile.mkdtemp(prefix='infer-bench-'))
    inputs, outputs = work / 'in', work / 'out'
    inputs.mkdir()
    rng = np.random.default_rng(0)
    files = []
    for index in range(args.images):  # smooth random content: PNG sizes of a photograph, not of noise
        small = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
        files.append(inputs / f'img{index:03d}.png')
        cv2.imwrite(str(files[-1]), cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC))
    options = work / 'options.yml'
    options.write_text(yaml.safe_dump({'network_g': network_opt}))
    weights = work / 'weights.pth'
    torch.save({'params': net.state_dict()}, weights)

    rows = []
    io_net = torch.nn.Conv2d(3, 3, 1).eval()  # next to nothing to compute: what remains is each way's own cost
    ways = (('whole', None, net, args.repeats),
            (f'tiles {args.tile}, overlap {args.tile_overlap}', args.tile, net, args.repeats),
            ('I/O only: a 1x1 convolution network', None, io_net, 9))
    for label, tile, model, repeats in ways:
        timings = {'plain': [], 'command': []}
        plain_loop(model, files[:1], outputs, tile, args.tile_overlap)  # warm-up: first-call allocations, threads
        for repeat in range(repeats):
            order = ('plain', 'command') if repeat % 2 == 0 else ('command', 'plain')
            for way in order:
                start = time.perf_counter()
                if way == 'plain':
                    plain_loop(model, files, outputs, tile, args.tile_overlap)
                else:
                    summary = restore_files(model, str(inputs), str(outputs), tile=tile, tile_overlap=args.tile_overlap,
                                            overwrite=True, progress=False)
                    assert len(summary.restored) == args.images, summary.line()
                timings[way].append(time.perf_counter() - start)
                print(f'{label}: {way} {timings[way][-1]:.2f} s', flush=True)
        plain, command = (statistics.median(timings[w]) for w in ('plain', 'command'))
        best = {w: min(timings[w]) for w in timings}
        rows.append({'way': label, 'repeats': repeats, 'plain_s': plain, 'command_s': command,
                     'plain_images_per_s': args.images / plain,
                     'command_images_per_s': args.images / command, 'ratio': command / plain,
                     'ratio_of_minimums': best['command'] / best['plain'], 'all_s': timings})
        report(args, network_opt, rows)

    console_out = work / 'console'
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'basicsr_vitloss.infer', '--opt', str(options), '--weights', str(weights),
                    '--input', str(inputs), '--output', str(console_out), '--device', 'cpu', '--tile', str(args.tile),
                    '--tile-overlap', str(args.tile_overlap), '--no-progress'], check=True, cwd=REPO,
                   env={**os.environ, **({'OMP_NUM_THREADS': str(args.threads)} if args.threads else {})})
    console_s = time.perf_counter() - start

    report(args, network_opt, rows, console_s)



if __name__ == '__main__':
    main()
