"""Category labels (--labels): DPDD's indoor_labels.npy / outdoor_labels.npy, or a name,category CSV.
Groups are each category, then Combined (all images)."""
import csv
import os

import numpy as np

from basicsr_vitloss.data.dpdd_files import IMAGE_EXTENSIONS
from basicsr_vitloss.evaluation.errors import EvaluateError, listing
from basicsr_vitloss.evaluation.pairing import stem

COMBINED = 'Combined'
NO_LABELS_NOTE = 'No category labels given (--labels): Combined only.'


def _npy_categories(folder, gt_names):
    files = sorted(n for n in os.listdir(folder) if n.endswith('_labels.npy'))
    if not files:
        raise EvaluateError(f'labels folder {folder} has no *_labels.npy files; expected indoor_labels.npy '
                            f'and outdoor_labels.npy (from the DPDD test set) or a name,category CSV file.')
    order = {'indoor': 0, 'outdoor': 1}
    files.sort(key=lambda n: (order.get(n[:-len('_labels.npy')].lower(), 2), n))
    assignment = {}
    categories = []
    for file in files:
        path = os.path.join(folder, file)
        category = file[:-len('_labels.npy')].capitalize()
        try:
            indices = np.load(path, allow_pickle=False).reshape(-1)
        except (OSError, ValueError) as error:
            raise EvaluateError(f'{path}: cannot read it as a numpy array ({error}).') from None
        if indices.dtype.kind not in 'iuf' or not np.all(np.mod(indices, 1) == 0):
            raise EvaluateError(f'{path}: expected integer image indices (1-based), got {indices.dtype} values.')
        indices = [int(i) for i in indices]
        wrong = [i for i in indices if not 1 <= i <= len(gt_names)]
        if wrong:
            raise EvaluateError(f'{path}: indices {listing(map(str, wrong))} out of range 1..{len(gt_names)} '
                                f'(1-based indices into the {len(gt_names)} sorted ground-truth images).')
        categories.append(category)
        for index in sorted(set(indices)):
            name = gt_names[index - 1]
            if name in assignment and assignment[name][0] != category:
                raise EvaluateError(f'image {name} (index {index}) is in two categories: '
                                    f'{assignment[name][1]} and {file} ({folder}).')
            assignment[name] = (category, file)
    return categories, {name: c for name, (c, _) in assignment.items()}


def _csv_categories(path, gt_names):
    known = set(gt_names)
    categories, assignment, unknown = [], {}, []
    with open(path, newline='', encoding='utf-8') as file:
        for line, row in enumerate(csv.reader(file), 1):
            row = [cell.strip() for cell in row]
            if not any(row) or row[0].startswith('#'):
                continue
            if line == 1 and [c.lower() for c in row] == ['name', 'category']:
                continue
            if len(row) != 2 or not all(row):
                raise EvaluateError(f'{path} line {line}: expected "name,category", got {",".join(row)!r}.')
            name, category = row
            if name.lower().endswith(IMAGE_EXTENSIONS):
                name = stem(name)
            if category.lower() == COMBINED.lower():
                raise EvaluateError(f'{path} line {line}: {COMBINED} is the group of all images, not a category.')
            if name not in known:
                unknown.append(name)
                continue
            if name in assignment and assignment[name] != category:
                raise EvaluateError(f'{path}: image {name} is in two categories, {assignment[name]} and {category}.')
            assignment[name] = category
            if category not in categories:
                categories.append(category)
    if unknown:
        raise EvaluateError(f'{path}: names that match no ground-truth image: {listing(unknown)} '
                            f'(names are gt file stems, e.g. {gt_names[0]}).')
    if not assignment:
        raise EvaluateError(f'{path}: no name,category rows.')
    return categories, assignment


def load_categories(labels, gt_names):
    """(categories in order, {gt stem: category}) from --labels (None: no categories)."""
    if labels is None:
        return [], {}
    if os.path.isdir(labels):
        return _npy_categories(labels, gt_names)
    if os.path.isfile(labels) and labels.lower().endswith('.csv'):
        return _csv_categories(labels, gt_names)
    raise EvaluateError(f'--labels {labels}: expected a folder with indoor_labels.npy / outdoor_labels.npy '
                        f'or a .csv file of name,category rows; '
                        f'{"it is not a .csv file" if os.path.exists(labels) else "it does not exist"}.')
