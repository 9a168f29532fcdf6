"""Image preparation as TensorFlow graph operations, equal to the NumPy/OpenCV kernels: for exported models.

A SavedModel that takes encoded image files must prepare them with TensorFlow operations alone (a
``tf.numpy_function`` does not survive serialization, and the model must load without cxrzoo). The operations here
reproduce the NumPy/OpenCV kernels of :mod:`cxrzoo.preprocessing` to the bit, where the kernels' own arithmetic is
reproduced, not approximated:

- :func:`decode_gray`: encoded PNG (8/16-bit, gray or colour), JPEG, BMP or GIF bytes → the gray image
  :func:`~cxrzoo.preprocessing.read_image` returns with ``native_depth=True`` (Pillow's fixed-point ITU-R 601-2
  luma for colour; JPEGs with the accurate integer DCT, as Pillow decodes them).
- :func:`resize_bilinear`: ``cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)`` on float64 images as
  OpenCV 5 computes it: half-pixel centres, no antialiasing, double-precision taps from a fused multiply-add,
  horizontal pass first, each pass ``fma(b - a, w, a)``. ``tf.image.resize(..., "bilinear", antialias=False)``
  samples the same points but computes in float32 (differences up to about 1e-5 on 0..255 data), which moves
  values across the rounding boundary of the next step.
- :func:`convert_scale_abs`: ``cv2.convertScaleAbs`` (|x| rounded half to even, saturated to uint8; in float32
  for arrays of 16 elements or more, as OpenCV's vector loop does).
- :func:`equalize_hist`: ``cv2.equalizeHist`` (the table of :func:`~cxrzoo.preprocessing.equalization_lut`).

Each paper whose recipe can be written this way registers a *graph recipe* (:func:`register_graph_recipe`) under
its recipe's name; :func:`graph_recipe` finds the one a model spec needs, or None. ``cxrzoo.export`` puts it in
front of the model in a SavedModel's ``serving_default`` signature.

Example::

    import tensorflow as tf
    from cxrzoo.preprocessing.graph import decode_gray, equalize_hist, convert_scale_abs, resize_bilinear

    gray, bits = decode_gray(tf.io.read_file("cxr.png"))       # float64 (H, W), 8 or 16
    small = convert_scale_abs(resize_bilinear(gray, (300, 340)))
    eq = equalize_hist(small)                                     # == cv2.equalizeHist(...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from cxrzoo.catalog import Catalog
from cxrzoo.spec import ModelSpec

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
#: convertScaleAbs: arrays of at least this many elements go through OpenCV's float32 vector loop
_VECTOR_MIN = 16

#: recipe name → ``factory(**recipe_options)`` returning ``prepare(gray float64 (H, W), bits int32) -> (h, w, c)
#: float32`` made of TensorFlow operations only (see :func:`graph_recipe`).
GRAPH_RECIPES: Catalog[Callable[..., Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]] = Catalog("graph recipe")


def register_graph_recipe(
    name: str, factory: Callable[..., Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]
) -> Callable[..., Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]:
    """Registers the graph form of the recipe ``name``: ``factory(**options)`` takes the recipe's options and
    returns ``prepare(gray, bits)`` giving what ``recipe(name, **options)`` gives, with TensorFlow operations."""
    return GRAPH_RECIPES.register(name, factory)


def graph_recipe(spec: ModelSpec) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None:
    """The graph form of ``spec``'s recipe with its options, or None when there is none (no recipe, a recipe that
    needs OpenCV-only operations such as CLAHE, or a model with more than one input)."""
    if spec.recipe is None or spec.recipe not in GRAPH_RECIPES:
        return None
    factory = GRAPH_RECIPES.get(spec.recipe)
    return factory(**dict(spec.recipe_options))


# ------------------------------------------------------------------------------------------------------ decoding


def _luma_uint8(rgb: tf.Tensor) -> tf.Tensor:
    """Pillow's ``convert("L")`` of 8-bit RGB, bit for bit: (19595 R + 38470 G + 7471 B + 2**15) >> 16."""
    c = tf.cast(rgb, tf.int32)
    total = c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000
    return tf.bitwise.right_shift(total, 16)


