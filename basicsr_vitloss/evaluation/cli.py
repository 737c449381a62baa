"""The paper's evaluation report: PSNR, SSIM, MAE, LPIPS and NIQE per image, means per category
(DPDD: Indoor / Outdoor / Combined), markdown tables in the layout of the paper's Tabs. I-III.

The command is ``basicsr-vitloss-evaluate`` (installed with the package); ``python -m
basicsr_vitloss.evaluation`` and, in a clone, ``python scripts/evaluate.py`` run the same ``main``.

Evaluate restored images against the ground truth::

    basicsr-vitloss-evaluate run --restored DIR --gt DIR --out DIR [--labels DIR_OR_CSV]
        [--method NAME] [--loss NAME] [--dataset NAME] [--lpips-weights DIR]
        [--metrics psnr ssim mae lpips niqe] [--pairing auto|name|position] [--ssim float|matlab]

Restore first (a network from BasicSR options and weights), then evaluate::

    basicsr-vitloss-evaluate run --opt OPTIONS.yml --weights net_g.pth --out DIR
        [--dataset-key test_1] [--tile 512 --tile-overlap 32] [options as above]

(whole images unless --tile is given: the official DPDD tests run whole images, and tiles change
every output pixel of networks whose attention spans the image, such as Restormer)

Merge several runs into one comparison table::

    basicsr-vitloss-evaluate merge OUT1/results.json OUT2/results.json ... --out table.md
        [--json merged.json] [--force] [--paper table1|table2|table3]

Pairing (``--pairing auto|name|position``, default auto). Restored images are named after their
*sources* (BasicSR's ``python -m basicsr.test`` writes ``<source>_<suffix>.png``; ``run --opt`` writes
``<source>.png``), ground-truth images after their *targets*, and the DPDD release names every target
by its own capture number (source ``1P0A0917``, target ``1P0A0916``). A restored name's *scene* is its
stem or a prefix of it ending before an ``_`` (``1P0A0917_DPDNet`` -> ``1P0A0917_DPDNet``, ``1P0A0917``).
GoPro stems are compared in one spelling (``basicsr_vitloss.data.gopro_files.canonical_stem``): a scene
``GOPRnnnn_nn_nn`` and its 6-digit frame joined by ``-`` (the community's names) or ``_``
(earlier prepare_gopro.py) are one name, on either side.

* ``name``: a restored image pairs with the gt image whose stem is one of its scene candidates (the
  restored stem equals the gt stem, optionally followed by ``_<anything>``): GoPro, HIDE, any set
  whose targets carry their sources' names. Two restored images of one gt image are refused.
* ``position``: both folders natural-sorted (``img2`` before ``img10``; a ``_<suffix>`` shared by all
  restored names is ignored for sorting) and paired by position; the counts must be equal and every
  pair must be the same capture by ``basicsr_vitloss.data.dpdd_files.same_capture`` (one of the
  restored name's scene candidates is the gt stem, or has its prefix and a trailing capture number at
  most ``MAX_CAPTURE_OFFSET`` away): DPDD. A GoPro frame is only its own capture.
* ``auto``: by name when every gt image pairs by name with one restored image (equal counts), else by
  checked position.

Different counts, pairs of different captures, names that do not pair or two gt files of one name stop
the run (status 2), naming the files; nothing is paired by an unchecked guess. ``run --opt`` pairs its
restored images (named after the dataset's source scenes) with the dataset's gt files by the same rule.

Categories (``--labels``): a folder holding ``indoor_labels.npy`` and ``outdoor_labels.npy`` (any
``<category>_labels.npy``; 1-based indices into the natural-sorted gt list, as distributed with the
DPDD test set), or a CSV file of ``name,category`` rows (name = gt stem; a header row
``name,category`` is optional). Groups: each category, then Combined (all images). Without labels:
Combined only, and the report says so.

SSIM (``--ssim float|matlab``): ``float`` = scikit-image's structural_similarity on RGB in [0, 1]
(7x7 uniform window, per-channel mean; the DPDD evaluation, default for every other dataset);
``matlab`` = MATLAB's ``ssim`` on the 8-bit RGB images, a 3-D SSIM (11x11x11 Gaussian, sigma 1.5;
``calculate_ssim_matlab``), as the GoPro / HIDE numbers of Tab. III are computed: the default when
--dataset (or, with --opt, the test dataset's name) is GoPro or HIDE. 16-bit images are rounded to
8 bits for it.

NIQE (``--niqe-channel y|gray``): BasicSR's ``calculate_niqe`` on the 8-bit restored image, on one channel:
``y`` (the default) = the Y of MATLAB's YCbCr (``convert_to='y'``, values 16-235), BasicSR's default and the
numbers reported here; ``gray`` = 0.299 R + 0.587 G + 0.114 B at full range (``convert_to='gray'``), the
channel pyiqa's NIQE scores (Y of YIQ; also MATLAB rgb2gray's luma). On real photographs the two differ by
up to a few tenths (benchmarks/results/niqe_channel_bench.md); the channel is part of the protocol.

Outputs of ``run`` (in --out):
    per_image.csv   name, restored, gt, category, psnr, ssim, mae, lpips, niqe, ssim_variant, niqe_variant,
                    lpips_variant, then the
                    cache key restored_bytes, restored_mtime_ns, gt_bytes, gt_mtime_ns. Values at full
                    precision; an empty cell = not computed; ``nan`` = undefined (NIQE of an image
                    with fewer than two 96x96 blocks). It is also the cache: a rerun reuses every value whose
                    files' names, sizes and mtimes are unchanged (SSIM, NIQE, LPIPS: and whose variant is
                    the one asked for), and computes only what is missing.
    results.json    method, loss, dataset, n_images, counts (per group), groups (per group: the
                    mean of each metric; undefined values left out; null when none), labelled /
                    note, settings (how each metric was computed, in words) and ``protocol``: what
                    decides whether two runs' numbers are comparable (see ``build_protocol``):
                    pairing (option and rule used), bit_depth (restored / gt, from the files),
                    colour_space, crop_border, inference (whole / tiled with tile and overlap /
                    unknown for given restored images), metrics (each metric's exact variant), lpips
                    (net, model version, package version).
    results.md      one row (method, loss); columns grouped by category, for each group
                    PSNR↑ SSIM↑ MAE↓ LPIPS↓ NIQE↓; notes (e.g. a bit-depth warning) and the protocol.
    restored/       (with --opt) the network's outputs as 16-bit PNGs, <source scene>.png, and
                    inference.json (options, weights, tiling); existing files are kept (resumable)
                    when inference.json matches, else the run stops rather than mix two settings.
                    An output holding NaN or inf is not saved: the run stops (status 2) naming it.

A warning (stderr and the report's notes) is given when restored and gt bit depths differ, e.g.
8-bit results against DPDD's 16-bit targets: the metrics then include the results' 8-bit rounding
(a perfect 8-bit result scores about 58.9 dB PSNR, not infinity); save 16-bit results instead.

Number formats: PSNR 2 decimals (dB), SSIM, MAE and LPIPS 4 decimals (as the paper's tables), NIQE 3
(Tabs. I, IV, V; Tabs. II, III print 4); missing cells '-'. In the merged table, each column's best
value is **bold** and the second best <u>underlined</u> (PSNR, SSIM: higher is better; MAE, LPIPS,
NIQE: lower is better). Marks are decided on the unrounded values: only exactly equal values share a
mark, so two values that print alike can carry different marks; a column with one distinct value
has bold marks only. Columns are (dataset, group) x metric: with a single dataset the group names
head the columns (Indoor / Outdoor / Combined, Tabs. I/II); runs of several datasets without
categories (GoPro, HIDE: Tab. III) are headed by the dataset name. Rows are (method, loss) in input
order; one row may gather runs on several datasets.

``merge`` compares the protocols of the runs of each dataset (every field but pairing, which a
checked pairing does not change; a metric's variant only where both runs computed it). When they
differ it stops (status 2) naming the fields and files; a results.json without a protocol (an older
evaluate.py) counts as different. ``--force`` merges anyway and lists the differences under the table.

``merge --paper table1|table2|table3`` adds a second table: for each loss row whose network also has a
row with loss ``baseline``, its change over that row (Combined group) beside the paper's change for the
same network, loss, dataset and metric (``--method`` names as the paper's: DPDNet, Uformer, Restormer,
NAFNet, MPRNet; ``--loss`` baseline / vgg / local / global; ``--dataset`` DPDD, GoPro, HIDE). Absolute
numbers depend on the training budget; this change is what the paper claims.

Bad inputs print ``evaluate: error: ...`` to stderr and exit with status 2.
"""
import argparse
import os
import sys

