"""Generate the options files of every experiment of the paper from one source.

    python scripts/make_options.py [--out ROOT] [--check]

Each options file is the composition of small fragments: the common BasicSR settings, a network
(architecture and its official training recipe), a data setting (DPDD dual-pixel, DPDD single-image,
GoPro), a loss setting (baseline, vgg, local, global) and, for the ablations, one change of the ViT
loss. A common setting is changed once here and the files are regenerated; tests/test_scripts/test_options.py
fails when the committed files differ from what this script writes. ``--check`` only compares.

Each file's header also says which of its keys and ``type:`` names need basicsr-vitloss and what stock BasicSR
does without it (``basicsr_vitloss.utils.plugin_keys``: ignore the key silently, fail at the type).

The same run rewrites the generated part of docs/reproduce.md (between its REPRODUCE_BEGIN and
REPRODUCE_END markers): the three commands of a row and the table of experiments, options files and
the paper's numbers; ``--check`` reports it when it is out of date. A network name that is not one of
NETWORK_NAMES (in GRIDS, PAPER, HEADLINE, TINY_NETWORK, RECIPES, or given to network_g) is refused with
the known names and the closest one.

What is not in the paper (it states "the same optimizer and fixed epochs for all comparisons" and a
24 GB RTX 3090 with reduced batch sizes, without values) comes from each network's official recipe:
Restormer's DPDD and GoPro options, NAFNet's GoPro width-64 options, Uformer's GoPro training script,
DPDNet's Keras configuration. Each file's header says which, and what the paper reports for it.
"""
import argparse
import copy
import difflib
import os
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # this checkout's package, also when run as a file

GRIDS = {  # name -> (data, input mode, networks, paper table)
    'dpdd_dual': ('dpdd', 'dual_pixel', ('dpdnet', 'uformer', 'restormer', 'nafnet'), 'Table I'),
    'dpdd_single': ('dpdd', 'single', ('dpdnet', 'uformer', 'restormer', 'nafnet'), 'Table II'),
    'gopro': ('gopro', 'single', ('mprnet', 'uformer', 'restormer', 'nafnet'), 'Table III'),
    'gopro_equal_budget': ('gopro', 'single', ('mprnet', 'uformer', 'restormer', 'nafnet'), 'Table III'),
}
#: the training budget of each grid: 'official' = each network's official recipe; 'equal' = the paper's protocol
#: (Sec. IV-A2: one optimizer, a fixed number of epochs for all networks, batches cut to fit one 24 GB GPU) with
#: this generator's values for what the paper leaves out (EQUAL_BUDGET)
BUDGETS = {'dpdd_dual': 'official', 'dpdd_single': 'official', 'gopro': 'official', 'gopro_equal_budget': 'equal'}
#: the paper's numbers of a grid (the equal-budget grid reproduces Table III's rows)
PAPER_GRID = {'gopro_equal_budget': 'gopro'}
LOSSES = ('baseline', 'vgg', 'local', 'global')
NETWORK_NAMES = {'dpdnet': 'DPDNet', 'mprnet': 'MPRNet', 'uformer': 'Uformer', 'restormer': 'Restormer',
                 'nafnet': 'NAFNet'}
LOSS_NAMES = {'baseline': '-', 'vgg': '+vgg', 'local': '+local', 'global': '+global'}
#: the paper's ablations (Tables IV, V, Fig. 8): DPDNet + local loss on dual-pixel DPDD, one change each
ABLATIONS = {'backbone': ('mae', 'dino', 'vit'), 'feature': ('token', 'query', 'key', 'value'),
             'layers': (1, 2, 4, 5, 6, 8, 10, 12), 'mask_ratio': (0, 0.25, 0.5, 0.75)}
ABLATION_TABLES = {'backbone': 'Table IV', 'feature': 'Table V', 'layers': 'Fig. 8 (layer)',
                   'mask_ratio': 'Fig. 8 (mask ratio)'}
#: the authors' public code (erfect2020/TransformerPerceptualLoss) as options of the ablation network:
#: name -> (loss, ViT-loss changes, what the code does)
AUTHORS_CODE = {
    'local': ({'layers': [1, 2, 3, 4, 5, 6], 'loss_weight': 0.1},
              'loss/deblur_loss.py: L1 (mean) of blocks 1..6 summed, times 0.1, CLS included, no final norm'),
    'global': ({'layers': [1, 2, 3, 4, 5, 6], 'loss_weight': 1.0e-4, 'reduction': 'batch'},
               'loss/pdl.py (commented out there): per token position sqrt of the MSE of the sorted channels '
               'pooled over the batch, summed over tokens and blocks 1..6, times 1e-4'),
}

#: the file users are told to run first
HEADLINE = ('restormer_dpdd_local.yml', 'dpdd_dual', 'restormer', 'local')

#: what the paper reports (Tables I-V), in the package so that ``evaluate merge --paper`` can use them too
from basicsr_vitloss.data.gopro_files import GOPRO_TOTALS  # noqa: E402
from basicsr_vitloss.evaluation.paper_tables import PAPER, PAPER_ABLATIONS, PAPER_METRICS  # noqa: E402

# ------------------------------------------------------------------------------------------ fragments

COMMON = {
    'model_type': 'ProgressiveSRModel',  # BasicSR's SRModel + progressive patches, mixup, gradient clipping
    'scale': 1,
    'num_gpu': 'auto',
    'manual_seed': 10,
}
PATH = {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}
LOGGER = {'print_freq': 200, 'save_checkpoint_freq': 5000, 'use_tb_logger': True,
          'wandb': {'project': None, 'resume_id': None}}
DIST = {'backend': 'nccl', 'port': 29500}
#: validation during training is tiled for speed (approximate for Restormer / Uformer, whose attention
#: spans the image); test files restore whole images, as the official DPDD and GoPro tests do
TILE = {'size': 512, 'overlap': 32}
VAL_METRICS = {  # during training: the cheap ones, on floats
    'psnr': {'type': 'calculate_psnr_float'},
    'ssim': {'type': 'calculate_ssim_float'},
    'mae': {'type': 'calculate_mae', 'better': 'lower'},
}
NO_REFERENCE_METRICS = {
    'lpips': {'type': 'calculate_lpips', 'net': 'alex', 'better': 'lower'},
    'niqe': {'type': 'calculate_niqe', 'crop_border': 0, 'better': 'lower'},
}
#: DPDD (Tabs. I, II): on floats of the 16-bit images, as Restormer's DPDD evaluation
TEST_METRICS = dict(VAL_METRICS, **NO_REFERENCE_METRICS)
#: GoPro / HIDE (Tab. III): the MATLAB evaluation (evaluate_GOPRO_HIDE.m) on 8-bit RGB: psnr and 3-D ssim
TEST_METRICS_MOTION = {
    'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
    'ssim': {'type': 'calculate_ssim_matlab', 'crop_border': 0},
    **NO_REFERENCE_METRICS,
}
#: the paper's single-image DPDD input: "the average of the two views" (Sec. IV-A1)
SINGLE_INPUT = 'average'
#: the plugin's default: a horizontal flip exchanges the left and right views (Restormer's code does not)
SWAP_VIEWS_ON_HFLIP = True
VIT = {'backbone': 'mae', 'pretrained': True, 'layers': 5, 'feature': 'token', 'mask_ratio': 0.5}
LOSS_TERMS = {
    'baseline': None,
    # not given in the paper: conv5_4 (before pool5, the layer of Zhang et al. the paper cites), weight 1
    'vgg': {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1.0}, 'vgg_type': 'vgg19',
            'use_input_norm': True, 'range_norm': False, 'perceptual_weight': 1.0, 'style_weight': 0.0,
            'criterion': 'l1'},
    'local': dict({'type': 'LocalMAEPerceptualLoss', 'loss_weight': 1.0}, **VIT),  # Eq. 5, lambda = 1
    'global': dict({'type': 'GlobalDistributionLoss', 'loss_weight': 1.0e-5}, **VIT, p=2),  # Eqs. 6-7, 1e-5
}

