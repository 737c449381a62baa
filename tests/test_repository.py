"""The repository as a whole: style, size of the README, docs links."""
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def _ruff():
    found = shutil.which('ruff') or shutil.which('ruff', path=str(REPO.parent))
    return [found] if found else [sys.executable, '-m', 'ruff']


def test_code_is_ruff_clean():
    """pyproject.toml's [tool.ruff] (BasicSR's line length 120, pycodestyle + pyflakes) finds nothing."""
    proc = subprocess.run([*_ruff(), 'check', '--no-cache', '--output-format', 'concise', '.'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_readme_is_a_hub_of_at_most_15_kb():
    assert len((REPO / 'README.md').read_bytes()) <= 15 * 1024


@pytest.mark.parametrize('page', sorted(p.relative_to(REPO).as_posix() for p in
                                        [REPO / 'README.md', REPO / 'benchmarks' / 'README.md',
                                         *(REPO / 'docs').glob('*.md')]))
def test_relative_links_point_at_files(page):
    """Every relative Markdown link of the README and the docs names a file or folder that exists."""
    path = REPO / page
    missing = []
    for target in re.findall(r'\]\(([^)\s]+)\)', path.read_text(encoding='utf-8')):
        if re.match(r'[a-z]+:', target) or target.startswith('#'):
            continue
        if not (path.parent / target.split('#')[0]).exists():
            missing.append(target)
    assert not missing, f'{page}: links to missing files: {missing}'


def test_licence_file_is_the_licence_setup_declares():
    """LICENSE holds the full text of the licence setup.py declares, and the docs link to it."""
    declared = re.search(r"license='([^']+)'", (REPO / 'setup.py').read_text()).group(1)
    assert declared == 'Apache-2.0'
    text = (REPO / 'LICENSE').read_text(encoding='utf-8')
    assert text.lstrip().startswith('Apache License\n                           Version 2.0, January 2004')
    assert 'END OF TERMS AND CONDITIONS' in text and len(text) > 10000  # the full text, not a notice
    assert '(LICENSE)' in (REPO / 'README.md').read_text()
    assert '../LICENSE' in (REPO / 'docs' / 'licences.md').read_text()
