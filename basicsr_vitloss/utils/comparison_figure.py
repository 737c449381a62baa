"""A picture of the result at the end of training: ``experiments/<name>/comparison.png``.

With ::

    val:
      save_comparison: true

after training (``basicsr_vitloss.train``, which ``python -m basicsr.train`` runs through the startup
hook) the latest network restores the validation scenes once more through BasicSR's own model (so the
picture costs one inference pass over the validation set; nothing of BasicSR is replaced), and each
scene becomes one row, blurry input | restored | sharp (reference), downscaled to at most
``MAX_PANEL_WIDTH`` pixels wide (PSNRs computed at full size first), with each panel's PSNR against the
sharp image written above it; the log's last line names the file. PSNR uses the options' own
``val: metrics:`` entry of type ``calculate_psnr`` (crop_border, test_y_channel) on 8-bit images, so
the restored panel's number is the per-image value BasicSR averages in the log. A dual-pixel input
(6 channels: left and right views) is shown, and scored, as the average of its two views (the combined
image); any input of 3k channels as the mean of its k RGB views.
"""
import os.path as osp

import cv2
import numpy as np

KEY = 'val:save_comparison'
FILE_NAME = 'comparison.png'
MAX_PANEL_WIDTH = 384
GAP = 6  # pixels between panels and rows
BACKGROUND = 255  # white around panels and label bands
TEXT_COLOR = (0, 0, 0)
LABELS = ('blurry input', 'restored', 'sharp (reference)')


def save_comparison_enabled(opt, where=KEY):
    """``val: save_comparison`` of the options (default false); ValueError naming the key unless a bool."""
    value = (opt.get('val') or {}).get('save_comparison', False)
    if not isinstance(value, bool):
        raise ValueError(f'{where} must be true or false, got {value!r}.')
    return value


def psnr_settings(opt):
    """``(crop_border, test_y_channel)`` of the options' ``calculate_psnr`` validation metric, else (0, False)."""
    for metric in ((opt.get('val') or {}).get('metrics') or {}).values():
        if isinstance(metric, dict) and metric.get('type') == 'calculate_psnr':
            return int(metric.get('crop_border', 0)), bool(metric.get('test_y_channel', False))
    return 0, False


def psnr(image, reference, crop_border=0, test_y_channel=False):
    """BasicSR's ``calculate_psnr`` of two 8-bit (H, W, 3) BGR images."""
    from basicsr.metrics import calculate_psnr
    return float(calculate_psnr(image, reference, crop_border, test_y_channel=test_y_channel))


def input_view(lq, size=None):
    """The blurry input as one 8-bit BGR image from the network's input tensor (1, C, H, W) in [0, 1]:
    3 channels as they are, 3k channels (k views, e.g. dual-pixel left | right) averaged view by view;
    resized (bicubic) to ``size`` (H, W) when given and different (a super-resolution input)."""
    from basicsr.utils import tensor2img
    channels = lq.shape[1]
    if channels % 3:
        raise ValueError(f'{KEY}: cannot show an input of {channels} channels as an RGB image (3 or a multiple).')
    combined = lq.reshape(lq.shape[0], channels // 3, 3, *lq.shape[2:]).float().mean(dim=1)
    image = tensor2img([combined], min_max=(0, 1))
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return image


def fit_width(image, width=MAX_PANEL_WIDTH):
    """``image`` downscaled (area interpolation) to at most ``width`` pixels wide; never enlarged."""
    height, current = image.shape[:2]
    if current <= width:
        return image
    return cv2.resize(image, (width, max(1, round(height * width / current))), interpolation=cv2.INTER_AREA)


def comparison_row(name, lq, result, gt, crop_border=0, test_y_channel=False, width=MAX_PANEL_WIDTH):
    """One scene: ``{'name', 'images': [input, restored, sharp] (8-bit BGR, at most ``width`` wide),
    'psnr': [input's, restored's, None]}`` from the tensors of BasicSR's ``get_current_visuals``."""
    from basicsr.utils import tensor2img
    sharp = tensor2img([gt], min_max=(0, 1))
    restored = tensor2img([result], min_max=(0, 1))
    blurry = input_view(lq, sharp.shape[:2])
    values = [psnr(image, sharp, crop_border, test_y_channel) for image in (blurry, restored)]
    return {'name': name, 'images': [fit_width(image, width) for image in (blurry, restored, sharp)],
            'psnr': values + [None]}


def _font_scale(texts, width, thickness=1):
    """The largest scale (<= 0.5) at which every text fits ``width`` pixels with a 4-pixel margin."""
    scale = 0.5
    while scale > 0.2:
        if all(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] + 8 <= width for t in texts):
            break
        scale -= 0.05
    return scale


def panel_labels(row):
    """Two text lines per panel: what it is, and its PSNR against the sharp image (the sharp panel: the scene)."""
    labels = []
    for label, value in zip(LABELS, row['psnr']):
        labels.append((label, f'PSNR {value:.2f} dB' if value is not None else row['name']))
    return labels


