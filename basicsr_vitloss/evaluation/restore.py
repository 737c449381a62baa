"""``run --opt``: restore the test dataset of BasicSR options with a network and its weights (whole
images unless --tile), saving 16-bit PNGs named after the source scenes, resumable. An output holding NaN or
inf values is not saved: the other images are restored, then the run stops naming those images (a rerun tries
them again)."""
import json
import os
import sys

import numpy as np

from basicsr_vitloss.evaluation.errors import EvaluateError, listing
from basicsr_vitloss.evaluation.pairing import pair_files, stem
from basicsr_vitloss.utils.atomic_write import atomic_imwrite, atomic_write
from basicsr_vitloss.utils.checkpoints import CheckpointError, load_network_weights
from basicsr_vitloss.utils.finite_check import NonFiniteOutputError, check_finite


def load_options(path, key):
    """(options dict, test dataset options) of a BasicSR YAML file."""
    import yaml
    if not os.path.isfile(path):
        raise EvaluateError(f'--opt {path} does not exist.')
    try:
        with open(path, encoding='utf-8') as file:
            opt = yaml.safe_load(file)
    except yaml.YAMLError as error:
        raise EvaluateError(f'--opt {path}: not valid YAML ({error}).') from None
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict):
        raise EvaluateError(f'--opt {path}: expected BasicSR options with a network_g mapping.')
    datasets = opt.get('datasets')
    if not isinstance(datasets, dict) or not datasets:
        raise EvaluateError(f'--opt {path}: expected a datasets mapping with a test dataset.')
    if key is None:
        key = next((k for k, v in datasets.items() if isinstance(v, dict)
                    and v.get('phase', k.split('_')[0]) != 'train'), None)
        if key is None:
            raise EvaluateError(f'--opt {path}: no dataset whose phase is not train in datasets '
                                f'({", ".join(datasets)}); add a test entry or give --dataset-key.')
    elif not isinstance(datasets.get(key), dict):
        raise EvaluateError(f'--opt {path}: no dataset {key!r} in datasets ({", ".join(datasets)}).')
    dataset_opt = dict(datasets[key])
    dataset_opt['phase'] = dataset_opt.get('phase', key.split('_')[0])
    dataset_opt.setdefault('name', key)
    dataset_opt.setdefault('io_backend', {'type': 'disk'})
    dataset_opt.setdefault('scale', opt.get('scale', 1))
    return opt, dataset_opt


DPDD_DATASET_TYPES = ('DPDDDataset', 'Dataset_DefocusDeblur_DualPixel_16bit')  # take the pairing option


def _inference_record(args, net, dataset_opt):
    """What made the files in OUT/restored (restored/inference.json): resuming needs the same. A Uformer's
    non-default ``input_padding`` (square_zero) is recorded too (the default is not, so folders made before the
    option existed still resume)."""
    record = {'options': os.path.abspath(args.opt), 'weights': os.path.abspath(args.weights),
              'network': type(net).__name__, 'dataset': dataset_opt['name'],
              'inference': {'mode': 'tiled', 'tile': args.tile, 'overlap': args.tile_overlap} if args.tile
              else {'mode': 'whole'}}
    if getattr(net, 'input_padding', 'reflect') != 'reflect':
        record['input_padding'] = net.input_padding
    return record


def _check_restored_folder(folder, record):
    """Refuse to resume in a restored/ folder made with other options, weights or tiling."""
    marker = os.path.join(folder, 'inference.json')
    pngs = [n for n in os.listdir(folder) if n.endswith('.png') and not n.startswith('.')] if os.path.isdir(folder) \
        else []
    if os.path.isfile(marker):
        with open(marker, encoding='utf-8') as file:
            try:
                earlier = json.load(file)
            except ValueError:
                earlier = None
        if earlier != record:
            earlier = earlier if isinstance(earlier, dict) else {}
            changes = '; '.join(f'{key}: {earlier.get(key)} then, {value} now' for key, value in record.items()
                                if earlier.get(key) != value)
            raise EvaluateError(f'{folder} holds results made differently ({changes}; from {marker}); delete the '
                                f'folder or choose another --out.')
        return  # the same settings: resume
    if pngs:
        raise EvaluateError(f'{folder} holds {len(pngs)} restored images but no inference.json saying how they were '
                            f'made (an older evaluate.py, which tiled by default); delete the folder or choose another '
                            f'--out.')
    os.makedirs(folder, exist_ok=True)
    atomic_write(marker, lambda file: file.write(json.dumps(record, indent=2) + '\n'), 'w', encoding='utf-8')