def check_network(net, where='network'):
    """``net`` if it is a known network name, else a ValueError listing the known ones (and the closest)."""
    if net in NETWORK_NAMES:
        return net
    close = difflib.get_close_matches(str(net), list(NETWORK_NAMES), n=1)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    raise ValueError(f'{where}: unknown network {net!r}; known networks: {", ".join(NETWORK_NAMES)}.{hint}')


def paper_grid(grid):
    """The grid whose rows of the paper ``grid`` reproduces (the equal-budget grid: Table III's)."""
    return PAPER_GRID.get(grid, grid)


def check_networks():
    """Every network name in the generator's tables is known, and every known one has a recipe and a tiny size."""
    for grid, (_, _, networks, _) in GRIDS.items():
        for net in networks:
            check_network(net, f'GRIDS[{grid!r}]')
        for net, _ in PAPER[paper_grid(grid)]:
            check_network(net, f'PAPER[{grid!r}]')
    check_network(HEADLINE[2], 'HEADLINE')
    for table, names in (('TINY_NETWORK', TINY_NETWORK), ('RECIPES', RECIPES)):
        for net in names:
            check_network(net, table)
        missing = sorted(set(NETWORK_NAMES) - set(names))
        if missing:
            raise ValueError(f'{table} has no entry for {", ".join(missing)}')


#: The network of every row of Tables I-V, as the paper names it: net -> (variant built, the paper's words or None
#: when the paper does not say). Sec. IV-A3: "DPDNet [4], Uformer-T (abbreviated Uformer in the following
#: sections) [5], Restormer [6], and NAFNet [7]" for Tables I, II (and DPDNet for the ablations, Tables IV, V);
#: Sec. IV-B adds MPRNet [51] for Table III. Restormer, DPDNet and MPRNet have one published size; NAFNet's width is
#: not stated. tests/test_scripts/test_options.py checks the words against the paper and every file against this.
PAPER_NETWORKS = {
    'dpdnet': ('DPDNet', 'DPDNet [4]'),
    'uformer': ('T', 'Uformer-T (abbreviated Uformer in the following sections) [5]'),
    'restormer': ('Restormer', 'Restormer [6]'),
    'mprnet': ('MPRNet', 'MPRNet [51]'),
    # not stated; width 32 because the paper's NAFNet GoPro baseline (32.40 dB) is below even width 32's published
    # 32.87 dB, width 32 is the GoPro recipe NAFNet lists first, and it leaves a 24 GB GPU room for a larger batch
    'nafnet': ('width32', None),
}
#: named sizes of the networks that have several (official configurations); ``--variant uformer=B`` selects one
VARIANTS = {
    'uformer': {'T': {'embed_dim': 16, 'depths': [2, 2, 2, 2, 2, 2, 2, 2, 2]},  # Uformer_T of the official model.py
                'S': {'embed_dim': 32, 'depths': [2, 2, 2, 2, 2, 2, 2, 2, 2]},
                'B': {'embed_dim': 32, 'depths': [1, 2, 8, 8, 2, 8, 8, 2, 1]}},  # the official GoPro training
    'nafnet': {'width32': {'width': 32}, 'width64': {'width': 64}},  # NAFNet-width32.yml / -width64.yml (GoPro)
}
#: the variant each network is built with (PAPER_NETWORKS; make_options.py --variant changes it for one run)
CHOSEN_VARIANTS = {net: variant for net, (variant, _) in PAPER_NETWORKS.items() if net in VARIANTS}


def variant_name(net, variant=None):
    """'Uformer-T', 'NAFNet width 32', or the network's name when it has one size."""
    variant = variant or CHOSEN_VARIANTS.get(net)
    if net == 'uformer':
        return f'Uformer-{variant}'
    if net == 'nafnet':
        return f'NAFNet width {variant[len("width"):]}'
    return NETWORK_NAMES[net]


def network_g(net, in_channels, data=None, variant=None):
    """The network_g options of ``net`` (a NETWORK_NAMES key) for ``in_channels`` input channels, in its
    ``variant`` (default: CHOSEN_VARIANTS, the paper's)."""
    check_network(net, 'network_g')
    if net in VARIANTS:
        variant = variant or CHOSEN_VARIANTS[net]
        if variant not in VARIANTS[net]:
            raise ValueError(f'network_g: unknown {NETWORK_NAMES[net]} variant {variant!r}; known: '
                             f'{", ".join(VARIANTS[net])}')
    if net == 'dpdnet':
        return {'type': 'DPDNet', 'in_channels': in_channels, 'out_channels': 3}
    if net == 'uformer':
        return {'type': 'Uformer', 'img_size': 256, **VARIANTS[net][variant], 'win_size': 8,
                'token_projection': 'linear', 'token_mlp': 'leff', 'modulator': True, 'dd_in': in_channels}
    if net == 'mprnet':  # the official GoPro model (constructor defaults)
        return {'type': 'MPRNet', 'in_c': in_channels, 'out_c': 3, 'n_feat': 96, 'scale_unetfeats': 48,
                'scale_orsnetfeats': 32, 'num_cab': 8, 'kernel_size': 3, 'reduction': 4, 'bias': False}
    if net == 'restormer':
        return {'type': 'Restormer', 'inp_channels': in_channels, 'out_channels': 3, 'dim': 48,
                'num_blocks': [4, 6, 6, 8], 'num_refinement_blocks': 4, 'heads': [1, 2, 4, 8],
                'ffn_expansion_factor': 2.66, 'bias': False, 'LayerNorm_type': 'WithBias',
                'dual_pixel_task': in_channels == 6}
    assert net == 'nafnet', net  # every name check_network accepts has its branch above
    return {'type': 'NAFNetLocal', 'img_channel': in_channels, 'out_channels': 3, **VARIANTS[net][variant],
            'enc_blk_nums': [1, 1, 1, 28], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1, 1]}


