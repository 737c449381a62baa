"""The metrics of one image pair (PSNR, SSIM in its float or MATLAB variant, MAE, LPIPS, NIQE) and
their exact definitions as the report and the protocol state them."""
import math

from basicsr_vitloss.metrics.niqe_size import NIQE_BLOCK, NIQE_MIN_BLOCKS, niqe_defined
from basicsr_vitloss.evaluation.errors import EvaluateError
from basicsr_vitloss.evaluation.images import to_uint8

METRICS = ('psnr', 'ssim', 'mae', 'lpips', 'niqe')
TITLES = {'psnr': 'PSNR', 'ssim': 'SSIM', 'mae': 'MAE', 'lpips': 'LPIPS', 'niqe': 'NIQE'}
SSIM_VARIANTS = ('float', 'matlab')
#: --niqe-channel: the single channel BasicSR's calculate_niqe scores (its ``convert_to``). 'y': MATLAB's YCbCr luma
#: (16-235, BasicSR's default, used for the numbers here); 'gray': full-range luma 0.299 R + 0.587 G + 0.114 B
#: (cv2 BGR2GRAY), the channel pyiqa's NIQE scores (Y of YIQ) and MATLAB rgb2gray's luma
NIQE_CHANNELS = ('y', 'gray')
MATLAB_SSIM_DATASETS = ('gopro', 'hide')  # Tab. III: MPRNet's / Restormer's evaluate_GOPRO_HIDE.m
LPIPS_NET, LPIPS_MODEL_VERSION = 'alex', '0.1'
#: --lpips-net: AlexNet (default; the paper's, Restormer's and the lpips authors' evaluation choice) or VGG16
LPIPS_NETS = ('alex', 'vgg')
#: protocol['metrics']: each metric's exact variant (SSIM per --ssim)
METRIC_VARIANTS = {
    'psnr': 'float, 10log10(1/MSE), RGB, data range 1',
    'ssim': {'float': 'skimage structural_similarity 7x7 uniform, per-channel mean, float',
             'matlab': 'MATLAB ssim 3-D, 11x11x11 Gaussian sigma 1.5, 8-bit'},
    'mae': 'float, mean |restored - gt|, RGB, data range 1',
    'lpips': None,  # net + package version, filled in by lpips_variant()
    'niqe': {'y': 'BasicSR calculate_niqe, 8-bit Y', 'gray': 'BasicSR calculate_niqe, 8-bit gray'},
}
SETTINGS = {
    'psnr': '10*log10(1/MSE) on RGB in [0, 1] (8-bit /255, 16-bit /65535), MSE over all pixels and '
            'channels, no border crop (basicsr_vitloss calculate_psnr_float)',
    'ssim': "scikit-image structural_similarity on RGB in [0, 1], data_range 1, 7x7 uniform window, "
            'channel-averaged, no border crop (calculate_ssim_float)',
    'ssim_matlab': "MATLAB's ssim(restored, gt) on the 8-bit RGB images (16-bit rounded to 8 bits): a 3-D SSIM "
                   'over H x W x 3, 11x11x11 Gaussian window sigma 1.5, replicate padding, L = 255, mean of the '
                   'map, no border crop (calculate_ssim_matlab)',
    'mae': 'mean |restored - gt| on RGB in [0, 1] over all pixels and channels (calculate_mae)',
    'lpips_vgg': f"lpips {LPIPS_MODEL_VERSION}, VGG16 backbone (lpips.LPIPS(net='vgg')), inputs in [0, 1] "
                 '(calculate_lpips)',
    'lpips': f"lpips {LPIPS_MODEL_VERSION}, AlexNet backbone (lpips.LPIPS(net='{LPIPS_NET}')), inputs in [0, 1] "
             '(calculate_lpips)',
    'niqe': "BasicSR calculate_niqe on the restored image only, rounded to 8 bits, Y channel (MATLAB YCbCr, "
            "convert_to='y'), crop_border 0; undefined (nan, left out of the means) for images with fewer than "
            f'{NIQE_MIN_BLOCKS} blocks of {NIQE_BLOCK}x{NIQE_BLOCK} pixels',
    'niqe_gray': "BasicSR calculate_niqe on the restored image only, rounded to 8 bits, grayscale (0.299 R + "
                 "0.587 G + 0.114 B, convert_to='gray', as pyiqa's NIQE), crop_border 0; undefined (nan, "
                 f'left out of the means) for images with fewer than {NIQE_MIN_BLOCKS} blocks of '
                 f'{NIQE_BLOCK}x{NIQE_BLOCK} pixels',
}
#: protocol fields merge does not compare: a checked pairing gives the same pairs either way