from basicsr_vitloss.data.dpdd_files import PAIRINGS
from basicsr_vitloss.evaluation.categories import load_categories
from basicsr_vitloss.evaluation.errors import EvaluateError, warn
from basicsr_vitloss.evaluation.images import bit_depth_warning, set_bit_depth
from basicsr_vitloss.evaluation.merge import command_merge
from basicsr_vitloss.evaluation.metrics import LPIPS_NET, LPIPS_NETS, METRICS, NIQE_CHANNELS, SSIM_VARIANTS, TITLES, \
    check_niqe_channel, default_ssim, matlab_ssim_function
from basicsr_vitloss.evaluation.pairing import match_folders, stem
from basicsr_vitloss.evaluation.restore import restore
from basicsr_vitloss.evaluation.results import build_protocol, evaluate_pairs, write_results
from basicsr_vitloss.evaluation.tables import format_value


def command_run(args):
    metrics = tuple(m for m in METRICS if m in args.metrics)
    check_niqe_channel(args.niqe_channel)
    args.pairing_given = args.pairing is not None
    args.pairing = args.pairing or 'auto'
    if args.opt:
        if args.restored or args.gt:
            raise EvaluateError('give either --opt and --weights (restore, then evaluate) or --restored and --gt, '
                                'not both.')
        if not args.weights:
            raise EvaluateError('--opt needs --weights (the network weights, e.g. net_g_latest.pth).')
        os.makedirs(args.out, exist_ok=True)
        pairs, used, extra, inference = restore(args)
    else:
        if not (args.restored and args.gt):
            raise EvaluateError('run needs --restored DIR and --gt DIR (or --opt OPTIONS.yml --weights FILE).')
        if args.weights or args.dataset_key or args.tile:
            raise EvaluateError('--weights, --dataset-key and --tile go with --opt.')
        pairs, used = match_folders(args.restored, args.gt, args.pairing)
        extra, inference = {}, {'mode': 'unknown (given restored images)'}
        args.method = args.method or os.path.basename(os.path.normpath(args.restored))
        os.makedirs(args.out, exist_ok=True)
    args.ssim = args.ssim or default_ssim(args.dataset)
    if 'ssim' in metrics and args.ssim == 'matlab':
        matlab_ssim_function()  # fails early (status 2) when the metric is missing
    gt_names = [stem(g) for _, g in pairs]
    categories, assignment = load_categories(args.labels, gt_names)
    depths = (set_bit_depth([r for r, _ in pairs]), set_bit_depth([g for _, g in pairs]))
    protocol = build_protocol(metrics, args.pairing, used, depths, inference, args.ssim, args.niqe_channel,
                              args.lpips_net)
    notes = []
    warning = bit_depth_warning(depths)
    if warning:
        warn(warning)
        notes.append(f'Warning: {warning}')
    rows, computed, skipped = evaluate_pairs(pairs, args.out, metrics, assignment, args.lpips_weights, args.ssim,
                                             args.niqe_channel, args.lpips_net)
    result = write_results(args.out, args, metrics, categories, rows, notes, extra, protocol)
    print(f'evaluated {len(rows)} images (paired by {used}, SSIM {args.ssim}): computed {computed}, skipped '
          f'{skipped} (cached in {os.path.join(args.out, "per_image.csv")})')
    for group, values in result['groups'].items():
        print(f'{group} ({result["counts"][group]}): '
              + ', '.join(f'{TITLES[m]} {format_value(values[m], m)}' for m in metrics))
    print(f'wrote {os.path.join(args.out, "results.json")} and {os.path.join(args.out, "results.md")}')
    return 0

