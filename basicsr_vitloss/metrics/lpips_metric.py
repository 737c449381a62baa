"""LPIPS (Zhang et al., CVPR 2018), AlexNet variant as in the paper, for BasicSR validation and scripts.

Built on the ``lpips`` package, the authors' reference implementation: it is what the paper's and
Restormer's DPDD evaluations call (``lpips.LPIPS(net='alex')``), it ships its learned linear layers
inside the wheel, and it is small (pyiqa would bring many more dependencies and download its own copy
of the same weights). The only download is torchvision's ImageNet backbone (AlexNet:
``alexnet-owt-7be5be79.pth``, 233 MB), which is looked up, in order, in ``weights_dir`` (metric
option or ``BASICSR_VITLOSS_WEIGHTS``), in torch's hub cache (``$TORCH_HOME/hub/checkpoints``), and
only then downloaded; offline, the error names the file and where to put it.

The network is built once per process and setting (not once per image), stays in eval mode, runs
without gradients on the GPU when there is one.
"""
import functools
import os
import warnings

import numpy as np
import torch

from basicsr.utils.registry import METRIC_REGISTRY
from basicsr_vitloss.metrics.unit_range import takes_float_images, unit_pair

#: lpips backbone name -> torchvision weights enum and model builder names
BACKBONES = {'alex': ('AlexNet_Weights', 'alexnet'), 'vgg': ('VGG16_Weights', 'vgg16'),
             'squeeze': ('SqueezeNet1_1_Weights', 'squeezenet1_1')}
WEIGHTS_ENV = 'BASICSR_VITLOSS_WEIGHTS'


def backbone_url(net):
    """Download URL of torchvision's ImageNet weights for an LPIPS backbone."""
    import torchvision.models as models
    if net not in BACKBONES:
        raise ValueError(f"LPIPS net must be one of {', '.join(BACKBONES)}, got {net!r}.")
    return getattr(models, BACKBONES[net][0]).IMAGENET1K_V1.url


def find_backbone_weights(net, weights_dir=None):
    """Path of the backbone's weight file: ``weights_dir``, then $BASICSR_VITLOSS_WEIGHTS, then torch's
    hub cache; downloaded into the hub cache if absent. FileNotFoundError saying where to put it."""
    url = backbone_url(net)
    filename = os.path.basename(url)
    hub_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
    candidates = [d for d in (weights_dir, os.environ.get(WEIGHTS_ENV), hub_dir) if d]
    for folder in candidates:
        path = os.path.join(os.path.expanduser(folder), filename)
        if os.path.isfile(path):
            return path
    try:
        torch.hub.download_url_to_file(url, os.path.join(hub_dir, filename), progress=False)
    except Exception as error:  # offline, proxy, disk: one message that says what to do
        raise FileNotFoundError(
            f"LPIPS ({net}) needs torchvision's ImageNet weights {filename}, which are not in "
            f"{' or '.join(candidates)} and could not be downloaded from {url} ({type(error).__name__}: "
            f"{error}). Download that file elsewhere and put it in one of these folders (or set the "
            f"metric option weights_dir / ${WEIGHTS_ENV} to its folder).") from None
    return os.path.join(hub_dir, filename)


def _load_backbone(model, path):
    """Load torchvision's ``features.*`` weights into the slices of lpips's backbone (which hold the
    same layers under ``slice<k>.<index>``), strictly: every backbone tensor must be present."""
    state = torch.load(path, map_location='cpu', weights_only=True)
    renamed = {}
    for slice_name, block in model.net.named_children():
        for index, _ in block.named_children():
            for param in ('weight', 'bias'):
                key = f'features.{index}.{param}'
                if key in state:
                    renamed[f'{slice_name}.{index}.{param}'] = state[key]
    missing = set(model.net.state_dict()) - set(renamed)
    if missing:
        raise ValueError(f'{path}: not torchvision weights of this LPIPS backbone; missing '
                         f'{", ".join(sorted(missing)[:5])} (as features.<index>.weight / bias).')
    model.net.load_state_dict(renamed, strict=True)


@functools.lru_cache(maxsize=None)
def lpips_network(net='alex', version='0.1', weights_dir=None, device=None):
    """The frozen LPIPS network for ``net`` (built once per setting)."""
    import lpips
    path = find_backbone_weights(net, weights_dir)
    with warnings.catch_warnings():  # lpips builds torchvision nets with the deprecated `pretrained=`
        warnings.simplefilter('ignore')
        model = lpips.LPIPS(net=net, version=version, pretrained=True, pnet_rand=True, verbose=False)
    _load_backbone(model, path)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def _to_tensor(unit_bgr, device):
    rgb = np.ascontiguousarray(unit_bgr[..., ::-1].transpose(2, 0, 1))
    return torch.from_numpy(rgb).float().unsqueeze(0).to(device)


@METRIC_REGISTRY.register()
@takes_float_images
def calculate_lpips(img, img2, crop_border=0, input_order='HWC', net='alex', version='0.1', weights_dir=None,
                    **kwargs):
    """LPIPS distance (lower is better) between two RGB images (HWC BGR, 8/16-bit or float [0, 1])."""
    a, b = unit_pair(img, img2, input_order, crop_border)
    if a.shape[2] != 3:
        raise ValueError(f'LPIPS needs 3-channel images, got {a.shape[2]} channels.')
    model = lpips_network(net, str(version), weights_dir)
    device = next(model.parameters()).device
    with torch.no_grad():
        return float(model(_to_tensor(a, device), _to_tensor(b, device), normalize=True).item())