def matlab_ssim_function():
    """BasicSR's METRIC_REGISTRY entry calculate_ssim_matlab (basicsr_vitloss.metrics.ssim_matlab_metric)."""
    import basicsr_vitloss.metrics  # noqa: F401  (registers the plugin's metrics)
    from basicsr.utils.registry import METRIC_REGISTRY
    from basicsr_vitloss.utils.registration import plugin_class
    try:
        return plugin_class(METRIC_REGISTRY, 'calculate_ssim_matlab')  # the plugin's, also if the name is shared
    except KeyError:
        raise EvaluateError('--ssim matlab needs the metric calculate_ssim_matlab '
                            '(basicsr_vitloss/metrics/ssim_matlab_metric.py), which this installation lacks; '
                            'use --ssim float or update basicsr-vitloss.') from None


def check_niqe_channel(channel):
    """``channel`` if it is one of NIQE_CHANNELS, else EvaluateError naming the allowed values."""
    if channel not in NIQE_CHANNELS:
        raise EvaluateError(f'--niqe-channel {channel!r}: expected one of {", ".join(NIQE_CHANNELS)}.')
    return channel


def compute_metrics(restored, gt, metrics, lpips_weights=None, ssim='float', niqe_channel='y', lpips_net=LPIPS_NET):
    """{metric: value} of one restored image against its gt (NIQE: of the restored image alone).
    ``ssim``: 'float' (scikit-image on [0, 1]) or 'matlab' (MATLAB's 3-D SSIM on the 8-bit images);
    ``niqe_channel``: 'y' or 'gray' (BasicSR calculate_niqe's ``convert_to``, see NIQE_CHANNELS);
    ``lpips_net``: 'alex' or 'vgg'."""
    check_niqe_channel(niqe_channel)
    from basicsr_vitloss.metrics import fidelity_metric, lpips_metric
    from basicsr.metrics import niqe as niqe_module
    values = {}
    if 'psnr' in metrics:
        values['psnr'] = float(fidelity_metric.calculate_psnr_float(restored, gt, crop_border=0))
    if 'ssim' in metrics:
        if ssim == 'matlab':
            values['ssim'] = float(matlab_ssim_function()(to_uint8(restored), to_uint8(gt), crop_border=0,
                                                          input_order='HWC', test_y_channel=False))
        else:
            values['ssim'] = float(fidelity_metric.calculate_ssim_float(restored, gt, crop_border=0))
    if 'mae' in metrics:
        values['mae'] = float(fidelity_metric.calculate_mae(restored, gt, crop_border=0))
    if 'lpips' in metrics:
        values['lpips'] = float(lpips_metric.calculate_lpips(restored, gt, net=lpips_net, weights_dir=lpips_weights))
    if 'niqe' in metrics:
        height, width = restored.shape[:2]
        if not niqe_defined(height, width):
            values['niqe'] = math.nan
        else:
            values['niqe'] = float(niqe_module.calculate_niqe(to_uint8(restored), 0, input_order='HWC',
                                                              convert_to=niqe_channel))
    return values

def lpips_variant(net=LPIPS_NET):
    """LPIPS as computed here: net, model version and the lpips package's version."""
    from importlib import metadata
    try:
        package = metadata.version('lpips')
    except metadata.PackageNotFoundError:
        package = 'not installed'
    return {'net': net, 'version': LPIPS_MODEL_VERSION, 'package': f'lpips {package}'}


def default_ssim(dataset):
    """'matlab' for GoPro / HIDE (Tab. III, by dataset name: GoPro, HIDE_test ...), else 'float'."""
    first = ''.join(c if c.isalnum() else ' ' for c in (dataset or '').lower()).split()
    return 'matlab' if first and first[0] in MATLAB_SSIM_DATASETS else 'float'
