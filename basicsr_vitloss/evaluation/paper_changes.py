"""``merge --paper``: the change of each loss row over its network's baseline row, beside the paper's change
for the same cell. Absolute numbers depend on the training budget (docs/reproduce.md); the paper's claim,
and what two runs of any budget can be compared on, is this change."""
import math

from basicsr_vitloss.evaluation.categories import COMBINED
from basicsr_vitloss.evaluation.errors import EvaluateError
from basicsr_vitloss.evaluation.metrics import TITLES
from basicsr_vitloss.evaluation.paper_tables import PAPER_DATASETS, PAPER_METRICS, PAPER_TABLES, paper_value
from basicsr_vitloss.evaluation.tables import DECIMALS

BASELINE = 'baseline'


def _signed(value, metric):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:+.{DECIMALS[metric]}f}'


def change_columns(table, columns):
    """The (dataset, metric) cells of the paper's ``table`` that the merged runs have (Combined group)."""
    if table not in PAPER_TABLES:
        raise EvaluateError(f'--paper must be one of {", ".join(PAPER_TABLES)}, got {table!r}.')
    grid = PAPER_TABLES[table]
    have = {(d, m) for d, g, m in columns if g == COMBINED}
    wanted = list(dict.fromkeys(zip(PAPER_DATASETS[grid], PAPER_METRICS[grid])))
    found = [cell for cell in wanted if cell in have]
    if not found:
        datasets = ', '.join(sorted(set(PAPER_DATASETS[grid])))
        raise EvaluateError(f'--paper {table}: none of the runs is on its datasets ({datasets}, group {COMBINED}); '
                            'evaluate them with --dataset set to one of those names.')
    return found


def change_rows(table, rows, columns):
    """[(method, loss, {(dataset, metric): (ours, paper)})] for every loss row that has a baseline row."""
    cells = change_columns(table, columns)
    out = []
    for (method, loss), values in rows.items():
        if loss == BASELINE:
            continue
        base = rows.get((method, BASELINE))
        if base is None:
            continue
        changes = {}
        for dataset, metric in cells:
            key = (dataset, COMBINED, metric)
            ours = None if values.get(key) is None or base.get(key) is None else values[key] - base[key]
            row, ref = (paper_value(table, method, name, dataset, metric) for name in (loss, BASELINE))
            changes[(dataset, metric)] = (ours, None if row is None or ref is None else row - ref)
        out.append((method, loss, changes))
    return cells, out


def change_table(table, rows, columns):
    """Markdown: the change over the baseline row per loss row, ours then the paper's, per (dataset, metric)."""
    cells, changes = change_rows(table, rows, columns)
    if not changes:
        return None, []
    datasets = {d for d, _ in cells}
    head = ['Method', 'Loss']
    for dataset, metric in cells:
        label = f'{dataset} ' if len(datasets) > 1 else ''
        head += [f'{label}Δ{TITLES[metric]}', 'paper']
    lines = ['| ' + ' | '.join(head) + ' |', '| ' + ' | '.join([':--'] * 2 + ['--:'] * (len(head) - 2)) + ' |']
    for method, loss, values in changes:
        line = [method, loss]
        for dataset, metric in cells:
            ours, paper = values[(dataset, metric)]
            line += [_signed(ours, metric), _signed(paper, metric)]
        lines.append('| ' + ' | '.join(line) + ' |')
    return '\n'.join(lines) + '\n', changes
