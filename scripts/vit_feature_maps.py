"""PCA feature maps of a ViT block beside VGG-19's conv5_4 (the paper's Fig. 1).

For an image (and optionally its sharp counterpart, ``--sharp``), the features of one transformer
block (patch tokens, the CLS / prefix tokens excluded, no token masked) and of one VGG-19 layer
(conv5_4 by default: before pool5, 1/16 of the input) are each reduced by PCA to their first three
principal components, shown as R, G, B on the feature grid: one ViT token or one VGG position is one
block, upsampled (nearest) to the image size. With two images the PCA basis of each network is
fitted on both images' features together, and the colours are normalised over both, so the blurry
and the sharp row are directly comparable. Figure rows: one per image; columns: image, ViT PCA,
VGG PCA. Each panel names the layer and its grid size (e.g. ``ViT block 5: 14x14 tokens`` and
``VGG-19 conv5_4: 14x14``).

Usage:

    python scripts/vit_feature_maps.py --image blurry.png [--sharp sharp.png] --out fig1.png \\
        [--backbone mae] [--pretrained true|false|CHECKPOINT] [--layer 5] \\
        [--vgg-weights vgg19-dcbb9e9d.pth | --no-vgg] [--vgg-layer conv5_4] \\
        [--size 224|none] [--percentile 1] [--backbone-kwargs '{"depth": 6}'] [--title TEXT] \\
        [--seed 0] [--device cpu|cuda]

Preprocessing: images are read with OpenCV (8- or 16-bit, gray or colour) as RGB in [0, 1];
``--size N`` (default 224) resizes the shorter side to N pixels (area / bicubic, aspect ratio kept),
``--size none`` keeps the image size. The ViT normalises its input itself (ViTFeatureExtractor; sizes
that are not multiples of 16 are reflect-padded at the bottom / right); VGG-19 gets ImageNet
mean / std and the same kind of padding to a multiple of its layer's stride, so both grids cover
every pixel.

VGG-19 weights are torchvision's ``vgg19-dcbb9e9d.pth``, looked up as BasicSR does:
``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` (relative to the current directory), then
``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``; ``--vgg-weights`` names the file directly.
Nothing is downloaded: without the file the script stops with a message saying where to put it.

Resolution: conv5_4 (the last layer before pool5, the layer of the classical perceptual loss the
paper cites) is 1/16 of the input, the same grid as ViT-B/16's tokens at any block; the paper's text
calls these maps 32x smaller than the input, which is pool5's output (``--vgg-layer pool5``). The
ViT keeps its 1/16 grid through all blocks, while VGG's earlier layers are finer and its later
ones coarser.

Bad inputs (missing image, image smaller than a patch, bad layer, missing VGG weights, images of
different sizes) stop the script with a one-line message and exit status 2.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys

import cv2
import numpy as np
import torch
from torch import nn

from basicsr_vitloss.archs.arch_util import pad_to_multiple
from basicsr_vitloss.data.image_io import read_image
from basicsr_vitloss.losses.vit_features import IMAGENET_MEAN, IMAGENET_STD, ViTFeatureExtractor


def _sibling_script(name):
    """Import ``scripts/<name>.py`` (the scripts folder is not a package) to reuse its helpers."""
    spec = importlib.util.spec_from_file_location(f'_{name}', osp.join(osp.dirname(osp.abspath(__file__)),
                                                                        f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_similarity = _sibling_script('vit_similarity')
parse_pretrained, parse_backbone_kwargs = _similarity.parse_pretrained, _similarity.parse_backbone_kwargs
_to_bgr8, _put_label = _similarity._to_bgr8, _similarity._put_label

#: torchvision's ImageNet VGG-19 weights (VGG19_Weights.IMAGENET1K_V1), the file BasicSR loads
VGG19_FILE = 'vgg19-dcbb9e9d.pth'
#: BasicSR's own location, relative to the current directory (basicsr.archs.vgg_arch.VGG_PRETRAIN_PATH)
BASICSR_VGG_PATH = osp.join('experiments', 'pretrained_models', VGG19_FILE)
#: torchvision's VGG-19 ``features``: channels of each conv, 'M' for a 2x2 max pool
VGG19_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
             512, 512, 512, 512, 'M')
HEADER_LINES = 2
DEFAULT_PERCENTILE = 1.0


def _vgg19_names():
    """BasicSR's names of the modules of VGG-19's ``features`` (basicsr.archs.vgg_arch.NAMES['vgg19'])."""
    names = []
    counts = {1: 2, 2: 2, 3: 4, 4: 4, 5: 4}
    for block in range(1, 6):
        for index in range(1, counts[block] + 1):
            names += [f'conv{block}_{index}', f'relu{block}_{index}']
        names.append(f'pool{block}')
    return tuple(names)


VGG19_NAMES = _vgg19_names()


# ----------------------------------------------------------------------------------------- PCA
def pca_rgb(features, grids, percentile=DEFAULT_PERCENTILE):
    """First three principal components of feature vectors as RGB maps in [0, 1].

    ``features``: a list of (N_i, D) arrays / tensors (one per image; row-major over its grid),
    ``grids``: the matching (rows_i, cols_i) with rows_i * cols_i = N_i. The PCA is fitted on all
    images' vectors together (centred by their joint mean; SVD), so the same colour means the same
    direction in feature space in every map. Each component is scaled to [0, 1] over all images
    together: between its ``percentile`` and ``100 - percentile`` percentiles, clipped (0: min-max).
    A component's sign is chosen so that its largest projection in absolute value is positive (the
    SVD's sign is arbitrary). Missing components (fewer than 3 vectors or channels) and constant
    ones are 0.5 (grey).

    Returns (list of (rows_i, cols_i, 3) float32 maps, explained-variance ratios of the 3 components).
    """
    if len(features) != len(grids) or not features:
        raise ValueError(f'pca_rgb needs one grid per feature array, got {len(features)} arrays and {len(grids)} grids')
    if not 0 <= percentile < 50:
        raise ValueError(f'percentile must be in [0, 50), got {percentile}')
    arrays = []
    for array, (rows, cols) in zip(features, grids):
        array = array.detach().cpu().double().numpy() if torch.is_tensor(array) else np.asarray(array, np.float64)
        if array.ndim != 2 or array.shape[0] != rows * cols:
            raise ValueError(f'features of shape {array.shape} do not fit a {rows}x{cols} grid '
                             f'(expected (N, D), N = {rows * cols})')
        arrays.append(array)
    stacked = np.concatenate(arrays, axis=0)
    centred = stacked - stacked.mean(axis=0, keepdims=True)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    count = min(3, vt.shape[0])
    projected = centred @ vt[:count].T  # (N, count)
    total = float((singular ** 2).sum())
    explained = [(float(s ** 2) / total if total > 0 else 0.0) for s in singular[:count]]
    colours = np.full((stacked.shape[0], 3), 0.5)
    for component in range(count):
        values = projected[:, component]
        if values[np.argmax(np.abs(values))] < 0:
            values = -values
        low, high = (np.percentile(values, [percentile, 100 - percentile]) if percentile > 0
                     else (values.min(), values.max()))
        if high - low > 1e-12 * max(1.0, abs(high), abs(low)):
            colours[:, component] = np.clip((values - low) / (high - low), 0.0, 1.0)
    maps, start = [], 0
    for rows, cols in grids:
        maps.append(colours[start:start + rows * cols].reshape(rows, cols, 3).astype(np.float32))
        start += rows * cols
    explained += [0.0] * (3 - count)
    return maps, explained


# ------------------------------------------------------------------------------------------ ViT
@torch.no_grad()
def vit_patch_tokens(extractor, image, layer):
    """(rows * cols, D) float tensor of the patch tokens (prefix tokens excluded, nothing masked) of
    ``layer`` for an (H, W, 3) RGB image in [0, 1], and the token grid (rows, cols)."""
    if layer not in extractor.layers:
        raise ValueError(f'layer {layer} is not computed by this extractor (layers {extractor.layers})')
    device = next(extractor.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    grid = extractor.token_grid(*image.shape[:2])
    tokens = extractor(batch, keep=None)[layer][0, extractor.num_prefix:].float()
    if tokens.shape[0] != grid[0] * grid[1]:
        raise RuntimeError(f'expected {grid[0] * grid[1]} patch tokens, got {tokens.shape[0]}')
    return tokens, grid


# ------------------------------------------------------------------------------------------ VGG
def find_vgg_weights(path=None):
    """The VGG-19 weights file: ``path`` if given (must exist), else BasicSR's
    experiments/pretrained_models/, else $TORCH_HOME/hub/checkpoints/; FileNotFoundError naming the
    file and these places when there is none (nothing is downloaded)."""
    if path is not None:
        path = os.fspath(path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'VGG-19 weights not found: {path} (--vgg-weights); expected torchvision\'s '
                                    f'{VGG19_FILE}')
        return path
    hub = osp.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILE)
    for candidate in (BASICSR_VGG_PATH, hub):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"VGG-19 weights {VGG19_FILE} (torchvision's ImageNet VGG-19) not found, and this script does not "
        f'download. Download https://download.pytorch.org/models/{VGG19_FILE} elsewhere and copy it, under '
        f'exactly that name, to {hub} ($TORCH_HOME/hub/checkpoints/) or to {osp.abspath(BASICSR_VGG_PATH)} '
        "(BasicSR's experiments/pretrained_models/), or pass --vgg-weights PATH; --no-vgg skips the VGG column.")


class VGG19Features(nn.Module):
    """torchvision's VGG-19 ``features`` up to and including ``layer`` (BasicSR's names: conv5_4 is
    the last convolution, before its ReLU and pool5), frozen, with ImageNet mean / std input
    normalisation. The input is padded (reflect) to a multiple of the layer's stride."""

    def __init__(self, weights, layer='conv5_4'):
        super().__init__()
        if layer not in VGG19_NAMES:
            raise ValueError(f"unknown VGG-19 layer '{layer}': expected one of {', '.join(VGG19_NAMES)}")
        self.layer = layer
        modules, channels = [], 3
        for value in VGG19_CFG:
            if value == 'M':
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(channels, value, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = value
        last = VGG19_NAMES.index(layer)
        self.features = nn.Sequential(*modules[:last + 1])
        self.stride = 2 ** sum(name.startswith('pool') for name in VGG19_NAMES[:last + 1])
        self._load(weights)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _load(self, path):
        try:
            state = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except Exception as error:  # not a zip checkpoint (mmap impossible) or not a checkpoint at all
            try:
                state = torch.load(path, map_location='cpu', weights_only=True)
            except Exception:
                raise ValueError(f'cannot read VGG-19 weights from {path} ({type(error).__name__}: {error}); '
                                 f"expected torchvision's {VGG19_FILE}") from error
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds no state dict; expected torchvision's {VGG19_FILE}")
        own = self.features.state_dict()
        wanted = {key: state.get(f'features.{key}', state.get(f'vgg_net.features.{key}')) for key in own}
        missing = [f'features.{k}' for k, v in wanted.items() if v is None]
        mismatched = [f'features.{k}: file {tuple(v.shape)} vs VGG-19 {tuple(own[k].shape)}'
                      for k, v in wanted.items() if v is not None and tuple(v.shape) != tuple(own[k].shape)]
        if missing or mismatched:
            raise ValueError(f"{path} is not torchvision's VGG-19 ({VGG19_FILE}): "
                             + '; '.join(p for p in (f'missing keys {missing[:6]}' if missing else '',
                                                     f'shape mismatches {mismatched[:6]}' if mismatched else '') if p))
        self.features.load_state_dict({k: v.clone() for k, v in wanted.items()})

    def grid(self, height, width):
        """Feature map size (rows, cols) for an image of ``height`` x ``width``."""
        return -(-height // self.stride), -(-width // self.stride)

    @torch.no_grad()
    def forward(self, x):
        """(B, C, rows, cols) features of images (B, 3, H, W) in [0, 1]."""
        return self.features(pad_to_multiple((x - self.mean) / self.std, self.stride))


@torch.no_grad()
def vgg_positions(vgg, image):
    """(rows * cols, C) features of ``vgg``'s layer for an (H, W, 3) RGB image in [0, 1], and the
    map size (rows, cols)."""
    device = next(vgg.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    features = vgg(batch)[0].float()
    rows, cols = features.shape[-2:]
    if (rows, cols) != vgg.grid(*image.shape[:2]):
        raise RuntimeError(f'expected a {vgg.grid(*image.shape[:2])} VGG map, got {(rows, cols)}')
    return features.flatten(1).T, (rows, cols)


# ---------------------------------------------------------------------------------------- figure
def parse_size(value):
    """'none' (any case) -> None; otherwise a positive int (the shorter side in pixels)."""
    if value is None or str(value).strip().lower() == 'none':
        return None
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels or 'none', got {value!r}") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels or 'none', got {value!r}")
    return size


def resize_shorter_side(image, size):
    """``image`` with its shorter side resized to ``size`` pixels (aspect ratio kept; area
    interpolation when shrinking, bicubic when enlarging); unchanged for ``size`` None."""
    height, width = image.shape[:2]
    if size is None or min(height, width) == size:
        return image
    scale = size / min(height, width)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))  # cv2: (width, height)
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(image, new, interpolation=method), 0.0, 1.0)


