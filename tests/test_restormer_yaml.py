"""Restormer's own DPDD options (its keys, class names and recipe, as published) run unchanged
through `python -m basicsr.train`: only paths and sizes are overridden with --force_yml."""
import textwrap

import pytest

from conftest import make_dpdd_tree, run

# The structure and values of Restormer's Defocus_Deblurring/Options/DefocusDeblur_DualPixel_16bit_Restormer.yml
RESTORMER_DPDD_YAML = textwrap.dedent('''
    name: DefocusDeblur_DualPixel_16bit_Restormer
    model_type: ImageCleanModel
    scale: 1
    num_gpu: 8
    manual_seed: 100
    datasets:
      train:
        name: TrainSet
        type: Dataset_DefocusDeblur_DualPixel_16bit
        dataroot_gt: ./Datasets/train/DPDD/target_crops
        dataroot_lqL: ./Datasets/train/DPDD/inputL_crops
        dataroot_lqR: ./Datasets/train/DPDD/inputR_crops
        geometric_augs: true
        filename_tmpl: '{}'
        io_backend:
          type: disk
        use_shuffle: true
        num_worker_per_gpu: 8
        batch_size_per_gpu: 8
        mini_batch_sizes: [8,5,4,2,1,1]
        iters: [92000,64000,48000,36000,36000,24000]
        gt_size: 384
        gt_sizes: [128,160,192,256,320,384]
        dataset_enlarge_ratio: 1
        prefetch_mode: ~
      val:
        name: ValSet
        type: Dataset_DefocusDeblur_DualPixel_16bit
        dataroot_gt: ./Datasets/val/DPDD/target_crops
        dataroot_lqL: ./Datasets/val/DPDD/inputL_crops
        dataroot_lqR: ./Datasets/val/DPDD/inputR_crops
        io_backend:
          type: disk
    network_g:
      type: Restormer
      inp_channels: 6
      out_channels: 3
      dim: 48
      num_blocks: [4,6,6,8]
      num_refinement_blocks: 4
      heads: [1,2,4,8]
      ffn_expansion_factor: 2.66
      bias: False
      LayerNorm_type: WithBias
      dual_pixel_task: True
    path:
      pretrain_network_g: ~
      strict_load_g: true
      resume_state: ~
    train:
      total_iter: 300000
      warmup_iter: -1
      use_grad_clip: true
      scheduler:
        type: CosineAnnealingRestartCyclicLR
        periods: [92000, 208000]
        restart_weights: [1,1]
        eta_mins: [0.0003,0.000001]
      mixing_augs:
        mixup: false
        mixup_beta: 1.2
        use_identity: true
      optim_g:
        type: AdamW
        lr: !!float 3e-4
        weight_decay: !!float 1e-4
        betas: [0.9, 0.999]
      pixel_opt:
        type: L1Loss
        loss_weight: 1
        reduction: mean
    val:
      window_size: 8
      val_freq: !!float 4e3
      save_img: false
      rgb2bgr: true
      use_image: false
      max_minibatch: 8
      metrics:
        psnr:
          type: calculate_psnr
          crop_border: 0
          test_y_channel: false
    logger:
      print_freq: 1000
      save_checkpoint_freq: !!float 4e3
      use_tb_logger: true
      wandb:
        project: ~
        resume_id: ~
    dist_params:
      backend: nccl
      port: 29500
''')


@pytest.mark.integration
def test_restormers_dpdd_options_run_unchanged(tmp_path):
    (tmp_path / 'restormer.yml').write_text(RESTORMER_DPDD_YAML)
    train = make_dpdd_tree(tmp_path / 'Datasets' / 'train' / 'DPDD', layout='crops', split='x', scenes=2, size=(48, 48))
    val = make_dpdd_tree(tmp_path / 'Datasets' / 'val' / 'DPDD', layout='crops', split='x', scenes=1, size=(32, 32))
    overrides = [f'datasets:train:{key}={train[view]}' for key, view in
                 (('dataroot_gt', 'gt'), ('dataroot_lqL', 'lqL'), ('dataroot_lqR', 'lqR'))]
    overrides += [f'datasets:val:{key}={val[view]}' for key, view in
                  (('dataroot_gt', 'gt'), ('dataroot_lqL', 'lqL'), ('dataroot_lqR', 'lqR'))]
    overrides += ['num_gpu=0', 'network_g:dim=8', 'network_g:num_blocks=[1,1,1,1]', 'network_g:heads=[1,1,1,1]',
                  'network_g:num_refinement_blocks=1', 'datasets:train:num_worker_per_gpu=0',
                  'datasets:train:batch_size_per_gpu=2', 'datasets:train:gt_size=32', 'datasets:train:iters=[1,2]',
                  'datasets:train:gt_sizes=[16,32]', 'datasets:train:mini_batch_sizes=[2,1]', 'train:total_iter=3',
                  'val:val_freq=3', 'logger:print_freq=1', 'logger:save_checkpoint_freq=3',
                  'logger:use_tb_logger=false']
    run(['python', '-m', 'basicsr.train', '-opt', 'restormer.yml', '--force_yml', *overrides], cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'DefocusDeblur_DualPixel_16bit_Restormer'
    log = '\n'.join(p.read_text() for p in exp.glob('train_*.log'))
    assert 'Model [ImageCleanModel] is created' in log
    assert 'Dataset [Dataset_DefocusDeblur_DualPixel_16bit] - TrainSet is built' in log
    assert 'stage 1/2 from iteration 1: patch size 16, batch size 2' in log
    assert 'stage 2/2 from iteration 2: patch size 32, batch size 1' in log
    assert 'lr:(3.000e-04,)' in log  # the cyclic schedule holds the base rate in its first cycle
    assert '# psnr:' in log and (exp / 'models' / 'net_g_3.pth').is_file()
