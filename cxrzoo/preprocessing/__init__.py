"""Image preparation: each paper's recipe as tested functions that run on NumPy arrays and inside ``tf.data``.

Every operation takes a 2-D uint8 NumPy array or a ``tf.Tensor`` (eager, or symbolic inside ``Dataset.map``) and
returns the same kind; on tensors it runs the very same NumPy/OpenCV kernel through ``tf.numpy_function``, so the
numbers never depend on where the call happens. See docs/preprocessing.md.
"""

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
from cxrzoo.preprocessing.io import MAX_PIXELS, ImageReadError, png_decoder, read_image
from cxrzoo.preprocessing.recipes import (
    CXRNET_MEAN,
    CXRNET_SIZE,
    CXRNET_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Recipe,
    Step,
    list_recipes,
    prepare_cxrnet_input,
    recipe,
)

__all__ = [
    "CXRNET_MEAN",
    "CXRNET_SIZE",
    "CXRNET_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_PIXELS",
    "RESIZE_METHODS",
    "THREE_CHANNEL_SCHEMES",
    "ImageReadError",
    "Recipe",
    "Step",
    "beasf",
    "beasf_lut",
    "center_crop",
    "clahe",
    "complement",
    "crop_top",
    "equalization_lut",
    "equalize_hist",
    "list_recipes",
    "match_histogram",
    "matching_lut",
    "png_decoder",
    "prepare_cxrnet_input",
    "read_image",
    "recipe",
    "resize",
    "standardize",
    "three_channel",
    "to_gray",
]

# Engineer C's modules (COVID-CXNet lung crop, COVID-XNet bone suppression) add their names below.
from cxrzoo.preprocessing.bones import suppress_bones
from cxrzoo.preprocessing.lungs import covid_cxnet_lung_mask, crop_to_lungs, lung_box

__all__ += ["covid_cxnet_lung_mask", "crop_to_lungs", "lung_box", "suppress_bones"]
