"""scripts/vit_feature_maps.py: the paper's Fig. 1 (PCA maps of ViT tokens beside VGG-19 conv5_4).

A tiny random ViT saved as a checkpoint and RANDOM VGG-19 weights saved as torchvision's
vgg19-dcbb9e9d.pth stand in for the released weights; nothing is downloaded."""
import json
import re
import os

import cv2
import numpy as np
import pytest
import skimage.data
import torch
import torchvision

from basicsr_vitloss.losses.vit_features import IMAGENET_MEAN, IMAGENET_STD, ViTFeatureExtractor, create_vit
from conftest import REPO, TINY_VIT, load_script, run

HEIGHT, WIDTH = 64, 96
LAYER = 2

fmaps = load_script('vit_feature_maps')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A photo crop (sharp, 8-bit) and its blurred copy (blurry, 16-bit), a tiny random ViT
    checkpoint and random VGG-19 weights in torchvision's format (deleted afterwards)."""
    folder = tmp_path_factory.mktemp('fig1')
    sharp = cv2.cvtColor(skimage.data.astronaut()[100:100 + HEIGHT, 150:150 + WIDTH], cv2.COLOR_RGB2BGR)
    blurry = cv2.GaussianBlur(sharp.astype(np.float32) / 255.0, (0, 0), 2.0)
    paths = {'sharp': folder / 'sharp.png', 'blurry': folder / 'blurry.png', 'vit': folder / 'tiny_vit.pth',
             'vgg': folder / 'vgg' / fmaps.VGG19_FILE}
    assert cv2.imwrite(str(paths['sharp']), sharp)
    assert cv2.imwrite(str(paths['blurry']), np.round(blurry * 65535).astype(np.uint16))
    torch.manual_seed(0)
    torch.save(create_vit('mae', False, **TINY_VIT).state_dict(), paths['vit'])
    assert os.path.basename(torchvision.models.VGG19_Weights.IMAGENET1K_V1.url) == fmaps.VGG19_FILE
    paths['vgg'].parent.mkdir()
    # torchvision's keys and shapes; random convolutions, zero classifier (the script never uses it)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
    for module in features:  # torchvision's VGG initialisation, so conv5_4 activations are not vanishing
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
            torch.nn.init.zeros_(module.bias)
    state = {f'features.{k}': v for k, v in features.state_dict().items()}
    shapes = {'classifier.0': (4096, 25088), 'classifier.3': (4096, 4096), 'classifier.6': (1000, 4096)}
    for name, shape in shapes.items():
        state[f'{name}.weight'], state[f'{name}.bias'] = torch.zeros(shape), torch.zeros(shape[0])
    torch.save(state, paths['vgg'])
    yield paths
    paths['vgg'].unlink()


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME and a current directory without experiments/pretrained_models."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / 'torch_home'


def _argv(files, out, *extra, sharp=True):
    argv = ['--image', str(files['blurry']), '--out', str(out), '--pretrained', str(files['vit']),
            '--backbone-kwargs', json.dumps(TINY_VIT), '--layer', str(LAYER), '--size', 'none',
            '--vgg-weights', str(files['vgg']), '--device', 'cpu']
    if sharp:
        argv += ['--sharp', str(files['sharp'])]
    return argv + list(extra)


def _reference_pca(features, percentile):
    """Independent PCA: numpy SVD of the centred features, projections scaled per component."""
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:3].T
    if percentile:
        low, high = np.percentile(projected, [percentile, 100 - percentile], axis=0)
    else:
        low, high = projected.min(axis=0), projected.max(axis=0)
    return np.clip((projected - low) / (high - low), 0, 1)


def _assert_same_up_to_sign(maps, reference, atol=1e-6):
    """Every channel of ``maps`` equals the reference's or its mirror (a component's sign is free)."""
    got = np.concatenate([m.reshape(-1, 3) for m in maps])
    for channel in range(3):
        same = np.allclose(got[:, channel], reference[:, channel], atol=atol)
        mirrored = np.allclose(got[:, channel], 1 - reference[:, channel], atol=atol)
        assert same or mirrored, f'channel {channel} differs from the SVD reference'


