"""Two-process training with torchrun and the gloo backend on CPU (BasicSR's pytorch launcher), for
every architecture, with validation at the last iteration (only rank 0 validates)."""
import datetime
import json
import os
import re
import textwrap

import pytest
import torch
import torch.distributed as dist

from conftest import load_script, run, tiny_options

# Runs basicsr-vitloss's training entry point like `torchrun -m basicsr_vitloss.train` does, and
# records per rank which samples the dataset produced, which files torch.save wrote, the barriers it
# waited at, and at every `model.save` (called on every rank) checksums of the network and of the loss
# networks.
RECORDING_ENTRY = textwrap.dedent('''
    import json, os, sys, torch
    rank = os.environ["RANK"]
    from basicsr_vitloss.data.synthetic_dp_dataset import SyntheticDualPixelDataset
    get_item, save = SyntheticDualPixelDataset.__getitem__, torch.save

    def recording_get_item(self, index):
        if self.opt["phase"] == "train":
            with open(f"samples_rank{rank}.txt", "a") as f:
                f.write(f"{index}\\n")
        return get_item(self, index)

    def recording_save(obj, f, *args, **kwargs):
        with open(f"saves_rank{rank}.txt", "a") as log:
            log.write(f"{getattr(f, 'name', f)}\\n")
        return save(obj, f, *args, **kwargs)

    def checksum(module):
        return sum(float(t.double().sum()) for t in module.state_dict().values()) if module is not None else None

    from basicsr_vitloss.train import main
    from basicsr.models.sr_model import SRModel
    model_save = SRModel.save

    def recording_model_save(self, epoch, current_iter):
        with open(f"checksums_rank{rank}.jsonl", "a") as f:
            f.write(json.dumps({"iter": current_iter, "net_g": checksum(self.get_bare_model(self.net_g)),
                                "perceptual": checksum(getattr(self, "cri_perceptual", None))}) + "\\n")
        return model_save(self, epoch, current_iter)

    from basicsr_vitloss.compat import distributed as fixes
    barrier = fixes.wait_for_all_ranks

    def recording_barrier():
        with open(f"barriers_rank{rank}.txt", "a") as f:
            f.write("barrier\\n")
        return barrier()

    SyntheticDualPixelDataset.__getitem__ = recording_get_item
    torch.save = recording_save
    SRModel.save = recording_model_save
    fixes.wait_for_all_ranks = recording_barrier
    main()
''')

ARCHS = ('nafnet', 'restormer', 'uformer', 'dpdnet', 'mprnet')


def arch_changes(arch):
    """Option changes that train the tiny ``arch`` (the options grid's network with its tiny sizes) on the
    demo's dual-pixel data (6 input channels)."""
    make_options = load_script('make_options')
    network = make_options.network_g(arch, 6, 'dpdd')
    network.update(make_options.TINY_NETWORK[arch])
    changes = {'network_g': network, 'datasets:train:gt_size': 32, 'datasets:val:gt_size': 32}
    if arch == 'mprnet':  # a list of stage images: L1 on every stage
        changes['model_type'] = 'MultiStageModel'
    if arch == 'nafnet':  # chunks under DDP's no_sync
        changes['train:micro_batches'] = 2
    return changes


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='torch built without gloo')
@pytest.mark.integration
@pytest.mark.parametrize('arch', ARCHS)
def test_two_process_gloo_training(tmp_path, arch):
    tiny_options(tmp_path / 'dist.yml', name='dist', total_iter=4, **{
        'dist_params': {'backend': 'gloo'}, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 4,
        'train:ema_decay': 0, 'datasets:train:num_samples': 16, **arch_changes(arch)})
    (tmp_path / 'entry.py').write_text(RECORDING_ENTRY)
    proc = run(['python', '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', 'entry.py',
                '-opt', 'dist.yml', '--launcher', 'pytorch'], cwd=tmp_path, timeout=400)
    # 4 iterations x batch 2 = the first 8 samples each rank drew (the loop fetches one batch more)
    drawn = [(tmp_path / f'samples_rank{r}.txt').read_text().split() for r in (0, 1)]
    assert len(drawn[0]) >= 8 and len(drawn[1]) >= 8, 'a rank trained on fewer samples than expected'
    samples = [set(d[:8]) for d in drawn]
    assert not samples[0] & samples[1], f'ranks trained on the same samples: {samples[0] & samples[1]}'
    # torch.save writes to the atomic writer's temporary '.<name>.<pid>.<hex>.tmp<ext>', renamed to <name><ext>
    saved = {re.sub(r'^\.(.+)\.\d+\.[0-9a-f]+\.tmp(\.\w+)?$', r'\1\2', os.path.basename(line))
             for line in (tmp_path / 'saves_rank0.txt').read_text().split()}
    assert {'net_g_4.pth', '4.state', 'net_g_latest.pth'} <= saved, saved
    assert not (tmp_path / 'saves_rank1.txt').exists(), 'rank 1 wrote checkpoints'
    exp = tmp_path / 'experiments' / 'dist'
    assert (exp / 'models' / 'net_g_4.pth').is_file() and (exp / 'training_states' / '4.state').is_file()
    log = '\n'.join(p.read_text() for p in exp.glob('train_*.log'))
    assert 'World size (gpu number): 2' in log
    assert len(re.findall(r'# psnr:', log)) == 2, 'validation at iteration 4 and after training'
    assert 'Found no NVIDIA driver' not in proc.stderr
    # the ranks hold the same network after every step (DDP), and the same loss networks (a random ViT too)
    sums = [[json.loads(line) for line in (tmp_path / f'checksums_rank{r}.jsonl').read_text().splitlines()]
            for r in (0, 1)]
    assert [s['iter'] for s in sums[0]] == [4, -1] and sums[0] == sums[1], sums
    # both ranks waited for rank 0's two checkpoints and two validations, explicitly
    barriers = [(tmp_path / f'barriers_rank{r}.txt').read_text().split() for r in (0, 1)]
    assert len(barriers[0]) == len(barriers[1]) == 4, barriers


