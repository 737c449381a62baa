"""The README written next to the bundle's options (``options/train/TransformerPerceptualLoss/README.md``)."""
from . import bundle

PAPER = ('P. Liang, J. Jiang, X. Liu, J. Ma, "Image Deblurring by Exploring In-depth Properties of Transformer", '
         'IEEE Transactions on Neural Networks and Learning Systems, 2024.')


def readme_text(scopes, option_paths):
    """Markdown: what the bundle adds, the paper, how to run, licences, and the files."""
    code = bundle.files_of(scopes)
    trains = [p for p in option_paths if p.startswith('options/train/')]
    lines = [
        '# Transformer perceptual losses (TNNLS 2024)', '',
        f'{PAPER} The paper trains deblurring networks with two perceptual losses computed on the features of '
        'a frozen pretrained Vision Transformer (MAE ViT-B/16 by default):', '',
        '- `LocalMAEPerceptualLoss` (Eq. 5): the distance between the token features of the restored and the '
        'sharp image at one transformer block, on the same randomly masked tokens;',
        '- `GlobalDistributionLoss` (Eqs. 6-7): a distance between the distributions of those features.', '',
        'Both follow `PerceptualLoss`\'s contract (`percep, style = loss(pred, target)`), so any model with a '
        '`perceptual_opt` uses them:', '',
        '```yaml', '  perceptual_opt:', '    type: LocalMAEPerceptualLoss   # or GlobalDistributionLoss '
        '(loss_weight: 1.0e-5)', '    loss_weight: 1.0', '    backbone: mae', '    pretrained: true', '    layers: 5',
        '    feature: token', '    mask_ratio: 0.5', '```', '',
        'The ViT comes from [timm](https://github.com/huggingface/pytorch-image-models) (`pip install timm`; '
        'an error says so when it is missing). `pretrained: true` downloads the released MAE weights through '
        "timm's hub; a path to MAE's `mae_pretrain_vit_base.pth` works offline.", '',
        '## Run', '',
        'Prepare the data (GoPro as the community distributes it: `datasets/GoPro/{train,test}/{input,target}`, '
        'training crops under `train/input_crops` and `train/target_crops`; DPDD as released: '
        '`datasets/DPDD/{train,val,test}_{c,l,r}/...`), then, from the root of BasicSR:', '',
        '```bash', f'PYTHONPATH="./:${{PYTHONPATH}}" python basicsr/train.py -opt {trains[0] if trains else "..."}',
        'PYTHONPATH="./:${PYTHONPATH}" python basicsr/test.py -opt '
        f'{trains[0].replace("train", "test") if trains else "..."}', '```', '',
        "Each file's header states the table of the paper it reproduces, the numbers the paper reports for it "
        "(the paper's, not measured with these files), the official recipe it follows, and every place where "
        'stock BasicSR measures differently from the paper (8-bit PSNR / SSIM during validation; no LPIPS or '
        'MAE). No training run of these files at full size has been measured yet, so no results are given here.',
        '', '## Code added', '',
        '| file | what it implements | licence of the original work |', '|---|---|---|',
    ]
    lines += [f'| `{f.path}` | {f.module.rsplit(".", 1)[-1]} | {f.licence} |' for f in code]
    lines += ['', 'Restormer and MPRNet, which the paper also trains, are not included: their code is under a '
              'non-commercial academic licence that an Apache-2.0 repository cannot take. The MAE weights are '
              'CC BY-NC 4.0 (facebookresearch/mae): non-commercial use only.', '',
              '## Options files', '']
    lines += [f'- `{p}`' for p in option_paths]
    return '\n'.join(lines) + '\n'
