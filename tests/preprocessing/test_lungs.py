"""crop_to_lungs / lung_box / covid_cxnet_lung_mask: the authors' ROI extraction with its quirks (float dilation,
the == 1.0 box, exclusive end), plus the guards the authors' code lacked (empty masks, edge clamping)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxrzoo.preprocessing import covid_cxnet_lung_mask, crop_to_lungs, lung_box, resize


def authors_crop(img, mask, kernel=(5, 5), iterations=3, margin=0):
    """The authors' steps, written out literally (valid only where they do not crash or wrap)."""
    dilated = cv2.dilate(mask.astype(np.float32), np.ones(kernel, np.uint8), iterations=iterations)
    rows, cols = np.where(dilated == 1.0)
    return img[rows.min() - margin : rows.max() + margin, cols.min() - margin : cols.max() + margin]


def saturated_map(shape=(64, 80)):
    """A U-Net-like float map: saturated (1.0) lung cores, < 1.0 shoulders around them."""
    m = np.zeros(shape, np.float32)
    m[20:40, 15:30] = 0.97
    m[22:38, 17:28] = 1.0
    m[25:45, 50:66] = 1.0
    m[10:12, 70:75] = 0.999  # never saturated: must not move the box
    return m


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (64, 80), dtype=np.uint8)


def test_matches_the_authors_steps(image):
    mask = saturated_map()
    for margin in (0, 3):
        np.testing.assert_array_equal(
            crop_to_lungs(image, mask, margin=margin), authors_crop(image, mask, margin=margin)
        )
    # box of the 1.0 pixels (rows 22..44, cols 17..65) grown by 3 × 2 = 6 by the dilation; end exclusive
    assert lung_box(mask) == (16, 50, 11, 71)
    assert lung_box(mask, iterations=0) == (22, 44, 17, 65)
    assert lung_box(mask, dilation=(3, 3), iterations=1) == (21, 45, 16, 66)


def test_near_saturated_values_do_not_count(image):
    mask = np.full((64, 80), 0.9999, np.float32)
    assert lung_box(mask) is None
    np.testing.assert_array_equal(crop_to_lungs(image, mask), image)  # documented fallback: no crop
    with pytest.raises(ValueError, match="empty"):
        crop_to_lungs(image, mask, on_empty="raise")
    cropped, box = crop_to_lungs(image, np.zeros((64, 80), bool), return_box=True)
    assert box == (0, 64, 0, 80) and cropped.shape == image.shape


def test_margins_are_clamped_instead_of_wrapping(image):
    mask = np.zeros((64, 80), np.float32)
    mask[0:5, 0:6] = 1.0  # touching the top-left corner
    y0, y1, x0, x1 = lung_box(mask, margin=10)
    assert (y0, x0) == (0, 0) and (y1, x1) == (20, 21)  # the authors' slice would start at -16 (wrap around)
    mask = np.zeros((64, 80), np.float32)
    mask[60:64, 70:80] = 1.0
    assert lung_box(mask, iterations=0, margin=10) == (50, 64, 60, 80)
    one_pixel = np.zeros((64, 80), np.float32)
    one_pixel[30, 40] = 1.0
    assert lung_box(one_pixel, iterations=0) == (30, 31, 40, 41)  # never an empty crop


def test_binary_masks_channels_and_resize(image):
    binary = np.zeros((64, 80), np.uint8)
    binary[20:40, 10:60] = 255
    as_bool = binary > 0
    box = lung_box(binary)
    assert box == lung_box(as_bool) == lung_box((binary > 0).astype(np.float32))
    rgb = np.repeat(image[..., None], 3, axis=-1)
    crop = crop_to_lungs(rgb, binary[..., None])
    assert crop.shape == (box[1] - box[0], box[3] - box[2], 3)
    resized = crop_to_lungs(image, binary, size=(32, 32))
    assert resized.shape == (32, 32) and resized.dtype == np.uint8
    np.testing.assert_array_equal(resized, resize(np.ascontiguousarray(crop[..., 0]), (32, 32), "bicubic"))


@pytest.mark.parametrize(
    "mask, error, match",
    [
        (np.zeros((10, 10), np.float32), ValueError, "does not match"),
        (np.full((64, 80), np.nan, np.float32), ValueError, "NaN"),
        (np.full((64, 80), 1.5, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((64, 80, 2), np.float32), ValueError, "mask must be"),
        (np.zeros((64, 80), "U1"), TypeError, "dtype"),
    ],
)
def test_bad_masks_are_named(image, mask, error, match):
    with pytest.raises(error, match=match):
        crop_to_lungs(image, mask)


def test_bad_arguments(image):
    mask = saturated_map()
    for kwargs, match in [
        ({"margin": -1}, "margin"),
        ({"iterations": -1}, "iterations"),
        ({"dilation": (0, 5)}, "dilation"),
        ({"on_empty": "crop"}, "on_empty"),
    ]:
        with pytest.raises(ValueError, match=match):
            crop_to_lungs(image, mask, **kwargs)


def test_real_lung_masks_are_contained(shared):
    from cxrzoo.preprocessing import read_image

    folder = shared("data", "v7_covid_lungs", "val")
    for path in sorted((folder / "images").glob("*.png"))[:5]:
        img = read_image(path)
        mask = read_image(folder / "lungs" / path.name)
        crop, (y0, y1, x0, x1) = crop_to_lungs(img, mask, return_box=True)
        rows, cols = np.nonzero(mask)
        # dilation grows the box by 6 px; the exclusive end then drops one row/column of that margin
        assert y0 == max(rows.min() - 6, 0) and x0 == max(cols.min() - 6, 0)
        assert y1 == min(rows.max() + 6, img.shape[0]) and x1 == min(cols.max() + 6, img.shape[1])
        assert crop.shape == (y1 - y0, x1 - x0) and mask[y0:y1, x0:x1].sum() >= 0.99 * mask.sum()


def test_lung_mask_feeds_the_unet_raw_equalized_values():
    import keras
    from skimage.filters import rank
    from skimage.morphology import disk

    inputs = keras.Input((64, 80, 1))
    probe = keras.Model(inputs, keras.layers.Rescaling(1.0 / 255.0)(inputs))  # returns what it was fed, / 255
    img = np.random.default_rng(1).integers(40, 200, (64, 80), dtype=np.uint8)
    out = covid_cxnet_lung_mask(img, probe)
    assert out.shape == (64, 80) and out.dtype == np.float32
    np.testing.assert_allclose(out * 255.0, rank.equalize(img, footprint=disk(40)), atol=1e-3)
    with pytest.raises(ValueError, match="uint8"):
        covid_cxnet_lung_mask(img.astype(np.float32), probe)
