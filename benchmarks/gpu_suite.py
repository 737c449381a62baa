"""GPU suite: the ViT losses, one training step of each official network, DPDD loading, on one GPU.

One command, under 10 minutes on a recent GPU (a time-budget guard skips the remaining cells of a
section, and says so in the report, when the next cell would pass --budget-s, default 540 s):

1. ViT losses: LocalMAEPerceptualLoss and GlobalDistributionLoss (backbone mae = ViT-B/16, random
   weights (pretrained false), layer 5, token feature, mask 0.5), batch 8 at 256 and 384 px, float32 and
   bfloat16 autocast: forward + backward to pred (``loss.value(pred, target).backward()``), median of
   5 after 2 warm-up calls, ``torch.cuda.synchronize()`` around each call; peak memory =
   ``max_memory_allocated()`` during the timed calls minus ``memory_allocated()`` before them (the
   ViT weights and the two input batches are in the baseline: this is the loss's working memory).
2. Training step, official sizes (NAFNetLocal GoPro width 64, Restormer dual-pixel, Uformer-B,
   DPDNet 6->3, MPRNet), 256 px, batch 2 for every network (--train-batch), losses L1, L1 + local
   (weight 1), L1 + global (weight 1e-5), with and without ``train: mixed_precision: bf16``, with and
   without ``network_g: use_checkpoint: true``. The step is the plugin's own: ``build_model`` of a
   ``ProgressiveSRModel`` options dict (``MultiStageModel`` for MPRNet: L1 on every stage, ViT loss on
   the final image), AdamW, ``feed_data`` + ``optimize_parameters`` (BasicSR's SRModel step with this
   plugin's autocast). Median of 5 steps after 1 warm-up step (which also allocates the optimizer
   state); peak memory = ``max_memory_allocated()`` during the timed steps minus ``memory_allocated()``
   before the model was built: everything the training holds (network, gradients, AdamW state, the
   frozen ViT, the batch, activations). A network that does not accept ``use_checkpoint`` yet is
   reported n/a; an out-of-memory step OOM.
3. DPDD loading: ``benchmarks/data_bench.py``'s generated 16-bit 512x512 tree and DataLoader
   throughput (batch 8, gt_size 256, dual_pixel) with 0, 2 and 4 workers (the GPU machine's CPUs).

Writes benchmarks/results/gpu.md and gpu.json with the device name, torch / CUDA versions and date.
Without CUDA it prints "gpu_suite: no CUDA device; nothing measured" and exits 0. ``--device cpu
--quick --out DIR`` runs the same code with tiny networks (the widths the tests use), a tiny ViT (depth 6,
width 64), 32-48 px, 1 repeat and no warm-up on the CPU (the tests run it; memory columns are '-' on the
CPU, where max_memory_allocated has no counterpart).

    python benchmarks/gpu_suite.py [--budget-s 540] [--train-batch 2] [--out benchmarks/results]
    python benchmarks/gpu_suite.py --device cpu --quick --out /tmp/gpu_suite
"""
import argparse
import copy
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

NO_CUDA_MESSAGE = 'gpu_suite: no CUDA device; nothing measured'
SKIPPED = 'skipped (time budget)'
PRECISIONS = ('fp32', 'bf16')

#: name -> (input channels, model type, official network_g, tiny network_g for --quick)
NETWORKS = {
    'NAFNetLocal GoPro width64': (3, 'ProgressiveSRModel',
                                  dict(type='NAFNetLocal', img_channel=3, width=64, middle_blk_num=1,
                                       enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1]),
                                  dict(width=8, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1])),
    'Restormer dual-pixel': (6, 'ProgressiveSRModel',
                             dict(type='Restormer', inp_channels=6, out_channels=3, dual_pixel_task=True),
                             dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])),
    'Uformer-B': (3, 'ProgressiveSRModel',
                  dict(type='Uformer', img_size=256, embed_dim=32, win_size=8, token_projection='linear',
                       token_mlp='leff', modulator=True, depths=[1, 2, 8, 8, 2, 8, 8, 2, 1]),
                  dict(embed_dim=8, depths=[1] * 9, img_size=64)),
    'DPDNet dual-pixel': (6, 'ProgressiveSRModel', dict(type='DPDNet', in_channels=6, out_channels=3),
                          dict(base_channels=4)),
    'MPRNet': (3, 'MultiStageModel',
               dict(type='MPRNet', in_c=3, out_c=3, n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32,
                    num_cab=8, kernel_size=3, reduction=4, bias=False),
               dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)),
}

VIT_LOSSES = {'local': ('LocalMAEPerceptualLoss', 1.0), 'global': ('GlobalDistributionLoss', 1e-5)}
TRAIN_LOSSES = ('L1', 'L1 + local', 'L1 + global')
TINY_VIT = {'depth': 6, 'embed_dim': 64, 'num_heads': 2}


