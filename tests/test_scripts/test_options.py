"""The options grid: generated from scripts/make_options.py, up to date (with the generated part of
docs/reproduce.md), parsed by BasicSR, and every part of every file (network, losses, data) buildable;
one training iteration per network and per loss; unknown network names refused."""
import copy
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.losses import build_loss
from conftest import REPO, TINY_VIT, dpdd_release_names, load_script, make_dpdd_tree, run

make_options = load_script('make_options')
GENERATED = make_options.generate()
TRAIN_FILES = sorted(p for p in GENERATED if not p.startswith('options/test/'))
TEST_FILES = sorted(p for p in GENERATED if p.startswith('options/test/'))


def _load(relative):
    return yaml.safe_load((REPO / relative).read_text())


def _network_key(opt):
    return {'DPDNet': 'dpdnet', 'Uformer': 'uformer', 'Restormer': 'restormer', 'MPRNet': 'mprnet',
            'NAFNetLocal': 'nafnet'}[opt['network_g']['type']]


def test_committed_files_are_what_the_generator_writes(tmp_path):
    assert make_options.main(['--check']) == 0, 'run: python scripts/make_options.py'
    # and the check does catch a stale or stray file
    (tmp_path / 'options' / 'gopro').mkdir(parents=True)
    (tmp_path / 'options' / 'gopro' / 'stray.yml').write_text('name: stray\n')
    assert make_options.main(['--check', '--out', str(tmp_path)]) == 1


