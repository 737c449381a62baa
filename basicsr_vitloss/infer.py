"""Deblur your own photos: restore image files with a trained network, outside BasicSR's test loop.

    basicsr-vitloss-infer --opt options/test/dpdd_single/nafnet_baseline.yml --weights net_g.pth \\
        --input photos/ --output restored/
    basicsr-vitloss-infer --opt options/dpdd_dual/nafnet_baseline.yml --weights net_g.pth \\
        --input left/ --input-right right/ --output restored/ --tile 512 --tile-overlap 32

Only ``network_g`` of the options file (train or test) is read. A network taking 6 input channels is
dual-pixel: its input is the left view and the right view, each RGB in [0, 1], concatenated on the
channels (exactly as DPDDDataset builds ``lq``). Each result is a PNG named after the input (for
dual-pixel, the left view's name without ``_L``), in the input's bit depth unless ``--bit-depth`` says
otherwise: round(clamp(net(x), 0, 1) * (2**bits - 1)).

An output holding NaN or inf values (a diverged network, fp16 overflow) fails its image: no file is written
for it, rather than black pixels.

Exit status: 0 when every image was restored or skipped, 1 when some image failed (each named on
stderr; the others still run), 2 for a usage error (options, weights, inputs, pairing, device).
"""
import argparse
import os
import os.path as osp
import sys
from dataclasses import dataclass, field

import numpy as np

from basicsr_vitloss.utils.network_options import NetworkOptionsError, input_channels

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')
VIEW_SUFFIXES = ('_L', '_R')
MAX_VALUES = {8: 255, 16: 65535}
DTYPES = {8: np.uint8, 16: np.uint16}
INPUT_KINDS = {3: 'single-image (3 channels: RGB)', 6: 'dual-pixel (6 channels: left + right RGB views)'}


class UsageError(ValueError):
    """A problem with the command's arguments (options, weights, inputs, pairing, device): exit status 2."""


@dataclass
class Summary:
    """What one run did: output paths restored and skipped, and (input, message) of each failure."""
    restored: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    pairing: str = ''

    def line(self):
        return f'{len(self.restored)} restored, {len(self.skipped)} skipped, {len(self.failed)} failed'


@dataclass
class Job:
    """One output image: its name and the input file(s) it is restored from."""
    name: str
    left: str
    right: str = None


# ---------------------------------------------------------------------------------------------- network
def build_and_load(opt_path, weights, param_key=None, device='cpu'):
    """The options' ``network_g`` built through BasicSR's registry, with ``weights`` loaded, in eval
    mode on ``device``. Unusable options raise NetworkOptionsError, unusable weights UsageError, naming the file."""
    from basicsr_vitloss.utils.checkpoints import CheckpointError
    from basicsr_vitloss.utils.network_options import build_network_from_options
    try:
        net = build_network_from_options(opt_path, weights, param_key)
    except CheckpointError as error:
        raise UsageError(f'--weights: {error}') from None
    return net.to(device)


def resolve_device(name):
    """torch.device for auto / cpu / cuda (auto: cuda when available)."""
    import torch
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise UsageError('--device cuda: no CUDA device is available (use --device cpu or auto).')
    if name not in ('cpu', 'cuda'):
        raise UsageError(f'--device {name}: expected auto, cpu or cuda.')
    return torch.device(name)


# ---------------------------------------------------------------------------------------------- inputs
def list_images(path, flag):
    """Image files of ``path`` (a file: itself; a folder: its PNG / JPEG / TIFF files, natural order)."""
    from basicsr_vitloss.data.dpdd_files import natural_key
    path = os.fspath(path)
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise UsageError(f'{flag} {path}: no such file or folder.')
    names = sorted((n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                    and not n.startswith('.') and osp.isfile(osp.join(path, n))), key=natural_key)
    if not names:
        raise UsageError(f'{flag} {path}: no image files ({", ".join(IMAGE_EXTENSIONS)}) in this folder.')
    return [osp.join(path, n) for n in names]


def view_name(path, suffix=None):
    """The stem of ``path`` without a trailing view suffix (``_L`` / ``_R``, any case; ``suffix``: only that one)."""
    stem = osp.splitext(osp.basename(path))[0]
    for tail in (suffix, ) if suffix else VIEW_SUFFIXES:
        if stem.lower().endswith(tail.lower()) and len(stem) > len(tail):
            return stem[:-len(tail)]
    return stem