#: tiny versions of each network for tests (tests/test_scripts/test_options.py applies them as overrides)
TINY_NETWORK = {
    'dpdnet': {'base_channels': 4},
    'mprnet': {'n_feat': 8, 'scale_unetfeats': 4, 'scale_orsnetfeats': 4, 'num_cab': 1},
    'uformer': {'embed_dim': 8, 'depths': [1] * 9, 'img_size': 64},
    'restormer': {'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1, 'heads': [1, 1, 1, 1]},
    'nafnet': {'width': 8, 'enc_blk_nums': [1, 1, 1, 1], 'dec_blk_nums': [1, 1, 1, 1]},
}

# DPDD training patches from scripts/prepare_dpdd.py (official rule): 350 scenes x (28 - 8 dropped) = 7000
DPDD_TRAIN_PATCHES = 7000
GOPRO_TRAIN_IMAGES = GOPRO_TOTALS['train']  # 2103 (basicsr_vitloss.data.gopro_files: the release's counts)
#: iterations an epoch of GoPro train in MPRNet's and Uformer's scripts: their DataLoader keeps the last,
#: incomplete batch (drop_last=False), so ceil(2103 / batch): 132 at MPRNet's 16, 263 at Uformer's 8
MPRNET_EPOCH = -(-GOPRO_TRAIN_IMAGES // 16)
UFORMER_EPOCH = -(-GOPRO_TRAIN_IMAGES // 8)

RECIPES = {
    'mprnet': {
        'source': ("MPRNet's official Deblurring recipe (training.yml / train.py: batch 16, 256 patches, Adam 2e-4, "
                   f'3 warm-up epochs then cosine to 1e-6 over 3000 epochs of ceil({GOPRO_TRAIN_IMAGES} / 16) = '
                   f'{MPRNET_EPOCH} iterations (its loader keeps the last incomplete batch); Charbonnier + 0.05 x '
                   'edge loss on every stage)'),
        'model_type': 'MultiStageModel',
        # 4 GPUs under DataParallel: one process with batch 16 in total, BasicSR's batch_size_per_gpu 16 x 1
        'gpus': 1, 'gpus_note': "the official run split batch 16 over 4 GPUs with DataParallel, one process: in "
                                "BasicSR terms batch_size_per_gpu 16 x 1",
        'data': {'gt_size': 256, 'batch_size_per_gpu': 16, 'num_worker_per_gpu': 8},
        'augment': 'all',
        'train': {'total_iter': 3000 * MPRNET_EPOCH, 'warmup_iter': 3 * MPRNET_EPOCH,
                  'use_grad_clip': False,
                  'optim_g': {'type': 'Adam', 'lr': 2.0e-4, 'weight_decay': 0, 'betas': [0.9, 0.999], 'eps': 1.0e-8},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [3000 * MPRNET_EPOCH],
                                'restart_weights': [1], 'eta_min': 1.0e-6},
                  # MPRNet: sqrt(d^2 + (1e-3)^2); BasicSR adds eps unsquared, so eps = 1e-6
                  'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean', 'eps': 1.0e-6},
                  'edge_opt': {'type': 'EdgeLoss', 'loss_weight': 0.05, 'eps': 1.0e-3, 'reduction': 'mean'}},
    },
    'restormer': {
        'source': "Restormer's official options (Defocus_Deblurring / Motion_Deblurring, 8 GPUs)",
        'gpus': 8, 'gpus_note': 'the official options train with 8 GPU processes',
        'data': {'gt_size': 384, 'batch_size_per_gpu': 8, 'num_worker_per_gpu': 8,
                 'iters': [92000, 64000, 48000, 36000, 36000, 24000],
                 'gt_sizes': [128, 160, 192, 256, 320, 384], 'mini_batch_sizes': [8, 5, 4, 2, 1, 1]},
        'augment': 'all',
        'train': {'total_iter': 300000, 'warmup_iter': -1, 'use_grad_clip': True,
                  'optim_g': {'type': 'AdamW', 'lr': 3.0e-4, 'weight_decay': 1.0e-4, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'CosineAnnealingRestartCyclicLR', 'periods': [92000, 208000],
                                'restart_weights': [1, 1], 'eta_mins': [3.0e-4, 1.0e-6]},
                  'mixing_augs': {'mixup': False, 'mixup_beta': 1.2, 'use_identity': True},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
    },
    'nafnet': {
        'source': "NAFNet's official GoPro width-32 options (NAFNet-width32.yml, 8 GPUs; NAFNet has no DPDD recipe)",
        'gpus': 8, 'gpus_note': 'the official options train with 8 GPU processes',
        'data': {'gt_size': 256, 'batch_size_per_gpu': 4, 'num_worker_per_gpu': 4},
        'augment': 'all',
        'train': {'total_iter': 200000, 'warmup_iter': -1, 'use_grad_clip': True,
                  'optim_g': {'type': 'AdamW', 'lr': 1.0e-3, 'weight_decay': 0, 'betas': [0.9, 0.9]},
                  'scheduler': {'type': 'TrueCosineAnnealingLR', 'T_max': 200000, 'eta_min': 1.0e-7},
                  'pixel_opt': {'type': 'PSNRLoss', 'loss_weight': 1.0, 'reduction': 'mean'}},
    },
    'uformer': {
        'source': ("Uformer's official GoPro training script (train_motiondeblur.sh: Uformer-B, batch 8, 3000 epochs "
                   f'of ceil({GOPRO_TRAIN_IMAGES} / 8) = {UFORMER_EPOCH} iterations (its loader keeps the last '
                   'incomplete batch), 3 warm-up '
                   'epochs; Uformer has no DPDD recipe)'),
        'gpus': 1, 'gpus_note': "the script's batch 8 is the whole batch, split over 2 GPUs by DataParallel",
        'data': {'gt_size': 256, 'batch_size_per_gpu': 8, 'num_worker_per_gpu': 4},
        'augment': 'all',
        'train': {'total_iter': 3000 * UFORMER_EPOCH, 'warmup_iter': 3 * UFORMER_EPOCH, 'use_grad_clip': False,
                  'optim_g': {'type': 'AdamW', 'lr': 2.0e-4, 'weight_decay': 0.02, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [3000 * UFORMER_EPOCH],
                                'restart_weights': [1], 'eta_min': 1.0e-6},
                  # Uformer: sqrt(d^2 + (1e-3)^2); BasicSR adds eps unsquared, so eps = 1e-6
                  'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean', 'eps': 1.0e-6}},
    },
    'dpdnet': {
        'source': ("DPDNet's official configuration (Keras: batch 5 of 512x512, MSE, Adam 2e-5 halved every 60 "
                   f'epochs, 200 epochs of {DPDD_TRAIN_PATCHES} // 5 = {DPDD_TRAIN_PATCHES // 5} iterations)'),
        'gpus': 1, 'gpus_note': 'the official configuration trains on one GPU',
        'data': {'gt_size': 512, 'batch_size_per_gpu': 5, 'num_worker_per_gpu': 4},
        'augment': 'none',
        'train': {'total_iter': 200 * (DPDD_TRAIN_PATCHES // 5), 'warmup_iter': -1, 'use_grad_clip': False,
                  'optim_g': {'type': 'Adam', 'lr': 2.0e-5, 'weight_decay': 0, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'MultiStepLR', 'gamma': 0.5,
                                'milestones': [e * (DPDD_TRAIN_PATCHES // 5) for e in (60, 120, 180)]},
                  'pixel_opt': {'type': 'MSELoss', 'loss_weight': 1.0, 'reduction': 'mean'}},
    },
}
#: NAFNet's GoPro width-64 options (NAFNet-width64.yml), for --variant nafnet=width64
NAFNET_WIDTH64_RECIPE = {
    'source': "NAFNet's official GoPro width-64 options (NAFNet-width64.yml, 8 GPUs; NAFNet has no DPDD recipe)",
    'gpus': 8, 'gpus_note': 'the official options train with 8 GPU processes',
    'data': {'gt_size': 256, 'batch_size_per_gpu': 8, 'num_worker_per_gpu': 8},
    'augment': 'all',
    'train': {'total_iter': 400000, 'warmup_iter': -1, 'use_grad_clip': True,
              'optim_g': {'type': 'AdamW', 'lr': 1.0e-3, 'weight_decay': 1.0e-3, 'betas': [0.9, 0.9]},
              'scheduler': {'type': 'TrueCosineAnnealingLR', 'T_max': 400000, 'eta_min': 1.0e-7},
              'pixel_opt': {'type': 'PSNRLoss', 'loss_weight': 1.0, 'reduction': 'mean'}},
}


def recipe(net):
    """The official recipe of ``net`` in its chosen variant (NAFNet: width 32 or 64)."""
    if net == 'nafnet' and CHOSEN_VARIANTS['nafnet'] == 'width64':
        return NAFNET_WIDTH64_RECIPE
    return RECIPES[net]


GPU_NOTE = ('batch_size_per_gpu as in the official recipe; the paper trained on one 24 GB RTX 3090 and '
            'reduced some batch sizes (values not given)')


def common(net, grid=None):
    """COMMON plus the recipe's own GPU count, `recipe_gpus`, right after `num_gpu` (1 in the equal-budget grid,
    whose batches fit one GPU): BasicSR ignores the key; scripts/scale_recipe.py reads it (effective batch =
    batch_size_per_gpu x recipe_gpus)."""
    opt = {}
    for key, value in copy.deepcopy(COMMON).items():
        opt[key] = value
        if key == 'num_gpu':
            opt['recipe_gpus'] = 1 if grid and BUDGETS[grid] == 'equal' else recipe(net)['gpus']
    return opt


def gpu_line(net):
    """The header line that says what `recipe_gpus` records."""
    used = recipe(net)
    gpus, data = used['gpus'], used['data']
    per_gpu = data.get('mini_batch_sizes') or [data['batch_size_per_gpu']]
    effective = [b * gpus for b in per_gpu]
    batch = (f'per stage {per_gpu} x {gpus} = {effective}' if len(per_gpu) > 1
             else f'{per_gpu[0]} x {gpus} = {effective[0]}')
    return (f'# GPUs: recipe_gpus: {gpus} records the recipe\'s GPU processes ({used["gpus_note"]}); effective batch '
            f'(batch per GPU x GPUs) {batch}. BasicSR ignores the key; scripts/scale_recipe.py --gpus N fits the '
            'file to N GPUs.')


def augmentation(kind):
    on = kind == 'all'
    return {'use_hflip': on, 'use_rot': on}


def dpdd_input(mode):
    """The DPDD dataset keys that choose the input (single-image: the paper's average of the views)."""
    return {'mode': mode, **({'single_input': SINGLE_INPUT} if mode == 'single' else {})}


def train_dataset(data, mode, recipe):
    if data == 'dpdd':
        views = ('L', 'R') if mode == 'dual_pixel' or SINGLE_INPUT == 'average' else ('C',)
        folders = {f'dataroot_lq{v}': f'datasets/DPDD_crops/train/input{v}_crops' for v in views}
        dataset = {'name': 'DPDD_train', 'type': 'DPDDDataset', **dpdd_input(mode), **folders,
                   'dataroot_gt': 'datasets/DPDD_crops/train/target_crops', 'pairing': 'auto',
                   'swap_views_on_hflip': SWAP_VIEWS_ON_HFLIP}
    else:
        dataset = {'name': 'GoPro_train', 'type': 'PairedImageDataset',
                   'dataroot_gt': 'datasets/GoPro/train/target_crops',
                   'dataroot_lq': 'datasets/GoPro/train/input_crops',
                   'filename_tmpl': '{}'}
    dataset.update({'io_backend': {'type': 'disk'}, **augmentation(recipe['augment']), 'use_shuffle': True,
                    **recipe['data'], 'dataset_enlarge_ratio': 1, 'prefetch_mode': None})
    return dataset


def eval_dataset(data, mode, split):
    """Validation / test data: whole images of the release (targets paired by checked position)."""
    if data == 'dpdd':
        return {'name': f'DPDD_{split}', 'type': 'DPDDDataset', **dpdd_input(mode), 'dataroot': 'datasets/DPDD',
                'split': split, 'pairing': 'auto', 'io_backend': {'type': 'disk'}}
    name = 'GoPro' if split in ('val', 'test') else 'HIDE'
    root = 'datasets/GoPro/test' if name == 'GoPro' else 'datasets/HIDE/test'
    return {'name': f'{name}_test', 'type': 'PairedImageDataset', 'dataroot_gt': f'{root}/target',
            'dataroot_lq': f'{root}/input', 'filename_tmpl': '{}', 'io_backend': {'type': 'disk'}}


def model_type(net):
    """The recipe's own model_type where COMMON's does not do (MPRNet: losses on every stage)."""
    return {'model_type': recipe(net)['model_type']} if 'model_type' in recipe(net) else {}


# ------------------------------------------------------------------------------------------ budgets

#: The equal-budget grid's choices (the paper gives none of these values): one optimizer and one epoch count for
#: all four networks, 256x256 patches from the full training images (an epoch is the 2103 images), each network's
#: own pixel loss (the paper: "keep other losses the same as the settings of original papers"), cosine decay to
#: 1e-6 over the run, and the largest batch that scripts/memory_model.py estimates to fit one 24 GiB GPU for every
#: loss row of that network. make_options.py --epochs / --optimizer change the first two.
EQUAL_BUDGET = {'epochs': 300, 'optimizer': 'adamw', 'patch': 256, 'gpu_memory_gib': 24, 'eta_min': 1.0e-6}
OPTIMIZERS = {
    'adamw': {'type': 'AdamW', 'lr': 2.0e-4, 'weight_decay': 1.0e-4, 'betas': [0.9, 0.999]},
    'adam': {'type': 'Adam', 'lr': 2.0e-4, 'weight_decay': 0, 'betas': [0.9, 0.999]},
}
#: scripts/memory_model.py's fit at EQUAL_BUDGET's patch and GPU memory, for the paper's network sizes:
#: net -> (batch, estimated GiB of the row that needs most at that batch, that row). tests/test_scripts/
#: test_options.py recomputes one; rerun `python scripts/memory_model.py --opt ...` after changing a network.
EQUAL_BUDGET_BATCH = {'mprnet': (3, 22.5, 'vgg'), 'uformer': (13, 23.9, 'vgg'), 'restormer': (1, 17.0, 'vgg'),
                      'nafnet': (16, 23.5, 'vgg')}
#: each architecture's own published numbers, which its official recipe aims at: (net, variant or None, grid) ->
#: (numbers, source)
PUBLISHED = {
    ('mprnet', None, 'gopro'): ('GoPro PSNR / SSIM 32.66 / 0.959, HIDE 30.96 / 0.939', 'MPRNet, CVPR 2021, Table 2'),
    ('restormer', None, 'gopro'): ('GoPro PSNR / SSIM 32.92 / 0.961, HIDE 31.22 / 0.942',
                                   'Restormer, CVPR 2022, Table 2'),
    ('nafnet', 'width32', 'gopro'): ('GoPro PSNR / SSIM 32.87 / 0.9606', "NAFNet's README, NAFNet-GoPro-width32"),
    ('nafnet', 'width64', 'gopro'): ('GoPro PSNR / SSIM 33.71 / 0.9668', "NAFNet's README, NAFNet-GoPro-width64"),
    ('uformer', 'B', 'gopro'): ('GoPro PSNR / SSIM 32.97 / 0.967, HIDE 30.83 / 0.952', 'Uformer, CVPR 2022, Table 2'),
    ('restormer', None, 'dpdd_dual'): ('Combined PSNR / SSIM / MAE / LPIPS 26.66 / 0.833 / 0.035 / 0.155',
                                       'Restormer, CVPR 2022, Table 4'),
    ('restormer', None, 'dpdd_single'): ('Combined PSNR / SSIM / MAE / LPIPS 25.98 / 0.811 / 0.038 / 0.178',
                                         'Restormer, CVPR 2022, Table 4'),
    ('dpdnet', None, 'dpdd_dual'): ('Combined PSNR / SSIM / MAE 25.13 / 0.786 / 0.041', 'DPDNet, ECCV 2020, Table 2'),
    ('dpdnet', None, 'dpdd_single'): ('Combined PSNR / SSIM / MAE 24.34 / 0.747 / 0.044',
                                      'DPDNet, ECCV 2020, Table 2 (DPDNet-Single)'),
}


def published(net, grid):
    """(numbers, source) of the architecture's own paper for this network size and data, or None."""
    return PUBLISHED.get((net, CHOSEN_VARIANTS.get(net), grid))


def equal_budget(net):
    """(batch, iterations, epochs) of ``net`` in the equal-budget grid: BasicSR's training loader drops the last
    incomplete batch, so an epoch of the 2103 images is 2103 // batch iterations."""
    batch = EQUAL_BUDGET_BATCH[net][0]
    return batch, EQUAL_BUDGET['epochs'] * (GOPRO_TRAIN_IMAGES // batch), EQUAL_BUDGET['epochs']


def recipe_samples(net):
    """Training samples (iterations x effective batch) of ``net``'s official recipe."""
    used = recipe(net)
    data, total = used['data'], used['train']['total_iter']
    if 'iters' in data:  # progressive: each stage's iterations at its own batch
        return sum(i * b * used['gpus'] for i, b in zip(data['iters'], data['mini_batch_sizes']))
    return total * data['batch_size_per_gpu'] * used['gpus']


def equal_budget_train(net, train, dataset):
    """Turns an official recipe's train section and training dataset into the equal-budget grid's (in place)."""
    batch, iterations, _ = equal_budget(net)
    for key in ('iters', 'gt_sizes', 'mini_batch_sizes'):
        dataset.pop(key, None)
    dataset.update({'dataroot_gt': 'datasets/GoPro/train/target', 'dataroot_lq': 'datasets/GoPro/train/input',
                    'gt_size': EQUAL_BUDGET['patch'], 'batch_size_per_gpu': batch, **augmentation('all')})
    train.pop('mixing_augs', None)
    train.update({'total_iter': iterations, 'warmup_iter': -1,
                  'optim_g': copy.deepcopy(OPTIMIZERS[EQUAL_BUDGET['optimizer']]),
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iterations], 'restart_weights': [1],
                                'eta_min': EQUAL_BUDGET['eta_min']}})


def train_options(grid, net, loss, name=None, vit_change=None):
    """The training options of one experiment as a dict."""
    data, mode, _, _ = GRIDS[grid]
    used = recipe(net)
    in_channels = 6 if mode == 'dual_pixel' else 3
    train = copy.deepcopy(used['train'])
    train['ema_decay'] = 0
    term = copy.deepcopy(LOSS_TERMS[loss])
    if term is not None:
        if vit_change:
            term.update(vit_change)
        train['perceptual_opt'] = term
    dataset = train_dataset(data, mode, used)
    opt = {'name': name or f'{grid}_{net}_{loss}', **common(net, grid), **model_type(net),
           'datasets': {'train': dataset, 'val': eval_dataset(data, mode, 'val')},
           'network_g': network_g(net, in_channels, data), 'path': dict(PATH), 'train': train,
           'val': {'val_freq': 20000, 'save_img': False, 'tile': dict(TILE), 'metrics': copy.deepcopy(VAL_METRICS)},
           'logger': copy.deepcopy(LOGGER), 'dist_params': dict(DIST)}
    if BUDGETS[grid] == 'equal':
        equal_budget_train(net, train, dataset)
    return opt


def test_options(grid, net, loss):
    """The test options of one experiment: its latest checkpoint on the test set(s), whole images, all
    five metrics (Table III's MATLAB variants for GoPro / HIDE), 16-bit DPDD results for evaluate.py."""
    data, mode, _, _ = GRIDS[grid]
    in_channels = 6 if mode == 'dual_pixel' else 3
    datasets = ({'test_1': eval_dataset(data, mode, 'test')} if data == 'dpdd'
                else {'test_1': eval_dataset(data, mode, 'test'), 'test_2': eval_dataset(data, mode, 'hide')})
    return {'name': f'test_{grid}_{net}_{loss}', **common(net, grid), **model_type(net), 'datasets': datasets,
            'network_g': network_g(net, in_channels, data),
            'path': {'pretrain_network_g': f'experiments/{grid}_{net}_{loss}/models/net_g_latest.pth',
                     'param_key_g': 'params', 'strict_load_g': True},
            'val': {'save_img': True, 'save_16bit': data == 'dpdd', 'suffix': None,
                    'metrics': copy.deepcopy(TEST_METRICS if data == 'dpdd' else TEST_METRICS_MOTION)},
            'dist_params': dict(DIST)}


def _fmt(values):
    return ' / '.join(f'{v:g}' for v in values)


def _signed(value, metric):
    decimals = {'psnr': 2, 'ssim': 4, 'mae': 4, 'lpips': 4, 'niqe': 4}[metric]
    return f'{value:+.{decimals}f}'


def paper_change(grid, net, loss):
    """The paper's change of row (net, loss) over the network's baseline row, as text."""
    grid = paper_grid(grid)
    row, base = PAPER[grid][(net, loss)], PAPER[grid][(net, 'baseline')]
    parts = [f'{m.upper()} {_signed(a - b, m)}' for a, b, m in zip(row, base, PAPER_METRICS[grid])]
    if GRIDS[grid][0] == 'dpdd':
        return 'Combined ' + ', '.join(parts)
    return 'GoPro ' + ', '.join(parts[:4]) + '; HIDE ' + ', '.join(parts[4:])


def budget_lines(grid, net, loss):
    """The header lines that say which training budget the file uses and what to expect from it."""
    data, _, _, table = GRIDS[grid]
    name = variant_name(net)
    if loss == 'baseline':
        claim = (f"{table}'s claim is the change of the +vgg / +local / +global rows over this row, not its absolute "
                 'values')
    else:
        claim = f"{table}'s claim for this row is its change over the baseline row: {paper_change(grid, net, loss)}"
    if BUDGETS[grid] == 'equal':
        batch, iterations, epochs = equal_budget(net)
        optim = OPTIMIZERS[EQUAL_BUDGET['optimizer']]
        row_gib, row = EQUAL_BUDGET_BATCH[net][1:]
        ours, theirs = iterations * batch, recipe_samples(net)
        return [
            f"# Budget: equal for the four networks, the paper's protocol (Sec. IV-A2: the same optimizer and a fixed "
            f'number of epochs for all, batches cut to fit one 24 GB RTX 3090); the paper gives no values, these are '
            f"this grid's: {optim['type']} lr {optim['lr']:g} (weight decay {optim['weight_decay']:g}, betas "
            f"{optim['betas']}), cosine to {EQUAL_BUDGET['eta_min']:g}, no warm-up, {epochs} epochs of the "
            f'{GOPRO_TRAIN_IMAGES} training images = {epochs} x ({GOPRO_TRAIN_IMAGES} // {batch}) = {iterations} '
            f"iterations, {EQUAL_BUDGET['patch']}x{EQUAL_BUDGET['patch']} patches, batch {batch}: the largest that "
            f"scripts/memory_model.py estimates to fit {EQUAL_BUDGET['gpu_memory_gib']} GiB for every loss row of "
            f'{name} ({row_gib:g} GiB for the {row} row). make_options.py --epochs N --optimizer adam|adamw '
            'regenerates the grid for another budget.',
            f'# Expect: numbers below the published ones of the architecture, as Table III\'s are: this budget is '
            f'{ours} training samples against the official recipe\'s {theirs}. {claim}; compare that change: '
            f'evaluate.py merge --paper table3 sets it beside the paper\'s.']
    numbers = published(net, grid)
    if numbers:
        expect = (f"# Expect: this file runs {NETWORK_NAMES[net]}'s official recipe, not the paper's budget (one "
                  f'optimizer and fixed epochs for all networks, reduced batches; values not given): expect about '
                  f'{name}\'s published {numbers[0]} ({numbers[1]}), not {table}\'s absolute values')
    elif net == 'uformer' and data == 'gopro':
        base = PUBLISHED[('uformer', 'B', 'gopro')]
        expect = (f"# Expect: this file runs Uformer's official GoPro recipe (written for Uformer-B) on {name}, the "
                  f'paper\'s size; Uformer publishes GoPro numbers for Uformer-B only ({base[0]}, {base[1]}), none '
                  f'for {name}; {table}\'s absolute values come from the paper\'s smaller budget')
    else:
        expect = (f"# Expect: {NETWORK_NAMES[net]} publishes no DPDD training recipe; this file runs its GoPro recipe "
                  f'on DPDD with {variant_name(net)}, so no published number applies to it; {table}\'s absolute '
                  "values come from the paper's own budget")
    return [expect + f'. {claim}; evaluate.py merge --paper sets the two side by side.']


def ablation_budget_line(ablation):
    """The budget line of an ablation file (``ablation``: (key, value), or ('authors_code', loss))."""
    numbers, source = PUBLISHED[('dpdnet', None, 'dpdd_dual')]
    if ablation[0] == 'authors_code':
        reference, claim = (f'options/dpdd_dual/dpdnet_{ablation[1]}.yml',
                            'the paper reports no numbers for the code variant: compare the two runs')
    else:
        reference = 'options/dpdd_dual/dpdnet_local.yml (block 5, tokens, mask 0.5, MAE)'
        claim = f"{ABLATION_TABLES[ablation[0]]}'s claim is the difference between settings, not absolute values"
    return (f"# Expect: DPDNet's official recipe (the budget of {reference}, trained alike), not the paper's budget: "
            f'about DPDNet\'s published {numbers} ({source}) for its baseline, not the paper\'s absolute values; '
            f'{claim}.')


def header(grid, net, loss, kind, ablation=None):
    """The comment block at the top of a file: what it reproduces and how to run it."""
    data, mode, _, table = GRIDS[grid]
    lines = ['# Generated by scripts/make_options.py; edit the generator, not this file.']
    if ablation and ablation[0] == 'authors_code':
        lines += ['# (what the code variant is: written by generate)', '# (its paper setting: written by generate)']
    elif ablation:
        key, value = ablation
        lines.append(f'# Ablation ({ABLATION_TABLES[key]}): DPDNet + local ViT loss on dual-pixel DPDD, '
                     f'{key} = {value}.')
        expected = PAPER_ABLATIONS.get((key, value))
        if expected:
            lines.append(f'# The paper reports (Combined PSNR / SSIM / MAE / LPIPS / NIQE): {_fmt(expected)}')
    else:
        what = {'dpdd_dual': 'dual-pixel defocus deblurring on DPDD', 'dpdd_single':
                'single-image defocus deblurring on DPDD', 'gopro': 'motion deblurring, GoPro (test: GoPro, HIDE)',
                'gopro_equal_budget': 'motion deblurring, GoPro (test: GoPro, HIDE), equal training budget'}
        lines.append(f'# {table}, {variant_name(net)} {LOSS_NAMES[loss]}: {what[grid]}.')
        expected = PAPER[paper_grid(grid)][(net, loss)]
        if data == 'dpdd':
            lines.append(f'# The paper reports (Combined PSNR / SSIM / MAE / LPIPS / NIQE): {_fmt(expected)}')
        else:
            lines.append(f'# The paper reports GoPro PSNR / SSIM / LPIPS / NIQE {_fmt(expected[:4])}, '
                         f'HIDE {_fmt(expected[4:])}')
    if BUDGETS[grid] == 'equal':
        train = recipe(net)['train']
        pixel = train['pixel_opt']['type'] + (f" + {train['edge_opt']['loss_weight']:g} x {train['edge_opt']['type']}"
                                              if 'edge_opt' in train else '')
        lines.append(f'# Network and losses: {variant_name(net)} with the pixel loss of its official recipe ({pixel}), '
                     'as the paper keeps each network\'s own losses; the training budget is not the recipe\'s:')
    else:
        lines.append(f'# Recipe: {recipe(net)["source"]}; {GPU_NOTE}.')
        lines.append(gpu_line(net))
    if not ablation:
        lines += budget_lines(grid, net, loss)
    else:
        lines.append(ablation_budget_line(ablation))
    if data == 'dpdd':
        swap = ('on (swap_views_on_hflip: true, the plugin\'s default; Restormer\'s code keeps the views)'
                if SWAP_VIEWS_ON_HFLIP else 'off (as Restormer\'s code)')
        lines.append(f'# Left/right views on horizontal flips: {swap}; targets pair with sources by checked '
                     f'sorted position (pairing: auto).')
        if mode == 'single':
            lines.append('# Single-image input: single_input: average (the paper: the average of the two views); '
                         "Restormer's recipe reads the combined view (single_input: combined).")
    if kind == 'test':
        lines.append('# Test: whole images, as the official tests. Tiling is opt-in (val: tile: {size: 512, '
                     'overlap: 32}) and changes Restormer\'s and Uformer\'s outputs everywhere (their attention '
                     'spans the image).')
    else:
        lines.append('# Validation during training is tiled (512, overlap 32) for speed: approximate for Restormer '
                     'and Uformer; the test file restores whole images.')
    tiny = ', '.join(f'{key}: {value}' for key, value in TINY_NETWORK[net].items())
    lines.append(f'# Tests build this network tiny with the override network_g: {{{tiny}}}.')
    return '\n'.join(lines) + '\n'


def row_commands(grid, net, loss):
    """The commands of one experiment as argument lists: train, test, then one report per test set."""
    data = GRIDS[grid][0]
    name = f'{grid}_{net}_{loss}'
    runs = [['python', '-m', 'basicsr.train', '-opt', f'options/{grid}/{net}_{loss}.yml'],
            ['python', '-m', 'basicsr.test', '-opt', f'options/test/{grid}/{net}_{loss}.yml']]
    sets = ([('DPDD_test', 'datasets/DPDD/test_c/target', ['--labels', 'datasets/DPDD'], 'DPDD', '')]
            if data == 'dpdd' else [('GoPro_test', 'datasets/GoPro/test/target', [], 'GoPro', '_gopro'),
                                    ('HIDE_test', 'datasets/HIDE/test/target', [], 'HIDE', '_hide')])
    for dataset, gt, labels, short, suffix in sets:
        restored = f'results/test_{name}/visualization/{dataset}'
        runs.append(['python', 'scripts/evaluate.py', 'run', '--restored', restored,
                     '--gt', gt, *labels, '--method', NETWORK_NAMES[net], '--loss', loss, '--dataset', short,
                     '--out', f'reports/{grid}/{net}_{loss}{suffix}'])
    return runs


def merge_command(grid):
    """The command that merges a grid's reports into one table in the layout of the paper's table."""
    table = 'table' + str({'I': 1, 'II': 2, 'III': 3}[GRIDS[grid][3].split()[1]])  # Table II: table2
    out = f'reports/{table}.md' if BUDGETS[grid] == 'official' else f'reports/{table}_{grid}.md'
    return ['python', 'scripts/evaluate.py', 'merge', f'reports/{grid}/*/results.json', '--paper', table,
            '--out', out]


def commands(grid, net, loss, train_file, test_file):
    """The three commands of one experiment, as the header of its options files shows them."""
    train, test, *reports = row_commands(grid, net, loss)
    assert train[-1] == train_file and test[-1] == test_file
    lines = [f'# Train: {" ".join(train)}\n', f'# Test:  {" ".join(test)}\n']
    for report in reports:
        lines.append(f'# Report: {" ".join(report[:5])} \\\n#         {" ".join(report[5:])}\n')
    return ''.join(lines)


# ------------------------------------------------------------------------------------ docs/reproduce.md

DOC = 'docs/reproduce.md'
DOC_BEGIN = '<!-- REPRODUCE_BEGIN: generated by scripts/make_options.py, edit the generator and rerun it -->'
DOC_END = '<!-- REPRODUCE_END -->'
#: decimals of the paper's tables: PSNR 2; SSIM, MAE, LPIPS 4; NIQE 3 in Table I, 4 in Tables II and III
NIQE_DECIMALS = {'dpdd_dual': 3, 'dpdd_single': 4, 'gopro': 4}


def shell(argv, comment='', width=110):
    """One command for a bash block: options with their values kept together, lines continued with \\."""
    words, index = [], 0
    while index < len(argv):
        word = argv[index]
        if word.startswith('--') and index + 1 < len(argv) and not argv[index + 1].startswith('--'):
            word, index = f'{word} {argv[index + 1]}', index + 1
        words.append(word)
        index += 1
    lines, line = [], ''
    for word in words:
        if line and len(line) + 1 + len(word) > width - 2:
            lines.append(line + ' \\')
            line = '    ' + word
        else:
            line = f'{line} {word}' if line else word
    lines.append(line + (f'   # {comment}' if comment else ''))
    return '\n'.join(lines)


def _paper_cell(grid, values):
    grid = paper_grid(grid)
    niqe = NIQE_DECIMALS[grid]
    if GRIDS[grid][0] == 'dpdd':
        psnr, ssim, mae, lpips, niqe_value = values
        return f'{psnr:.2f} / {ssim:.4f} / {mae:.4f} / {lpips:.4f} / {niqe_value:.{niqe}f}'
    return '; '.join(f'{name} {v[0]:.2f} / {v[1]:.4f} / {v[2]:.4f} / {v[3]:.{niqe}f}'
                     for name, v in (('GoPro', values[:4]), ('HIDE', values[4:])))


def _link(path):
    return f'[`{path}`](../{path})'


def doc_part():
    """The generated part of docs/reproduce.md: a row's commands, the experiment table, the ablation table."""
    _, grid, net, loss = HEADLINE
    train, test, *reports = row_commands(grid, net, loss)
    out = [f'**Three commands per row**, here for {GRIDS[grid][3]}, {NETWORK_NAMES[net]} {LOSS_NAMES[loss]}',
           "(every options file's header repeats its own), then one table from all rows of the grid:", '',
           '```bash', shell(train), shell(test, '16-bit results, 5 metrics'), *(shell(r) for r in reports),
           shell(merge_command(grid), f'{GRIDS[grid][3]} layout'), '```', '',
           '| experiment (paper table, network, loss) | options file | paper: Combined PSNR / SSIM / MAE / LPIPS / '
           'NIQE (Table III: GoPro and HIDE PSNR / SSIM / LPIPS / NIQE) |', '|---|---|---|']
    for grid, (_, _, networks, table) in GRIDS.items():
        for net in networks:
            for loss in LOSSES:
                link = _link(f'options/{grid}/{net}_{loss}.yml')
                label = f'{table}{" (equal budget)" if BUDGETS[grid] == "equal" else ""}, {variant_name(net)}'
                out.append(f'| {label} {LOSS_NAMES[loss]} | {link} '
                           f'| {_paper_cell(grid, PAPER[paper_grid(grid)][(net, loss)])} |')
    out += ['', budget_table()]
    out += ['', 'Test options for every row are under `options/test/` (same relative path). Ablations on dual-pixel',
            'DPDD with DPDNet + local loss (one change each from block 5 / tokens / mask 0.5 / MAE), and the',
            "authors' code on the same network:", '',
            '| ablation | options file | paper: Combined PSNR / SSIM / MAE / LPIPS / NIQE |', '|---|---|---|']
    for key, values in ABLATIONS.items():
        for value in values:
            _, path = ablation_name(key, value)
            if (key, value) in PAPER_ABLATIONS:
                paper = _paper_cell('dpdd_dual', PAPER_ABLATIONS[(key, value)])
            elif key in ('backbone', 'feature'):
                paper = 'not recoverable from the paper text here'
            else:
                paper = 'plotted in Fig. 8 only'
            out.append(f'| {ABLATION_TABLES[key]}, {key} = {value} | {_link(path)} | {paper} |')
    for loss, (change, _) in AUTHORS_CODE.items():
        setting = ', '.join(f'{k}: {v}' for k, v in change.items())
        out.append(f"| the authors' code, {loss} loss ({setting}) | "
                   f'{_link(f"options/ablation/dpdnet_authors_code_{loss}.yml")} | none published |')
    return '\n'.join(out) + '\n'


def budget_table():
    """The Table III networks: the paper's baseline, what the official recipe and the equal budget lead to expect."""
    out = ['**What to expect for Table III** (baseline rows; the loss rows are compared by their change over these):',
           '', '| network | paper, Table III baseline (GoPro; HIDE PSNR / SSIM) | official recipe (`options/gopro/`): '
           'expect the published numbers | equal budget (`options/gopro_equal_budget/`) |', '|---|---|---|---|']
    for net in GRIDS['gopro'][2]:
        paper = PAPER['gopro'][(net, 'baseline')]
        numbers = published(net, 'gopro')
        if numbers:
            official = f'{numbers[0]} ({numbers[1]}); recipe: {recipe_samples(net):,} samples'
        else:
            base = PUBLISHED[('uformer', 'B', 'gopro')]
            official = (f'none published for {variant_name(net)} (Uformer-B: {base[0]}, {base[1]}); recipe: '
                        f'{recipe_samples(net):,} samples')
        batch, iterations, epochs = equal_budget(net)
        equal = (f'below the published numbers; batch {batch}, {epochs} epochs = {iterations:,} iterations = '
                 f'{iterations * batch:,} samples')
        out.append(f'| {variant_name(net)} | {paper[0]:.2f} / {paper[1]:.4f}; {paper[4]:.2f} / {paper[5]:.4f} '
                   f'| {official} | {equal} |')
    optim = OPTIMIZERS[EQUAL_BUDGET['optimizer']]
    out += ['', f"Equal budget (the paper's protocol, its values not given; ours): {optim['type']} lr {optim['lr']:g}, "
            f"cosine to {EQUAL_BUDGET['eta_min']:g}, {EQUAL_BUDGET['epochs']} epochs of the {GOPRO_TRAIN_IMAGES} "
            f"training images, {EQUAL_BUDGET['patch']}x{EQUAL_BUDGET['patch']} patches, the largest batch that "
            f"`scripts/memory_model.py` estimates to fit {EQUAL_BUDGET['gpu_memory_gib']} GiB for every loss row. "
            '`python scripts/make_options.py --epochs N --optimizer adam|adamw` regenerates the grid for another '
            'budget.']
    return '\n'.join(out)


def render_doc(current):
    """``current`` (docs/reproduce.md's text) with the part between DOC_BEGIN and DOC_END regenerated."""
    begin, end = current.find(DOC_BEGIN), current.find(DOC_END)
    if begin < 0 or end < begin:
        raise ValueError(f'{DOC} lacks the markers of its generated part: {DOC_BEGIN} ... {DOC_END}')
    return current[:begin + len(DOC_BEGIN)] + '\n' + doc_part() + current[end:]


def plugin_line(opt):
    """The header line naming the keys and types of ``opt`` that need the plugin (this checkout's plugin)."""
    root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    if root not in sys.path:
        sys.path.insert(0, root)
    import basicsr_vitloss  # noqa: F401  (registers the plugin's types: the registries say which are the plugin's)
    from basicsr_vitloss.utils.plugin_keys import summary
    line = summary(opt)
    return f'# {line}\n' if line else ''


def dump(opt):
    return yaml.safe_dump(opt, sort_keys=False, default_flow_style=None, width=110)


def ablation_name(key, value):
    """The experiment name and options file of one ablation (``mask_ratio`` 0.5: ``..._mask_ratio_0p5``)."""
    tag = f'{key}_{value}'.replace('.', 'p')
    return f'ablation_dpdnet_{tag}', f'options/ablation/dpdnet_{tag}.yml'


def generate():
    """{relative path: file text} of every generated options file."""
    check_networks()
    files = {}
    for grid, (_, _, networks, _) in GRIDS.items():
        for net in networks:
            for loss in LOSSES:
                train_file = f'options/{grid}/{net}_{loss}.yml'
                test_file = f'options/test/{grid}/{net}_{loss}.yml'
                head = header(grid, net, loss, 'train')
                runs = commands(grid, net, loss, train_file, test_file)
                train_opt, test_opt = train_options(grid, net, loss), test_options(grid, net, loss)
                files[train_file] = head + runs + plugin_line(train_opt) + dump(train_opt)
                test_head = header(grid, net, loss, 'test')
                files[test_file] = test_head + runs + plugin_line(test_opt) + dump(test_opt)
    headline, grid, net, loss = HEADLINE
    files[f'options/{headline}'] = files[f'options/{grid}/{net}_{loss}.yml']
    for loss, (change, what) in AUTHORS_CODE.items():
        name = f'ablation_dpdnet_authors_code_{loss}'
        path = f'options/ablation/dpdnet_authors_code_{loss}.yml'
        opt = train_options('dpdd_dual', 'dpdnet', loss, name=name, vit_change=change)
        head = header('dpdd_dual', 'dpdnet', loss, 'train', ablation=('authors_code', loss)).split('\n')
        head[1] = (f"# The authors' public code (erfect2020/TransformerPerceptualLoss), {loss} loss on the ablation "
                   f'network (DPDNet, dual-pixel DPDD): {what}.')
        head[2] = (f"# The paper's setting is options/dpdd_dual/dpdnet_{loss}.yml; the paper reports no numbers for "
                   'the code variant.')
        files[path] = ('\n'.join(head) + f'# Train: python -m basicsr.train -opt {path}\n' + plugin_line(opt)
                       + dump(opt))
    for key, values in ABLATIONS.items():
        for value in values:
            name, path = ablation_name(key, value)
            opt = train_options('dpdd_dual', 'dpdnet', 'local', name=name, vit_change={key: value})
            files[path] = (header('dpdd_dual', 'dpdnet', 'local', 'train', ablation=(key, value))
                           + f'# Train: python -m basicsr.train -opt {path}\n' + plugin_line(opt) + dump(opt))
    return files


def parse_variants(items):
    """{'uformer': 'B'} from ['uformer=B']; ValueError naming the item and the known ones."""
    variants = {}
    for item in items:
        net, _, variant = item.partition('=')
        if net not in VARIANTS or variant not in VARIANTS[net]:
            known = '; '.join(f'{n}={"|".join(v)}' for n, v in VARIANTS.items())
            raise ValueError(f'--variant {item!r}: expected NET=VARIANT, one of {known}')
        variants[net] = variant
    return variants


def configure(epochs=None, optimizer=None, variants=None):
    """Sets the equal-budget grid's epochs / optimizer and the networks' sizes for the next generate(); returns
    the previous settings (pass them back to restore)."""
    previous = {'epochs': EQUAL_BUDGET['epochs'], 'optimizer': EQUAL_BUDGET['optimizer'],
                'variants': dict(CHOSEN_VARIANTS)}
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise ValueError(f'optimizer must be one of {", ".join(OPTIMIZERS)}, got {optimizer!r}')
    if epochs is not None:
        EQUAL_BUDGET['epochs'] = int(epochs)
    if optimizer is not None:
        EQUAL_BUDGET['optimizer'] = optimizer
    for net, variant in (variants or {}).items():
        CHOSEN_VARIANTS[net] = variant
    return previous


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'),
                        help='repository root to write options/ into (default: this repository)')
    parser.add_argument('--check', action='store_true', help='only report files that differ; exit 1 if any')
    parser.add_argument('--epochs', type=int, default=EQUAL_BUDGET['epochs'],
                        help=f"epochs of the equal-budget grid (default {EQUAL_BUDGET['epochs']})")
    parser.add_argument('--optimizer', choices=sorted(OPTIMIZERS), default=EQUAL_BUDGET['optimizer'],
                        help=f"optimizer of the equal-budget grid (default {EQUAL_BUDGET['optimizer']})")
    parser.add_argument('--variant', action='append', default=[], metavar='NET=VARIANT',
                        help='build a network in another size in every file, e.g. uformer=B or nafnet=width64 '
                             f"(known: {'; '.join(f'{n}: {chr(44).join(v)}' for n, v in VARIANTS.items())})")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f'--epochs must be at least 1, got {args.epochs}')
    try:
        configure(epochs=args.epochs, optimizer=args.optimizer, variants=parse_variants(args.variant))
    except ValueError as error:
        parser.error(str(error))
    files = generate()
    # docs/reproduce.md: its hand-written text from the target root, else from this repository
    doc = os.path.join(args.out, DOC)
    if not os.path.exists(doc):
        doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', DOC)
    with open(doc) as file:
        written = dict(files, **{DOC: render_doc(file.read())})
    stale = []
    for relative, text in sorted(written.items()):
        path = os.path.join(args.out, relative)
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        stale.append(relative)
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as file:
                file.write(text)
    generated_dirs = {os.path.dirname(r) for r in files}  # each listed without recursion: options/demo stays
    extra = sorted(os.path.join(d, n) for d in generated_dirs if os.path.isdir(os.path.join(args.out, d))
                   for n in os.listdir(os.path.join(args.out, d))
                   if n.endswith('.yml') and os.path.join(d, n) not in files)
    if args.check:
        for relative in stale:
            print(f'out of date: {relative}', file=sys.stderr)
        for relative in extra:
            close = difflib.get_close_matches(relative, list(files), n=1)
            print(f'not generated (remove it or add it to the generator): {relative}'
                  + (f' (close to {close[0]})' if close else ''), file=sys.stderr)
        return 1 if stale or extra else 0
    print(f'{len(files)} options files and {DOC}, {len(stale)} written'
          + (f'; not generated: {", ".join(extra)}' if extra else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
