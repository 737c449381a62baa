"""Cost of the two ViT perceptual losses: ours vs. a naive implementation vs. the compute lower bound.

Setup (issue 3): ViT-B/16 with random weights (``backbone='mae'``, i.e. timm
``vit_base_patch16_224.mae``, ``pretrained=False``), batch 4, 256x256 images in [0, 1], layer 5,
``token`` feature, mask_ratio 0.5 (one random mask shared by pred and target). For each loss:

* forward + backward time of ``loss.value(pred, target)``; backward to ``pred`` only (it requires
  grad, the target does not). Median over ``--repeats`` timed calls after ``--warmup`` untimed ones.
  The implementations are timed round-robin (one call of each per round) so that load drifts on a
  shared machine hit all of them alike.
* peak memory of one forward + backward, above the steady state (model + inputs):
  CUDA: ``torch.cuda.max_memory_allocated()`` minus ``torch.cuda.memory_allocated()`` before the call.
  CPU: torch has no CPU peak-allocation counter, so a fresh subprocess per measurement builds the
  loss, runs one untimed call, frees its memory back to the OS (``gc.collect()`` + glibc
  ``malloc_trim(0)``), resets the kernel's peak-RSS mark (``5 > /proc/self/clear_refs``) and reports
  ``VmHWM`` after one call minus ``VmRSS`` before it: the peak resident-memory increase of that call.
  It is an RSS measure (includes allocator slack and oneDNN scratch, page granularity), not exact tensor
  bytes. Where /proc/self/clear_refs is not writable it reports n/a.

(a) Naive: ``NaiveViTLoss`` below, written the way the paper authors' public code is organized:
  the full timm model; the images are resized to 224x224 (bilinear, align_corners=False) because its
  position embedding is fixed to the 14x14 grid of 224x224 (timm's ``strict_img_size`` refuses 256x256);
  MAE-style masking (noise argsort, gather) with one mask shared by both images; the first 6 blocks always
  run on both images (no early exit after layer 5); the ViT parameters keep ``requires_grad=True``
  (frozen only by not being given to an optimizer), so the target branch builds an autograd graph too
  and backward also computes the (discarded) ViT weight gradients of both branches; the global loss is a
  Python loop over tokens. An extra row, "naive, frozen weights", is the same code with
  ``requires_grad_(False)`` (then the target branch builds no graph), to show how much of the gap comes
  from that assumption. Same weights as ours (copied into ours), same timm blocks.

(b) Lower bound: the matmul FLOPs of the work strictly needed, divided by the machine's matmul
  throughput (median time of a float32 ``--matmul-size`` square matmul, 2 n^3 FLOPs, sampled before the
  loss timings and in each of their rounds). With
  D = 768 (width), M = 3072 (MLP hidden), T = K + 1 tokens (K = floor(N (1 - mask_ratio)) kept patches of
  N = (256/16)^2 = 256, plus CLS: T = 129), l = 5 blocks, B = batch, P = 3*16*16 = 768 (pixels per patch);
  a linear layer in x out on T tokens costs 2 T in out FLOPs:
    per block and image, linear layers: F_lin = 2 T (D*3D [qkv] + D*D [proj] + D*M [fc1] + M*D [fc2])
                                               = 2 T (4 D^2 + 2 D M) = 24 T D^2 for M = 4D,
    per block and image, attention: F_att = 2 T^2 D [Q K^T, all heads] + 2 T^2 D [A V] = 4 T^2 D,
    per image, patch embedding of the kept patches: F_pe = 2 K P D.
  forward of one image stack:  F_fwd = l (F_lin + F_att) + F_pe
  backward to the input only (the frozen weights need no gradient): each linear layer and the patch
  embedding need one matmul (dX = dY W), i.e. 1x their forward; attention needs dQ, dK, dA, dV: 2x.
    F_bwd = l (F_lin + 2 F_att) + F_pe
  bound = B (F_fwd [target] + F_fwd [pred] + F_bwd [pred]) / throughput.
  Everything else (LayerNorm, softmax, GELU, residual adds, the loss itself, sorting) is left out, so the
  bound is strictly below any real implementation. The naive code's own matmul FLOPs (6 blocks forward on
  99 tokens, backward through 5 blocks of both branches with weight gradients, 2x the linear FLOPs) are
  reported with the same formulas for context.

Training-step overhead: BasicSR's SRVGGNetCompact(3, 3, num_feat=32, num_conv=8, upscale=1, 'prelu'),
batch ``--batch`` at 256x256, step = forward, L1 loss (+ the ViT loss), backward, Adam step; median step time
with L1 only vs. L1 + each of our losses.

CPU timings run with glibc malloc told to keep freed memory (``keep_freed_memory``; ``--default-malloc``
turns it off): with glibc's defaults each large tensor is mmapped afresh and its page faults made the demo
network's step vary 0.6 - 1.4 s between runs. The training step is also measured in a fresh process with
the default settings and reported beside.

Before timing it checks that the naive losses give our values and input gradients on 224x224 images,
where both compute the same thing: with mask_ratio=0, and with mask_ratio=0.5 under one RNG seed. Values
are compared in float32, input gradients in float32 and in float64 (both models and inputs cast): the
float64 gradients must agree (< 1e-9 relative); the float32 gradients of the global loss differ by up to
~1e-2 of the largest, because channel values closer than float32 rounding sort in another order in the
two implementations and the sort then sends gradient to other elements (``sort_order_diagnostics``
measures this).

Writes benchmarks/results/loss_bench.md and loss_bench.json. Run: ``python benchmarks/loss_bench.py``;
``--check-only`` reruns only the equivalence check and rewrites its part of the results.
"""
import argparse
import copy
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import basicsr_vitloss  # noqa: F401  (makes basicsr importable)
from basicsr_vitloss.losses.vit_losses import GlobalDistributionLoss, LocalMAEPerceptualLoss

