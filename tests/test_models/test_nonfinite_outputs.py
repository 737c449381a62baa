"""A validation / test output holding NaN or inf stops the run with an error naming the image and the iteration,
in BasicSR's own validation and in the plugin's float validation, instead of saving black pixels and scoring
them."""
import functools
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import basicsr_vitloss  # noqa: F401  (registration, the patched validation)
from basicsr.models import build_model

import conftest

NETWORK = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'enc_blk_nums': [1], 'dec_blk_nums': [1],
           'middle_blk_num': 1}
STOCK = {'psnr8': {'type': 'calculate_psnr', 'crop_border': 0}}  # BasicSR's own validation runs
FLOAT = {'psnr': {'type': 'calculate_psnr_float'}}  # the plugin's float validation runs


class TwoImages(Dataset):
    """'dark' (all 0.2) then 'bright' (all 0.8), 12x12, the ground truth equal to the input."""
    opt = {'name': 'two'}

    def __len__(self):
        return 2

    def __getitem__(self, index):
        name, level = [('dark', 0.2), ('bright', 0.8)][index]
        image = torch.full((3, 12, 12), level)
        return {'lq': image, 'gt': image.clone(), 'lq_path': f'/data/{name}.png', 'gt_path': f'/data/{name}.png'}


NonFiniteForBright = functools.partial(conftest.NonFiniteForBright, pixel=(0, 0, 5, 7))


def model_with(net, tmp_path, metrics, is_train=True, **val):
    opt = {'name': 'nf', 'model_type': 'SRModel', 'is_train': False, 'dist': False, 'rank': 0, 'num_gpu': 0,
           'scale': 1, 'network_g': dict(NETWORK),
           'path': {'pretrain_network_g': None, 'visualization': str(tmp_path / 'vis')},
           'val': {'metrics': metrics, 'suffix': 'out', **val}}
    model = build_model(opt)
    model.net_g = net.eval()
    model.opt['is_train'] = is_train  # training's validation: results saved as <name>/<name>_<iter>.png
    return model


def saved_files(tmp_path):
    return sorted(os.path.relpath(os.path.join(d, f), tmp_path / 'vis')
                  for d, _, files in os.walk(tmp_path / 'vis') for f in files)


@pytest.mark.parametrize('metrics, val', [(STOCK, {}), (FLOAT, {}), (STOCK, {'save_16bit': True})],
                         ids=['basicsr', 'float', 'save_16bit'])
@pytest.mark.parametrize('value', [float('nan'), float('inf')], ids=['nan', 'inf'])
def test_validation_stops_at_the_non_finite_image(tmp_path, metrics, val, value):
    model = model_with(NonFiniteForBright(value), tmp_path, metrics, **val)
    loader = DataLoader(TwoImages(), batch_size=1)
    kind = 'NaN' if value != value else 'inf'
    with pytest.raises(RuntimeError, match=rf'validation output for image bright at iteration 7 has 1 {kind} '
                                           rf'value'):
        model.validation(loader, current_iter=7, tb_logger=None, save_img=True)
    assert saved_files(tmp_path) == [os.path.join('dark', 'dark_7.png')]  # no black image for 'bright'


def test_test_run_names_the_image_and_the_run(tmp_path):
    """basicsr.test passes the options' name as current_iter: the message says test run, not iteration."""
    model = model_with(NonFiniteForBright(float('nan')), tmp_path, STOCK, is_train=False)
    with pytest.raises(RuntimeError, match='output for image bright of test run nf has 1 NaN value') as error:
        model.validation(DataLoader(TwoImages(), batch_size=1), current_iter='nf', tb_logger=None, save_img=True)
    assert 'diverged' in str(error.value)
    assert saved_files(tmp_path) == [os.path.join('two', 'dark_out.png')]


def test_finite_outputs_validate_as_before(tmp_path):
    model = model_with(NonFiniteForBright(0.5), tmp_path, STOCK)
    model.validation(DataLoader(TwoImages(), batch_size=1), current_iter=1, tb_logger=None, save_img=False)
    assert model.metric_results['psnr8'] > 40  # one changed value of 432: close to the target


def test_get_current_visuals_refuses_a_non_finite_output(tmp_path):
    """Other callers (the comparison figure, other models' loops) get the error too, without an image name."""
    model = model_with(NonFiniteForBright(-float('inf')), tmp_path, STOCK)
    model.feed_data(TwoImages()[1] | {'lq': TwoImages()[1]['lq'][None]})
    model.test()
    with pytest.raises(RuntimeError, match=r'network output has 1 inf value of 432 \(not finite\)'):
        model.get_current_visuals()
    model.output = torch.nan_to_num(model.output, posinf=1.0, neginf=0.0)
    assert np.isfinite(model.get_current_visuals()['result'].numpy()).all()
