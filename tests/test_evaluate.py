"""scripts/evaluate.py: per-image metrics against independent computations, category groups from npy
and CSV labels, resuming, the merged table's marks, input errors, and the --opt inference path."""
import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, load_script, make_dpdd_tree, run

evaluate = load_script('evaluate')

# natural order: scene10 is the 6th image (index 6), not the 2nd
GT_NAMES = ['scene1', 'scene2', 'scene3', 'scene4', 'scene5', 'scene10']
SIZE = (96, 192)  # NIQE needs two 96x96 blocks


@pytest.fixture(scope='module')
def lpips_weights(tmp_path_factory):
    """A random AlexNet backbone in torchvision's format (its features.* tensors: what LPIPS loads)."""
    import torchvision
    folder = tmp_path_factory.mktemp('weights')
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith('features.')}
    torch.save(state, folder / 'alexnet-owt-7be5be79.pth')
    return str(folder)


def fake_dpdd(root):
    """6 16-bit gt images and restored = gt +/- offset_k (random signs per pixel), k = 65 * (i + 1):
    MSE = (offset/65535)^2 and MAE = offset/65535 exactly. Returns (restored dir, gt dir, {name: offset})."""
    rng = np.random.default_rng(1)
    restored_dir, gt_dir = root / 'restored', root / 'gt'
    restored_dir.mkdir()
    gt_dir.mkdir()
    offsets = {}
    for index, name in enumerate(GT_NAMES):
        gt = rng.integers(1000, 64000, size=SIZE + (3,)).astype(np.int64)
        offset = 65 * (index + 1)
        signs = rng.choice([-1, 1], size=gt.shape)
        cv2.imwrite(str(gt_dir / f'{name}.png'), gt.astype(np.uint16))
        cv2.imwrite(str(restored_dir / f'{name}_L.png'), (gt + signs * offset).astype(np.uint16))
        offsets[name] = offset / 65535.0
    return restored_dir, gt_dir, offsets


def labels_dir(root, indoor=(1, 3, 5), outdoor=(2, 4, 6)):
    folder = root / 'labels'
    folder.mkdir(exist_ok=True)
    np.save(folder / 'indoor_labels.npy', np.array(indoor))
    np.save(folder / 'outdoor_labels.npy', np.array(outdoor))
    return folder


def run_args(restored, gt, out, *extra):
    return ['run', '--restored', str(restored), '--gt', str(gt), '--out', str(out), *map(str, extra)]


def read_csv(path):
    with open(path, newline='') as file:
        return list(csv.DictReader(file))


def read_json(path):
    return json.loads(path.read_text())


