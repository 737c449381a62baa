"""Run inside a BasicSR tree written by basicsr-vitloss-upstream, with basicsr_vitloss NOT importable.

    python parity_child.py CASES.pt RESULTS.pt

For each case of CASES.pt (built by test_parity.py): build the bundle's class from BasicSR's registry,
load the plugin's state dict strictly, run it, and store outputs, input gradients and its own state dict.
"""
import sys

import torch

import basicsr  # noqa: F401  (registration)
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY

assert 'basicsr_vitloss' not in sys.modules

cases = torch.load(sys.argv[1], weights_only=False)
results = {}
for name, case in cases.items():
    registry = ARCH_REGISTRY if case['kind'] == 'arch' else LOSS_REGISTRY
    cls = registry.get(case['type'])
    assert cls.__module__.startswith('basicsr.'), cls.__module__
    module = cls(**case['kwargs'])
    module.load_state_dict(case['state'], strict=True)
    x = case['input'].clone().requires_grad_(True)
    if case['kind'] == 'arch':
        module.train(case.get('train', False))
        out = module(x)
    else:
        torch.manual_seed(case['seed'])
        out = module.value(x, case['target']) if hasattr(module, 'value') else module(x, case['target'])
    out.sum().backward() if out.dim() else out.backward()
    results[name] = {'output': out.detach(), 'grad': x.grad.detach(), 'module': cls.__module__,
                     'state': {k: v.clone() for k, v in module.state_dict().items()}}
torch.save(results, sys.argv[2])
print('parity child done:', ', '.join(results))
