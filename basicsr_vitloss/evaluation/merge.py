"""``merge``: several runs' results.json in one comparison table, refused when their protocols differ
(unless --force)."""
import json
import os

from basicsr_vitloss.evaluation.categories import COMBINED
from basicsr_vitloss.evaluation.errors import EvaluateError, warn
from basicsr_vitloss.evaluation.metrics import METRICS
from basicsr_vitloss.evaluation.paper_changes import change_table
from basicsr_vitloss.evaluation.results import NO_PROTOCOL, NOT_COMPARED, flatten, load_result, protocol_differences
from basicsr_vitloss.evaluation.tables import column_headers, markdown_table, marks


def command_merge(args):
    rows, sources, columns, runs = {}, {}, [], []
    for path in args.results:
        result = load_result(path)
        row_key = (str(result['method']), str(result.get('loss') or ''))
        dataset = str(result.get('dataset') or '')
        runs.append((path, dataset, result.get('protocol', NO_PROTOCOL)))
        values = rows.setdefault(row_key, {})
        groups = sorted(result['groups'], key=lambda g: g == COMBINED)  # Combined last, else as given
        for group in groups:
            for metric in METRICS:
                if metric not in result['groups'][group]:
                    continue
                column = (dataset, group, metric)
                if column in values:
                    raise EvaluateError(f'{path} and {sources[row_key + column]} both give {row_key[0]} '
                                        f'{row_key[1]} {dataset} {group} {metric}.'.replace('  ', ' '))
                value = result['groups'][group][metric]
                values[column] = None if value is None else float(value)
                sources[row_key + column] = path
                if column not in columns:
                    columns.append(column)
    dataset_order = list(dict.fromkeys(d for d, _, _ in columns))
    group_order = list(dict.fromkeys(g for _, g, _ in columns))
    columns.sort(key=lambda c: (dataset_order.index(c[0]), c[1] == COMBINED, group_order.index(c[1]),
                                METRICS.index(c[2])))
    differences = protocol_differences(runs)
    if differences and not args.force:
        fields = list(dict.fromkeys(field for field, _ in differences))
        raise EvaluateError(f'the runs were evaluated differently (protocol fields {", ".join(fields)}), so their '
                            f'numbers are not comparable:\n  - ' + '\n  - '.join(why for _, why in differences)
                            + '\nEvaluate them alike, or merge anyway with --force (the table then lists the '
                              'differences).')
    for _, why in differences:
        warn(f'merged with --force although {why}')
    table_rows = [(method, loss, values) for (method, loss), values in rows.items()]
    text = markdown_table(table_rows, columns)
    legend = ('Best in **bold**, second best <u>underlined</u>, decided on the unrounded values (only exactly '
              'equal values share a mark); ↑ higher is better, ↓ lower is better; - = not evaluated. PSNR in dB '
              '(2 decimals); SSIM, MAE, LPIPS 4 decimals; NIQE 3 decimals.')
    protocols = {}
    for _, dataset, protocol in runs:
        if isinstance(protocol, dict):
            protocols.setdefault(dataset, protocol)
    lines = [text, legend, '']
    changes = []
    if getattr(args, 'paper', None):
        change_text, changes = change_table(args.paper, rows, columns)
        if change_text is None:
            warn(f'--paper {args.paper}: no loss row has a baseline row of its network (loss "baseline") to '
                 'compare with; no change table.')
        else:
            lines += [f'**Change over each network\'s baseline row** (Combined; ours, then the paper\'s '
                      f'{args.paper.replace("table", "Table ")}): the quantity the paper claims, comparable across '
                      'training budgets.', '', change_text,
                      'Signs: a positive ΔPSNR / ΔSSIM and a negative ΔLPIPS / ΔNIQE / ΔMAE are improvements.', '']
    if differences:
        lines += ['**Protocol differences** (merged with --force; the marked comparisons are not like for like):',
                  ''] + [f'- {why}' for _, why in differences] + ['']
    for dataset, protocol in protocols.items():
        shown = {k: v for k, v in flatten(protocol).items() if k.split('.')[0] not in NOT_COMPARED}
        lines += [f'Protocol{" of " + dataset if dataset else ""} (first run): '
                  + '; '.join(f'{k} = {v}' for k, v in shown.items()), '']
    lines += ['Sources: ' + ', '.join(args.results)]
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')
    if args.json:
        headers = column_headers(columns)
        merged = {'columns': [{'header': h, 'dataset': d, 'group': g, 'metric': m}
                              for h, (d, g, m) in zip(headers, columns)], 'rows': [],
                  'protocols': protocols, 'protocol_differences': [why for _, why in differences],
                  'changes': [{'method': m, 'loss': loss, 'paper_table': args.paper,
                               'cells': [{'dataset': d, 'metric': metric, 'ours': ours, 'paper': paper}
                                         for (d, metric), (ours, paper) in cells.items()]}
                              for m, loss, cells in changes]}
        column_marks = {c: marks([r[2].get(c) for r in table_rows], c[2]) for c in columns}
        for i, (method, loss, values) in enumerate(table_rows):
            merged['rows'].append({'method': method, 'loss': loss,
                                   'values': {h: values.get(c) for h, c in zip(headers, columns)},
                                   'marks': {h: column_marks[c][i] for h, c in zip(headers, columns)
                                             if column_marks[c][i]}})
        with open(args.json, 'w', encoding='utf-8') as file:
            json.dump(merged, file, indent=2)
            file.write('\n')
    print(text, end='')
    if changes:
        print(change_text, end='')
    print(f'wrote {args.out}' + (f' and {args.json}' if args.json else ''))
    return 0