def table_cells(markdown):
    """{(first cell of a row, header): cell} of the first markdown table in ``markdown``."""
    lines = [line for line in markdown.splitlines() if line.startswith('|')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    cells = {}
    for line in lines[2:]:
        row = [c.strip() for c in line.strip('|').split('|')]
        key = tuple(row[:2]) if header[1] == 'Loss' else row[0]
        cells.update({(key, h): c for h, c in zip(header, row)})
    return header, cells


def test_metrics_groups_and_report(tmp_path, lpips_weights):
    from basicsr.metrics.niqe import calculate_niqe
    from basicsr_vitloss.metrics.lpips_metric import calculate_lpips
    from skimage.metrics import structural_similarity
    restored_dir, gt_dir, offsets = fake_dpdd(tmp_path)
    out = tmp_path / 'out'
    code = evaluate.main(run_args(restored_dir, gt_dir, out, '--labels', labels_dir(tmp_path), '--method', 'NAFNet',
                                  '--loss', 'L1', '--dataset', 'DPDD', '--lpips-weights', lpips_weights))
    assert code == 0
    rows = read_csv(out / 'per_image.csv')
    assert [r['name'] for r in rows] == GT_NAMES
    assert [r['category'] for r in rows] == ['Indoor', 'Outdoor'] * 3
    for row in rows:
        d = offsets[row['name']]
        restored = cv2.imread(row['restored'], cv2.IMREAD_UNCHANGED)
        gt = cv2.imread(row['gt'], cv2.IMREAD_UNCHANGED)
        assert row['restored'].endswith(f"{row['name']}_L.png") and row['gt'].endswith(f"{row['name']}.png")
        assert float(row['psnr']) == pytest.approx(10 * np.log10(1 / d**2), abs=1e-9)
        assert float(row['mae']) == pytest.approx(d, abs=1e-12)
        a, b = restored[..., ::-1] / 65535.0, gt[..., ::-1] / 65535.0
        assert float(row['ssim']) == pytest.approx(structural_similarity(a, b, data_range=1.0, channel_axis=2),
                                                   abs=1e-9)
        assert float(row['lpips']) == pytest.approx(calculate_lpips(restored, gt, weights_dir=lpips_weights),
                                                    abs=1e-6)
        eight_bit = np.round(restored / 65535.0 * 255).astype(np.uint8)
        assert float(row['niqe']) == pytest.approx(calculate_niqe(eight_bit, 0), abs=1e-9)

    result = read_json(out / 'results.json')
    assert (result['method'], result['loss'], result['dataset'], result['n_images']) == ('NAFNet', 'L1', 'DPDD', 6)
    assert list(result['groups']) == ['Indoor', 'Outdoor', 'Combined']
    assert result['counts'] == {'Indoor': 3, 'Outdoor': 3, 'Combined': 6}
    assert result['labelled'] is True and result['note'] is None
    members = {'Indoor': ['scene1', 'scene3', 'scene5'], 'Outdoor': ['scene2', 'scene4', 'scene10'],
               'Combined': GT_NAMES}
    by_name = {r['name']: r for r in rows}
    for group, names in members.items():
        assert result['groups'][group]['psnr'] == pytest.approx(
            np.mean([10 * np.log10(1 / offsets[n]**2) for n in names]), abs=1e-9)
        assert result['groups'][group]['mae'] == pytest.approx(np.mean([offsets[n] for n in names]), abs=1e-12)
        for metric in ('ssim', 'lpips', 'niqe'):
            assert result['groups'][group][metric] == pytest.approx(
                np.mean([float(by_name[n][metric]) for n in names]), abs=1e-12)
    assert set(result['settings']) >= set(evaluate.METRICS)

    markdown = (out / 'results.md').read_text()
    header, cells = table_cells(markdown)
    for group in ('Indoor', 'Outdoor', 'Combined'):
        for metric in ('PSNR↑', 'SSIM↑', 'MAE↓', 'LPIPS↓', 'NIQE↓'):
            assert f'{group} {metric}' in header
    assert header.index('Indoor PSNR↑') < header.index('Outdoor PSNR↑') < header.index('Combined PSNR↑')
    assert cells[(('NAFNet', 'L1'), 'Combined PSNR↑')] == f"{result['groups']['Combined']['psnr']:.2f}"
    assert cells[(('NAFNet', 'L1'), 'Indoor MAE↓')] == f"{result['groups']['Indoor']['mae']:.3f}"
    assert '**' not in markdown.split('\n| ')[-1]  # a single run's table carries no marks


def test_csv_labels_equal_npy_labels(tmp_path):
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    npy_out, csv_out = tmp_path / 'npy', tmp_path / 'csv'
    assert evaluate.main(run_args(restored_dir, gt_dir, npy_out, '--labels', labels_dir(tmp_path),
                                  '--metrics', 'psnr', 'mae')) == 0
    table = tmp_path / 'labels.csv'
    table.write_text('name,category\n' + ''.join(f"{n},{'Indoor' if i % 2 == 0 else 'Outdoor'}\n"
                                                 for i, n in enumerate(GT_NAMES)))
    assert evaluate.main(run_args(restored_dir, gt_dir, csv_out, '--labels', table, '--metrics', 'psnr', 'mae')) == 0
    npy_result, csv_result = read_json(npy_out / 'results.json'), read_json(csv_out / 'results.json')
    assert csv_result['groups'] == npy_result['groups'] and csv_result['counts'] == npy_result['counts']
    assert set(csv_result['groups']['Indoor']) == {'psnr', 'mae'}


def test_no_labels_gives_combined_only(tmp_path):
    restored_dir, gt_dir, offsets = fake_dpdd(tmp_path)
    out = tmp_path / 'out'
    assert evaluate.main(run_args(restored_dir, gt_dir, out, '--metrics', 'mae')) == 0
    result = read_json(out / 'results.json')
    assert list(result['groups']) == ['Combined'] and result['labelled'] is False
    assert 'Combined only' in result['note']
    assert result['groups']['Combined']['mae'] == pytest.approx(np.mean(list(offsets.values())), abs=1e-12)
    markdown = (out / 'results.md').read_text()
    assert 'No category labels' in markdown and 'Indoor' not in markdown
    assert 'Combined MAE↓' in table_cells(markdown)[0]


def test_second_run_recomputes_nothing(tmp_path, lpips_weights, monkeypatch, capsys):
    from basicsr.metrics import niqe as niqe_module
    from basicsr_vitloss.metrics import fidelity_metric, lpips_metric
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    out = tmp_path / 'out'
    args = run_args(restored_dir, gt_dir, out, '--lpips-weights', lpips_weights)
    assert evaluate.main(args + ['--metrics', 'psnr', 'mae']) == 0
    first = read_csv(out / 'per_image.csv')
    assert all(r['ssim'] == '' for r in first)

    calls = {}
    for module, name in ((fidelity_metric, 'calculate_psnr_float'), (fidelity_metric, 'calculate_ssim_float'),
                         (fidelity_metric, 'calculate_mae'), (lpips_metric, 'calculate_lpips'),
                         (niqe_module, 'calculate_niqe')):
        def counting(*a, _original=getattr(module, name), _name=name, **k):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*a, **k)
        monkeypatch.setattr(module, name, counting)
    capsys.readouterr()
    assert evaluate.main(args) == 0  # all metrics: only the missing ones are computed
    assert calls == {'calculate_ssim_float': 6, 'calculate_lpips': 6, 'calculate_niqe': 6}
    second = read_csv(out / 'per_image.csv')
    assert [(r['psnr'], r['mae']) for r in second] == [(r['psnr'], r['mae']) for r in first]
    assert 'computed 6, skipped 0' in capsys.readouterr().out

    calls.clear()
    assert evaluate.main(args) == 0
    assert calls == {}
    assert 'computed 0, skipped 6' in capsys.readouterr().out
    assert read_csv(out / 'per_image.csv') == second

    changed = restored_dir / 'scene3_L.png'  # a rewritten file is evaluated again
    cv2.imwrite(str(changed), cv2.imread(str(changed), cv2.IMREAD_UNCHANGED)[::-1])
    assert evaluate.main(args) == 0
    assert calls['calculate_psnr_float'] == 1 and 'computed 1, skipped 5' in capsys.readouterr().out


