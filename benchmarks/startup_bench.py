"""What the installed startup hook costs: interpreter start, `import basicsr`, and every other import.

Medians of repeated fresh interpreters, with ratios against a baseline measured in the same run:
- interpreter start (`python -c pass`): the hook module's own import time from `-X importtime`,
  as a fraction of the whole start;
- `import basicsr`: with the plugin activated by the hook vs. with the hook disabled
  (BASICSR_VITLOSS_DISABLE_HOOK=1, module aliases still active so that basicsr imports at all);
- the import finder's per-lookup overhead for modules other than basicsr.

Writes benchmarks/results/startup.md and startup.json.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'


def _run(code, env_extra=None, flags=()):
    env = dict(os.environ)
    env.pop('BASICSR_VITLOSS_DISABLE_HOOK', None)
    env.update(env_extra or {})
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *flags, '-c', code], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stderr


def hook_import_us(stderr):
    """Cumulative import time of basicsr_vitloss_startup in microseconds, from -X importtime."""
    match = re.search(r'import time:\s+\d+ \|\s+(\d+) \| \s*basicsr_vitloss_startup\s*$', stderr, re.M)
    if match is None:
        raise RuntimeError('basicsr_vitloss_startup was not imported at start: is basicsr-vitloss installed?')
    return int(match.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=15)
    args = parser.parse_args()

    starts, hook_us = [], []
    for _ in range(args.repeats):
        seconds, stderr = _run('pass', flags=('-X', 'importtime'))
        starts.append(seconds)
        hook_us.append(hook_import_us(stderr))
    with_plugin = [_run('import basicsr')[0] for _ in range(args.repeats)]
    without_plugin = [_run('import basicsr', {'BASICSR_VITLOSS_DISABLE_HOOK': '1'})[0] for _ in range(args.repeats)]

    import basicsr_vitloss_startup as startup
    hook = startup.BasicSRImportHook()
    number = 200000
    lookup_ns = min(timeit.repeat(lambda: hook.find_spec('numpy.linalg'), number=number, repeat=5)) / number * 1e9

    result = {
        'python': platform.python_version(), 'machine': platform.machine(), 'repeats': args.repeats,
        'interpreter_start_ms': statistics.median(starts) * 1e3,
        'hook_import_us': statistics.median(hook_us),
        'hook_share_of_start': statistics.median(hook_us) / 1e6 / statistics.median(starts),
        'import_basicsr_with_plugin_s': statistics.median(with_plugin),
        'import_basicsr_hook_disabled_s': statistics.median(without_plugin),
        'plugin_activation_ratio': statistics.median(with_plugin) / statistics.median(without_plugin),
        'finder_lookup_ns': lookup_ns,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'startup.json').write_text(json.dumps(result, indent=2) + '\n')
    table = '\n'.join([
        '# Startup hook cost', '',
        f'Python {result["python"]} ({result["machine"]}), median of {args.repeats} fresh interpreters each; '
        '`python benchmarks/startup_bench.py`.', '',
        '| measurement | value |', '|---|---|',
        f'| interpreter start, `python -c pass` | {result["interpreter_start_ms"]:.1f} ms |',
        f'| of which: importing the hook (`-X importtime`) | {result["hook_import_us"]:.0f} us '
        f'({100 * result["hook_share_of_start"]:.1f} % of start) |',
        f'| `import basicsr`, hook disabled (baseline) | {result["import_basicsr_hook_disabled_s"]:.2f} s |',
        f'| `import basicsr`, plugin activated by the hook | {result["import_basicsr_with_plugin_s"]:.2f} s '
        f'(x{result["plugin_activation_ratio"]:.2f}) |',
        f'| finder lookup for any other module | {result["finder_lookup_ns"]:.0f} ns |', ''])
    (RESULTS / 'startup.md').write_text(table)
    print(table)


if __name__ == '__main__':
    main()
