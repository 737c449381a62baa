"""NAFNet's own GoPro options (its keys, class names, lmdb data and recipe, as published) run
unchanged through `python -m basicsr.train`: only paths and sizes are overridden with --force_yml."""
import textwrap

import cv2
import numpy as np
import pytest

from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from conftest import run

# The structure and values of NAFNet's options/train/GoPro/NAFNet-width64.yml
NAFNET_GOPRO_YAML = textwrap.dedent('''
    name: NAFNet-GoPro-width64
    model_type: ImageRestorationModel
    scale: 1
    num_gpu: 8
    manual_seed: 10
    datasets:
      train:
        name: gopro-train
        type: PairedImageDataset
        dataroot_gt: ./datasets/GoPro/train/sharp_crops.lmdb
        dataroot_lq: ./datasets/GoPro/train/blur_crops.lmdb
        filename_tmpl: '{}'
        io_backend:
          type: lmdb
        gt_size: 256
        use_flip: true
        use_rot: true
        use_shuffle: true
        num_worker_per_gpu: 8
        batch_size_per_gpu: 8
        dataset_enlarge_ratio: 1
        prefetch_mode: ~
      val:
        name: gopro-test
        type: PairedImageDataset
        dataroot_gt: ./datasets/GoPro/test/target.lmdb
        dataroot_lq: ./datasets/GoPro/test/input.lmdb
        io_backend:
          type: lmdb
    network_g:
      type: NAFNetLocal
      width: 64
      enc_blk_nums: [1, 1, 1, 28]
      middle_blk_num: 1
      dec_blk_nums: [1, 1, 1, 1]
    path:
      pretrain_network_g: ~
      strict_load_g: true
      resume_state: ~
    train:
      optim_g:
        type: AdamW
        lr: !!float 1e-3
        weight_decay: !!float 1e-3
        betas: [0.9, 0.9]
      scheduler:
        type: TrueCosineAnnealingLR
        T_max: 400000
        eta_min: !!float 1e-7
      total_iter: 400000
      warmup_iter: -1
      pixel_opt:
        type: PSNRLoss
        loss_weight: 1
        reduction: mean
    val:
      val_freq: !!float 2e4
      save_img: false
      metrics:
        psnr:
          type: calculate_psnr
          crop_border: 0
          test_y_channel: false
        ssim:
          type: calculate_ssim
          crop_border: 0
          test_y_channel: false
    logger:
      print_freq: 200
      save_checkpoint_freq: !!float 5e3
      use_tb_logger: true
      wandb:
        project: ~
        resume_id: ~
    dist_params:
      backend: nccl
      port: 29500
''')


def _lmdb(folder, lmdb_path, images):
    folder.mkdir(parents=True)
    lmdb_path.parent.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        cv2.imwrite(str(folder / f'{name}.png'), image)
    make_lmdb_from_imgs(str(folder), str(lmdb_path), [f'{n}.png' for n in images], list(images),
                        multiprocessing_read=False)


@pytest.mark.integration
def test_nafnets_gopro_options_run_unchanged(tmp_path):
    (tmp_path / 'nafnet.yml').write_text(NAFNET_GOPRO_YAML)
    rng = np.random.default_rng(0)
    roots = {}
    for split, size in (('train', 48), ('test', 32)):
        sharp = {f'img{i}': (rng.random((size, size, 3)) * 255).astype(np.uint8) for i in range(2)}
        blur = {k: cv2.GaussianBlur(v, (0, 0), 1.5) for k, v in sharp.items()}
        roots[split] = (tmp_path / 'data' / split / 'gt.lmdb', tmp_path / 'data' / split / 'lq.lmdb')
        _lmdb(tmp_path / 'png' / split / 'gt', roots[split][0], sharp)
        _lmdb(tmp_path / 'png' / split / 'lq', roots[split][1], blur)
    overrides = [f'datasets:train:dataroot_gt={roots["train"][0]}', f'datasets:train:dataroot_lq={roots["train"][1]}',
                 f'datasets:val:dataroot_gt={roots["test"][0]}', f'datasets:val:dataroot_lq={roots["test"][1]}',
                 'num_gpu=0', 'network_g:width=8', 'network_g:enc_blk_nums=[1,1,1,1]',
                 'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=2',
                 'datasets:train:gt_size=32', 'train:total_iter=2', 'val:val_freq=2', 'logger:print_freq=1',
                 'logger:save_checkpoint_freq=2', 'logger:use_tb_logger=false']
    run(['python', '-m', 'basicsr.train', '-opt', 'nafnet.yml', '--force_yml', *overrides], cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'NAFNet-GoPro-width64'
    log = '\n'.join(p.read_text() for p in exp.glob('train_*.log'))
    assert 'Model [ImageRestorationModel] is created' in log and 'Network [NAFNetLocal] is created' in log
    assert 'l_pix: -' in log  # PSNRLoss: minus the PSNR
    assert '# psnr:' in log and '# ssim:' in log and (exp / 'models' / 'net_g_2.pth').is_file()