def write_result(path, method, loss, dataset, groups):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'method': method, 'loss': loss, 'dataset': dataset, 'groups': groups}))
    return path


def test_merge_marks_best_second_ties_and_missing(tmp_path):
    def groups(psnr, ssim, mae, lpips, niqe):
        values = {'psnr': psnr, 'ssim': ssim, 'mae': mae, 'lpips': lpips, 'niqe': niqe}
        values = {k: v for k, v in values.items() if v != 'absent'}
        return {'Indoor': values, 'Outdoor': dict(values), 'Combined': dict(values)}
    files = [write_result(tmp_path / 'a.json', 'NAFNet', 'L1', 'DPDD', groups(25.0, 0.80, 0.030, 0.20, 4.0)),
             write_result(tmp_path / 'b.json', 'NAFNet', 'L1+ViT', 'DPDD', groups(25.5, 0.82, 0.025, 0.10, 4.0)),
             # SSIM 0.8204 and MAE 0.0251 show as 0.820 and 0.025: compared as shown, tied best with b
             write_result(tmp_path / 'c.json', 'Restormer', 'L1', 'DPDD',
                          groups(25.2, 0.8204, 0.0251, 'absent', 4.0))]
    table, merged = tmp_path / 'table.md', tmp_path / 'merged.json'
    assert evaluate.main(['merge', *map(str, files), '--out', str(table), '--json', str(merged)]) == 0
    header, cells = table_cells(table.read_text())
    assert header[:2] == ['Method', 'Loss'] and header[2:7] == ['Indoor PSNR↑', 'Indoor SSIM↑', 'Indoor MAE↓',
                                                                 'Indoor LPIPS↓', 'Indoor NIQE↓']
    a, b, c = ('NAFNet', 'L1'), ('NAFNet', 'L1+ViT'), ('Restormer', 'L1')
    for group in ('Indoor', 'Outdoor', 'Combined'):
        psnr, ssim, mae = f'{group} PSNR↑', f'{group} SSIM↑', f'{group} MAE↓'
        lpips, niqe = f'{group} LPIPS↓', f'{group} NIQE↓'
        assert (cells[(b, psnr)], cells[(c, psnr)], cells[(a, psnr)]) == ('**25.50**', '<u>25.20</u>', '25.00')
        assert (cells[(b, ssim)], cells[(c, ssim)], cells[(a, ssim)]) == ('**0.820**', '**0.820**', '<u>0.800</u>')
        assert (cells[(b, mae)], cells[(c, mae)], cells[(a, mae)]) == ('**0.025**', '**0.025**', '<u>0.030</u>')
        assert (cells[(b, lpips)], cells[(a, lpips)], cells[(c, lpips)]) == ('**0.100**', '<u>0.200</u>', '-')
        assert {cells[(r, niqe)] for r in (a, b, c)} == {'**4.000**'}  # all tied: all bold, none second
    rows = read_json(merged)['rows']
    assert [(r['method'], r['loss']) for r in rows] == [a, b, c]
    assert rows[2]['values']['Indoor LPIPS↓'] is None and rows[1]['marks']['Indoor PSNR↑'] == 'best'


