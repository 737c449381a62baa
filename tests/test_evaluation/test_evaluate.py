"""basicsr_vitloss.evaluation (basicsr-vitloss-evaluate, scripts/evaluate.py): per-image metrics against
independent computations, category groups from npy and CSV labels, resuming, the merged table's marks, input
errors, the --opt inference path, and the three ways to run the command."""
import csv
import json
import math
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, dpdd_release_names, make_dpdd_tree, run

from basicsr_vitloss.data.gopro_files import canonical_stem
from basicsr_vitloss.evaluation import cli as evaluate
from basicsr_vitloss.evaluation.metrics import METRICS
from basicsr_vitloss.evaluation.pairing import match_folders, stems_match

# Real DPDD test names: restored images are named after the SOURCES (basicsr.test: <src>_<suffix>.png),
# the ground truth after the TARGETS, which carry their own capture numbers (1P0A0917 -> 1P0A0916).
PAIRS = dpdd_release_names('test', 6)
SOURCES = [src for src, _ in PAIRS]
GT_NAMES = [trg for _, trg in PAIRS]
SUFFIX = '_NAFNet'
SIZE = (96, 192)  # NIQE needs two 96x96 blocks


def fake_dpdd(root, restored_names=None, gt_names=GT_NAMES, restored_bits=16):
    """6 16-bit gt images <trg>.png and restored <src>_NAFNet.png = gt +/- offset_k (random signs per pixel),
    k = 65 * (i + 1): MSE = (offset/65535)^2 and MAE = offset/65535 exactly (16-bit restored).
    Returns (restored dir, gt dir, {gt name: offset})."""
    restored_names = restored_names or [src + SUFFIX for src in SOURCES]
    rng = np.random.default_rng(1)
    restored_dir, gt_dir = root / 'restored', root / 'gt'
    root.mkdir(parents=True, exist_ok=True)
    restored_dir.mkdir()
    gt_dir.mkdir()
    offsets = {}
    for index, (restored_name, name) in enumerate(zip(restored_names, gt_names)):
        gt = rng.integers(1000, 64000, size=SIZE + (3,)).astype(np.int64)
        offset = 65 * (index + 1)
        signs = rng.choice([-1, 1], size=gt.shape)
        restored = (gt + signs * offset).astype(np.uint16)
        if restored_bits == 8:
            restored = np.round(restored / 257.0).astype(np.uint8)
        cv2.imwrite(str(gt_dir / f'{name}.png'), gt.astype(np.uint16))
        cv2.imwrite(str(restored_dir / f'{restored_name}.png'), restored)
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


@pytest.mark.integration
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
        source = SOURCES[GT_NAMES.index(row['name'])]  # paired with its own source, not by equal names
        assert row['restored'].endswith(f'/{source}{SUFFIX}.png') and row['gt'].endswith(f"/{row['name']}.png")
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
    members = {'Indoor': GT_NAMES[0::2], 'Outdoor': GT_NAMES[1::2], 'Combined': GT_NAMES}
    by_name = {r['name']: r for r in rows}
    for group, names in members.items():
        assert result['groups'][group]['psnr'] == pytest.approx(
            np.mean([10 * np.log10(1 / offsets[n]**2) for n in names]), abs=1e-9)
        assert result['groups'][group]['mae'] == pytest.approx(np.mean([offsets[n] for n in names]), abs=1e-12)
        for metric in ('ssim', 'lpips', 'niqe'):
            assert result['groups'][group][metric] == pytest.approx(
                np.mean([float(by_name[n][metric]) for n in names]), abs=1e-12)
    assert set(result['settings']) >= set(METRICS)
    from importlib.metadata import version
    protocol = result['protocol']
    assert protocol['pairing'] == {'option': 'auto', 'used': 'position'}  # DPDD names: auto chose position
    assert protocol['bit_depth'] == {'restored': 16, 'gt': 16}
    assert protocol['crop_border'] == 0 and protocol['colour_space'].startswith('RGB')
    assert protocol['inference'] == {'mode': 'unknown (given restored images)'}
    assert protocol['metrics']['psnr'] == 'float, 10log10(1/MSE), RGB, data range 1'
    assert protocol['metrics']['ssim'] == 'skimage structural_similarity 7x7 uniform, per-channel mean, float'
    assert protocol['metrics']['niqe'] == 'BasicSR calculate_niqe, 8-bit Y'
    assert protocol['lpips'] == {'net': 'alex', 'version': '0.1', 'package': f"lpips {version('lpips')}"}
    assert "net='alex'" in protocol['metrics']['lpips'] and version('lpips') in protocol['metrics']['lpips']

    markdown = (out / 'results.md').read_text()
    header, cells = table_cells(markdown)
    for group in ('Indoor', 'Outdoor', 'Combined'):
        for metric in ('PSNR↑', 'SSIM↑', 'MAE↓', 'LPIPS↓', 'NIQE↓'):
            assert f'{group} {metric}' in header
    assert header.index('Indoor PSNR↑') < header.index('Outdoor PSNR↑') < header.index('Combined PSNR↑')
    assert cells[(('NAFNet', 'L1'), 'Combined PSNR↑')] == f"{result['groups']['Combined']['psnr']:.2f}"
    assert cells[(('NAFNet', 'L1'), 'Indoor MAE↓')] == f"{result['groups']['Indoor']['mae']:.4f}"
    assert cells[(('NAFNet', 'L1'), 'Outdoor SSIM↑')] == f"{result['groups']['Outdoor']['ssim']:.4f}"
    assert cells[(('NAFNet', 'L1'), 'Combined LPIPS↓')] == f"{result['groups']['Combined']['lpips']:.4f}"
    assert cells[(('NAFNet', 'L1'), 'Combined NIQE↓')] == f"{result['groups']['Combined']['niqe']:.3f}"
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


@pytest.mark.integration
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

    changed = restored_dir / f'{SOURCES[2]}{SUFFIX}.png'  # a rewritten file is evaluated again
    cv2.imwrite(str(changed), cv2.imread(str(changed), cv2.IMREAD_UNCHANGED)[::-1])
    assert evaluate.main(args) == 0
    assert calls['calculate_psnr_float'] == 1 and 'computed 1, skipped 5' in capsys.readouterr().out


