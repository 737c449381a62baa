"""Fixes of BasicSR's multi-process and multi-GPU training: ``distributed_backend`` (initialization on
GPUs and CPUs), ``parallel_wrappers`` (how the network is wrapped), ``rank_zero_validation`` and
``checkpoint_barrier`` (the other ranks wait for rank 0's validation and checkpoints). The
initialization itself is ``basicsr_vitloss.utils.distributed``."""
from basicsr_vitloss.utils.distributed import init_dist, wait_for_all_ranks

from . import compat_fix, is_original, replace, source


def _stock(func):
    """The function a chain of patches started from (BasicSR's own)."""
    while hasattr(func, '__basicsr_original__'):
        func = func.__basicsr_original__
    return func


def _init_dist_needs_fix():
    from basicsr.utils import dist_util
    src = source(dist_util._init_dist_pytorch)
    return is_original(dist_util.init_dist) and 'set_device' in src and 'is_available' not in src


@compat_fix(_init_dist_needs_fix, replaces=('basicsr.utils.dist_util.init_dist', 'basicsr.utils.options.init_dist'))
def distributed_backend():
    """Stock init_dist hard-codes nccl and ``torch.cuda.set_device``, so CPU / gloo runs crash; it sets the
    device from the global rank (wrong beyond one node) and takes no timeout in seconds."""
    from basicsr.utils import dist_util, options
    replace(dist_util, 'init_dist', init_dist)
    replace(options, 'init_dist', init_dist)


def needs_buffer_broadcast(net):
    """Whether DDP must broadcast ``net``'s buffers from rank 0 each forward: only running statistics
    (BatchNorm, InstanceNorm with track_running_stats) change while training; index tables such as
    Uformer's ``relative_position_index`` are constants."""
    from torch import nn
    return any(isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats for m in net.modules())


def _wrappers_need_fix():
    from basicsr.models.base_model import BaseModel
    src = source(BaseModel.model_to_device)
    return is_original(BaseModel.model_to_device) and ('broadcast_buffers' not in src or 'autocast' not in src.lower())


@compat_fix(_wrappers_need_fix, replaces='basicsr.models.base_model.BaseModel.model_to_device')
def parallel_wrappers():
    """Stock model_to_device passes ``device_ids=[torch.cuda.current_device()]`` to DDP, which fails without
    CUDA; and DDP broadcasts every buffer from rank 0 on each forward, constants included, a collective
    that rank 0 alone sends when it validates through the wrapper; and DataParallel's replica threads
    re-enter autocast without its dtype (bf16 training ran its replicas in fp16). Here DDP gets device
    ids on CUDA only and broadcasts buffers only for networks with running statistics; DataParallel
    replicas compute in the caller's autocast dtype."""
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from basicsr.models.base_model import BaseModel
    from basicsr_vitloss.utils.data_parallel import AutocastDataParallel

    def model_to_device(self, net):
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            return DistributedDataParallel(net, device_ids=device_ids,
                                           find_unused_parameters=self.opt.get('find_unused_parameters', False),
                                           broadcast_buffers=needs_buffer_broadcast(net))
        if self.opt['num_gpu'] > 1:
            return AutocastDataParallel(net)
        return net

    model_to_device.__doc__ = BaseModel.model_to_device.__doc__
    replace(BaseModel, 'model_to_device', model_to_device)


def _validation_needs_fix():
    from basicsr.models.base_model import BaseModel
    src = source(BaseModel.validation)
    return is_original(BaseModel.validation) and 'barrier' not in src and 'get_bare_model' not in src


@compat_fix(_validation_needs_fix, replaces='basicsr.models.base_model.BaseModel.validation')
def rank_zero_validation():
    """Stock validation runs rank 0's forward through the DDP wrapper, which may start a collective no
    other rank joins (a buffer broadcast: a hang, or a crash when the others have finished), and lets
    the other ranks run on into the next training collective while rank 0 validates. Here validation
    runs the bare network, and every rank waits for it at a barrier."""
    from basicsr.models.base_model import BaseModel
    original = BaseModel.validation

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        wrapped = getattr(self, 'net_g', None)
        if wrapped is not None:
            self.net_g = self.get_bare_model(wrapped)
        try:
            original(self, dataloader, current_iter, tb_logger, save_img)
        finally:
            if wrapped is not None:
                self.net_g = wrapped
        if self.opt.get('dist'):
            wait_for_all_ranks()

    validation.__doc__ = original.__doc__
    replace(BaseModel, 'validation', validation)


def _checkpoints_need_barrier():
    from basicsr.models.base_model import BaseModel
    return 'barrier' not in source(_stock(BaseModel.save_training_state))


@compat_fix(_checkpoints_need_barrier, replaces='basicsr.models.base_model.BaseModel.save_training_state')
def checkpoint_barrier():
    """Only rank 0 writes checkpoints; the other ranks now wait for them at a barrier (``save`` ends with
    ``save_training_state`` in every BasicSR model) instead of inside the next training collective."""
    from basicsr.models.base_model import BaseModel
    original = BaseModel.save_training_state

    def save_training_state(self, epoch, current_iter):
        original(self, epoch, current_iter)
        if self.opt.get('dist'):
            wait_for_all_ranks()

    save_training_state.__doc__ = original.__doc__
    replace(BaseModel, 'save_training_state', save_training_state)
