"""The largest training batch of an options file that fits a GPU's memory, from an estimate (no GPU needed).

    python scripts/memory_model.py --opt options/gopro/restormer_local.yml [--gpu-memory 24] [--patch 256]

Builds the file's ``network_g`` and its perceptual loss (random weights: memory does not depend on them),
counts what one training step holds (``basicsr_vitloss.utils.memory_model``: weights + gradients + Adam
state, the tensors autograd saves, an allowance for backward and the CUDA context) and prints the
estimate per image and the largest batch that fits. ``scripts/make_options.py`` sizes the batches of its
equal-budget grid with ``fit`` below.
"""
import argparse
import contextlib
import copy
import os
import sys
from unittest import mock

import torch
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import basicsr_vitloss  # noqa: E402,F401  (registers the plugin's archs and losses)
from basicsr.archs import build_network  # noqa: E402
from basicsr.losses import build_loss  # noqa: E402
from basicsr_vitloss.utils import memory_model  # noqa: E402


@contextlib.contextmanager
def _vgg_without_weights():
    """BasicSR's VGG loss downloads ImageNet weights when experiments/pretrained_models lacks them; the
    memory is the same with random ones."""
    import torchvision
    from basicsr.archs import vgg_arch
    with mock.patch.object(vgg_arch.vgg, 'vgg19', lambda pretrained=False, **kw: torchvision.models.vgg19()), \
            mock.patch.object(vgg_arch.os.path, 'exists', lambda path: False if path == vgg_arch.VGG_PRETRAIN_PATH
                              else os.path.lexists(path)):
        yield


def build_perceptual(opt):
    """The perceptual loss of ``opt`` (a perceptual_opt dict or None) with random weights, or None."""
    if not opt:
        return None
    opt = copy.deepcopy(opt)
    if opt['type'] == 'PerceptualLoss':
        with _vgg_without_weights():
            return build_loss(opt)
    opt['pretrained'] = False
    return build_loss(opt)


def measure_network(network_opt, channels, patch):
    """{'parameters', 'network_per_image', 'fixed'} of ``network_opt`` (elements / bytes)."""
    torch.manual_seed(0)
    network = build_network(copy.deepcopy(network_opt))
    per_image, fixed = memory_model.per_image_and_fixed(
        lambda batch: memory_model.network_activation_bytes(network, channels, patch, batch))
    return {'parameters': memory_model.parameter_count(network), 'network_per_image': per_image, 'fixed': fixed}


def measure_loss(perceptual_opt, patch):
    """{'loss_per_image', 'fixed'} (bytes) of a perceptual_opt; zeros for None (the pixel loss only)."""
    loss = build_perceptual(perceptual_opt)
    if loss is None:
        return {'loss_per_image': 0, 'fixed': 0}
    per_image, fixed = memory_model.per_image_and_fixed(
        lambda batch: memory_model.loss_activation_bytes(loss, patch, batch))
    frozen = sum(t.numel() * t.element_size() for t in [*loss.parameters(), *loss.buffers()])
    return {'loss_per_image': per_image, 'fixed': fixed + frozen}


def measure(network_opt, perceptual_opt, channels, patch):
    """{'parameters', 'network_per_image', 'loss_per_image', 'fixed'} in elements / bytes."""
    return _row(measure_network(network_opt, channels, patch), measure_loss(perceptual_opt, patch))


def _row(network, loss):
    return {**network, 'loss_per_image': loss['loss_per_image'], 'fixed': network['fixed'] + loss['fixed']}


def fit(network_opt, perceptual_opts, channels, patch, gpu_gib):
    """The largest batch that fits ``gpu_gib`` for every loss in ``perceptual_opts`` (None = pixel loss
    only): (batch, {loss name: estimate in GiB at that batch}). The network is measured once."""
    network = measure_network(network_opt, channels, patch)
    rows = {name: _row(network, measure_loss(opt, patch)) for name, opt in perceptual_opts.items()}
    batch = min(memory_model.largest_batch(gpu_gib, r['parameters'], r['network_per_image'], r['loss_per_image'],
                                           r['fixed'])[0] for r in rows.values())
    estimates = {name: memory_model.step_memory_gib(r['parameters'], r['network_per_image'], r['loss_per_image'],
                                                    r['fixed'], batch) for name, r in rows.items()}
    return batch, estimates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--opt', required=True, help='a training options file')
    parser.add_argument('--gpu-memory', type=float, default=24.0, help='GPU memory in GiB (default 24)')
    parser.add_argument('--patch', type=int, help="training patch size (default: the file's gt_size)")
    args = parser.parse_args(argv)
    with open(args.opt) as file:
        opt = yaml.safe_load(file)
    train_data = opt['datasets']['train']
    patch = args.patch or train_data['gt_size']
    channels = 6 if train_data.get('mode') == 'dual_pixel' else 3
    row = measure(opt['network_g'], opt['train'].get('perceptual_opt'), channels, patch)
    batch, estimate = memory_model.largest_batch(args.gpu_memory, row['parameters'], row['network_per_image'],
                                                 row['loss_per_image'], row['fixed'])
    print(f'{args.opt}: {row["parameters"] / 1e6:.1f} M parameters; per {patch}x{patch} image: network '
          f'{row["network_per_image"] / memory_model.GIB:.2f} GiB, loss {row["loss_per_image"] / memory_model.GIB:.2f} '
          f'GiB saved for backward; largest batch in {args.gpu_memory:g} GiB: {batch} (estimate {estimate:.1f} GiB; '
          f'file: {train_data["batch_size_per_gpu"]} per GPU)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