@pytest.mark.integration
def test_docs_reproduce_page_is_generated_and_checked(tmp_path, capsys):
    page = (REPO / make_options.DOC).read_text()
    assert make_options.render_doc(page) == page, 'run: python scripts/make_options.py'
    # every experiment and ablation file is linked from the page, with the paper's numbers of its row
    for path in GENERATED:
        if not path.startswith(('options/test/', 'options/restormer_dpdd_local')):
            assert f'[`{path}`](../{path})' in page, path
    assert '| Table II, Restormer +vgg | [`options/dpdd_single/restormer_vgg.yml`]' in page
    assert '25.54 / 0.7865 / 0.0386 / 0.1666 / 5.1300' in page  # the paper's decimals, trailing zeros kept
    assert 'GoPro 30.00 / 0.9315 / 0.0620 / 4.5327; HIDE 28.70 / 0.9099 / 0.0791 / 3.8731' in page
    # --check reports a stale page; writing fixes it; a page without markers is refused
    docs = tmp_path / 'docs'
    docs.mkdir()
    stale = page.replace('25.54 / 0.7865', '25.55 / 0.7865')
    (docs / 'reproduce.md').write_text(stale)
    make_options.main(['--out', str(tmp_path)])
    capsys.readouterr()
    (docs / 'reproduce.md').write_text(stale)
    assert make_options.main(['--check', '--out', str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == 'out of date: docs/reproduce.md'
    assert make_options.main(['--out', str(tmp_path)]) == 0
    assert (docs / 'reproduce.md').read_text() == page
    assert make_options.main(['--check', '--out', str(tmp_path)]) == 0
    (docs / 'reproduce.md').write_text('# no markers\n')
    with pytest.raises(ValueError, match='REPRODUCE_BEGIN'):
        make_options.main(['--check', '--out', str(tmp_path)])


def test_unknown_network_names_are_refused_with_the_closest_known_one(monkeypatch):
    with pytest.raises(ValueError, match=r"network_g: unknown network 'nafnte'; known networks: dpdnet, .*"
                                         r"Did you mean 'nafnet'\?"):
        make_options.network_g('nafnte', 3, 'dpdd')
    with pytest.raises(ValueError, match="unknown network 'swinir'; known networks: dpdnet, mprnet, uformer, "
                                         r"restormer, nafnet\.$"):
        make_options.network_g('swinir', 3, 'dpdd')
    grids = dict(make_options.GRIDS, gopro=('gopro', 'single', ('mprnet', 'restormr'), 'Table III'))
    monkeypatch.setattr(make_options, 'GRIDS', grids)
    with pytest.raises(ValueError, match=r"GRIDS\['gopro'\]: unknown network 'restormr'.*Did you mean 'restormer'"):
        make_options.generate()
    monkeypatch.undo()
    monkeypatch.setattr(make_options, 'TINY_NETWORK', {k: v for k, v in make_options.TINY_NETWORK.items()
                                                       if k != 'uformer'})
    with pytest.raises(ValueError, match='TINY_NETWORK has no entry for uformer'):
        make_options.main(['--check'])


def test_the_grid_covers_the_papers_experiments():
    expected = {f'options/{grid}/{net}_{loss}.yml' for grid, (_, _, nets, _) in make_options.GRIDS.items()
                for net in nets for loss in make_options.LOSSES}
    # Tables I, II: 4 networks x 4 losses; Table III: 4 x 4 with the official recipes and 4 x 4 with an equal budget
    assert len(expected) == 4 * 4 * 2 + 4 * 4 * 2
    assert expected <= set(GENERATED)
    assert {f'options/test/{p[len("options/"):]}' for p in expected} == set(TEST_FILES)
    ablations = [p for p in GENERATED if p.startswith('options/ablation/')]
    assert len(ablations) == 3 + 4 + 8 + 4 + 2  # Tables IV, V, Fig. 8, and the authors' code (local, global)
    local = _load('options/ablation/dpdnet_authors_code_local.yml')['train']['perceptual_opt']
    assert local['layers'] == [1, 2, 3, 4, 5, 6] and local['loss_weight'] == 0.1
    assert local['type'] == 'LocalMAEPerceptualLoss' and local['mask_ratio'] == 0.5
    glob = _load('options/ablation/dpdnet_authors_code_global.yml')['train']['perceptual_opt']
    assert glob['layers'] == [1, 2, 3, 4, 5, 6] and glob['loss_weight'] == 1e-4 and glob['reduction'] == 'batch'
    assert (REPO / 'options' / 'restormer_dpdd_local.yml').read_text() == (
        REPO / 'options' / 'dpdd_dual' / 'restormer_local.yml').read_text()


@pytest.mark.parametrize('relative', TRAIN_FILES + TEST_FILES + ['options/demo/defocus_demo.yml'])
def test_every_file_parses_with_basicsrs_option_parser(relative, tmp_path, monkeypatch):
    from basicsr.utils.options import parse_options
    from basicsr_vitloss import launch
    monkeypatch.setattr(sys, 'argv', ['x', '-opt', str(REPO / relative)])
    is_train = not relative.startswith('options/test/')
    opt, _ = parse_options(str(tmp_path), is_train=is_train)
    launch.check_types(opt, relative)  # every type: names a registered class
    if relative.startswith('options/demo'):
        return
    # recipe_gpus (the recipe's GPU processes, read by scripts/scale_recipe.py) passes BasicSR's parser untouched
    equal = '_equal_budget/' in relative  # one GPU, the paper's protocol
    assert opt['recipe_gpus'] == (1 if equal else make_options.recipe(_network_key(opt))['gpus'])
    if relative == f'options/{make_options.HEADLINE[0]}':
        _, grid, net, loss = make_options.HEADLINE
    else:
        grid, net, loss = relative.split('/')[-2], _network_key(opt), Path(relative).stem.split('_', 1)[1]
    if is_train and grid != 'ablation':
        header = (REPO / relative).read_text().split('\nname:')[0]
        # the header quotes the paper's numbers for this cell
        expected = make_options.PAPER[make_options.PAPER_GRID.get(grid, grid)][(net, loss)]
        assert f'{expected[0]:g}' in header and make_options.GRIDS[grid][3] in header


@pytest.mark.parametrize('relative', TRAIN_FILES + TEST_FILES)
def test_every_header_names_what_needs_the_plugin(relative):
    """The header line lists each plugin-only key and plugin type the file uses (basicsr_vitloss.utils.plugin_keys),
    with what stock BasicSR does without the plugin."""
    from basicsr_vitloss.utils.plugin_keys import needs_plugin
    header = (REPO / relative).read_text().split('\nname:')[0]
    [line] = [line for line in header.splitlines() if line.startswith('# Needs basicsr-vitloss: ')]
    needs = needs_plugin(_load(relative))
    assert needs['types'] and needs['keys']  # every generated file needs the plugin
    for use in needs['types']:
        assert use.name in line, (relative, use)
    for use in needs['keys']:
        assert use.path in line, (relative, use)
    assert '(stock BasicSR fails: unknown type)' in line and '(stock BasicSR ignores them silently)' in line
    opt = _load(relative)
    assert opt['network_g']['type'] in line and 'recipe_gpus' in line
    if opt['model_type'] == 'MultiStageModel' and not relative.startswith('options/test/'):
        assert 'train:edge_opt' in line


def _tiny(relative):
    """The file's options with its network at the tiny width its header names (TINY_NETWORK)."""
    opt = _load(relative)
    tiny = make_options.TINY_NETWORK[_network_key(opt)]
    header = (REPO / relative).read_text().split('\nname:')[0]
    assert 'network_g: {' + ', '.join(f'{k}: {v}' for k, v in tiny.items()) + '}' in header
    opt['network_g'].update(tiny)
    return opt


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    """Tiny data in the layouts the options point at, under one root that replaces `datasets/`."""
    import cv2
    import numpy as np
    root = tmp_path_factory.mktemp('datasets')
    crops = make_dpdd_tree(root / 'DPDD_crops', layout='crops', split='train', scenes=2, size=(64, 64))
    assert Path(crops['gt']).name == 'target_crops'
    for split in ('val', 'test'):
        make_dpdd_tree(root / 'DPDD', layout='official', split=split, scenes=1, size=(40, 56))
    rng = np.random.default_rng(0)
    for folder in ('GoPro/train/input_crops', 'GoPro/train/target_crops', 'GoPro/train/input', 'GoPro/train/target',
                   'GoPro/test/input', 'GoPro/test/target',
                   'HIDE/test/input', 'HIDE/test/target'):
        (root / folder).mkdir(parents=True)
        for index in range(2):
            # names as prepare_gopro.py writes GoPro's (<scene>-<frame>), input and target alike
            cv2.imwrite(str(root / folder / f'GOPR0384_11_00-{index + 1:06d}.png'),
                        (rng.random((64, 64, 3)) * 255).astype(np.uint8))
    return root


def _rooted(dataset, root):
    dataset = copy.deepcopy(dataset)
    for key, value in dataset.items():
        if (key.startswith('dataroot')) and isinstance(value, str) and value.startswith('datasets/'):
            dataset[key] = str(root / value[len('datasets/'):])
    return dataset


@pytest.mark.parametrize('relative', TRAIN_FILES)
@pytest.mark.integration
def test_network_losses_and_data_of_every_training_file_build(relative, trees):
    opt = _tiny(relative)
    net = build_network(copy.deepcopy(opt['network_g'])).eval()
    channels = 6 if opt['datasets']['train'].get('mode') == 'dual_pixel' else 3
    assert net(torch.rand(1, channels, 32, 32)).shape == (1, 3, 32, 32)
    assert build_loss(copy.deepcopy(opt['train']['pixel_opt'])) is not None
    if opt['model_type'] == 'MultiStageModel':  # MPRNet: three stage outputs in training, each with edge loss
        assert len(net.train()(torch.rand(1, channels, 32, 32))) == 3
        assert build_loss(copy.deepcopy(opt['train']['edge_opt'])).loss_weight == 0.05
    percep = opt['train'].get('perceptual_opt')
    if percep and percep['type'] != 'PerceptualLoss':  # VGG: built in the training run below (weights file)
        layers = percep['layers'] if isinstance(percep['layers'], list) else [percep['layers']]
        tiny_vit = dict(TINY_VIT, depth=max(TINY_VIT['depth'], *layers))  # ViT-B's 12 blocks for layer 12
        loss = build_loss(dict(percep, pretrained=False, backbone_kwargs=tiny_vit))
        assert loss.vit.layers == layers and loss.vit.feature == percep['feature']
        assert loss.mask_ratio == percep['mask_ratio'] and loss.loss_weight == percep['loss_weight']
    train = _rooted(dict(opt['datasets']['train'], phase='train', scale=1, gt_size=32), trees)
    train.pop('gt_sizes', None)
    sample = build_dataset(train)[0]
    assert sample['lq'].shape[0] == channels and sample['gt'].shape == (3, 32, 32)
    val = build_dataset(_rooted(dict(opt['datasets']['val'], phase='val', scale=1), trees))
    assert val[0]['lq'].shape[0] == channels


@pytest.mark.parametrize('relative', TEST_FILES)
def test_every_test_file_builds_its_test_data(relative, trees):
    opt = _load(relative)
    for key, dataset in opt['datasets'].items():
        assert key.startswith('test_')
        built = build_dataset(_rooted(dict(dataset, phase='test', scale=1), trees))
        assert len(built) >= 1
    assert opt['path']['pretrain_network_g'].startswith('experiments/')
    assert 'tile' not in opt['val']  # whole images, as the official tests
    metrics = opt['val']['metrics']
    if '/gopro' in relative:  # Table III (both budgets): the MATLAB evaluation on 8-bit RGB
        assert not opt['val']['save_16bit'] and set(metrics) == {'psnr', 'ssim', 'lpips', 'niqe'}
        assert metrics['ssim']['type'] == 'calculate_ssim_matlab' and metrics['psnr']['type'] == 'calculate_psnr'
    else:  # Tables I, II: on floats of the 16-bit data
        assert opt['val']['save_16bit'] and set(metrics) == {'psnr', 'ssim', 'mae', 'lpips', 'niqe'}
        assert metrics['ssim']['type'] == 'calculate_ssim_float'


def _force(opt, trees):
    """--force_yml overrides: tiny network, tiny data from `trees`, one iteration, random ViT weights."""
    entries = ['num_gpu=0', 'train:total_iter=1', 'val:val_freq=1', 'val:tile:size=32', 'val:tile:overlap=8',
               'logger:print_freq=1', 'logger:save_checkpoint_freq=1', 'logger:use_tb_logger=false',
               'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0',
               'datasets:train:gt_size=32']
    for key, value in make_options.TINY_NETWORK[_network_key(opt)].items():
        entries.append(f'network_g:{key}={value}'.replace(' ', ''))
    if 'iters' in opt['datasets']['train']:
        entries += ['datasets:train:iters=[1]', 'datasets:train:gt_sizes=[32]', 'datasets:train:mini_batch_sizes=[2]']
    for phase in ('train', 'val'):
        for key, value in opt['datasets'][phase].items():
            if key.startswith('dataroot') and value.startswith('datasets/'):
                entries.append(f'datasets:{phase}:{key}={trees / value[len("datasets/"):]}')
    percep = opt['train'].get('perceptual_opt')
    if percep and percep['type'] != 'PerceptualLoss':
        entries.append('train:perceptual_opt:pretrained=false')
    return entries


# one file per network and per loss: each network once, each loss once
ONE_ITERATION = ['options/dpdd_dual/restormer_local.yml', 'options/dpdd_single/nafnet_global.yml',
                 'options/gopro/uformer_vgg.yml', 'options/dpdd_dual/dpdnet_baseline.yml',
                 'options/gopro/mprnet_local.yml']


def test_one_iteration_files_cover_each_network_and_loss():
    nets = {_network_key(_load(p)) for p in ONE_ITERATION}
    losses = {Path(p).stem.split('_', 1)[1] for p in ONE_ITERATION}
    assert nets == set(make_options.NETWORK_NAMES) and losses == set(make_options.LOSSES)


@pytest.mark.parametrize('relative', ONE_ITERATION)
@pytest.mark.integration
def test_one_training_iteration_through_basicsr_train(relative, trees, tmp_path):
    import torchvision
    opt = _load(relative)
    if opt['train'].get('perceptual_opt', {}).get('type') == 'PerceptualLoss':
        # BasicSR's VGG loss reads this file when present: random VGG-19 weights in torchvision's format
        weights = tmp_path / 'experiments' / 'pretrained_models'
        weights.mkdir(parents=True)
        torch.save(torchvision.models.vgg19().state_dict(), weights / 'vgg19-dcbb9e9d.pth')
    proc = run(['python', '-m', 'basicsr.train', '-opt', REPO / relative, '--force_yml', *_force(opt, trees)],
               cwd=tmp_path, timeout=600)
    log = '\n'.join(p.read_text() for p in (tmp_path / 'experiments' / opt['name']).glob('train_*.log'))
    assert 'iter:       1' in log and 'End of training' in log, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.search(r'# psnr: [\d.]+', log)
    assert (tmp_path / 'experiments' / opt['name'] / 'models' / 'net_g_1.pth').is_file()


@pytest.mark.integration
def test_train_test_evaluate_commands_of_a_row_work_together(trees, tmp_path, monkeypatch):
    """The three commands of a row as docs/reproduce.md and the files' headers show them (one source:
    make_options.row_commands), run on tiny data: the names basicsr.test gives its 16-bit results pair
    with the ground truth in scripts/evaluate.py, and the report has the groups."""
    import numpy as np
    import torchvision
    page = (REPO / make_options.DOC).read_text()
    for argv in make_options.row_commands(*make_options.HEADLINE[1:]):  # the row the page shows
        assert make_options.shell(argv).split(' \\\n')[0] in page
    train, test, report = make_options.row_commands('dpdd_dual', 'dpdnet', 'baseline')
    relative, test_relative = train[-1], test[-1]
    header = (REPO / relative).read_text().split('\nname:')[0]
    assert ' '.join(train) in header and ' '.join(test) in header
    assert ' '.join(report[:5]) in header and ' '.join(report[5:]) in header
    opt = _load(relative)
    run([*train[:-1], REPO / relative, '--force_yml', *_force(opt, trees)], cwd=tmp_path, timeout=600)
    test_opt = _load(test_relative)
    weights = tmp_path / 'weights'
    weights.mkdir()
    torch.save(torchvision.models.alexnet().state_dict(), weights / 'alexnet-owt-7be5be79.pth')
    test_root = tmp_path / 'test_data'
    make_dpdd_tree(test_root / 'DPDD', layout='official', split='test', scenes=3, size=(96, 192))  # NIQE: 2 blocks
    overrides = ['num_gpu=0', f'datasets:test_1:dataroot={test_root / "DPDD"}',
                 f'val:metrics:lpips:weights_dir={weights}']
    overrides += [f'network_g:{k}={v}' for k, v in make_options.TINY_NETWORK['dpdnet'].items()]
    run([*test[:-1], REPO / test_relative, '--force_yml', *overrides], cwd=tmp_path)
    results = tmp_path / 'results' / test_opt['name'] / 'visualization' / 'DPDD_test'
    assert report[report.index('--restored') + 1] == str(results.relative_to(tmp_path))
    # results are named after the release's sources (no _L); the targets carry other capture numbers
    sources = [source for source, _ in dpdd_release_names('test', 3)]
    assert sorted(p.name.split('_')[0] for p in results.glob('*.png')) == sources
    np.save(test_root / 'DPDD' / 'indoor_labels.npy', np.array([1, 3]))  # next to the release, as distributed
    np.save(test_root / 'DPDD' / 'outdoor_labels.npy', np.array([2]))
    assert report[:3] == ['python', 'scripts/evaluate.py', 'run']
    args = [str(test_root / a[len('datasets/'):]) if a.startswith('datasets/') else a for a in report[2:]]
    monkeypatch.chdir(tmp_path)  # results/ and reports/ relative to where the commands ran
    evaluate = load_script('evaluate')
    assert evaluate.main([*args, '--lpips-weights', str(weights)]) == 0
    out = tmp_path / report[report.index('--out') + 1]
    report = (out / 'results.md').read_text()
    assert 'Indoor' in report and 'Outdoor' in report and 'Combined' in report
    import json
    result = json.loads((out / 'results.json').read_text())
    assert result['protocol']['pairing']['used'] == 'position' and result['protocol']['bit_depth']['restored'] == 16
    groups = result['groups']
    assert all(np.isfinite(groups['Combined'][m]) for m in ('psnr', 'ssim', 'mae', 'lpips', 'niqe'))


# ------------------------------------------------------------------------- networks, budgets (issue 24)

#: the paper's sentences that name its networks and budget (Sec. IV-A2, IV-A3, IV-B), verbatim from its text
PAPER_EXCERPT = ' '.join((REPO / 'tests' / 'data' / 'paper_networks.txt').read_text().split())
PAPER_FILE = REPO.parent / 'shared' / 'paper' / 'image-deblurring-vit-properties.txt'  # beside the repository
#: the official configurations of the sizes (Uformer's model.py: Uformer_T / _S / _B; NAFNet's GoPro options)
OFFICIAL_SIZES = {('uformer', 'T'): {'embed_dim': 16, 'depths': [2] * 9},
                  ('uformer', 'B'): {'embed_dim': 32, 'depths': [1, 2, 8, 8, 2, 8, 8, 2, 1]},
                  ('nafnet', 'width32'): {'width': 32}, ('nafnet', 'width64'): {'width': 64}}


def test_the_papers_network_words_are_in_the_paper():
    """The table the generator builds from quotes the paper; Uformer is named Uformer-T, NAFNet's width is not."""
    quoted = {net: words for net, (_, words) in make_options.PAPER_NETWORKS.items() if words}
    assert set(quoted) == {'dpdnet', 'uformer', 'restormer', 'mprnet'}
    for words in quoted.values():
        assert ' '.join(words.split()) in PAPER_EXCERPT
    if PAPER_FILE.is_file():  # the excerpt is the paper's own text
        paper = ' '.join(PAPER_FILE.read_text().split())
        assert all(line.strip() in paper for line in PAPER_EXCERPT.split('. ') if line.strip())
        assert 'NAFNet-' not in paper and 'width' not in paper  # NAFNet's width is not stated anywhere
    assert make_options.PAPER_NETWORKS['uformer'][0] == 'T' and 'Uformer-T' in PAPER_EXCERPT


@pytest.mark.parametrize('relative', TRAIN_FILES + TEST_FILES)
def test_every_file_builds_the_network_size_the_paper_names(relative):
    opt = _load(relative)
    net = _network_key(opt)
    variant = make_options.PAPER_NETWORKS[net][0]
    for key, value in OFFICIAL_SIZES.get((net, variant), {}).items():
        assert opt['network_g'][key] == value, (relative, key)
    if net == 'restormer':  # one published size
        assert opt['network_g']['dim'] == 48 and opt['network_g']['num_blocks'] == [4, 6, 6, 8]
    if net == 'mprnet':
        assert opt['network_g']['n_feat'] == 96 and opt['network_g']['num_cab'] == 8


def test_variants_regenerate_the_grid_in_another_size(tmp_path):
    out = tmp_path / 'out'
    (out / 'docs').mkdir(parents=True)
    (out / 'docs' / 'reproduce.md').write_text((REPO / 'docs' / 'reproduce.md').read_text())
    script = REPO / 'scripts' / 'make_options.py'
    proc = run(['python', script, '--out', out, '--variant', 'uformer=B', '--variant', 'nafnet=width64',
                '--epochs', '7', '--optimizer', 'adam'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    uformer = yaml.safe_load((out / 'options/gopro/uformer_local.yml').read_text())
    assert uformer['network_g']['embed_dim'] == 32 and uformer['network_g']['depths'] == [1, 2, 8, 8, 2, 8, 8, 2, 1]
    text = (out / 'options/gopro/nafnet_local.yml').read_text()
    nafnet = yaml.safe_load(text)
    assert nafnet['network_g']['width'] == 64 and nafnet['train']['total_iter'] == 400000  # width-64 recipe
    assert '33.71 / 0.9668' in text.split('\nname:')[0]  # its own published number
    equal = yaml.safe_load((out / 'options/gopro_equal_budget/mprnet_global.yml').read_text())
    batch = equal['datasets']['train']['batch_size_per_gpu']
    assert equal['train']['total_iter'] == 7 * (2103 // batch) and equal['train']['optim_g']['type'] == 'Adam'
    bad = run(['python', script, '--out', out, '--variant', 'uformer=XL'], cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "--variant 'uformer=XL'" in bad.stderr and 'uformer=T|S|B' in bad.stderr


def test_the_equal_budget_grid_has_one_optimizer_and_one_epoch_count():
    files = [p for p in TRAIN_FILES if p.startswith('options/gopro_equal_budget/')]
    assert len(files) == 16
    optimizers, epochs = set(), set()
    for relative in files:
        opt = _load(relative)
        data, train = opt['datasets']['train'], opt['train']
        batch = data['batch_size_per_gpu']
        assert batch == make_options.EQUAL_BUDGET_BATCH[_network_key(opt)][0]
        assert train['total_iter'] % (2103 // batch) == 0  # whole epochs of BasicSR's loader (drop_last)
        epochs.add(train['total_iter'] // (2103 // batch))
        optimizers.add(yaml.safe_dump(train['optim_g']))
        assert data['gt_size'] == 256 and 'mini_batch_sizes' not in data and opt['recipe_gpus'] == 1
        assert data['dataroot_gt'] == 'datasets/GoPro/train/target'  # whole images: an epoch is 2103 images
        assert train['scheduler']['periods'] == [train['total_iter']] and train['warmup_iter'] == -1
        official = _load(relative.replace('gopro_equal_budget', 'gopro'))
        assert train['pixel_opt'] == official['train']['pixel_opt']  # each network keeps its own losses
        assert opt['network_g'] == official['network_g']
        head = (REPO / relative).read_text().split('\nname:')[0]
        assert f"{make_options.EQUAL_BUDGET['epochs']} epochs" in head and f'batch {batch}:' in head
    assert len(optimizers) == 1 and epochs == {make_options.EQUAL_BUDGET['epochs']}


@pytest.mark.parametrize('relative', TRAIN_FILES)
def test_every_header_says_its_budget_and_the_papers_change(relative):
    head = (REPO / relative).read_text().split('\nname:')[0]
    opt = _load(relative)
    net = _network_key(opt)
    if relative.startswith('options/ablation/'):  # DPDNet's recipe; the claim is the difference between settings
        expect = [line for line in head.split('\n') if line.startswith('# Expect:')]
        assert len(expect) == 1 and "DPDNet's official recipe" in expect[0] and '25.13 / 0.786' in expect[0]
        return
    headline, grid, _, loss = make_options.HEADLINE
    if relative != f'options/{headline}':
        grid = Path(relative).parent.name
        loss = Path(relative).stem.split('_', 1)[1]
    expect = [line for line in head.split('\n') if line.startswith('# Expect:')]
    assert len(expect) == 1, relative
    paper = make_options.PAPER[make_options.PAPER_GRID.get(grid, grid)]
    if loss != 'baseline':  # the paper's change of this row, computed here from the paper's two rows
        change = paper[(net, loss)][0] - paper[(net, 'baseline')][0]
        assert f'PSNR {change:+.2f}' in expect[0]
    if make_options.BUDGETS[grid] == 'equal':
        assert 'below the published ones' in expect[0]
    elif (net, grid) in {('restormer', 'gopro'), ('mprnet', 'gopro'), ('nafnet', 'gopro'), ('restormer', 'dpdd_dual'),
                         ('restormer', 'dpdd_single'), ('dpdnet', 'dpdd_dual'), ('dpdnet', 'dpdd_single')}:
        assert "official recipe" in expect[0] and 'published' in expect[0]
    elif net == 'uformer' and grid == 'gopro':  # Uformer publishes GoPro numbers for B only, the file trains T
        assert 'none for Uformer-T' in expect[0]
    else:  # Uformer and NAFNet have no DPDD recipe nor result
        assert 'publishes no DPDD training recipe' in expect[0] and 'no published number applies' in expect[0]
