"""Validation that hands float images to the metrics that take them, and can save 16-bit results.

BasicSR's ``SRModel.nondist_validation`` rounds the output and the target to 8 bits before every
metric. For DPDD (16-bit) the paper's numbers are computed on floats in [0, 1], and 8-bit rounding
alone moves PSNR by a visible amount on good restorations (tests/test_metrics/test_metrics.py). With this
enabled, metrics marked ``takes_float_images`` (calculate_psnr_float, calculate_ssim_float,
calculate_mae, calculate_lpips) receive the clamped float output and target, other metrics (BasicSR's
psnr, ssim, niqe) still receive 8-bit images, and ``val: save_16bit: true`` saves results as 16-bit
PNGs. Without such a metric or option, BasicSR's own validation runs, unchanged.
"""
import os.path as osp

import numpy as np
import torch
from tqdm import tqdm

from basicsr.metrics import calculate_metric
from basicsr.utils import imwrite, tensor2img
from basicsr.utils.registry import METRIC_REGISTRY

from basicsr_vitloss.compat import basicsr_feature, replace


def metric_takes_float(metric_type):
    """Whether the registered metric ``metric_type`` is computed on float images."""
    return bool(getattr(METRIC_REGISTRY.get(metric_type), 'takes_float_images', False))


def needs_float_validation(val_opt):
    """True when the ``val:`` options ask for a float metric or 16-bit result images."""
    metrics = val_opt.get('metrics') or {}
    return bool(val_opt.get('save_16bit')) or any(metric_takes_float(m['type']) for m in metrics.values())


def _result_path(model, img_name, dataset_name, current_iter):
    """Where BasicSR saves a validation / test result image."""
    opt = model.opt
    if opt['is_train']:
        return osp.join(opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
    suffix = opt['val'].get('suffix') or opt['name']
    return osp.join(opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')


def float_validation(model, dataloader, current_iter, tb_logger, save_img):
    """BasicSR's validation loop, with float images for the metrics that take them."""
    val_opt = model.opt['val']
    dataset_name = dataloader.dataset.opt['name']
    metrics = val_opt.get('metrics') or {}
    if metrics:
        if not hasattr(model, 'metric_results'):
            model.metric_results = {name: 0 for name in metrics}
        model._initialize_best_metric_results(dataset_name)
        model.metric_results = {name: 0 for name in model.metric_results}
    takes_float = {name: metric_takes_float(opt['type']) for name, opt in metrics.items()}
    pbar = tqdm(total=len(dataloader), unit='image') if val_opt.get('pbar', False) else None

    count = 0
    for val_data in dataloader:
        img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
        model.feed_data(val_data)
        model.test()
        visuals = model.get_current_visuals()
        images = {'img': tensor2img([visuals['result']], out_type=np.float32, min_max=(0, 1))}
        if 'gt' in visuals:
            images['img2'] = tensor2img([visuals['gt']], out_type=np.float32, min_max=(0, 1))
            del model.gt
        del model.lq
        del model.output
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        # 8-bit copies only where something uses them: BasicSR's metrics, or 8-bit result images
        eight_bit = None
        if not all(takes_float.values()) or (save_img and not val_opt.get('save_16bit')):
            eight_bit = {key: (img * 255.0).round().astype(np.uint8) for key, img in images.items()}

        if save_img:
            path = _result_path(model, img_name, dataset_name, current_iter)
            if val_opt.get('save_16bit'):
                imwrite((images['img'] * 65535.0).round().astype(np.uint16), path)
            else:
                imwrite(eight_bit['img'], path)
        for name, opt in metrics.items():
            model.metric_results[name] += calculate_metric(images if takes_float[name] else eight_bit, opt)
        count += 1
        if pbar is not None:
            pbar.update(1)
            pbar.set_description(f'Test {img_name}')
    if pbar is not None:
        pbar.close()

    if metrics:
        for name in model.metric_results:
            model.metric_results[name] /= max(count, 1)
            model._update_best_metric_result(dataset_name, name, model.metric_results[name], current_iter)
        model._log_validation_metric_values(current_iter, dataset_name, tb_logger)


@basicsr_feature('float_validation', replaces='basicsr.models.sr_model.SRModel.nondist_validation')
def enable_float_validation():
    """Route SRModel's validation (and every model inheriting it) through ``float_validation`` when
    the options ask for it. Once per process."""
    from basicsr.models.sr_model import SRModel
    original = SRModel.nondist_validation

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if not needs_float_validation(self.opt.get('val') or {}):
            return original(self, dataloader, current_iter, tb_logger, save_img)
        return float_validation(self, dataloader, current_iter, tb_logger, save_img)

    nondist_validation.__doc__ = original.__doc__
    replace(SRModel, 'nondist_validation', nondist_validation)
