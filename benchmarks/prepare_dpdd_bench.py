"""scripts/prepare_dpdd.py, official rule: seconds per 1680x1120 16-bit scene with 1 and 2 workers.

The DPDD tree is generated in a temporary folder: --scenes scenes with the release's real names
(tests/data/dpdd_file_lists.json), 16-bit textured content (Gaussian-blurred noise of several scales
and a gradient, so PNG compression and the Sobel sums meet realistic data), the three blurry views
blurred copies of the target. Each figure is the median over --repeats runs of the split's wall time
(a fresh output folder each run) divided by the number of scenes: train (28 windows scored with 4
Sobel kernels, 20 x 4 crops written) and val (12 x 4 crops, no scoring). Baseline, measured in the
same run: decoding the scene's four PNGs with cv2.imread and encoding the kept crops' pixels once
(the I/O floor of any cropper). Writes benchmarks/results/prepare_dpdd_bench.md and .json.

    python benchmarks/prepare_dpdd_bench.py [--scenes 4] [--repeats 3]
"""
import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench_results import write_results

REPO = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 1120, 1680


def load_prepare():
    # an importable module (not a file loaded by path): its worker processes import it by name
    sys.path.insert(0, str(REPO / 'scripts'))
    return importlib.import_module('prepare_dpdd')


def textured(rng):
    image = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    for sigma in (1, 4, 16):
        noise = cv2.GaussianBlur(rng.standard_normal((HEIGHT, WIDTH, 3), dtype=np.float32), (0, 0), sigma)
        weight = cv2.resize(rng.random((4, 6), dtype=np.float32), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        image += weight[..., None] * noise / noise.std()
    image = (image - image.min()) / (image.max() - image.min())
    image = 0.7 * image + 0.3 * np.linspace(0, 1, WIDTH, dtype=np.float32)[None, :, None]
    return np.round(image * 65535).astype(np.uint16)


def make_release(root, split, scenes):
    """The official layout of ``split`` with ``scenes`` scenes named as in the release."""
    lists = json.loads((REPO / 'tests' / 'data' / 'dpdd_file_lists.json').read_text())[split]
    rng = np.random.default_rng(0)
    for source, target in list(zip(lists['src'], lists['trg']))[:scenes]:
        gt = textured(rng)
        files = {f'{split}_c/target/{target}.png': gt,
                 f'{split}_c/source/{source}.png': cv2.GaussianBlur(gt, (0, 0), 3),
                 f'{split}_l/source/{source}_L.png': cv2.GaussianBlur(gt, (0, 0), 2.5),
                 f'{split}_r/source/{source}_R.png': cv2.GaussianBlur(gt, (0, 0), 3.5)}
        for name, image in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            cv2.imwrite(os.path.join(root, name), image)


def time_split(prepare, root, work, split, workers, scenes, repeats):
    """Median seconds per scene of prepare_split (official rule, defaults) over ``repeats`` runs."""
    times = []
    for repeat in range(repeats):
        out = os.path.join(work, f'out_{split}_{workers}_{repeat}')
        start = time.perf_counter()
        stats = prepare.prepare_split(root, out, split, 512, 0.6, 0.3, workers)
        times.append((time.perf_counter() - start) / scenes)
        shutil.rmtree(out)
    return statistics.median(times), stats


def io_baseline(root, split, crops_per_scene, repeats):
    """Median seconds per scene of decoding its four PNGs and encoding ``crops_per_scene`` 512x512
    crops of each view (one process)."""
    targets = sorted(os.listdir(os.path.join(root, f'{split}_c/target')))
    sources = sorted(os.listdir(os.path.join(root, f'{split}_c/source')))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for source, target in zip(sources, targets):
            stem = os.path.splitext(source)[0]
            for path in (f'{split}_c/target/{target}', f'{split}_c/source/{source}',
                         f'{split}_l/source/{stem}_L.png', f'{split}_r/source/{stem}_R.png'):
                image = cv2.imread(os.path.join(root, path), cv2.IMREAD_UNCHANGED)
                for k in range(crops_per_scene):
                    cv2.imencode('.png', image[:512, :512])
        times.append((time.perf_counter() - start) / len(sources))
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenes', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)
    prepare = load_prepare()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        root = os.path.join(work, 'dpdd')
        for split in ('train', 'val'):
            make_release(root, split, args.scenes)
        for split, crops in (('train', 20), ('val', 12)):
            baseline = io_baseline(root, split, crops, args.repeats)
            rows.append({'split': split, 'what': f'baseline: imread 4 views + imencode {crops} x 4 crops',
                         'workers': 0, 's_per_scene': baseline})
            for workers in (1, 2):
                seconds, stats = time_split(prepare, root, work, split, workers, args.scenes, args.repeats)
                rows.append({'split': split, 'what': f'prepare_dpdd official ({stats["kept"]} of {stats["total"]} '
                             f'windows kept)', 'workers': workers, 's_per_scene': seconds})
            for row in rows[-3:]:
                row['ratio_to_baseline'] = row['s_per_scene'] / baseline
    machine = {'python': sys.version.split()[0], 'numpy': np.__version__, 'opencv': cv2.__version__,
               'cpu_count': os.cpu_count(), 'platform': platform.platform()}
    data = {'machine': machine, 'args': vars(args), 'rows': rows}
    train = {r['workers']: r['s_per_scene'] for r in rows if r['split'] == 'train'}
    lines = ['# DPDD patch preparation (scripts/prepare_dpdd.py, official rule)', '',
             f"{machine['cpu_count']} CPU cores, OpenCV {machine['opencv']}; {args.scenes} generated 1680x1120 "
             f'16-bit scenes per split, median of {args.repeats} runs, seconds per scene (wall time / scenes).', '',
             '| split | what | workers | s / scene | x baseline |', '|---|---|---:|---:|---:|']
    lines += [f"| {r['split']} | {r['what']} | {r['workers']} | {r['s_per_scene']:.2f} | {r['ratio_to_baseline']:.2f} |"
              for r in rows]
    lines += ['', f'The 350 training scenes: about {350 * train[1] / 60:.0f} min with 1 worker, '
              f'{350 * train[2] / 60:.0f} min with 2 (this machine).', '',
              "2 workers include the pool's start-up (forkserver children import the package, torch included: "
              "seconds per child), paid once per split and amortised over a few scenes only here; "
              "the 2 cores are shared with other jobs, so the 2-worker figures are pessimistic."]
    write_results('prepare_dpdd_bench', data, lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
