"""Side-by-side deblurring comparison crops, as in the paper's Figs. 5-7: PNG out.

Columns: the blurry input, each method's result (in the order given), the ground truth, all cropped
to one box and upscaled with nearest-neighbour so pixels stay visible. Top row: the crops, each with
a dark label band above it ('Input' / the method name with its PSNR on the crop / 'Ground truth').
Bottom row: |image - gt| averaged over channels, times --residual-gain, clipped to [0, 1] and shown
with the inferno colormap (black = no error); under the ground truth, the full GT image scaled down
to the tile with the box drawn on it, so readers see where the crop comes from.

    python scripts/compare_figure.py --input BLURRY.png --gt GT.png \\
        --result "Restormer=restormer.png" --result "Restormer + local=local.png" \\
        --box X Y W H --out fig.png [--scale 2] [--residual-gain 4] [--title TEXT]

Layout (pixels; tile = box upscaled by --scale, tile_w = W * scale, tile_h = H * scale):
    columns = len(results) + 2
    width   = columns * tile_w + (columns + 1) * MARGIN
    height  = 2 * (BAND + tile_h) + 3 * MARGIN  (+ TITLE_BAND above everything with --title)
Each cell is a BAND-high dark label band followed by the tile; cells are separated from each other
and from the border by MARGIN white pixels. Images may be 8- or 16-bit PNGs, mixed.
A problem (missing file, size mismatch, box outside the image, bad --result) is printed to stderr
and the exit status is 2.
"""
import argparse
import os
import sys

import cv2
import numpy as np

MARGIN = 4          # white pixels between cells and around the figure
BAND = 20           # height of the dark label band above each tile
TITLE_BAND = 28     # height of the title band (only with --title)
BAND_COLOR = (32, 32, 32)
TEXT_COLOR = (255, 255, 255)
BOX_COLOR = (0, 255, 0)
COLORMAP = cv2.COLORMAP_INFERNO
FONT = cv2.FONT_HERSHEY_SIMPLEX


class FigureError(ValueError):
    """A user-facing problem with the inputs (reported on stderr, exit status 2)."""


def psnr(image, gt):
    """PSNR in dB of float [0, 1] RGB arrays (inf when identical)."""
    mse = float(np.mean((image.astype(np.float64) - gt.astype(np.float64)) ** 2))
    return float('inf') if mse == 0 else 10.0 * np.log10(1.0 / mse)


