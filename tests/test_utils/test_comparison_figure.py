"""The picture at the end of training: experiments/<name>/comparison.png (val: save_comparison)."""
import cv2
import numpy as np
import pytest
import torch

from basicsr_vitloss.utils import comparison_figure as cf


def _scene(seed, height=40, width=56):
    rng = np.random.default_rng(seed)
    sharp = rng.random((1, 3, height, width)).astype(np.float32)
    left = np.clip(sharp + 0.1 * rng.standard_normal(sharp.shape), 0, 1).astype(np.float32)
    right = np.clip(sharp - 0.05, 0, 1).astype(np.float32)
    restored = np.clip(sharp + 0.01 * rng.standard_normal(sharp.shape), 0, 1).astype(np.float32)
    return (torch.from_numpy(np.concatenate([left, right], axis=1)), torch.from_numpy(restored),
            torch.from_numpy(sharp))


def test_dual_pixel_input_is_the_average_of_its_views_and_psnrs_use_the_metric_settings():
    lq, restored, sharp = _scene(0)
    row = cf.comparison_row('scene_a', lq, restored, sharp, crop_border=4)
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    average = tensor2img([(lq[:, :3] + lq[:, 3:]) / 2])
    assert np.array_equal(row['images'][0], average)
    assert row['psnr'][0] == pytest.approx(calculate_psnr(average, tensor2img([sharp]), 4, test_y_channel=False))
    assert row['psnr'][1] > row['psnr'][0] and row['psnr'][2] is None
    assert cf.psnr_settings({'val': {'metrics': {'p': {'type': 'calculate_psnr', 'crop_border': 4}}}}) == (4, False)
    assert cf.psnr_settings({'val': {}}) == (0, False)


def test_figure_layout_panels_equal_the_images_and_labels_are_drawn():
    rows = [cf.comparison_row(f'scene_{i}', *_scene(i)) for i in range(3)]
    figure, boxes = cf.draw_comparison(rows)
    assert figure.dtype == np.uint8 and figure.shape[2] == 3
    assert len(boxes) == 3 and all(len(b) == 3 for b in boxes)
    for row, row_boxes in zip(rows, boxes):
        for image, (top, left, height, width) in zip(row['images'], row_boxes):
            assert (height, width) == image.shape[:2]
            assert np.array_equal(figure[top:top + height, left:left + width], image)
            label = figure[top - 30:top, left:left + width]  # the label band above the panel holds text
            assert (label < 128).any()
        assert [b[0] for b in row_boxes] == [row_boxes[0][0]] * 3  # side by side
        assert row_boxes[0][1] < row_boxes[1][1] < row_boxes[2][1]
    assert boxes[0][0][0] < boxes[1][0][0] < boxes[2][0][0]  # one row per scene, top to bottom
    texts = [t for pair in cf.panel_labels(rows[0]) for t in pair]
    assert texts[:2] == ['blurry input', f'PSNR {rows[0]["psnr"][0]:.2f} dB']
    assert texts[2:4] == ['restored', f'PSNR {rows[0]["psnr"][1]:.2f} dB']
    assert texts[4:] == ['sharp (reference)', 'scene_0']


def test_large_images_are_downscaled_to_the_panel_width(tmp_path):
    lq, restored, sharp = _scene(1, height=300, width=900)
    row = cf.comparison_row('wide', lq, restored, sharp)
    assert [image.shape[:2] for image in row['images']] == [(128, cf.MAX_PANEL_WIDTH)] * 3
    path = cf.write_comparison(str(tmp_path / 'comparison.png'), [row])
    written = cv2.imread(path)
    assert written.shape[1] == 3 * cf.MAX_PANEL_WIDTH + 4 * cf.GAP
    assert [p.name for p in tmp_path.iterdir()] == ['comparison.png']  # no temporary file left


@pytest.mark.parametrize('value', ['yes', 1, None, [True]])
def test_a_non_bool_option_is_refused_naming_the_key(value):
    with pytest.raises(ValueError, match='val:save_comparison must be true or false'):
        cf.save_comparison_enabled({'val': {'save_comparison': value}})
    assert cf.save_comparison_enabled({'val': {}}) is False and cf.save_comparison_enabled({}) is False


@pytest.mark.integration
def test_training_with_a_non_bool_option_fails_before_the_experiment_folder(tmp_path):
    from conftest import run, tiny_options
    options = tiny_options(tmp_path / 'opt.yml', **{'val:save_comparison': 'yes'})
    proc = run(['python', '-m', 'basicsr.train', '-opt', options], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and 'val:save_comparison must be true or false' in proc.stderr
    assert not (tmp_path / 'experiments').exists()
