"""``use_checkpoint: true`` (activation checkpointing) for every architecture: same outputs and gradients
(parameters and input) as without, same state_dict keys, no effect in eval mode or under no_grad, and the
keyword passes through BasicSR's ``build_network``."""
import pytest
import torch
from torch.utils import checkpoint as torch_checkpoint

import basicsr_vitloss  # noqa: F401 (registers the architectures)
from basicsr.archs import build_network

# tiny configurations with dropout / drop path switched on where the arch has them, so that the
# preserved RNG state is tested too
CONFIGS = {
    'NAFNet': (dict(type='NAFNet', img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 2],
                    dec_blk_nums=[1, 1], drop_out_rate=0.2), (1, 3, 32, 32)),
    'NAFNetLocal': (dict(type='NAFNetLocal', img_channel=6, out_channels=3, width=8, middle_blk_num=1,
                         enc_blk_nums=[1, 1], dec_blk_nums=[1, 1], train_size=(1, 6, 16, 16)), (1, 6, 32, 32)),
    'Restormer': (dict(type='Restormer', inp_channels=6, out_channels=3, dim=8, num_blocks=[1, 1, 1, 2],
                       num_refinement_blocks=1, heads=[1, 2, 2, 4], dual_pixel_task=True), (1, 6, 32, 32)),
    'Uformer': (dict(type='Uformer', img_size=128, in_chans=3, dd_in=3, embed_dim=8, depths=[1, 2, 1, 1, 1, 1, 1, 2, 1],
                     num_heads=[1, 1, 2, 2, 4, 2, 2, 1, 1], win_size=8, drop_rate=0.1, drop_path_rate=0.2),
                (1, 3, 32, 32)),
    'DPDNet': (dict(type='DPDNet', in_channels=6, out_channels=3, base_channels=4, dropout_rate=0.4), (1, 6, 32, 32)),
    'MPRNet': (dict(type='MPRNet', in_c=3, out_c=3, n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2),
               (1, 3, 32, 32)),
}
NAMES = list(CONFIGS)
TOL = dict(rtol=1e-5, atol=1e-6)


def build_pair(name):
    """(plain, checkpointed) networks with the same random weights, built through BasicSR's registry."""
    opt, shape = CONFIGS[name]
    torch.manual_seed(0)
    plain = build_network(dict(opt))
    with torch.no_grad():  # move away from the default init (NAFNet's zero beta/gamma make blocks identity)
        for param in plain.parameters():
            param.add_(0.05 * torch.randn_like(param))
    checkpointed = build_network(dict(opt, use_checkpoint=True))
    checkpointed.load_state_dict(plain.state_dict(), strict=True)
    return plain, checkpointed, shape


def as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]  # MPRNet returns its stages in training


def forward_backward(net, x, weights=None):
    """One forward (fixed RNG for dropout) and backward of a weighted sum of the outputs."""
    torch.manual_seed(123)
    outs = as_list(net(x))
    if weights is None:
        gen = torch.Generator().manual_seed(7)
        weights = [torch.randn(o.shape, generator=gen) for o in outs]
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    return [o.detach() for o in outs], grads


class CheckpointCalls:
    """Counts calls of torch.utils.checkpoint.checkpoint (the archs look it up at call time)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = torch_checkpoint.checkpoint

        def counting(*args, **kwargs):
            assert kwargs.get('use_reentrant') is False
            self.count += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(torch_checkpoint, 'checkpoint', counting)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('input_grad', [True, False], ids=['input-grad', 'no-input-grad'])
@pytest.mark.integration
def test_training_outputs_and_gradients_equal(name, input_grad, monkeypatch):
    plain, checkpointed, shape = build_pair(name)
    assert plain.state_dict().keys() == checkpointed.state_dict().keys()
    plain.train()
    checkpointed.train()
    x = torch.rand(shape, generator=torch.Generator().manual_seed(3))

    x_plain = x.clone().requires_grad_(input_grad)
    outs_plain, grads_plain = forward_backward(plain, x_plain)
    calls = CheckpointCalls(monkeypatch)
    x_ckpt = x.clone().requires_grad_(input_grad)
    outs_ckpt, grads_ckpt = forward_backward(checkpointed, x_ckpt)
    assert calls.count > 0  # the blocks did run under checkpoint

    assert len(outs_plain) == len(outs_ckpt)
    for a, b in zip(outs_ckpt, outs_plain):
        torch.testing.assert_close(a, b, **TOL)
    assert grads_ckpt.keys() == grads_plain.keys()
    assert len(grads_plain) == len(list(plain.parameters()))  # every parameter got a gradient
    for key in grads_plain:
        torch.testing.assert_close(grads_ckpt[key], grads_plain[key], **TOL, msg=lambda m, k=key: f'{k}: {m}')
    if input_grad:
        torch.testing.assert_close(x_ckpt.grad, x_plain.grad, **TOL)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.integration
def test_eval_and_no_grad_unchanged(name, monkeypatch):
    plain, checkpointed, shape = build_pair(name)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(4))
    calls = CheckpointCalls(monkeypatch)
    plain.eval()
    checkpointed.eval()
    out = checkpointed(x)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, plain(x), rtol=0, atol=0)
    # training mode, but no grad: plain forward as well (dropout with the same RNG draws)
    plain.train()
    checkpointed.train()
    with torch.no_grad():
        torch.manual_seed(5)
        out_ckpt = as_list(checkpointed(x))
        torch.manual_seed(5)
        out_plain = as_list(plain(x))
    for a, b in zip(out_ckpt, out_plain):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert calls.count == 0


@pytest.mark.parametrize('name', ['NAFNet', 'Restormer', 'MPRNet'])
@pytest.mark.integration
def test_autocast_gradients_equal(name):
    """Under CPU autocast (bfloat16) the recomputation runs under the same autocast state."""
    plain, checkpointed, shape = build_pair(name)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(6))
    results = []
    for net in (plain, checkpointed):
        net.train()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            results.append(forward_backward(net, x))
    (outs_plain, grads_plain), (outs_ckpt, grads_ckpt) = results
    for a, b in zip(outs_ckpt, outs_plain):
        torch.testing.assert_close(a, b, **TOL)
    for key in grads_plain:
        torch.testing.assert_close(grads_ckpt[key], grads_plain[key], **TOL)


@pytest.mark.parametrize('name', NAMES)
def test_keyword_default_off_and_state_dict_keys(name):
    opt, _ = CONFIGS[name]
    default = build_network(dict(opt))
    off = build_network(dict(opt, use_checkpoint=False))
    on = build_network(dict(opt, use_checkpoint=True))
    assert list(default.state_dict()) == list(off.state_dict()) == list(on.state_dict())
    assert [v.shape for v in default.state_dict().values()] == [v.shape for v in on.state_dict().values()]