def test_nccl_on_cpu_is_refused_with_advice(monkeypatch):
    from basicsr_vitloss.utils import distributed
    monkeypatch.setattr(distributed.torch.cuda, 'is_available', lambda: False)
    for key, value in {'RANK': '0', 'WORLD_SIZE': '1', 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': '1'}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RuntimeError, match="backend 'nccl' needs CUDA GPUs; use backend: gloo"):
        distributed.init_dist('pytorch', backend='nccl')


def test_launcher_without_torchrun_environment_says_how_to_start(monkeypatch):
    from basicsr_vitloss.utils import distributed
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='start the job with torchrun'):
        distributed.init_dist('pytorch')


# Fakes a machine with FAKE_GPUS CUDA GPUs (recording torch.cuda.set_device per rank), then runs only the
# entry point's preparation: the check of the options and torch.distributed's initialization.
FAKE_GPU_ENTRY = textwrap.dedent('''
    import os, sys, torch
    import torch.distributed as dist
    rank = os.environ["RANK"]
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: int(os.environ["FAKE_GPUS"])

    def set_device(index):
        with open(f"device_rank{rank}.txt", "w") as f:
            f.write(str(index))

    torch.cuda.set_device = set_device
    from basicsr_vitloss import launch
    launch.prepare(sys.argv[1:])
    dist.destroy_process_group()
''')


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='torch built without gloo')
@pytest.mark.integration
@pytest.mark.parametrize('gpus', [1, 2])
def test_gloo_on_cuda_puts_each_rank_on_its_gpu_and_refuses_too_few(tmp_path, gpus):
    tiny_options(tmp_path / 'dist.yml', name='dist', **{'dist_params': {'backend': 'gloo'}, 'num_gpu': 'auto'})
    (tmp_path / 'entry.py').write_text(FAKE_GPU_ENTRY)
    proc = run(['python', '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', 'entry.py',
                '-opt', 'dist.yml', '--launcher', 'pytorch'], cwd=tmp_path, timeout=120, check=False, FAKE_GPUS=gpus)
    if gpus == 1:
        assert proc.returncode != 0
        assert '2 processes per node but 1 visible CUDA GPU(s)' in proc.stderr, proc.stderr[-3000:]
        assert not list(tmp_path.glob('device_rank*.txt')), 'a rank was put on a GPU that another rank has'
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert [(tmp_path / f'device_rank{r}.txt').read_text() for r in (0, 1)] == ['0', '1']