PROTOCOL = {'pairing': {'option': 'auto', 'used': 'position'}, 'bit_depth': {'restored': 16, 'gt': 16},
            'colour_space': 'RGB', 'crop_border': 0, 'inference': {'mode': 'whole'},
            'metrics': {'psnr': 'float, 10log10(1/MSE), RGB, data range 1',
                        'ssim': 'skimage structural_similarity 7x7 uniform, per-channel mean, float'}}


def write_result(path, method, loss, dataset, groups, protocol=PROTOCOL):
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {'method': method, 'loss': loss, 'dataset': dataset, 'groups': groups}
    if protocol is not None:
        result['protocol'] = protocol
    path.write_text(json.dumps(result))
    return path


def test_merge_marks_best_second_on_unrounded_values(tmp_path):
    def groups(psnr, ssim, mae, lpips, niqe):
        values = {'psnr': psnr, 'ssim': ssim, 'mae': mae, 'lpips': lpips, 'niqe': niqe}
        values = {k: v for k, v in values.items() if v != 'absent'}
        return {'Indoor': values, 'Outdoor': dict(values), 'Combined': dict(values)}
    files = [write_result(tmp_path / 'a.json', 'NAFNet', 'L1', 'DPDD', groups(25.0, 0.80, 0.0300, 0.20, 4.0)),
             write_result(tmp_path / 'b.json', 'NAFNet', 'L1+ViT', 'DPDD', groups(25.5, 0.82041, 0.02504, 0.10, 4.0)),
             # SSIM 0.82039 and MAE 0.02496 print as 0.8204 and 0.0250 like b's, but differ: the marks follow
             # the unrounded values (c is best in MAE, second in SSIM); PSNR 25.5 equals b's exactly: shared
             write_result(tmp_path / 'c.json', 'Restormer', 'L1', 'DPDD',
                          groups(25.5, 0.82039, 0.02496, 'absent', 4.0))]
    table, merged = tmp_path / 'table.md', tmp_path / 'merged.json'
    assert evaluate.main(['merge', *map(str, files), '--out', str(table), '--json', str(merged)]) == 0
    header, cells = table_cells(table.read_text())
    assert header[:2] == ['Method', 'Loss'] and header[2:7] == ['Indoor PSNR↑', 'Indoor SSIM↑', 'Indoor MAE↓',
                                                                 'Indoor LPIPS↓', 'Indoor NIQE↓']
    a, b, c = ('NAFNet', 'L1'), ('NAFNet', 'L1+ViT'), ('Restormer', 'L1')
    for group in ('Indoor', 'Outdoor', 'Combined'):
        psnr, ssim, mae = f'{group} PSNR↑', f'{group} SSIM↑', f'{group} MAE↓'
        lpips, niqe = f'{group} LPIPS↓', f'{group} NIQE↓'
        assert (cells[(b, psnr)], cells[(c, psnr)], cells[(a, psnr)]) == ('**25.50**', '**25.50**', '<u>25.00</u>')
        assert (cells[(b, ssim)], cells[(c, ssim)], cells[(a, ssim)]) == ('**0.8204**', '<u>0.8204</u>', '0.8000')
        assert (cells[(c, mae)], cells[(b, mae)], cells[(a, mae)]) == ('**0.0250**', '<u>0.0250</u>', '0.0300')
        assert (cells[(b, lpips)], cells[(a, lpips)], cells[(c, lpips)]) == ('**0.1000**', '<u>0.2000</u>', '-')
        assert {cells[(r, niqe)] for r in (a, b, c)} == {'**4.000**'}  # all tied: all bold, none second
    rows = read_json(merged)['rows']
    assert [(r['method'], r['loss']) for r in rows] == [a, b, c]
    assert rows[2]['values']['Indoor LPIPS↓'] is None and rows[1]['marks']['Indoor PSNR↑'] == 'best'
    assert rows[2]['marks']['Indoor SSIM↑'] == 'second' and rows[2]['values']['Indoor SSIM↑'] == 0.82039
    assert read_json(merged)['protocols'] == {'DPDD': PROTOCOL} and read_json(merged)['protocol_differences'] == []


def test_merge_datasets_as_column_groups(tmp_path):
    combined = {'Combined': {'psnr': 30.0, 'ssim': 0.9}}
    matlab = dict(PROTOCOL, bit_depth={'restored': 8, 'gt': 8},
                  metrics={'ssim': 'MATLAB ssim 3-D, 11x11x11 Gaussian sigma 1.5, 8-bit'})
    files = [write_result(tmp_path / 'a_gopro.json', 'NAFNet', 'L1', 'GoPro', combined, matlab),
             write_result(tmp_path / 'a_hide.json', 'NAFNet', 'L1', 'HIDE', {'Combined': {'psnr': 28.0, 'ssim': 0.8}},
                          matlab),
             write_result(tmp_path / 'b_gopro.json', 'NAFNet', 'L1+ViT', 'GoPro',
                          {'Combined': {'psnr': 30.5, 'ssim': 0.9}}, matlab)]
    table = tmp_path / 'table.md'
    assert evaluate.main(['merge', *map(str, files), '--out', str(table)]) == 0
    header, cells = table_cells(table.read_text())
    assert header == ['Method', 'Loss', 'GoPro PSNR↑', 'GoPro SSIM↑', 'HIDE PSNR↑', 'HIDE SSIM↑']
    a, b = ('NAFNet', 'L1'), ('NAFNet', 'L1+ViT')
    assert (cells[(a, 'GoPro PSNR↑')], cells[(b, 'GoPro PSNR↑')]) == ('<u>30.00</u>', '**30.50**')
    assert (cells[(a, 'GoPro SSIM↑')], cells[(b, 'GoPro SSIM↑')]) == ('**0.9000**', '**0.9000**')
    assert (cells[(a, 'HIDE PSNR↑')], cells[(b, 'HIDE PSNR↑')]) == ('**28.00**', '-')  # one value: bold only
    assert 'Protocol of GoPro' in table.read_text() and 'MATLAB ssim 3-D' in table.read_text()

    clash = write_result(tmp_path / 'again.json', 'NAFNet', 'L1', 'GoPro', combined, matlab)
    assert evaluate.main(['merge', str(files[0]), str(clash), '--out', str(table)]) == 2


