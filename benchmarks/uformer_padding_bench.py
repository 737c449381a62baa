"""Uformer's two input paddings on a GoPro-sized (1280x720) image: ``input_padding: reflect`` (the package's
default: bottom/right reflect to a multiple of 128 per side, here 1280x768) against ``square_zero`` (the
official test scripts' ``expand2square``: a centred zero square, here 1280x1280).

A random network's PSNR would mean nothing, so a small Uformer-T (``embed_dim=16`` as the official T, but
one block per level instead of two and ``img_size=64``, so that a CPU step is affordable) is first trained
briefly on the CPU (``--train-seconds``, L1, Adam, the output projection initialised to zero so that training
starts from the identity) on 64x64 crops of motion-blurred scikit-image photographs (astronaut, coffee,
chelsea, rocket, immunohistochemistry; one fixed linear motion kernel). Its padding multiple is 64, which
pads 1280x720 exactly as the official 128: to 1280x768 (reflect) and 1280x1280 (square, image at row 280).
The held-out motorcycle photograph, resized to 1280 wide and centre-cropped to 720 rows, is blurred with the
same kernel and restored with each padding by the same weights. Reported: PSNR of each against the
sharp image (whole image, and the 64-pixel bands at the top and bottom, where the paddings differ), their
difference, wall time and peak-RSS growth of the restoration (each in a fresh process). Writes
benchmarks/results/uformer_padding_bench.{json,md}.

    python benchmarks/uformer_padding_bench.py [--train-seconds 200]
"""
import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench_results import write_results

TRAIN_PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry')
TEST_PHOTO = 'motorcycle'
TEST_SIZE = (720, 1280)  # GoPro's frames, H x W
CROP, BATCH, LR = 64, 4, 2e-3
KERNEL_LENGTH, KERNEL_ANGLE = 9, 25.0  # pixels, degrees
BAND = 64  # rows at the top and at the bottom reported on their own
UFORMER_T = dict(img_size=64, embed_dim=16, depths=[1] * 9, win_size=8, token_projection='linear', token_mlp='leff',
                 modulator=True)


def motion_kernel(length=KERNEL_LENGTH, angle=KERNEL_ANGLE):
    """A normalised, anti-aliased straight motion path of ``length`` pixels at ``angle`` degrees."""
    import cv2
    size = length + 2
    kernel = np.zeros((size * 8, size * 8), np.float32)  # drawn at 8x, then area-downsampled
    c, r = size * 4, (length - 1) * 4
    dx, dy = r * math.cos(math.radians(angle)), r * math.sin(math.radians(angle))
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, thickness=8)
    kernel = cv2.resize(kernel, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / kernel.sum()


def blur(image):
    import cv2
    return np.clip(cv2.filter2D(image, -1, motion_kernel(), borderType=cv2.BORDER_REFLECT), 0, 1)


def test_image():
    """The held-out photograph at 1280x720 (resized to 1280 wide, centre rows), sharp and blurred."""
    import cv2
    from basicsr_vitloss.data.sample_photographs import load_photograph
    photo = load_photograph(TEST_PHOTO)
    h, w = TEST_SIZE
    resized = cv2.resize(photo, (w, round(photo.shape[0] * w / photo.shape[1])), interpolation=cv2.INTER_AREA)
    top = (resized.shape[0] - h) // 2
    sharp = np.ascontiguousarray(resized[top:top + h])
    return sharp, blur(sharp)


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def train(seconds, seed=0):
    """Uformer-T trained for ``seconds`` of wall time; returns (state_dict, iterations, last losses)."""
    import torch
    from basicsr_vitloss.archs.uformer_arch import Uformer
    from basicsr_vitloss.data.sample_photographs import load_photograph
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pairs = [(p, blur(p)) for p in (load_photograph(name) for name in TRAIN_PHOTOS)]
    net = Uformer(**UFORMER_T).train()
    torch.nn.init.zeros_(net.output_proj.proj[0].weight)  # start from the identity (global residual): the
    torch.nn.init.zeros_(net.output_proj.proj[0].bias)  # blurred input's PSNR, not a random network's
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, betas=(0.9, 0.999))
    start, iterations, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < seconds:
        sharp, blurred = [], []
        for _ in range(BATCH):
            s, b = pairs[rng.integers(len(pairs))]
            y, x = rng.integers(s.shape[0] - CROP + 1), rng.integers(s.shape[1] - CROP + 1)
            flip = rng.integers(2)
            for dst, src in ((sharp, s), (blurred, b)):
                crop = src[y:y + CROP, x:x + CROP]
                dst.append(np.ascontiguousarray(crop[:, ::-1] if flip else crop).transpose(2, 0, 1))
        sharp, blurred = (torch.from_numpy(np.stack(v)) for v in (sharp, blurred))
        loss = (net(blurred) - sharp).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        iterations += 1
    return net.state_dict(), iterations, losses


