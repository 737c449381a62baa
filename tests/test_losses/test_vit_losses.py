"""The two ViT perceptual losses against an independent reference built from timm's own modules."""
import numpy as np
import pytest
import scipy.stats
import timm
import torch

from basicsr.utils.registry import LOSS_REGISTRY
from basicsr_vitloss.losses.vit_features import ViTFeatureExtractor, read_checkpoint
from basicsr_vitloss.losses.vit_losses import GlobalDistributionLoss, LocalMAEPerceptualLoss

from conftest import TINY_VIT as TINY, run, tiny_options
FEATURES = ['token', 'query', 'key', 'value', 'qkv']


def tiny_loss(cls, **kwargs):
    kwargs.setdefault('pretrained', False)
    kwargs.setdefault('backbone_kwargs', TINY)
    return cls(**kwargs)


def images(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator)


def mae_pos_embed(vit, rows, cols):
    """The position embedding resampled as MAE's interpolate_pos_embed does (the authors' code): the
    patch part bicubic, align_corners False, no antialias; the CLS part unchanged."""
    side = int((vit.pos_embed.shape[1] - 1) ** 0.5)
    grid = vit.pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, size=(rows, cols), mode='bicubic', align_corners=False)
    return torch.cat([vit.pos_embed[:, :1], grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


def reference_features(vit, x, layer, feature, interpolation='mae'):
    """Features of a timm VisionTransformer computed with timm's own modules (no masking): timm's patch
    embedding, the position embedding resampled by MAE's kernel ('mae') or by timm itself
    (dynamic_img_size, 'timm'), blocks 1..l."""
    x = ((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
         / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    if interpolation == 'timm':
        tokens = vit._pos_embed(vit.patch_embed(x))
    else:
        patches = vit.patch_embed(x)  # (B, rows, cols, D) with dynamic_img_size
        pos = mae_pos_embed(vit, *patches.shape[1:3])
        tokens = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), patches.flatten(1, 2)], dim=1) + pos
    tokens = vit.norm_pre(tokens)
    for index, block in enumerate(vit.blocks, start=1):
        if index == layer:
            if feature == 'token':
                return block(tokens)
            qkv = block.attn.qkv(block.norm1(tokens))
            q, k, v = qkv.split(vit.embed_dim, dim=-1)
            return {'query': q, 'key': k, 'value': v, 'qkv': qkv}[feature]
        tokens = block(tokens)
    raise AssertionError('layer beyond depth')


def reference_vit(loss):
    """A timm ViT holding the same weights as the loss's extractor."""
    torch.manual_seed(0)
    vit = timm.create_model('vit_base_patch16_224.mae', pretrained=False, num_classes=0, dynamic_img_size=True, **TINY)
    ours = loss.vit
    state = vit.state_dict()
    state['cls_token'] = ours.prefix.detach().clone()
    state['pos_embed'] = ours.pos_embed.detach().clone()
    state['patch_embed.proj.weight'] = ours.patch_proj.weight.detach().clone()
    state['patch_embed.proj.bias'] = ours.patch_proj.bias.detach().clone()
    for key, value in ours.blocks.state_dict().items():
        state[f'blocks.{key}'] = value.clone()
    vit.load_state_dict(state)
    return vit.eval()


@pytest.mark.parametrize('cls', [LocalMAEPerceptualLoss, GlobalDistributionLoss])
@pytest.mark.parametrize('feature', FEATURES)
def test_identical_images_give_exactly_zero_with_shared_mask(cls, feature):
    loss = tiny_loss(cls, feature=feature, mask_ratio=0.5)
    x = images(2, 3, 48, 64)
    percep, style = loss(x, x.clone())
    assert style is None
    assert percep.item() == 0.0


@pytest.mark.parametrize('feature', FEATURES)
@pytest.mark.parametrize('size', [(64, 64), (48, 80)])
@pytest.mark.parametrize('interpolation', ['mae', 'timm'])
def test_local_loss_matches_reference(feature, size, interpolation):
    loss = tiny_loss(LocalMAEPerceptualLoss, feature=feature, layers=[2, 5], mask_ratio=0, loss_weight=0.7,
                     pos_embed_interpolation=interpolation)
    vit = reference_vit(loss)
    pred, target = images(2, 3, *size, seed=1), images(2, 3, *size, seed=2)
    with torch.no_grad():
        expected = 0.7 * sum((reference_features(vit, pred, layer, feature, interpolation)
                              - reference_features(vit, target, layer, feature, interpolation)).abs().mean()
                             for layer in (2, 5))
    torch.testing.assert_close(loss.value(pred, target), expected, rtol=1e-5, atol=1e-6)


def test_the_two_position_embedding_kernels_differ_measurably():
    """MAE's kernel (no antialias) and timm's (antialias) give other features at other grid sizes."""
    mae = tiny_loss(LocalMAEPerceptualLoss, layers=5, mask_ratio=0, pos_embed_interpolation='mae')
    timm_kernel = tiny_loss(LocalMAEPerceptualLoss, layers=5, mask_ratio=0, pos_embed_interpolation='timm')
    timm_kernel.load_state_dict(mae.state_dict())
    x = images(1, 3, 128, 128, seed=9)
    with torch.no_grad():
        a, b = mae.vit(x)[5], timm_kernel.vit(x)[5]
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="pos_embed_interpolation must be one of mae, timm, got 'pil'"):
        tiny_loss(LocalMAEPerceptualLoss, pos_embed_interpolation='pil')


