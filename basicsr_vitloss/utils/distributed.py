"""torch.distributed for BasicSR's ``pytorch`` (torchrun) and ``slurm`` launchers, on GPUs (nccl) and
CPUs (gloo): initialization (``basicsr_vitloss.compat.distributed`` installs ``init_dist`` in BasicSR),
the per-process CUDA device, and the barrier that makes every rank wait for rank 0's validation and
checkpoints."""
import datetime
import os

import torch
import torch.distributed as dist

#: ``dist_params: timeout:`` when the options give none, in seconds. Only rank 0 validates (BasicSR's
#: ``dist_validation``) while the other ranks wait at a barrier, so the timeout must outlast the longest
#: validation: GoPro's 1111 full 1280x720 frames take minutes to tens of minutes; torch's defaults are
#: 10 minutes (nccl) and 30 minutes (gloo).
DEFAULT_TIMEOUT_S = 7200


def parse_timeout(value):
    """``dist_params: timeout`` (seconds, as YAML gives it, or a timedelta) as a timedelta."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f'dist_params: timeout must be a number of seconds, got {value!r}.')
    if not seconds > 0:
        raise ValueError(f'dist_params: timeout must be a positive number of seconds, got {value!r}.')
    return datetime.timedelta(seconds=seconds)


def _local_process_count(local_rank):
    """Processes of this job on this node: torchrun's LOCAL_WORLD_SIZE, slurm's tasks per node."""
    for key in ('LOCAL_WORLD_SIZE', 'SLURM_NTASKS_PER_NODE'):
        value = os.environ.get(key, '').split('(')[0]  # slurm may write '2(x3)'
        if value.isdigit():
            return int(value)
    return local_rank + 1


def _set_cuda_device():
    """Put this process on the GPU of its local rank; refuse more processes per node than visible GPUs
    (they would share a GPU silently)."""
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    visible = torch.cuda.device_count()
    processes = _local_process_count(local_rank)
    if processes > visible or local_rank >= visible:
        raise RuntimeError(
            f'{max(processes, local_rank + 1)} processes per node but {visible} visible CUDA GPU(s): each process '
            f'needs its own GPU. Start at most {visible} (torchrun --nproc_per_node {visible}), or train on CPUs '
            "with dist_params: {backend: gloo}, num_gpu: 0 and CUDA_VISIBLE_DEVICES=''.")
    torch.cuda.set_device(local_rank)


def init_dist(launcher, backend=None, timeout=None, use_cuda=None, **kwargs):
    """Initialize torch.distributed for BasicSR's ``pytorch`` (torchrun) or ``slurm`` launcher.

    ``backend`` None picks nccl when CUDA is available and gloo otherwise. ``timeout``: seconds (default
    ``DEFAULT_TIMEOUT_S``). ``use_cuda`` (default: CUDA is available) puts the process on the GPU of its local
    rank (not its global rank, which is wrong beyond one node) whatever the backend, and refuses more
    processes per node than GPUs.
    """
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f"Invalid launcher '{launcher}': expected 'pytorch' (torchrun) or 'slurm'.")
    if dist.is_available() and dist.is_initialized():
        return
    if torch.multiprocessing.get_start_method(allow_none=True) is None:
        torch.multiprocessing.set_start_method('spawn')  # as stock BasicSR: CUDA-safe data workers
    cuda = torch.cuda.is_available()
    if backend is None:
        backend = 'nccl' if cuda else 'gloo'
    if backend == 'nccl' and not cuda:
        raise RuntimeError("dist_params: backend 'nccl' needs CUDA GPUs; use backend: gloo on CPU.")
    kwargs['timeout'] = parse_timeout(DEFAULT_TIMEOUT_S if timeout is None else timeout)
    port = kwargs.pop('port', None)
    if launcher == 'slurm':
        _export_slurm_env(port)
    elif port is not None:
        os.environ.setdefault('MASTER_PORT', str(port))
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher {launcher} needs the environment variables {', '.join(missing)}; "
                           'start the job with torchrun (or srun for slurm), or use --launcher none.')
    if backend == 'nccl' or (cuda and use_cuda is not False):
        _set_cuda_device()
    dist.init_process_group(backend=backend, **kwargs)


def wait_for_all_ranks():
    """A barrier across the ranks when torch.distributed is initialized (nothing otherwise): the ranks
    that did not validate or save wait here for rank 0, not inside the next training collective."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_backend() == 'nccl':
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def _export_slurm_env(port):
    import subprocess
    proc_id = int(os.environ['SLURM_PROCID'])
    gpus = max(torch.cuda.device_count(), 1)
    nodes = os.environ['SLURM_NODELIST']
    os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
    os.environ['MASTER_PORT'] = str(port) if port is not None else os.environ.get('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', str(proc_id % gpus))
