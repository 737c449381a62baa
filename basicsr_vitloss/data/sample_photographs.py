"""Real photographs that ship inside scikit-image: the embedded default data needs no download.

Where scikit-image also ships the scene's geometry (the Middlebury stereo disparity of the
motorcycle pair), it is returned as well: disparity is inverse depth up to a scale, which is exactly
what defocus blur is linear in.
"""
import functools

import numpy as np

#: name -> loader of an RGB uint8 photograph shipped inside scikit-image
PHOTOGRAPHS = {
    'astronaut': lambda d: d.astronaut(),
    'coffee': lambda d: d.coffee(),
    'chelsea': lambda d: d.chelsea(),
    'rocket': lambda d: d.rocket(),
    'immunohistochemistry': lambda d: d.immunohistochemistry(),
    'motorcycle': lambda d: d.stereo_motorcycle()[0],
    'hubble_deep_field': lambda d: d.hubble_deep_field(),
}
#: name -> loader of the photograph's disparity map (inverse depth), where scikit-image has one
DISPARITIES = {
    'motorcycle': lambda d: d.stereo_motorcycle()[2],
}


def _frozen(array):
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=None)
def load_photograph(name):
    """One of ``PHOTOGRAPHS`` as float32 RGB in [0, 1], (H, W, 3)."""
    if name not in PHOTOGRAPHS:
        raise KeyError(f"Unknown photograph {name!r} in option 'images'; available: {', '.join(PHOTOGRAPHS)}.")
    import skimage.data
    return _frozen(np.ascontiguousarray(PHOTOGRAPHS[name](skimage.data)[..., :3]).astype(np.float32) / 255.0)


@functools.lru_cache(maxsize=None)
def load_disparity(name):
    """The photograph's disparity (H, W) float32 with occluded / unknown pixels filled from their
    nearest known neighbour, or None when scikit-image ships none."""
    if name not in DISPARITIES:
        return None
    import skimage.data
    from scipy import ndimage
    disparity = np.asarray(DISPARITIES[name](skimage.data), dtype=np.float32)
    unknown = ~np.isfinite(disparity)
    if unknown.any():
        nearest = ndimage.distance_transform_edt(unknown, return_distances=False, return_indices=True)
        disparity = disparity[tuple(nearest)]
    return _frozen(np.ascontiguousarray(disparity))
