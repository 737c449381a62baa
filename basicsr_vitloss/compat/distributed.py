"""Fixes ``distributed_backend`` and ``ddp_on_cpu``: BasicSR's distributed training on CPUs (gloo), and
the CUDA device of the local rank. The initialization itself is ``basicsr_vitloss.utils.distributed``."""
from basicsr_vitloss.utils.distributed import init_dist

from . import compat_fix, is_original, replace, source


def _init_dist_needs_fix():
    from basicsr.utils import dist_util
    src = source(dist_util._init_dist_pytorch)
    return is_original(dist_util.init_dist) and 'set_device' in src and 'is_available' not in src


@compat_fix(_init_dist_needs_fix, replaces=('basicsr.utils.dist_util.init_dist', 'basicsr.utils.options.init_dist'))
def distributed_backend():
    """Stock init_dist hard-codes nccl and ``torch.cuda.set_device``, so CPU / gloo runs crash."""
    from basicsr.utils import dist_util, options
    replace(dist_util, 'init_dist', init_dist)
    replace(options, 'init_dist', init_dist)


def _ddp_needs_fix():
    from basicsr.models.base_model import BaseModel
    src = source(BaseModel.model_to_device)
    return is_original(BaseModel.model_to_device) and 'current_device()' in src


@compat_fix(_ddp_needs_fix, replaces='basicsr.models.base_model.BaseModel.model_to_device')
def ddp_on_cpu():
    """Stock model_to_device passes ``device_ids=[torch.cuda.current_device()]`` to DDP, which
    fails without CUDA; on CPU, DDP gets no device_ids."""
    from torch.nn.parallel import DistributedDataParallel
    from basicsr.models.base_model import BaseModel
    original = BaseModel.model_to_device

    def model_to_device(self, net):
        if self.opt['dist'] and self.device.type != 'cuda':
            return DistributedDataParallel(
                net.to(self.device), find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return original(self, net)

    replace(BaseModel, 'model_to_device', model_to_device)