def draw_comparison(rows, band=None):
    """The figure (uint8 BGR) and, per row, the ``(top, left, height, width)`` of each panel's image.
    Each panel is a white label band (two lines of text) above the image, which is left untouched."""
    if not rows:
        raise ValueError('draw_comparison needs at least one row.')
    columns = len(rows[0]['images'])
    col_widths = [max(row['images'][c].shape[1] for row in rows) for c in range(columns)]
    scale = _font_scale([t for row in rows for pair in panel_labels(row) for t in pair], min(col_widths))
    line = cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] + 8
    band = 2 * line + 4 if band is None else band
    heights = [band + max(image.shape[0] for image in row['images']) for row in rows]
    canvas = np.full((sum(heights) + GAP * (len(rows) + 1), sum(col_widths) + GAP * (columns + 1), 3),
                     BACKGROUND, np.uint8)
    boxes, top = [], GAP
    for row, row_height in zip(rows, heights):
        left, row_boxes = GAP, []
        for column, (image, (first, second)) in enumerate(zip(row['images'], panel_labels(row))):
            height, width = image.shape[:2]
            for index, text in enumerate((first, second)):
                cv2.putText(canvas, text, (left + 4, top + (index + 1) * line - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                            TEXT_COLOR, 1, cv2.LINE_AA)
            canvas[top + band:top + band + height, left:left + width] = image
            row_boxes.append((top + band, left, height, width))
            left += col_widths[column] + GAP
        boxes.append(row_boxes)
        top += row_height + GAP
    return canvas, boxes


def write_comparison(path, rows):
    """Draw ``rows`` and write the figure to ``path`` atomically; returns the path."""
    from basicsr_vitloss.utils.atomic_write import atomic_imwrite
    figure, _ = draw_comparison(rows)
    atomic_imwrite(path, figure)
    return path


def _options_after_training(root):
    """BasicSR's parsed options of this run (``sys.argv``), without initializing distributed training again."""
    import sys

    from basicsr.utils.options import parse_options
    argv = sys.argv
    cleaned, skip = [argv[0]], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg == '--launcher':
            skip = True
        elif not arg.startswith('--launcher='):
            cleaned.append(arg)
    sys.argv = cleaned
    try:
        opt, _ = parse_options(root, is_train=True)
    finally:
        sys.argv = argv
    return opt


def comparison_rows_of_latest_model(opt):
    """The rows of every validation set of ``opt`` restored by the run's latest network
    (``models/net_g_latest.pth``, its EMA weights where saved, as validation uses them), through BasicSR's
    own model (``test()``: the options' tiling and mixed precision apply) and the options' PSNR settings."""
    import copy
    import logging

    import torch
    from torch.utils.data import DataLoader

    from basicsr.data import build_dataset
    from basicsr.models import build_model
    from basicsr.utils import get_root_logger
    latest = osp.join(opt['path']['models'], 'net_g_latest.pth')
    state = torch.load(latest, map_location='cpu', weights_only=True)
    test_opt = copy.deepcopy(opt)
    test_opt.update(is_train=False, dist=False, rank=0, world_size=1)
    test_opt['path'].update(pretrain_network_g=latest, strict_load_g=True,
                            param_key_g='params_ema' if 'params_ema' in state else 'params')
    logger = get_root_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # not the network's structure again at the end of the log
    try:
        model = build_model(test_opt)
    finally:
        logger.setLevel(level)
    crop_border, test_y = psnr_settings(opt)
    rows = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase.split('_')[0] != 'val':
            continue
        dataset = build_dataset(dict(dataset_opt, phase='val'))
        for data in DataLoader(dataset, batch_size=1, shuffle=False, num_workers=0):
            model.feed_data(data)
            model.test()
            visuals = model.get_current_visuals()
            if 'gt' not in visuals:
                continue
            name = osp.splitext(osp.basename(data['lq_path'][0]))[0] if data.get('lq_path') else f'scene {len(rows)}'
            rows.append(comparison_row(name, visuals['lq'], visuals['result'], visuals['gt'], crop_border, test_y))
    return rows


def write_comparison_after_training(root):
    """After a training run with ``val: save_comparison: true`` (rank 0 only): restore the validation scenes with
    the latest network, write ``<experiments_root>/comparison.png`` and log its path as the last line. Returns the
    path, or None where the options do not ask for it, there is no validation set with targets, or not rank 0."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return None
    opt = _options_after_training(root)
    if not save_comparison_enabled(opt) or not any(p.split('_')[0] == 'val' for p in opt.get('datasets', {})):
        return None
    rows = comparison_rows_of_latest_model(opt)
    if not rows:
        return None
    path = write_comparison(osp.join(opt['path']['experiments_root'], FILE_NAME), rows)
    from basicsr.utils import get_root_logger
    gain = np.mean([row['psnr'][1] - row['psnr'][0] for row in rows])
    get_root_logger().info(f'Comparison of the validation scenes ({len(rows)}; blurry input | restored | sharp, '
                           f'restored {gain:+.2f} dB PSNR over the input on average): {path}')
    return path