def upsample_map(rgb, height, width, stride):
    """BGR uint8 (height, width, 3) panel of a (rows, cols, 3) RGB map in [0, 1]: each cell a
    ``stride`` x ``stride`` block (nearest), the padded border cropped away."""
    rows, cols = rgb.shape[:2]
    blocks = np.repeat(np.repeat(rgb, stride, axis=0), stride, axis=1)[:height, :width]
    if blocks.shape[:2] != (height, width):
        raise ValueError(f'a {rows}x{cols} map with stride {stride} does not cover a {height}x{width} image')
    return _to_bgr8(blocks)


FONT = cv2.FONT_HERSHEY_SIMPLEX
#: height in pixels of one line of text in the figure's header (title, subtitle, column labels)
LINE_HEIGHT = 22


def _fit_scale(text, width, largest=0.55):
    """The largest font scale up to ``largest`` at which ``text`` fits in ``width`` pixels."""
    (text_width, _), _ = cv2.getTextSize(text, FONT, 1.0, 1)
    return max(0.2, min(largest, (width - 8) / max(text_width, 1)))


def header_height():
    """Height of the white strip above the panels: HEADER_LINES title lines and the column labels."""
    return (HEADER_LINES + 1) * LINE_HEIGHT + 4


def _put_text(canvas, text, x, line, width, largest=0.55):
    scale = _fit_scale(text, width, largest)
    cv2.putText(canvas, text, (x + 4, line * LINE_HEIGHT + 16), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def render_figure(images, names, columns, title_lines):
    """The figure (BGR uint8): a white strip of ``header_height()`` on top (title lines, then one
    label per column), then one row per image: the image (its name written on it), then each
    column's map. ``columns``: [(label, maps, stride)] with one (rows, cols, 3) map per image."""
    height, width = images[0].shape[:2]
    scale = max(0.3, min(0.8, width / 400))
    rows = []
    for index, (image, name) in enumerate(zip(images, names)):
        panel = _to_bgr8(image)
        _put_label(panel, name, (4, int(round(30 * scale)) + 4), scale)
        panels = [panel] + [upsample_map(maps[index], height, width, stride) for _, maps, stride in columns]
        rows.append(np.hstack(panels))
    body = np.vstack(rows)
    header = np.full((header_height(), body.shape[1], 3), 255, np.uint8)
    for line, text in enumerate(title_lines[:HEADER_LINES]):
        _put_text(header, text, 0, line, body.shape[1])
    for column, label in enumerate(['image'] + [label for label, _, _ in columns]):
        _put_text(header, label, column * width, HEADER_LINES, width, largest=0.5)
    return np.vstack([header, body])


# ------------------------------------------------------------------------------------------ main
def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--image', required=True, help='image (8- or 16-bit), e.g. the blurry one')
    parser.add_argument('--sharp', default=None, help='optional second image (the sharp one) of the same size')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--backbone', default='mae', help="'mae', 'dino', 'vit' or a timm ViT name (default mae)")
    parser.add_argument('--pretrained', default='true',
                        help="'true' (released weights via timm's hub), 'false' (random) or a checkpoint path")
    parser.add_argument('--layer', type=int, default=5, help='transformer block, from 1 (default 5)')
    parser.add_argument('--backbone-kwargs', default=None, metavar='JSON',
                        help='JSON object of extra timm.create_model arguments, e.g. \'{"depth": 6}\'')
    parser.add_argument('--vgg-weights', default=None, metavar='PATH',
                        help=f'VGG-19 weights file (default: {VGG19_FILE} in experiments/pretrained_models/ '
                             'or $TORCH_HOME/hub/checkpoints/)')
    parser.add_argument('--vgg-layer', default='conv5_4', choices=VGG19_NAMES, metavar='NAME',
                        help='VGG-19 layer in BasicSR\'s names (default conv5_4, 1/16 of the input; pool5 is 1/32)')
    parser.add_argument('--no-vgg', action='store_true', help='leave out the VGG-19 column')
    parser.add_argument('--size', type=parse_size, default=224, metavar='N|none',
                        help="resize the shorter side to N pixels (default 224); 'none' keeps the image size")
    parser.add_argument('--percentile', type=float, default=DEFAULT_PERCENTILE,
                        help='each component is scaled between this percentile and 100 minus it, clipped '
                             f'(default {DEFAULT_PERCENTILE:g}; 0: min-max)')
    parser.add_argument('--title', default=None, help='title line (default: backbone, weights, sizes)')
    parser.add_argument('--seed', type=int, default=0, help='seed of random ViT weights (default 0)')
    parser.add_argument('--device', default=None, help='torch device (default: cuda if available, else cpu)')
    return parser


def _load(path, size, option):
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path} ({option})')
    return resize_shorter_side(read_image(path), size)


