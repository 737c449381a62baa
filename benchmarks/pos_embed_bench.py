"""How much the position-embedding kernel changes the ViT features: MAE's bicubic without antialias
(``pos_embed_interpolation: mae``, the authors' code) against timm's antialiased bicubic (``timm``).

ViT-B/16 with random block weights (the released ones cannot be downloaded here) and MAE's own
position embedding, which is not learned but the fixed 2-D sine-cosine table (computed here), so the
resampled quantity is the real one. Input: scikit-image's astronaut resized to each size. Reported:
relative L2 difference of block-5 tokens, ||f_mae - f_timm|| / ||f_mae||. Writes
benchmarks/results/pos_embed_bench.{json,md}.

    python benchmarks/pos_embed_bench.py
"""
import numpy as np
import skimage.data
import torch

from bench_results import write_results

SIZES = (128, 224, 256, 384, 512)


def sincos_table(dim, side):
    """MAE's fixed position embedding: sine / cosine of column then row positions, CLS row zero."""
    omega = 1.0 / 10000 ** (np.arange(dim // 4) / (dim / 4))
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing='ij')

    def encode(positions):
        angles = np.outer(positions.reshape(-1), omega)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    table = np.concatenate([encode(cols), encode(rows)], axis=1)
    return torch.from_numpy(np.concatenate([np.zeros((1, dim)), table])[None]).float()


def main():
    from basicsr_vitloss.losses.vit_features import ViTFeatureExtractor
    torch.manual_seed(0)
    extractors = {mode: ViTFeatureExtractor('mae', False, 5, 'token', mode) for mode in ('mae', 'timm')}
    extractors['timm'].load_state_dict(extractors['mae'].state_dict())
    with torch.no_grad():
        for extractor in extractors.values():
            extractor.pos_embed.copy_(sincos_table(extractor.pos_embed.shape[-1], extractor.grid[0]))
    image = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1)[None].float() / 255
    rows = []
    for size in SIZES:
        x = torch.nn.functional.interpolate(image, size=(size, size), mode='bilinear', antialias=True)
        with torch.no_grad():
            a, b = (extractors[mode](x)[5] for mode in ('mae', 'timm'))
        rows.append({'size': size, 'relative_l2': float((a - b).norm() / a.norm())})
    lines = ['# Position-embedding kernel: MAE (no antialias) vs timm (antialias)', '',
             'ViT-B/16, random blocks, MAE\'s sine-cosine position table, block-5 tokens of the astronaut', '',
             '| image size | token grid | relative L2 difference |', '|---:|---:|---:|']
    lines += [f"| {r['size']} | {r['size'] // 16}x{r['size'] // 16} | {100 * r['relative_l2']:.2f} % |" for r in rows]
    write_results('pos_embed_bench', {'rows': rows}, lines)


if __name__ == '__main__':
    main()