def test_merge_datasets_as_column_groups(tmp_path):
    combined = {'Combined': {'psnr': 30.0, 'ssim': 0.9}}
    files = [write_result(tmp_path / 'a_gopro.json', 'NAFNet', 'L1', 'GoPro', combined),
             write_result(tmp_path / 'a_hide.json', 'NAFNet', 'L1', 'HIDE', {'Combined': {'psnr': 28.0, 'ssim': 0.8}}),
             write_result(tmp_path / 'b_gopro.json', 'NAFNet', 'L1+ViT', 'GoPro',
                          {'Combined': {'psnr': 30.5, 'ssim': 0.9}})]
    table = tmp_path / 'table.md'
    assert evaluate.main(['merge', *map(str, files), '--out', str(table)]) == 0
    header, cells = table_cells(table.read_text())
    assert header == ['Method', 'Loss', 'GoPro PSNR↑', 'GoPro SSIM↑', 'HIDE PSNR↑', 'HIDE SSIM↑']
    a, b = ('NAFNet', 'L1'), ('NAFNet', 'L1+ViT')
    assert (cells[(a, 'GoPro PSNR↑')], cells[(b, 'GoPro PSNR↑')]) == ('<u>30.00</u>', '**30.50**')
    assert (cells[(a, 'GoPro SSIM↑')], cells[(b, 'GoPro SSIM↑')]) == ('**0.900**', '**0.900**')
    assert (cells[(a, 'HIDE PSNR↑')], cells[(b, 'HIDE PSNR↑')]) == ('**28.00**', '-')  # one value: bold only

    clash = write_result(tmp_path / 'again.json', 'NAFNet', 'L1', 'GoPro', combined)
    assert evaluate.main(['merge', str(files[0]), str(clash), '--out', str(table)]) == 2