@pytest.mark.parametrize('percentile', [0.0, 5.0])
def test_pca_rgb_equals_numpy_svd_of_centred_features(percentile):
    rng = np.random.default_rng(0)
    grids = [(4, 6), (4, 6)]
    # structured features: three strong directions of different strength plus noise, offset mean
    basis = rng.normal(size=(3, 40))
    features = (rng.normal(size=(48, 3)) * [9.0, 4.0, 2.0]) @ basis + 0.3 * rng.normal(size=(48, 40)) + 5.0
    maps, explained = fmaps.pca_rgb([torch.from_numpy(features[:24]).float(), features[24:]], grids, percentile)
    assert [m.shape for m in maps] == [(4, 6, 3), (4, 6, 3)] and maps[0].dtype == np.float32
    _assert_same_up_to_sign(maps, _reference_pca(features, percentile), atol=1e-5)
    singular = np.linalg.svd(features - features.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(explained, singular[:3] ** 2 / (singular ** 2).sum(), rtol=1e-6)
    assert explained[0] > explained[1] > explained[2]
    everything = np.concatenate([m.reshape(-1, 3) for m in maps])
    if percentile == 0:  # min-max: every channel spans exactly [0, 1]
        np.testing.assert_allclose(everything.min(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(everything.max(axis=0), 1, atol=1e-6)
    else:  # percentile scaling clips the extremes of each channel to 0 and 1
        assert ((everything == 0).sum(axis=0) >= 2).all() and ((everything == 1).sum(axis=0) >= 2).all()


def test_pca_rgb_fits_one_basis_on_all_images():
    """Two images: the maps are the joint PCA cut in two, not two separate PCAs."""
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(6, 16)), rng.normal(size=(6, 16)) * 3 + 2
    joint, _ = fmaps.pca_rgb([first, second], [(2, 3), (2, 3)], percentile=0)
    _assert_same_up_to_sign(joint, _reference_pca(np.concatenate([first, second]), 0))
    alone, _ = fmaps.pca_rgb([first], [(2, 3)], percentile=0)
    assert not np.allclose(alone[0], joint[0], atol=1e-3)
    _assert_same_up_to_sign(alone, _reference_pca(first, 0))


def test_pca_rgb_sign_rule_and_degenerate_inputs():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(12, 8))
    maps, _ = fmaps.pca_rgb([features], [(3, 4)], percentile=0)
    flipped, _ = fmaps.pca_rgb([-features], [(3, 4)], percentile=0)
    np.testing.assert_allclose(maps[0], flipped[0], atol=1e-6)  # the sign is fixed by a rule, not by the SVD
    projected = (features - features.mean(0)) @ np.linalg.svd(features - features.mean(0))[2][:3].T
    strongest = np.abs(projected).argmax(axis=0)
    assert all(maps[0].reshape(-1, 3)[strongest[c], c] == pytest.approx(1.0) for c in range(3))
    constant, explained = fmaps.pca_rgb([np.ones((6, 5))], [(2, 3)])
    assert np.all(constant[0] == 0.5) and explained == [0.0, 0.0, 0.0]
    two_channels, _ = fmaps.pca_rgb([rng.normal(size=(6, 2))], [(2, 3)], percentile=0)
    assert np.all(two_channels[0][..., 2] == 0.5) and two_channels[0][..., 0].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r'do not fit a 3x3 grid'):
        fmaps.pca_rgb([features], [(3, 3)])
    with pytest.raises(ValueError, match=r'percentile must be in \[0, 50\)'):
        fmaps.pca_rgb([features], [(3, 4)], percentile=50)