def build_parser():
    parser = argparse.ArgumentParser(prog='evaluate', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('run', help='evaluate restored images (optionally restoring them first)')
    run.add_argument('--restored', help='folder of restored images')
    run.add_argument('--gt', help='folder of ground-truth images')
    run.add_argument('--opt', help='BasicSR options (network_g, datasets): restore first')
    run.add_argument('--weights',
                     help='network weights for --opt (a BasicSR checkpoint: params_ema, else params; a release '
                          'wrapping state_dict or model; or a bare state dict; .pth or .safetensors)')
    run.add_argument('--dataset-key', help='datasets entry for --opt (default: first whose phase is not train)')
    run.add_argument('--tile', type=int, default=0,
                     help='--opt inference in tiles of this size (default 0: whole images, as the official DPDD '
                          'tests; tiles change every output pixel of networks whose attention spans the image, '
                          'e.g. Restormer)')
    run.add_argument('--tile-overlap', type=int, default=32, help='tile overlap in pixels (with --tile)')
    run.add_argument('--pairing', choices=PAIRINGS, default=None,
                     help='how restored images pair with the ground truth: name (restored stem = gt stem '
                          '[+ _anything]), position (natural-sorted, each pair checked to be the same capture: '
                          "DPDD's targets carry their own capture numbers) or auto (name when every image "
                          'pairs by name, else position; the default)')
    run.add_argument('--ssim', choices=SSIM_VARIANTS, default=None,
                     help="float: scikit-image SSIM on [0, 1] (DPDD); matlab: MATLAB's 3-D SSIM on the 8-bit "
                          'images (GoPro / HIDE, Tab. III). Default: matlab when the dataset is GoPro or HIDE, '
                          'else float')
    run.add_argument('--niqe-channel', choices=NIQE_CHANNELS, default='y',
                     help="the channel NIQE scores: y (MATLAB YCbCr luma, BasicSR calculate_niqe's default; the "
                          "default) or gray (0.299 R + 0.587 G + 0.114 B, as pyiqa's NIQE; MATLAB rgb2gray's luma). "
                          'Recorded in the protocol: merge refuses to mix them')
    run.add_argument('--out', required=True, help='output folder (per_image.csv, results.json, results.md)')
    run.add_argument('--labels', help='folder with indoor_labels.npy / outdoor_labels.npy, or a name,category CSV')
    run.add_argument('--method', help='method name (default: options name or restored folder name)')
    run.add_argument('--loss', default='', help='loss name (e.g. L1, L1+ViT)')
    run.add_argument('--dataset', help='dataset name (e.g. DPDD, GoPro, HIDE; GoPro and HIDE default to --ssim matlab)')
    run.add_argument('--lpips-weights', help="folder holding torchvision's backbone weights (alexnet-owt-7be5be79.pth; "
                                             'vgg16-397923af.pth for --lpips-net vgg)')
    run.add_argument('--lpips-net', choices=LPIPS_NETS, default=LPIPS_NET,
                     help="LPIPS backbone: alex (the default: the paper's LPIPS numbers, as Restormer's and the lpips "
                          "authors' evaluations) or vgg (the network the paper's text names for its perceptual "
                          'loss). Recorded in the protocol: merge refuses to mix them')
    run.add_argument('--metrics', nargs='+', choices=METRICS, default=list(METRICS), help='metrics to compute')
    merge = commands.add_parser('merge', help='merge results.json files into one comparison table')
    merge.add_argument('results', nargs='+', help='results.json files of evaluate.py run')
    merge.add_argument('--out', required=True, help='markdown table to write')
    merge.add_argument('--json', help='also write the merged table as JSON')
    merge.add_argument('--force', action='store_true',
                       help='merge runs whose protocols differ (the table lists the differences)')
    merge.add_argument('--paper', choices=('table1', 'table2', 'table3'),
                       help="add a table of each loss row's change over its network's baseline row (loss "
                            "'baseline') beside the paper's change in that table (Combined group)")
    return parser


def main(argv=None):
    """Entry point; returns the exit status (0, or 2 for bad inputs)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code
    try:
        return command_run(args) if args.command == 'run' else command_merge(args)
    except (EvaluateError, OSError, ValueError) as error:
        print(f'evaluate: error: {error}', file=sys.stderr)
        return 2