def _reference_global(vit, pred, target, layer, feature, p):
    fp = reference_features(vit, pred, layer, feature)
    ft = reference_features(vit, target, layer, feature)
    total = 0.0
    for b in range(fp.shape[0]):
        for i in range(fp.shape[1]):  # every token, CLS included
            u, v = np.sort(fp[b, i].numpy()), np.sort(ft[b, i].numpy())
            total += float(np.sum(np.abs(u - v)**p)**(1 / p))
    return total / fp.shape[0]


@pytest.mark.parametrize('feature', ['token', 'key'])
@pytest.mark.parametrize('p', [1, 2, 3])
def test_global_loss_matches_per_token_loop(feature, p):
    loss = tiny_loss(GlobalDistributionLoss, feature=feature, layers=3, mask_ratio=0, p=p, loss_weight=1.0)
    vit = reference_vit(loss)
    pred, target = images(2, 3, 32, 48, seed=3), images(2, 3, 32, 48, seed=4)
    with torch.no_grad():
        expected = _reference_global(vit, pred, target, 3, feature, p)
    assert loss.value(pred, target).item() == pytest.approx(expected, rel=1e-5)


def _reference_global_torch(vit, pred, target, layer, p):
    """The global loss as a Python loop over images and tokens with torch.sort on each token (autograd
    through the sort): (sum_d |sort(u)_d - sort(v)_d|^p)^(1/p), summed over tokens, mean over images."""
    fp = reference_features(vit, pred, layer, 'token')
    with torch.no_grad():
        ft = reference_features(vit, target, layer, 'token')
    total = 0
    for b in range(fp.shape[0]):
        for i in range(fp.shape[1]):
            gap = torch.sort(fp[b, i]).values - torch.sort(ft[b, i]).values
            total = total + gap.abs().pow(p).sum().pow(1 / p)
    return total / fp.shape[0]


@pytest.mark.parametrize('p', [1, 2])
def test_global_loss_input_gradient_matches_per_token_loop_in_float64(p):
    """Same weights, float64 throughout: value and input gradient equal the loop's to rounding. (In float32
    they need not: channel values closer than float32 rounding can sort the other way in the two and send
    gradient to other elements, see benchmarks/results/loss_bench.md.)"""
    loss = tiny_loss(GlobalDistributionLoss, layers=3, mask_ratio=0, p=p, loss_weight=1.0)
    vit = reference_vit(loss).double()
    loss = loss.double()
    pred, target = images(2, 3, 32, 48, seed=3).double(), images(2, 3, 32, 48, seed=4).double()
    ours_pred, ref_pred = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    ours = loss.value(ours_pred, target)
    expected = _reference_global_torch(vit, ref_pred, target, 3, p)
    assert ours.dtype == torch.float64
    assert ours.item() == pytest.approx(expected.item(), rel=1e-12)
    ours.backward()
    expected.backward()
    scale = ref_pred.grad.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(ours_pred.grad, ref_pred.grad, rtol=1e-9, atol=1e-11 * scale)


