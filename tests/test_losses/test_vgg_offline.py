"""BasicSR's VGG PerceptualLoss without internet: where the VGG-19 weights file must be.

basicsr 1.4.2's VGGFeatureExtractor loads ``experiments/pretrained_models/vgg19-dcbb9e9d.pth``
(relative to the current directory) if it exists, else calls torchvision's
``vgg19(pretrained=True)``, which (torchvision 0.29: deprecated but still accepted, with
UserWarnings) means ``weights=VGG19_Weights.IMAGENET1K_V1``; torch.hub then loads
``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` if present (no hash check on a cached file) and
downloads it otherwise. These tests put RANDOM VGG-19 weights in those places, so they prove which
file is used, without downloading anything.
"""
import os

import pytest
import torch
import torchvision

from basicsr.archs import vgg_arch
from basicsr.losses.basic_loss import PerceptualLoss

VGG19_FILE = 'vgg19-dcbb9e9d.pth'  # basename of torchvision's VGG19_Weights.IMAGENET1K_V1 url
LOSS_OPT = dict(layer_weights={'conv5_4': 1}, vgg_type='vgg19', use_input_norm=True, range_norm=False,
                perceptual_weight=1.0, style_weight=0, criterion='l1')


@pytest.fixture(scope='module')
def random_vgg19(tmp_path_factory):
    """RANDOM VGG-19 weights saved with torch.save; yields (path, the feature weights saved). The
    575 MB file is deleted afterwards."""
    assert os.path.basename(torchvision.models.VGG19_Weights.IMAGENET1K_V1.url) == VGG19_FILE
    torch.manual_seed(1234)
    state = torchvision.models.vgg19(weights=None).state_dict()
    path = tmp_path_factory.mktemp('vgg') / VGG19_FILE
    torch.save(state, path)
    features = {k: v.clone() for k, v in state.items() if k.startswith('features.')}
    del state
    yield path, features
    path.unlink()


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, and a current directory without BasicSR's experiments/pretrained_models."""
    home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(home))
    # torch.hub.get_dir() reads TORCH_HOME on every call unless torch.hub.set_dir() pinned a folder
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    assert torch.hub.get_dir() == str(home / 'hub')
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    assert not os.path.exists(vgg_arch.VGG_PRETRAIN_PATH)
    return home


def _build_loss():
    with pytest.warns(UserWarning):  # torchvision's deprecation warnings for pretrained=
        return PerceptualLoss(**LOSS_OPT)


def _assert_uses(loss, features):
    """The loss's VGG convolutions (conv1_1 .. conv5_4) hold exactly the saved weights."""
    names = vgg_arch.NAMES['vgg19']
    convs = [name for name in loss.vgg.vgg_net._modules if name.startswith('conv')]
    assert len(convs) == 16 and convs[-1] == 'conv5_4'
    for name in convs:
        index = names.index(name)
        layer = getattr(loss.vgg.vgg_net, name)
        assert torch.equal(layer.weight, features[f'features.{index}.weight']), name
        assert torch.equal(layer.bias, features[f'features.{index}.bias']), name


def _assert_loss_works(loss):
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        same, style = loss(x, x)
        different, _ = loss(x, y)
    assert style is None
    assert same.item() == 0.0
    assert different.item() > 0.0
    assert all(not p.requires_grad for p in loss.vgg.parameters())


@pytest.mark.integration
def test_perceptual_loss_uses_weights_in_torch_home(random_vgg19, offline_torch_home, capsys):
    path, features = random_vgg19
    checkpoints = offline_torch_home / 'hub' / 'checkpoints'
    checkpoints.mkdir(parents=True)
    (checkpoints / VGG19_FILE).symlink_to(path)
    loss = _build_loss()
    assert 'Downloading' not in capsys.readouterr().out
    _assert_uses(loss, features)
    _assert_loss_works(loss)


@pytest.mark.integration
def test_perceptual_loss_uses_basicsr_pretrain_path(random_vgg19, offline_torch_home, capsys):
    """BasicSR's own location, relative to the directory the training is started from."""
    path, features = random_vgg19
    assert vgg_arch.VGG_PRETRAIN_PATH == f'experiments/pretrained_models/{VGG19_FILE}'
    os.makedirs('experiments/pretrained_models')
    os.symlink(path, vgg_arch.VGG_PRETRAIN_PATH)
    loss = _build_loss()
    assert 'Downloading' not in capsys.readouterr().out
    assert not (offline_torch_home / 'hub' / 'checkpoints' / VGG19_FILE).exists()
    _assert_uses(loss, features)
    _assert_loss_works(loss)


@pytest.mark.integration
def test_without_the_file_perceptual_loss_tries_to_download(offline_torch_home, capsys):
    """Offline and without the file, building the loss fails on the download (outside the tests'
    socket guard: urllib.error.URLError, e.g. '<urlopen error [Errno -2] Name or service not known>')."""
    with pytest.raises(Exception) as error, pytest.warns(UserWarning):
        PerceptualLoss(**LOSS_OPT)
    target = offline_torch_home / 'hub' / 'checkpoints' / VGG19_FILE
    assert f'Downloading: "https://download.pytorch.org/models/{VGG19_FILE}" to {target}' in capsys.readouterr().out
    assert 'network' in str(error.value)  # conftest's guard refused the connection
    assert not target.exists()
