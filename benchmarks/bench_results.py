"""Where and how benchmark scripts record results: benchmarks/results/<stem>.json and <stem>.md."""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'


def write_results(stem, data, markdown_lines):
    """Write ``data`` as JSON and the markdown lines next to it, and print the markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'{stem}.json').write_text(json.dumps(data, indent=2) + '\n')
    (RESULTS / f'{stem}.md').write_text('\n'.join(markdown_lines) + '\n')
    print('\n'.join(markdown_lines))