def _gray_of(pixels: tf.Tensor) -> tf.Tensor:
    """(H, W, C) uint8 → (H, W) float64: colour by luma (alpha ignored), gray(+alpha) by its first channel."""
    channels = tf.shape(pixels)[-1]
    return tf.cond(
        channels >= 3,
        lambda: tf.cast(_luma_uint8(pixels[..., :3]), tf.float64),
        lambda: tf.cast(pixels[..., 0], tf.float64),
    )


def _decode_png(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    depth = tf.strings.unicode_decode(tf.strings.substr(data, 24, 2), "ISO-8859-1")  # bit depth, colour type
    sixteen = tf.logical_and(tf.equal(depth[0], 16), tf.logical_or(tf.equal(depth[1], 0), tf.equal(depth[1], 4)))

    def gray16():
        # 16-bit gray keeps its depth (read_image(native_depth=True) returns uint16)
        return tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16)[..., 0], tf.float64), tf.constant(16)

    def other():
        # 8-bit files, and 16-bit colour, which Pillow (read_image's decoder for colour) reads as 8-bit RGB by
        # keeping the high byte, as libpng's strip_16 does here
        return _gray_of(tf.io.decode_png(data, channels=0, dtype=tf.uint8)), tf.constant(8)

    return tf.cond(sixteen, gray16, other)


