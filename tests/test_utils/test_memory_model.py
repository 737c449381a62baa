"""The memory model that sizes the equal-budget grid's batches: its count of saved tensors on the meta device
equals the count on real CPU tensors, its arithmetic, and the generator's table is what it gives."""
import pytest
import torch

from basicsr.archs import build_network
from basicsr_vitloss.utils import memory_model
from conftest import load_script

make_options = load_script('make_options')


def _cpu_saved_bytes(network, x):
    """Saved storages by data pointer on real tensors (parameters left out), counted independently."""
    params = {p.untyped_storage().data_ptr() for p in network.parameters()}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        network(x)
    return sum(seen.values())


@pytest.mark.parametrize('net', ['nafnet', 'uformer', 'restormer', 'mprnet'])
def test_meta_count_equals_the_count_on_cpu_tensors(net):
    opt = dict(make_options.network_g(net, 3), **make_options.TINY_NETWORK[net])
    torch.manual_seed(0)
    network = build_network(opt).train()
    cpu = _cpu_saved_bytes(network, torch.rand(2, 3, 32, 32))
    assert cpu > 0 and memory_model.network_activation_bytes(network, 3, 32, batch=2) == cpu


def test_per_image_and_fixed_split_a_linear_count():
    per_image, fixed = memory_model.per_image_and_fixed(lambda batch: 100 + 40 * batch)
    assert (per_image, fixed) == (40, 100)


def test_largest_batch_is_the_last_that_fits():
    gib = memory_model.GIB
    # 2**20 parameters x 16 bytes = 1/64 GiB; 1 GiB saved per image x 1.25; 1.5 GiB reserved
    batch, estimate = memory_model.largest_batch(10, 2 ** 20, gib)
    assert batch == 6 and estimate == pytest.approx(1 / 64 + 6 * 1.25 + 1.5)
    assert memory_model.step_memory_gib(2 ** 20, gib, 0, 0, 7) > 10
    with pytest.raises(ValueError, match='one image already needs an estimated 14.0 GiB, more than 12 GiB'):
        memory_model.largest_batch(12, 0, 10 * gib)


@pytest.mark.integration
def test_the_generators_batch_table_is_what_the_model_gives():
    memory = load_script('memory_model')
    net = 'nafnet'
    table_batch, table_gib, row = make_options.EQUAL_BUDGET_BATCH[net]
    assert row == 'vgg'  # the row that needs most: the ViT rows' ViT-B is left out to keep this test short
    opts = {loss: make_options.LOSS_TERMS[loss] for loss in ('baseline', 'vgg')}
    batch, estimates = memory.fit(make_options.network_g(net, 3), opts, 3, make_options.EQUAL_BUDGET['patch'],
                                  make_options.EQUAL_BUDGET['gpu_memory_gib'])
    assert batch == table_batch and max(estimates, key=estimates.get) == row
    assert round(estimates[row], 1) == table_gib
