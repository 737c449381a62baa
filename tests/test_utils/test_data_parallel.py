"""DataParallel replicas under the caller's autocast dtype (utils/data_parallel.py).

torch's ``parallel_apply`` needs an accelerator; here the CPU stands in for it: the accelerator queries it
makes are answered for the CPU, and its no-argument ``torch.is_autocast_enabled()`` (CUDA's state) reports
the CPU's. Its own code then runs each replica in a thread of its own and enters autocast there without a
dtype, as on GPUs. The CPU's default autocast dtype is bfloat16 (CUDA's: float16), so the caller asks for
float16 here, the dtype a replica thread does not get by default (as bf16 on CUDA).
"""
import contextlib
import threading

import pytest
import torch

from basicsr.models.base_model import BaseModel
from basicsr_vitloss.utils.data_parallel import AutocastDataParallel


class Recorder(torch.nn.Module):
    """A Linear that records the thread it ran in, the autocast state there and its output dtype."""

    def __init__(self, seen):
        super().__init__()
        self.linear, self.seen = torch.nn.Linear(4, 4), seen

    def forward(self, x):
        y = self.linear(x)
        self.seen.append({'main': threading.current_thread() is threading.main_thread(),
                          'enabled': torch.is_autocast_enabled('cpu'), 'dtype': torch.get_autocast_dtype('cpu'),
                          'output': y.dtype})
        return y


@pytest.fixture
def cpu_as_accelerator(monkeypatch):
    is_autocast_enabled = torch.is_autocast_enabled
    monkeypatch.setattr(torch.accelerator, 'is_available', lambda: True)
    monkeypatch.setattr(torch.accelerator, 'current_accelerator', lambda *args: torch.device('cpu'))
    monkeypatch.setattr(torch.accelerator, 'current_stream', lambda *args: contextlib.nullcontext())
    monkeypatch.setattr(torch.accelerator, 'device_index', lambda *args: contextlib.nullcontext())
    monkeypatch.setattr(torch, 'is_autocast_enabled', lambda device_type='cpu': is_autocast_enabled(device_type))


def two_gpu_wrapper(cls, seen):
    """``cls`` around a Recorder, set up as DataParallel is on two devices (0 and 1), and two replicas."""
    wrapper = cls(Recorder(seen))  # no GPU: DataParallel keeps no device ids
    wrapper.device_ids, wrapper.src_device_obj = [0, 1], torch.device('cpu')
    torch.manual_seed(0)
    replicas = [Recorder(seen), Recorder(seen)]
    return wrapper, replicas


def run_replicas(parallel_apply, wrapper, replicas, **autocast):
    inputs = [(torch.randn(2, 4),), (torch.randn(2, 4),)]
    context = torch.autocast('cpu', **autocast) if autocast else contextlib.nullcontext()
    with context:
        return parallel_apply(wrapper, replicas, inputs, None)


def test_replicas_compute_in_the_callers_dtype_in_their_threads(cpu_as_accelerator):
    seen = []
    wrapper, replicas = two_gpu_wrapper(AutocastDataParallel, seen)
    outputs = run_replicas(AutocastDataParallel.parallel_apply, wrapper, replicas, dtype=torch.float16)
    assert len(seen) == 2 and not any(s['main'] for s in seen)  # torch's threads ran them
    assert all(s['enabled'] and s['dtype'] == torch.float16 and s['output'] == torch.float16 for s in seen), seen
    sum(o.float().sum() for o in outputs).backward()  # gradients reach each replica's float32 weights
    assert all(r.linear.weight.grad is not None and r.linear.weight.grad.dtype == torch.float32 for r in replicas)


def test_stock_data_parallel_replicas_take_the_thread_default_dtype(cpu_as_accelerator):
    """The defect the class fixes, reproduced by the harness above: torch's own DataParallel.parallel_apply
    runs the replicas under autocast with the new thread's default dtype, not the caller's."""
    seen = []
    wrapper, replicas = two_gpu_wrapper(torch.nn.DataParallel, seen)
    run_replicas(torch.nn.DataParallel.parallel_apply, wrapper, replicas, dtype=torch.float16)
    assert len(seen) == 2 and not any(s['main'] for s in seen)
    assert all(s['enabled'] and s['dtype'] == torch.bfloat16 and s['output'] == torch.bfloat16 for s in seen), seen


def test_replicas_stay_in_float32_without_autocast(cpu_as_accelerator):
    seen = []
    wrapper, replicas = two_gpu_wrapper(AutocastDataParallel, seen)
    run_replicas(AutocastDataParallel.parallel_apply, wrapper, replicas)
    assert len(seen) == 2 and all(not s['enabled'] and s['output'] == torch.float32 for s in seen), seen


def test_is_a_data_parallel_that_basicsr_unwraps():
    net = torch.nn.Linear(4, 4)
    wrapped = AutocastDataParallel(net)
    assert isinstance(wrapped, torch.nn.DataParallel)
    assert BaseModel.get_bare_model(None, wrapped) is net
    assert list(wrapped.state_dict()) == ['module.weight', 'module.bias']  # DataParallel's checkpoint keys
    x = torch.randn(2, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):  # no GPU: the module is called directly
        assert wrapped(x).dtype == torch.bfloat16