def test_merge_refuses_differing_protocols(tmp_path, capsys):
    groups = {'Combined': {'psnr': 25.0, 'ssim': 0.8}}
    base = write_result(tmp_path / 'a.json', 'NAFNet', 'L1', 'DPDD', groups)
    tiled = write_result(tmp_path / 'b.json', 'NAFNet', 'L1+ViT', 'DPDD', groups,
                         dict(PROTOCOL, inference={'mode': 'tiled', 'tile': 512, 'overlap': 32},
                              pairing={'option': 'name', 'used': 'name'}))  # pairing is not compared
    table = tmp_path / 'table.md'
    capsys.readouterr()
    assert evaluate.main(['merge', str(base), str(tiled), '--out', str(table)]) == 2
    message = capsys.readouterr().err
    assert 'inference.mode' in message and 'inference.tile' in message and 'pairing' not in message
    assert 'a.json' in message and 'b.json' in message and '--force' in message and not table.exists()

    capsys.readouterr()
    assert evaluate.main(['merge', str(base), str(tiled), '--out', str(table), '--force']) == 0
    text = table.read_text()
    assert 'Protocol differences' in text and 'inference.mode' in text and "'tiled'" in text
    assert 'inference.mode' in capsys.readouterr().err  # warned as well
    _, cells = table_cells(text)
    assert cells[(('NAFNet', 'L1'), 'Combined PSNR↑')] == '**25.00**'

    # a metric's variant counts only where both runs computed it; a differing one is named
    psnr_only = write_result(tmp_path / 'c.json', 'DPDNet', 'L1', 'DPDD', {'Combined': {'psnr': 24.0}},
                             dict(PROTOCOL, metrics={'psnr': PROTOCOL['metrics']['psnr']}))
    assert evaluate.main(['merge', str(base), str(psnr_only), '--out', str(table)]) == 0
    matlab = write_result(tmp_path / 'd.json', 'DPDNet', 'L1', 'DPDD', groups,
                          dict(PROTOCOL, metrics=dict(PROTOCOL['metrics'], ssim='MATLAB ssim 3-D'),
                               bit_depth={'restored': 8, 'gt': 16}))
    capsys.readouterr()
    assert evaluate.main(['merge', str(base), str(matlab), '--out', str(table)]) == 2
    message = capsys.readouterr().err
    assert 'metrics.ssim' in message and 'bit_depth.restored' in message and 'bit_depth.gt' not in message

    # an older results.json without a protocol: refused with a clear message, accepted with --force
    old = write_result(tmp_path / 'old.json', 'Uformer', 'L1', 'DPDD', groups, protocol=None)
    capsys.readouterr()
    assert evaluate.main(['merge', str(base), str(old), '--out', str(table)]) == 2
    message = capsys.readouterr().err
    assert 'old.json' in message and 'no protocol' in message and 'older evaluate.py' in message
    assert evaluate.main(['merge', str(base), str(old), '--out', str(table), '--force']) == 0
    assert 'old.json on DPDD has no protocol' in table.read_text()


@pytest.mark.integration
def test_input_errors(tmp_path, capsys):
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    out = tmp_path / 'out'

    def error(*args):
        capsys.readouterr()
        assert evaluate.main(list(map(str, args))) == 2
        message = capsys.readouterr().err
        assert message.startswith('evaluate: error: ') and 'Traceback' not in message
        return message

    cv2.imwrite(str(restored_dir / f'zzz{SUFFIX}.png'), np.zeros((8, 8, 3), np.uint8))
    message = error(*run_args(restored_dir, gt_dir, out))
    assert '7 restored images' in message and '6 ground-truth' in message and f'zzz{SUFFIX}.png' in message
    (restored_dir / f'zzz{SUFFIX}.png').unlink()

    message = error(*run_args(restored_dir, gt_dir, out, '--labels', labels_dir(tmp_path, outdoor=(2, 4, 7)),
                              '--metrics', 'mae'))
    assert 'outdoor_labels.npy' in message and '7 out of range 1..6' in message
    message = error(*run_args(restored_dir, gt_dir, out, '--labels', labels_dir(tmp_path, outdoor=(2, 3, 6)),
                              '--metrics', 'mae'))
    assert GT_NAMES[2] in message and 'two categories' in message
    table = tmp_path / 'labels.csv'
    table.write_text(f'{GT_NAMES[0]},Indoor\nscene99,Outdoor\n')
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


def errors(capsys, *args):
    """Run evaluate.main(args), expect status 2; returns the message."""
    capsys.readouterr()
    assert evaluate.main(list(map(str, args))) == 2
    message = capsys.readouterr().err
    assert message.startswith('evaluate: error: ') and 'Traceback' not in message
    return message


def test_pairing_by_position_checks_captures(tmp_path, capsys):
    """DPDD: restored <src>_NAFNet.png against targets <trg>.png pair by checked sorted position; the old
    equal-stem rule cannot pair them, --pairing name refuses them."""
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    assert not any(stems_match(src + SUFFIX, trg) for src, trg in PAIRS)  # names never equal
    for pairing in ('auto', 'position'):
        pairs, used = match_folders(str(restored_dir), str(gt_dir), pairing)
        assert used == 'position'
        assert [(p.rsplit('/', 1)[1], g.rsplit('/', 1)[1]) for p, g in pairs] == \
            [(f'{src}{SUFFIX}.png', f'{trg}.png') for src, trg in PAIRS]
    message = errors(capsys, *run_args(restored_dir, gt_dir, tmp_path / 'o', '--pairing', 'name', '--metrics', 'mae'))
    assert 'by name' in message and GT_NAMES[0] in message

    # a restored file of another capture among the others (equal counts): the pair is named, nothing evaluated
    other = SOURCES[2][:-4] + f'{int(SOURCES[2][-4:]) + 10:04d}'
    assert SOURCES[1] < other < SOURCES[3]  # sorts into the same place
    (restored_dir / f'{SOURCES[2]}{SUFFIX}.png').rename(restored_dir / f'{other}{SUFFIX}.png')
    out = tmp_path / 'other'
    message = errors(capsys, *run_args(restored_dir, gt_dir, out, '--metrics', 'mae'))
    assert f'{other}{SUFFIX}.png vs {GT_NAMES[2]}.png' in message and 'not the same capture' in message
    assert '1 of 6' in message and str(restored_dir) in message and not (out / 'per_image.csv').exists()
    (restored_dir / f'{other}{SUFFIX}.png').rename(restored_dir / f'{SOURCES[2]}{SUFFIX}.png')

    # a missing restored file: refused, naming its target, never paired shifted
    (restored_dir / f'{SOURCES[3]}{SUFFIX}.png').unlink()
    out = tmp_path / 'missing'
    message = errors(capsys, *run_args(restored_dir, gt_dir, out, '--metrics', 'mae'))
    assert '5 restored images but 6 ground-truth images' in message
    assert f'only in ground truth: {GT_NAMES[3]}.png' in message and 'Only in restored: none' in message
    assert not (out / 'per_image.csv').exists()