def decode_gray(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Encoded image bytes (a scalar ``tf.string``) → ``(gray, bits)``: float64 (H, W) and 8 or 16.

    The values are those of ``read_image(data, native_depth=True)`` for PNG (8-bit and 16-bit gray, 8-bit colour
    and palette; 16-bit colour as Pillow reads it, 8-bit), JPEG (gray or colour) and BMP/GIF (first frame).
    DICOM, TIFF and WebP are not decoded here (TensorFlow has no decoder for them): a clear error.
    """
    data = tf.convert_to_tensor(data, tf.string)
    head = tf.strings.substr(data, 0, 8)
    is_png = tf.equal(head, _PNG)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), _JPEG)

    def jpeg():
        # Pillow decodes with libjpeg's accurate integer DCT (TensorFlow's default is the fast one)
        pixels = tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE")
        return _gray_of(pixels), tf.constant(8)

    def other():
        pixels = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
        return _gray_of(pixels), tf.constant(8)

    gray, bits = tf.cond(is_png, lambda: _decode_png(data), lambda: tf.cond(is_jpeg, jpeg, other))
    gray.set_shape([None, None])
    return gray, bits


# ------------------------------------------------------------------------------------------------------ resizing


def _split(a: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    # Veltkamp's split of a double into two halves of 26 bits, whose products are exact
    c = 134217729.0 * a
    high = c - (c - a)
    return high, a - high


def _fma(a: tf.Tensor, b: tf.Tensor, c) -> tf.Tensor:
    """``a * b + c`` rounded once, as a fused multiply-add, from float64 operations (Dekker's exact product and
    Knuth's exact sum); TensorFlow has no FMA operation. Checked against exact rational arithmetic on 519,000
    tap positions of the resizes here: no difference (tests/preprocessing/test_graph.py)."""
    product = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    error = ((ah * bh - product) + ah * bl + al * bh) + al * bl  # a * b == product + error, exactly
    total = product + c
    back = total - product
    rest = (product - (total - back)) + (c - back)  # product + c == total + rest, exactly
    return total + (rest + error)


def _linear_taps(source: tf.Tensor, target: int):
    """OpenCV's INTER_LINEAR taps along one axis: indices (i0, i1) and float64 weights (w0, w1) per output."""
    # OpenCV 5, float64 data: fx = fma(d + 0.5, src / dst, -0.5) in double, w1 = fx - floor(fx), w0 = 1 - w1;
    # a position outside the image takes the edge pixel with weight 1 (measured on impulse images)
    scale = tf.cast(source, tf.float64) / tf.constant(float(target), tf.float64)
    position = _fma(tf.range(target, dtype=tf.float64) + 0.5, scale, -0.5)
    floor = tf.floor(position)
    frac = position - floor
    index = tf.cast(floor, tf.int32)
    last = source - 1
    clamp = tf.logical_or(index < 0, index >= last)
    frac = tf.where(clamp, tf.zeros_like(frac), frac)
    index = tf.clip_by_value(index, 0, last)
    following = tf.minimum(index + 1, last)
    return index, following, (1.0 - frac, frac)


def _lerp(first: tf.Tensor, second: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    # OpenCV 5's interpolation of float64 data: fma(second - first, w1, first) (measured: 0 of 102,000 pixels
    # differ; first * w0 + second * w1, with or without FMA, differs in a third of them by one ulp)
    return _fma(second - first, weight, first)


def resize_bilinear(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` for a float64 (H, W) tensor.

    Bit for bit as OpenCV 5 computes it: tap positions ``fma(d + 0.5, src / dst, -0.5)`` in double, taps outside
    the image clamped to the edge pixel, a horizontal pass, then a vertical pass, each ``fma(b - a, w, a)``.

    Args:
        image: float64 (H, W), any H and W >= 1 (known only when the graph runs).
        size: ``(height, width)`` of the result (static).
    """
    image = tf.convert_to_tensor(image, tf.float64)
    height, width = (int(s) for s in size)
    shape = tf.shape(image)
    x0, x1, (_, a1) = _linear_taps(shape[1], width)
    rows = _lerp(tf.gather(image, x0, axis=1), tf.gather(image, x1, axis=1), a1)
    y0, y1, (_, b1) = _linear_taps(shape[0], height)
    out = _lerp(tf.gather(rows, y0, axis=0), tf.gather(rows, y1, axis=0), b1[:, None])
    out.set_shape([height, width])
    return out


# ------------------------------------------------------------------------------------------- intensity operations


def convert_scale_abs(image: tf.Tensor) -> tf.Tensor:
    """``cv2.convertScaleAbs(image)`` (alpha 1, beta 0) of a float64 tensor, bit for bit: |x| rounded half to even
    and saturated to uint8.

    OpenCV rounds in float32 in its vector loop, which handles every element of an array of 16 or more elements,
    and in double for shorter ones (measured: 2.5000000001 becomes 2 in a 300×340 image, 3 in a 9-element one).
    """
    image = tf.convert_to_tensor(image, tf.float64)

    def rounded(dtype):
        value = tf.abs(tf.cast(image, dtype))
        return tf.cast(tf.clip_by_value(tf.round(value), 0.0, 255.0), tf.uint8)

    count = image.shape.num_elements()
    if count is not None:
        return rounded(tf.float32 if count >= _VECTOR_MIN else tf.float64)
    return tf.cond(tf.size(image) >= _VECTOR_MIN, lambda: rounded(tf.float32), lambda: rounded(tf.float64))


def equalization_lut(image: tf.Tensor) -> tf.Tensor:
    """The 256-entry uint8 table of ``cv2.equalizeHist`` for a uint8 image (the rule of
    :func:`cxrzoo.preprocessing.equalization_lut`: float32 arithmetic, rounded half to even)."""
    hist = tf.math.bincount(tf.reshape(tf.cast(image, tf.int32), [-1]), minlength=256, maxlength=256, dtype=tf.int32)
    total = tf.size(image)
    present = tf.cast(hist > 0, tf.int32)
    first = tf.argmax(present, output_type=tf.int32)  # the lowest level present
    first_count = hist[first]
    levels = tf.range(256)
    scale = tf.constant(255.0, tf.float32) / tf.cast(total - first_count, tf.float32)
    running = tf.cast(tf.cumsum(tf.where(levels > first, hist, 0)), tf.float32)
    lut = tf.clip_by_value(tf.round(running * scale), 0.0, 255.0)
    lut = tf.where(levels > first, lut, 0.0)
    constant = tf.where(levels == first, tf.cast(first, tf.float32), 0.0)  # a constant image maps to itself
    lut = tf.cond(tf.equal(first_count, total), lambda: constant, lambda: lut)
    return tf.cast(lut, tf.uint8)


def equalize_hist(image: tf.Tensor) -> tf.Tensor:
    """``cv2.equalizeHist`` of a uint8 tensor (any shape), bit for bit."""
    return tf.gather(equalization_lut(image), tf.cast(image, tf.int32))


__all__: list[Any] = [
    "GRAPH_RECIPES",
    "convert_scale_abs",
    "decode_gray",
    "equalization_lut",
    "equalize_hist",
    "graph_recipe",
    "register_graph_recipe",
    "resize_bilinear",
]
