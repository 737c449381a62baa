"""The main job, timed: ``python -m basicsr.train -opt options/demo/defocus_demo.yml`` from start to picture.

Each run starts a fresh interpreter in a fresh empty folder (warm venv, cold experiments/), as a user
would, and measures its wall time and CPU time (the child's user + system seconds: less sensitive to
other load than wall time); the log gives the last validation PSNR / SSIM and when training started
and ended. The blurry input's PSNR / SSIM are computed here with the same metric settings (the
options' ``val: metrics:``, BasicSR's functions on 8-bit images) on the same validation scenes, the
input being the average of the two dual-pixel views, as ``val: save_comparison`` shows and scores it.

``--breakdown`` first times the parts in this process, on the options' own sizes: interpreter start +
``import basicsr`` (fresh interpreters), building the network and the ViT loss, one training sample,
one iteration's network forward + backward, the ViT loss's forward + backward, the whole step
(network, L1, ViT loss, Adam), a validation pass and a checkpoint save.

The machine's load average is recorded before and after: timings on a shared machine are inflated;
re-measure on a quiet one (``python benchmarks/demo_bench.py --runs 3 --breakdown``).
Writes benchmarks/results/demo_bench.json and .md (``--stem`` to change).
"""
import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_results import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OPT = REPO / 'options' / 'demo' / 'defocus_demo.yml'
LOG_TIME = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: (.*)$')


def _load():
    return tuple(round(v, 2) for v in os.getloadavg())


def _timed(function, repeats=5, warmup=1):
    """Median (wall, cpu) seconds of ``function``."""
    for _ in range(warmup):
        function()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {'wall_s': round(statistics.median(walls), 4), 'cpu_s': round(statistics.median(cpus), 4)}


