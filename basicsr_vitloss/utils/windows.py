"""Sliding-window positions shared by tiled inference and the dataset preparation scripts."""


def window_starts(length, size, stride):
    """Start offsets of windows of ``size`` along an axis of ``length``: every ``stride`` pixels
    from 0, plus a last window flush with the end when the stride does not land there, so every
    pixel is covered and no window repeats. A single window at 0 when ``length <= size``."""
    if size < 1 or stride < 1:
        raise ValueError(f'window size and stride must be >= 1, got size {size}, stride {stride}')
    if length <= size:
        return [0]
    return list(range(0, length - size, stride)) + [length - size]