@pytest.fixture
def torchrun_env(monkeypatch):
    """The environment torchrun gives rank ``LOCAL_RANK`` 1 of 2 on one node; init_process_group recorded."""
    from basicsr_vitloss.utils import distributed
    for key, value in {'RANK': '1', 'WORLD_SIZE': '2', 'LOCAL_RANK': '1', 'LOCAL_WORLD_SIZE': '2',
                       'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': '1'}.items():
        monkeypatch.setenv(key, value)
    calls = {}
    monkeypatch.setattr(distributed.dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(distributed.dist, 'init_process_group', lambda **kwargs: calls.setdefault('init', kwargs))
    monkeypatch.setattr(distributed.torch.cuda, 'set_device', lambda index: calls.setdefault('device', index))
    return distributed, calls


def test_timeout_is_given_in_seconds_with_a_long_default(torchrun_env, monkeypatch):
    distributed, calls = torchrun_env
    monkeypatch.setattr(distributed.torch.cuda, 'is_available', lambda: False)
    distributed.init_dist('pytorch', backend='gloo', timeout=3600)
    assert calls['init'] == {'backend': 'gloo', 'timeout': datetime.timedelta(hours=1)}
    calls.clear()
    distributed.init_dist('pytorch', backend='gloo')
    assert calls['init']['timeout'] == datetime.timedelta(seconds=distributed.DEFAULT_TIMEOUT_S)
    assert distributed.DEFAULT_TIMEOUT_S >= 3600  # torch's nccl default (10 minutes) is shorter than validations
    for bad in ('1h', -5, 0, True):
        with pytest.raises(ValueError, match='dist_params: timeout must be a'):
            distributed.init_dist('pytorch', backend='gloo', timeout=bad)


def test_every_backend_sets_the_local_rank_gpu_unless_told_not_to_use_cuda(torchrun_env, monkeypatch):
    distributed, calls = torchrun_env
    monkeypatch.setattr(distributed.torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(distributed.torch.cuda, 'device_count', lambda: 2)
    distributed.init_dist('pytorch', backend='gloo')
    assert calls['device'] == 1 and calls['init']['backend'] == 'gloo'
    calls.clear()
    distributed.init_dist('pytorch', backend='gloo', use_cuda=False)  # num_gpu: 0 on a GPU machine
    assert 'device' not in calls and calls['init']['backend'] == 'gloo'
    monkeypatch.setattr(distributed.torch.cuda, 'device_count', lambda: 1)
    for backend in ('nccl', 'gloo'):
        with pytest.raises(RuntimeError, match=r'2 processes per node but 1 visible CUDA GPU\(s\)'):
            distributed.init_dist('pytorch', backend=backend)


def test_ddp_broadcasts_buffers_only_of_networks_with_running_statistics():
    from basicsr.utils.registry import ARCH_REGISTRY
    from basicsr_vitloss.compat.distributed import needs_buffer_broadcast
    make_options = load_script('make_options')
    network = make_options.network_g('uformer', 3, 'dpdd')
    network.update(make_options.TINY_NETWORK['uformer'])
    uformer = ARCH_REGISTRY.get(network.pop('type'))(**network)
    assert len(list(uformer.buffers())) == 9  # relative_position_index: constants
    assert not needs_buffer_broadcast(uformer)
    assert needs_buffer_broadcast(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))
    assert not needs_buffer_broadcast(torch.nn.Sequential(torch.nn.BatchNorm2d(4, track_running_stats=False)))


def test_validation_runs_the_bare_network_then_waits_for_every_rank(monkeypatch):
    from basicsr.models.base_model import BaseModel
    from basicsr_vitloss.compat import distributed as fixes
    seen = []

    class Model(BaseModel):
        def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
            seen.append(('validate', type(self.net_g).__name__))

    waits = []
    monkeypatch.setattr(fixes, 'wait_for_all_ranks', lambda: waits.append(len(seen)))
    model = Model({'num_gpu': 0, 'is_train': False, 'dist': True, 'rank': 0})
    model.net_g = torch.nn.DataParallel(torch.nn.Linear(2, 2))  # any wrapper: get_bare_model unwraps it
    model.validation(None, 1, None)
    assert seen == [('validate', 'Linear')] and waits == [1]
    assert type(model.net_g).__name__ == 'DataParallel', 'the wrapper is put back after validation'


def test_random_vit_is_the_same_whatever_the_seed_and_leaves_the_random_stream():
    from basicsr_vitloss.losses.vit_features import create_vit
    from conftest import TINY_VIT
    torch.manual_seed(10)  # BasicSR seeds rank r with manual_seed + r
    first = create_vit('mae', pretrained=False, **TINY_VIT)
    after_first = torch.rand(3)
    torch.manual_seed(11)
    second = create_vit('mae', pretrained=False, **TINY_VIT)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    torch.manual_seed(10)
    assert torch.equal(torch.rand(3), after_first), 'building the ViT consumed the global random stream'


def test_data_parallel_wrapping_keeps_the_autocast_dtype_in_its_replicas():
    from basicsr.models.base_model import BaseModel
    from basicsr_vitloss.utils.data_parallel import AutocastDataParallel
    model = BaseModel({'num_gpu': 2, 'is_train': False, 'dist': False})  # BasicSR's DataParallel mode
    model.device = torch.device('cpu')  # the wrapper is built the same way; no GPU here
    wrapped = model.model_to_device(torch.nn.Linear(2, 2))
    assert isinstance(wrapped, AutocastDataParallel)
    assert isinstance(model.get_bare_model(wrapped), torch.nn.Linear)
