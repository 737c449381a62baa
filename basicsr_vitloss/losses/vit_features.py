"""A frozen timm ViT that returns the paper's features (Sec. III-B): token, query, key or value of
chosen transformer blocks, for images in [0, 1] of any size, with MAE-style random token masking."""
import math
import os
import os.path as osp

import torch
from torch import nn
from torch.nn import functional as F

from basicsr_vitloss.archs.arch_util import pad_to_multiple

#: short backbone names -> timm model names (ViT-B/16 for all three, as in the paper's Table IV)
BACKBONES = {
    'mae': 'vit_base_patch16_224.mae',  # He et al. 2022, encoder of the MAE pretraining
    'dino': 'vit_base_patch16_224.dino',  # Caron et al. 2021, self-distillation
    # supervised: the weights released with the ViT paper (Dosovitskiy et al. 2021; ImageNet-21k
    # pretraining, ImageNet-1k fine-tuning), the supervised ViT-B/16 of the paper's era; timm's
    # default tag for this name is a later AugReg retraining.
    'vit': 'vit_base_patch16_224.orig_in21k_ft_in1k',
}
FEATURES = ('token', 'query', 'key', 'value', 'qkv')
#: how the position embedding is resampled to another token grid (both bicubic, align_corners False)
POS_EMBED_INTERPOLATIONS = {
    'mae': False,  # MAE's interpolate_pos_embed (used by the authors' code): no antialias
    'timm': True,  # timm's resample_abs_pos_embed: antialias (PIL-style kernel)
}
#: Seed of the initialization of every ViT built here (the weights of ``pretrained: false``): every
#: process of a distributed run (BasicSR seeds rank r with manual_seed + r) and every run builds the same
#: random ViT, and building a loss leaves the global random stream untouched.
VIT_INIT_SEED = 0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: checkpoint keys that belong to the MAE decoder or pretraining, not to the encoder
_NON_ENCODER_PREFIXES = ('decoder', 'mask_token')
#: model keys a feature extractor never uses (classifier head, final norms)
_UNUSED_PREFIXES = ('head', 'fc_norm', 'norm.', 'attn_pool')


def _timm():
    try:
        import timm
    except ImportError as error:  # pragma: no cover - timm is a dependency
        raise ImportError('The ViT perceptual losses need timm: pip install timm') from error
    return timm