def test_pairing_by_name(tmp_path, capsys):
    """GoPro-like sets (target named like its source) pair by name, with or without BasicSR's suffix; exactly
    matching names still pair by name under auto; --pairing position accepts them too."""
    names = ['GOPR0384_11_00_000001', 'GOPR0384_11_00_000002', 'GOPR0410_11_00_000010']
    for restored_names, folder in ((names, 'equal'), ([n + '_Restormer' for n in names], 'suffix')):
        restored_dir, gt_dir, offsets = fake_dpdd(tmp_path / folder, restored_names, names)
        for pairing, expected in (('auto', 'name'), ('name', 'name'), ('position', 'position')):
            out = tmp_path / folder / pairing
            assert evaluate.main(run_args(restored_dir, gt_dir, out, '--pairing', pairing, '--metrics', 'mae')) == 0
            result = read_json(out / 'results.json')
            assert result['protocol']['pairing'] == {'option': pairing, 'used': expected}
            rows = read_csv(out / 'per_image.csv')
            assert [r['name'] for r in rows] == names
            assert [r['restored'].rsplit('/', 1)[1] for r in rows] == [f'{n}.png' for n in restored_names]
            assert [float(r['mae']) for r in rows] == pytest.approx([offsets[n] for n in names], abs=1e-12)
    # name pairing is not fooled by a shared prefix: GOPR0384_11_00_000001 is not ..._0000010
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path / 'prefix', ['a_1_x', 'a_10_x'], ['a_10', 'a_1'])
    pairs, used = match_folders(str(restored_dir), str(gt_dir), 'auto')
    assert used == 'name' and [(p.rsplit('/', 1)[1], g.rsplit('/', 1)[1]) for p, g in pairs] == \
        [('a_1_x.png', 'a_1.png'), ('a_10_x.png', 'a_10.png')]
    # two restored images of one scene under --pairing name: both named
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path / 'twice', ['s1_L', 's1_R'], ['s1', 's2'])
    message = errors(capsys, *run_args(restored_dir, gt_dir, tmp_path / 'o', '--pairing', 'name'))
    assert 's1_L.png and s1_R.png' in message


def test_bit_depth_warning(tmp_path, capsys):
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path, restored_bits=8)
    out = tmp_path / 'out'
    capsys.readouterr()
    assert evaluate.main(run_args(restored_dir, gt_dir, out, '--metrics', 'psnr')) == 0
    err = capsys.readouterr().err
    assert 'evaluate: warning: restored images are 8-bit but the ground truth is 16-bit' in err
    result = read_json(out / 'results.json')
    assert result['protocol']['bit_depth'] == {'restored': 8, 'gt': 16}
    assert 'restored images are 8-bit but the ground truth is 16-bit' in (out / 'results.md').read_text()
    assert '8-bit' in result['note']

    same = tmp_path / 'same'  # 16-bit against 16-bit: no warning
    restored16, gt16, _ = fake_dpdd(same)
    capsys.readouterr()
    assert evaluate.main(run_args(restored16, gt16, same / 'out', '--metrics', 'psnr')) == 0
    assert 'warning' not in capsys.readouterr().err
    assert read_json(same / 'out' / 'results.json')['protocol']['bit_depth'] == {'restored': 16, 'gt': 16}


@pytest.mark.integration
def test_ssim_matlab(tmp_path):
    from basicsr.utils.registry import METRIC_REGISTRY
    import basicsr_vitloss.metrics  # noqa: F401
    if 'calculate_ssim_matlab' not in METRIC_REGISTRY:
        pytest.skip('calculate_ssim_matlab is not registered in this checkout')
    calculate_ssim_matlab = METRIC_REGISTRY.get('calculate_ssim_matlab')
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path, restored_bits=8)
    out = tmp_path / 'out'
    assert evaluate.main(run_args(restored_dir, gt_dir, out, '--metrics', 'ssim', '--ssim', 'matlab')) == 0
    rows = read_csv(out / 'per_image.csv')
    for row in rows:
        restored = cv2.imread(row['restored'], cv2.IMREAD_UNCHANGED)  # 8-bit
        gt = np.round(cv2.imread(row['gt'], cv2.IMREAD_UNCHANGED) / 257.0).astype(np.uint8)  # 16-bit -> 8
        assert restored.dtype == np.uint8
        assert float(row['ssim']) == pytest.approx(calculate_ssim_matlab(restored, gt, crop_border=0), abs=1e-12)
        assert row['ssim_variant'] == 'matlab'
    result = read_json(out / 'results.json')
    assert result['protocol']['metrics']['ssim'] == 'MATLAB ssim 3-D, 11x11x11 Gaussian sigma 1.5, 8-bit'
    assert 'calculate_ssim_matlab' in result['settings']['ssim']

    # the same folder with --ssim float: recomputed (the cached value is the other SSIM), a different number
    assert evaluate.main(run_args(restored_dir, gt_dir, out, '--metrics', 'ssim', '--ssim', 'float')) == 0
    floats = read_csv(out / 'per_image.csv')
    assert all(r['ssim_variant'] == 'float' for r in floats)
    assert all(float(a['ssim']) != float(b['ssim']) for a, b in zip(rows, floats))
    assert read_json(out / 'results.json')['protocol']['metrics']['ssim'].startswith('skimage')

    # GoPro / HIDE default to MATLAB's SSIM, DPDD to float
    for dataset, variant in (('GoPro', 'MATLAB'), ('HIDE_test', 'MATLAB'), ('DPDD', 'skimage')):
        target = tmp_path / dataset
        assert evaluate.main(run_args(restored_dir, gt_dir, target, '--metrics', 'ssim', '--dataset', dataset)) == 0
        assert read_json(target / 'results.json')['protocol']['metrics']['ssim'].startswith(variant)


