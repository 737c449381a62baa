"""Every options file basicsr-vitloss-upstream writes trains and tests in the BasicSR tree by itself: the
tree's own basicsr/train.py and basicsr/test.py, tiny sizes, in a subprocess where basicsr_vitloss cannot
be imported. The checkpoint loads strictly into the plugin's class of the same name (the state dicts
interchange), and the losses are logged."""
import time

import pytest
import torch
import yaml
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_vitloss.upstream import options as upstream_options
from basicsr_vitloss.utils.registration import plugin_class

import basicsr_tree as bt
from upstream_helpers import written_tree

PAIRS = [(grid, net, loss) for grid in upstream_options.GRIDS for net in grid.networks
         for loss in upstream_options.LOSSES]


@pytest.fixture(scope='module')
def tree_and_data(tmp_path_factory):
    base = tmp_path_factory.mktemp('upstream_runs')
    root, change = written_tree(base / 'BasicSR', 'compat,method,dpdd')
    data = base / 'datasets'
    bt.make_gopro(data)
    bt.make_dpdd(data)
    vgg = bt.write_vgg19_weights(root)  # BasicSR's VGG reads experiments/pretrained_models/ under the cwd
    yield root, data, base
    vgg.unlink()


@pytest.mark.integration
@pytest.mark.parametrize('grid,net,loss', PAIRS, ids=[f'{g.data}-{n}-{x}' for g, n, x in PAIRS])
def test_generated_options_train_and_test_in_the_tree_without_the_plugin(grid, net, loss, tree_and_data):
    root, data, base = tree_and_data
    train_rel, test_rel = upstream_options.target_paths(grid, net, loss)
    train_opt = bt.tiny_overrides(yaml.safe_load((root / train_rel).read_text()), data)
    test_opt = bt.tiny_overrides(yaml.safe_load((root / test_rel).read_text()), data)
    train_file = bt.write_options(train_opt, base / 'options' / f'{train_opt["name"]}.yml')
    test_file = bt.write_options(test_opt, base / 'options' / f'{test_opt["name"]}.yml')

    start = time.perf_counter()
    bt.assert_ok(bt.run_tree(root, 'train', ['-opt', train_file]), f'train {train_rel}')
    seconds = time.perf_counter() - start
    experiment = bt.experiment_dir(root, train_opt['name'])
    log = bt.logs(experiment, 'train')
    assert len(bt.log_losses(log, 'l_pix')) == 2, log[-3000:]
    if loss != 'baseline':
        percep = bt.log_losses(log, 'l_percep')
        assert len(percep) == 2 and all(torch.isfinite(torch.tensor(percep))), log[-3000:]
    assert f"Network [{train_opt['network_g']['type']}] is created." in log
    state = torch.load(experiment / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)
    kwargs = {k: v for k, v in train_opt['network_g'].items() if k != 'type'}
    plugin_net = plugin_class(ARCH_REGISTRY, train_opt['network_g']['type'])(**kwargs)
    plugin_net.load_state_dict(state['params'], strict=True)

    bt.assert_ok(bt.run_tree(root, 'test', ['-opt', test_file]), f'test {test_rel}')
    results = bt.results_dir(root, test_opt['name'])
    test_log = bt.logs(results, 'test')
    assert '# psnr:' in test_log, test_log[-3000:]
    for dataset in test_opt['datasets'].values():
        assert list((results / 'visualization' / dataset['name']).glob('*.png')), dataset['name']
    print(f'\n{train_rel}: train.py 2 iterations {seconds:.1f} s')
