"""Fix ``niqe_small_images``: BasicSR's NIQE on an image too small for it says so, with the image size and
what is needed (the size rule: ``basicsr_vitloss.metrics.niqe_size``)."""
from . import compat_fix, is_original, replace, source


def _niqe_needs_fix():
    from basicsr.metrics import niqe
    return is_original(niqe.calculate_niqe) and 'at least two' not in source(niqe.calculate_niqe)


@compat_fix(_niqe_needs_fix, replaces=('basicsr.metrics.niqe.calculate_niqe', 'basicsr.metrics.calculate_niqe',
                                       "basicsr.utils.registry.METRIC_REGISTRY._obj_map['calculate_niqe']"))
def niqe_small_images():
    """BasicSR's NIQE fits a Gaussian to the features of 96x96 blocks: an image with fewer than two
    blocks fails deep inside (``SVD did not converge``, or a NumPy warning and NaN). Say so up front,
    with the image size and what is needed."""
    import basicsr.metrics
    from basicsr.metrics import niqe
    from basicsr.utils.registry import METRIC_REGISTRY
    original = niqe.calculate_niqe

    def calculate_niqe(img, crop_border, input_order='HWC', convert_to='y', **kwargs):
        from basicsr_vitloss.metrics.niqe_size import NIQE_BLOCK, niqe_defined
        height, width = (img.shape[1:3] if input_order == 'CHW' and img.ndim == 3 else img.shape[:2])
        height, width = height - 2 * crop_border, width - 2 * crop_border
        if not niqe_defined(height, width):
            raise ValueError(f'NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks; this image is '
                             f'{height}x{width} after crop_border {crop_border}. Use images of at least '
                             f'{NIQE_BLOCK}x{2 * NIQE_BLOCK} (e.g. a larger val gt_size) or drop NIQE here.')
        return original(img, crop_border, input_order=input_order, convert_to=convert_to, **kwargs)

    calculate_niqe.__doc__ = original.__doc__
    replace(niqe, 'calculate_niqe', calculate_niqe)
    replace(basicsr.metrics, 'calculate_niqe', calculate_niqe)
    replace(METRIC_REGISTRY._obj_map, 'calculate_niqe', calculate_niqe,
            attribute="basicsr.utils.registry.METRIC_REGISTRY._obj_map['calculate_niqe']")