def test_global_p1_is_dim_times_scipy_wasserstein():
    loss = tiny_loss(GlobalDistributionLoss, layers=2, mask_ratio=0, p=1, loss_weight=1.0)
    vit = reference_vit(loss)
    pred, target = images(1, 3, 32, 32, seed=5), images(1, 3, 32, 32, seed=6)
    with torch.no_grad():
        fp, ft = reference_features(vit, pred, 2, 'token')[0], reference_features(vit, target, 2, 'token')[0]
    dim = fp.shape[-1]
    expected = sum(dim * scipy.stats.wasserstein_distance(fp[i].numpy(), ft[i].numpy()) for i in range(fp.shape[0]))
    assert loss.value(pred, target).item() == pytest.approx(expected, rel=1e-5)


def test_normalize_by_dim_variant_divides_the_inner_sum():
    kwargs = dict(layers=2, mask_ratio=0, p=2, loss_weight=1.0)
    paper = tiny_loss(GlobalDistributionLoss, **kwargs)
    authors = tiny_loss(GlobalDistributionLoss, normalize_by_dim=True, **kwargs)
    authors.load_state_dict(paper.state_dict())
    pred, target = images(1, 3, 32, 32, seed=7), images(1, 3, 32, 32, seed=8)
    assert authors.value(pred, target).item() == pytest.approx(paper.value(pred, target).item() / 64**0.5, rel=1e-5)


@pytest.mark.parametrize('cls', [LocalMAEPerceptualLoss, GlobalDistributionLoss])
def test_gradients_reach_pred_only_and_vit_stays_frozen(cls):
    loss = tiny_loss(cls)
    model = torch.nn.ModuleDict({'net': torch.nn.Conv2d(3, 3, 3, padding=1), 'loss': loss})
    model.train()
    assert not loss.vit.training and all(not m.training for m in loss.vit.modules())
    assert not any(p.requires_grad for p in loss.parameters())
    x, target = images(2, 3, 32, 32, seed=1), images(2, 3, 32, 32, seed=2).requires_grad_()
    pred = model['net'](x)
    loss(pred, target)[0].backward()
    assert model['net'].weight.grad is not None and model['net'].weight.grad.abs().sum() > 0
    assert target.grad is None, 'a gradient reached the target branch'
    assert all(p.grad is None for p in loss.parameters())


def test_identical_tokens_give_finite_gradients_for_p2():
    loss = tiny_loss(GlobalDistributionLoss)
    x = images(1, 3, 32, 32)
    pred = x.clone().requires_grad_()
    loss(pred, x)[0].backward()
    assert torch.isfinite(pred.grad).all()


def test_only_blocks_up_to_the_deepest_layer_are_kept_and_run():
    assert len(tiny_loss(LocalMAEPerceptualLoss, layers=[1, 3]).vit.blocks) == 3
    # a value feature at layer 3 needs block 3's qkv, not its whole output
    extractor = tiny_loss(LocalMAEPerceptualLoss, layers=3, feature='value').vit
    ran = []
    for block in extractor.blocks:
        block.mlp.register_forward_hook(lambda *a, i=len(ran): ran.append(i))
    extractor(images(1, 3, 32, 32))
    assert len(ran) == 2


