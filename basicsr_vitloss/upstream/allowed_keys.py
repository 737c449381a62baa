"""Which options keys a BasicSR tree's own code reads: the allow-list every written options file obeys.

Built from the tree's source (the bundle's files included), never by hand:

- *read keys*: string constants the code indexes an options dict with (``opt['key']``,
  ``opt.get('key')``, ``.pop``, ``.setdefault``, ``'key' in opt``), the strings of module-level tables
  named ``*_KEYS`` (keys read through a table, as DPDDDataset's folder keys) and the strings it
  compares a value with (``scheduler_type in ['MultiStepLR', ...]``);
- *constructor keys*: for a section with ``type: Name`` built from it, the parameters of the class
  or function defined as ``Name`` in the tree (``__init__``'s for a class, its bases' when it takes
  ``**kwargs``); optimizers named in the tree are torch's, whose parameters are read from torch.

A key in a typed section is allowed when it is a parameter of that type, or when the type takes
``**kwargs`` and the key is read somewhere; a key of any other section when it is read.
"""
import ast
import inspect
from collections import namedtuple

#: What the tree defines under a name: its parameters and whether it takes **kwargs.
Signature = namedtuple('Signature', 'params var_kwargs')

_READERS = ('get', 'pop', 'setdefault')
#: sections whose ``type`` is not a class of the tree (FileClient's backends)
_UNTYPED_SECTIONS = ('io_backend', )
#: sections whose keys are names the user chooses (datasets by phase, metrics by name)
_NAMED_CHILDREN = ('datasets', 'metrics')
#: sections BasicSR passes as keyword arguments to functions of the tree
_KWARGS_OF = {'dist_params': ('init_dist', '_init_dist_pytorch', '_init_dist_slurm')}


def _params(args):
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return [n for n in names if n not in ('self', 'cls')], args.kwarg is not None


class TreeKeys:
    """The read keys and the definitions of a ``BasicSRTree`` (with its overlay)."""

    def __init__(self, tree):
        self.read = set()
        self.compared = set()
        self.classes = {}  # name -> (params, var_kwargs, base names)
        self.functions = {}
        for rel in tree.python_files('basicsr'):
            self._scan(ast.parse(tree.read(rel), rel))

    def _scan(self, module):
        for node in module.body:
            if isinstance(node, ast.Assign) and any(getattr(t, 'id', '').endswith('KEYS') for t in node.targets):
                self.read.update(c.value for c in ast.walk(node.value)
                                 if isinstance(c, ast.Constant) and isinstance(c.value, str))
        for node in ast.walk(module):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and \
                    isinstance(node.slice.value, str):
                self.read.add(node.slice.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in _READERS and node.args and isinstance(node.args[0], ast.Constant):
                self.read.add(node.args[0].value)
            elif isinstance(node, ast.Compare):
                for operand in [node.left] + node.comparators:
                    constants = operand.elts if isinstance(operand, (ast.List, ast.Tuple, ast.Set)) else [operand]
                    self.compared.update(c.value for c in constants
                                         if isinstance(c, ast.Constant) and isinstance(c.value, str))
            elif isinstance(node, ast.ClassDef):
                init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == '__init__'), None)
                params, var_kwargs = _params(init.args) if init else ([], True)
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, 'attr', '') for b in node.bases]
                self.classes.setdefault(node.name, (params, var_kwargs if init else None, bases))
            elif isinstance(node, ast.FunctionDef) and node.col_offset == 0:
                self.functions.setdefault(node.name, _params(node.args))
        self.read.discard(None)

    def signature(self, name):
        """``Signature`` of the class or function ``name`` defined in the tree (a torch optimizer named in the
        tree: torch's), or None."""
        if name in self.classes:
            params, var_kwargs, bases = self.classes[name]
            params = list(params)
            seen = {name}
            while var_kwargs is None or (var_kwargs and bases):
                base = next((b for b in bases if b in self.classes and b not in seen), None)
                if base is None:
                    var_kwargs = bool(var_kwargs) or var_kwargs is None
                    break
                seen.add(base)
                base_params, base_kwargs, bases = self.classes[base]
                params += base_params
                var_kwargs = base_kwargs
            return Signature(tuple(params), bool(var_kwargs))
        if name in self.functions:
            params, var_kwargs = self.functions[name]
            return Signature(tuple(params), var_kwargs)
        if name in self.compared:
            import torch.optim
            cls = getattr(torch.optim, name, None)
            if inspect.isclass(cls):
                params = [p for p in inspect.signature(cls).parameters if p not in ('params', )]
                return Signature(tuple(params), False)
        return None


def unread_keys(opt, keys, path=''):
    """``[(dotted key, why)]`` for every key of the options dict ``opt`` the tree does not read."""
    problems = []
    section = path.rsplit('.', 1)[-1]
    typed = isinstance(opt.get('type'), str) and section not in _UNTYPED_SECTIONS
    signature = None
    if typed:
        signature = keys.signature(opt['type'])
        if signature is None and opt['type'] not in keys.compared:
            problems.append((f'{path}.type' if path else 'type', f"type '{opt['type']}' is not defined in the tree"))
    kwargs_of = [keys.signature(f) for f in _KWARGS_OF.get(section, ())]
    for key, value in opt.items():
        dotted = f'{path}.{key}' if path else str(key)
        if typed and key == 'type':
            continue
        if section in _NAMED_CHILDREN:
            allowed, why = isinstance(value, dict), 'expected a mapping'
        elif kwargs_of:
            allowed = any(sig is not None and key in sig.params for sig in kwargs_of)
            why = f"not a parameter of {' / '.join(_KWARGS_OF[section])}"
        elif typed and signature is not None and signature.params != ('opt', ):
            allowed = key in signature.params or (signature.var_kwargs and key in keys.read)
            why = f"not a parameter of {opt['type']}"
        else:  # a plain section, or a class built from the options dict itself (datasets, models)
            allowed, why = key in keys.read, 'not read by the tree'
        if not allowed:
            problems.append((dotted, why))
            continue
        if isinstance(value, dict):
            problems += unread_keys(value, keys, dotted)
    return problems
