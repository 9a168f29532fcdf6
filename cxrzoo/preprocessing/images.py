"""What the one-call entry points accept as "images": a path, encoded bytes, an array, or a list or batch of them.

:func:`image_list` splits such an argument into items (and says whether it was a single image);
:func:`load_image` turns one item into a checked NumPy image. :func:`cxrzoo.pipeline`, :func:`cxrzoo.segment_lungs`
and the infection detector share them, so every entry point accepts and refuses the same things.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from cxrzoo.preprocessing.enhance import to_gray
from cxrzoo.preprocessing.io import read_image

PATH_TYPES = (str, os.PathLike, bytes, bytearray)
#: One image as the entry points accept it: a path, encoded bytes, or an array.
ImageInput = str | os.PathLike | bytes | bytearray | np.ndarray


def image_list(images: ImageInput | Sequence[ImageInput]) -> tuple[list, bool]:
    """``(items, single)``: the images as a list, and whether one image (not a list or batch) was given.

    A 2-D array, or a 3-D array whose last axis has 1, 3 or 4 channels, is one image; other 3-D and 4-D arrays
    are batches along their first axis.
    """
    if isinstance(images, PATH_TYPES):
        return [images], True
    if isinstance(images, np.ndarray):
        if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4)):
            return [images], True
        if images.ndim in (3, 4):
            return list(images), False
        raise ValueError(f"images must be one (H, W[, C]) image or an (N, H, W[, C]) batch, got shape {images.shape}")
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list")
        return list(images), False
    raise TypeError(f"images must be a path, an array, or a list of them; got {type(images).__name__}")


def load_image(item: ImageInput, *, native_depth: bool = False, gray: bool = True) -> np.ndarray:
    """One image as a checked NumPy array: a path or bytes is read (:func:`read_image`, at its stored depth with
    ``native_depth=True``); an array is checked (numeric, finite, (H, W), (H, W, 1) or (H, W, 3|4), not empty) and,
    with ``gray=True``, colour becomes luma. A trailing channel axis of 1 is dropped."""
    if isinstance(item, PATH_TYPES):
        return read_image(item, native_depth=native_depth)
    array = np.asarray(item)
    if array.dtype.kind not in "uif":
        raise ValueError(f"an image array must be numeric, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or array.size == 0 or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"each image must be (H, W), (H, W, 1) or (H, W, 3|4), got shape {np.shape(item)}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError("an image contains NaN or infinite values")
    if gray and array.ndim == 3:
        array = to_gray(array)
    return array
