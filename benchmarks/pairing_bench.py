"""Pairing time of the whole DPDD release: 500 scenes with the release's real file names.

A tree in the official layout is generated in a temporary folder with the 500 source / target names of
DPDNet's published file lists (tests/data/dpdd_file_lists.json); every file is the same black 1680x1120
16-bit PNG (pairing reads names and PNG headers only, never pixels). Measured, median of --repeats,
per split and for all 500:

- pairing: ``pair_view_files`` (list the four folders, sources by name, targets by checked position);
- pairing + size check: the same plus ``check_scene_sizes`` (four PNG headers per scene), which is
  what ``DPDDDataset`` does at construction.

Baseline in the same run: ``os.listdir`` + natural sort of the four folders alone. Writes
benchmarks/results/pairing_bench.{json,md}.

    python benchmarks/pairing_bench.py [--repeats 5]
"""
import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from bench_results import median_seconds, write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from basicsr_vitloss.data.dpdd_files import (check_scene_sizes, list_images, official_view_folders,  # noqa: E402
                                             pair_view_files)

VIEWS = ('lqL', 'lqR', 'lqC', 'gt')
SUFFIX = {'lqL': '_L', 'lqR': '_R', 'lqC': '', 'gt': ''}


def make_release(root):
    """The official layout with the release's 500 real names; every file a 1680x1120 16-bit PNG."""
    lists = json.loads((REPO / 'tests' / 'data' / 'dpdd_file_lists.json').read_text())
    image = np.zeros((1120, 1680, 3), np.uint16)
    ok, encoded = cv2.imencode('.png', image)  # one encoded image, written under every name
    assert ok
    data = encoded.tobytes()
    for split in ('train', 'val', 'test'):
        folders = official_view_folders(root, split, VIEWS)
        for view, folder in folders.items():
            os.makedirs(folder)
            names = lists[split]['trg'] if view == 'gt' else lists[split]['src']
            for name in names:
                Path(folder, f'{name}{SUFFIX[view]}.png').write_bytes(data)
    return {split: len(lists[split]['src']) for split in ('train', 'val', 'test')}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        counts = make_release(root)

        def listing(splits):
            for split in splits:
                for folder in official_view_folders(root, split, VIEWS).values():
                    list_images(folder, 'bench')

        def pairing(splits, sizes=False):
            scenes = []
            for split in splits:
                paired = pair_view_files(official_view_folders(root, split, VIEWS), what=f'DPDD {split}')
                if sizes:
                    check_scene_sizes(paired)
                scenes += paired
            return scenes

        everything = ('train', 'val', 'test')
        assert len(pairing(everything)) == 500
        for label, splits in [('train (350)', ('train',)), ('val (74)', ('val',)), ('test (76)', ('test',)),
                              ('all 500', everything)]:
            base = median_seconds(lambda: listing(splits), args.repeats)
            pair = median_seconds(lambda: pairing(splits), args.repeats)
            full = median_seconds(lambda: pairing(splits, sizes=True), args.repeats)
            rows.append({'scenes': label, 'listing_s': base, 'pairing_s': pair, 'pairing_and_sizes_s': full})
    lines = ['# DPDD pairing time (real file names, official layout)', '',
             f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, median of {args.repeats}; '
             'listing = os.listdir + natural sort of the four folders (baseline)', '',
             '| scenes | listing (baseline) | pairing | x baseline | pairing + size check (PNG headers) |',
             '|---|---:|---:|---:|---:|']
    for row in rows:
        lines.append(f"| {row['scenes']} | {row['listing_s'] * 1e3:.1f} ms | {row['pairing_s'] * 1e3:.1f} ms | "
                     f"{row['pairing_s'] / row['listing_s']:.2f} | {row['pairing_and_sizes_s'] * 1e3:.1f} ms |")
    write_results('pairing_bench', {'counts': counts, 'repeats': args.repeats, 'rows': rows}, lines)


if __name__ == '__main__':
    main()
