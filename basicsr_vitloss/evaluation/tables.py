"""Markdown tables of the report and the merged comparison: number formats, column headers, and the
best (bold) / second best (underlined) marks."""
import math

from basicsr_vitloss.evaluation.categories import COMBINED
from basicsr_vitloss.evaluation.metrics import TITLES

HIGHER_IS_BETTER = {'psnr': True, 'ssim': True, 'mae': False, 'lpips': False, 'niqe': False}
DECIMALS = {'psnr': 2, 'ssim': 4, 'mae': 4, 'lpips': 4, 'niqe': 3}


def format_value(value, metric):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    if math.isinf(value):
        return 'inf' if value > 0 else '-inf'
    return f'{value:.{DECIMALS[metric]}f}'


def metric_header(metric):
    return TITLES[metric] + ('↑' if HIGHER_IS_BETTER[metric] else '↓')


def column_headers(columns):
    """Header text per (dataset, group, metric) column: the group names alone for one dataset,
    the dataset name for a dataset shown as Combined only, else '<dataset> <group>'."""
    datasets = list(dict.fromkeys(d for d, _, _ in columns))
    headers = []
    for dataset, group, metric in columns:
        groups = {g for d, g, _ in columns if d == dataset}
        if len(datasets) == 1 or not dataset:
            label = group
        elif groups == {COMBINED}:
            label = dataset
        else:
            label = f'{dataset} {group}'
        headers.append(f'{label} {metric_header(metric)}')
    return headers


def marks(values, metric):
    """['best' | 'second' | None] per value, decided on the unrounded values: only exactly equal
    values share a mark (two values that print alike but differ get different marks)."""
    valid = [None if v is None or math.isnan(v) else float(v) for v in values]
    distinct = sorted({v for v in valid if v is not None}, reverse=HIGHER_IS_BETTER[metric])
    rank = {v: ('best' if i == 0 else 'second') for i, v in enumerate(distinct[:2])}
    return [rank.get(v) if v is not None else None for v in valid]


def markdown_table(rows, columns, mark=True):
    """rows: [(method, loss, {column: value})]; columns: [(dataset, group, metric)]."""
    show_loss = any(loss for _, loss, _ in rows)
    head = ['Method'] + (['Loss'] if show_loss else []) + column_headers(columns)
    cells = [[method] + ([loss or '-'] if show_loss else []) for method, loss, _ in rows]
    for column in columns:
        metric = column[2]
        values = [row[2].get(column) for row in rows]
        kinds = marks(values, metric) if mark else [None] * len(values)
        for line, value, kind in zip(cells, values, kinds):
            text = format_value(value, metric)
            line.append(f'**{text}**' if kind == 'best' else f'<u>{text}</u>' if kind == 'second' else text)
    align = [':--'] * (2 if show_loss else 1) + ['--:'] * len(columns)
    lines = ['| ' + ' | '.join(head) + ' |', '| ' + ' | '.join(align) + ' |']
    lines += ['| ' + ' | '.join(line) + ' |' for line in cells]
    return '\n'.join(lines) + '\n'


def run_columns(dataset, groups, metrics):
    return [(dataset, group, metric) for group in groups for metric in metrics]


FORMATS_NOTE = ('Formats: PSNR (dB) 2 decimals; SSIM, MAE, LPIPS 4 decimals; NIQE 3 decimals. '
                '↑ higher is better, ↓ lower is better.')
