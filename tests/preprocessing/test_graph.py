"""The TensorFlow graph forms of the preparation (used inside exported SavedModels) against OpenCV, Pillow and the
NumPy recipes: equal to the bit."""

from __future__ import annotations

import io
from fractions import Fraction

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cxrzoo.preprocessing import graph as g
from cxrzoo.preprocessing import read_image, recipe

RNG = np.random.default_rng(17)


def _encode(ext: str, array: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(ext, array)
    assert ok
    return buffer.tobytes()


def _pillow_png(array: np.ndarray, mode: str | None = None, convert: str | None = None) -> bytes:
    image = Image.fromarray(array, mode)
    if convert:
        image = image.convert(convert)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


FILES = {
    "gray8.png": lambda: _encode(".png", RNG.integers(0, 256, (37, 53), dtype=np.uint8)),
    "gray16.png": lambda: _encode(".png", RNG.integers(0, 65536, (37, 53), dtype=np.uint16)),
    "rgb8.png": lambda: _encode(".png", RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)),
    "rgb16.png": lambda: _encode(".png", RNG.integers(0, 65536, (37, 53, 3), dtype=np.uint16)),
    "rgba8.png": lambda: _encode(".png", RNG.integers(0, 256, (37, 53, 4), dtype=np.uint8)),
    "gray_alpha.png": lambda: _pillow_png(RNG.integers(0, 256, (37, 53, 2), dtype=np.uint8), "LA"),
    "palette.png": lambda: _pillow_png(RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8), convert="P"),
    "gray.jpg": lambda: _encode(".jpg", RNG.integers(0, 256, (37, 53), dtype=np.uint8)),
    "rgb.jpg": lambda: _encode(".jpg", RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)),
    "rgb.bmp": lambda: _encode(".bmp", RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_decode_gray_equals_read_image(name):
    data = FILES[name]()
    gray, bits = g.decode_gray(tf.constant(data))
    expected = read_image(data, native_depth=True)
    np.testing.assert_array_equal(gray.numpy(), expected.astype(np.float64))
    assert int(bits) == (16 if expected.dtype == np.uint16 else 8)


@pytest.mark.parametrize("size", [(1390, 2000), (793, 945), (600, 680), (300, 340), (301, 341), (5, 7), (4, 1000)])
def test_resize_bilinear_equals_opencv(size):
    image = RNG.uniform(0, 255, size)
    expected = cv2.resize(image, (340, 300), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(g.resize_bilinear(tf.constant(image), (300, 340)).numpy(), expected)


def test_fma_is_exact_on_resize_positions():
    positions = np.arange(340, dtype=np.float64) + 0.5
    for source in (7, 945, 2000, 4093):
        scale = np.float64(source) / 340
        exact = [float(Fraction(p) * Fraction(scale) - Fraction(1, 2)) for p in positions]
        np.testing.assert_array_equal(g._fma(tf.constant(positions), tf.constant(scale), -0.5).numpy(), exact)


@pytest.mark.parametrize(
    "values", [[2.5000000001, 3.4999999999, 0.5, 1.5, -3.5, 300.0, 254.5], np.linspace(-3, 300, 400)]
)
def test_convert_scale_abs_equals_opencv(values):
    # short arrays are rounded in double by OpenCV, long ones in float32
    array = np.asarray(values, np.float64)[None]
    np.testing.assert_array_equal(g.convert_scale_abs(tf.constant(array)).numpy(), cv2.convertScaleAbs(array))


@pytest.mark.parametrize(
    "image",
    [
        RNG.integers(0, 256, (300, 340), dtype=np.uint8),
        RNG.integers(40, 90, (31, 17), dtype=np.uint8),
        np.full((5, 5), 7, np.uint8),
        np.array([[0, 255]], np.uint8),
    ],
)
def test_equalize_hist_equals_opencv(image):
    np.testing.assert_array_equal(g.equalize_hist(tf.constant(image)).numpy(), cv2.equalizeHist(image))


@pytest.mark.parametrize("module", [1, 2, "end_to_end"])
@pytest.mark.parametrize("name", ["gray8.png", "gray16.png", "rgb.jpg"])
def test_cxrnet_graph_recipe_equals_recipe(module, name):
    data = FILES[name]()
    from cxrzoo.models.cxrnet.preprocessing import cxrnet_graph_recipe

    prepare = tf.function(cxrnet_graph_recipe(module))  # traced, as in a SavedModel (Grappler rewrites run)
    expected = recipe("cxrnet", module=module).prepare(read_image(data, native_depth=True))[0]
    np.testing.assert_array_equal(prepare(*g.decode_gray(tf.constant(data))).numpy(), expected)


def test_cxrnet_graph_recipe_on_real_images(shared):
    from cxrzoo.models.cxrnet.preprocessing import cxrnet_graph_recipe

    prepare = tf.function(cxrnet_graph_recipe("end_to_end"))
    reference = recipe("cxrnet", module="end_to_end")
    files = sorted(shared("fixtures", "covid_cxnet", "images").glob("*.jpg"))
    files += sorted(shared("data", "v7_covid_lungs", "val", "images").glob("*.png"))[:4]
    for path in files:
        expected = reference.prepare(read_image(path, native_depth=True))[0]
        np.testing.assert_array_equal(prepare(*g.decode_gray(tf.io.read_file(str(path)))).numpy(), expected)


def test_graph_recipe_lookup():
    import cxrzoo

    assert g.graph_recipe(cxrzoo.model_spec("cxrnet.hfhs_v7")) is not None
    assert g.graph_recipe(cxrzoo.model_spec("bone_suppression.jsrt_v2")) is None  # no recipe
    assert g.graph_recipe(cxrzoo.model_spec("covid_cxnet_base.v_free")) is None  # CLAHE/BEASF: OpenCV only
