"""Learning-rate schedulers of the official Restormer / NAFNet recipes, and the name -> class table
that ``train: scheduler: type:`` is looked up in (see ``training_setup``).

Like BasicSR's own schedulers they are torch LR schedulers stepped once per iteration, so
``last_epoch`` counts iterations.
"""
import math

from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler


class CosineAnnealingRestartCyclicLR(LRScheduler):
    """Cosine annealing over consecutive cycles, each with its own length, weight and floor
    (Restormer's scheduler).

    Cycle ``i`` covers iterations ``(start_i, start_i + periods[i]]`` and anneals from
    ``eta_mins[i] + restart_weights[i] * (base_lr - eta_mins[i])`` down to ``eta_mins[i]``. Restormer
    uses ``eta_mins[0] = base_lr`` to hold the rate constant during a first cycle. Past the last
    cycle the rate stays at its final value (Restormer's own code crashes there).
    """

    def __init__(self, optimizer, periods, restart_weights=(1, ), eta_mins=(0, ), last_epoch=-1):
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_mins = [float(e) for e in eta_mins]
        lengths = {'periods': len(self.periods), 'restart_weights': len(self.restart_weights),
                   'eta_mins': len(self.eta_mins)}
        if not self.periods or len(set(lengths.values())) != 1:
            raise ValueError('CosineAnnealingRestartCyclicLR (train:scheduler): periods, restart_weights and '
                             f'eta_mins must be non-empty lists of one length (one entry per cycle), got lengths '
                             f'{lengths}.')
        if min(self.periods) <= 0:
            raise ValueError(f'CosineAnnealingRestartCyclicLR (train:scheduler): periods must be positive '
                             f'iteration counts, got {list(periods)}.')
        self.cumulative_periods = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def cycle(self, step):
        """Index of the cycle that iteration ``step`` belongs to (the last one past the end)."""
        return next((i for i, end in enumerate(self.cumulative_periods) if step <= end), len(self.periods) - 1)

    def get_lr(self):
        step = min(self.last_epoch, self.cumulative_periods[-1])
        i = self.cycle(step)
        start = self.cumulative_periods[i - 1] if i > 0 else 0
        eta_min, weight = self.eta_mins[i], self.restart_weights[i]
        factor = 0.5 * (1 + math.cos(math.pi * (step - start) / self.periods[i]))
        return [eta_min + weight * factor * (base_lr - eta_min) for base_lr in self.base_lrs]


class TrueCosineAnnealingLR(CosineAnnealingLR):
    """Torch's CosineAnnealingLR (NAFNet's name for it), computed in closed form at every step.

    The closed form keeps the curve exact even when something else set the rate in between
    (BasicSR's warm-up does), where torch's recursive update would drift."""

    def get_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


# `train: scheduler: type:` -> class. BasicSR maps MultiStepLR to its MultiStepRestartLR too.
SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
    'CosineAnnealingRestartCyclicLR': CosineAnnealingRestartCyclicLR,
    'TrueCosineAnnealingLR': TrueCosineAnnealingLR,
}