@pytest.mark.integration
def test_inference_from_options(tmp_path, lpips_weights, capsys):
    """run --opt: whole images by default (the saved result is the net's forward on the whole image), results
    named after the source scenes and paired with the release's targets; --tile N tiles; a restored/ folder
    made with other tiling is not reused."""
    from basicsr_vitloss.data.image_io import read_image  # basicsr_vitloss before basicsr
    from basicsr_vitloss.utils.tiling import tiled_forward
    from basicsr.archs import build_network
    folders = make_dpdd_tree(tmp_path / 'dpdd', split='test', scenes=2, size=(40, 56))
    pairs = dpdd_release_names('test', 2)
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
            '--lpips-weights', lpips_weights, '--loss', 'L1']
    assert evaluate.main(args) == 0

    inputs = {}
    for source, _ in pairs:
        lq = np.concatenate([read_image(f"{folders['lqL']}/{source}_L.png"),
                             read_image(f"{folders['lqR']}/{source}_R.png")], axis=2)
        inputs[source] = torch.from_numpy(lq.transpose(2, 0, 1)).unsqueeze(0)
        saved = cv2.imread(str(out / 'restored' / f'{source}.png'), cv2.IMREAD_UNCHANGED)
        assert saved.dtype == np.uint16 and saved.shape == (40, 56, 3)
        with torch.no_grad():
            whole = net(inputs[source])[0].clamp(0, 1).numpy().transpose(1, 2, 0)
            tiled = tiled_forward(net, inputs[source], 32, 8)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
        assert np.abs(saved[..., ::-1] / 65535.0 - whole).max() <= 1 / 65535 + 1e-6
        assert np.abs(whole - tiled).max() > 1e-3 and whole.std() > 0.01  # tiling would have shown

    rows = read_csv(out / 'per_image.csv')
    assert [r['name'] for r in rows] == [target for _, target in pairs]
    assert [r['restored'].rsplit('/', 1)[1] for r in rows] == [f'{source}.png' for source, _ in pairs]
    assert all(r['gt'].endswith(f"test_c/target/{r['name']}.png") for r in rows)
    assert all(math.isnan(float(r['niqe'])) for r in rows)  # 40x56 has no 96x96 NIQE block
    result = read_json(out / 'results.json')
    assert (result['method'], result['dataset'], result['n_images']) == ('tiny_nafnet', 'dpdd', 2)
    assert result['groups']['Combined']['niqe'] is None and result['groups']['Combined']['psnr'] > 0
    assert 'NIQE undefined' in result['note'] and 'whole images' in result['settings']['inference']
    assert result['protocol']['inference'] == {'mode': 'whole'}
    assert result['protocol']['pairing'] == {'option': 'auto', 'used': 'position'}
    assert result['protocol']['bit_depth'] == {'restored': 16, 'gt': 16}

    mtimes = [p.stat().st_mtime_ns for p in sorted((out / 'restored').iterdir())]
    capsys.readouterr()
    assert evaluate.main(args) == 0  # resumed: nothing restored or evaluated again
    assert [p.stat().st_mtime_ns for p in sorted((out / 'restored').iterdir())] == mtimes
    assert 'computed 0, skipped 2' in capsys.readouterr().out

    # tiled on request, recorded in the protocol; never mixed with the whole-image results of another run
    message = errors(capsys, *args, '--tile', '32', '--tile-overlap', '8')
    assert 'inference' in message and 'restored' in message and 'another --out' in message
    tiled_out = tmp_path / 'tiled'
    tiled_args = [a if a != str(out) else str(tiled_out) for a in args] + ['--tile', '32', '--tile-overlap', '8',
                                                                           '--metrics', 'psnr']
    assert evaluate.main(tiled_args) == 0
    assert read_json(tiled_out / 'results.json')['protocol']['inference'] == {'mode': 'tiled', 'tile': 32,
                                                                             'overlap': 8}
    source = pairs[0][0]
    saved = cv2.imread(str(tiled_out / 'restored' / f'{source}.png'), cv2.IMREAD_UNCHANGED)
    with torch.no_grad():
        tiled = tiled_forward(net, inputs[source], 32, 8)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
    assert np.abs(saved[..., ::-1] / 65535.0 - tiled).max() <= 1 / 65535 + 1e-6


def test_weights_errors_name_the_option(tmp_path, capsys):
    """--weights problems (the package's checkpoint reader) are input errors naming --weights and the file."""
    network = {'type': 'NAFNet', 'img_channel': 6, 'out_channels': 3, 'width': 8, 'enc_blk_nums': [1],
               'dec_blk_nums': [1], 'middle_blk_num': 1}
    options = {'name': 'tiny', 'network_g': network,
               'datasets': {'test': {'name': 'dpdd', 'type': 'DPDDDataset', 'dataroot': str(tmp_path / 'none'),
                                     'split': 'test', 'phase': 'test'}}}
    opt_file = tmp_path / 'options.yml'
    opt_file.write_text(yaml.safe_dump(options))

    def weights_error(weights):
        return errors(capsys, 'run', '--opt', opt_file, '--weights', weights, '--out', tmp_path / 'out')

    missing = tmp_path / 'missing.pth'
    assert weights_error(missing).startswith(f'evaluate: error: --weights {missing} does not exist')
    torn = tmp_path / 'torn.pth'
    torn.write_bytes(b'PK\x03\x04 not a checkpoint')
    message = weights_error(torn)
    assert f'--weights {torn}: cannot load it' in message
    other = tmp_path / 'other.pth'  # a wider NAFNet: every conv is mis-shaped
    from basicsr.archs import build_network
    torch.save({'params': build_network(dict(network, width=16)).state_dict()}, other)
    message = weights_error(other)
    assert f'--weights {other} does not fit NAFNet' in message and 'shape mismatch' in message
    assert str(opt_file) in message