def test_mask_is_shared_reproducible_and_follows_ratio():
    extractor = tiny_loss(LocalMAEPerceptualLoss).vit
    torch.manual_seed(3)
    keep = extractor.random_keep(2, 64, 64, 0.5, 'cpu')
    assert keep.shape == (2, 8) and all(len(set(row.tolist())) == 8 for row in keep)
    torch.manual_seed(3)
    assert torch.equal(keep, extractor.random_keep(2, 64, 64, 0.5, 'cpu'))
    assert extractor.random_keep(2, 64, 64, 0.0, 'cpu') is None
    assert extractor.random_keep(1, 48, 48, 0.75, 'cpu').shape == (1, 2)  # floor(9 * 0.25)
    loss = tiny_loss(LocalMAEPerceptualLoss, mask_ratio=0.5)
    pred, target = images(2, 3, 64, 64, seed=1), images(2, 3, 64, 64, seed=2)
    torch.manual_seed(5)
    first = loss.value(pred, target)
    torch.manual_seed(5)
    assert loss.value(pred, target).item() == first.item()


def test_any_size_at_least_one_patch_works():
    loss = tiny_loss(LocalMAEPerceptualLoss)
    for size in [(16, 16), (17, 40), (200, 136)]:
        value = loss.value(images(1, 3, *size, seed=1), images(1, 3, *size, seed=2))
        assert torch.isfinite(value) and value > 0


def test_remainder_pixels_reach_the_loss():
    loss = tiny_loss(LocalMAEPerceptualLoss, mask_ratio=0)
    target = images(1, 3, 40, 40)
    pred = target.clone()
    pred[..., 36:, 36:] += 0.5  # only the pixels past the last full patch differ
    assert loss.value(pred, target).item() > 0


def test_autocast_bfloat16_is_finite_and_close():
    loss = tiny_loss(GlobalDistributionLoss, mask_ratio=0, loss_weight=1.0)
    pred, target = images(2, 3, 32, 32, seed=1), images(2, 3, 32, 32, seed=2)
    exact = loss.value(pred, target)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = loss.value(pred, target)
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed)
    assert mixed.item() == pytest.approx(exact.item(), rel=0.1)


