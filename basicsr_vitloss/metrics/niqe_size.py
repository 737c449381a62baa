"""The image size BasicSR's NIQE (``calculate_niqe``) is defined on; used by the ``niqe_small_images`` fix
(``basicsr_vitloss.compat.niqe_small_images``) and by the evaluation, which reports NaN instead."""
NIQE_BLOCK = 96  # BasicSR's NIQE: statistics of non-overlapping 96x96 blocks
NIQE_MIN_BLOCKS = 2  # one block has no covariance (the fit fails), smaller images have none


def niqe_defined(height, width):
    """Whether BasicSR's NIQE is defined on an image of ``height`` x ``width`` (after border crop)."""
    return (height // NIQE_BLOCK) * (width // NIQE_BLOCK) >= NIQE_MIN_BLOCKS
