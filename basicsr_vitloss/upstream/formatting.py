"""BasicSR's code style for generated files: isort then yapf, configured by the tree's own setup.cfg.

BasicSR's repository configures flake8, yapf and isort (120 columns) in setup.cfg and runs them in its
pre-commit hooks; generated Python goes through the same isort and yapf so that the pull request
passes them. yapf and isort are needed only by this command (``pip install "basicsr-vitloss[upstream]"``).
"""
import configparser
import os
import tempfile

#: BasicSR's settings, verbatim from the setup.cfg of basicsr 1.4.2 (master 8d56e3a has the same), used when
#: a tree has none; tests/test_upstream checks them against the released file.
BASICSR_SETUP_CFG = """\
[flake8]
ignore =\x20
\tW503,
\tW504,
max-line-length = 120

[yapf]
based_on_style = pep8
column_limit = 120
blank_line_before_nested_class_or_def = true
split_before_expression_after_opening_paren = true

[isort]
line_length = 120
multi_line_output = 0
known_standard_library = pkg_resources,setuptools
known_first_party = basicsr
known_third_party = PIL,cv2,lmdb,numpy,pytest,requests,scipy,skimage,torch,torchvision,tqdm,yaml
no_lines_before = STDLIB,LOCALFOLDER
default_section = THIRDPARTY
"""


class FormatterMissing(ImportError):
    """yapf or isort is not installed."""


def _tools():
    try:
        import isort
        from yapf.yapflib.yapf_api import FormatCode
    except ImportError as error:
        raise FormatterMissing(f'basicsr-vitloss-upstream formats the files it writes with BasicSR\'s isort and '
                               f'yapf settings: pip install yapf isort (missing: {error.name}).') from error
    return isort, FormatCode


class Formatter:
    """Formats Python text as the tree's setup.cfg says (BasicSR's recorded settings when it has none)."""

    def __init__(self, setup_cfg=None):
        self.isort, self.format_code = _tools()
        self._tmp = None
        if setup_cfg is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='basicsr_style_')
            setup_cfg = os.path.join(self._tmp.name, 'setup.cfg')
            with open(setup_cfg, 'w', encoding='utf-8') as f:
                f.write(BASICSR_SETUP_CFG)
        self.setup_cfg = setup_cfg
        self.isort_config = self.isort.Config(settings_path=os.path.dirname(setup_cfg))

    def __call__(self, text):
        text = self.isort.code(text, config=self.isort_config)
        text, _ = self.format_code(text, style_config=self.setup_cfg)
        return text


def flake8_settings(setup_cfg):
    """``(max line length, ignored codes)`` from a setup.cfg's [flake8] section."""
    parser = configparser.ConfigParser()
    if setup_cfg is None:
        parser.read_string(BASICSR_SETUP_CFG)
    else:
        parser.read(setup_cfg, encoding='utf-8')
    section = parser['flake8'] if parser.has_section('flake8') else {}
    ignore = [c.strip() for line in section.get('ignore', '').splitlines() for c in line.split(',')]
    return int(section.get('max-line-length', 79)), [c for c in ignore if c and not c.startswith('#')]