def restore(args):
    """Run the options' network on its test dataset, whole images unless --tile (16-bit PNGs named after the
    source scenes in OUT/restored). Returns ([(restored path, gt path)] paired by --pairing, the rule used,
    settings, protocol's inference)."""
    import torch
    from tqdm import tqdm
    # basicsr_vitloss first: its compatibility fixes and registrations precede basicsr's imports
    from basicsr_vitloss.utils.tiling import tiled_forward
    from basicsr.archs import build_network
    from basicsr.data import build_dataset

    opt, dataset_opt = load_options(args.opt, args.dataset_key)
    if args.tile < 0 or (args.tile and not 0 <= args.tile_overlap < args.tile):
        raise EvaluateError(f'--tile {args.tile} --tile-overlap {args.tile_overlap}: need tile >= 0 '
                            f'(0 = whole image) and 0 <= overlap < tile.')
    if args.pairing_given and str(dataset_opt.get('type')).removesuffix('_vitloss') in DPDD_DATASET_TYPES:
        dataset_opt['pairing'] = args.pairing
    try:
        net = build_network(opt['network_g'])
    except (KeyError, TypeError) as error:
        raise EvaluateError(f'--opt {args.opt}: cannot build network_g ({type(error).__name__}: {error}).') from None
    try:
        load_network_weights(net, args.weights)  # params_ema, params, state_dict, model or a bare state dict
    except CheckpointError as error:  # missing, unreadable, not weights, or not this network's
        raise EvaluateError(f'--weights {str(error).rstrip(".")} (network_g of {args.opt}).') from None
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    net = net.to(device).eval()
    try:
        dataset = build_dataset(dataset_opt)
    except (KeyError, TypeError) as error:
        raise EvaluateError(f'--opt {args.opt}: cannot build dataset {dataset_opt["name"]} '
                            f'({type(error).__name__}: {error}).') from None
    folder = os.path.join(args.out, 'restored')
    record = _inference_record(args, net, dataset_opt)
    _check_restored_folder(folder, record)
    restored, gt, seen, failed = [], [], {}, []
    for index in tqdm(range(len(dataset)), desc='restore', unit='img', file=sys.stderr, dynamic_ncols=True):
        sample = dataset[index]
        name = stem(sample['lq_path'])  # the source scene (DPDDDataset) or the input's name
        if name in seen:
            raise EvaluateError(f'dataset {dataset_opt["name"]}: two inputs named {name}: {seen[name]} and '
                                f'{sample["lq_path"]}.')
        seen[name] = sample['lq_path']
        path = os.path.join(folder, f'{name}.png')
        restored.append(path)
        gt.append(sample['gt_path'])
        if os.path.isfile(path):
            continue
        x = sample['lq'].unsqueeze(0).to(device)
        with torch.no_grad():
            y = tiled_forward(net, x, args.tile, args.tile_overlap) if args.tile else net(x)
        try:
            check_finite(y, name)  # NaN / inf would be saved as black or saturated pixels, and scored
        except NonFiniteOutputError as error:
            failed.append(str(error))
            continue
        image = y[0].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        if image.shape[2] == 3:
            image = image[..., ::-1]
        image = np.round(image * 65535.0).astype(np.uint16)
        atomic_imwrite(path, image)  # a run killed mid-write leaves no torn PNG to be resumed from
    if failed:
        raise EvaluateError(f'--weights {args.weights}: the network output of {len(failed)} of {len(dataset)} images '
                            f'holds NaN or inf values, so nothing was saved or scored for them ({listing(failed)}). '
                            f'The network diverged or overflowed: check the weights (a diverged training run saves '
                            f'NaN weights).')
    gt_folders = sorted({os.path.dirname(g) for g in gt})
    pairs, used = pair_files(restored, gt, args.pairing, folder, ', '.join(gt_folders))
    args.method = args.method or opt.get('name') or stem(args.opt)
    args.dataset = args.dataset if args.dataset is not None else dataset_opt.get('name', '')
    inference = record['inference']
    settings = {'inference': f'{type(net).__name__} from {os.path.abspath(args.opt)} (datasets: '
                             f'{dataset_opt["name"]}), weights {os.path.abspath(args.weights)}, '
                             + (f'tiles {args.tile} px, overlap {args.tile_overlap}' if args.tile else 'whole images')
                             + (f', input_padding {record["input_padding"]}' if 'input_padding' in record else '')
                             + f', on {device.type}; saved as 16-bit PNG'}
    return pairs, used, settings, inference