def _console_script():
    name = 'basicsr-vitloss-evaluate'
    beside = Path(sys.executable).parent / name  # the venv of this interpreter, activated or not
    return str(beside) if beside.is_file() else shutil.which(name)


@pytest.mark.integration
@pytest.mark.parametrize('command', ['script', 'console script', 'module'])
def test_commands_run_the_same_main(tmp_path, command):
    """scripts/evaluate.py (the old command), basicsr-vitloss-evaluate and python -m basicsr_vitloss.evaluation:
    the same help and the same report as evaluate.main in-process."""
    argv = {'script': ['python', REPO / 'scripts' / 'evaluate.py'], 'console script': [_console_script()],
            'module': ['python', '-m', 'basicsr_vitloss.evaluation']}[command]
    assert argv[0], 'basicsr-vitloss-evaluate is not installed (pip install -e .)'
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    if command != 'module':  # the same parser: checked twice is enough
        proc = run([*argv, '--help'], cwd=tmp_path, timeout=120)
        assert proc.stdout.startswith('usage: evaluate') and '{run,merge}' in proc.stdout
    proc = run([*argv, *run_args(restored_dir, gt_dir, tmp_path / 'sub', '--metrics', 'psnr', 'mae')],
               cwd=tmp_path, timeout=120)
    assert 'evaluated 6 images (paired by position' in proc.stdout
    assert evaluate.main(run_args(restored_dir, gt_dir, tmp_path / 'in', '--metrics', 'psnr', 'mae')) == 0
    assert read_json(tmp_path / 'sub' / 'results.json') == read_json(tmp_path / 'in' / 'results.json')
    assert (tmp_path / 'sub' / 'results.md').read_text() == (tmp_path / 'in' / 'results.md').read_text()


def test_inference_with_non_finite_outputs_stops_naming_the_images(tmp_path, capsys):
    """run --opt with weights that give NaN (a diverged run): no black PNG is saved or scored; every image is
    tried, then the run stops (status 2) naming them, and a rerun restores them again."""
    from basicsr.archs import build_network
    make_dpdd_tree(tmp_path / 'dpdd', split='test', scenes=2, size=(40, 56))
    network = {'type': 'NAFNet', 'img_channel': 6, 'out_channels': 3, 'width': 8, 'enc_blk_nums': [1],
               'dec_blk_nums': [1], 'middle_blk_num': 1}
    options = {'name': 'tiny_nafnet', 'network_g': network,
               'datasets': {'test': {'name': 'dpdd', 'type': 'DPDDDataset', 'dataroot': str(tmp_path / 'dpdd'),
                                     'split': 'test', 'phase': 'test'}}}
    opt_file = tmp_path / 'options.yml'
    opt_file.write_text(yaml.safe_dump(options))
    state = build_network(network).state_dict()
    state['ending.bias'] = torch.tensor([0.0, float('nan'), 0.0])  # the green channel diverged
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    out = tmp_path / 'out'
    args = ['run', '--opt', opt_file, '--weights', tmp_path / 'net_g.pth', '--out', out, '--metrics', 'psnr']

    def error():  # the message follows the restore progress bar on stderr
        assert evaluate.main(list(map(str, args))) == 2
        err = capsys.readouterr().err
        assert 'Traceback' not in err
        return err[err.index('evaluate: error: '):]

    message = error()
    sources = [source for source, _ in dpdd_release_names('test', 2)]
    assert '2 of 2 images' in message and all(source in message for source in sources), message
    assert 'NaN' in message and 'not finite' in message and str(tmp_path / 'net_g.pth') in message
    assert sorted(p.name for p in (out / 'restored').iterdir()) == ['inference.json']  # no PNG, no temporary file
    assert not (out / 'results.json').exists()
    assert '2 of 2 images' in error()  # nothing was taken for a result: tried again


def test_merge_paper_sets_each_rows_change_beside_the_papers(tmp_path):
    """merge --paper table3: a loss row's change over its network's baseline row, next to Table III's change
    (computed here from the paper's numbers as printed in its Table III)."""
    matlab = dict(PROTOCOL, bit_depth={'restored': 8, 'gt': 8})
    runs = {('baseline', 'GoPro'): (30.00, 0.9300, 0.1000, 5.000), ('local', 'GoPro'): (30.25, 0.9310, 0.0700, 4.500),
            ('baseline', 'HIDE'): (28.00, 0.9000, 0.1200, 4.800), ('local', 'HIDE'): (28.10, 0.8990, 0.0900, 4.000)}
    files = [write_result(tmp_path / f'{loss}_{dataset}.json', 'Restormer', loss, dataset,
                          {'Combined': dict(zip(('psnr', 'ssim', 'lpips', 'niqe'), values))}, matlab)
             for (loss, dataset), values in runs.items()]
    files.append(write_result(tmp_path / 'naf.json', 'NAFNet', 'vgg', 'GoPro',  # no NAFNet baseline: no change row
                              {'Combined': {'psnr': 31.0, 'ssim': 0.95, 'lpips': 0.06, 'niqe': 4.9}}, matlab))
    table, merged = tmp_path / 'table.md', tmp_path / 'merged.json'
    assert evaluate.main(['merge', *map(str, files), '--paper', 'table3', '--out', str(table),
                          '--json', str(merged)]) == 0
    text = table.read_text()
    second = text[text.index('Change over each network'):]
    header = [c.strip() for c in second.split('\n')[2].strip('|').split('|')]
    assert header[:6] == ['Method', 'Loss', 'GoPro ΔPSNR', 'paper', 'GoPro ΔSSIM', 'paper']
    row = [c.strip() for c in second.split('\n')[4].strip('|').split('|')]
    cells = dict(zip(header[2::2], zip(row[2::2], row[3::2])))
    # Table III, Restormer: baseline GoPro 29.61 / 0.9277 / 0.1154 / 5.4515, +local 30.00 / 0.9315 / 0.0620 / 4.5327
    assert row[:2] == ['Restormer', 'local']
    assert cells['GoPro ΔPSNR'] == ('+0.25', '+0.39') and cells['GoPro ΔSSIM'] == ('+0.0010', '+0.0038')
    assert cells['GoPro ΔLPIPS'] == ('-0.0300', '-0.0534') and cells['GoPro ΔNIQE'] == ('-0.500', '-0.919')
    assert cells['HIDE ΔPSNR'] == ('+0.10', '+0.08')  # HIDE 28.62 -> 28.70
    assert 'NAFNet' not in second.split('\n\n')[1]
    change = read_json(merged)['changes'][0]
    assert change['loss'] == 'local' and change['cells'][0] == {
        'dataset': 'GoPro', 'metric': 'psnr', 'ours': pytest.approx(0.25), 'paper': pytest.approx(0.39)}
    assert evaluate.main(['merge', *map(str, files[:2]), '--paper', 'table1', '--out', str(table)]) == 2  # no DPDD


