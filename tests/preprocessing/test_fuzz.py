"""Property and fuzz tests: hostile bytes and odd images give clear exceptions or correct results, never a crash
or a hang. Hypothesis runs derandomized with modest example counts, so the suite is fast and repeatable."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cxrzoo.models.cxrnet import prepare_cxrnet_input
from cxrzoo.preprocessing import (
    ImageReadError,
    beasf,
    center_crop,
    clahe,
    complement,
    crop_top,
    equalize_hist,
    match_histogram,
    read_image,
    recipe,
    resize,
    standardize,
    three_channel,
)

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
pytestmark = pytest.mark.timeout(120)

gray_images = hnp.arrays(
    np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24), elements=st.integers(0, 255)
)
flat_images = st.builds(
    lambda h, w, v: np.full((h, w), v, np.uint8), st.integers(1, 20), st.integers(1, 20), st.integers(0, 255)
)
any_gray = st.one_of(gray_images, flat_images)


def _encoded(kind: str, img: np.ndarray, encode) -> bytes:
    if kind == "png":
        return encode.png(img)
    if kind == "png16":
        return encode.png(img.astype(np.uint16) * 257)
    if kind == "jpeg":
        return encode.jpeg(img)
    return encode.dicom(img.astype(np.uint16) * 16, bits_stored=12)


def _read_or_refuse(data: bytes, shape=None):
    try:
        out = read_image(data)
    except ValueError as err:  # ImageReadError, or a damaged header claiming more than MAX_PIXELS
        assert "<bytes>" in str(err) and (isinstance(err, ImageReadError) or "exceeds the limit" in str(err))
        return None
    assert out.dtype == np.uint8 and out.ndim == 2
    if shape is not None:
        assert out.shape == shape
    return out


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _read_or_refuse(data)


@FUZZ
@given(
    st.binary(max_size=1024),
    st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\0" * 128 + b"DICM", b"II*\0", b"BM"]),
)
def test_random_bytes_behind_a_real_magic_number(data, magic):
    _read_or_refuse(magic + data)


@FUZZ
@given(gray_images, st.sampled_from(["png", "png16", "jpeg", "dicom"]), st.floats(0.0, 0.999))
def test_truncated_files(encode, img, kind, cut):
    data = _encoded(kind, img, encode)
    _read_or_refuse(data[: int(len(data) * cut)], img.shape)


@FUZZ
@given(gray_images, st.sampled_from(["png", "png16", "jpeg", "dicom"]), st.data())
def test_corrupted_files(encode, img, kind, data):
    blob = bytearray(_encoded(kind, img, encode))
    # positions as offsets modulo the length: an encoder may write a different length each time (DICOM UIDs are
    # random), and Hypothesis requires the strategies themselves not to depend on such state
    for offset in data.draw(st.lists(st.integers(0, 2**24), min_size=1, max_size=8)):
        blob[offset % len(blob)] ^= data.draw(st.integers(1, 255))
    _read_or_refuse(bytes(blob))


@FUZZ
@given(st.lists(st.sampled_from([0, 1, 255, 256, 65534, 65535]), min_size=1, max_size=64), st.integers(1, 8))
def test_16bit_extremes(encode, values, width):
    values = (values * width)[: max(1, len(values) // width * width)]
    img = np.array(values, np.uint16).reshape(-1, width) if len(values) >= width else np.array([values], np.uint16)
    out = read_image(encode.png(img))
    lo, hi = int(img.min()), int(img.max())
    expected = np.zeros_like(img, np.uint8) if lo == hi else np.rint((img - lo) * (255 / (hi - lo))).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert prepare_cxrnet_input(img).shape == (300, 340)


@FUZZ
@given(any_gray)
def test_histogram_ops_on_small_and_constant_images(img):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, no invalid casts
        np.testing.assert_array_equal(equalize_hist(img), cv2.equalizeHist(img))
        np.testing.assert_array_equal(clahe(img), cv2.createCLAHE(2.0, (8, 8)).apply(img))
        out = beasf(img)
        assert out.shape == img.shape and out.dtype == np.uint8
        if img.min() == img.max():
            np.testing.assert_array_equal(out, img)
        matched = match_histogram(img, np.arange(256, dtype=np.uint8))
        assert matched.shape == img.shape and matched.dtype == np.uint8
        np.testing.assert_array_equal(complement(complement(img)), img)
        assert three_channel(img, "original_clahe_complement").shape == img.shape + (3,)


@FUZZ
@given(any_gray, st.integers(1, 40), st.integers(1, 40), st.sampled_from(["bilinear", "bicubic", "nearest", "area"]))
def test_geometry_on_small_images(img, h, w, method):
    assert resize(img, (h, w), method).shape == (h, w)
    assert crop_top(img).shape == (img.shape[0] - int(img.shape[0] * 0.08), img.shape[1])
    side = min(img.shape)
    assert center_crop(img).shape == (side, side)
    np.testing.assert_allclose(standardize(img, 10.0, 2.0), (img.astype(np.float64) - 10) / 2, rtol=1e-6)


@FUZZ
@given(any_gray, st.sampled_from(["cxrnet", "covid_cxnet", "tahir_classifier", "screening_baselines"]))
def test_recipes_on_small_and_constant_images(img, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prep = recipe(name)
        out = prep(img)
        assert out.shape == prep.output_shape and out.dtype == np.float32 and np.all(np.isfinite(out))


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0)])
def test_empty_images_are_refused_by_every_op(shape):
    img = np.zeros(shape, np.uint8)
    ops = [
        equalize_hist,
        clahe,
        beasf,
        complement,
        crop_top,
        center_crop,
        lambda a: resize(a, (4, 4)),
        lambda a: match_histogram(a, np.zeros((2, 2), np.uint8)),
        lambda a: three_channel(a, "beasf_clahe_original"),
        prepare_cxrnet_input,
        recipe("screening_baselines"),
    ]
    for op in ops:
        with pytest.raises(ValueError, match="empty"):
            op(img)


def _chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize("size", [(0, 0), (0, 7), (7, 0)])
def test_zero_sized_image_files_are_refused(encode, size):
    import struct

    width, height = size
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + _chunk(b"IEND", b"")
    )
    with pytest.raises(ValueError, match="zero dimension|not a readable"):
        read_image(png)
    with pytest.raises(ValueError, match="zero dimension|not a readable"):
        read_image(encode.dicom(np.zeros((height, width), np.uint16)))


# --------------------------------------------------------------------------------- DICOM headers (issue 14)

_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.5",
    "1.2.3.4",
]
_PHOTOMETRICS = ["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "NONSENSE"]


@settings(
    max_examples=60,
    derandomize=True,
    deadline=3000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.sampled_from([0, 1, 7, 64, 4000, 8000, 65535]),
    columns=st.sampled_from([0, 1, 9, 64, 8000, 65535]),
    frames=st.sampled_from([0, 1, 2, 3, 1000, 2**31 - 1]),
    bits=st.sampled_from([0, 1, 7, 8, 12, 16, 32, 64]),
    samples=st.sampled_from([1, 3, 4]),
    photometric=st.sampled_from(_PHOTOMETRICS),
    syntax=st.sampled_from(_TRANSFER_SYNTAXES),
    pixel_data=st.binary(max_size=2048),
)
def test_random_dicom_headers(rows, columns, frames, bits, samples, photometric, syntax, pixel_data):
    """Random image headers and transfer syntaxes over a little pixel data: read or refused, never a crash, a hang
    or a large allocation (the deadline is per example)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import _hostile

    data = _hostile.native_dicom(
        rows,
        columns,
        pixel_data,
        frames=frames,
        bits=max(bits, 1),
        samples=samples,
        transfer_syntax=syntax,
        photometric=photometric,
    )
    if bits == 0:  # BitsAllocated 0 itself: patch the written value
        data = data.replace(b"\x28\x00\x00\x01US\x02\x00\x01\x00", b"\x28\x00\x00\x01US\x02\x00\x00\x00")
    _read_or_refuse(data)