def to_uint8(image):
    """Float [0, 1] -> uint8 with rounding (so an 8-bit source comes back exactly)."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def upscale(tile, scale):
    """Nearest-neighbour upscale by an integer factor: every source pixel becomes a scale x scale block."""
    return np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)


def check_box(box, shape, name='the images'):
    """Raise FigureError unless box (x, y, w, h) lies inside an image of ``shape`` (H, W, ...)."""
    x, y, w, h = box
    height, width = shape[:2]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise FigureError(f'box X={x} Y={y} W={w} H={h} is outside {name} of size {width}x{height} '
                          f'(expected W, H > 0, 0 <= X, X + W <= {width}, 0 <= Y, Y + H <= {height}).')


def band(width, height, text):
    """A dark (height, width, 3) uint8 band with ``text`` in white, font shrunk until it fits."""
    cell = np.empty((height, width, 3), np.uint8)
    cell[:] = BAND_COLOR
    font_scale = 0.45 * height / 20.0
    while True:
        (text_w, text_h), _ = cv2.getTextSize(text, FONT, font_scale, 1)
        if text_w <= width - 6 or font_scale <= 0.25:
            break
        font_scale *= 0.9
    baseline_y = (height + text_h) // 2
    cv2.putText(cell, text, (3, baseline_y), FONT, font_scale, TEXT_COLOR, 1, cv2.LINE_AA)
    return cell


def residual_tile(image, gt, gain):
    """|image - gt| averaged over channels, times gain, clipped, colour-mapped: uint8 RGB."""
    error = np.clip(np.abs(image - gt).mean(axis=2) * gain, 0, 1)
    mapped = cv2.applyColorMap(to_uint8(error), COLORMAP)
    return cv2.cvtColor(mapped, cv2.COLOR_BGR2RGB)


def overview_tile(gt, box, tile_w, tile_h):
    """The full GT scaled down to the tile width (or height, if it would be too tall), with the box
    drawn on it, centred on a white tile_h x tile_w cell."""
    height, width = gt.shape[:2]
    factor = min(tile_w / width, tile_h / height)
    out_w, out_h = max(1, int(round(width * factor))), max(1, int(round(height * factor)))
    small = cv2.resize(to_uint8(gt), (out_w, out_h), interpolation=cv2.INTER_AREA)
    x, y, w, h = box
    x0, y0 = int(round(x * factor)), int(round(y * factor))
    x1, y1 = max(x0, int(round((x + w) * factor)) - 1), max(y0, int(round((y + h) * factor)) - 1)
    thickness = 2 if min(out_w, out_h) >= 100 else 1
    small = np.ascontiguousarray(small)
    cv2.rectangle(small, (x0, y0), (x1, y1), BOX_COLOR, thickness)
    cell = np.full((tile_h, tile_w, 3), 255, np.uint8)
    top, left = (tile_h - out_h) // 2, (tile_w - out_w) // 2
    cell[top:top + out_h, left:left + out_w] = small
    return cell


def compose_figure(input_rgb, gt_rgb, results, box, scale=2, residual_gain=4, title=None):
    """The comparison figure as an (H, W, 3) uint8 RGB array; see the module docstring for the layout.

    input_rgb, gt_rgb and each result are float RGB in [0, 1] of the same size; ``results`` is a list
    of (name, rgb); ``box`` is (x, y, w, h) in pixels."""
    if not results:
        raise FigureError('no results given; expected at least one (name, image) pair.')
    if int(scale) != scale or scale < 1:
        raise FigureError(f'scale {scale} is not a positive integer.')
    scale = int(scale)
    if residual_gain <= 0:
        raise FigureError(f'residual gain {residual_gain} is not positive.')
    for name, image in [('input', input_rgb)] + list(results):
        if image.shape != gt_rgb.shape:
            raise FigureError(f'{name} has shape {image.shape} but the ground truth has {gt_rgb.shape}.')
    box = tuple(int(v) for v in box)
    check_box(box, gt_rgb.shape, 'the ground truth')
    x, y, w, h = box
    tile_w, tile_h = w * scale, h * scale

    def crop(image):
        return image[y:y + h, x:x + w]

    gt_crop = crop(gt_rgb)
    columns = [('Input', crop(input_rgb))] + [(name, crop(image)) for name, image in results]
    top, bottom = [], []
    for name, image in columns:
        label = f'{name} {psnr(image, gt_crop):.2f} dB'
        top.append((label, upscale(to_uint8(image), scale)))
        bottom.append((f'|error| x{residual_gain:g}', upscale(residual_tile(image, gt_crop, residual_gain), scale)))
    top.append(('Ground truth', upscale(to_uint8(gt_crop), scale)))
    bottom.append(('Crop location', overview_tile(gt_rgb, box, tile_w, tile_h)))

    n_cols = len(top)
    fig_w = n_cols * tile_w + (n_cols + 1) * MARGIN
    grid_h = 2 * (BAND + tile_h) + 3 * MARGIN
    title_h = TITLE_BAND if title else 0
    figure = np.full((title_h + grid_h, fig_w, 3), 255, np.uint8)
    if title:
        figure[:title_h] = band(fig_w, title_h, title)
    for row, cells in enumerate((top, bottom)):
        y0 = title_h + MARGIN + row * (BAND + tile_h + MARGIN)
        for col, (label, tile) in enumerate(cells):
            x0 = MARGIN + col * (tile_w + MARGIN)
            figure[y0:y0 + BAND, x0:x0 + tile_w] = band(tile_w, BAND, label)
            figure[y0 + BAND:y0 + BAND + tile_h, x0:x0 + tile_w] = tile
    return figure


def parse_result(spec):
    """'NAME=PATH' -> (name, path); FigureError otherwise."""
    name, sep, path = spec.partition('=')
    if not sep or not name.strip() or not path.strip():
        raise FigureError(f'--result {spec!r} is not of the form NAME=PATH (e.g. "Restormer=out/restormer.png").')
    return name.strip(), path.strip()


def load(path, role):
    """read_image with a clear error for a missing file."""
    from basicsr_vitloss.data.image_io import read_image
    if not os.path.isfile(path):
        raise FigureError(f'{role} file not found: {path}')
    return read_image(path)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--input', required=True, help='blurry input image')
    parser.add_argument('--gt', required=True, help='ground-truth (sharp) image')
    parser.add_argument('--result', action='append', default=[], metavar='NAME=PATH',
                        help='a method result; repeat for several, shown in the order given')
    parser.add_argument('--box', type=int, nargs=4, required=True, metavar=('X', 'Y', 'W', 'H'),
                        help='crop box in pixels')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--scale', type=int, default=2, help='nearest-neighbour upscale of the crops')
    parser.add_argument('--residual-gain', type=float, default=4.0, help='multiplier of the residual maps')
    parser.add_argument('--title', default=None, help='optional title above the figure')
    return parser


def run(args):
    """Read the images, check them and write the figure; raises FigureError / OSError on problems."""
    if not args.result:
        raise FigureError('no --result given; expected at least one --result NAME=PATH.')
    specs = [parse_result(spec) for spec in args.result]
    gt = load(args.gt, 'ground-truth')
    images = [('input', args.input, load(args.input, 'input'))]
    images += [(name, path, load(path, f'result {name!r}')) for name, path in specs]
    for _, path, image in images:
        if image.shape != gt.shape:
            raise FigureError(f'{path} is {image.shape[1]}x{image.shape[0]} but {args.gt} is '
                              f'{gt.shape[1]}x{gt.shape[0]}; all images must have the same size.')
    check_box(args.box, gt.shape, args.gt)
    figure = compose_figure(images[0][2], gt, [(name, image) for name, _, image in images[1:]], args.box,
                            scale=args.scale, residual_gain=args.residual_gain, title=args.title)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, np.ascontiguousarray(figure[..., ::-1])):
        raise FigureError(f'could not write {args.out} (expected a writable path ending in .png).')
    print(f'wrote {args.out} ({figure.shape[1]}x{figure.shape[0]})')


def main(argv=None):
    """Command-line entry; returns 0 on success and 2 (after a message on stderr) on a problem."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its usage message
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        run(args)
    except (FigureError, OSError) as error:
        print(f'compare_figure: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
