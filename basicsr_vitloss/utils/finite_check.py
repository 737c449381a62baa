"""Network outputs holding NaN or inf are errors that name the output, never black pixels.

Clamping and casting to integers turn NaN into 0 and inf into 0 or the maximum, so without a check a
diverged (or fp16-overflowed) network's output is saved as a black or saturated image and scored like any
other. The check is one ``torch.isfinite(out).all()`` per image, on the output's device, just before the copy
to the host that happens anyway; the NaN / inf counts are computed only for the error message.
"""
import torch


class NonFiniteOutputError(RuntimeError):
    """A network output holds NaN or inf values: ``what`` has ``description``: ``hint``."""

    def __init__(self, what, description, hint=''):
        self.what, self.description, self.hint = what, description, hint
        super().__init__(f'{what} has {description}' + (f': {hint}' if hint else ''))


def describe_non_finite(tensor):
    """'1 NaN value of 432 (not finite)', '3 NaN and 2 inf values of 432 (not finite)', ..."""
    nans = int(torch.isnan(tensor).sum())
    infs = int(torch.isinf(tensor).sum())
    counts = ' and '.join(f'{count} {kind}' for count, kind in ((nans, 'NaN'), (infs, 'inf')) if count)
    return f'{counts} value{"" if nans + infs == 1 else "s"} of {tensor.numel()} (not finite)'


def check_finite(tensor, what, hint=''):
    """``tensor`` when every value is finite, else NonFiniteOutputError('``what`` has N NaN ... values: ``hint``')."""
    if bool(torch.isfinite(tensor).all()):
        return tensor
    raise NonFiniteOutputError(what, describe_non_finite(tensor), hint)
