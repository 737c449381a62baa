"""torch.distributed initialization for BasicSR's ``pytorch`` (torchrun) and ``slurm`` launchers, on GPUs
(nccl) and CPUs (gloo). ``basicsr_vitloss.compat.distributed`` installs ``init_dist`` in BasicSR."""
import os

import torch
import torch.distributed as dist


def init_dist(launcher, backend=None, **kwargs):
    """Initialize torch.distributed for BasicSR's ``pytorch`` (torchrun) or ``slurm`` launcher.

    ``backend`` None picks nccl when CUDA is available and gloo otherwise; the CUDA device is the
    process's local rank (not its global rank, which is wrong beyond one node).
    """
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f"Invalid launcher '{launcher}': expected 'pytorch' (torchrun) or 'slurm'.")
    if dist.is_available() and dist.is_initialized():
        return
    if torch.multiprocessing.get_start_method(allow_none=True) is None:
        torch.multiprocessing.set_start_method('spawn')  # as stock BasicSR: CUDA-safe data workers
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    port = kwargs.pop('port', None)
    if launcher == 'slurm':
        _export_slurm_env(port)
    elif port is not None:
        os.environ.setdefault('MASTER_PORT', str(port))
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher {launcher} needs the environment variables {', '.join(missing)}; "
                           'start the job with torchrun (or srun for slurm), or use --launcher none.')
    if backend == 'nccl':
        if not torch.cuda.is_available():
            raise RuntimeError("dist_params: backend 'nccl' needs CUDA GPUs; use backend: gloo on CPU.")
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs)


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