@pytest.mark.integration
def test_grids_of_a_64x96_image_are_4x6(files):
    image = fmaps.read_image(str(files['sharp']))
    assert image.shape == (HEIGHT, WIDTH, 3)
    extractor = ViTFeatureExtractor('mae', pretrained=str(files['vit']), layers=LAYER, **TINY_VIT)
    tokens, grid = fmaps.vit_patch_tokens(extractor, image, LAYER)
    assert grid == (4, 6) and tuple(tokens.shape) == (24, TINY_VIT['embed_dim'])
    batch = torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():  # the patch tokens of the unmasked forward, CLS dropped
        torch.testing.assert_close(tokens, extractor(batch, keep=None)[LAYER][0, 1:])
    vgg = fmaps.VGG19Features(files['vgg'])
    positions, vgg_grid = fmaps.vgg_positions(vgg, image)
    assert vgg_grid == vgg.grid(HEIGHT, WIDTH) == (4, 6) and vgg.stride == 16
    assert tuple(positions.shape) == (24, 512)
    # independent: torchvision's VGG-19 with the saved weights, ImageNet mean/std, up to conv5_4 (index 34)
    reference = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
    reference.load_state_dict({k[len('features.'):]: v for k, v in torch.load(files['vgg'], mmap=True).items()
                               if k.startswith('features.')})
    normed = (batch - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference[:35](normed)[0]
    assert expected.abs().mean() > 0.01  # activations of a useful size, so the comparison means something
    torch.testing.assert_close(positions, expected.flatten(1).T, rtol=1e-4, atol=1e-4)
    assert fmaps.VGG19Features(files['vgg'], 'pool5').grid(HEIGHT, WIDTH) == (2, 3)
    # a size that is not a multiple of 16 is padded: both grids still cover every pixel
    assert fmaps.vgg_positions(vgg, image[:50, :70])[1] == extractor.token_grid(50, 70) == (4, 5)


def test_main_writes_the_figure_of_two_rows(files, tmp_path, capsys):
    out = tmp_path / 'figs' / 'fig1.png'
    result = fmaps.main(_argv(files, out))
    figure = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert figure is not None and figure.dtype == np.uint8
    header = fmaps.header_height()
    assert figure.shape == (header + 2 * HEIGHT, 3 * WIDTH, 3)
    np.testing.assert_array_equal(figure, result['figure'])
    assert result['vit_grid'] == (4, 6) and result['vgg_grid'] == (4, 6)
    printed = capsys.readouterr().out
    assert 'ViT block 2: 4x6 tokens' in printed and 'VGG-19 conv5_4: 4x6' in printed
    # the ViT maps are the joint PCA of both images' patch tokens, computed independently here
    extractor = ViTFeatureExtractor('mae', pretrained=str(files['vit']), layers=LAYER, **TINY_VIT)
    tokens = []
    for name in ('blurry', 'sharp'):
        batch = torch.from_numpy(fmaps.read_image(str(files[name]))).permute(2, 0, 1)[None]
        with torch.no_grad():
            tokens.append(extractor(batch, keep=None)[LAYER][0, 1:].double().numpy())
    _assert_same_up_to_sign(result['vit'], _reference_pca(np.concatenate(tokens), fmaps.DEFAULT_PERCENTILE), 1e-4)
    assert not np.allclose(result['vit'][0], result['vit'][1])  # blurry and sharp rows differ
    # each panel shows its map in 16x16 blocks (below the image-name label of the first column)
    for row in range(2):
        top = header + row * HEIGHT
        for column, maps in ((1, result['vit']), (2, result['vgg'])):
            panel = figure[top:top + HEIGHT, column * WIDTH:(column + 1) * WIDTH]
            expected = cv2.cvtColor(np.round(np.repeat(np.repeat(maps[row], 16, 0), 16, 1) * 255).astype(np.uint8),
                                    cv2.COLOR_RGB2BGR)
            np.testing.assert_allclose(panel.astype(int), expected.astype(int), atol=1)
        image = figure[top + HEIGHT // 2:top + HEIGHT, :WIDTH]  # first column: the photograph itself
        reference = cv2.imread(str(files['sharp' if row else 'blurry']), cv2.IMREAD_UNCHANGED)
        reference = (reference / (65535.0 if reference.dtype == np.uint16 else 255.0) * 255 + 0.5).astype(np.uint8)
        np.testing.assert_allclose(image.astype(int), reference[HEIGHT // 2:].astype(int), atol=1)
    # the header carries text (title, column labels), the rest of it is white
    assert (figure[:header] < 128).any() and np.median(figure[:header]) == 255


def test_single_image_without_vgg_needs_no_weights(files, tmp_path, offline_home):
    out = tmp_path / 'one.png'
    argv = _argv(files, out, '--no-vgg', sharp=False)
    argv = argv[:argv.index('--vgg-weights')] + argv[argv.index('--vgg-weights') + 2:]
    result = fmaps.main(argv)
    assert result['vgg'] is None and len(result['vit']) == 1
    assert cv2.imread(str(out)).shape == (fmaps.header_height() + HEIGHT, 2 * WIDTH, 3)


def test_random_weights_follow_the_seed(files, tmp_path):
    def vit_maps(seed):
        argv = _argv(files, tmp_path / f'seed{seed}.png', '--no-vgg', '--seed', str(seed), sharp=False)
        argv[argv.index('--pretrained') + 1] = 'false'
        return fmaps.main(argv)['vit'][0]
    first = vit_maps(3)
    np.testing.assert_array_equal(first, vit_maps(3))
    assert not np.allclose(first, vit_maps(4), atol=1e-3)


def test_size_resizes_the_shorter_side(files, tmp_path):
    image = fmaps.read_image(str(files['sharp']))
    assert fmaps.resize_shorter_side(image, None) is image
    assert fmaps.resize_shorter_side(image, 32).shape == (32, 48, 3)
    assert fmaps.resize_shorter_side(image, 224).shape == (224, 336, 3)
    assert fmaps.parse_size('None') is None and fmaps.parse_size('224') == 224
    result = fmaps.main(_argv(files, tmp_path / 'small.png', '--size', '32', '--no-vgg'))
    assert result['vit_grid'] == (2, 3) and result['figure'].shape[1] == 2 * 48
    with pytest.raises(SystemExit) as error:
        fmaps.main(_argv(files, tmp_path / 'x.png', '--size', '-3'))
    assert error.value.code == 2


def test_vgg_weights_are_found_where_basicsr_looks(files, offline_home):
    with pytest.raises(FileNotFoundError) as error:
        fmaps.find_vgg_weights()
    message = str(error.value)
    hub_file = offline_home / 'hub' / 'checkpoints' / fmaps.VGG19_FILE
    assert fmaps.VGG19_FILE in message and str(hub_file) in message
    assert os.path.join('experiments', 'pretrained_models', fmaps.VGG19_FILE) in message and '--no-vgg' in message
    hub_file.parent.mkdir(parents=True)
    hub_file.symlink_to(files['vgg'])
    assert fmaps.find_vgg_weights() == str(hub_file)
    os.makedirs('experiments/pretrained_models')
    os.symlink(files['vgg'], fmaps.BASICSR_VGG_PATH)
    assert fmaps.find_vgg_weights() == fmaps.BASICSR_VGG_PATH  # BasicSR's place is checked first
    with pytest.raises(FileNotFoundError, match=r'VGG-19 weights not found: .*nope\.pth \(--vgg-weights\)'):
        fmaps.find_vgg_weights('nope.pth')


def test_wrong_vgg_file_is_an_error(files, tmp_path):
    from basicsr.archs.vgg_arch import NAMES
    assert fmaps.VGG19_NAMES == tuple(NAMES['vgg19'])  # --vgg-layer takes BasicSR's layer names
    bad = tmp_path / 'vgg16.pth'
    torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(ValueError, match=r"vgg16\.pth is not torchvision's VGG-19 .*missing keys "
                                         r"\['features\.0\.bias'"):
        fmaps.VGG19Features(bad)
    with pytest.raises(ValueError, match="unknown VGG-19 layer 'conv6_1'"):
        fmaps.VGG19Features(files['vgg'], 'conv6_1')


@pytest.mark.parametrize('case', ['missing image', 'missing sharp', 'smaller than a patch', 'layer 0',
                                  'layer too deep', 'sizes differ', 'no vgg weights'])
def test_errors_are_one_line_with_exit_status_2(files, tmp_path, offline_home, capsys, case):
    out = tmp_path / 'fig.png'
    argv = _argv(files, out)
    if case == 'missing image':
        argv[argv.index('--image') + 1] = str(tmp_path / 'nope.png')
        expected = r'image not found: .*nope\.png \(--image\)'
    elif case == 'missing sharp':
        argv[argv.index('--sharp') + 1] = str(tmp_path / 'gone.png')
        expected = r'image not found: .*gone\.png \(--sharp\)'
    elif case == 'smaller than a patch':
        small = tmp_path / 'small.png'
        cv2.imwrite(str(small), np.zeros((10, 40, 3), np.uint8))
        argv = _argv(files, out, sharp=False)
        argv[argv.index('--image') + 1] = str(small)
        expected = r'small\.png is 40x10 pixels .* smaller than one 16x16 ViT patch'
    elif case == 'layer 0':
        argv[argv.index('--layer') + 1] = '0'
        expected = r'--layer must be a transformer block index from 1, got 0'
    elif case == 'layer too deep':
        argv[argv.index('--layer') + 1] = '7'
        expected = r'layers must be block indices in 1\.\.6 for this backbone, got 7'
    elif case == 'sizes differ':
        other = tmp_path / 'other.png'
        cv2.imwrite(str(other), np.zeros((HEIGHT, 80, 3), np.uint8))
        argv[argv.index('--sharp') + 1] = str(other)
        expected = r'the images differ in size: --image .* is 96x64, --sharp .*other\.png is 80x64'
    else:
        argv = argv[:argv.index('--vgg-weights')] + argv[argv.index('--vgg-weights') + 2:]
        expected = r'VGG-19 weights vgg19-dcbb9e9d\.pth .* not found'
    assert fmaps.cli(argv) == 2
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1 and 'error: ' in stderr
    assert re.search(expected, stderr), stderr
    assert not out.exists()


@pytest.mark.integration
def test_command_line_exits_2_without_traceback(files, tmp_path):
    argv = _argv(files, tmp_path / 'fig.png', '--no-vgg')
    argv[argv.index('--image') + 1] = str(tmp_path / 'nope.png')
    proc = run(['python', REPO / 'scripts' / 'vit_feature_maps.py', *argv], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert 'vit_feature_maps.py: error: image not found:' in proc.stderr and 'nope.png' in proc.stderr
    assert 'Traceback' not in proc.stderr
