"""Histogram operations against their oracles: OpenCV, the authors' BEASF output, and literal transcriptions."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from cxrzoo.preprocessing import beasf, beasf_lut, clahe, complement, equalize_hist, match_histogram, three_channel

RNG = np.random.default_rng(11)


def _beasf_transcription(img: np.ndarray, gamma: float) -> np.ndarray:
    """BEASF written loop by loop from the prose of reference covid_cxnet_xnet.md §1.3 (an independent oracle)."""
    m = int(np.mean(img, dtype=np.int32))
    h = np.histogram(img, bins=256)[0] / img.size
    lower, upper = np.zeros(256), np.zeros(256)
    total = 0.0
    for t in range(0, m + 1):
        total += h[t]
        lower[t] = h[t]
    lower[: m + 1] /= total
    total = 0.0
    for t in range(m, 256):
        total += h[t]
        upper[t] = h[t]
    upper[m:] /= total
    cdf_low, cdf_up = np.cumsum(lower), np.cumsum(upper)
    half_low = next((t for t in range(0, m + 2) if cdf_low[t] > 0.5), 0)
    half_up = next((t for t in range(m, 256) if cdf_up[t + 1] > 0.5), 0)
    s_low = 1 / (1 + np.exp(-gamma * (5.0 * (np.arange(0, m + 1) - half_low) / m)))
    s_up = 1 / (1 + np.exp(-gamma * (5.0 * (np.arange(m, 256) - half_up) / (255 - m))))
    v = np.zeros(256)
    for t in range(0, m + 1):
        v[t] = int(m * s_low[t])
    lo, hi = v[0], v[m]
    for t in range(0, m + 1):
        v[t] = int((m / (hi - lo)) * (v[t] - lo))
    for t in range(m + 1, 256):
        v[t] = int(m + (255 - m) * s_up[t - m - 1])
    lo, hi = v[m + 1], v[255]
    for t in range(m + 1, 256):
        v[t] = (255 - m) * (v[t] - lo) / (hi - lo) + m
    out = img.copy()
    out[:, :] = v[img]
    return out


def test_equalize_hist_is_bit_exact_with_opencv_on_real_images(real_images):
    for name, img in real_images:
        np.testing.assert_array_equal(equalize_hist(img), cv2.equalizeHist(img), err_msg=name)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (3, 5), (64, 48)])
@pytest.mark.parametrize("levels", [(0, 256), (100, 103), (0, 2), (254, 256)])
def test_equalize_hist_is_bit_exact_on_small_and_narrow_images(shape, levels):
    img = RNG.integers(*levels, shape, dtype=np.uint8)
    np.testing.assert_array_equal(equalize_hist(img), cv2.equalizeHist(img))


def test_equalize_hist_constant_image_is_unchanged():
    for value in (0, 77, 255):
        img = np.full((6, 9), value, np.uint8)
        np.testing.assert_array_equal(equalize_hist(img), cv2.equalizeHist(img))
        np.testing.assert_array_equal(equalize_hist(img), img)


def test_beasf_reproduces_the_authors_output_bit_for_bit(shared):
    gray = np.asarray(Image.open(shared("fixtures", "covid_cxnet", "beasf", "218_input_gray.png")))
    golden = np.asarray(Image.open(shared("fixtures", "covid_cxnet", "beasf", "218_beasf_gamma1.5.png")))
    out = beasf(gray, 1.5)
    assert (gray.min(), gray.max(), int(np.mean(gray, dtype=np.int32))) == (20, 189, 136)  # reference table
    np.testing.assert_array_equal(out, golden)
    assert round(float(out.mean()), 4) == 119.3659


@pytest.mark.parametrize("gamma", [0.5, 1.0, 1.5, 2.0])
def test_beasf_equals_a_literal_transcription_on_real_images(real_images, gamma):
    for name, img in real_images[::4]:
        np.testing.assert_array_equal(beasf(img, gamma), _beasf_transcription(img, gamma), err_msg=name)


def test_beasf_histogram_shortcut_equals_numpy_histogram():
    for _ in range(50):
        lo = int(RNG.integers(0, 120))
        img = RNG.integers(lo, int(RNG.integers(lo + 2, 257)), (23, 31), dtype=np.uint8)
        if img.min() == img.max():
            continue
        np.testing.assert_array_equal(beasf(img), _beasf_transcription(img, 1.5))


def test_beasf_degenerate_inputs_are_defined_and_warning_free():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in (0, 1, 128, 254, 255):
            flat = np.full((8, 8), value, np.uint8)
            np.testing.assert_array_equal(beasf(flat), flat)  # constant → unchanged
        dark = np.zeros((10, 10), np.uint8)
        dark[0, 0] = 90  # mean 0: no lower half to equalize
        out = beasf(dark)
        assert out[1, 1] == 0 and out[0, 0] >= 90  # tone 0 maps to 0; the upper half is still stretched
        binary = np.zeros((4, 4), np.uint8)
        binary[:2] = 255  # m = 127; the lower table collapses after truncation
        out = beasf(binary)
        assert set(np.unique(out)) <= {0, 255} and out.dtype == np.uint8
        lut = beasf_lut(RNG.integers(0, 3, (5, 5), dtype=np.uint8))
        assert np.all(np.isfinite(lut)) and lut.min() >= 0 and lut.max() <= 255
    with pytest.raises(ValueError, match="gamma"):
        beasf(binary, gamma=0)


@pytest.mark.parametrize("clip_limit", [0.0, 1.0, 2.0, 6.0, 40.0])
@pytest.mark.parametrize("tiles", [(8, 8), (4, 6), (2, 2), (16, 16)])
def test_clahe_matches_opencv_on_real_images(real_images, clip_limit, tiles):
    for name, img in real_images[::6]:
        ours = clahe(img, clip_limit, tiles).astype(int)
        theirs = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tiles).apply(img).astype(int)
        diff = np.abs(ours - theirs)
        assert diff.max() <= 1 and np.mean(diff == 0) >= 0.999, name


def test_clahe_tile_grid_follows_opencv_order():
    # A wide image with (tiles across, tiles down) = (6, 1): only OpenCV's order gives the same result.
    img = RNG.integers(0, 256, (16, 96), dtype=np.uint8)
    assert np.array_equal(clahe(img, 2.0, (6, 1)), cv2.createCLAHE(2.0, (6, 1)).apply(img))
    assert not np.array_equal(clahe(img, 2.0, (6, 1)), cv2.createCLAHE(2.0, (1, 6)).apply(img))
    with pytest.raises(ValueError, match="clip_limit"):
        clahe(img, -1)
    with pytest.raises(ValueError, match="tile_grid_size"):
        clahe(img, 2.0, (0, 8))


def _hist_match_transcription(source: np.ndarray, template: np.ndarray) -> np.ndarray:
    """COVID-CXNet's quantile mapping as the reference describes it (np.unique, cumulative counts, np.interp)."""
    _, inverse, s_counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    t_values, t_counts = np.unique(template.ravel(), return_counts=True)
    s_q = np.cumsum(s_counts).astype(np.float64)
    s_q /= s_q[-1]
    t_q = np.cumsum(t_counts).astype(np.float64)
    t_q /= t_q[-1]
    return np.interp(s_q, t_q, t_values)[inverse].reshape(source.shape).astype(np.uint8)