class Budget:
    """Total time budget. ``allows(section)`` is False when the next cell, estimated as the longest
    cell of that section so far, would end past the deadline; skipped cells are recorded by section."""

    def __init__(self, seconds, clock=time.perf_counter):
        self.clock = clock
        self.deadline = clock() + float(seconds)
        self.longest = {}
        self.skipped = {}

    def allows(self, section):
        return self.clock() + self.longest.get(section, 0.0) <= self.deadline

    def record(self, section, seconds):
        self.longest[section] = max(self.longest.get(section, 0.0), seconds)

    def skip(self, section, label):
        self.skipped.setdefault(section, []).append(label)


def settings(quick):
    """Sizes, repeats, workers of the full suite, or of ``--quick`` (same code, tiny)."""
    if quick:
        return dict(loss_sizes=(32, 48), loss_batch=2, loss_repeats=1, loss_warmup=0, vit_kwargs=TINY_VIT,
                    train_size=32, train_repeats=1, train_warmup=0, data_scenes=24, data_size=64,
                    data_gt_size=32, data_samples=16, data_repeats=1, data_workers=(0, 2))
    return dict(loss_sizes=(256, 384), loss_batch=8, loss_repeats=5, loss_warmup=2, vit_kwargs=None,
                train_size=256, train_repeats=5, train_warmup=1, data_scenes=48, data_size=512,
                data_gt_size=256, data_samples=96, data_repeats=3, data_workers=(0, 2, 4))


class Meter:
    """Median wall time (synchronized on CUDA) and peak allocated memory above a baseline."""

    def __init__(self, device):
        import torch
        self.torch = torch
        self.cuda = device.type == 'cuda'

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def allocated(self):
        return self.torch.cuda.memory_allocated() if self.cuda else None

    def free(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()

    def measure(self, step, repeats, warmup, baseline=None):
        """(median seconds, peak MiB above ``baseline`` or above the memory before the timed calls;
        None on the CPU)."""
        for _ in range(warmup):
            step()
        self.sync()
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
            if baseline is None:
                baseline = self.torch.cuda.memory_allocated()
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            step()
            self.sync()
            times.append(time.perf_counter() - start)
        peak = (self.torch.cuda.max_memory_allocated() - baseline) / 2**20 if self.cuda else None
        return statistics.median(times), peak


def _is_oom(error):
    import torch
    oom = getattr(torch, 'OutOfMemoryError', None) or getattr(torch.cuda, 'OutOfMemoryError', RuntimeError)
    return isinstance(error, oom) or 'out of memory' in str(error)


def run_cell(section, label, budget, meter, function):
    """``function() -> dict`` under the budget guard; a row dict with 'status' (ok / n/a / OOM / skipped)."""
    if not budget.allows(section):
        budget.skip(section, label)
        return {'status': SKIPPED}
    start = budget.clock()
    try:
        row = dict(function(), status='ok')
    except TypeError as error:
        if 'use_checkpoint' not in str(error):
            raise
        row = {'status': 'n/a', 'note': 'use_checkpoint not accepted'}
    except RuntimeError as error:
        if not _is_oom(error):
            raise
        row = {'status': 'OOM'}
    finally:
        meter.free()
    budget.record(section, budget.clock() - start)
    return row


def loss_section(device, cfg, budget, meter):
    import torch
    from basicsr_vitloss.losses import vit_losses
    rows = []
    for key, (class_name, weight) in VIT_LOSSES.items():
        loss = None
        for size in cfg['loss_sizes']:
            for precision in PRECISIONS:
                label = f'{key} {size}px {precision}'

                def cell():
                    nonlocal loss
                    if loss is None:
                        torch.manual_seed(0)
                        loss = getattr(vit_losses, class_name)(
                            loss_weight=weight, backbone='mae', pretrained=False, layers=5, feature='token',
                            mask_ratio=0.5, backbone_kwargs=cfg['vit_kwargs']).to(device)
                    shape = (cfg['loss_batch'], 3, size, size)
                    pred = torch.rand(shape, device=device, requires_grad=True)
                    target = torch.rand(shape, device=device)

                    def step():
                        pred.grad = None
                        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
                            value = loss.value(pred, target)
                        value.backward()
                    seconds, peak = meter.measure(step, cfg['loss_repeats'], cfg['loss_warmup'])
                    return {'ms': seconds * 1e3, 'peak_mib': peak}
                row = run_cell('losses', label, budget, meter, cell)
                rows.append(dict(loss=class_name, size=size, precision=precision, batch=cfg['loss_batch'], **row))
        del loss
        meter.free()
    return rows


def model_options(net_name, loss, precision, checkpoint, device, quick):
    """A ProgressiveSRModel / MultiStageModel options dict for one training-step cell."""
    _, model_type, network, tiny = NETWORKS[net_name]
    network = dict(copy.deepcopy(network), **(copy.deepcopy(tiny) if quick else {}))
    if checkpoint:
        network['use_checkpoint'] = True
    train = {'ema_decay': 0, 'use_grad_clip': False, 'total_iter': 10**6, 'warmup_iter': -1,
             'optim_g': {'type': 'AdamW', 'lr': 1e-4, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [10**6], 'gamma': 0.5},
             'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
             'mixed_precision': 'bf16' if precision == 'bf16' else None}
    if loss != 'L1':
        class_name, weight = VIT_LOSSES[loss.split(' + ')[1]]
        train['perceptual_opt'] = {'type': class_name, 'loss_weight': weight, 'backbone': 'mae', 'pretrained': False,
                                   'layers': 5, 'feature': 'token', 'mask_ratio': 0.5}
        if quick:
            train['perceptual_opt']['backbone_kwargs'] = dict(TINY_VIT)
    return {'name': 'gpu_suite', 'model_type': model_type, 'is_train': True, 'dist': False, 'rank': 0,
            'world_size': 1, 'num_gpu': 1 if device.type == 'cuda' else 0, 'scale': 1, 'network_g': network,
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}, 'train': train}


