"""Token similarity maps of a blurry and a sharp image in a frozen ViT (the paper's Fig. 2).

For each of the two images, the patch token that contains the chosen point is compared, by cosine
similarity, with every patch token (the CLS token excluded) of the same image at one transformer
layer, with no token masked. The figure has two rows: on top the two images with the point marked,
below the two similarity maps (nearest-neighbour upsampled to the image size, so each token is one
block; colormap JET on the fixed range [-1, 1], blended over the image; the point's token is
outlined). The mean similarity of each map (over all patch tokens) is printed.

Usage:

    python scripts/vit_similarity.py BLURRY SHARP --point X Y --out fig2.png \\
        [--backbone mae] [--pretrained true|false|CHECKPOINT] [--layer 5] \\
        [--feature token|query|key|value] [--backbone-kwargs '{"depth": 6}'] [--device cpu]

X, Y are pixel coordinates in the images (x to the right, y down, from 0). Both images must have
the same size; they are read with OpenCV (8- or 16-bit, gray or color, alpha ignored).
``--pretrained true`` fetches the released weights through timm's hub; without internet, pass the
checkpoint file instead (e.g. the official ``mae_pretrain_vit_base.pth``).
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from basicsr_vitloss.data.image_io import read_image
from basicsr_vitloss.losses.vit_features import FEATURES, ViTFeatureExtractor

#: value range of the colormap: cosine similarity is in [-1, 1]; a fixed range keeps maps comparable
COLOR_RANGE = (-1.0, 1.0)
MARKER_COLOR = (0, 255, 0)  # BGR
HEAT_ALPHA = 0.6  # weight of the heatmap over the image in the bottom row


def parse_pretrained(value):
    """'true' / 'false' (any case) -> bool; anything else is a checkpoint path."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered == 'true':
        return True
    if lowered == 'false':
        return False
    return value