def test_input_errors(tmp_path, capsys):
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    out = tmp_path / 'out'

    def error(*args):
        capsys.readouterr()
        assert evaluate.main(list(map(str, args))) == 2
        message = capsys.readouterr().err
        assert message.startswith('evaluate: error: ') and 'Traceback' not in message
        return message

    cv2.imwrite(str(restored_dir / 'extra_L.png'), np.zeros((8, 8, 3), np.uint8))
    message = error(*run_args(restored_dir, gt_dir, out))
    assert '7 restored images' in message and '6 ground-truth' in message and 'extra_L.png' in message
    (restored_dir / 'extra_L.png').unlink()

    (restored_dir / 'scene3_L.png').rename(restored_dir / 'scene3x_L.png')
    message = error(*run_args(restored_dir, gt_dir, out))
    assert 'do not match' in message and 'scene3x_L.png vs scene3.png' in message
    (restored_dir / 'scene3x_L.png').rename(restored_dir / 'scene3_L.png')

    message = error(*run_args(restored_dir, gt_dir, out, '--labels', labels_dir(tmp_path, outdoor=(2, 4, 7)),
                              '--metrics', 'mae'))
    assert 'outdoor_labels.npy' in message and '7 out of range 1..6' in message
    message = error(*run_args(restored_dir, gt_dir, out, '--labels', labels_dir(tmp_path, outdoor=(2, 3, 6)),
                              '--metrics', 'mae'))
    assert 'scene3' in message and 'two categories' in message
    table = tmp_path / 'labels.csv'
    table.write_text('scene1,Indoor\nscene99,Outdoor\n')
    message = error(*run_args(restored_dir, gt_dir, out, '--labels', table, '--metrics', 'mae'))
    assert 'scene99' in message and 'labels.csv' in message

    message = error(*run_args(restored_dir, tmp_path / 'nowhere', out))
    assert 'nowhere' in message and 'does not exist' in message
    message = error('merge', tmp_path / 'missing.json', '--out', tmp_path / 't.md')
    assert 'missing.json' in message

    # as a command: status 2 and the message, no traceback
    proc = run(['python', REPO / 'scripts' / 'evaluate.py', *run_args(tmp_path / 'absent', gt_dir, out)],
               cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2 and 'evaluate: error: restored: folder' in proc.stderr
    assert 'absent' in proc.stderr and 'Traceback' not in proc.stderr


def test_inference_from_options(tmp_path, lpips_weights, capsys):
    from basicsr_vitloss.data.image_io import read_image  # basicsr_vitloss before basicsr
    from basicsr_vitloss.utils.tiling import tiled_forward
    from basicsr.archs import build_network
    folders = make_dpdd_tree(tmp_path / 'dpdd', split='test', scenes=2, size=(40, 56))
    network = {'type': 'NAFNet', 'img_channel': 6, 'out_channels': 3, 'width': 8, 'enc_blk_nums': [1],
               'dec_blk_nums': [1], 'middle_blk_num': 1}
    options = {'name': 'tiny_nafnet', 'network_g': network,
               'datasets': {'test': {'name': 'dpdd', 'type': 'DPDDDataset', 'dataroot': str(tmp_path / 'dpdd'),
                                     'split': 'test', 'phase': 'test'}}}
    opt_file = tmp_path / 'options.yml'
    opt_file.write_text(yaml.safe_dump(options))
    torch.manual_seed(0)
    net = build_network(network).eval()
    for param in net.parameters():  # NAFNet starts as an identity-like net: make the output depend on it
        param.data.add_(0.05 * torch.randn_like(param))
    torch.save({'params': net.state_dict()}, tmp_path / 'net_g.pth')
    out = tmp_path / 'out'
    args = ['run', '--opt', str(opt_file), '--weights', str(tmp_path / 'net_g.pth'), '--out', str(out),
            '--tile', '32', '--tile-overlap', '8', '--lpips-weights', lpips_weights, '--loss', 'L1']
    assert evaluate.main(args) == 0

    for index in range(2):
        path = out / 'restored' / f'scene{index:03d}_L.png'
        saved = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert saved.dtype == np.uint16 and saved.shape == (40, 56, 3)
        lq = np.concatenate([read_image(f"{folders['lqL']}/scene{index:03d}_L.png"),
                             read_image(f"{folders['lqR']}/scene{index:03d}_R.png")], axis=2)
        x = torch.from_numpy(lq.transpose(2, 0, 1)).unsqueeze(0)
        expected = tiled_forward(net, x, 32, 8)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
        assert np.abs(saved[..., ::-1] / 65535.0 - expected).max() <= 1 / 65535 + 1e-6
        assert expected.std() > 0.01

    rows = read_csv(out / 'per_image.csv')
    assert [r['name'] for r in rows] == ['scene000', 'scene001']
    assert all(r['gt'].endswith(f"test_c/target/{r['name']}.png") for r in rows)
    assert all(math.isnan(float(r['niqe'])) for r in rows)  # 40x56 has no 96x96 NIQE block
    result = read_json(out / 'results.json')
    assert (result['method'], result['dataset'], result['n_images']) == ('tiny_nafnet', 'dpdd', 2)
    assert result['groups']['Combined']['niqe'] is None and result['groups']['Combined']['psnr'] > 0
    assert 'NIQE undefined' in result['note'] and 'tiles 32' in result['settings']['inference']

    mtimes = [p.stat().st_mtime_ns for p in sorted((out / 'restored').iterdir())]
    capsys.readouterr()
    assert evaluate.main(args) == 0  # resumed: nothing restored or evaluated again
    assert [p.stat().st_mtime_ns for p in sorted((out / 'restored').iterdir())] == mtimes
    assert 'computed 0, skipped 2' in capsys.readouterr().out
