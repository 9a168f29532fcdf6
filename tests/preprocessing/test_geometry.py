"""resize (OpenCV semantics, (height, width) order), crop_top and center_crop; standardize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxrzoo.preprocessing import RESIZE_METHODS, center_crop, crop_top, resize, standardize

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("method", sorted(RESIZE_METHODS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_resize_equals_opencv_with_height_width_order(method, dtype):
    img = (RNG.random((45, 61)) * 250).astype(dtype)
    out = resize(img, (30, 52), method)
    assert out.shape == (30, 52) and out.dtype == img.dtype
    np.testing.assert_array_equal(out, cv2.resize(img, (52, 30), interpolation=RESIZE_METHODS[method]))


def test_resize_float_bilinear_has_half_pixel_centres():
    # A 2x upsample of [0, 10] with half-pixel centres: 0, 2.5, 7.5, 10 (edges clamp).
    out = resize(np.array([[0.0, 10.0]]), (1, 4), "bilinear")
    np.testing.assert_allclose(out, [[0.0, 2.5, 7.5, 10.0]])


def test_resize_keeps_channel_axes_and_nearest_keeps_labels():
    one = RNG.integers(0, 2, (20, 30, 1), dtype=np.uint8) * 255
    out = resize(one, (7, 11), "nearest")
    assert out.shape == (7, 11, 1) and set(np.unique(out)) <= {0, 255}
    assert resize(RNG.random((9, 9, 3)).astype(np.float32), 4).shape == (4, 4, 3)


def test_resize_rejects_bad_arguments():
    img = np.zeros((5, 5), np.uint8)
    with pytest.raises(ValueError, match="unknown method"):
        resize(img, (3, 3), "bilinearr")
    with pytest.raises(ValueError, match="positive"):
        resize(img, (0, 3))
    with pytest.raises(TypeError, match="dtype"):
        resize(img.astype(bool), (3, 3))
    with pytest.raises(ValueError, match="empty"):
        resize(np.zeros((0, 3), np.uint8), (3, 3))


def test_crop_top_drops_int_of_the_fraction():
    img = np.arange(100 * 7).reshape(100, 7).astype(np.uint8)
    np.testing.assert_array_equal(crop_top(img), img[8:])
    assert crop_top(np.zeros((25, 3)), 0.08).shape == (23, 3)  # int(25 * 0.08) = 2
    assert crop_top(np.zeros((12, 3)), 0.08).shape == (12, 3)  # int(0.96) = 0
    with pytest.raises(ValueError, match="fraction"):
        crop_top(img, 1.0)


def test_center_crop_specs():
    img = np.arange(10 * 16).reshape(10, 16).astype(np.uint8)
    np.testing.assert_array_equal(center_crop(img), img[:, 3:13])  # "square": side 10, offset (16 - 10) // 2
    np.testing.assert_array_equal(center_crop(img.T), img.T[3:13, :])
    np.testing.assert_array_equal(center_crop(img, (4, 5)), img[3:7, 5:10])
    np.testing.assert_array_equal(center_crop(img, 6), img[2:8, 5:11])
    assert center_crop(img, 0.5).shape == (6, 8)  # like tf.image.central_crop: start int((10 - 5) / 2) = 2
    with pytest.raises(ValueError, match="does not fit"):
        center_crop(img, (11, 4))
    with pytest.raises(ValueError, match="fraction"):
        center_crop(img, 1.5)


def test_geometry_inside_dataset_map_equals_the_eager_call():
    import tensorflow as tf

    images = [RNG.integers(0, 256, s, dtype=np.uint8) for s in [(50, 40), (33, 71)]]
    ds = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=tf.TensorSpec((None, None), tf.uint8))
    ds = ds.map(lambda x: (resize(x, (17, 23), "bicubic"), crop_top(x), center_crop(x)))
    for (a, b, c), img in zip(ds, images):
        assert a.shape == (17, 23)
        np.testing.assert_array_equal(a.numpy(), resize(img, (17, 23), "bicubic"))
        np.testing.assert_array_equal(b.numpy(), crop_top(img))
        np.testing.assert_array_equal(c.numpy(), center_crop(img))
    # static shapes are propagated when known
    assert center_crop(tf.zeros((10, 16), tf.uint8)).shape == (10, 10)
    assert crop_top(tf.zeros((100, 16), tf.uint8)).shape == (92, 16)


def test_standardize():
    x = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(standardize(x, 128.0, 64.0), [[-2.0, 0.0, 127 / 64]])
    assert standardize(x, 0, 1).dtype == np.float32 and standardize(x, 0, 1, dtype="float64").dtype == np.float64
    rgb = np.ones((2, 2, 3), np.float32)
    np.testing.assert_allclose(standardize(rgb, [0, 1, 2], [1, 2, 4])[0, 0], [1.0, 0.0, -0.25])
    import tensorflow as tf

    np.testing.assert_array_equal(standardize(tf.constant(x), 124.07, 75.97).numpy(), standardize(x, 124.07, 75.97))
    with pytest.raises(ValueError, match="std must be > 0"):
        standardize(x, 0, 0)
    with pytest.raises(ValueError, match="finite"):
        standardize(x, float("nan"), 1)
