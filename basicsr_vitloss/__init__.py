"""basicsr-vitloss: the ViT perceptual losses of "Image Deblurring by Exploring In-depth Properties
of Transformer" (TNNLS 2024) with data, architectures and options, as a BasicSR plugin.

Importing this package makes stock basicsr work on current stacks (``compat``) and registers every
plugin class into BasicSR's registries. Installing the package is enough for BasicSR's own entry
points: ``basicsr_vitloss_startup`` imports it as soon as ``basicsr`` is imported.
"""
import basicsr_vitloss_startup as _startup

_startup.install()  # modules basicsr imports that current releases removed; before `import basicsr`

import basicsr  # noqa: E402,F401

from . import compat  # noqa: E402

compat.apply_all()

from . import archs, data, losses, metrics, models  # noqa: E402,F401  (registration)
from .utils.float_validation import enable_float_validation  # noqa: E402
from .utils.tiling import enable_tiled_validation  # noqa: E402
from .models.training_setup import enable_training_setup  # noqa: E402
from .models.training_step import enable_training_step  # noqa: E402

enable_tiled_validation()  # `val: tile:` in the options
enable_float_validation()  # float metrics and `val: save_16bit:` in the options
enable_training_setup()  # any torch.optim optimizer, Restormer / NAFNet schedulers
enable_training_step()  # train: mixed_precision / micro_batches, val: mixed_precision
from .version import __version__  # noqa: E402,F401