def main(argv=None):
    """Run the script; returns {'vit': [(rows, cols, 3) maps], 'vgg': [maps] or None, 'names',
    'vit_grid', 'vgg_grid', 'explained': {'vit': [...], 'vgg': [...]}, 'figure': BGR array, 'out'}.
    Bad inputs raise ValueError / FileNotFoundError with a message naming them."""
    args = build_parser().parse_args(argv)
    if args.layer < 1:
        raise ValueError(f'--layer must be a transformer block index from 1, got {args.layer}')
    if not 0 <= args.percentile < 50:
        raise ValueError(f'--percentile must be in [0, 50), got {args.percentile:g}')
    backbone_kwargs = parse_backbone_kwargs(args.backbone_kwargs)
    pretrained = parse_pretrained(args.pretrained)

    images, names = [_load(args.image, args.size, '--image')], ['image']
    if args.sharp is not None:
        images.append(_load(args.sharp, args.size, '--sharp'))
        names = ['blurry', 'sharp']
        if images[0].shape != images[1].shape:
            raise ValueError(f'the images differ in size: --image {args.image} is '
                             f'{images[0].shape[1]}x{images[0].shape[0]}, '
                             f'--sharp {args.sharp} is {images[1].shape[1]}x{images[1].shape[0]} (width x height, '
                             'after --size); they must be the same size')
    height, width = images[0].shape[:2]
    vgg_weights = None if args.no_vgg else find_vgg_weights(args.vgg_weights)  # before any work

    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    print(f'building {args.backbone} ViT (pretrained={pretrained}, block {args.layer})')
    extractor = ViTFeatureExtractor(args.backbone, pretrained=pretrained, layers=args.layer, feature='token',
                                    init_seed=args.seed, **backbone_kwargs).to(device)
    patch = extractor.patch_size
    if height < patch[0] or width < patch[1]:
        raise ValueError(f'the image {args.image} is {width}x{height} pixels (width x height, after --size), smaller '
                         f'than one {patch[1]}x{patch[0]} ViT patch')
    if patch[0] != patch[1]:
        raise ValueError(f'non-square patches {patch} are not supported')
    tokens = [vit_patch_tokens(extractor, image, args.layer) for image in images]
    vit_grid = tokens[0][1]
    vit_maps, vit_explained = pca_rgb([t for t, _ in tokens], [g for _, g in tokens], args.percentile)
    vit_label = f'ViT block {args.layer}: {vit_grid[0]}x{vit_grid[1]} tokens'
    columns = [(vit_label, vit_maps, patch[0])]
    result = {'names': names, 'vit': vit_maps, 'vit_grid': vit_grid, 'vgg': None, 'vgg_grid': None,
              'explained': {'vit': vit_explained, 'vgg': None}}
    print(f'{vit_label}; PCA explained variance {", ".join(f"{v:.3f}" for v in vit_explained)}')
    del extractor

    if vgg_weights is not None:
        print(f'building VGG-19 up to {args.vgg_layer} from {vgg_weights}')
        vgg = VGG19Features(vgg_weights, args.vgg_layer).to(device)
        positions = [vgg_positions(vgg, image) for image in images]
        vgg_grid = positions[0][1]
        vgg_maps, vgg_explained = pca_rgb([p for p, _ in positions], [g for _, g in positions], args.percentile)
        vgg_label = f'VGG-19 {args.vgg_layer}: {vgg_grid[0]}x{vgg_grid[1]}'
        columns.append((vgg_label, vgg_maps, vgg.stride))
        result.update(vgg=vgg_maps, vgg_grid=vgg_grid)
        result['explained']['vgg'] = vgg_explained
        print(f'{vgg_label}; PCA explained variance {", ".join(f"{v:.3f}" for v in vgg_explained)}')

    weights = {True: 'released weights', False: 'random weights'}.get(pretrained, osp.basename(str(pretrained)))
    title = args.title or f'{args.backbone} ViT ({weights})' + ('' if args.no_vgg else ' vs VGG-19')
    shared = ', basis and colours shared by both rows' if len(images) > 1 else ''
    title_lines = [title, f'{width}x{height} input, first 3 principal components as RGB{shared}']
    figure = render_figure(images, names, columns, title_lines)
    out = os.fspath(args.out)
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    if not cv2.imwrite(out, figure, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise ValueError(f'cannot write {out} (use a .png path in an existing, writable place)')
    print(f'wrote {out} ({figure.shape[1]}x{figure.shape[0]})')
    result.update(figure=figure, out=out, header=header_height())
    return result


def cli(argv=None):
    """The command line: runs main(); a bad input is reported in one line on stderr, exit status 2."""
    try:
        main(argv)
    except (ValueError, OSError) as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(cli())