def _as_batch(image):
    """(1, 3, H, W) float tensor from an (H, W, 3) RGB array or a (3, H, W) / (1, 3, H, W) tensor."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'expected an (H, W, 3) RGB image, got shape {image.shape}')
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    tensor = torch.as_tensor(image).float()
    if tensor.ndim == 3:
        tensor = tensor[None]
    if tensor.ndim != 4 or tensor.shape[:2] != (1, 3):
        raise ValueError(f'expected a (3, H, W) or (1, 3, H, W) image tensor, got shape {tuple(tensor.shape)}')
    return tensor


def check_point(point, height, width):
    """(x, y) as floats; ValueError if it lies outside an image of ``height`` x ``width``."""
    x, y = (float(v) for v in point)
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f'point ({x:g}, {y:g}) lies outside the image of {width}x{height} pixels '
                         f'(width x height; x must be in [0, {width}), y in [0, {height}))')
    return x, y


def point_token(extractor, height, width, point):
    """(row, col) of the patch token that contains pixel ``point`` = (x, y)."""
    x, y = check_point(point, height, width)
    return int(y) // extractor.patch_size[0], int(x) // extractor.patch_size[1]


@torch.no_grad()
def similarity_map(extractor, image, point, layer):
    """Cosine similarity (rows, cols) numpy array of the patch token containing ``point`` = (x, y)
    against all patch tokens (CLS / prefix tokens excluded) at ``layer``, no token masked.
    ``image``: (H, W, 3) RGB array in [0, 1] or a (3, H, W) / (1, 3, H, W) tensor."""
    if layer not in extractor.layers:
        raise ValueError(f'layer {layer} is not computed by this extractor (layers {extractor.layers})')
    batch = _as_batch(image)
    height, width = batch.shape[-2:]
    row, col = point_token(extractor, height, width, point)
    rows, cols = extractor.token_grid(height, width)
    device = next(extractor.parameters()).device
    features = extractor(batch.to(device), keep=None)[layer]  # (1, prefix + rows * cols, D)
    patches = features[0, extractor.num_prefix:].float()
    if patches.shape[0] != rows * cols:
        raise RuntimeError(f'expected {rows * cols} patch tokens, got {patches.shape[0]}')
    reference = patches[row * cols + col]
    similarity = F.cosine_similarity(patches, reference[None], dim=-1).clamp(-1.0, 1.0)
    return similarity.reshape(rows, cols).cpu().numpy()


def _to_bgr8(image):
    return cv2.cvtColor((np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def _put_label(panel, text, origin, scale):
    """White text with a black outline, readable on any background."""
    thickness = max(1, int(round(scale * 2)))
    cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def heatmap(sim, height, width, patch_size):
    """BGR uint8 (height, width, 3) JET colormap of a (rows, cols) similarity map on COLOR_RANGE,
    each token a block of the patch size (the padded border cropped away)."""
    rows, cols = sim.shape
    low, high = COLOR_RANGE
    scaled = np.clip((sim - low) / (high - low), 0, 1)
    levels = (scaled * 255.0 + 0.5).astype(np.uint8)
    blocks = cv2.resize(levels, (cols * patch_size[1], rows * patch_size[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.applyColorMap(blocks[:height, :width], cv2.COLORMAP_JET)


def render_figure(images, maps, names, point, patch_size, caption):
    """The 2 x 2 figure (BGR uint8, 2H x 2W): images with the point on top, heatmaps below."""
    height, width = images[0].shape[:2]
    x, y = int(point[0]), int(point[1])
    row, col = y // patch_size[0], x // patch_size[1]
    scale = max(0.3, min(1.0, width / 400))
    line = int(round(30 * scale)) + 4
    marker = max(7, min(height, width) // 12)
    top, bottom = [], []
    for image, sim, name in zip(images, maps, names):
        panel = _to_bgr8(image)
        heat = cv2.addWeighted(heatmap(sim, height, width, patch_size), HEAT_ALPHA, panel, 1 - HEAT_ALPHA, 0)
        cv2.rectangle(heat, (col * patch_size[1], row * patch_size[0]),
                      (min((col + 1) * patch_size[1], width) - 1, min((row + 1) * patch_size[0], height) - 1),
                      (255, 255, 255), 1)
        for target in (panel, heat):
            cv2.drawMarker(target, (x, y), MARKER_COLOR, cv2.MARKER_CROSS, marker, 1)
        _put_label(panel, name, (4, line), scale)
        _put_label(heat, f'{name}: {caption}', (4, line), scale * 0.8)
        _put_label(heat, f'mean {float(sim.mean()):.3f}', (4, height - 6), scale * 0.8)
        top.append(panel)
        bottom.append(heat)
    return np.vstack([np.hstack(top), np.hstack(bottom)])


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('blurry', help='blurry image (8- or 16-bit)')
    parser.add_argument('sharp', help='sharp image of the same size')
    parser.add_argument('--point', nargs=2, type=float, metavar=('X', 'Y'), required=True,
                        help='pixel (x to the right, y down) whose token is compared with all tokens')
    parser.add_argument('--backbone', default='mae', help="'mae', 'dino', 'vit' or a timm ViT name (default mae)")
    parser.add_argument('--pretrained', default='true',
                        help="'true' (released weights via timm's hub), 'false' (random) or a checkpoint path")
    parser.add_argument('--layer', type=int, default=5, help='transformer block, from 1 (default 5)')
    parser.add_argument('--feature', default='token', choices=FEATURES, help='default token')
    parser.add_argument('--backbone-kwargs', default=None, metavar='JSON',
                        help='JSON object of extra timm.create_model arguments, e.g. \'{"depth": 6}\'')
    parser.add_argument('--device', default=None, help='torch device (default: cuda if available, else cpu)')
    parser.add_argument('--out', required=True, help='output PNG')
    return parser


def parse_backbone_kwargs(text):
    """--backbone-kwargs: a JSON object (or empty) -> dict; ValueError naming the text otherwise."""
    if not text:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f'--backbone-kwargs is not valid JSON ({error}): {text}') from error
    if not isinstance(kwargs, dict):
        raise ValueError(f'--backbone-kwargs must be a JSON object, got {text}')
    return kwargs


def main(argv=None):
    """Run the script; returns {'maps': {name: (rows, cols) array}, 'means': {name: float},
    'out': path}. Bad inputs raise ValueError / FileNotFoundError with a message naming them."""
    args = build_parser().parse_args(argv)
    backbone_kwargs = parse_backbone_kwargs(args.backbone_kwargs)
    pretrained = parse_pretrained(args.pretrained)

    blurry, sharp = read_image(args.blurry), read_image(args.sharp)
    if blurry.shape != sharp.shape:
        raise ValueError(f'the images differ in size: blurry {args.blurry} is {blurry.shape[1]}x{blurry.shape[0]}, '
                         f'sharp {args.sharp} is {sharp.shape[1]}x{sharp.shape[0]} (width x height); '
                         'they must be the same size')
    height, width = blurry.shape[:2]
    point = check_point(args.point, height, width)

    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    print(f'building {args.backbone} ViT (pretrained={pretrained}, layer {args.layer}, feature {args.feature})')
    extractor = ViTFeatureExtractor(args.backbone, pretrained=pretrained, layers=args.layer, feature=args.feature,
                                    **backbone_kwargs).to(device)
    names = ('blurry', 'sharp')
    maps = {name: similarity_map(extractor, image, point, args.layer) for name, image in zip(names, (blurry, sharp))}
    means = {name: float(sim.mean()) for name, sim in maps.items()}
    row, col = point_token(extractor, height, width, point)
    print(f'point ({point[0]:g}, {point[1]:g}) -> token (row {row}, col {col}) of a '
          f'{maps["blurry"].shape[0]}x{maps["blurry"].shape[1]} token grid')
    for name in names:
        print(f'mean similarity {name}: {means[name]:.4f}')

    caption = f'{args.backbone} {args.feature} L{args.layer}'
    figure = render_figure((blurry, sharp), [maps[n] for n in names], names, point, extractor.patch_size, caption)
    out = os.fspath(args.out)
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    if not cv2.imwrite(out, figure):
        raise ValueError(f'cannot write {out} (use a .png path in an existing, writable place)')
    print(f'wrote {out} ({figure.shape[1]}x{figure.shape[0]})')
    return {'maps': maps, 'means': means, 'out': out}


if __name__ == '__main__':
    try:
        main()
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f'{os.path.basename(sys.argv[0])}: error: {error}')
