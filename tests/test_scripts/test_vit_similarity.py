"""scripts/vit_similarity.py: the paper's Fig. 2 (token similarity maps of a blurry and a sharp image)."""
import json

import cv2
import numpy as np
import pytest
import skimage.data

from basicsr_vitloss.losses.vit_features import ViTFeatureExtractor
from conftest import REPO, load_script, run

TINY = {'depth': 6, 'embed_dim': 64, 'num_heads': 2}
HEIGHT, WIDTH = 96, 128
POINT = (70, 41)  # pixel (x, y) -> token (row 2, col 4) with 16-pixel patches




vit_similarity = load_script('vit_similarity')


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """A photo crop saved as 8-bit PNG (sharp) and its blurred copy saved as 16-bit PNG (blurry)."""
    folder = tmp_path_factory.mktemp('images')
    sharp = cv2.cvtColor(skimage.data.astronaut()[:HEIGHT, :WIDTH], cv2.COLOR_RGB2BGR)
    blurry = cv2.GaussianBlur(sharp.astype(np.float32) / 255.0, (0, 0), 2.0)
    paths = {'sharp': folder / 'sharp.png', 'blurry': folder / 'blurry.png'}
    assert cv2.imwrite(str(paths['sharp']), sharp)
    assert cv2.imwrite(str(paths['blurry']), np.round(blurry * 65535).astype(np.uint16))
    return paths


def _argv(images, out, *extra, point=POINT):
    return [str(images['blurry']), str(images['sharp']), '--point', str(point[0]), str(point[1]),
            '--pretrained', 'false', '--backbone-kwargs', json.dumps(TINY), '--layer', '2',
            '--out', str(out), *extra]


def test_read_image_handles_8_and_16_bit(images):
    sharp = vit_similarity.read_image(images['sharp'])
    blurry = vit_similarity.read_image(images['blurry'])
    assert sharp.shape == blurry.shape == (HEIGHT, WIDTH, 3) and sharp.dtype == blurry.dtype == np.float32
    reference = skimage.data.astronaut()[:HEIGHT, :WIDTH].astype(np.float32) / 255.0  # RGB
    np.testing.assert_allclose(sharp, reference, atol=1e-6)  # BGR -> RGB and /255
    assert 0.0 <= blurry.min() and blurry.max() <= 1.0
    np.testing.assert_allclose(blurry.mean(axis=(0, 1)), reference.mean(axis=(0, 1)), atol=0.02)  # /65535, RGB
    assert np.abs(np.diff(blurry, axis=1)).mean() < np.abs(np.diff(sharp, axis=1)).mean()


def test_parse_pretrained():
    assert vit_similarity.parse_pretrained('true') is True
    assert vit_similarity.parse_pretrained('False') is False
    assert vit_similarity.parse_pretrained('/models/mae.pth') == '/models/mae.pth'


def test_similarity_map_is_one_at_the_point_token(images):
    extractor = ViTFeatureExtractor('mae', pretrained=False, layers=2, **TINY)
    image = vit_similarity.read_image(images['sharp'])
    sim = vit_similarity.similarity_map(extractor, image, POINT, 2)
    rows, cols = extractor.token_grid(HEIGHT, WIDTH)
    assert sim.shape == (rows, cols) == (6, 8)
    row, col = POINT[1] // extractor.patch_size[0], POINT[0] // extractor.patch_size[1]
    assert (row, col) == vit_similarity.point_token(extractor, HEIGHT, WIDTH, POINT) == (2, 4)
    assert sim[row, col] == pytest.approx(1.0, abs=1e-5)
    assert np.all(sim >= -1.0) and np.all(sim <= 1.0)
    off = np.delete(sim.ravel(), row * cols + col)
    assert off.max() < 1.0 - 1e-3  # the map is not trivially constant: other tokens differ
    # the map follows the point: another point's token is the maximum of its own map
    other = vit_similarity.similarity_map(extractor, image, (5, 90), 2)
    assert other[5, 0] == pytest.approx(1.0, abs=1e-5) and other[row, col] < 1.0 - 1e-3
    with pytest.raises(ValueError, match='layer 3 is not computed'):
        vit_similarity.similarity_map(extractor, image, POINT, 3)


def test_main_writes_the_two_row_figure(images, tmp_path, capsys):
    out = tmp_path / 'figs' / 'fig2.png'
    result = vit_similarity.main(_argv(images, out))
    figure = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert figure is not None and figure.dtype == np.uint8
    assert figure.shape == (2 * HEIGHT, 2 * WIDTH, 3)  # 2 rows (images, heatmaps) x 2 columns (blurry, sharp)
    top, bottom = figure[:HEIGHT], figure[HEIGHT:]
    # the point is marked in both top panels
    x, y = POINT
    for column in (0, 1):
        assert tuple(top[y, column * WIDTH + x]) == vit_similarity.MARKER_COLOR
    # the bottom row is a colormapped map, not the photographs again
    assert np.abs(bottom.astype(int) - top.astype(int)).mean() > 10
    for name in ('blurry', 'sharp'):
        sim = result['maps'][name]
        assert sim.shape == (6, 8) and sim[2, 4] == pytest.approx(1.0, abs=1e-5)
        assert np.all(np.abs(sim) <= 1.0)
        assert result['means'][name] == pytest.approx(float(sim.mean()))
    printed = capsys.readouterr().out
    assert f"mean similarity blurry: {result['means']['blurry']:.4f}" in printed
    assert f"mean similarity sharp: {result['means']['sharp']:.4f}" in printed


@pytest.mark.parametrize('point', [(WIDTH, 10), (10, HEIGHT), (-1, 10), (200.5, 300)])
def test_point_outside_the_image_is_an_error(images, tmp_path, point):
    out = tmp_path / 'fig.png'
    with pytest.raises(ValueError, match=r'lies outside the image of 128x96 pixels'):
        vit_similarity.main(_argv(images, out, point=point))
    assert not out.exists()


def test_images_of_different_sizes_are_an_error(images, tmp_path):
    other = tmp_path / 'small.png'
    cv2.imwrite(str(other), cv2.imread(str(images['sharp']))[:64, :80])
    out = tmp_path / 'fig.png'
    argv = _argv(images, out)
    argv[1] = str(other)
    with pytest.raises(ValueError, match=r'differ in size: blurry .* is 128x96, sharp .*small\.png is 80x64'):
        vit_similarity.main(argv)
    assert not out.exists()


def test_bad_backbone_kwargs_and_missing_image_are_errors(images, tmp_path):
    argv = _argv(images, tmp_path / 'fig.png')
    bad = argv.copy()
    bad[bad.index('--backbone-kwargs') + 1] = '[1, 2]'
    with pytest.raises(ValueError, match='must be a JSON object'):
        vit_similarity.main(bad)
    missing = argv.copy()
    missing[0] = str(tmp_path / 'nope.png')
    with pytest.raises(FileNotFoundError, match='nope.png'):
        vit_similarity.main(missing)


@pytest.mark.integration
def test_command_line_reports_errors_without_traceback(images, tmp_path):
    argv = _argv(images, tmp_path / 'fig.png', point=(500, 5))
    proc = run(['python', REPO / 'scripts' / 'vit_similarity.py', *argv], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert 'vit_similarity.py: error: point (500, 5) lies outside the image of 128x96 pixels' in proc.stderr
    assert 'Traceback' not in proc.stderr