GOPRO_LISTS = json.loads((REPO / 'tests' / 'data' / 'gopro_file_lists.json').read_text())


def test_official_gopro_results_pair_with_prepared_targets(tmp_path, capsys):
    """A result set named as Restormer / MPRNet / NAFNet release GoPro results (<scene>-<frame>.png, real
    scenes and frame numbers) pairs by name with the target folder prepare_gopro.py writes now (hyphen) and
    with one an earlier version wrote (<scene>_<frame>.png), also with BasicSR's _<suffix> added."""
    from conftest import load_script
    prepare_gopro = load_script('prepare_gopro')
    rng = np.random.default_rng(3)
    frames = [(scene, info['first'] + k) for scene, info in list(GOPRO_LISTS['test'].items())[:3] for k in range(2)]
    large = tmp_path / 'GOPRO_Large' / 'test'
    official = tmp_path / 'official' / 'GoPro'  # a result set as released: <scene>-<frame>.png
    official.mkdir(parents=True)
    offsets = {}
    for index, (scene, frame) in enumerate(frames):
        sharp = rng.integers(20, 230, (8, 8, 3), dtype=np.uint8)
        for kind in ('blur', 'sharp'):
            (large / scene / kind).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(large / scene / kind / f'{frame:06d}.png'), sharp)
        offsets[f'{scene}-{frame:06d}'] = index + 1
        cv2.imwrite(str(official / f'{scene}-{frame:06d}.png'), sharp + np.uint8(index + 1))
    out = tmp_path / 'datasets'
    assert prepare_gopro.main(['--out', str(out), '--gopro', str(tmp_path / 'GOPRO_Large'), '--allow-partial']) == 0
    capsys.readouterr()
    new_gt = out / 'GoPro' / 'test' / 'target'
    assert sorted(p.name for p in new_gt.iterdir()) == sorted(f'{s}.png' for s in offsets)
    old_gt = tmp_path / 'old' / 'target'  # an earlier prepare_gopro's names: <scene>_<frame>.png
    old_gt.mkdir(parents=True)
    for path in new_gt.iterdir():
        shutil.copy(path, old_gt / path.name.replace('-', '_'))
    suffixed = tmp_path / 'official_suffix'  # the same results as basicsr.test names them
    suffixed.mkdir()
    for path in official.iterdir():
        shutil.copy(path, suffixed / f'{path.stem}_NAFNet.png')
    for restored_dir in (official, suffixed):
        for gt_dir in (new_gt, old_gt):
            pairs, used = match_folders(str(restored_dir), str(gt_dir), 'auto')
            assert used == 'name' and len(pairs) == len(frames)
            run_dir = tmp_path / 'runs' / f'{restored_dir.name}_{gt_dir.parent.name}'
            assert evaluate.main(run_args(restored_dir, gt_dir, run_dir, '--metrics', 'mae')) == 0
            rows = read_csv(run_dir / 'per_image.csv')
            assert len(rows) == len(frames)
            for row in rows:
                frame = canonical_stem(row['name'])  # name: the gt stem, as the gt folder spells it
                assert row['name'] == (frame.replace('-', '_') if gt_dir == old_gt else frame)
                assert Path(row['restored']).name.startswith(frame)
                assert float(row['mae']) == pytest.approx(offsets[frame] / 255.0, abs=1e-9)


def test_niqe_channel_changes_the_value_the_cache_and_the_protocol(tmp_path, capsys):
    """--niqe-channel gray is BasicSR's calculate_niqe(convert_to='gray') on the 8-bit result, a different number
    from the default Y; a rerun with the other channel recomputes NIQE; the protocol records it and merge refuses to
    mix the two."""
    from basicsr.metrics.niqe import calculate_niqe
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path, restored_bits=8)
    gray_out, y_out = tmp_path / 'gray', tmp_path / 'y'
    assert evaluate.main(run_args(restored_dir, gt_dir, gray_out, '--metrics', 'niqe', '--niqe-channel', 'gray',
                                  '--method', 'gray')) == 0
    gray_rows = read_csv(gray_out / 'per_image.csv')
    for row in gray_rows[:2]:
        image = cv2.imread(row['restored'], cv2.IMREAD_UNCHANGED)
        assert float(row['niqe']) == pytest.approx(calculate_niqe(image, 0, convert_to='gray'), abs=1e-9)
        assert row['niqe_variant'] == 'gray'
    gray = read_json(gray_out / 'results.json')
    assert gray['protocol']['metrics']['niqe'] == 'BasicSR calculate_niqe, 8-bit gray'
    assert gray['protocol']['colour_space'] == 'RGB (NIQE: grayscale of the 8-bit result)'
    assert "convert_to='gray'" in gray['settings']['niqe']

    # the same folder with the default (Y): NIQE recomputed, different values
    shutil.copytree(gray_out, y_out)
    assert evaluate.main(run_args(restored_dir, gt_dir, y_out, '--metrics', 'niqe')) == 0
    y_rows = read_csv(y_out / 'per_image.csv')
    assert all(r['niqe_variant'] == 'y' for r in y_rows)
    assert all(float(a['niqe']) != float(b['niqe']) for a, b in zip(gray_rows, y_rows))
    y_result = read_json(y_out / 'results.json')
    assert y_result['protocol']['metrics']['niqe'] == 'BasicSR calculate_niqe, 8-bit Y'

    table = tmp_path / 'table.md'
    capsys.readouterr()
    assert evaluate.main(['merge', str(y_out / 'results.json'), str(gray_out / 'results.json'),
                          '--out', str(table)]) == 2
    message = capsys.readouterr().err
    assert 'metrics.niqe' in message and 'colour_space' in message and not table.exists()