def pair_views(lefts, rights):
    """([Job], rule): left and right views paired by name (``_L`` / ``_R`` removed) when the names
    match one to one, else by sorted position when the counts are equal; UsageError otherwise."""
    left_names = [view_name(p, '_L') for p in lefts]
    right_names = [view_name(p, '_R') for p in rights]
    by_name = dict(zip(right_names, rights))
    if len(lefts) == 1 and len(rights) == 1:
        return [Job(left_names[0], lefts[0], rights[0])], 'the two files given'
    if len(set(left_names)) == len(lefts) and len(by_name) == len(rights) and set(left_names) == set(by_name):
        return [Job(n, p, by_name[n]) for n, p in zip(left_names, lefts)], 'by name (_L / _R removed)'
    if len(lefts) == len(rights):
        return [Job(n, p, r) for n, p, r in zip(left_names, lefts, rights)], 'by sorted position'
    only_left = sorted(set(left_names) - set(right_names))[:5]
    only_right = sorted(set(right_names) - set(left_names))[:5]
    raise UsageError(f'cannot pair {len(lefts)} left views (--input) with {len(rights)} right views (--input-right): '
                     f'the names (without _L / _R) differ (left only: {", ".join(only_left) or "-"}; right only: '
                     f'{", ".join(only_right) or "-"}) and the counts differ, so sorted position cannot pair them.')


def make_jobs(inputs, inputs_right=None):
    """([Job], pairing rule) for the --input (and --input-right) files or folders; output names must be unique."""
    lefts = list_images(inputs, '--input')
    if inputs_right is None:
        jobs, rule = [Job(osp.splitext(osp.basename(p))[0], p) for p in lefts], ''
    else:
        jobs, rule = pair_views(lefts, list_images(inputs_right, '--input-right'))
    seen = {}
    for job in jobs:
        if job.name in seen:
            raise UsageError(f'{seen[job.name]} and {job.left} would both be written as {job.name}.png; '
                             f'rename one or restore them into different --output folders.')
        seen[job.name] = job.left
    return jobs, rule


def read_input(job, channels):
    """(lq array (H, W, channels) float32 RGB in [0, 1], bit depth of the (left) input file). Raises
    OSError / ValueError naming the file when it is unreadable, of an odd channel count or the views differ
    in size."""
    from basicsr_vitloss.data.image_io import read_image_unchanged, to_float_rgb
    arrays = []
    for path in (job.left, job.right) if channels == 6 else (job.left, ):
        image = read_image_unchanged(path)
        if image.dtype not in (np.uint8, np.uint16):
            raise ValueError(f'{path}: {image.dtype} pixels; expected an 8- or 16-bit image.')
        if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
            raise ValueError(f'{path}: {image.shape[2]} channels; expected 1 (gray), 3 (colour) or 4 (with alpha).')
        arrays.append((path, image))
    if len(arrays) == 2 and arrays[0][1].shape[:2] != arrays[1][1].shape[:2]:
        (left, a), (right, b) = arrays
        raise ValueError(f'{left} is {a.shape[1]}x{a.shape[0]} but its right view {right} is '
                         f'{b.shape[1]}x{b.shape[0]}; the two views must have the same size.')
    views = [to_float_rgb(image if image.ndim == 2 or image.shape[2] != 1 else image[..., 0], path)
             for path, image in arrays]
    lq = views[0] if len(views) == 1 else np.concatenate(views, axis=2)
    return lq, 16 if arrays[0][1].dtype == np.uint16 else 8


# ---------------------------------------------------------------------------------------------- restoring
def forward(net, x, tile=None, tile_overlap=32, dtype=None):
    """``net(x)`` (whole, or tiled_forward when ``tile``), under inference mode and autocast with ``dtype``;
    a multi-output network's first output; float32."""
    import torch
    from basicsr_vitloss.models.training_step import autocast
    from basicsr_vitloss.utils.tiling import tiled_forward
    with torch.inference_mode(), autocast(x.device, dtype):
        out = tiled_forward(net, x, tile, tile_overlap) if tile else net(x)
        if isinstance(out, (list, tuple)):
            out = out[0]
    return out.float()


def to_image(out, bits):
    """A (1, 3, H, W) network output as an (H, W, 3) BGR uint8 / uint16 array: round(clamp(out, 0, 1) * max).
    Quantized on the output's device, so only the final integers cross to the host."""
    import torch
    quantized = out[0].clamp(0, 1).mul_(MAX_VALUES[bits]).round_()
    quantized = quantized.to(torch.uint8 if bits == 8 else torch.int32).flip(0).permute(1, 2, 0)
    return np.ascontiguousarray(quantized.cpu().numpy().astype(DTYPES[bits], copy=False))


