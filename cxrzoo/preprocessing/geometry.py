"""Geometric operations: resizing with OpenCV's semantics, and the crops the screening baselines' paper used."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cxrzoo.preprocessing import _dispatch

if TYPE_CHECKING:
    import tensorflow as tf

#: ``method`` names of :func:`resize` → OpenCV interpolation flags. "nearest" is OpenCV's INTER_NEAREST (source
#: index ``floor(dst * scale)``, what the authors' scripts used); "nearest_exact" samples at pixel centres.
RESIZE_METHODS = {
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
    "nearest_exact": cv2.INTER_NEAREST_EXACT,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
_RESIZE_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_ANY_DTYPES = (np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64, np.bool_)


def _size_hw(size: int | Sequence[int], op: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        size = (size, size)
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: size must be an int or a (height, width) pair, got {size!r}") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"{op}: size must be positive, got {(height, width)}")
    return height, width


def resize(
    img: np.ndarray | tf.Tensor, size: int | tuple[int, int], method: str = "bilinear"
) -> np.ndarray | tf.Tensor:
    """Resize to ``size = (height, width)`` exactly as ``cv2.resize(img, (width, height), interpolation=...)``.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` array or tensor of dtype uint8, uint16, int16, float32 or float64. Integer
            results are rounded and saturated the way OpenCV does; the dtype is kept.
        size: ``(height, width)`` (note: OpenCV's ``dsize`` is ``(width, height)``), or one int for a square.
        method: one of :data:`RESIZE_METHODS`: "bilinear" (the CXR-Net authors' ``cv2.resize`` default),
            "bicubic" (OpenCV's a = -0.75 kernel; COVID-CXNet, the screening baselines), "nearest" (label masks),
            "nearest_exact",
            "area" (antialiased downsizing) or "lanczos". Bilinear and bicubic do not antialias, like OpenCV.

    Example::

        small = resize(img, (300, 340))                  # H = 300, W = 340
        mask300 = resize(mask, (300, 340), method="nearest")
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize: unknown method {method!r}; choose one of {sorted(RESIZE_METHODS)}")
    height, width = _size_hw(size, "resize")
    _dispatch.check_image(img, "resize", dtypes=_RESIZE_DTYPES, ndims=(2, 3))
    flag = RESIZE_METHODS[method]

    def _kernel(array: np.ndarray) -> np.ndarray:
        _dispatch.check_image(array, "resize", dtypes=_RESIZE_DTYPES, ndims=(2, 3))
        out = cv2.resize(array, (width, height), interpolation=flag)
        if array.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
            out = out[..., None]
        return out

    shape = (height, width) + tuple(img.shape[2:])
    return _dispatch.run(_kernel, img, dtype=img.dtype, shape=shape, name="resize")


def crop_top(img: np.ndarray | tf.Tensor, fraction: float = 0.08) -> np.ndarray | tf.Tensor:
    """Drop the top ``int(H * fraction)`` rows (the screening baselines' paper and COVID-Net CXR-2 crop 8% to remove
    text labels).

    Returns a view for NumPy input. Works on ``(H, W)`` and ``(H, W, C)`` arrays or tensors of any dtype.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"crop_top: fraction must be in [0, 1), got {fraction}")
    _dispatch.check_image(img, "crop_top", dtypes=_ANY_DTYPES, ndims=(2, 3))

    def _kernel(array: np.ndarray) -> np.ndarray:
        _dispatch.check_image(array, "crop_top", dtypes=_ANY_DTYPES, ndims=(2, 3))
        return array[int(array.shape[0] * float(fraction)) :]

    height, width = _dispatch.static_hw(img)
    out_h = None if height is None else height - int(height * float(fraction))
    return _dispatch.run(_kernel, img, dtype=img.dtype, shape=(out_h, width) + tuple(img.shape[2:]), name="crop_top")


def center_crop(
    img: np.ndarray | tf.Tensor, fraction_or_size: str | float | int | tuple[int, int] = "square"
) -> np.ndarray | tf.Tensor:
    """Crop the centre of an image.

    Args:
        fraction_or_size: "square" (the largest centred square, side ``min(H, W)``: the screening baselines' centre
            crop, as in COVID-Net's ``central_crop``); a float in (0, 1] (keep that fraction of each side, like
            ``tf.image.central_crop``); an int (a square of that side); or ``(height, width)``. Offsets are
            ``(H - h) // 2`` and ``(W - w) // 2``.

    Returns a view for NumPy input; the crop must fit inside the image.
    """
    _dispatch.check_image(img, "center_crop", dtypes=_ANY_DTYPES, ndims=(2, 3))
    spec = fraction_or_size
    if isinstance(spec, str) and spec != "square":
        raise ValueError(f"center_crop: unknown spec {spec!r}; use 'square', a fraction, an int or (h, w)")
    if isinstance(spec, float) and not 0.0 < spec <= 1.0:
        raise ValueError(f"center_crop: a fraction must be in (0, 1], got {spec}")
    if not isinstance(spec, (str, float)):
        _size_hw(spec, "center_crop")

    def _crop_size(height: int, width: int) -> tuple[int, int]:
        if spec == "square":
            side = min(height, width)
            return side, side
        if isinstance(spec, float):
            return height - 2 * int((height - height * spec) / 2), width - 2 * int((width - width * spec) / 2)
        return _size_hw(spec, "center_crop")

    def _kernel(array: np.ndarray) -> np.ndarray:
        _dispatch.check_image(array, "center_crop", dtypes=_ANY_DTYPES, ndims=(2, 3))
        height, width = array.shape[:2]
        h, w = _crop_size(height, width)
        if h > height or w > width:
            raise ValueError(f"center_crop: a {h} x {w} crop does not fit in a {height} x {width} image")
        top, left = (height - h) // 2, (width - w) // 2
        return array[top : top + h, left : left + w]

    height, width = _dispatch.static_hw(img)
    out = (None, None)
    if height is not None and width is not None:
        out = _crop_size(height, width)
    return _dispatch.run(_kernel, img, dtype=img.dtype, shape=out + tuple(img.shape[2:]), name="center_crop")
