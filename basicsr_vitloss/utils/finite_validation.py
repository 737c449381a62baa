"""Validation and testing stop at an output holding NaN or inf, naming the image and the iteration.

BasicSR's ``SRModel.nondist_validation`` (and the plugin's float validation) turn each output into an image
with ``tensor2img``, which clamps and casts: a diverged network's NaN output is saved as a black image and
scored (about 8 dB PSNR on mid-grey images, or ``nan``) while training goes on. With this feature,
``SRModel.get_current_visuals``, called once per image right after ``test()`` and before anything is saved or
scored, refuses a non-finite output (``utils/finite_check.py``), and ``SRModel.nondist_validation`` names the
image and the iteration (or the test run) in the error. Enabled after ``float_validation``, so that it wraps
both validation loops.
"""
import os.path as osp

import torch

from basicsr_vitloss.compat import basicsr_feature, replace
from basicsr_vitloss.utils.finite_check import NonFiniteOutputError, check_finite

HINT = ('the network diverged or overflowed, and nothing was saved or scored for this image. In training, try a '
        'lower learning rate, train: use_grad_clip: true, or mixed_precision bf16 (or none) instead of fp16, and '
        'resume from a checkpoint before the divergence; in testing, check the weights (a diverged run saves '
        'NaN weights) and test without mixed_precision')


class NamedBatches:
    """A validation dataloader that remembers the name of the image it gave last (BasicSR's ``img_name``)."""

    def __init__(self, dataloader):
        self.dataloader = dataloader
        self.name = None

    def __iter__(self):
        for index, data in enumerate(self.dataloader):
            paths = data.get('lq_path') if isinstance(data, dict) else None
            self.name = osp.splitext(osp.basename(paths[0]))[0] if paths else f'number {index + 1}'
            yield data

    def __len__(self):
        return len(self.dataloader)

    def __getattr__(self, name):  # dataset, batch_size, ...: the dataloader's
        return getattr(self.__dict__['dataloader'], name)


@basicsr_feature('finite_validation', replaces=('basicsr.models.sr_model.SRModel.get_current_visuals',
                                                'basicsr.models.sr_model.SRModel.nondist_validation'))
def enable_finite_validation():
    """Refuse non-finite outputs in SRModel's visuals, and name the image in validation. Once per process."""
    from basicsr.models.sr_model import SRModel
    original_visuals = SRModel.get_current_visuals
    original_validation = SRModel.nondist_validation

    def get_current_visuals(self):
        if isinstance(getattr(self, 'output', None), torch.Tensor):
            check_finite(self.output, 'network output', HINT)
        return original_visuals(self)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        batches = NamedBatches(dataloader)
        try:
            return original_validation(self, batches, current_iter, tb_logger, save_img)
        except NonFiniteOutputError as error:
            if batches.name is None:  # not raised for an image of this loop
                raise
            when = f'at iteration {current_iter}' if self.opt.get('is_train') else f'of test run {current_iter}'
            raise NonFiniteOutputError(f'validation output for image {batches.name} {when}', error.description,
                                       error.hint) from None

    get_current_visuals.__doc__ = original_visuals.__doc__
    nondist_validation.__doc__ = original_validation.__doc__
    replace(SRModel, 'get_current_visuals', get_current_visuals)
    replace(SRModel, 'nondist_validation', nondist_validation)