RESULTS = Path(__file__).resolve().parent / 'results'
SIZE, LAYER, FEATURE, MASK_RATIO = 256, 5, 'token', 0.5
PATCH, DIM, HIDDEN = 16, 768, 3072
NAIVE_SIZE, NAIVE_DEPTH = 224, 6
LOSS_WEIGHTS = {'local': 1.0, 'global': 1e-5}
OURS = {'local': LocalMAEPerceptualLoss, 'global': GlobalDistributionLoss}
TIMM_NAME = 'vit_base_patch16_224.mae'


# ----------------------------------------------------------------------------------------------
# (a) the naive implementation
# ----------------------------------------------------------------------------------------------
class NaiveViTLoss(nn.Module):
    """The loss written the straightforward way (see the module docstring, (a)).

    ``kind`` 'local': mean |f(pred) - f(target)| of block ``layer``'s tokens; 'global': per image and
    token (CLS included) (sum_d |sort(u) - sort(v)|^p)^(1/p), summed over tokens with a Python loop,
    averaged over the batch. Times ``loss_weight``.
    """

    def __init__(self, kind, layer=LAYER, mask_ratio=MASK_RATIO, loss_weight=None, p=2, weights_grad=True):
        super().__init__()
        import timm
        self.kind, self.layer, self.mask_ratio, self.p = kind, layer, mask_ratio, p
        self.loss_weight = LOSS_WEIGHTS[kind] if loss_weight is None else loss_weight
        self.vit = timm.create_model(TIMM_NAME, pretrained=False)
        self.vit.eval()
        self.vit.requires_grad_(weights_grad)
        cfg = self.vit.pretrained_cfg
        self.register_buffer('mean', torch.tensor(cfg['mean']).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(cfg['std']).view(1, 3, 1, 1))

    def random_masking(self, batch, count, device):
        if self.mask_ratio <= 0:
            return torch.arange(count, device=device).expand(batch, -1)
        noise = torch.rand(batch, count, device=device)
        return torch.argsort(noise, dim=1)[:, :int(count * (1 - self.mask_ratio))]

    def encode(self, x, ids_keep):
        x = F.interpolate(x, size=(NAIVE_SIZE, NAIVE_SIZE), mode='bilinear', align_corners=False)
        x = (x - self.mean) / self.std
        x = self.vit.patch_embed(x)
        x = x + self.vit.pos_embed[:, 1:, :]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, x.shape[-1]))
        cls = self.vit.cls_token + self.vit.pos_embed[:, :1, :]
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        features = []
        for block in self.vit.blocks[:NAIVE_DEPTH]:
            x = block(x)
            features.append(x)
        return features[self.layer - 1]

    def value(self, pred, target):
        count = (NAIVE_SIZE // PATCH) ** 2
        ids_keep = self.random_masking(pred.shape[0], count, pred.device)
        pred_feature = self.encode(pred, ids_keep)
        target_feature = self.encode(target, ids_keep)
        if self.kind == 'local':
            return self.loss_weight * torch.mean(torch.abs(pred_feature - target_feature))
        total = 0
        for token in range(pred_feature.shape[1]):
            u = torch.sort(pred_feature[:, token, :], dim=-1)[0]
            v = torch.sort(target_feature[:, token, :], dim=-1)[0]
            total = total + torch.sum(torch.abs(u - v) ** self.p, dim=-1) ** (1 / self.p)
        return self.loss_weight * torch.mean(total)


def make_ours(kind, mask_ratio=MASK_RATIO):
    return OURS[kind](pretrained=False, backbone='mae', layers=LAYER, feature=FEATURE, mask_ratio=mask_ratio)


def share_weights(ours, naive):
    """Copy the naive model's weights into our feature extractor (blocks 1..l, embeddings)."""
    extractor, vit = ours.vit, naive.vit
    with torch.no_grad():
        extractor.patch_proj.load_state_dict(vit.patch_embed.proj.state_dict())
        extractor.prefix.copy_(vit.cls_token)
        extractor.pos_embed.copy_(vit.pos_embed)
        for mine, theirs in zip(extractor.blocks, vit.blocks):
            mine.load_state_dict(theirs.state_dict())


def build(name, kind, device):
    """A loss of implementation ``name``: 'ours' | 'naive' | 'naive_frozen' (random weights)."""
    if name == 'ours':
        return make_ours(kind).to(device)
    return NaiveViTLoss(kind, weights_grad=name == 'naive').to(device)


# ----------------------------------------------------------------------------------------------
# measurement helpers
# ----------------------------------------------------------------------------------------------
def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def loss_step(loss, pred, target):
    value = loss.value(pred, target)
    value.backward()
    pred.grad = None
    for param in loss.parameters():
        param.grad = None  # the naive version's discarded ViT weight gradients
    return value


def inputs(batch, device, size=SIZE, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pred = torch.rand(batch, 3, size, size, generator=generator).to(device).requires_grad_()
    target = torch.rand(batch, 3, size, size, generator=generator).to(device)
    return pred, target


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


class MatmulTimer:
    """Times a float32 ``rows x inner @ inner x cols`` matmul; ``sample(n)`` adds n timings."""

    def __init__(self, device, rows, inner, cols):
        self.device, self.flops = device, 2 * rows * inner * cols
        self.a = torch.randn(rows, inner, device=device)
        self.b = torch.randn(inner, cols, device=device)
        self.seconds = []
        for _ in range(3):
            self.a @ self.b

    def sample(self, count):
        self.seconds += [timed(lambda: self.a @ self.b, self.device) for _ in range(count)]

    def throughput(self):
        """FLOP/s from the median time of all samples."""
        return self.flops / statistics.median(self.seconds)


def vit_flops(tokens, kept, blocks, batch):
    """Matmul FLOPs of one forward (dict per part) for ``tokens`` tokens through ``blocks`` blocks."""
    linear = 2 * tokens * (DIM * 3 * DIM + DIM * DIM + DIM * HIDDEN + HIDDEN * DIM)
    attention = 2 * 2 * tokens * tokens * DIM
    patch = 2 * kept * 3 * PATCH * PATCH * DIM
    return {'linear': batch * blocks * linear, 'attention': batch * blocks * attention, 'patch': batch * patch}


def bound_flops(batch):
    kept = int((SIZE // PATCH) ** 2 * (1 - MASK_RATIO))
    f = vit_flops(kept + 1, kept, LAYER, batch)
    forward = f['linear'] + f['attention'] + f['patch']
    backward_input = f['linear'] + 2 * f['attention'] + f['patch']
    return {'tokens_per_image': kept + 1, 'forward_one_branch': forward, 'backward_input_only': backward_input,
            'total': 2 * forward + backward_input}


def naive_flops(batch, weights_grad):
    kept = int((NAIVE_SIZE // PATCH) ** 2 * (1 - MASK_RATIO))
    fwd = vit_flops(kept + 1, kept, NAIVE_DEPTH, batch)
    back = vit_flops(kept + 1, kept, LAYER, batch)  # nothing flows back through block 6
    forward = 2 * (fwd['linear'] + fwd['attention'] + fwd['patch'])
    # pred: input grads (1x linear, 2x attention, 1x patch embed); with weight grads +1x linear, +1x patch
    pred = back['linear'] + 2 * back['attention'] + back['patch']
    target = 0
    if weights_grad:
        pred += back['linear'] + back['patch']
        # target: input grads to reach earlier blocks' weights (not the pixels), weight grads
        target = 2 * back['linear'] + 2 * back['attention'] + back['patch']
    return {'tokens_per_image': kept + 1, 'total': forward + pred + target}


def keep_freed_memory():
    """Make glibc keep freed memory (no mmap / munmap per large tensor, no trimming): True if set.

    With glibc's defaults every tensor above the mmap threshold (32 MiB at most, e.g. the 33.5 MiB
    activations of the demo network) is a fresh mmap, so each training step pays millions of page faults:
    the L1-only step of the demo network took 0.6 - 1.4 s from run to run on the 2-core CPU machine,
    against a steady 0.63 s with this setting. The CUDA caching allocator has no such cost."""
    try:
        libc = ctypes.CDLL('libc.so.6')
        return bool(libc.mallopt(-3, 1 << 30)) and bool(libc.mallopt(-1, 1 << 30))  # M_MMAP_ / M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def _malloc_trim():
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _proc_status_kib(field):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise KeyError(field)


def peak_rss_increase_mib(step):
    """CPU peak resident-memory increase (MiB) of one ``step()`` after an untimed one, in this process
    (meant for a fresh subprocess): memory freed back to the OS, the kernel's peak mark reset
    (/proc/self/clear_refs), VmHWM after the step minus VmRSS before it. None where clear_refs is not
    writable."""
    step()
    gc.collect()
    _malloc_trim()
    before = _proc_status_kib('VmRSS')
    try:
        Path('/proc/self/clear_refs').write_text('5')
    except OSError:
        return None
    step()
    return (_proc_status_kib('VmHWM') - before) / 1024


def memory_worker(name, kind, batch):
    """CPU peak-RSS increase of one forward + backward (run in a fresh subprocess)."""
    torch.manual_seed(0)
    loss = build(name, kind, torch.device('cpu'))
    pred, target = inputs(batch, torch.device('cpu'))
    return peak_rss_increase_mib(lambda: loss_step(loss, pred, target))


def peak_memory_mib(name, kind, batch, device, loss=None):
    if device.type == 'cuda':
        pred, target = inputs(batch, device)
        loss_step(loss, pred, target)
        sync(device)
        gc.collect()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        loss_step(loss, pred, target)
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20
    proc = subprocess.run([sys.executable, __file__, '--memory-worker', name, kind, '--batch', str(batch)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])['peak_mib']


def _pair_run(ours, naive, dtype, device):
    """Value and input gradient of ``ours`` and ``naive`` in ``dtype`` (copies of both), 224x224, batch 2,
    the mask drawn under one seed."""
    results = []
    for loss in (ours, naive):
        loss = copy.deepcopy(loss).to(dtype)
        pred, target = inputs(2, device, size=NAIVE_SIZE, seed=2)
        pred = pred.detach().to(dtype).requires_grad_()
        torch.manual_seed(5)
        value = loss.value(pred, target.to(dtype))
        value.backward()
        results.append((value.item(), pred.grad.clone()))
    (ours_value, ours_grad), (naive_value, naive_grad) = results
    return {'ours': ours_value, 'naive': naive_value,
            'value_rel_diff': abs(ours_value - naive_value) / abs(naive_value),
            'grad_max_rel_diff': _grad_rel_diff(ours_grad, naive_grad)}, (ours_grad, naive_grad)


def _grad_rel_diff(grad, reference):
    """max |grad - reference| / max |reference|, in float64."""
    grad, reference = grad.double(), reference.double()
    return ((grad - reference).abs().max() / reference.abs().max()).item()


def sort_order_diagnostics(ours, naive, mask_ratio, device):
    """Why the float32 input gradients of the two global losses differ: where the two float32 feature
    tensors (pred branch, block LAYER) sort their channel values in another order.

    The distance sum_d |sort(u)_d - sort(v)_d|^2 pairs the pred's k-th smallest channel value with the
    target's. Its gradient to a channel value is 2 (u_i - v_(rank of u_i)): it jumps by the target's value
    spacing where two pred values swap order, and the sort is not differentiable where they tie. The two
    implementations compute the same features up to float32 rounding (other summation orders); channel values
    closer than that can sort in another order in the two and then get other gradients. Returned: the float32
    feature difference, how many adjacent sorted values (float64 features) are closer than it, how many
    elements get another rank, the feature-gradient difference on elements with the same / another rank,
    and the float32 input-gradient difference when both are paired by one order (that of the float64
    features), which removes the routing difference and leaves float32 rounding."""
    torch.manual_seed(5)
    keep = ours.vit.random_keep(2, NAIVE_SIZE, NAIVE_SIZE, mask_ratio, device)
    ids = keep if keep is not None else torch.arange((NAIVE_SIZE // PATCH) ** 2, device=device).expand(2, -1)
    pred0, target0 = inputs(2, device, size=NAIVE_SIZE, seed=2)

    def features(loss, dtype):
        loss = copy.deepcopy(loss).to(dtype)
        pred = pred0.detach().to(dtype).requires_grad_()
        encode = (lambda x: loss.encode(x, ids)) if isinstance(loss, NaiveViTLoss) else (
            lambda x: loss.vit(x, keep)[LAYER])
        with torch.no_grad():
            target_feature = encode(target0.to(dtype))
        return pred, encode(pred), target_feature

    def distance(pred_sorted, target_feature):  # p = 2, sum over channels, sum over tokens, batch mean
        gap = pred_sorted - target_feature.sort(-1).values
        return gap.square().sum(-1).sqrt().sum(-1).mean()

    with torch.no_grad():
        reference = features(ours, torch.float64)[1]
    order = reference.argsort(-1)
    runs = {name: features(loss, torch.float32) for name, loss in (('ours', ours), ('naive', naive))}
    feature_diff = (runs['ours'][1] - runs['naive'][1]).abs().max().item()
    sorted_reference = reference.sort(-1).values
    close = (sorted_reference[..., 1:] - sorted_reference[..., :-1]) < feature_diff
    ranks = {name: run[1].detach().argsort(-1).argsort(-1) for name, run in runs.items()}
    other_rank = ranks['ours'] != ranks['naive']
    feature_grads, input_grads = {}, {}
    for name, (pred, pred_feature, target_feature) in runs.items():
        leaf = pred_feature.detach().requires_grad_()
        distance(leaf.sort(-1).values, target_feature).backward()
        feature_grads[name] = leaf.grad
        distance(pred_feature.gather(-1, order), target_feature).backward()
        input_grads[name] = pred.grad
    feature_gap = (feature_grads['ours'] - feature_grads['naive']).abs() / feature_grads['naive'].abs().max()
    input_gap = (input_grads['ours'] - input_grads['naive']).abs().max() / input_grads['naive'].abs().max()
    return {'feature_max_abs_diff_f32': feature_diff, 'feature_max_abs': reference.abs().max().item(),
            'adjacent_closer_than_diff': int(close.sum()), 'adjacent_pairs': close.numel(),
            'tokens_with_close_pair': int(close.any(-1).sum()), 'tokens': close.shape[0] * close.shape[1],
            'elements_other_rank': int(other_rank.sum()), 'elements': other_rank.numel(),
            'tokens_other_rank': int(other_rank.any(-1).sum()),
            'feature_grad_rel_diff_same_rank': feature_gap[~other_rank].max().item(),
            'feature_grad_rel_diff_other_rank': feature_gap[other_rank].max().item() if other_rank.any() else 0.0,
            'input_grad_rel_diff_f32_one_pairing': input_gap.item()}


def equivalence_check(device):
    """Naive vs. ours on 224x224 images (batch 2, same weights): loss values and input gradients, with
    mask_ratio 0 and with mask_ratio 0.5 under the same RNG seed (both draw the mask as the argsort of
    torch.rand(B, N), so they keep the same tokens).

    Each pair runs twice: in float32 (what training uses) and in float64 (copies of both models and the
    inputs). Verdict: values agree in float32 (rel. diff < 1e-4) and input gradients agree in float64
    (rel. diff < 1e-9). The float32 input gradients of the global loss are reported but not judged: they
    differ where near-tied channel values sort in another order (``sort_order_diagnostics``)."""
    rows = {}
    for kind in ('local', 'global'):
        for mask_ratio in (0.0, MASK_RATIO):
            torch.manual_seed(1)
            naive = NaiveViTLoss(kind, mask_ratio=mask_ratio, weights_grad=False).to(device)
            ours = make_ours(kind, mask_ratio=mask_ratio).to(device)
            share_weights(ours, naive)
            single, grads32 = _pair_run(ours, naive, torch.float32, device)
            double, grads64 = _pair_run(ours, naive, torch.float64, device)
            key = f'{kind}, mask_ratio {mask_ratio:g}'
            rows[key] = {**single, 'value_rel_diff_f64': double['value_rel_diff'],
                         'grad_max_rel_diff_f64': double['grad_max_rel_diff'],
                         'grad_rel_diff_f32_to_f64': {name: _grad_rel_diff(g32, g64) for name, g32, g64 in
                                                      zip(('ours', 'naive'), grads32, grads64)},
                         'ok': single['value_rel_diff'] < 1e-4 and double['grad_max_rel_diff'] < 1e-9}
            if kind == 'global':
                rows[key]['sort_order'] = sort_order_diagnostics(ours, naive, mask_ratio, device)
            print(f'check {key}: ours {single["ours"]:.6g} naive {single["naive"]:.6g} value rel '
                  f'{single["value_rel_diff"]:.1e}, grad rel float32 {single["grad_max_rel_diff"]:.1e} float64 '
                  f'{double["grad_max_rel_diff"]:.1e} -> {"OK" if rows[key]["ok"] else "MISMATCH"}', flush=True)
    return rows


def train_step_times(losses, batch, device, repeats, warmup):
    """Median step time of the demo network with L1 only and L1 + each loss in ``losses``."""
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    torch.manual_seed(0)
    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=32, num_conv=8, upscale=1, act_type='prelu').to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    lq, gt = inputs(batch, device, seed=3)
    lq = lq.detach()

    def step(extra):
        optimizer.zero_grad(set_to_none=True)
        out = net(lq)
        total = F.l1_loss(out, gt)
        if extra is not None:
            total = total + extra.value(out, gt)
        total.backward()
        optimizer.step()

    configs = {'l1': None, **losses}
    for extra in configs.values():
        for _ in range(warmup):
            step(extra)
    times = {name: [] for name in configs}
    for _ in range(repeats):
        for name, extra in configs.items():
            times[name].append(timed(lambda: step(extra), device))
    return times


# ----------------------------------------------------------------------------------------------
def fmt_mib(value):
    return 'n/a' if value is None else f'{value:.0f} MiB'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeats', type=int, default=5, help='timed calls per measurement (median)')
    parser.add_argument('--naive-global-repeats', type=int, default=None,
                        help='timed calls of the naive global loss (default: --repeats)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--matmul-size', type=int, default=2048)
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory measurements')
    parser.add_argument('--default-malloc', action='store_true',
                        help="keep glibc's default malloc settings for the timings (see keep_freed_memory)")
    parser.add_argument('--check-only', action='store_true',
                        help='run only the equivalence check (a few minutes on 2 CPU cores) and rewrite its part of '
                             'results/loss_bench.md and .json; the timings stay those of the last full run')
    parser.add_argument('--memory-worker', nargs=2, metavar=('IMPL', 'KIND'), help=argparse.SUPPRESS)
    parser.add_argument('--train-worker', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps({'peak_mib': memory_worker(*args.memory_worker, args.batch)}))
        return
    device = torch.device(args.device)
    if args.train_worker:
        train = train_step_times({kind: make_ours(kind).to(device) for kind in ('local', 'global')},
                                 args.batch, device, args.repeats, args.warmup)
        print(json.dumps(train))
        return
    if args.check_only:
        update_equivalence_check(device, args)
        return
    malloc_kept = device.type == 'cpu' and not args.default_malloc and keep_freed_memory()
    naive_global_repeats = args.naive_global_repeats or args.repeats
    started = time.perf_counter()

    checks = equivalence_check(device)
    check_seconds = time.perf_counter() - started
    # matmul throughput: sampled before the loss timings and again in every round (the machine's speed drifts)
    square = MatmulTimer(device, args.matmul_size, args.matmul_size, args.matmul_size)
    vit_shape = MatmulTimer(device, args.batch * bound_flops(1)['tokens_per_image'], DIM, HIDDEN)
    square.sample(10)
    vit_shape.sample(20)
    print(f'matmul throughput: {square.throughput() / 1e9:.0f} GFLOP/s ({args.matmul_size}^3), '
          f'{vit_shape.throughput() / 1e9:.0f} GFLOP/s ({vit_shape.a.shape[0]}x{DIM} @ {DIM}x{HIDDEN})', flush=True)

    impls = ('ours', 'naive', 'naive_frozen')
    losses = {}
    for kind in ('local', 'global'):
        torch.manual_seed(0)
        ours = build('ours', kind, device)
        losses[('ours', kind)] = ours
        for name in impls[1:]:
            losses[(name, kind)] = build(name, kind, device)
            share_weights(ours, losses[('naive', kind)])  # same weights everywhere (time does not depend on them)
    pred, target = inputs(args.batch, device)
    for key, loss in losses.items():
        for _ in range(args.warmup):
            loss_step(loss, pred, target)
    times = {key: [] for key in losses}
    for round_ in range(max(args.repeats, naive_global_repeats)):
        for key, loss in losses.items():
            wanted = naive_global_repeats if key[0] != 'ours' and key[1] == 'global' else args.repeats
            if round_ < wanted:
                times[key].append(timed(lambda: loss_step(loss, pred, target), device))
        square.sample(3)
        vit_shape.sample(5)
        print(f'round {round_ + 1}: ' + ', '.join(f'{n}/{k} {t[-1]:.3f}s' for (n, k), t in times.items()
                                                  if len(t) == round_ + 1), flush=True)

    memory = {}
    if not args.no_memory:
        for key in losses:
            memory[key] = peak_memory_mib(*key, args.batch, device, losses[key])
            print(f'peak memory {key[0]}/{key[1]}: {fmt_mib(memory[key])}', flush=True)
    param_mib = {name: sum(p.numel() * p.element_size() for p in losses[(name, 'local')].parameters()) / 2 ** 20
                 for name in impls}
    del losses

    train_losses = {kind: make_ours(kind).to(device) for kind in ('local', 'global')}
    train = train_step_times(train_losses, args.batch, device, args.repeats, args.warmup)
    print('train step: ' + ', '.join(f'{k} {statistics.median(v):.3f}s' for k, v in train.items()), flush=True)
    del train_losses
    train_default = None
    if malloc_kept:  # the same in a fresh process with glibc's default malloc settings
        proc = subprocess.run([sys.executable, __file__, '--train-worker', '--batch', str(args.batch), '--device',
                               args.device, '--repeats', str(args.repeats), '--warmup', str(args.warmup)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            train_default = json.loads(proc.stdout.strip().splitlines()[-1])
            print('train step, default malloc: ' + ', '.join(
                f'{k} {statistics.median(v):.3f}s' for k, v in train_default.items()), flush=True)
        else:
            print(proc.stderr, file=sys.stderr)

    throughput, vit_shape_throughput = square.throughput(), vit_shape.throughput()
    print(f'matmul throughput over the run: {throughput / 1e9:.0f} GFLOP/s ({args.matmul_size}^3), '
          f'{vit_shape_throughput / 1e9:.0f} GFLOP/s (ViT MLP shape)', flush=True)
    bound = bound_flops(args.batch)
    bound_s = bound['total'] / throughput
    median = {key: statistics.median(t) for key, t in times.items()}
    result = {
        'machine': {'platform': platform.platform(), 'processor': platform.processor() or platform.machine(),
                    'cpu_count': os.cpu_count(), 'device': str(device),
                    'gpu': torch.cuda.get_device_name(device) if device.type == 'cuda' else None},
        'torch': torch.__version__, 'threads': torch.get_num_threads(),
        'interop_threads': torch.get_num_interop_threads(),
        'settings': {'backbone': TIMM_NAME, 'pretrained': False, 'batch': args.batch, 'size': SIZE, 'layer': LAYER,
                     'feature': FEATURE, 'mask_ratio': MASK_RATIO, 'repeats': args.repeats,
                     'naive_global_repeats': naive_global_repeats, 'warmup': args.warmup,
                     'naive': {'resize_to': NAIVE_SIZE, 'blocks_run': NAIVE_DEPTH},
                     'glibc_keeps_freed_memory': malloc_kept},
        'equivalence_check': checks,
        'matmul_throughput_flops': throughput, 'matmul_size': args.matmul_size,
        'matmul_square_times_s': square.seconds,
        'matmul_throughput_vit_shape_flops': vit_shape_throughput,
        'bound_flops': bound, 'bound_s': bound_s,
        'naive_flops': naive_flops(args.batch, True)['total'],
        'naive_frozen_flops': naive_flops(args.batch, False)['total'],
        'vit_param_mib': param_mib,
        'loss_times_s': {f'{n}/{k}': t for (n, k), t in times.items()},
        'loss_median_s': {f'{n}/{k}': m for (n, k), m in median.items()},
        'peak_memory_mib': {f'{n}/{k}': m for (n, k), m in memory.items()},
        'peak_memory_method': ('cuda max_memory_allocated - memory_allocated before' if device.type == 'cuda' else
                               'CPU peak RSS increase of one call (VmHWM after clear_refs), fresh subprocess'),
        'train_step_times_s': train,
        'train_step_median_s': {k: statistics.median(v) for k, v in train.items()},
        'train_step_default_malloc_times_s': train_default,
        'train_step_default_malloc_median_s': None if train_default is None else {
            k: statistics.median(v) for k, v in train_default.items()},
    }
    result['ratios'] = {}
    targets = {}
    for kind in ('local', 'global'):
        ours_s = median[('ours', kind)]
        result['ratios'][kind] = {
            'naive_over_ours': median[('naive', kind)] / ours_s,
            'naive_frozen_over_ours': median[('naive_frozen', kind)] / ours_s,
            'ours_over_bound': ours_s / bound_s,
            'train_step_over_l1': result['train_step_median_s'][kind] / result['train_step_median_s']['l1'],
        }
        targets[f'{kind}: ours faster than naive'] = result['ratios'][kind]['naive_over_ours'] > 1
        targets[f'{kind}: ours within 1.4x of bound'] = result['ratios'][kind]['ours_over_bound'] <= 1.4
    targets['global: ours >= 1.5x faster than naive'] = result['ratios']['global']['naive_over_ours'] >= 1.5
    result['targets_met'] = targets
    result['script_seconds'] = time.perf_counter() - started
    result['timing_run'] = run_stamp()
    result['equivalence_check_run'] = {**result['timing_run'], 'seconds': check_seconds, 'check_only': False}
    write_results(result, args)


def write_results(result, args):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'loss_bench.json').write_text(json.dumps(result, indent=2) + '\n')
    (RESULTS / 'loss_bench.md').write_text(markdown(result, args))
    print(markdown(result, args))


def _git(*command):
    proc = subprocess.run(['git', *command], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_stamp():
    """UTC date and git commit of this run (commit None outside a git checkout; dirty: uncommitted changes
    to tracked files other than the results)."""
    dirty = _git('status', '--porcelain', '--untracked-files=no', '--', '.', ':!benchmarks/results')
    return {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'commit': _git('rev-parse', '--short', 'HEAD'),
            'dirty': bool(dirty)}


def update_equivalence_check(device, args):
    """``--check-only``: rerun the equivalence check and rewrite it into the last full run's results."""
    path = RESULTS / 'loss_bench.json'
    if not path.exists():
        raise SystemExit(f'--check-only rewrites the equivalence part of {path}, which does not exist: run '
                         '`python benchmarks/loss_bench.py` once first.')
    result = json.loads(path.read_text())
    if 'timing_run' not in result:  # written before runs were stamped: the commit that last wrote the file
        commit, _, date = (_git('log', '-1', '--format=%h %cs', '--', str(path)) or '').partition(' ')
        result['timing_run'] = {'date': date or None, 'commit': commit or None, 'dirty': False}
    started = time.perf_counter()
    result['equivalence_check'] = equivalence_check(device)
    result['equivalence_check_run'] = {**run_stamp(), 'seconds': time.perf_counter() - started, 'check_only': True}
    write_results(result, args)


def _stamp(run):
    commit = run.get('commit') or 'unknown commit'
    return f'{run.get("date") or "unknown date"}, commit {commit}{" + uncommitted changes" if run.get("dirty") else ""}'


def runs_markdown(r):
    """Which run each part comes from (the equivalence check can be rerun alone with --check-only)."""
    timing, check = r.get('timing_run'), r.get('equivalence_check_run')
    if not timing or not check:
        return []
    if not check['check_only']:
        return [f'Run: {_stamp(timing)}.', '']
    return [f'Equivalence check rerun alone (`--check-only`, {check["seconds"]:.0f} s): {_stamp(check)}. Timings, '
            f'memory, bound and training step: the full run of {_stamp(timing)}.', '']


def equivalence_markdown(r):
    """The equivalence table, what its columns mean, and the sort-order analysis of the global loss."""
    checks = r['equivalence_check']
    lines = [
        'Both implementations, with the same weights and inputs, run once in float32 (as in training) and once '
        'with both models and the inputs cast to float64. Columns: "ours", "naive": the loss values (float32). '
        '"value rel. diff": |ours - naive| / |naive|, float32. "input grad diff, float32" and "..., float64": '
        'max over pixels of |d ours / d pred - d naive / d pred| divided by max |d naive / d pred|, both in '
        'float32, resp. both in float64. "float32 vs float64": the same measure between an implementation\'s '
        'float32 gradient and its own float64 one (ours / naive). Verdict: OK when the values agree in float32 '
        '(< 1e-4) and the gradients agree in float64 (< 1e-9), i.e. both compute the same function and the same '
        'gradient; the float32 gradient difference is reported, not judged (see below).', '',
        '| loss | ours | naive | value rel. diff | input grad diff, float32 | input grad diff, float64 | '
        'float32 vs float64 (ours / naive) | verdict |', '|---|---|---|---|---|---|---|---|']
    for kind, c in checks.items():
        if 'grad_max_rel_diff_f64' in c:
            to64 = c['grad_rel_diff_f32_to_f64']
            extra = f'{c["grad_max_rel_diff_f64"]:.1e} | {to64["ours"]:.1e} / {to64["naive"]:.1e}'
        else:  # results of a run before the float64 check
            extra = 'n/a | n/a'
        lines.append(f'| {kind} | {c["ours"]:.6g} | {c["naive"]:.6g} | {c["value_rel_diff"]:.1e} | '
                     f'{c["grad_max_rel_diff"]:.1e} | {extra} | {"OK" if c["ok"] else "MISMATCH"} |')
    diagnosed = {kind: c['sort_order'] for kind, c in checks.items() if 'sort_order' in c}
    if not diagnosed:
        return lines
    kinds = list(diagnosed)

    def row(label, cell):
        return f'| {label} | ' + ' | '.join(cell(diagnosed[kind]) for kind in kinds) + ' |'
    lines += [
        '', '### Why the float32 input gradients of the global loss differ', '',
        'The global loss pairs the k-th smallest channel value of each pred token with the k-th smallest of the '
        "target's (a sort). Its gradient to a channel value is (u_i - v_(rank of u_i)) / W (p = 2, W the token's "
        'distance): where two channel '
        "values of a token swap order the gradient jumps by the target's value spacing, and at a tie the sort has "
        'no derivative. Ours and the naive code compute the same features up to float32 rounding (other summation '
        'orders); channel values closer than that can sort in another order in the two, and then the gradient '
        'goes to other elements. The table measures this on the pred features of block 5 (same inputs as above):', '',
        '| quantity | ' + ' | '.join(kinds) + ' |', '|---' * (len(kinds) + 1) + '|',
        row('max \\|feature ours - naive\\|, float32 (largest \\|feature\\|)',
            lambda d: f'{d["feature_max_abs_diff_f32"]:.1e} ({d["feature_max_abs"]:.2f})'),
        row('adjacent sorted channel values closer than that (float64 features)',
            lambda d: f'{d["adjacent_closer_than_diff"]} of {d["adjacent_pairs"]} pairs, in '
                      f'{d["tokens_with_close_pair"]} of {d["tokens"]} tokens'),
        row('channel values sorted to another rank, ours vs naive (float32)',
            lambda d: f'{d["elements_other_rank"]} of {d["elements"]}, in {d["tokens_other_rank"]} tokens'),
        row('feature gradient diff / max, elements with the same rank',
            lambda d: f'{d["feature_grad_rel_diff_same_rank"]:.1e}'),
        row('feature gradient diff / max, elements with another rank',
            lambda d: f'{d["feature_grad_rel_diff_other_rank"]:.1e}'),
        row('input grad diff in float32 with both paired by one order (of the float64 features)',
            lambda d: f'{d["input_grad_rel_diff_f32_one_pairing"]:.1e}'), '',
        'So the float32 difference comes entirely from the few elements sorted to another rank: with one pairing '
        'for both it falls to the float32 rounding of the features relative to the sorted gaps u - v (larger than '
        'for the local loss, whose gradient is only the sign of the feature difference), and in float64 the two '
        'gradients agree to ~1e-14. Neither float32 gradient is the wrong one: each differs from its own float64 '
        'gradient by about as much as the two differ from each other (last column above).']
    return lines


def markdown(r, args):
    s, med, mem, rat = r['settings'], r['loss_median_s'], r['peak_memory_mib'], r['ratios']
    gpu = f', {r["machine"]["gpu"]}' if r['machine']['gpu'] else ''
    lines = [
        '# ViT loss cost: ours vs. naive vs. compute bound', '',
        f'Machine: {r["machine"]["processor"]}, {r["machine"]["cpu_count"]} CPUs, {r["machine"]["platform"]}; '
        f'device `{r["machine"]["device"]}`{gpu}. torch {r["torch"]}, {r["threads"]} intra-op threads '
        f'(`torch.get_num_threads()`, default), {r["interop_threads"]} inter-op.', '',
        f'Settings: `{s["backbone"]}` with random weights, batch {s["batch"]}, {s["size"]}x{s["size"]}, layer '
        f'{s["layer"]}, `{s["feature"]}` feature, mask_ratio {s["mask_ratio"]}. Times: forward + backward to pred '
        f'of `loss.value(pred, target)`, median of {s["repeats"]} timed calls (naive global: '
        f'{s["naive_global_repeats"]}) after {s["warmup"]} warm-up calls, implementations interleaved round-robin. '
        f'Peak memory: {r["peak_memory_method"]}. '
        + ('Timings with glibc malloc set to keep freed memory (`mallopt` M_MMAP_THRESHOLD and M_TRIM_THRESHOLD '
           '1 GiB, see `keep_freed_memory`): without it, large CPU tensors are mmapped afresh on every call and '
           'page faults make timings vary by up to 2x from run to run. ' if s['glibc_keeps_freed_memory'] else '')
        +
        f'`python benchmarks/loss_bench.py` ({r["script_seconds"]:.0f} s in all).', '',
        *runs_markdown(r),
        'Naive (a): full timm model, images resized to 224x224 (bilinear) for its fixed 14x14 position embedding, '
        'always 6 blocks, ViT weights with requires_grad (target branch builds a graph, backward computes the '
        'discarded weight gradients), Python loop over tokens in the global loss. "naive, frozen weights": the '
        'same with `requires_grad_(False)`. Note that at 224x224 the naive code sees 99 tokens per image '
        '(98 kept + CLS) where ours sees 129 (128 + CLS) at the native 256x256.', '',
        '## Equivalence check (224x224, batch 2, same weights; mask 0.5: same RNG seed, hence same mask)', '',
        *equivalence_markdown(r), '']
    bound = r['bound_flops']
    lines += [
        '## Forward + backward per call', '',
        '| loss | implementation | median | min - max | peak memory increase | ratio to ours |',
        '|---|---|---|---|---|---|']
    names = {'ours': 'ours', 'naive': 'naive (a)', 'naive_frozen': 'naive, frozen weights'}
    for kind in ('local', 'global'):
        for impl in ('ours', 'naive', 'naive_frozen'):
            key = f'{impl}/{kind}'
            t = r['loss_times_s'][key]
            ratio = '1' if impl == 'ours' else f'{med[key] / med[f"ours/{kind}"]:.2f}x slower' \
                if med[key] >= med[f'ours/{kind}'] else f'{med[f"ours/{kind}"] / med[key]:.2f}x faster'
            lines.append(f'| {kind} | {names[impl]} | {med[key]:.3f} s | {min(t):.3f} - {max(t):.3f} s | '
                         f'{fmt_mib(mem.get(key))} | {ratio} |')
        lines.append(f'| {kind} | bound (b) | {r["bound_s"]:.3f} s | | | '
                     f'ours = {rat[kind]["ours_over_bound"]:.2f}x bound |')
    lines += [
        '', f'ViT parameters held: ours {r["vit_param_mib"]["ours"]:.0f} MiB (blocks 1..5 only), naive '
        f'{r["vit_param_mib"]["naive"]:.0f} MiB (whole model); not part of the peak increase above.', '',
        '## Compute lower bound (b)', '',
        'Matmul FLOPs only (formulas in the script docstring); LayerNorm, softmax, GELU, copies, the loss '
        'itself are not counted, so no implementation can reach it.', '',
        '| quantity | value |', '|---|---|',
        f'| tokens per image (kept + CLS) | {bound["tokens_per_image"]} |',
        f'| matmul FLOPs, one forward through {LAYER} blocks (+ patch embedding of kept patches) | '
        f'{bound["forward_one_branch"] / 1e9:.1f} G |',
        f'| matmul FLOPs, backward to the input only | {bound["backward_input_only"] / 1e9:.1f} G |',
        f'| total (target fwd + pred fwd + pred bwd) | {bound["total"] / 1e9:.1f} G |',
        f'| matmul throughput, {r["matmul_size"]}^3 float32, median of {len(r["matmul_square_times_s"])} '
        '(10 before the loss timings, 3 in each round) | '
        f'{r["matmul_throughput_flops"] / 1e9:.0f} GFLOP/s |',
        f'| bound = total / throughput | {r["bound_s"]:.3f} s |',
        f'| for context: throughput at a ViT-B MLP shape '
        f'({s["batch"] * bound["tokens_per_image"]}x{DIM} @ {DIM}x{HIDDEN}) | '
        f'{r["matmul_throughput_vit_shape_flops"] / 1e9:.0f} GFLOP/s |',
        f'| for context: matmul FLOPs the naive code does / frozen variant | {r["naive_flops"] / 1e9:.1f} G / '
        f'{r["naive_frozen_flops"] / 1e9:.1f} G |', '',
        '## Training step of the demo network (SRVGGNetCompact, 32 feats, 8 convs, 256x256, batch '
        f'{s["batch"]}, Adam)', '',
        f'Median of {s["repeats"]} steps each after {s["warmup"]} warm-up steps, interleaved.', '']
    train, default = r['train_step_median_s'], r['train_step_default_malloc_median_s']
    header = '| step | median | ratio to L1 only |'
    if default:
        header += " median, glibc's default malloc (fresh process) | ratio to L1 only |"
    lines += [header, '|---' * header.count(' |') + '|']
    for key, label in (('l1', 'L1 only'), ('local', 'L1 + LocalMAEPerceptualLoss'),
                       ('global', 'L1 + GlobalDistributionLoss')):
        row = f'| {label} | {train[key]:.3f} s | {train[key] / train["l1"]:.2f}x |'
        if default:
            row += f' {default[key]:.3f} s | {default[key] / default["l1"]:.2f}x |'
        lines.append(row)
    lines += ['', '## Targets', '', '| target | measured | met |', '|---|---|---|']
    measured = {
        'local: ours faster than naive': f'naive / ours = {rat["local"]["naive_over_ours"]:.2f}',
        'global: ours faster than naive': f'naive / ours = {rat["global"]["naive_over_ours"]:.2f}',
        'global: ours >= 1.5x faster than naive': f'naive / ours = {rat["global"]["naive_over_ours"]:.2f}',
        'local: ours within 1.4x of bound': f'ours / bound = {rat["local"]["ours_over_bound"]:.2f}',
        'global: ours within 1.4x of bound': f'ours / bound = {rat["global"]["ours_over_bound"]:.2f}',
    }
    for name, text in measured.items():
        lines.append(f'| {name} | {text} | {"yes" if r["targets_met"][name] else "no"} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
