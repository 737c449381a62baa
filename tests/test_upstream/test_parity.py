"""The bundle written into BasicSR computes what the plugin computes: outputs, input gradients, and
state dicts that load strictly both ways (the bundle's code runs in a subprocess without the plugin)."""
import pytest
import timm
import torch

from basicsr_vitloss.archs.dpdnet_arch import DPDNet
from basicsr_vitloss.archs.nafnet_arch import NAFNet, NAFNetLocal
from basicsr_vitloss.archs.uformer_arch import Uformer
from basicsr_vitloss.losses.psnr_loss import PSNRLoss
from basicsr_vitloss.losses.vit_losses import GlobalDistributionLoss, LocalMAEPerceptualLoss

from basicsr_tree import assert_ok, run_tree
from upstream_helpers import HERE, TINY_VIT_KW, written_tree

ARCHS = {
    'NAFNet': (NAFNet, {'width': 8, 'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1], 'middle_blk_num': 1}),
    'NAFNetLocal': (NAFNetLocal, {'width': 8, 'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1], 'middle_blk_num': 1,
                                  'train_size': [1, 3, 32, 32]}),
    'Uformer': (Uformer, {'img_size': 64, 'embed_dim': 8, 'depths': [1] * 9, 'win_size': 8}),
    'DPDNet': (DPDNet, {'in_channels': 6, 'out_channels': 3}),
}


def _mae_release(path, seed):
    """A random tiny ViT saved as the official mae_pretrain_vit_base.pth ({'model': encoder weights})."""
    torch.manual_seed(seed)
    state = timm.create_model('vit_base_patch16_224.mae', pretrained=False, num_classes=0, **TINY_VIT_KW).state_dict()
    torch.save({'model': state}, path)
    return str(path)


def _cases(tmp_path):
    gen = torch.Generator().manual_seed(0)
    cases, plugin = {}, {}
    for name, (cls, kwargs) in ARCHS.items():
        torch.manual_seed(1)
        net = cls(**kwargs).eval()
        channels = kwargs.get('in_channels', 3)
        x = torch.rand(1, channels, 37, 45, generator=gen)  # odd size: the padding path
        cases[name] = {'kind': 'arch', 'type': name, 'kwargs': kwargs, 'state': net.state_dict(), 'input': x}
        plugin[name] = net
    vit = _mae_release(tmp_path / 'mae_pretrain_vit_base.pth', seed=3)
    losses = {'LocalMAEPerceptualLoss': (LocalMAEPerceptualLoss, {'pretrained': vit, 'layers': 3}),
              'GlobalDistributionLoss': (GlobalDistributionLoss, {'pretrained': vit, 'layers': [2, 3], 'p': 2}),
              'PSNRLoss': (PSNRLoss, {'loss_weight': 1.0})}
    for name, (cls, kwargs) in losses.items():
        if name != 'PSNRLoss':
            kwargs = dict(kwargs, backbone_kwargs=TINY_VIT_KW)
        loss = cls(**kwargs)
        pred, target = torch.rand(2, 3, 48, 64, generator=gen), torch.rand(2, 3, 48, 64, generator=gen)
        cases[name] = {'kind': 'loss', 'type': name, 'kwargs': kwargs, 'state': loss.state_dict(), 'input': pred,
                       'target': target, 'seed': 5}
        plugin[name] = loss
    return cases, plugin


def _plugin_result(case, module):
    x = case['input'].clone().requires_grad_(True)
    if case['kind'] == 'arch':
        out = module(x)
    else:
        torch.manual_seed(case['seed'])
        out = module.value(x, case['target']) if hasattr(module, 'value') else module(x, case['target'])
    (out.sum() if out.dim() else out).backward()
    return out.detach(), x.grad


@pytest.mark.integration
def test_bundle_matches_plugin_outputs_gradients_and_state_dicts(tmp_path):
    tree, _ = written_tree(tmp_path / 'tree', 'compat,method,dpdd')
    cases, plugin = _cases(tmp_path)
    torch.save(cases, tmp_path / 'cases.pt')
    child = tree / 'parity_child.py'
    child.write_text((HERE / 'parity_child.py').read_text())
    proc = run_tree(tree, 'parity_child.py', [str(tmp_path / 'cases.pt'), str(tmp_path / 'out.pt')])
    assert 'parity child done' in assert_ok(proc).stdout
    results = torch.load(tmp_path / 'out.pt', weights_only=False)
    maxima = {}
    for name, case in cases.items():
        bundle = results[name]
        assert bundle['module'].startswith('basicsr.'), bundle['module']
        out, grad = _plugin_result(case, plugin[name])
        torch.testing.assert_close(bundle['output'], out, rtol=0, atol=1e-6)
        torch.testing.assert_close(bundle['grad'], grad, rtol=0, atol=1e-6)
        maxima[name] = (float((bundle['output'] - out).abs().max()), float((bundle['grad'] - grad).abs().max()))
        # the bundle's state dict loads strictly into the plugin's class, and the outputs stay equal
        plugin[name].load_state_dict(bundle['state'], strict=True)
        assert bundle['state'].keys() == case['state'].keys()
    print('parity maxima (output, input gradient):', maxima)
