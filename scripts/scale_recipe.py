"""Fit a training options file to the GPUs you have, keeping the recipe's effective batch.

    python scripts/scale_recipe.py --opt X --gpus G [--micro-batch M] [--keep effective|per-gpu] \\
        [--recipe-gpus N] --out Y [--force]

BasicSR's effective batch is ``batch_size_per_gpu`` x the number of GPU processes. The options files of
this repository record the recipe's own GPU count as the top-level key ``recipe_gpus`` (BasicSR ignores
it), so the effective batch of the official recipe is ``batch_size_per_gpu x recipe_gpus``.

``--keep effective`` (default) keeps the recipe's effective batch, learning rate and iterations: the new
``batch_size_per_gpu`` is effective / G (an error when it does not divide); for progressive schedules
(``datasets:train: mini_batch_sizes`` with ``iters``, ``gt_sizes``: Restormer) each stage's batch is
scaled the same way. ``--micro-batch M`` then sets ``train: micro_batches`` (one entry per stage for
progressive schedules) to the smallest divisor N of the per-GPU batch with batch / N <= M: each loaded
batch is split into N chunks of at most M images with accumulated gradients and one optimizer step, so
the effective batch does not change, only the memory a chunk needs.

``--keep per-gpu`` keeps the per-GPU values and only sets ``num_gpu: G``: the effective batch changes
(the header says by how much), learning rate and iterations stay those tuned for the recipe's batch.

The output is a copy of the YAML with a header that lists every change (old -> new, why) above the
original header; ``recipe_gpus`` becomes G, so the file keeps meaning "effective batch = batch per GPU x
recipe_gpus" and can be scaled again. Errors name the key and value and exit with status 2.
"""
import argparse
import os
import shlex
import sys

import yaml

KEEPS = ('effective', 'per-gpu')


class RecipeError(ValueError):
    """A bad option or argument: the message names the key and value."""


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecipeError(f'{what} must be a positive integer, got {value!r}.')
    return value


def _divisors(number):
    return [d for d in range(1, number + 1) if number % d == 0]


def micro_batches_for(batch, micro_batch):
    """The smallest N dividing ``batch`` with ``batch / N <= micro_batch`` (chunks of at most micro_batch)."""
    for count in _divisors(batch):
        if batch // count <= micro_batch:
            return count
    raise RecipeError(f'no number of micro-batches splits batch {batch} into chunks of at most {micro_batch} '
                      'images; --micro-batch must be at least 1.')


def _fmt(value):
    if value is None:
        return 'absent'
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=10 ** 6).strip()
    return str(value)


