"""The state after the pull request is merged: a BasicSR tree that has NAFNet, the ViT losses, ... of its
own, with basicsr-vitloss installed beside it. Both work; BasicSR's classes keep the plain names, the
plugin's are ``<Name>_vitloss``, and training says which class it built."""
import pytest
import yaml

import basicsr_tree as bt
from conftest import REPO, run
from upstream_helpers import written_tree

TRAIN = 'options/train/TransformerPerceptualLoss/train_NAFNet_GoPro_local.yml'


@pytest.mark.integration
def test_merged_tree_and_installed_plugin_both_train(tmp_path):
    root, _ = written_tree(tmp_path / 'BasicSR', 'compat,method')
    data = tmp_path / 'datasets'
    bt.make_gopro(data)
    opt = bt.tiny_overrides(yaml.safe_load((root / TRAIN).read_text()), data)
    own = bt.write_options(opt, tmp_path / 'tree_classes.yml')
    plugin_opt = dict(opt, name='plugin_classes')
    plugin_opt['network_g'] = dict(opt['network_g'], type='NAFNetLocal_vitloss')
    plugin_opt['train'] = dict(opt['train'], perceptual_opt=dict(opt['train']['perceptual_opt'],
                                                                  type='LocalMAEPerceptualLoss_vitloss'))
    plugin_file = bt.write_options(plugin_opt, tmp_path / 'plugin_classes.yml')
    # the tree first on the path, the plugin active through its startup hook (this checkout's code)
    env = {'PYTHONPATH': f'{root}:{REPO}'}
    for options_file, name, built in ((own, opt['name'], 'basicsr.archs.nafnet_arch.NAFNetLocal'),
                                      (plugin_file, 'plugin_classes', 'basicsr_vitloss.archs.nafnet_arch.NAFNetLocal')):
        proc = run(['python', str(root / 'basicsr' / 'train.py'), '-opt', options_file], cwd=root, **env)
        assert "the plugin's is registered as 'NAFNetLocal_vitloss'" in proc.stderr, proc.stderr[-3000:]
        log = bt.logs(bt.experiment_dir(root, name), 'train')
        assert len(bt.log_losses(log, 'l_percep')) == 2, log[-3000:]
        if name == opt['name']:  # the plain names build BasicSR's classes, and the log says so
            assert f'builds {built}' in log and "'NAFNetLocal_vitloss'" in log, log[-3000:]
            assert 'builds basicsr.losses.vit_perceptual_loss.LocalMAEPerceptualLoss' in log, log[-3000:]
        else:
            assert 'Network [NAFNetLocal] is created.' in log
