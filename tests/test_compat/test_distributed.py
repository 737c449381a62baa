"""Two-process training with torchrun and the gloo backend on CPU (BasicSR's pytorch launcher)."""
import os
import re
import textwrap

import pytest
import torch.distributed as dist

from conftest import run, tiny_options

# Runs basicsr-vitloss's training entry point like `torchrun -m basicsr_vitloss.train` does, and
# records per rank which samples the dataset produced and which files torch.save wrote.
RECORDING_ENTRY = textwrap.dedent('''
    import os, sys, torch
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

    SyntheticDualPixelDataset.__getitem__ = recording_get_item
    torch.save = recording_save
    from basicsr_vitloss.train import main
    main()
''')


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='torch built without gloo')
@pytest.mark.integration
def test_two_process_gloo_training(tmp_path):
    tiny_options(tmp_path / 'dist.yml', name='dist', total_iter=4, **{
        'dist_params': {'backend': 'gloo'}, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 4,
        'datasets:train:num_samples': 16, 'train:micro_batches': 2})  # chunks under DDP's no_sync
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
    assert '# psnr:' in log
    assert 'Found no NVIDIA driver' not in proc.stderr


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
