"""Pixel-wise operations and the papers' three-channel images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.preprocessing import _dispatch
from cxrzoo.preprocessing.histogram import beasf, clahe

if TYPE_CHECKING:
    import tensorflow as tf

_NUMERIC = (np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64)


def _to_gray_kernel(img: np.ndarray) -> np.ndarray:
    rgb = img[..., :3]
    if img.dtype == np.uint8:
        # Pillow's fixed-point ITU-R 601-2 luma, bit for bit: (19595 R + 38470 G + 7471 B + 2**15) >> 16.
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)
    return (rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(img.dtype)


def to_gray(img: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """``(H, W, 3 or 4)`` RGB(A) → ``(H, W)`` gray with ITU-R 601-2 luma weights (0.299, 0.587, 0.114).

    For uint8 this is bit-identical to Pillow's ``convert("L")`` (what :func:`read_image` and Keras'
    ``load_img(color_mode="grayscale")`` use); alpha is ignored. Other dtypes are weighted in float64 and cast
    back. A 2-D image is returned as it is.
    """
    _dispatch.check_image(img, "to_gray", dtypes=_NUMERIC, ndims=(2, 3))
    if len(img.shape) == 2:
        return img
    if img.shape[-1] not in (3, 4):
        raise ValueError(f"to_gray expects 3 (RGB) or 4 (RGBA) channels, got shape {tuple(img.shape)}")

    def _kernel(array: np.ndarray) -> np.ndarray:
        _dispatch.check_image(array, "to_gray", dtypes=_NUMERIC, ndims=(3,))
        return _to_gray_kernel(array)

    return _dispatch.run(_kernel, img, dtype=img.dtype, shape=tuple(img.shape[:2]), name="to_gray")


def complement(img: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """The image complement ``255 - x`` of a uint8 image (the thesis' "image complementation").

    The thesis prints the formula as ``y = 225 - x``; its text ("subtracted from the highest intensity value, 255")
    and figures show ``255 - x``, which is what this computes.
    """
    _dispatch.check_image(img, "complement", ndims=(2, 3))
    if _dispatch.is_tensor(img):
        import tensorflow as tf

        return tf.constant(255, tf.uint8) - img
    return np.subtract(np.uint8(255), img)


def standardize(
    x: np.ndarray | tf.Tensor, mean: float | Sequence[float], std: float | Sequence[float], *, dtype: str = "float32"
) -> np.ndarray | tf.Tensor:
    """``(x - mean) / std`` as floating point (CXR-Net Module 2 standardizes its input X this way).

    Args:
        x: array or tensor of any numeric dtype and shape.
        mean, std: scalars or per-channel sequences (broadcast against the last axis); every std must be > 0.
        dtype: "float32" (default, what the models consume) or "float64" (the dtype of the authors' H5 files).

    Example::

        x = standardize(eq, 124.07157127013421, 75.97485671901313)   # CXR-Net's V7 statistics
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"standardize: dtype must be 'float32' or 'float64', got {dtype!r}")
    mean_arr = np.asarray(mean, np.float64)
    std_arr = np.asarray(std, np.float64)
    if not (np.all(np.isfinite(mean_arr)) and np.all(np.isfinite(std_arr))):
        raise ValueError(f"standardize: mean and std must be finite, got mean={mean!r}, std={std!r}")
    if np.any(std_arr <= 0):
        raise ValueError(f"standardize: std must be > 0, got {std!r}")
    if _dispatch.is_tensor(x):
        import tensorflow as tf

        compute = tf.float64
        out = (tf.cast(x, compute) - tf.constant(mean_arr, compute)) / tf.constant(std_arr, compute)
        return tf.cast(out, dtype)
    if not isinstance(x, np.ndarray) or x.dtype not in [np.dtype(d) for d in _NUMERIC]:
        raise TypeError(f"standardize expects a numeric NumPy array or tensor, got {_dispatch.describe(x)}")
    return ((x.astype(np.float64) - mean_arr) / std_arr).astype(dtype)


#: The three-channel schemes of :func:`three_channel`, channel by channel.
THREE_CHANNEL_SCHEMES = {
    "original_clahe_complement": ("original", "clahe", "complement"),  # thesis (Tahir), 3-channel scheme
    "beasf_clahe_original": ("beasf", "clahe", "original"),  # COVID-CXNet notebooks (the trained classifiers)
    "original_beasf_clahe": ("original", "beasf", "clahe"),  # COVID-CXNet scripts (main.py, model_in_use.py)
}


def _channel(
    kind: str, img: np.ndarray, clip_limit: float, tile_grid_size: tuple[int, int], gamma: float
) -> np.ndarray:
    if kind == "original":
        return img
    if kind == "clahe":
        return clahe(img, clip_limit, tile_grid_size)
    if kind == "beasf":
        return beasf(img, gamma)
    return complement(img)


def three_channel(
    img: np.ndarray | tf.Tensor,
    scheme: str,
    *,
    clip_limit: float = 2.0,
    tile_grid_size: tuple[int, int] = (8, 8),
    gamma: float = 1.5,
) -> np.ndarray | tf.Tensor:
    """Stack three enhanced versions of a uint8 image into ``(H, W, 3)`` uint8.

    Schemes (see :data:`THREE_CHANNEL_SCHEMES`):
        - "original_clahe_complement": the thesis' 3-channel scheme [original, CLAHE, 255 - x].
        - "beasf_clahe_original": COVID-CXNet as its notebooks trained it [BEASF(gamma), CLAHE, original].
        - "original_beasf_clahe": the order of COVID-CXNet's scripts and of its base model [original, BEASF, CLAHE].

    CLAHE uses ``clip_limit`` and ``tile_grid_size`` (COVID-CXNet: 2.0 and (8, 8); the thesis states none).
    """
    if scheme not in THREE_CHANNEL_SCHEMES:
        raise ValueError(f"three_channel: unknown scheme {scheme!r}; choose one of {sorted(THREE_CHANNEL_SCHEMES)}")
    _dispatch.check_image(img, "three_channel")
    kinds = THREE_CHANNEL_SCHEMES[scheme]

    def _kernel(array: np.ndarray) -> np.ndarray:
        _dispatch.check_image(array, "three_channel")
        return np.stack([_channel(k, array, clip_limit, tile_grid_size, gamma) for k in kinds], axis=-1)

    return _dispatch.run(_kernel, img, dtype=img.dtype, shape=tuple(img.shape) + (3,), name="three_channel")
