"""One kernel, two kinds of input: NumPy arrays run the kernel directly, tf.Tensors run it through
``tf.numpy_function`` so that the same code (and therefore the same numbers) serves eager calls and ``tf.data``.

The kernels are NumPy/OpenCV code that releases the GIL in its heavy parts (OpenCV, NumPy ufuncs, Pillow's
decoders), so several ``tf.data`` map workers really do run in parallel. TensorFlow is never imported here unless
the caller already handed us a tensor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeGuard

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import tensorflow as tf


def is_tensor(x: object) -> TypeGuard[tf.Tensor]:
    """True for a tf.Tensor (or tf.Variable). Does not import TensorFlow when the caller has not."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and tf.is_tensor(x)


def run(
    kernel: Callable[..., np.ndarray],
    x: np.ndarray | tf.Tensor,
    *,
    dtype: npt.DTypeLike | tf.DType,
    shape: Sequence[int | None] | None,
    name: str,
) -> np.ndarray | tf.Tensor:
    """``kernel(x)`` for a NumPy array; a ``tf.numpy_function`` node with a static ``shape`` for a tensor."""
    if not is_tensor(x):
        return kernel(x)
    import tensorflow as tf

    def _call(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(kernel(array))

    out = tf.numpy_function(_call, [x], Tout=dtype, stateful=False, name=name)
    if shape is not None:
        out.set_shape(shape)
    return out


def describe(x: object) -> str:
    """A short description of an input for error messages."""
    if isinstance(x, np.ndarray) or is_tensor(x):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {getattr(x.dtype, 'name', x.dtype)}"
    return type(x).__name__


def check_image(
    img: object, op: str, *, dtypes: Sequence[npt.DTypeLike] = (np.uint8,), ndims: Sequence[int] = (2,)
) -> None:
    """Validate an op's input (NumPy array or tensor) and raise a clear error naming the op and the problem."""
    if is_tensor(img):
        import tensorflow as tf

        allowed = {tf.as_dtype(d) for d in dtypes}
        if img.dtype not in allowed:
            names = ", ".join(sorted(np.dtype(d).name for d in dtypes))
            raise TypeError(f"{op} expects a tensor of dtype {names}, got {img.dtype.name}")
        rank = img.shape.rank
        if rank is not None and rank not in ndims:
            raise ValueError(
                f"{op} expects a tensor of rank {' or '.join(map(str, ndims))} (H, W[, C]), "
                f"got shape {tuple(img.shape)}"
            )
        return
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{op} expects a NumPy array or a tf.Tensor, got {describe(img)}")
    if img.dtype not in [np.dtype(d) for d in dtypes]:
        names = ", ".join(sorted(np.dtype(d).name for d in dtypes))
        raise TypeError(f"{op} expects an array of dtype {names}, got {img.dtype.name}")
    if img.ndim not in ndims:
        raise ValueError(
            f"{op} expects an array of {' or '.join(map(str, ndims))} dimensions (H, W[, C]), got shape {img.shape}"
        )
    if img.size == 0:
        raise ValueError(f"{op} got an empty image of shape {img.shape}")


def static_hw(img: np.ndarray | tf.Tensor) -> tuple[int | None, int | None]:
    """(H, W) as far as they are known statically."""
    shape = tuple(img.shape)
    if len(shape) < 2:
        return None, None
    h, w = shape[0], shape[1]
    return (None if h is None else int(h)), (None if w is None else int(w))
