"""An estimate of the GPU memory of one training step, to fit a batch size to a GPU without having one.

What a step holds at its peak, in float32 with Adam-type optimizers:

* the network's weights, their gradients and the optimizer's two moments: 16 bytes per parameter;
* the tensors autograd saves for the backward pass, counted exactly (each storage once, parameters
  excluded) by running the forward pass under ``torch.autograd.graph.saved_tensors_hooks`` on the
  ``meta`` device: shapes and dtypes without any arithmetic, so a full-size network at the training
  patch costs about a second (on CPU tensors the count is the same byte for byte,
  ``tests/test_utils/test_memory_model.py``);
* the same for the perceptual loss on the prediction (the target's features are taken without autograd);
* ``BACKWARD_FACTOR`` on top of the saved tensors for the gradients of activations that exist during the
  backward pass, and ``RESERVED_GIB`` for the CUDA context, cuDNN / cuBLAS workspaces and the caching
  allocator's fragmentation.

The last two are allowances, not measurements: no GPU was at hand when they were chosen, so the estimate
is meant for choosing a batch size with some margin, and a GPU run (``benchmarks/gpu_suite.py`` reports
``max_memory_allocated``) is what confirms it.
"""
import copy

import torch

GIB = 2 ** 30
#: bytes per parameter: float32 weight, gradient, and Adam's / AdamW's two moments
STATE_BYTES_PER_PARAMETER = 16
#: activation gradients alive during backward, as a fraction of the saved tensors (an allowance)
BACKWARD_FACTOR = 1.25
#: CUDA context, library workspaces and allocator fragmentation (an allowance)
RESERVED_GIB = 1.5


def saved_tensor_bytes(module, inputs, exclude=()):
    """Bytes of the distinct storages autograd saves for backward in ``module(*inputs)``, leaving out
    the storages of ``exclude`` (parameters are counted as state, not activations)."""
    excluded = {t.untyped_storage()._cdata for t in exclude}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage._cdata not in excluded:
            seen[storage._cdata] = max(seen.get(storage._cdata, 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(*inputs)
    return sum(seen.values())


def network_activation_bytes(network, channels, patch, batch=1):
    """Saved-tensor bytes of one training forward of ``network`` (built, any device) on ``batch`` images of
    ``channels`` x ``patch`` x ``patch``, counted on the meta device."""
    meta = copy.deepcopy(network).train().to('meta')
    x = torch.empty(batch, channels, patch, patch, device='meta')
    return saved_tensor_bytes(meta, (x,), exclude=list(meta.parameters()))


def per_image_and_fixed(measure):
    """(bytes per image, bytes independent of the batch) from ``measure(batch)`` at batches 1 and 2 (tensors
    made from the weights alone, such as Uformer's relative position bias, do not grow with the batch)."""
    one, two = measure(1), measure(2)
    return two - one, max(0, 2 * one - two)


def loss_activation_bytes(loss, patch, batch=1):
    """Saved-tensor bytes of ``loss(pred, target)`` with a prediction that needs gradients, on the CPU
    (the ViT loss draws its mask from the CPU generator); the loss's own weights are excluded."""
    pred = torch.rand(batch, 3, patch, patch, requires_grad=True)
    target = torch.rand(batch, 3, patch, patch)
    params = list(loss.parameters()) + list(loss.buffers())
    return saved_tensor_bytes(loss, (pred, target), exclude=params)


def parameter_count(network):
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def step_memory_gib(parameters, activation_bytes_per_image, loss_bytes_per_image, frozen_bytes, batch):
    """The estimate for ``batch`` images: state + (network + loss activations) x backward factor + the
    loss's frozen weights + the reserve, in GiB."""
    state = STATE_BYTES_PER_PARAMETER * parameters
    activations = BACKWARD_FACTOR * batch * (activation_bytes_per_image + loss_bytes_per_image)
    return (state + activations + frozen_bytes) / GIB + RESERVED_GIB


def largest_batch(gpu_gib, parameters, activation_bytes_per_image, loss_bytes_per_image=0, frozen_bytes=0):
    """The largest batch whose estimate fits ``gpu_gib``, and that estimate; ValueError when not even one
    image fits (the message gives the estimate of one)."""
    one = step_memory_gib(parameters, activation_bytes_per_image, loss_bytes_per_image, frozen_bytes, 1)
    if one > gpu_gib:
        raise ValueError(f'one image already needs an estimated {one:.1f} GiB, more than {gpu_gib} GiB: use a '
                         'smaller patch, activation checkpointing (use_checkpoint) or a larger GPU.')
    batch = 1
    while step_memory_gib(parameters, activation_bytes_per_image, loss_bytes_per_image, frozen_bytes,
                          batch + 1) <= gpu_gib:
        batch += 1
    return batch, step_memory_gib(parameters, activation_bytes_per_image, loss_bytes_per_image, frozen_bytes, batch)
