"""The paper's evaluation report (PSNR, SSIM, MAE, LPIPS, NIQE per image; means per category; markdown
tables as in the paper's Tabs. I-III), run as ``basicsr-vitloss-evaluate`` or ``python -m
basicsr_vitloss.evaluation``; see docs/evaluation.md and basicsr_vitloss.evaluation.cli.

Modules: pairing (restored <-> ground truth), images (reading, bit depth), categories (--labels),
metrics (one pair's values), results (per_image.csv cache, results.json / results.md, protocol),
tables (markdown, formats, marks), restore (``run --opt``), merge, cli."""
from basicsr_vitloss.evaluation.categories import COMBINED, load_categories
from basicsr_vitloss.evaluation.cli import build_parser, command_run, main
from basicsr_vitloss.evaluation.errors import EvaluateError
from basicsr_vitloss.evaluation.images import bit_depth, bit_depth_warning, read_bgr, set_bit_depth
from basicsr_vitloss.evaluation.merge import command_merge
from basicsr_vitloss.evaluation.metrics import METRICS, SSIM_VARIANTS, compute_metrics, default_ssim
from basicsr_vitloss.evaluation.pairing import match_folders, pair_files, scene_candidates, stems_match
from basicsr_vitloss.evaluation.restore import load_options, restore
from basicsr_vitloss.evaluation.results import (build_protocol, evaluate_pairs, group_means, load_result,
                                                protocol_differences, write_results)
from basicsr_vitloss.evaluation.tables import format_value, markdown_table, marks

__all__ = ['COMBINED', 'METRICS', 'SSIM_VARIANTS', 'EvaluateError', 'bit_depth', 'bit_depth_warning', 'build_parser',
           'build_protocol', 'command_merge', 'command_run', 'compute_metrics', 'default_ssim', 'evaluate_pairs',
           'format_value', 'group_means', 'load_categories', 'load_options', 'load_result', 'main', 'markdown_table',
           'marks', 'match_folders', 'pair_files', 'protocol_differences', 'read_bgr', 'restore', 'scene_candidates',
           'set_bit_depth', 'stems_match', 'write_results']
