"""basicsr_vitloss.utils.plugin_keys: the plugin-only option keys and the plugin types an options dict uses."""
import ast
import re

from basicsr_vitloss.utils import plugin_keys
from conftest import REPO


def test_keys_used_finds_each_section():
    opt = {'recipe_gpus': 8, 'train': {'use_grad_clip': True, 'edge_opt': {'type': 'EdgeLoss'}, 'ema_decay': 0.999},
           'val': {'tile': {'size': 64}, 'save_img': True},
           'datasets': {'train': {'iters': [1], 'gt_size': 64}, 'val': {'use_flip': False}}}
    paths = [use.path for use in plugin_keys.keys_used(opt)]
    assert paths == ['recipe_gpus', 'train:use_grad_clip', 'train:edge_opt', 'val:tile', 'datasets:train:iters',
                     'datasets:val:use_flip']
    assert plugin_keys.keys_used({'train': {'ema_decay': 0.999}, 'val': {'save_img': True}}) == []


def test_types_used_are_the_plugins_and_non_stock_optimizers():
    opt = {'model_type': 'SRModel', 'network_g': {'type': 'NAFNet'}, 'network_d': {'type': 'VGGStyleDiscriminator'},
           'datasets': {'train': {'type': 'PairedImageDataset'}, 'val': {'type': 'SyntheticDualPixelDataset'}},
           'train': {'pixel_opt': {'type': 'L1Loss'}, 'perceptual_opt': {'type': 'LocalMAEPerceptualLoss_vitloss'},
                     'optim_g': {'type': 'AdamW'}, 'optim_d': {'type': 'Adam'},
                     'scheduler': {'type': 'TrueCosineAnnealingLR'}},
           'val': {'metrics': {'psnr': {'type': 'calculate_psnr'}, 'ssim': {'type': 'calculate_ssim_float'},
                               'x': {'type': 'NoSuchMetric'}}}}
    uses = {use.path: (use.name, use.without_plugin) for use in plugin_keys.types_used(opt)}
    assert uses == {
        'network_g:type': ('NAFNet', 'fails: unknown type'),
        'datasets:val:type': ('SyntheticDualPixelDataset', 'fails: unknown type'),
        'train:perceptual_opt:type': ('LocalMAEPerceptualLoss_vitloss', 'fails: unknown type'),
        'val:metrics:ssim:type': ('calculate_ssim_float', 'fails: unknown type'),
        'val:metrics:x:type': ('NoSuchMetric', 'fails: unknown type'),  # unknown here too
        'train:optim_g:type': ('AdamW', 'fails: optimizer not supported'),
        'train:scheduler:type': ('TrueCosineAnnealingLR', 'fails: scheduler not supported')}


def test_summary_groups_by_what_stock_basicsr_does():
    line = plugin_keys.summary({'network_g': {'type': 'Restormer'}, 'val': {'save_16bit': True},
                                'datasets': {'train': {'type': 'PairedImageDataset', 'use_flip': True}}})
    assert line == ('Needs basicsr-vitloss: Restormer (stock BasicSR fails: unknown type); val:save_16bit (stock '
                    "BasicSR ignores them silently); datasets:train:use_flip (stock BasicSR: PairedImageDataset "
                    "fails at the first sample (KeyError 'use_hflip')).")
    assert plugin_keys.summary({'network_g': {'type': 'RRDBNet'}, 'train': {'pixel_opt': {'type': 'L1Loss'}}}) == ''


def test_every_option_key_the_plugin_reads_is_listed():
    """Each `train:` / `val:` key read by the files that implement the plugin's option keys is in PLUGIN_KEYS or
    is one of stock BasicSR's keys."""
    stock = {'train': {'total_iter', 'scheduler', 'ema_decay', 'pixel_opt', 'perceptual_opt', 'optim_g', 'warmup_iter'},
             'val': {'metrics', 'pbar', 'suffix', 'save_img', 'val_freq'}}
    listed = {(k.section, k.key) for k in plugin_keys.PLUGIN_KEYS}
    files = ['models/progressive_model.py', 'models/multi_stage_model.py', 'models/training_step.py',
             'utils/float_validation.py', 'utils/tiling.py', 'utils/comparison_figure.py']
    found = set()
    for name in files:
        text = (REPO / 'basicsr_vitloss' / name).read_text()
        for section in ('train', 'val'):
            # `train_opt.get('key')`, `(opt.get('val') or {}).get('key')`, `opt['train'].get('key')`
            pattern = rf"(?:{section}_opt|get\('{section}'\) or {{}}\)|\['{section}'\])\.get\(('\w+')"
            for key in re.findall(pattern, text):
                key = ast.literal_eval(key)
                found.add((section, key))
                assert (section, key) in listed or key in stock[section], f'{name}: {section}:{key} is not listed'
    assert {('train', 'use_grad_clip'), ('train', 'edge_opt'), ('train', 'micro_batches'), ('val', 'tile'),
            ('val', 'save_16bit'), ('val', 'save_comparison'), ('val', 'mixed_precision')} <= found