@pytest.mark.parametrize('pred_shape, target_shape, message', [
    ((1, 3, 32, 32), (1, 3, 32, 48), 'must have the same shape'),
    ((1, 1, 32, 32), (1, 1, 32, 32), r'expected RGB images \(B, 3, H, W\)'),
    ((1, 3, 8, 32), (1, 3, 8, 32), 'smaller than one ViT patch'),
])
def test_bad_shapes_raise_value_errors(pred_shape, target_shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_loss(LocalMAEPerceptualLoss)(torch.rand(pred_shape), torch.rand(target_shape))


def test_non_finite_pred_is_refused():
    pred = torch.rand(1, 3, 32, 32)
    pred[0, 0, 0, 0] = float('nan')
    with pytest.raises(ValueError, match='NaN or inf'):
        tiny_loss(GlobalDistributionLoss)(pred, torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize('kwargs, message', [
    (dict(backbone='resnet_nope'), "Unknown backbone 'resnet_nope'"),
    (dict(feature='attention'), "Unknown feature 'attention'"),
    (dict(layers=7), r'block indices in 1\.\.6'),
    (dict(mask_ratio=1.0), r'mask_ratio must be in \[0, 1\)'),
])
def test_bad_options_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_loss(LocalMAEPerceptualLoss, **kwargs)


def test_registered_for_basicsr_yaml():
    from basicsr.losses import build_loss
    loss = build_loss({'type': 'GlobalDistributionLoss', 'loss_weight': 1e-5, 'backbone': 'mae', 'pretrained': False,
                       'layers': 5, 'feature': 'token', 'mask_ratio': 0.5, 'p': 2, 'backbone_kwargs': TINY})
    assert isinstance(loss, GlobalDistributionLoss) and loss.loss_weight == 1e-5
    assert LOSS_REGISTRY.get('LocalMAEPerceptualLoss') is LocalMAEPerceptualLoss


# --------------------------------------------------------------------------- checkpoints
def _tiny_timm_state(seed=0, img_size=224):
    torch.manual_seed(seed)
    return timm.create_model('vit_base_patch16_224.mae', pretrained=False, num_classes=0, img_size=img_size,
                             **TINY).state_dict()


def _mae_release(state):
    """The layout of the official mae_pretrain_vit_base.pth: {'model': encoder + decoder weights}."""
    model = dict(state)
    model['mask_token'] = torch.zeros(1, 1, 32)
    model['decoder_embed.weight'] = torch.randn(32, 64)
    model['decoder_pos_embed'] = torch.zeros(1, 197, 32)
    model['decoder_blocks.0.attn.qkv.weight'] = torch.randn(96, 32)
    model['decoder_pred.weight'] = torch.randn(768, 32)
    return {'model': model}


def test_official_mae_release_file_loads_and_works_at_other_sizes(tmp_path):
    state = _tiny_timm_state(seed=11)
    path = tmp_path / 'mae_pretrain_vit_base.pth'
    torch.save(_mae_release(state), path)
    extractor = ViTFeatureExtractor('mae', str(path), layers=5, **TINY)
    torch.testing.assert_close(extractor.blocks[0].attn.qkv.weight, state['blocks.0.attn.qkv.weight'])
    torch.testing.assert_close(extractor.pos_embed, state['pos_embed'])
    loss = LocalMAEPerceptualLoss(pretrained=str(path), backbone_kwargs=TINY)
    for size in [(256, 256), (200, 136)]:
        assert torch.isfinite(loss.value(images(1, 3, *size, seed=1), images(1, 3, *size, seed=2)))


def test_checkpoint_with_other_grid_is_resampled(tmp_path):
    state = _tiny_timm_state(seed=12, img_size=128)  # 8x8 position grid
    torch.save(state, tmp_path / 'plain.pth')
    extractor = ViTFeatureExtractor('mae', str(tmp_path / 'plain.pth'), **TINY)
    assert extractor.pos_embed.shape == (1, 197, 64)
    torch.testing.assert_close(extractor.prefix, state['cls_token'])


def test_timm_safetensors_and_plain_state_dict_load(tmp_path):
    from safetensors.torch import save_file
    state = _tiny_timm_state(seed=13)
    save_file(state, tmp_path / 'model.safetensors')
    torch.save(state, tmp_path / 'pytorch_model.pth')
    for name in ('model.safetensors', 'pytorch_model.pth'):
        extractor = ViTFeatureExtractor('mae', str(tmp_path / name), **TINY)
        torch.testing.assert_close(extractor.blocks[4].mlp.fc2.weight, state['blocks.4.mlp.fc2.weight'])
    assert set(read_checkpoint(tmp_path / 'model.safetensors')) == set(state)


@pytest.mark.integration
def test_missing_and_mismatched_keys_are_named(tmp_path):
    state = _tiny_timm_state()
    broken = {k: v for k, v in state.items() if k != 'blocks.2.attn.proj.weight'}
    torch.save(broken, tmp_path / 'missing.pth')
    with pytest.raises(ValueError, match=r"missing encoder keys \['blocks.2.attn.proj.weight'\]"):
        ViTFeatureExtractor('mae', str(tmp_path / 'missing.pth'), **TINY)
    torch.save(state, tmp_path / 'tiny.pth')
    with pytest.raises(ValueError,
                       match=r'shape mismatches .*blocks.0.norm1.weight: checkpoint \(64,\) vs model \(768,\)'):
        ViTFeatureExtractor('mae', str(tmp_path / 'tiny.pth'))  # a ViT-B asked for, a tiny file given


def test_missing_checkpoint_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        LocalMAEPerceptualLoss(pretrained=str(tmp_path / 'nothere.pth'), backbone_kwargs=TINY)


def test_hub_failure_says_how_to_use_a_local_file():
    with pytest.raises(RuntimeError, match='set `pretrained:` to the local file'):
        LocalMAEPerceptualLoss(pretrained=True, backbone_kwargs=TINY)


def test_backbone_names_map_to_vit_b16_tags():
    from basicsr_vitloss.losses.vit_features import BACKBONES
    assert BACKBONES['mae'] == 'vit_base_patch16_224.mae'
    assert BACKBONES['dino'] == 'vit_base_patch16_224.dino'
    assert BACKBONES['vit'].startswith('vit_base_patch16_224.')
    for name in BACKBONES.values():
        assert name in timm.list_pretrained(name.split('.')[0] + '*')


def test_feature_grid_follows_image_size():
    extractor = tiny_loss(LocalMAEPerceptualLoss, layers=1).vit
    out = extractor(images(1, 3, 40, 70))[1]
    assert out.shape == (1, 1 + 3 * 5, 64)


@pytest.mark.integration
def test_as_perceptual_opt_of_stock_srmodel_through_basicsr_train(tmp_path):
    tiny_options(tmp_path / 'percep.yml', name='percep', total_iter=2, **{
        'val:val_freq': 2, 'logger:save_checkpoint_freq': 2,
        'train:perceptual_opt': {'type': 'LocalMAEPerceptualLoss', 'loss_weight': 1.0, 'backbone': 'mae',
                                 'pretrained': False, 'layers': 5, 'feature': 'token', 'mask_ratio': 0.5,
                                 'backbone_kwargs': TINY}})
    run(['python', '-m', 'basicsr.train', '-opt', 'percep.yml'], cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'percep'
    log = '\n'.join(p.read_text() for p in exp.glob('train_*.log'))
    assert 'l_percep:' in log and 'l_pix:' in log
    saved = torch.load(exp / 'models' / 'net_g_2.pth', map_location='cpu')
    assert not any('vit' in key or 'blocks' in key for key in saved['params']), 'the ViT leaked into the checkpoint'


# ---- the authors' code as options, and grid offsets ------------------------------------------------------

def _authors_global(fp_layers, ft_layers, weight):
    """loss/pdl.py of erfect2020/TransformerPerceptualLoss, per layer: for every token position ii,
    F.mse_loss(sort(x[:, ii, :]), sort(y[:, ii, :]), reduction='mean') ** 0.5, summed; times the weight."""
    total = 0.0
    for fp, ft in zip(fp_layers, ft_layers):
        x, y = np.sort(fp.numpy(), axis=-1), np.sort(ft.numpy(), axis=-1)
        for ii in range(x.shape[1]):
            total += float(np.mean((x[:, ii, :] - y[:, ii, :]) ** 2) ** 0.5)
    return weight * total


def test_global_batch_reduction_is_the_authors_code():
    loss = tiny_loss(GlobalDistributionLoss, layers=[1, 2, 3, 4, 5, 6], mask_ratio=0, reduction='batch',
                     loss_weight=1e-4)
    vit = reference_vit(loss)
    pred, target = images(3, 3, 32, 48, seed=10), images(3, 3, 32, 48, seed=11)
    with torch.no_grad():
        fp = [reference_features(vit, pred, layer, 'token') for layer in range(1, 7)]
        ft = [reference_features(vit, target, layer, 'token') for layer in range(1, 7)]
    assert loss.value(pred, target).item() == pytest.approx(_authors_global(fp, ft, 1e-4), rel=1e-5)
    # the per-image variant with normalize_by_dim agrees only for one image
    per_image = tiny_loss(GlobalDistributionLoss, layers=[1, 2, 3, 4, 5, 6], mask_ratio=0, normalize_by_dim=True,
                          loss_weight=1e-4)
    per_image.load_state_dict(loss.state_dict())
    assert per_image.value(pred[:1], target[:1]).item() == pytest.approx(
        loss.value(pred[:1], target[:1]).item(), rel=1e-5)
    assert per_image.value(pred, target).item() != pytest.approx(loss.value(pred, target).item(), rel=1e-3)


@pytest.mark.parametrize('kwargs, message', [
    (dict(reduction='sum'), "reduction must be one of image, batch, got 'sum'"),
    (dict(reduction='batch', normalize_by_dim=True), 'normalize_by_dim applies to reduction: image'),
    (dict(grid_offset='yes'), "grid_offset must be true or false, got 'yes'"),
    (dict(check_finite=1), 'check_finite must be true or false, got 1'),
])
def test_new_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_loss(GlobalDistributionLoss, **kwargs)


def test_qkv_feature_is_what_the_authors_hook_on_block_6_records():
    """models/dual_model_mae_kqv.py hooks blocks[5].attn.qkv: q, k, v concatenated, of norm1 of block 5's output."""
    loss = tiny_loss(LocalMAEPerceptualLoss, layers=6, feature='qkv', mask_ratio=0)
    vit = reference_vit(loss)
    recorded = []
    handle = vit.blocks[5].attn.qkv.register_forward_hook(lambda module, inputs, output: recorded.append(output))
    x = images(2, 3, 32, 32, seed=12)
    with torch.no_grad():
        tokens = torch.cat([vit.cls_token.expand(2, -1, -1), vit.patch_embed(
            (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        ).flatten(1, 2)], dim=1) + mae_pos_embed(vit, 2, 2)
        for block in vit.blocks:
            tokens = block(tokens)
        ours = loss.vit(x)[6]
    handle.remove()
    assert ours.shape[-1] == 3 * vit.embed_dim
    torch.testing.assert_close(ours, recorded[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('cls', [LocalMAEPerceptualLoss, GlobalDistributionLoss])
def test_grid_offset_shifts_the_token_grid_by_a_seeded_random_amount(cls):
    shifted = tiny_loss(cls, layers=3, mask_ratio=0, grid_offset=True)
    plain = tiny_loss(cls, layers=3, mask_ratio=0)
    plain.load_state_dict(shifted.state_dict())
    pred, target = images(2, 3, 40, 56, seed=13), images(2, 3, 40, 56, seed=14)
    torch.manual_seed(5)
    value = shifted.value(pred, target)
    torch.manual_seed(5)  # the same draws, by hand: dy then dx in [0, 16)
    dy, dx = int(torch.randint(0, 16, ())), int(torch.randint(0, 16, ()))
    assert (dy, dx) != (0, 0)
    pad = (dx, 0, dy, 0)
    expected = plain.value(torch.nn.functional.pad(pred, pad, mode='reflect'),
                           torch.nn.functional.pad(target, pad, mode='reflect'))
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7)
    draws = {tuple(int(torch.randint(0, 16, ())) for _ in range(2)) for _ in range(20)}
    assert len(draws) > 1  # a new offset every call


@pytest.mark.parametrize('cls', [LocalMAEPerceptualLoss, GlobalDistributionLoss])
def test_grid_offset_keeps_identical_images_at_zero_and_every_pixel_counted(cls):
    loss = tiny_loss(cls, layers=2, mask_ratio=0, grid_offset=True)
    x = images(1, 3, 33, 47, seed=15)
    for seed in range(3):
        torch.manual_seed(seed)
        assert loss.value(x, x.clone()).item() == 0.0
    pred = images(1, 3, 33, 47, seed=16).requires_grad_(True)
    torch.manual_seed(1)
    loss.value(pred, x).backward()
    assert (pred.grad.abs().sum(1) > 0).all()  # no pixel falls outside the shifted grid


def test_finiteness_check_can_be_turned_off():
    pred = torch.rand(1, 3, 32, 32)
    pred[0, 0, 0, 0] = float('nan')
    value = tiny_loss(LocalMAEPerceptualLoss, check_finite=False, mask_ratio=0).value(pred, torch.rand(1, 3, 32, 32))
    assert torch.isnan(value)


@pytest.mark.integration
def test_compile_option_gives_the_eager_values_and_keeps_the_weights_layout():
    eager = tiny_loss(LocalMAEPerceptualLoss, layers=2, mask_ratio=0)
    compiled = tiny_loss(LocalMAEPerceptualLoss, layers=2, mask_ratio=0, compile=True)
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # nothing renamed by compilation
    compiled.load_state_dict(eager.state_dict())
    pred = images(1, 3, 32, 32, seed=17).requires_grad_(True)
    target = images(1, 3, 32, 32, seed=18)
    value = compiled.value(pred, target)
    value.backward()
    grad = pred.grad.clone()
    pred.grad = None
    expected = eager.value(pred, target)
    expected.backward()
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, pred.grad, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="compile must be true or false, got 'yes'"):
        tiny_loss(LocalMAEPerceptualLoss, compile='yes')
