"""Cost of the paper's metrics per full-size DPDD image (1680x1120), on the machine that runs it.

Each metric on one 16-bit-like image pair (a photograph upscaled to 1680x1120 and a blurred copy),
median of --repeats calls after a warm-up (which builds LPIPS's network once). Baselines in the same
run: BasicSR's own calculate_psnr and calculate_ssim on the 8-bit images. Writes
benchmarks/results/metrics_bench.md and metrics_bench.json. LPIPS uses random AlexNet weights saved in
torchvision's format (the cost does not depend on the values).

    python benchmarks/metrics_bench.py [--repeats 3] [--size 1680 1120]
"""
import argparse
import os
import platform
import sys
import tempfile

import cv2
import numpy as np

from bench_results import median_seconds, write_results



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--size', type=int, nargs=2, default=[1680, 1120], metavar=('W', 'H'))
    args = parser.parse_args(argv)

    import torch
    import torchvision
    import basicsr_vitloss  # noqa: F401  (compat fixes, metric registration)
    import skimage.data
    from basicsr.metrics.niqe import calculate_niqe
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    from basicsr_vitloss.metrics.fidelity_metric import calculate_mae, calculate_psnr_float, calculate_ssim_float
    from basicsr_vitloss.metrics.lpips_metric import calculate_lpips
    from basicsr_vitloss.metrics.ssim_matlab_metric import calculate_ssim_matlab

    width, height = args.size
    gt = cv2.resize(skimage.data.astronaut()[..., ::-1].astype(np.float32) / 255, (width, height),
                    interpolation=cv2.INTER_CUBIC).clip(0, 1)
    restored = cv2.GaussianBlur(gt, (0, 0), 1.5)
    gt16, restored16 = ((a * 65535).round().astype(np.uint16) for a in (gt, restored))
    gt8, restored8 = ((a * 255).round().astype(np.uint8) for a in (gt, restored))
    with tempfile.TemporaryDirectory() as weights:
        torch.save(torchvision.models.alexnet().state_dict(), os.path.join(weights, 'alexnet-owt-7be5be79.pth'))
        cases = [
            ('BasicSR calculate_psnr, 8-bit (baseline)', lambda: calculate_psnr(restored8, gt8, 0)),
            ('BasicSR calculate_ssim, 8-bit (baseline)', lambda: calculate_ssim(restored8, gt8, 0)),
            ('calculate_psnr_float, 16-bit', lambda: calculate_psnr_float(restored16, gt16)),
            ('calculate_ssim_float, 16-bit', lambda: calculate_ssim_float(restored16, gt16)),
            ('calculate_ssim_matlab (3-D, MATLAB), 8-bit', lambda: calculate_ssim_matlab(restored8, gt8, 0)),
            ('calculate_mae, 16-bit', lambda: calculate_mae(restored16, gt16)),
            ('calculate_lpips (AlexNet), 16-bit', lambda: calculate_lpips(restored16, gt16, weights_dir=weights)),
            ('BasicSR calculate_niqe, 8-bit', lambda: calculate_niqe(restored8, 0)),
        ]
        rows = [{'metric': name, 'seconds': median_seconds(function, args.repeats, warmup=1)}
                for name, function in cases]
    psnr_base, ssim_base = rows[0]['seconds'], rows[1]['seconds']
    for row in rows:
        row['x_psnr_baseline'] = row['seconds'] / psnr_base
        row['x_ssim_baseline'] = row['seconds'] / ssim_base
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    machine = {'python': sys.version.split()[0], 'torch': torch.__version__, 'cpu_count': os.cpu_count(),
               'lpips_device': device, 'platform': platform.platform()}
    data = {'machine': machine, 'args': vars(args), 'rows': rows}
    lines = ['# Metric cost per image', '',
             f"{width}x{height} RGB, {machine['cpu_count']} CPU cores, torch {machine['torch']}, LPIPS on "
             f'{device}; median of {args.repeats} calls after a warm-up.', '',
             '| metric | seconds / image | x BasicSR PSNR | x BasicSR SSIM |', '|---|---:|---:|---:|']
    lines += [f"| {r['metric']} | {r['seconds']:.3f} | {r['x_psnr_baseline']:.1f} | {r['x_ssim_baseline']:.2f} |"
              for r in rows]
    write_results('metrics_bench', data, lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
