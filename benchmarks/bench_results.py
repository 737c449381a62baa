"""Where and how benchmark scripts record results: benchmarks/results/<stem>.json and <stem>.md."""
import json
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'


def write_results(stem, data, markdown_lines):
    """Write ``data`` as JSON and the markdown lines next to it, and print the markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'{stem}.json').write_text(json.dumps(data, indent=2) + '\n')
    (RESULTS / f'{stem}.md').write_text('\n'.join(markdown_lines) + '\n')
    print('\n'.join(markdown_lines))


def median_seconds(function, repeats, warmup=0):
    """Median wall time of ``repeats`` calls of ``function`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