def training_section(device, cfg, budget, meter, batch, quick, networks=None):
    import torch
    from basicsr.models import build_model
    rows = []
    size = cfg['train_size']
    for net_name, (in_channels, *_rest) in NETWORKS.items():
        if networks is not None and net_name not in networks:
            continue
        for loss in TRAIN_LOSSES:
            for precision in PRECISIONS:
                for checkpoint in (False, True):
                    label = f"{net_name} / {loss} / {precision} / checkpoint {'on' if checkpoint else 'off'}"

                    def cell():
                        meter.free()
                        baseline = meter.allocated()
                        torch.manual_seed(0)
                        model = build_model(model_options(net_name, loss, precision, checkpoint, device, quick))
                        data = {'lq': torch.rand(batch, in_channels, size, size, device=device),
                                'gt': torch.rand(batch, 3, size, size, device=device)}
                        iteration = [0]

                        def step():
                            iteration[0] += 1
                            model.feed_data(data)
                            model.optimize_parameters(iteration[0])
                        try:
                            seconds, peak = meter.measure(step, cfg['train_repeats'], cfg['train_warmup'], baseline)
                        finally:
                            model = data = None  # free them (not `del`: ruff misreads del of names the closure uses)
                        return {'ms': seconds * 1e3, 'peak_mib': peak}
                    row = run_cell('training', label, budget, meter, cell)
                    rows.append(dict(network=net_name, loss=loss, precision=precision, checkpoint=checkpoint,
                                     batch=batch, size=size, **row))
    return rows


def data_section(cfg, budget, meter):
    from data_bench import make_tree, throughput
    from basicsr_vitloss.data.dpdd_dataset import DPDDDataset
    rows = []
    with tempfile.TemporaryDirectory() as root:
        folders = make_tree(root, scenes=cfg['data_scenes'], size=cfg['data_size'])
        dataset = DPDDDataset({'name': 'gpu_suite', 'phase': 'train', 'gt_size': cfg['data_gt_size'],
                               'mode': 'dual_pixel', **folders})
        for workers in cfg['data_workers']:
            row = run_cell('data', f'{workers} workers', budget, meter, lambda: {
                'samples_per_s': throughput(dataset, workers, cfg['data_samples'], cfg['data_repeats'])})
            rows.append(dict(workers=workers, size=cfg['data_size'], gt_size=cfg['data_gt_size'], **row))
    return rows


def _number(value, digits):
    return '-' if value is None else f'{value:.{digits}f}'


def _cells(row, *keys):
    """The measured columns of a row, or its status in each of them (n/a, OOM, skipped)."""
    if row['status'] != 'ok':
        return [row['status']] * len(keys)
    return [_number(row[key], digits) for key, digits in keys]


