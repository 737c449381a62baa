"""Data-loading throughput: DPDD 16-bit 512x512 crops at gt_size 256 with 0, 1, 2 workers, and the
synthetic dual-pixel dataset, in samples per second.

The DPDD tree is generated in a temporary folder: crops of scikit-image's photographs upscaled to
512x512, converted to 16 bits with slight noise (so the low bits are as incompressible as in real
16-bit captures), written as the four DPDD views. Baseline, measured in the same run: decoding the
sample's three PNG files (left, right, target) with cv2.imread alone, in this process, the floor that
any reader pays. Each figure is the median of --repeats passes over --samples samples (DataLoader,
batch 8, after one warm-up batch). Writes benchmarks/results/data_bench.md and data_bench.json.

    python benchmarks/data_bench.py [--samples 96] [--repeats 3]
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

from bench_results import write_results

BATCH = 8


def make_tree(root, scenes, size=512):
    """A DPDD crop-layout tree of ``scenes`` 16-bit scenes; returns the DPDDDataset folder options."""
    from basicsr_vitloss.data.sample_photographs import PHOTOGRAPHS, load_photograph
    folders = {key: os.path.join(root, name) for key, name in (
        ('dataroot_lqL', 'inputL_crops'), ('dataroot_lqR', 'inputR_crops'), ('dataroot_lqC', 'inputC_crops'),
        ('dataroot_gt', 'target_crops'))}
    for folder in folders.values():
        os.makedirs(folder)
    rng = np.random.default_rng(0)
    names = list(PHOTOGRAPHS)
    for index in range(scenes):
        photo = load_photograph(names[index % len(names)])
        top = int(rng.integers(0, photo.shape[0] - 256))
        left = int(rng.integers(0, photo.shape[1] - 256))
        sharp = cv2.resize(np.ascontiguousarray(photo[top:top + 256, left:left + 256]), (size, size),
                           interpolation=cv2.INTER_CUBIC)
        for key, folder in folders.items():
            view = sharp if key == 'dataroot_gt' else cv2.GaussianBlur(sharp, (0, 0), 2 + (key == 'dataroot_lqR'))
            noisy = np.clip(view + rng.normal(0, 0.004, view.shape), 0, 1)
            cv2.imwrite(os.path.join(folder, f'scene{index:04d}.png'),
                        np.round(noisy * 65535).astype(np.uint16)[..., ::-1])
    return folders


def throughput(dataset, workers, samples, repeats):
    """Median samples per second of a shuffled DataLoader (batch 8) over ``samples`` samples."""
    import torch
    from torch.utils.data import DataLoader
    rates = []
    for repeat in range(repeats):
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                            generator=torch.Generator().manual_seed(repeat), persistent_workers=False)
        iterator = iter(loader)
        next(iterator)  # warm-up: worker start, first files
        start, count = time.perf_counter(), 0
        for batch in iterator:
            count += batch['gt'].shape[0]
            if count >= samples:
                break
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def decode_baseline(folders, samples, repeats):
    """Median samples per second of cv2.imread of left, right and target, one process."""
    names = sorted(os.listdir(folders['dataroot_gt']))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(samples):
            name = names[index % len(names)]
            for key in ('dataroot_lqL', 'dataroot_lqR', 'dataroot_gt'):
                cv2.imread(os.path.join(folders[key], name), cv2.IMREAD_UNCHANGED)
        rates.append(samples / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--samples', type=int, default=96)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    import basicsr_vitloss  # noqa: F401  (registers the datasets)
    from basicsr_vitloss.data.dpdd_dataset import DPDDDataset
    from basicsr_vitloss.data.synthetic_dp_dataset import SyntheticDualPixelDataset

    rows = []
    with tempfile.TemporaryDirectory() as root:
        folders = make_tree(root, scenes=48)
        baseline = decode_baseline(folders, args.samples, args.repeats)
        rows.append({'dataset': 'cv2.imread of 3 16-bit PNGs (baseline)', 'workers': 0, 'samples_per_s': baseline})
        dpdd = DPDDDataset({'name': 'bench', 'phase': 'train', 'gt_size': 256, 'mode': 'dual_pixel', **folders})
        for workers in (0, 1, 2):
            rate = throughput(dpdd, workers, args.samples, args.repeats)
            rows.append({'dataset': 'DPDDDataset dual_pixel, 16-bit 512x512 -> 256', 'workers': workers,
                         'samples_per_s': rate})
    for size in (256, 64):
        synthetic = SyntheticDualPixelDataset({'name': 'bench', 'phase': 'train', 'gt_size': size,
                                               'num_samples': 10 * args.samples, 'radius_range': [2.0, 5.0]})
        for workers in (0, 2):
            rows.append({'dataset': f'SyntheticDualPixelDataset dual_pixel, gt_size {size}, radius 2-5',
                         'workers': workers,
                         'samples_per_s': throughput(synthetic, workers, args.samples, args.repeats)})
    for row in rows:
        row['ratio_to_baseline'] = row['samples_per_s'] / baseline

    machine = {'python': sys.version.split()[0], 'torch': torch.__version__, 'opencv': cv2.__version__,
               'cpu_count': os.cpu_count(), 'platform': platform.platform()}
    data = {'machine': machine, 'args': vars(args), 'rows': rows}
    lines = ['# Data-loading throughput', '',
             f"{machine['cpu_count']} CPU cores, torch {machine['torch']}, OpenCV {machine['opencv']}; "
             f'median of {args.repeats} passes of {args.samples} samples, DataLoader batch {BATCH}.', '',
             '| dataset | workers | samples/s | x baseline |', '|---|---:|---:|---:|']
    lines += [f"| {r['dataset']} | {r['workers']} | {r['samples_per_s']:.1f} | {r['ratio_to_baseline']:.2f} |"
              for r in rows]
    write_results('data_bench', data, lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
