"""The README's install line, timed from a clean pip cache (``--no-cache-dir``) in a fresh venv.

Two install lines (``--line``): ``readme``, the README's line (torch and basicsr's build tools first,
then basicsr built against that torch with ``--no-build-isolation``, then this package), and ``plain``,
``pip install .`` alone (what the README said before: it builds basicsr in an isolated environment).

Two cases, each in its own new virtual environment:
- ``torch_preinstalled``: torch and torchvision (the tested pins) installed first (not timed), then the
  install line;
- ``fresh``: the install line in an empty venv (pip resolves and fetches torch itself).

pip runs with ``-v`` so that the output of the build-isolation step shows: basicsr 1.4.2 is an sdist
whose ``setup_requires`` lists torch, so pip installs torch into a throw-away build environment to
build it. The script counts the pip subprocesses that install build / backend dependencies and fetch
torch (a second torch fetched and unpacked only for the build) and the torch fetched by the main
resolve (the run-time torch). pip's index settings are the machine's (here: local registry mirrors,
torch capped by pip's constraints); nothing else is changed. Writes benchmarks/results/install_bench.json and .md.

    python benchmarks/install_bench.py [--line readme|plain] [--python python3.11] [--cases fresh torch_preinstalled]
"""
import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_results import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: install line -> the pip argument lists it runs, in order
INSTALL_LINES = {
    'readme': [['install', 'torch', 'torchvision', 'setuptools', 'wheel', 'cython', 'numpy'],
               ['install', '--no-build-isolation', 'basicsr==1.4.2', '.']],
    'plain': [['install', '.']],
}
TORCH_PINS = ['torch==2.14.1', 'torchvision==0.29.1']  # as .ci/run
TORCH_FETCH = re.compile(r'(?:Collecting torch(?:[<>=!~ ;\[(]|$)'
                         r'|(?:Processing|Downloading|Using cached) \S*\btorch-\d)')
BUILD_DEPS_START = re.compile(r'Running command pip subprocess to install (?:build|backend) dependencies')
INSTALLED_TORCH = re.compile(r'\btorch-\d')


def torch_collections(output):
    """(inside build isolation, outside) counts of torch fetched in pip's -v output: inside, the pip subprocesses
    that install build / backend dependencies (indented output, ending with their 'Successfully installed' line)
    that installed a torch; outside, 'Collecting torch' / 'Processing .../torch-*.whl' lines of the main resolve."""
    inside = outside = 0
    in_build = fetched = False
    for line in output.splitlines():
        if BUILD_DEPS_START.search(line):
            in_build, fetched = True, False
        elif in_build and line.strip().startswith('Successfully installed'):
            inside += int(fetched or bool(INSTALLED_TORCH.search(line)))
            in_build = False
        elif in_build:
            fetched = fetched or bool(TORCH_FETCH.search(line))
        elif not line.startswith(' ') and TORCH_FETCH.search(line):
            outside += 1
    return inside, outside


def _pip(venv, args, log=None):
    python = Path(venv, 'bin', 'python')
    start = time.perf_counter()
    proc = subprocess.run([str(python), '-m', 'pip', *args], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if log is not None:
        Path(log).write_text(proc.stdout + '\n--- stderr ---\n' + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f'pip {" ".join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    return seconds, proc.stdout + proc.stderr


def line_text(line):
    return ' && '.join('pip ' + ' '.join(args) for args in INSTALL_LINES[line])


def run_case(case, python, workdir, line):
    venv = Path(workdir, f'venv-{line}-{case}')
    subprocess.run([python, '-m', 'venv', str(venv)], check=True)
    result = {'case': case}
    if case == 'torch_preinstalled':
        seconds, _ = _pip(venv, ['install', '--no-cache-dir', '--quiet', *TORCH_PINS])
        result['torch_preinstall_s'] = round(seconds, 1)
    seconds, inside, outside = 0.0, 0, 0
    for step, args in enumerate(INSTALL_LINES[line]):
        log = Path(workdir, f'pip-{line}-{case}-{step}.log')
        step_seconds, output = _pip(venv, [args[0], '--no-cache-dir', '-v', *args[1:]], log)
        step_inside, step_outside = torch_collections(output)
        seconds, inside, outside = seconds + step_seconds, inside + step_inside, outside + step_outside
    versions = subprocess.run([str(venv / 'bin' / 'python'), '-c',
                               'import importlib.metadata as m; print(m.version("torch"), m.version("basicsr"))'],
                              capture_output=True, text=True).stdout.split()
    size = sum(f.stat().st_size for f in venv.rglob('*') if f.is_file() and not f.is_symlink())
    result.update({'install_s': round(seconds, 1), 'torch_collected_in_build_isolation': inside,
                   'torch_collected_for_runtime': outside, 'second_torch_for_basicsr_build': inside > 0,
                   'torch': versions[0] if versions else None, 'basicsr': versions[1] if len(versions) > 1 else None,
                   'venv_mb': round(size / 2**20), 'log': str(log)})
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--line', default='readme', choices=sorted(INSTALL_LINES),
                        help="readme: the README's install line; plain: pip install . alone")
    parser.add_argument('--python', default=sys.executable, help='interpreter to create the venvs with')
    parser.add_argument('--cases', nargs='+', default=['torch_preinstalled', 'fresh'],
                        choices=['torch_preinstalled', 'fresh'])
    parser.add_argument('--keep', action='store_true', help='keep the venvs and pip logs (printed folder)')
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix='install-bench-')
    load_before = tuple(round(v, 2) for v in os.getloadavg())
    results = []
    try:
        for case in args.cases:  # results are rewritten after each case: an interrupted run keeps what it measured
            results.append(run_case(case, args.python, workdir, args.line))
            report(results, load_before, args.line, args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(results, load_before, line, kept=False):
    """Write benchmarks/results/install_bench_<line>.json and .md for the cases measured so far."""
    data = {'install_line': f'{line_text(line)} (each pip run with --no-cache-dir -v)', 'cases': results,
            'platform': platform.platform(), 'cpus': os.cpu_count(), 'load_before': load_before,
            'load_after': tuple(round(v, 2) for v in os.getloadavg()),
            'pip_index': os.environ.get('PIP_INDEX_URL') or 'machine pip configuration', 'workdir_kept': kept}
    lines = [f'# Install line ({line}): `{line_text(line)}`, clean pip cache (`--no-cache-dir`), fresh venv', '',
             f'{platform.platform()}, {os.cpu_count()} CPUs, load {load_before} -> {data["load_after"]}; '
             "packages from this machine's pip configuration (local registry mirrors).", '',
             '| case | install (s) | torch collected in build isolation | torch collected for run time | '
             'second torch for basicsr\'s build | torch | basicsr | venv (MB) |', '|---|---|---|---|---|---|---|---|']
    for r in results:
        case = r['case'] + (f' (torch preinstall {r["torch_preinstall_s"]} s, not counted)'
                            if 'torch_preinstall_s' in r else '')
        lines.append(f'| {case} | {r["install_s"]} | {r["torch_collected_in_build_isolation"]} | '
                     f'{r["torch_collected_for_runtime"]} | {r["second_torch_for_basicsr_build"]} | {r["torch"]} | '
                     f'{r["basicsr"]} | {r["venv_mb"]} |')
    write_results(f'install_bench_{line}', data, lines)


if __name__ == '__main__':
    sys.exit(main())