def test_niqe_channel_bad_value_and_older_cache(tmp_path, capsys):
    from basicsr_vitloss.evaluation.errors import EvaluateError
    from basicsr_vitloss.evaluation.metrics import compute_metrics
    from basicsr_vitloss.evaluation.results import CSV_COLUMNS, read_cache
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    assert evaluate.main(run_args(restored_dir, gt_dir, tmp_path / 'out', '--niqe-channel', 'rgb')) == 2
    assert "--niqe-channel: invalid choice: 'rgb'" in capsys.readouterr().err
    image = np.zeros((96, 192, 3), np.uint8)
    with pytest.raises(EvaluateError, match=r"--niqe-channel 'RGB': expected one of y, gray"):
        compute_metrics(image, image, ('niqe', ), niqe_channel='RGB')

    # a per_image.csv written before --niqe-channel / --lpips-net (no such columns): its NIQE is Y, LPIPS alex
    old_columns = [c for c in CSV_COLUMNS if c not in ('niqe_variant', 'lpips_variant')]
    path = tmp_path / 'per_image.csv'
    with open(path, 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=old_columns)
        writer.writeheader()
        writer.writerow({c: '' for c in old_columns} | {'restored': '/x/a.png', 'niqe': '4.5', 'ssim': '0.9',
                                                         'ssim_variant': 'matlab', 'lpips': '0.1'})
        writer.writerow({c: '' for c in old_columns} | {'restored': '/x/b.png'})
    cache = read_cache(str(path))
    assert cache['a.png']['niqe_variant'] == 'y' and cache['a.png']['ssim_variant'] == 'matlab'
    assert cache['a.png']['lpips_variant'] == 'alex'
    assert cache['b.png']['niqe_variant'] == '' and cache['b.png']['lpips_variant'] == ''


def test_lpips_net_vgg_is_passed_on_cached_per_net_and_in_the_protocol(tmp_path, monkeypatch, capsys):
    from basicsr_vitloss.metrics import lpips_metric
    calls = []

    def fake_lpips(img, img2, net='alex', weights_dir=None, **kwargs):  # no backbone download in a test
        calls.append(net)
        return {'alex': 0.25, 'vgg': 0.5}[net]

    monkeypatch.setattr(lpips_metric, 'calculate_lpips', fake_lpips)
    restored_dir, gt_dir, _ = fake_dpdd(tmp_path)
    vgg_out, alex_out = tmp_path / 'vgg', tmp_path / 'alex'
    assert evaluate.main(run_args(restored_dir, gt_dir, vgg_out, '--metrics', 'lpips', '--lpips-net', 'vgg',
                                  '--method', 'vgg')) == 0
    assert calls == ['vgg'] * 6
    assert all(r['lpips_variant'] == 'vgg' and float(r['lpips']) == 0.5 for r in read_csv(vgg_out / 'per_image.csv'))
    vgg = read_json(vgg_out / 'results.json')
    assert vgg['protocol']['lpips']['net'] == 'vgg' and "net='vgg'" in vgg['protocol']['metrics']['lpips']
    assert 'VGG16' in vgg['settings']['lpips']

    shutil.copytree(vgg_out, alex_out)  # the default (alex) in the same folder: computed again
    assert evaluate.main(run_args(restored_dir, gt_dir, alex_out, '--metrics', 'lpips')) == 0
    assert calls == ['vgg'] * 6 + ['alex'] * 6
    assert read_json(alex_out / 'results.json')['groups']['Combined']['lpips'] == 0.25
    capsys.readouterr()
    assert evaluate.main(['merge', str(alex_out / 'results.json'), str(vgg_out / 'results.json'),
                          '--out', str(tmp_path / 'table.md')]) == 2
    assert 'lpips.net' in capsys.readouterr().err
    assert evaluate.main(run_args(restored_dir, gt_dir, alex_out, '--lpips-net', 'squeeze')) == 2
    assert "--lpips-net: invalid choice: 'squeeze'" in capsys.readouterr().err


def test_restored_folder_record_names_a_square_zero_uformer_only(tmp_path):
    """run --opt: restored/inference.json keeps Uformer's non-default input_padding, so a folder restored with the
    other padding is not resumed; the default adds nothing (older folders still resume, protocols of other archs
    stay comparable)."""
    from types import SimpleNamespace
    from basicsr_vitloss.archs.uformer_arch import Uformer
    from basicsr_vitloss.evaluation.restore import _check_restored_folder, _inference_record
    from basicsr_vitloss.evaluation.errors import EvaluateError
    args = SimpleNamespace(opt='o.yml', weights='w.pth', tile=0, tile_overlap=32)
    small = dict(embed_dim=8, depths=[1] * 9, num_heads=[1] * 9, win_size=2, img_size=64)
    reflect = _inference_record(args, Uformer(**small), {'name': 'DPDD'})
    square = _inference_record(args, Uformer(input_padding='square_zero', **small), {'name': 'DPDD'})
    assert 'input_padding' not in reflect and square['input_padding'] == 'square_zero'
    assert square['inference'] == reflect['inference'] == {'mode': 'whole'}  # the protocol field is unchanged
    folder = tmp_path / 'restored'
    folder.mkdir()
    (folder / 'inference.json').write_text(json.dumps(reflect))
    with pytest.raises(EvaluateError, match='input_padding: None then, square_zero now'):
        _check_restored_folder(str(folder), square)
