"""Fix ``paired_flip_key``: BasicSR's PairedImageDataset reports missing flip / rotation keys when it is
built, and accepts NAFNet's ``use_flip``."""
from . import compat_fix, is_original, replace, source


def _paired_flip_key_needs_fix():
    from basicsr.data.paired_image_dataset import PairedImageDataset
    return is_original(PairedImageDataset.__init__) and "self.opt['use_hflip']" in source(PairedImageDataset)


@compat_fix(_paired_flip_key_needs_fix,
            replaces='basicsr.data.paired_image_dataset.PairedImageDataset.__init__')
def paired_flip_key():
    """BasicSR's PairedImageDataset reads ``use_hflip`` / ``use_rot`` only when the first training
    sample loads (a bare KeyError in a worker), and NAFNet's options call the first ``use_flip``.
    Accept ``use_flip`` as ``use_hflip``, and report a missing key when the dataset is built."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    original = PairedImageDataset.__init__

    def __init__(self, opt):
        if opt.get('phase') == 'train':
            if 'use_hflip' not in opt and 'use_flip' in opt:
                opt['use_hflip'] = opt['use_flip']
            missing = [key for key in ('use_hflip', 'use_rot') if key not in opt]
            if missing:
                raise KeyError(f"PairedImageDataset '{opt.get('name')}': training needs "
                               f"{' and '.join(f'datasets:train:{k}' for k in missing)} (true or false).")
        original(self, opt)

    replace(PairedImageDataset, '__init__', __init__)