def read_checkpoint(path):
    """State dict of a ViT checkpoint file: the official MAE release (``{'model': ...}``), a plain
    state dict, or a timm ``.safetensors`` / ``.pth`` file. Prefixes ``module.`` are removed."""
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'ViT checkpoint not found: {path} (option pretrained)')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state = load_file(path, device='cpu')
    else:
        state = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('model', 'state_dict', 'params'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{path} holds no state dict of tensors (expected a ViT checkpoint; keys: '
                         f'{list(state)[:8] if isinstance(state, dict) else type(state).__name__})')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def check_pos_embed_interpolation(mode):
    if mode not in POS_EMBED_INTERPOLATIONS:
        raise ValueError(f"pos_embed_interpolation must be one of {', '.join(POS_EMBED_INTERPOLATIONS)}, "
                         f'got {mode!r}.')
    return mode


def resample_pos_grid(patch_pos, old_grid, new_grid, mode='mae'):
    """Patch position embeddings (1, rows * cols, D) of ``old_grid`` resampled to ``new_grid``: bicubic,
    align_corners False, computed in float32 (float64 for float64 weights); ``mode`` 'mae' (no antialias,
    MAE's interpolate_pos_embed) or 'timm' (antialias, timm's resample_abs_pos_embed)."""
    grid = patch_pos.reshape(1, *old_grid, -1).permute(0, 3, 1, 2)
    grid = grid.to(torch.promote_types(grid.dtype, torch.float32))
    resized = F.interpolate(grid, size=tuple(new_grid), mode='bicubic', align_corners=False,
                            antialias=POS_EMBED_INTERPOLATIONS[check_pos_embed_interpolation(mode)])
    return resized.to(patch_pos.dtype).permute(0, 2, 3, 1).flatten(1, 2)


def load_encoder_weights(model, state, source, pos_embed_interpolation='mae'):
    """Load encoder weights into a timm VisionTransformer; decoder keys are ignored, a position
    embedding of another grid is resampled, anything else missing or mismatched is an error."""
    state = {k: v for k, v in state.items() if not k.startswith(_NON_ENCODER_PREFIXES)}
    own = model.state_dict()
    if 'pos_embed' in state and state['pos_embed'].shape != own['pos_embed'].shape \
            and state['pos_embed'].shape[2] == own['pos_embed'].shape[2]:  # another token grid: resample
        prefix = 0 if model.no_embed_class else model.num_prefix_tokens
        old_side = int(math.isqrt(state['pos_embed'].shape[1] - prefix))
        if old_side * old_side == state['pos_embed'].shape[1] - prefix:
            old = state['pos_embed']
            grid = resample_pos_grid(old[:, prefix:], (old_side, old_side), model.patch_embed.grid_size,
                                     pos_embed_interpolation)
            state['pos_embed'] = torch.cat([old[:, :prefix], grid], dim=1)
    needed = [k for k in own if not k.startswith(_UNUSED_PREFIXES)]
    missing = [k for k in needed if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in needed if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f'missing encoder keys {missing[:10]}' + (' ...' if len(missing) > 10 else ''))
        if unexpected:
            problems.append(f'unexpected keys {unexpected[:10]}' + (' ...' if len(unexpected) > 10 else ''))
        if mismatched:
            problems.append(f'shape mismatches {mismatched[:10]}')
        raise ValueError(f'{source} does not match the ViT {model.default_cfg.get("architecture", "")}: '
                         + '; '.join(problems) + '. Check `backbone` (and backbone_kwargs) against the checkpoint.')
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def create_vit(backbone='mae', pretrained=True, pos_embed_interpolation='mae', init_seed=VIT_INIT_SEED,
               **backbone_kwargs):
    """A timm VisionTransformer for ``backbone`` ('mae' | 'dino' | 'vit' | a timm model name) with
    ``pretrained`` True (released weights through timm's hub), False (random, the same in every process:
    ``init_seed``) or a checkpoint path."""
    timm = _timm()
    name = BACKBONES.get(backbone, backbone)
    if not isinstance(name, str) or name.split('.')[0] not in timm.list_models():
        raise ValueError(f"Unknown backbone '{backbone}': expected one of {', '.join(BACKBONES)} or a timm "
                         f'ViT model name such as vit_small_patch16_224.')
    hub = pretrained is True
    try:
        with torch.random.fork_rng(devices=[]):  # on the CPU, where timm initializes
            torch.manual_seed(init_seed)
            model = timm.create_model(name, pretrained=hub, num_classes=0, **backbone_kwargs)
    except Exception as error:
        if not hub:
            raise
        raise RuntimeError(
            f"Could not get the pretrained weights of '{name}' from timm's hub ({type(error).__name__}: {error}). "
            'Without internet, download them elsewhere and set `pretrained:` to the local file, e.g. '
            'pretrained: /path/to/mae_pretrain_vit_base.pth (official MAE release), or a timm '
            'model.safetensors; or fill the Hugging Face cache and set HF_HUB_OFFLINE=1.') from error
    if not hasattr(model, 'blocks') or not hasattr(model, 'patch_embed') or not hasattr(model, 'pos_embed'):
        raise ValueError(f"Backbone '{name}' is not a plain ViT (timm VisionTransformer with blocks, "
                         'patch_embed and pos_embed).')
    if isinstance(pretrained, (str, os.PathLike)):
        load_encoder_weights(model, read_checkpoint(pretrained), os.fspath(pretrained), pos_embed_interpolation)
    elif not isinstance(pretrained, bool):
        raise ValueError(f'pretrained must be true, false or a checkpoint path, got {pretrained!r}')
    return model


class ViTFeatureExtractor(nn.Module):
    """Frozen ViT returning ``{layer: (B, N_kept + prefix, D)}`` features.

    Pipeline (exactly): x in [0, 1] -> mean/std normalization -> patch embedding -> + position
    embedding of the patch tokens, bicubically resampled to the image's token grid
    (``pos_embed_interpolation``: 'mae', MAE's kernel without antialias, as the authors' code; or
    'timm', timm's antialiased kernel) -> keep a random
    subset of floor(N * (1 - mask_ratio)) patch tokens per sample (the subset is an argument so
    that two images share it) -> prepend the CLS token plus its position embedding -> blocks 1..l.
    ``token`` is the output of block l (no final norm); ``query`` / ``key`` / ``value`` are the
    q, k, v projections of block l's attention applied to norm1 of block l's input, heads
    concatenated (timm's per-head q_norm / k_norm, identity in ViT-B, are not applied); ``qkv`` is
    the three concatenated (3 x D channels: the output of block l's ``attn.qkv``, what the authors'
    q/k/v ablation hooks on block 6).
    ``grid_offset`` (dy, dx) in ``forward``: the token grid starts dy rows / dx columns above / left of
    the image (reflect padding), so the patch borders move while every pixel still counts.

    Image sizes: any H, W >= the patch size. A remainder that is not a multiple of the patch size is
    reflect-padded at the bottom / right, so every pixel reaches some token.
    Only the blocks up to the deepest requested layer are kept and run.
    """

    def __init__(self, backbone='mae', pretrained=True, layers=5, feature='token', pos_embed_interpolation='mae',
                 init_seed=VIT_INIT_SEED, **backbone_kwargs):
        super().__init__()
        self.layers = sorted({int(layer) for layer in ([layers] if isinstance(layers, int) else layers)})
        if feature not in FEATURES:
            raise ValueError(f"Unknown feature '{feature}': expected one of {', '.join(FEATURES)}.")
        self.feature = feature
        self.pos_embed_interpolation = check_pos_embed_interpolation(pos_embed_interpolation)
        vit = create_vit(backbone, pretrained, pos_embed_interpolation, init_seed, **backbone_kwargs)
        depth = len(vit.blocks)
        if not self.layers or self.layers[0] < 1 or self.layers[-1] > depth:
            raise ValueError(f'layers must be block indices in 1..{depth} for this backbone, got {layers}.')
        self.patch_size = vit.patch_embed.proj.kernel_size
        self.patch_proj, self.patch_norm = vit.patch_embed.proj, vit.patch_embed.norm
        self.grid = tuple(vit.patch_embed.grid_size)
        self.no_embed_class = vit.no_embed_class
        prefix = [t for t in (vit.cls_token, getattr(vit, 'reg_token', None)) if t is not None]
        self.prefix = nn.Parameter(torch.cat(prefix, dim=1)) if prefix else None
        self.pos_embed = vit.pos_embed
        self.norm_pre = vit.norm_pre
        self.blocks = vit.blocks[:self.layers[-1]]
        mean = vit.pretrained_cfg.get('mean', IMAGENET_MEAN)
        std = vit.pretrained_cfg.get('std', IMAGENET_STD)
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self._pos_cache = {}
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):
        """Stays in eval mode: the ViT is frozen whatever the surrounding model does."""
        return super().train(False)

    @property
    def num_prefix(self):
        return 0 if self.prefix is None else self.prefix.shape[1]

    def token_grid(self, height, width):
        """Token grid (rows, cols) for an image of ``height`` x ``width``."""
        return math.ceil(height / self.patch_size[0]), math.ceil(width / self.patch_size[1])

    def _pos_embed(self, grid):
        """Position embeddings (prefix, patches) for a token grid; resampled grids are cached (the
        weights are frozen; the key includes the tensor's version, so loading weights renews it)."""
        prefix = 0 if self.no_embed_class else self.num_prefix
        prefix_pos, patch_pos = self.pos_embed[:, :prefix], self.pos_embed[:, prefix:]
        if grid == self.grid:
            return prefix_pos, patch_pos
        key = (grid, patch_pos.device, patch_pos.dtype, self.pos_embed._version)
        if key not in self._pos_cache:
            self._pos_cache.clear()
            self._pos_cache[key] = resample_pos_grid(patch_pos, self.grid, grid, self.pos_embed_interpolation)
        return prefix_pos, self._pos_cache[key]

    def patches(self, x, grid_offset=(0, 0)):
        """Normalized image cut into patches: (B, N, 3 * ph * pw) in the order of the patch
        embedding's weights, and the token grid (rows, cols). ``grid_offset`` (dy, dx): reflect-pad dy
        rows on top and dx columns on the left first, which moves the patch borders."""
        x = (x - self.mean) / self.std
        dy, dx = grid_offset
        if dy or dx:
            x = F.pad(x, (dx, 0, dy, 0), mode='reflect')
        height, width = x.shape[-2:]
        rows, cols = self.token_grid(height, width)
        ph, pw = self.patch_size
        x = pad_to_multiple(x, self.patch_size)
        batch, channels = x.shape[:2]
        x = x.reshape(batch, channels, rows, ph, cols, pw).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(batch, rows * cols, channels * ph * pw), (rows, cols)

    def forward(self, x, keep=None, grid_offset=(0, 0)):
        """Features of images ``x`` (B, 3, H, W) in [0, 1] as ``{layer: tensor}``; ``keep`` (B, K)
        indices of the patch tokens to keep (None: all); ``grid_offset`` (dy, dx), see the class. Only
        kept patches are embedded: the patch embedding is applied as a matrix product to them alone."""
        patches, grid = self.patches(x, grid_offset)
        prefix_pos, patch_pos = self._pos_embed(grid)
        patch_pos = patch_pos.expand(patches.shape[0], -1, -1)
        if keep is not None:
            patches = torch.gather(patches, 1, keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
            patch_pos = torch.gather(patch_pos, 1, keep.unsqueeze(-1).expand(-1, -1, patch_pos.shape[-1]))
        tokens = self.patch_norm(F.linear(patches, self.patch_proj.weight.flatten(1), self.patch_proj.bias))
        tokens = tokens + patch_pos
        if self.prefix is not None:
            prefix = self.prefix + prefix_pos if prefix_pos.shape[1] else self.prefix
            tokens = torch.cat([prefix.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)
        tokens = self.norm_pre(tokens)
        features = {}
        for index, block in enumerate(self.blocks, start=1):
            if self.feature != 'token' and index in self.layers:
                features[index] = self._qkv(block, tokens)  # from this block's input, T^(index-1)
                if index == self.layers[-1]:
                    break  # the deepest block itself is not needed
            tokens = block(tokens)
            if self.feature == 'token' and index in self.layers:
                features[index] = tokens
        return features

    def compile_blocks(self):
        """Compile every kept block in place with ``torch.compile`` (state_dict keys unchanged)."""
        for block in self.blocks:
            block.compile()

    def _qkv(self, block, tokens):
        qkv = block.attn.qkv(block.norm1(tokens))
        if self.feature == 'qkv':
            return qkv
        index = ('query', 'key', 'value').index(self.feature)
        return qkv.chunk(3, dim=-1)[index]

    def random_keep(self, batch, height, width, mask_ratio, device, grid_offset=(0, 0)):
        """Indices (B, K) of the patch tokens MAE keeps for ``mask_ratio``, K = floor(N * (1 - ratio))
        but at least 1 (an image of a single patch keeps it), drawn from torch's RNG (reproducible
        under a manual seed); None when nothing is masked."""
        if mask_ratio <= 0:
            return None
        rows, cols = self.token_grid(height + grid_offset[0], width + grid_offset[1])
        count = rows * cols
        keep = max(1, int(count * (1 - mask_ratio)))
        noise = torch.rand(batch, count, device=device)
        return noise.argsort(dim=1)[:, :keep]
