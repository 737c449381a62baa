"""Fix ``perceptual_l2_criterion``: BasicSR's VGG PerceptualLoss accepts ``criterion: l2``."""
import torch

from . import compat_fix, is_original, replace, source


def _perceptual_l2_needs_fix():
    from basicsr.losses.basic_loss import PerceptualLoss
    return is_original(PerceptualLoss.__init__) and 'L2loss' in source(PerceptualLoss.__init__)


@compat_fix(_perceptual_l2_needs_fix, replaces='basicsr.losses.basic_loss.PerceptualLoss.__init__')
def perceptual_l2_criterion():
    """BasicSR's VGG PerceptualLoss with ``criterion: l2`` calls ``torch.nn.L2loss``, which does not
    exist; build it as l1 and swap in the mean squared error the option names."""
    from basicsr.losses.basic_loss import PerceptualLoss
    original = PerceptualLoss.__init__

    def __init__(self, *args, criterion='l1', **kwargs):
        original(self, *args, criterion='l1' if criterion == 'l2' else criterion, **kwargs)
        if criterion == 'l2':
            self.criterion_type = 'l2'
            self.criterion = torch.nn.MSELoss()

    replace(PerceptualLoss, '__init__', __init__)