def _log_events(log_text):
    """[(datetime, message)] of the log's INFO lines."""
    events = []
    for line in log_text.splitlines():
        match = LOG_TIME.match(line)
        if match:
            events.append((datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S,%f'), match.group(2)))
    return events


def run_demo(opt_path, workdir, timeout):
    """One run of the main job in ``workdir``; returns its measurements."""
    env = dict(os.environ)
    env.pop('BASICSR_VITLOSS_DISABLE_HOOK', None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = _load()
    started = datetime.now()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, '-m', 'basicsr.train', '-opt', str(opt_path)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f'the demo failed ({proc.returncode}):\n{proc.stderr[-4000:]}')
    logs = sorted(Path(workdir, 'experiments').glob('*/train_*.log'))
    log = logs[-1].read_text()
    events = _log_events(log)
    psnr = [float(v) for v in re.findall(r'# psnr: ([\d.]+)', log)]
    ssim = [float(v) for v in re.findall(r'# ssim: ([\d.]+)', log)]

    def at(prefix):
        return next(((t - started).total_seconds() for t, m in events if m.startswith(prefix)), None)

    comparison = Path(logs[-1].parent, 'comparison.png')
    last = log.strip().splitlines()[-1]
    return {
        'wall_s': round(wall, 2),
        'cpu_s': round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        'start_training_at_s': at('Start training'),
        'end_training_at_s': at('End of training'),
        'psnr_per_validation': psnr, 'ssim_per_validation': ssim,
        'final_psnr': psnr[-1] if psnr else None, 'final_ssim': ssim[-1] if ssim else None,
        'comparison_png': comparison.is_file(), 'last_log_line_names_it': str(comparison) in last,
        'load_before': load_before, 'load_after': _load(),
    }


def blurry_input_scores(opt):
    """Mean PSNR (and SSIM when the options validate it) of the blurry inputs of the validation set,
    with the options' metric settings; the input is the average of its views (dual-pixel: left, right)."""
    import numpy as np

    import basicsr  # noqa: F401  (activates the plugin)
    from basicsr.metrics import calculate_ssim
    from basicsr.utils import tensor2img
    from basicsr.utils.registry import DATASET_REGISTRY
    from basicsr_vitloss.utils.comparison_figure import input_view, psnr, psnr_settings
    val = dict(opt['datasets']['val'], phase='val')
    dataset = DATASET_REGISTRY.get(val['type'])(val)
    crop, y_channel = psnr_settings(opt)
    ssim_opt = next((m for m in opt['val'].get('metrics', {}).values() if m.get('type') == 'calculate_ssim'), None)
    psnrs, ssims = [], []
    for index in range(len(dataset)):
        sample = dataset[index]
        sharp = tensor2img([sample['gt']])
        blurry = input_view(sample['lq'][None], sharp.shape[:2])
        psnrs.append(psnr(blurry, sharp, crop, y_channel))
        if ssim_opt:
            ssims.append(calculate_ssim(blurry, sharp, ssim_opt.get('crop_border', 0),
                                        test_y_channel=ssim_opt.get('test_y_channel', False)))
    return {'psnr': round(float(np.mean(psnrs)), 4), 'ssim': round(float(np.mean(ssims)), 4) if ssims else None,
            'scenes': len(dataset), 'psnr_crop_border': crop, 'psnr_test_y_channel': y_channel}


def breakdown(opt, repeats):
    """Time the parts of the demo in this process (see the module docstring)."""
    import torch

    env = dict(os.environ)
    env.pop('BASICSR_VITLOSS_DISABLE_HOOK', None)
    starts = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, '-c', 'import basicsr'], env=env, check=True, capture_output=True)
        starts.append(time.perf_counter() - start)
    import basicsr  # noqa: F401
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY
    parts = {'interpreter_start_and_import_basicsr': {'wall_s': round(statistics.median(starts), 3)}}
    train_opt = dict(opt['datasets']['train'], phase='train')
    dataset = DATASET_REGISTRY.get(train_opt['type'])(train_opt)
    batch, size = int(train_opt['batch_size_per_gpu']), int(train_opt['gt_size'])
    parts['train_sample_x_batch'] = {k: round(v * batch, 4) for k, v in
                                     _timed(lambda: dataset[7], repeats * 4).items()}
    network = dict(opt['network_g'])
    start = time.perf_counter()
    net = ARCH_REGISTRY.get(network.pop('type'))(**network)
    parts['build_network'] = {'wall_s': round(time.perf_counter() - start, 3)}
    percep = dict(opt['train']['perceptual_opt'])
    start = time.perf_counter()
    vit_loss = LOSS_REGISTRY.get(percep.pop('type'))(**percep)
    parts['build_vit_loss'] = {'wall_s': round(time.perf_counter() - start, 3)}
    sample = dataset[0]
    lq = torch.rand(batch, sample['lq'].shape[0], size, size)
    gt = torch.rand(batch, 3, size, size)
    pred = torch.rand(batch, 3, size, size, requires_grad=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def network_step():
        net(lq).abs().mean().backward()

    def vit_step():
        vit_loss(pred, gt)[0].backward()

    def whole_step():
        optimizer.zero_grad()
        out = net(lq)
        ((out - gt).abs().mean() + vit_loss(out, gt)[0]).backward()
        optimizer.step()

    parts['network_forward_backward'] = _timed(network_step, repeats)
    parts['vit_loss_forward_backward'] = _timed(vit_step, repeats)
    parts['whole_iteration'] = _timed(whole_step, repeats)
    val_opt = dict(opt['datasets']['val'], phase='val')
    val_set = DATASET_REGISTRY.get(val_opt['type'])(val_opt)
    val_inputs = [val_set[i]['lq'][None] for i in range(len(val_set))]

    def validation():
        with torch.no_grad():
            for x in val_inputs:
                net(x)

    parts['validation_forward_all_scenes'] = _timed(validation, max(1, repeats // 2))
    with tempfile.TemporaryDirectory() as folder:
        parts['checkpoint_save'] = _timed(
            lambda: torch.save({'net': net.state_dict(), 'optim': optimizer.state_dict()}, f'{folder}/c.pth'), 3)
    iterations = int(opt['train']['total_iter'])
    parts['estimate_training_s'] = round(iterations * parts['whole_iteration']['wall_s'], 1)  # data: a worker
    return parts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--opt', default=str(DEFAULT_OPT), help='options file (default: the demo)')
    parser.add_argument('--runs', type=int, default=1,
                        help='demo runs; the median wall time is reported (0: only --breakdown)')
    parser.add_argument('--breakdown', action='store_true', help='also time the parts in-process first')
    parser.add_argument('--repeats', type=int, default=5, help='repeats per part of --breakdown')
    parser.add_argument('--timeout', type=float, default=3600)
    parser.add_argument('--stem', default='demo_bench', help='name of the results files')
    args = parser.parse_args(argv)
    import yaml
    opt_path = Path(args.opt).resolve()
    opt = yaml.safe_load(opt_path.read_text())
    data = {'options': str(opt_path.relative_to(REPO)) if opt_path.is_relative_to(REPO) else str(opt_path),
            'command': f'python -m basicsr.train -opt {args.opt}', 'cpus': os.cpu_count(),
            'torch_threads': None, 'platform': platform.platform(), 'python': platform.python_version(),
            'total_iter': opt['train']['total_iter']}
    import torch
    data['torch_threads'] = torch.get_num_threads()
    if args.breakdown:
        data['breakdown'] = breakdown(opt, args.repeats)
    data['blurry_input'] = blurry_input_scores(opt)
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix='demo-bench-') as workdir:
            runs.append(run_demo(opt_path, workdir, args.timeout))
    data['runs'] = runs
    final = statistics.median(r['final_psnr'] for r in runs) if runs else None
    data['median_wall_s'] = round(statistics.median(r['wall_s'] for r in runs), 2) if runs else None
    data['final_psnr'] = final
    data['gain_db'] = round(final - data['blurry_input']['psnr'], 3) if runs else None

    lines = [f'# Main job: `{data["command"]}`', '',
             f'{platform.platform()}, {os.cpu_count()} CPUs, torch threads {data["torch_threads"]}, '
             f'{opt["train"]["total_iter"]} iterations. Load average before / after each run is listed: a '
             'shared machine inflates wall times; re-run `python benchmarks/demo_bench.py --runs 3 --breakdown` '
             'on a quiet one.', '',
             '| run | wall (s) | CPU (s) | training starts at (s) | training ends at (s) | final PSNR | final SSIM '
             '| comparison.png | load before | load after |', '|---|---|---|---|---|---|---|---|---|---|']
    for index, run in enumerate(runs, 1):
        lines.append(f'| {index} | {run["wall_s"]} | {run["cpu_s"]} | {run["start_training_at_s"]} | '
                     f'{run["end_training_at_s"]} | {run["final_psnr"]} | {run["final_ssim"]} | '
                     f'{run["comparison_png"] and run["last_log_line_names_it"]} | {run["load_before"]} | '
                     f'{run["load_after"]} |')
    blurry = data['blurry_input']
    lines += ['', f'Blurry input (average of the two views, {blurry["scenes"]} scenes, crop border '
              f'{blurry["psnr_crop_border"]}): PSNR {blurry["psnr"]} dB, SSIM {blurry["ssim"]}.']
    if runs:
        lines += ['', f'Median wall time: **{data["median_wall_s"]} s**; last validation: PSNR {final} dB '
                  f'(**{data["gain_db"]:+.2f} dB** over the blurry input).', '',
                  'PSNR per validation: ' + '; '.join(', '.join(f'{v:.2f}' for v in r['psnr_per_validation'])
                                                      for r in runs)]
    if args.breakdown:
        lines += ['', '## Where the time goes (in-process, medians)', '', '| part | wall (s) | CPU (s) |',
                  '|---|---|---|']
        for name, value in data['breakdown'].items():
            if isinstance(value, dict):
                lines.append(f'| {name} | {value.get("wall_s")} | {value.get("cpu_s", "")} |')
        estimate = data['breakdown']['estimate_training_s']
        lines.append(f'\nTraining estimate (iterations x whole iteration): {estimate} s')
    write_results(args.stem, data, lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