def restore_once(mode, weights, image_path):
    """(Child process) restore the blurred test image with ``input_padding=mode``; prints JSON."""
    import torch
    from basicsr_vitloss.archs.uformer_arch import Uformer
    net = Uformer(**UFORMER_T, input_padding=mode).eval()
    net.load_state_dict(torch.load(weights, weights_only=True))
    blurred = torch.from_numpy(np.load(image_path)).permute(2, 0, 1)[None]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with torch.inference_mode():
        out = net(blurred).clamp(0, 1)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(image_path.replace('.npy', f'_{mode}.npy'), out[0].permute(1, 2, 0).numpy())
    print(json.dumps({'seconds': seconds, 'rss_growth_mib': (peak - base) / 1024}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--train-seconds', type=float, default=200)
    parser.add_argument('--restore', nargs=3, metavar=('MODE', 'WEIGHTS', 'IMAGE'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restore:
        return restore_once(*args.restore)
    import torch
    sharp, blurred = test_image()
    state, iterations, losses = train(args.train_seconds)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights, image = os.path.join(tmp, 'net.pth'), os.path.join(tmp, 'blurred.npy')
        torch.save(state, weights)
        np.save(image, blurred)
        for mode in ('reflect', 'square_zero'):
            done = subprocess.run([sys.executable, __file__, '--restore', mode, weights, image], check=True,
                                  capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                      [os.getcwd()] + os.environ.get('PYTHONPATH', '').split(os.pathsep))))
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            results[mode]['output'] = np.load(image.replace('.npy', f'_{mode}.npy'))
    bands = np.r_[0:BAND, TEST_SIZE[0] - BAND:TEST_SIZE[0]]
    rows = {}
    for name, img in [('blurred input', blurred)] + [(m, results[m]['output']) for m in results]:
        rows[name] = {'psnr': psnr(img, sharp), 'psnr_border_bands': psnr(img[bands], sharp[bands]),
                      'psnr_interior': psnr(img[BAND:-BAND], sharp[BAND:-BAND])}
    diff = np.abs(results['reflect']['output'] - results['square_zero']['output'])
    padded = {'reflect': (768, 1280), 'square_zero': (1280, 1280)}
    data = {
        'machine': f'{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} CPU',
        'network': dict(UFORMER_T), 'training': {
            'seconds': args.train_seconds, 'iterations': iterations, 'crop': CROP, 'batch': BATCH, 'lr': LR,
            'loss': 'L1', 'photos': list(TRAIN_PHOTOS), 'first_10_loss': float(np.mean(losses[:10])),
            'last_10_loss': float(np.mean(losses[-10:]))},
        'blur': f'linear motion, {KERNEL_LENGTH} px at {KERNEL_ANGLE} degrees, reflect borders',
        'test_image': f'{TEST_PHOTO} resized to 1280 wide, centre 720 rows', 'padded_size': padded,
        'psnr': rows, 'psnr_square_minus_reflect': rows['square_zero']['psnr'] - rows['reflect']['psnr'],
        'outputs_max_abs_diff': float(diff.max()),
        'outputs_pixels_differing_over_1_255': float((diff.max(axis=2) > 1 / 255).mean()),
        'seconds': {m: results[m]['seconds'] for m in results},
        'rss_growth_mib': {m: results[m]['rss_growth_mib'] for m in results},
    }
    ratio_t = data['seconds']['square_zero'] / data['seconds']['reflect']
    ratio_m = data['rss_growth_mib']['square_zero'] / max(data['rss_growth_mib']['reflect'], 1e-9)
    data['ratios_square_over_reflect'] = {'time': ratio_t, 'memory': ratio_m, 'pixels': 1280 * 1280 / (768 * 1280)}
    lines = ['# Uformer input padding: reflect (default) vs square_zero (official test scripts)', '',
             f"{data['machine']}. Small Uformer-T (embed_dim 16, one block per level, img_size 64) trained "
             f"{args.train_seconds:.0f} s on the CPU "
             f"({iterations} Adam steps from a zero output projection, i.e. from the identity; batch {BATCH}, "
             f"{CROP}x{CROP} crops, L1 {data['training']['first_10_loss']:.4f}"
             f" -> {data['training']['last_10_loss']:.4f}) on motion-blurred crops of {', '.join(TRAIN_PHOTOS)}; "
             f"test: {data['test_image']}, blurred the same way ({data['blur']}).", '',
             '| | padded to | PSNR (dB) | PSNR top/bottom 64 rows | PSNR interior | seconds | peak RSS growth (MiB) |',
             '|---|---|---:|---:|---:|---:|---:|']
    for name, row in rows.items():
        size = padded.get(name)
        extra = (f"{size[1]}x{size[0]} | ", f" | {data['seconds'][name]:.1f} | {data['rss_growth_mib'][name]:.0f}") \
            if size else ('- | ', ' | - | -')
        lines.append(f"| {name} | {extra[0]}{row['psnr']:.3f} | {row['psnr_border_bands']:.3f} | "
                     f"{row['psnr_interior']:.3f}{extra[1]} |")
    lines += ['', f"square_zero - reflect: {data['psnr_square_minus_reflect']:+.3f} dB over the whole image; "
              f"outputs differ by at most {data['outputs_max_abs_diff']:.4f} "
              f"({100 * data['outputs_pixels_differing_over_1_255']:.2f} % of the pixels by more than 1/255). "
              f'square_zero / reflect: time {ratio_t:.2f}x, peak-RSS growth {ratio_m:.2f}x, padded pixels '
              f"{data['ratios_square_over_reflect']['pixels']:.2f}x.", '',
              'What this number is: the effect of the padding on one briefly trained small network with one '
              'synthetic blur, not on the released Uformer-B on GoPro; a fully trained network may react to the '
              'black border differently. The paddings differ in what the network sees beyond the image (mirrored '
              'content below it, or black on both sides) and in where the window grids of the deeper levels fall '
              '(in the square the image starts at row 280, not at a multiple of 128), so the interior changes '
              'too, less than the rows near the borders.']
    write_results('uformer_padding_bench', data, lines)


if __name__ == '__main__':
    main()