def restore_files(net, inputs, output, inputs_right=None, tile=None, tile_overlap=32, bit_depth='same',
                  mixed_precision=None, overwrite=False, progress=True, log=None):
    """Restore every image of ``inputs`` (a file or a folder; with ``inputs_right`` the right views of a
    dual-pixel network) with ``net`` (on its own device) into PNGs in ``output``: the command's core,
    callable in-process. An image that fails (unreadable, or an output holding NaN / inf, which would otherwise be
    written as black pixels) is logged and counted, and no file is written for it; the others still run.
    Returns a Summary.
    Raises UsageError when the inputs do not fit the network (channel count, pairing, names)."""
    import torch
    from tqdm import tqdm

    from basicsr_vitloss.models.training_step import PRECISIONS
    from basicsr_vitloss.utils.atomic_write import atomic_imwrite
    from basicsr_vitloss.utils.finite_check import check_finite

    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    channels = input_channels(net)
    if channels not in INPUT_KINDS:
        raise UsageError(f'{type(net).__name__} takes {channels} input channels; this command feeds '
                         f'{" or ".join(INPUT_KINDS.values())}.')
    if channels == 6 and inputs_right is None:
        raise UsageError(f'{type(net).__name__} is a dual-pixel network (6 input channels: left + right views): '
                         f'give the right views with --input-right (--input holds the left views).')
    if channels == 3 and inputs_right is not None:
        raise UsageError(f'{type(net).__name__} takes single images (3 input channels), but --input-right was '
                         f'given: drop it, or use the options of a dual-pixel network (6 input channels).')
    if bit_depth not in ('same', 8, 16, '8', '16'):
        raise UsageError(f'--bit-depth {bit_depth}: expected same, 8 or 16.')
    if mixed_precision not in (None, *PRECISIONS):
        raise UsageError(f'--mixed-precision {mixed_precision}: expected {" or ".join(PRECISIONS)} (or none).')
    dtype = PRECISIONS.get(mixed_precision)
    cause = ('overflowed or diverged (try --mixed-precision bf16 or leave it out, or check the weights)'
             if mixed_precision == 'fp16' else 'diverged or overflowed (check the weights: a diverged training run '
                                               'saves NaN weights)')
    hint = f'no file was written; the network {cause}'
    if tile is not None and (int(tile) < 1 or not 0 <= int(tile_overlap) < int(tile)):
        raise UsageError(f'--tile {tile} --tile-overlap {tile_overlap}: need tile >= 1 and 0 <= overlap < tile.')
    device = next(net.parameters()).device
    jobs, rule = make_jobs(inputs, inputs_right)
    summary = Summary(pairing=rule)
    if rule:
        log(f'Paired {len(jobs)} left / right views {rule}.')
    os.makedirs(output, exist_ok=True)
    for job in tqdm(jobs, desc='Restoring', unit='image', file=sys.stderr, disable=not progress):
        target = osp.join(output, job.name + '.png')
        if osp.exists(target) and not overwrite:
            summary.skipped.append(target)
            continue
        try:
            lq, bits = read_input(job, channels)
            x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1)))[None].to(device)
            out = check_finite(forward(net, x, tile, tile_overlap, dtype), f'{job.left}: the network output', hint)
            bits = bits if bit_depth == 'same' else int(bit_depth)
            atomic_imwrite(target, to_image(out, bits))
        except (OSError, ValueError, RuntimeError) as error:
            message = str(error) if any(p and p in str(error) for p in (job.left, job.right)) \
                else f'{job.left}: {error}'
            log(f'Error: {message}')
            summary.failed.append((job.left, message))
        else:
            summary.restored.append(target)
    return summary


# ---------------------------------------------------------------------------------------------- command
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='basicsr-vitloss-infer', description='Restore (deblur) image files with a trained network.',
        epilog='Exit status: 0 all restored or skipped, 1 some image failed, 2 usage error.')
    parser.add_argument('--opt', required=True, help='BasicSR options file (train or test); only network_g is read')
    parser.add_argument('--weights', required=True,
                        help='checkpoint: BasicSR (params_ema / params), an official release or a bare state dict')
    parser.add_argument('--param-key', default=None,
                        help='key of the weights in the checkpoint (default: params_ema, params, state_dict, model)')
    parser.add_argument('--input', required=True, help='image file or folder (dual-pixel: the left views)')
    parser.add_argument('--input-right', default=None, help='dual-pixel networks: right view file or folder')
    parser.add_argument('--output', required=True, help='folder for the restored PNGs')
    parser.add_argument('--tile', type=int, default=None, help='restore in tiles of this side (large images)')
    parser.add_argument('--tile-overlap', type=int, default=32, help='pixels shared by neighbouring tiles')
    parser.add_argument('--bit-depth', choices=('same', '8', '16'), default='same',
                        help='PNG bit depth (default: that of each input)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--mixed-precision', choices=('bf16', 'fp16'), default=None,
                        help='autocast the forward (default: float32)')
    parser.add_argument('--overwrite', action='store_true', help='rewrite outputs that already exist')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    """The console command; returns the exit status (0 ok, 1 some image failed, 2 usage error)."""
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
        net = build_and_load(args.opt, args.weights, args.param_key, device)
        summary = restore_files(net, args.input, args.output, args.input_right, args.tile, args.tile_overlap,
                                args.bit_depth, args.mixed_precision, args.overwrite, not args.no_progress)
    except (UsageError, NetworkOptionsError) as error:  # options, weights, inputs, pairing, device
        print(f'basicsr-vitloss-infer: error: {error}', file=sys.stderr)
        return 2
    print(f'{summary.line()} (into {args.output}).')
    if summary.failed:
        print('Failed: ' + ', '.join(path for path, _ in summary.failed), file=sys.stderr)
    return 1 if summary.failed else 0


if __name__ == '__main__':
    sys.exit(main())
