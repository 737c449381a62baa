"""scripts/compare_figure.py: layout size, residual maps, exact crop tiles, and its error messages."""
import cv2
import numpy as np
import pytest
from skimage import data

from conftest import load_script

compare_figure = load_script('compare_figure')

# The documented layout constants (module docstring), restated here so the size is checked independently.
MARGIN, BAND, TITLE_BAND = 4, 20, 28
BOX = (20, 30, 40, 32)  # x, y, w, h
SCALE = 3


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """GT (8-bit), blurry input (8-bit), a less blurred result (16-bit) and a perfect result (8-bit)."""
    folder = tmp_path_factory.mktemp('compare')
    gt = data.astronaut()[100:196, 150:270]  # 96 x 120 RGB uint8
    blurry = cv2.GaussianBlur(gt, (0, 0), 3.0)
    better = cv2.GaussianBlur(gt, (0, 0), 0.8).astype(np.uint16) * 257
    paths = {'gt': folder / 'gt.png', 'input': folder / 'input.png', 'better': folder / 'better16.png',
             'perfect': folder / 'perfect.png'}
    for key, array in (('gt', gt), ('input', blurry), ('better', better), ('perfect', gt)):
        assert cv2.imwrite(str(paths[key]), np.ascontiguousarray(array[..., ::-1]))
    return {'folder': folder, 'paths': paths, 'gt': gt, 'input': blurry, 'better': better}


def argv(paths, out, box=BOX, results=None):
    results = results if results is not None else [f'Better={paths["better"]}', f'Perfect={paths["perfect"]}']
    args = ['--input', str(paths['input']), '--gt', str(paths['gt']), '--box', *map(str, box),
            '--out', str(out), '--scale', str(SCALE), '--residual-gain', '4']
    for spec in results:
        args += ['--result', spec]
    return args


def cell(figure, row, col, tile_w, tile_h):
    """The tile (without its label band) of a cell, located from the documented layout."""
    y0 = MARGIN + row * (BAND + tile_h + MARGIN) + BAND
    x0 = MARGIN + col * (tile_w + MARGIN)
    return figure[y0:y0 + tile_h, x0:x0 + tile_w]


def test_layout_constants_are_the_documented_ones():
    assert (compare_figure.MARGIN, compare_figure.BAND, compare_figure.TITLE_BAND) == (MARGIN, BAND, TITLE_BAND)


def test_figure_size_residuals_and_crops(images, tmp_path):
    out = tmp_path / 'sub' / 'fig.png'
    assert compare_figure.main(argv(images['paths'], out)) == 0
    assert out.is_file()
    figure = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    x, y, w, h = BOX
    tile_w, tile_h = w * SCALE, h * SCALE
    columns = 4  # input, two results, ground truth
    assert figure.shape == (2 * (BAND + tile_h) + 3 * MARGIN, columns * tile_w + (columns + 1) * MARGIN, 3)
    assert (figure[:MARGIN] == 255).all() and (figure[:, :MARGIN] == 255).all()

    # residual of the result equal to GT: uniformly the colormap's zero colour
    zero = cv2.applyColorMap(np.zeros((1, 1), np.uint8), cv2.COLORMAP_INFERNO)[0, 0, ::-1]
    assert (cell(figure, 1, 2, tile_w, tile_h) == zero).all()
    # the blurry input's residual is brighter than the better result's
    input_residual = cell(figure, 1, 0, tile_w, tile_h).astype(float).mean()
    better_residual = cell(figure, 1, 1, tile_w, tile_h).astype(float).mean()
    assert input_residual > better_residual + 5

    # crop tiles: exact nearest-neighbour upscaling of the source crop (tiles lie below the label band)
    def expected(rgb8):
        return np.repeat(np.repeat(rgb8[y:y + h, x:x + w], SCALE, axis=0), SCALE, axis=1)
    np.testing.assert_array_equal(cell(figure, 0, 0, tile_w, tile_h), expected(images['input']))
    better8 = np.round(images['better'] / 65535.0 * 255).astype(np.uint8)
    np.testing.assert_array_equal(cell(figure, 0, 1, tile_w, tile_h), expected(better8))
    np.testing.assert_array_equal(cell(figure, 0, 3, tile_w, tile_h), expected(images['gt']))
    # the overview cell under the GT shows the (green) box on the scaled-down image
    overview = cell(figure, 1, 3, tile_w, tile_h)
    assert ((overview[..., 1] == 255) & (overview[..., 0] == 0) & (overview[..., 2] == 0)).any()


def test_compose_figure_in_process_with_title(images):
    compose = compare_figure.compose_figure
    gt = images['gt'].astype(np.float32) / 255
    blurry = images['input'].astype(np.float32) / 255
    figure = compose(blurry, gt, [('Same', gt)], (0, 0, 10, 8), scale=2, residual_gain=4, title='Fig. 5')
    tile_w, tile_h = 20, 16
    assert figure.dtype == np.uint8
    assert figure.shape == (TITLE_BAND + 2 * (BAND + tile_h) + 3 * MARGIN, 3 * tile_w + 4 * MARGIN, 3)
    assert compare_figure.psnr(gt, gt) == float('inf')
    assert 10 < compare_figure.psnr(blurry, gt) < 40


def test_errors(images, tmp_path, capsys):
    paths = images['paths']
    out = tmp_path / 'fig.png'

    def fails(args, *needles):
        assert compare_figure.main(args) == 2
        message = capsys.readouterr().err
        for needle in needles:
            assert needle in message, message
        assert 'Traceback' not in message
        assert not out.exists()

    missing = tmp_path / 'nope.png'
    fails(argv(paths, out, results=[f'Ghost={missing}']), str(missing))
    fails(argv({**paths, 'gt': missing}, out), str(missing))

    small = tmp_path / 'small.png'
    cv2.imwrite(str(small), images['gt'][:50, :60])
    fails(argv(paths, out, results=[f'Small={small}']), str(small), '60x50', str(paths['gt']), '120x96')

    fails(argv(paths, out, box=(100, 30, 40, 32)), 'X=100', '120x96')
    fails(argv(paths, out, box=(0, 80, 10, 32)), 'Y=80', 'H=32', '120x96')
    fails(argv(paths, out, results=[str(paths['better'])]), str(paths['better']), 'NAME=PATH')
    fails(argv(paths, out, results=[]), '--result')