def scale(opt, gpus, keep='effective', micro_batch=None, recipe_gpus=None):
    """Scale options ``opt`` (a dict, changed in place) to ``gpus`` GPU processes.

    Returns ``(opt, changes, notes)``: changes are ``(key path, old, new, why)``, notes are lines for the
    header (what stays unchanged, what changed for the effective batch). Raises RecipeError."""
    gpus = _positive_int(gpus, '--gpus')
    if keep not in KEEPS:
        raise RecipeError(f'--keep must be one of {", ".join(KEEPS)}, got {keep!r}.')
    if micro_batch is not None:
        _positive_int(micro_batch, '--micro-batch')
    if not isinstance(opt, dict):
        raise RecipeError(f'the options must be a YAML mapping, got {type(opt).__name__}.')
    changes, notes = [], []
    in_file = opt.get('recipe_gpus')
    if recipe_gpus is None:
        if in_file is None:
            raise RecipeError('the options have no top-level key recipe_gpus (the number of GPU processes the '
                              "recipe's batch sizes assume: effective batch = batch_size_per_gpu x recipe_gpus); "
                              'pass --recipe-gpus N.')
        recipe = _positive_int(in_file, 'recipe_gpus')
    else:
        recipe = _positive_int(recipe_gpus, '--recipe-gpus')
        if in_file is not None and in_file != recipe:
            notes.append(f'--recipe-gpus {recipe} replaced the file\'s recipe_gpus: {in_file}.')
    train_data = (opt.get('datasets') or {}).get('train')
    if not isinstance(train_data, dict):
        raise RecipeError('the options have no datasets:train section: only training options can be scaled.')
    batch = _positive_int(train_data.get('batch_size_per_gpu'), 'datasets:train:batch_size_per_gpu')
    minis = train_data.get('mini_batch_sizes')
    progressive = minis is not None
    if progressive:
        if not isinstance(minis, list) or not minis:
            raise RecipeError(f'datasets:train:mini_batch_sizes must be a list with one batch per stage, '
                              f'got {minis!r}.')
        for index, mini in enumerate(minis):
            _positive_int(mini, f'datasets:train:mini_batch_sizes[{index}]')
    train = opt.get('train')
    if not isinstance(train, dict):
        raise RecipeError('the options have no train section.')

    # batch sizes per GPU
    new_batch, new_minis = batch, minis
    if keep == 'effective':
        effective = batch * recipe
        wanted = [('datasets:train:batch_size_per_gpu', batch)]
        if progressive:
            wanted += [(f'datasets:train:mini_batch_sizes[{i}] (stage {i + 1})', m) for i, m in enumerate(minis)]
        for key, per_gpu in wanted:
            total = per_gpu * recipe
            if total % gpus:
                valid = _divisors(batch * recipe)
                for _, other in wanted:
                    valid = [g for g in valid if other * recipe % g == 0]
                raise RecipeError(f'{key}: the recipe\'s effective batch {per_gpu} x {recipe} GPUs = {total} does not '
                                  f'split evenly over {gpus} GPUs; valid --gpus: {", ".join(map(str, valid))} '
                                  '(or --keep per-gpu to change the effective batch).')
        new_batch = effective // gpus
        why = f'the recipe\'s effective batch {batch} x {recipe} GPUs = {effective} kept on {gpus} GPU(s)'
        changes.append(('datasets:train:batch_size_per_gpu', batch, new_batch, why))
        if progressive:
            new_minis = [m * recipe // gpus for m in minis]
            changes.append(('datasets:train:mini_batch_sizes', minis, new_minis,
                            f'each stage\'s effective batch {[m * recipe for m in minis]} (x {recipe} GPUs) kept on '
                            f'{gpus} GPU(s), stage by stage'))
        notes.append(f'Effective batch unchanged: {new_batch} x {gpus} = {effective}'
                     + (f'; per stage {[m * gpus for m in new_minis]}' if progressive else '') + '.')
        unchanged = []
        lr = (train.get('optim_g') or {}).get('lr')
        if lr is not None:
            unchanged.append(f'train:optim_g:lr {lr}')
        if train.get('total_iter') is not None:
            unchanged.append(f'train:total_iter {train["total_iter"]}')
        if progressive and train_data.get('iters') is not None:
            unchanged.append(f'datasets:train:iters {_fmt(train_data["iters"])}')
        if progressive and train_data.get('gt_sizes') is not None:
            unchanged.append(f'datasets:train:gt_sizes {_fmt(train_data["gt_sizes"])}')
        if unchanged:
            notes.append('Unchanged, as the recipe (same effective batch): ' + ', '.join(unchanged) + '.')
    else:
        per_gpu = minis if progressive else batch
        total = (lambda n: _fmt([m * n for m in minis])) if progressive else (lambda n: str(batch * n))
        what = 'per stage ' if progressive else ''
        notes.append(f'The effective batch CHANGES ({what}batch per GPU x GPUs): {_fmt(per_gpu)} x {recipe} = '
                     f'{total(recipe)} -> {_fmt(per_gpu)} x {gpus} = {total(gpus)}; batch_size_per_gpu'
                     f'{" and mini_batch_sizes" if progressive else ""} kept; learning rate and iterations are still '
                     'those tuned for the recipe\'s batch.')
    train_data['batch_size_per_gpu'] = new_batch
    if progressive:
        train_data['mini_batch_sizes'] = new_minis

    # micro-batches: each loaded (per-stage) batch split into equal chunks, one optimizer step
    stage_batches = new_minis if progressive else [new_batch]
    current = train.get('micro_batches')
    if micro_batch is not None:
        counts = [micro_batches_for(b, micro_batch) for b in stage_batches]
        value = counts if progressive else counts[0]
        if current is None and all(c == 1 for c in counts):
            notes.append(f'--micro-batch {micro_batch}: every per-GPU batch already fits ({_fmt(stage_batches)}); '
                         'no train:micro_batches needed.')
        elif value != current:
            chunks = [b // c for b, c in zip(stage_batches, counts)]
            train['micro_batches'] = value
            changes.append(('train:micro_batches', current, value,
                            f'each per-GPU batch {_fmt(stage_batches) if progressive else new_batch} split into '
                            f'chunks of {_fmt(chunks) if progressive else chunks[0]} images (at most {micro_batch}) '
                            'with accumulated gradients and one optimizer step: the effective batch is unchanged'))
    elif current is not None:
        counts = current if isinstance(current, list) else [current] * len(stage_batches)
        if len(counts) != len(stage_batches) or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 1 or b % c for b, c in zip(stage_batches, counts)):
            raise RecipeError(f'train:micro_batches {_fmt(current)} does not divide the new per-GPU batch '
                              f'{_fmt(stage_batches)}; pass --micro-batch M to choose it again.')
        notes.append(f'train:micro_batches {_fmt(current)} kept: '
                     f'it divides the new per-GPU batch {_fmt(stage_batches)}.')

    changes.insert(0, ('num_gpu', opt.get('num_gpu'), gpus, 'the GPUs this run uses'))
    opt['num_gpu'] = gpus
    changes.insert(1, ('recipe_gpus', in_file, gpus,
                       f'the GPU processes this file\'s batch sizes assume (the recipe\'s: {recipe}), so '
                       'effective batch = batch_size_per_gpu x recipe_gpus still holds'))
    if 'recipe_gpus' in opt:
        opt['recipe_gpus'] = gpus
    else:  # right after num_gpu, as the generated files have it
        items = list(opt.items())
        at = [k for k, _ in items].index('num_gpu') + 1
        opt.clear()
        opt.update(items[:at] + [('recipe_gpus', gpus)] + items[at:])
    return opt, changes, notes


def split_header(text):
    """(leading comment lines, the rest) of an options file."""
    lines = text.splitlines(keepends=True)
    count = 0
    while count < len(lines) and (lines[count].startswith('#') or not lines[count].strip()):
        count += 1
    return ''.join(lines[:count]), ''.join(lines[count:])


def header(source, gpus, keep, changes, notes, command, out):
    lines = [f'# Scaled by scripts/scale_recipe.py from {source} to {gpus} GPU(s), keeping the '
             + ('effective batch.' if keep == 'effective' else 'per-GPU batch (the effective batch changes).'),
             f'# Command: {command}', '# Changes (old -> new: why):']
    lines += [f'#   {key}: {_fmt(old)} -> {_fmt(new)}: {why}' for key, old, new, why in changes]
    lines += [f'# {note}' for note in notes]
    if gpus > 1:
        lines.append(f'# Train: torchrun --nproc_per_node={gpus} -m basicsr.train -opt {out} --launcher pytorch '
                     '(one process per GPU, each with batch_size_per_gpu).')
    else:
        lines.append(f'# Train: python -m basicsr.train -opt {out}')
    lines.append('# The original header follows; its commands name the original file.')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 4)[-1])
    parser.add_argument('--opt', required=True, help='training options file (YAML) to scale')
    parser.add_argument('--gpus', required=True, type=int, help='number of GPU processes you train with')
    parser.add_argument('--micro-batch', type=int, help='at most this many images per forward / backward pass '
                        '(sets train: micro_batches)')
    parser.add_argument('--keep', choices=KEEPS, default='effective',
                        help='effective (default): keep the effective batch; per-gpu: keep batch_size_per_gpu')
    parser.add_argument('--recipe-gpus', type=int, help="the recipe's GPU processes, where the file has no recipe_gpus")
    parser.add_argument('--out', required=True, help='options file to write')
    parser.add_argument('--force', action='store_true', help='overwrite --out if it exists')
    args = parser.parse_args(argv)
    try:
        if os.path.exists(args.out) and not args.force:
            raise RecipeError(f'--out {args.out} exists; pass --force to overwrite it.')
        try:
            text = open(args.opt).read()
        except OSError as error:
            raise RecipeError(f'--opt {args.opt}: cannot read it ({error.strerror}).') from None
        try:
            opt = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise RecipeError(f'--opt {args.opt}: not valid YAML ({error}).') from None
        opt, changes, notes = scale(opt, args.gpus, args.keep, args.micro_batch, args.recipe_gpus)
    except RecipeError as error:
        print(f'scale_recipe.py: error: {args.opt}: {error}', file=sys.stderr)
        return 2
    command = 'python scripts/scale_recipe.py ' + ' '.join(shlex.quote(a) for a in (
        argv if argv is not None else sys.argv[1:]))
    original, _ = split_header(text)
    body = yaml.safe_dump(opt, sort_keys=False, default_flow_style=None, width=110)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as file:
        file.write(header(args.opt, args.gpus, args.keep, changes, notes, command, args.out) + original + body)
    print(f'{args.out}: ' + '; '.join(f'{key} {_fmt(old)} -> {_fmt(new)}' for key, old, new, _ in changes))
    return 0


if __name__ == '__main__':
    sys.exit(main())
