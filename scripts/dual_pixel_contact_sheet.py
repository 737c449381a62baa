"""Contact sheet of SyntheticDualPixelDataset samples: what the embedded default data looks like.

One row per sample: all-in-focus target, left view, right view, combined view, |left - right|
(amplified), and the signed blur radius (blue: in front of the focal plane, red: behind, black: in
focus). PNG out (README: docs/synthetic_dual_pixel.png).

    python scripts/dual_pixel_contact_sheet.py [--out docs/synthetic_dual_pixel.png] [--size 160]
        [--images astronaut motorcycle chelsea coffee] [--radius 2 6] [--seed 0]
"""
import argparse
import os
import sys

import cv2
import numpy as np

COLUMNS = ('target', 'left view', 'right view', 'combined', '|left - right| x4', 'blur radius')


def radius_image(radius, limit):
    """Signed radius -> RGB: red behind the focal plane, blue in front, black in focus."""
    scaled = np.clip(radius / max(limit, 1e-6), -1, 1)
    return np.stack([np.clip(scaled, 0, 1), np.zeros_like(scaled), np.clip(-scaled, 0, 1)], axis=2)


def label(tile, text):
    """Write ``text`` in the tile's top-left corner, white on a dark band."""
    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (tile.shape[1], 16), (0, 0, 0), -1)
    cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(images, size, radius_range, seed):
    """The sheet as an (H, W, 3) uint8 RGB array."""
    from basicsr_vitloss.data.synthetic_dp_dataset import SyntheticDualPixelDataset
    dataset = SyntheticDualPixelDataset({'name': 'sheet', 'phase': 'val', 'gt_size': size, 'images': images,
                                         'num_samples': len(images), 'radius_range': radius_range, 'seed': seed})
    rows = []
    for index in range(len(images)):
        views, scene, _ = dataset.render(index)
        tiles = [views['gt'], views['lqL'], views['lqR'], views['lqC'],
                 np.clip(4 * np.abs(views['lqL'] - views['lqR']), 0, 1),
                 radius_image(scene['radius'], radius_range[1])]
        tiles = [np.round(np.clip(t, 0, 1) * 255).astype(np.uint8) for t in tiles]
        if index == 0:
            tiles = [label(t, name) for t, name in zip(tiles, COLUMNS)]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='docs/synthetic_dual_pixel.png')
    parser.add_argument('--size', type=int, default=160)
    parser.add_argument('--images', nargs='+', default=['astronaut', 'motorcycle', 'chelsea', 'coffee'])
    parser.add_argument('--radius', type=float, nargs=2, default=[2.0, 6.0], metavar=('MIN', 'MAX'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    sheet = contact_sheet(args.images, args.size, args.radius, args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, sheet[..., ::-1]):
        raise OSError(f'could not write {args.out}')
    print(f'wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
