"""basicsr-vitloss: the ViT perceptual losses of "Image Deblurring by Exploring In-depth Properties
of Transformer" (TNNLS 2024) with data, architectures and options, as a BasicSR plugin.

Importing this package makes stock basicsr work on current stacks (``compat``), registers every
plugin class into BasicSR's registries and enables the plugin's option keys; ``compat.replaced_attributes()``
lists every BasicSR attribute this replaces. Installing the package is enough for BasicSR's own entry
points: ``basicsr_vitloss_startup`` imports it as soon as ``basicsr`` is imported.

Import circle: this package imports ``basicsr_vitloss_startup`` (its finders must be in place before the
``import basicsr`` below, also when the ``.pth`` file did not run), and that hook imports this package
once ``basicsr`` has run. Imported first, this package reaches the hook through ``import basicsr`` while
it is still initializing; the hook's import of it then does nothing (see the hook's docstring). So
nothing before ``import basicsr`` here may rely on BasicSR, and the hook uses nothing of this package.

The public classes are importable from here: ``from basicsr_vitloss import LocalMAEPerceptualLoss``.
"""
import basicsr_vitloss_startup as _startup

_startup.install()  # modules basicsr imports that current releases removed; before `import basicsr`

import basicsr  # noqa: E402,F401

from . import compat  # noqa: E402

compat.apply_all()
compat.coexistence.enable_registry_coexistence()  # names shared with other BasicSR code; before registering


from . import archs, data, losses, metrics, models  # noqa: E402,F401  (registration)
from .utils.float_validation import enable_float_validation  # noqa: E402
from .utils.finite_validation import enable_finite_validation  # noqa: E402
from .utils.tiling import enable_tiled_validation  # noqa: E402
from .models.training_setup import enable_training_setup  # noqa: E402
from .models.training_step import enable_training_step  # noqa: E402

enable_tiled_validation()  # `val: tile:` in the options
enable_float_validation()  # float metrics and `val: save_16bit:` in the options
enable_finite_validation()  # NaN / inf outputs stop validation, naming the image (after float_validation)
enable_training_setup()  # any torch.optim optimizer, Restormer / NAFNet schedulers
enable_training_step()  # train: mixed_precision / micro_batches, val: mixed_precision
from .version import __version__  # noqa: E402,F401
from .losses.vit_losses import GlobalDistributionLoss, LocalMAEPerceptualLoss  # noqa: E402
from .losses.psnr_loss import PSNRLoss  # noqa: E402
from .losses.mprnet_loss import EdgeLoss  # noqa: E402
from .archs.nafnet_arch import NAFNet, NAFNetLocal  # noqa: E402
from .archs.restormer_arch import Restormer  # noqa: E402
from .archs.uformer_arch import Uformer  # noqa: E402
from .archs.dpdnet_arch import DPDNet  # noqa: E402
from .archs.mprnet_arch import MPRNet  # noqa: E402

__all__ = ['__version__', 'LocalMAEPerceptualLoss', 'GlobalDistributionLoss', 'PSNRLoss', 'EdgeLoss', 'NAFNet',
           'NAFNetLocal', 'Restormer', 'Uformer', 'DPDNet', 'MPRNet']
