"""Rib-shadow suppression, the second step of COVID-XNet's preprocessing (after histogram matching, before CLAHE).

Runs the published autoencoder of hmchuong/ML-BoneSuppression (:func:`cxrzoo.build_bone_suppression`) the way the
author's tool did, and takes care of the two things that tool left to the user:

* **polarity**: the network was trained on BSE-JSRT radiographs with inverted grey levels (lungs bright, bones
  dark). Ordinary CXRs (bones bright) are inverted on the way in and the result inverted back
  (``polarity="normal"``, the default); images already inverted pass through (``polarity="inverted"``).
* **intensity scaling**: input 8-bit values are divided by 255; the ReLU output is unbounded, and the author's tool
  (``scipy.misc.imsave``) min-max rescaled it to 0..255 per image and rounded half up. This function does the same,
  so its output on the author's sample equals the author's published output.

How COVID-XNet itself handled polarity and image size is not stated in its paper (docs/models/covid_cxnet.md
§3.2); the defaults here follow the autoencoder's own contract.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.models.covid_xnet.bone_suppression import build_bone_suppression

if TYPE_CHECKING:
    import keras
    import numpy.typing as npt
    import tensorflow as tf

POLARITIES = ("normal", "inverted")
WEIGHTS_TAG = "bone_suppression.jsrt_v2"


@functools.lru_cache(maxsize=1)
def _published_model() -> keras.Model:
    return build_bone_suppression(weights=WEIGHTS_TAG)


def _check_numpy(img: np.ndarray) -> None:
    if img.ndim not in (2, 3):
        raise ValueError(f"suppress_bones expects a (H, W) image or an (N, H, W) batch, got shape {img.shape}")
    if min(img.shape[-2:]) < 1:
        raise ValueError(f"suppress_bones got an empty image of shape {img.shape}")
    if img.dtype == np.uint8:
        return
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"suppress_bones expects uint8 (0..255) or float (0..1) pixels, got dtype {img.dtype}")
    if not np.all(np.isfinite(img)):
        raise ValueError("suppress_bones got NaN or infinite pixel values")
    if img.size and (img.min() < 0.0 or img.max() > 1.0):
        raise ValueError(
            f"float images must be in [0, 1]; got values in [{img.min():.4g}, {img.max():.4g}] "
            "(pass uint8 for 0..255 data)"
        )


def suppress_bones(
    img: npt.ArrayLike | tf.Tensor,
    *,
    polarity: str = "normal",
    model: keras.Model | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray | tf.Tensor:
    """Suppresses rib and clavicle shadows with the published bone-suppression autoencoder.

    Reference: Duran-Lopez et al., COVID-XNet, §2.2.1; hmchuong/ML-BoneSuppression.

    Args:
        img: a (H, W) image or an (N, H, W) batch; uint8 (0..255) or float (0..1); a NumPy array or a
            ``tf.Tensor`` (so it can run inside ``tf.data``).
        polarity: ``"normal"`` for ordinary radiographs (bones bright): inverted before the network and after, so
            the output has the input's polarity; ``"inverted"`` for images like BSE-JSRT (lungs bright), passed as
            they are (the author's own usage).
        model: the autoencoder to run; default: :func:`cxrzoo.build_bone_suppression` with the published weights
            ``"bone_suppression.jsrt_v2"`` (built once per process).
        size: optional (H, W) to run the network at (bilinear resize in and back out); None runs at the image's
            own size. The network was trained at 1024×1024, and rib widths in pixels matter.

    Returns:
        The same kind and dtype as ``img``: uint8 → uint8 min-max rescaled to 0..255 and rounded half up, as the
        author's tool saved it; float → float in [0, 1] (min-max rescaled, not rounded). Per image. A constant
        network output maps to 0 (to 255 with ``polarity="normal"``).

    Example:
        >>> from cxrzoo.preprocessing import read_image
        >>> from cxrzoo.models.covid_xnet import suppress_bones
        >>> soft = suppress_bones(read_image("cxr.png"))          # uint8, bones suppressed
    """
    import tensorflow as tf

    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    is_numpy = not tf.is_tensor(img)
    if is_numpy:
        img = np.asarray(img)
        _check_numpy(img)
    x = tf.convert_to_tensor(img)
    if x.shape.rank not in (2, 3):
        raise ValueError(f"suppress_bones expects a (H, W) image or an (N, H, W) batch, got shape {x.shape}")
    as_uint8 = x.dtype == tf.uint8
    if not as_uint8 and not x.dtype.is_floating:
        raise TypeError(f"suppress_bones expects uint8 or float pixels, got {x.dtype.name}")
    single = x.shape.rank == 2
    x = tf.cast(x, tf.float32)
    if as_uint8:
        x = x / 255.0
    batch = x[None, ..., None] if single else x[..., None]
    if polarity == "normal":
        batch = 1.0 - batch
    original_hw = tf.shape(batch)[1:3]
    if size is not None:
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be (H, W) with positive entries, got {size!r}")
        batch = tf.image.resize(batch, tuple(int(s) for s in size), method="bilinear")
    net = model if model is not None else _published_model()
    y = tf.convert_to_tensor(net(batch, training=False), tf.float32)
    if size is not None:
        y = tf.image.resize(y, original_hw, method="bilinear")
    lo = tf.reduce_min(y, axis=(1, 2, 3), keepdims=True)
    span = tf.reduce_max(y, axis=(1, 2, 3), keepdims=True) - lo
    top = 255.0 if as_uint8 else 1.0
    # As scipy.misc.bytescale: (y - min) * (255 / span); a constant image is scaled by 1 (so maps to 0).
    y = (y - lo) * tf.where(span > 0, top / tf.where(span > 0, span, 1.0), 1.0)
    if as_uint8:
        y = tf.floor(tf.clip_by_value(y, 0.0, 255.0) + 0.5)
    if polarity == "normal":
        y = top - y
    y = y[0, ..., 0] if single else y[..., 0]
    if as_uint8:
        y = tf.cast(y, tf.uint8)
    return y.numpy() if is_numpy else y