def markdown(data):
    m, s = data['machine'], data['settings']
    vit = 'a tiny ViT (depth 6, width 64: --quick)' if data['quick'] else 'ViT-B/16'
    lines = ['# GPU suite', '',
             f"Device: {m['device_name']}; torch {m['torch']} (CUDA {m['cuda']}); {m['date']}; "
             f"{m['cpu_count']} CPU cores; mode: {'quick (tiny sizes, CPU test run)' if data['quick'] else 'full'}; "
             f"total {data['total_s']:.0f} s of a {data['budget_s']:.0f} s budget.", '',
             '## ViT losses: forward + backward to pred', '',
             f"{vit} (backbone mae, random weights), layer 5, token, mask 0.5, batch {s['loss_batch']}; median of "
             f"{s['loss_repeats']} after {s['loss_warmup']} warm-up; "
             "peak = memory above the ViT weights and inputs.", '',
             '| loss | size | precision | batch | ms | peak MiB |', '|---|---:|---|---:|---:|---:|']
    lines += ['| ' + ' | '.join([r['loss'], str(r['size']), r['precision'], str(r['batch']),
                                 *_cells(r, ('ms', 1), ('peak_mib', 0))]) + ' |' for r in data['losses']]
    lines += ['', '## Training step', '',
              f"{'Tiny widths (--quick), official names. ' if data['quick'] else 'Official configurations. '}"
              f"The plugin's step (build_model: ProgressiveSRModel, MultiStageModel for MPRNet; AdamW; feed_data + "
              f"optimize_parameters), {s['train_size']} px, median of {s['train_repeats']} steps after "
              f"{s['train_warmup']} warm-up; bf16 = train: mixed_precision: bf16; checkpoint = network_g: "
              'use_checkpoint: true; peak = all memory the training holds (network, gradients, AdamW state, ViT, '
              'batch, activations).', '',
              '| network | loss | precision | checkpoint | batch | ms | peak MiB |', '|---|---|---|---|---:|---:|---:|']
    lines += ['| ' + ' | '.join([r['network'], r['loss'], r['precision'], 'on' if r['checkpoint'] else 'off',
                                 str(r['batch']), *_cells(r, ('ms', 1), ('peak_mib', 0))]) + ' |'
              for r in data['training']]
    lines += ['', '## DPDD loading', '',
              f"DPDDDataset dual_pixel, generated 16-bit {s['data_size']}x{s['data_size']} crops -> gt_size "
              f"{s['data_gt_size']}, DataLoader batch 8, median of {s['data_repeats']} passes of "
              f"{s['data_samples']} samples.",
              '', '| workers | samples/s |', '|---:|---:|']
    lines += [f"| {r['workers']} | {_cells(r, ('samples_per_s', 1))[0]} |" for r in data['data']]
    lines += ['', '## Time budget', '']
    if data['skipped']:
        for section, labels in data['skipped'].items():
            lines.append(f"- {section}: {len(labels)} cells skipped to stay within {data['budget_s']:.0f} s: "
                         + '; '.join(labels))
    else:
        lines.append('No cell skipped.')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda')
    parser.add_argument('--quick', action='store_true', help='tiny sizes, 1 repeat (tests); needs --out')
    parser.add_argument('--out', type=Path, default=None,
                        help='folder for gpu.md / gpu.json (default benchmarks/results)')
    parser.add_argument('--budget-s', type=float, default=540.0, help='total time budget in seconds (default 540)')
    parser.add_argument('--train-batch', type=int, default=2, help='batch of the training-step cells (default 2)')
    parser.add_argument('--networks', nargs='+', choices=list(NETWORKS), default=None,
                        help='only these networks in the training-step section (default: all)')
    args = parser.parse_args(argv)

    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        print(NO_CUDA_MESSAGE)
        return 0
    if args.device == 'cpu' and not args.quick:
        parser.error('--device cpu runs only with --quick (the full suite is sized for a GPU)')
    if args.quick and args.out is None:
        parser.error('--quick needs --out (quick results never replace benchmarks/results)')
    out = args.out or HERE / 'results'

    import basicsr_vitloss  # noqa: F401  (registers archs, losses, models, datasets; patches the step)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # as basicsr.train does
    cfg = settings(args.quick)
    budget = Budget(args.budget_s)
    meter = Meter(device)
    start = time.perf_counter()
    losses = loss_section(device, cfg, budget, meter)
    training = training_section(device, cfg, budget, meter, args.train_batch, args.quick, args.networks)
    loading = data_section(cfg, budget, meter)

    cpu_name = f'CPU ({platform.processor() or platform.machine()})'
    machine = {'device_name': torch.cuda.get_device_name() if device.type == 'cuda' else cpu_name,
               'torch': torch.__version__, 'cuda': torch.version.cuda, 'python': sys.version.split()[0],
               'cpu_count': os.cpu_count(), 'platform': platform.platform(),
               'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}
    data = {'machine': machine, 'quick': args.quick, 'device': args.device, 'budget_s': args.budget_s,
            'total_s': time.perf_counter() - start,
            'settings': {k: v for k, v in cfg.items() if k != 'vit_kwargs'}, 'train_batch': args.train_batch,
            'losses': losses, 'training': training, 'data': loading, 'skipped': budget.skipped}
    lines = markdown(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'gpu.json').write_text(json.dumps(data, indent=2) + '\n')
    (out / 'gpu.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