def test_match_histogram_equals_the_quantile_mapping(real_images):
    template = real_images[0][1]
    for name, img in real_images[1::5]:
        np.testing.assert_array_equal(
            match_histogram(img, template), _hist_match_transcription(img, template), err_msg=name
        )
    # matching an image to itself changes nothing but the truncation of interpolated levels
    img = real_images[1][1]
    assert np.mean(match_histogram(img, img) == img) > 0.99
    with pytest.raises(TypeError, match="reference"):
        match_histogram(img, template.astype(np.float32))


def test_three_channel_schemes_stack_the_right_channels():
    img = RNG.integers(0, 256, (40, 50), dtype=np.uint8)
    b, c, n = beasf(img), clahe(img), complement(img)
    np.testing.assert_array_equal(three_channel(img, "original_clahe_complement"), np.dstack([img, c, n]))
    np.testing.assert_array_equal(three_channel(img, "beasf_clahe_original"), np.dstack([b, c, img]))
    np.testing.assert_array_equal(three_channel(img, "original_beasf_clahe"), np.dstack([img, b, c]))
    np.testing.assert_array_equal(complement(img), 255 - img.astype(int))
    with pytest.raises(ValueError, match="unknown scheme"):
        three_channel(img, "rgb")


@pytest.mark.parametrize("op", ["equalize_hist", "clahe", "beasf", "match_histogram", "complement", "three_channel"])
def test_each_op_inside_dataset_map_equals_the_eager_call(real_images, op):
    import tensorflow as tf

    template = real_images[0][1]
    ops = {
        "equalize_hist": equalize_hist,
        "clahe": lambda x: clahe(x, 3.0, (4, 8)),
        "beasf": beasf,
        "match_histogram": lambda x: match_histogram(x, template),
        "complement": complement,
        "three_channel": lambda x: three_channel(x, "beasf_clahe_original"),
    }
    fn = ops[op]
    images = [img for _, img in real_images[::9]]
    ds = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=tf.TensorSpec((None, None), tf.uint8))
    ds = ds.map(tf.autograph.experimental.do_not_convert(fn), num_parallel_calls=2, deterministic=True)
    for out, img in zip(ds, images):
        assert isinstance(out, tf.Tensor) and out.dtype == tf.uint8
        np.testing.assert_array_equal(out.numpy(), fn(img))
    eager = fn(tf.constant(images[0]))
    assert isinstance(eager, tf.Tensor)
    np.testing.assert_array_equal(eager.numpy(), fn(images[0]))


def test_ops_refuse_wrong_dtypes_and_shapes():
    import tensorflow as tf

    for op in (equalize_hist, clahe, beasf, complement):
        with pytest.raises(TypeError, match="uint8"):
            op(np.zeros((4, 4), np.float32))
        with pytest.raises(ValueError, match="empty"):
            op(np.zeros((0, 4), np.uint8))
        with pytest.raises(TypeError, match="uint8"):
            op(tf.zeros((4, 4), tf.float32))
    with pytest.raises(ValueError, match="2 dimensions"):
        equalize_hist(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="NumPy array or a tf.Tensor"):
        equalize_hist([[1, 2], [3, 4]])
