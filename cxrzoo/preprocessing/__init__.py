"""Image preparation: reading, the operations the papers use, and the recipe machinery.

Every operation takes a 2-D uint8 NumPy array or a ``tf.Tensor`` (eager, or symbolic inside ``Dataset.map``) and
returns the same kind; on tensors it runs the very same NumPy/OpenCV kernel through ``tf.numpy_function``, so the
numbers never depend on where the call happens. Each paper's recipes live in its folder and register themselves:
``recipe(weights="res_cr_net.v7_lungs")`` gives the one a published model needs. See docs/preprocessing.md.
"""

import importlib
import warnings

from cxrzoo.preprocessing.enhance import THREE_CHANNEL_SCHEMES, complement, standardize, three_channel, to_gray
from cxrzoo.preprocessing.geometry import RESIZE_METHODS, center_crop, crop_top, resize
from cxrzoo.preprocessing.histogram import (
    beasf,
    beasf_lut,
    clahe,
    equalization_lut,
    equalize_hist,
    match_histogram,
    matching_lut,
)
from cxrzoo.preprocessing.io import (
    MAX_ASPECT,
    MAX_PIXEL_BYTES,
    MAX_PIXELS,
    MIN_SIDE,
    ImageReadError,
    ImageShapeError,
    ImageTooLargeError,
    png_decoder,
    read_image,
)
from cxrzoo.preprocessing.lungs import as_binary_mask, crop_to_lungs, lung_box, split_lungs
from cxrzoo.preprocessing.recipes import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Recipe,
    Step,
    list_recipes,
    recipe,
    register_recipe,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_ASPECT",
    "MAX_PIXELS",
    "MAX_PIXEL_BYTES",
    "MIN_SIDE",
    "RESIZE_METHODS",
    "THREE_CHANNEL_SCHEMES",
    "ImageReadError",
    "ImageShapeError",
    "ImageTooLargeError",
    "Recipe",
    "Step",
    "as_binary_mask",
    "beasf",
    "beasf_lut",
    "center_crop",
    "clahe",
    "complement",
    "crop_to_lungs",
    "crop_top",
    "equalization_lut",
    "equalize_hist",
    "list_recipes",
    "lung_box",
    "match_histogram",
    "matching_lut",
    "png_decoder",
    "read_image",
    "recipe",
    "register_recipe",
    "resize",
    "split_lungs",
    "standardize",
    "three_channel",
    "to_gray",
]

# Names that moved into their paper's folder; still importable from here, with a DeprecationWarning naming the
# new home (this package sits below the papers and never imports them itself).
_MOVED = {
    "prepare_cxrnet_input": "cxrzoo.models.cxrnet",
    "CXRNET_MEAN": "cxrzoo.models.cxrnet",
    "CXRNET_STD": "cxrzoo.models.cxrnet",
    "CXRNET_SIZE": "cxrzoo.models.cxrnet",
    "covid_cxnet_lung_mask": "cxrzoo.models.covid_cxnet",
    "suppress_bones": "cxrzoo.models.covid_xnet",
}


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(
            f"cxrzoo.preprocessing.{name} moved to {_MOVED[name]}.{name} (also cxrzoo.{name} where exported there)",
            DeprecationWarning,
            stacklevel=2,
        )
        value = getattr(importlib.import_module(_MOVED[name]), name)
        globals()[name] = value  # once: ``from ... import name`` looks a name up twice
        return value
    raise AttributeError(f"module 'cxrzoo.preprocessing' has no attribute {name!r}")
