"""The named recipes: each step checked against its definition, masks through the same geometry, tensors too."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxrzoo.preprocessing import (
    CXRNET_MEAN,
    CXRNET_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Recipe,
    beasf,
    clahe,
    complement,
    equalize_hist,
    list_recipes,
    match_histogram,
    prepare_cxrnet_input,
    read_image,
    recipe,
)

RNG = np.random.default_rng(5)


@pytest.fixture
def cxr(shared):
    folder = shared("data", "v7_covid_lungs", "val")
    name = "v7_val_0007.png"
    return read_image(folder / "images" / name), read_image(folder / "lungs" / name)


def _opencv_cxrnet(image: np.ndarray) -> np.ndarray:
    """The authors' CXR-Net preparation written with OpenCV calls (reference cxrnet.md §3)."""
    f = image.astype(float)
    f = (f - f.min()) / (f.max() - f.min()) * 255
    return cv2.equalizeHist(cv2.convertScaleAbs(cv2.resize(f, (340, 300))))


def test_catalogue():
    assert list_recipes() == sorted(
        [
            "cxrnet",
            "covid_cxnet",
            "covid_cxnet_base",
            "covid_xnet",
            "tahir_segmentation",
            "tahir_classifier",
            "screening_baselines",
        ]
    )
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("cxr_net")
    with pytest.raises(TypeError, match="'cxrnet'"):
        recipe("cxrnet", size=3)
    assert "equalizeHist" in repr(recipe("cxrnet"))


def test_prepare_cxrnet_input_is_the_authors_opencv_pipeline(cxr):
    image, _ = cxr
    out = prepare_cxrnet_input(image)
    assert out.shape == (300, 340) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, _opencv_cxrnet(image))


def test_prepare_cxrnet_input_uses_full_depth_and_handles_edge_cases(tmp_path):
    from PIL import Image

    deep = (RNG.random((120, 150)) * 4095).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    np.testing.assert_array_equal(prepare_cxrnet_input(path), _opencv_cxrnet(deep))  # read at native depth
    np.testing.assert_array_equal(prepare_cxrnet_input(np.full((40, 50), 7, np.uint16)), np.zeros((300, 340)))
    rgb = RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(prepare_cxrnet_input(rgb), prepare_cxrnet_input(gray))
    with pytest.raises(ValueError, match="NaN"):
        prepare_cxrnet_input(np.array([[0.0, np.nan]]))


def test_cxrnet_recipe_modules(cxr):
    image, mask = cxr
    eq = prepare_cxrnet_input(image)
    x1, (m,) = recipe("cxrnet").prepare(image, [mask])
    np.testing.assert_array_equal(x1[..., 0], eq.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(m, cv2.resize(mask, (340, 300), interpolation=cv2.INTER_NEAREST))
    x2 = recipe("cxrnet", module=2)(image)
    np.testing.assert_allclose(x2[..., 0], (eq - CXRNET_MEAN) / CXRNET_STD, rtol=1e-6)


def test_covid_cxnet_recipe_steps(cxr):
    image, mask = cxr
    resized = np.clip(cv2.resize(image.astype(np.float32), (320, 320), interpolation=cv2.INTER_CUBIC), 0, 255)
    resized = resized.astype(np.uint8)
    x, (m,) = recipe("covid_cxnet").prepare(image, [mask])
    assert x.shape == (320, 320, 3) and x.dtype == np.float32 and m.shape == (320, 320)
    expected = np.dstack([beasf(resized), clahe(resized), resized]).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(x, expected)
    scripts = recipe("covid_cxnet", channel_order="original_beasf_clahe")(image)
    np.testing.assert_array_equal(scripts, expected[..., [2, 0, 1]])
    template = RNG.integers(0, 256, (64, 64), dtype=np.uint8)
    matched = recipe("covid_cxnet", template=template)(image)
    np.testing.assert_array_equal(matched[..., 2] * 255, match_histogram(resized, template).astype(np.float32))


def test_covid_cxnet_base_recipe_shapes(cxr):
    image, _ = cxr
    one = recipe("covid_cxnet_base", input_shape=(400, 400, 1))(image)
    three = recipe("covid_cxnet_base", input_shape=(300, 300, 3))(image)
    assert one.shape == (400, 400, 1) and three.shape == (300, 300, 3)
    np.testing.assert_array_equal(three[..., 1] * 255, beasf((three[..., 0] * 255).round().astype(np.uint8)))
    with pytest.raises(ValueError, match="input_shape"):
        recipe("covid_cxnet_base", input_shape=(300, 300, 2))


def test_covid_xnet_recipe_without_bone_suppression(cxr):
    image, mask = cxr
    reference = RNG.integers(0, 256, (50, 50), dtype=np.uint8)
    x, (m,) = recipe("covid_xnet", reference=reference, bone_suppression=False).prepare(image, [mask])
    step = clahe(match_histogram(image, reference))
    expected = cv2.resize(step, (128, 128), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(x[..., 0], expected.astype(np.float32) / np.float32(255))
    assert m.shape == (128, 128) and set(np.unique(m)) <= {0, 255}
    assert "rib-shadow suppression" in repr(recipe("covid_xnet"))


def test_tahir_recipes(cxr):
    image, mask = cxr
    resized = cv2.resize(image, (256, 256))
    imagenet = lambda a: (a.astype(np.float32) / np.float32(255) - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    seg, (m,) = recipe("tahir_segmentation").prepare(image, [mask])
    np.testing.assert_allclose(seg, imagenet(np.dstack([resized] * 3)), rtol=1e-6)
    assert m.shape == (256, 256)
    cls = recipe("tahir_classifier")(image)
    np.testing.assert_allclose(cls, imagenet(np.dstack([resized, clahe(resized), complement(resized)])), rtol=1e-6)
    unit = recipe("tahir_classifier", scheme="complement", normalization="unit")(image)
    np.testing.assert_array_equal(unit[..., 1] * 255, 255 - resized.astype(np.float32))
    with pytest.raises(ValueError, match="scheme"):
        recipe("tahir_classifier", scheme="beasf")


def test_screening_baselines_recipe(cxr):
    image, mask = cxr
    top = image[int(image.shape[0] * 0.08) :]
    side = min(top.shape)
    r0, c0 = (top.shape[0] - side) // 2, (top.shape[1] - side) // 2
    square = top[r0 : r0 + side, c0 : c0 + side]
    resized = cv2.resize(square, (224, 224), interpolation=cv2.INTER_CUBIC)
    x, (m,) = recipe("screening_baselines").prepare(image, [mask])
    np.testing.assert_array_equal(x[..., 0] * 255, resized.astype(np.float32))
    mtop = mask[int(mask.shape[0] * 0.08) :][r0 : r0 + side, c0 : c0 + side]
    np.testing.assert_array_equal(m, cv2.resize(mtop, (224, 224), interpolation=cv2.INTER_NEAREST))
    eq = recipe("screening_baselines", equalize=True)(image)
    np.testing.assert_array_equal(eq[..., 0] * 255, equalize_hist(resized).astype(np.float32))
    inception = recipe("screening_baselines", size=299)(image)
    assert inception.shape == (299, 299, 1)


@pytest.mark.parametrize("name", ["cxrnet", "covid_cxnet", "tahir_classifier", "screening_baselines"])
def test_recipe_inside_dataset_map_equals_the_eager_call(cxr, name):
    import tensorflow as tf

    image, _ = cxr
    prep = recipe(name)
    ds = tf.data.Dataset.from_tensors(image).map(prep)
    out = next(iter(ds))
    assert out.shape == prep.output_shape and out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), prep(image))


def test_recipe_rejects_mismatched_masks_and_paths_work(cxr, tmp_path):
    from PIL import Image

    image, mask = cxr
    with pytest.raises(ValueError, match="does not match"):
        recipe("cxrnet").prepare(image, [mask[:-1]])
    path = tmp_path / "x.png"
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(recipe("cxrnet")(path), recipe("cxrnet")(image))
    assert isinstance(recipe("cxrnet"), Recipe)


def test_covid_xnet_recipe_with_bone_suppression(cxr, shared_weights):
    from cxrzoo.preprocessing import suppress_bones

    image = cxr[0][:256, :256]  # a small crop keeps the autoencoder cheap
    x = recipe("covid_xnet")(image)
    expected = cv2.resize(clahe(suppress_bones(image)), (128, 128), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(x[..., 0], expected.astype(np.float32) / np.float32(255))


def test_covid_cxnet_lung_crop_moves_masks_with_the_image(cxr):
    from cxrzoo.preprocessing import crop_to_lungs, three_channel

    image, mask = cxr

    def lung_model(x, training=False):  # a stand-in U-Net: saturated lungs in a fixed box
        out = np.zeros(x.shape, np.float32)
        out[:, 60:250, 40:290] = 1.0
        return out

    x, (m,) = recipe("covid_cxnet", lung_model=lung_model).prepare(image, [mask])
    resized = np.clip(cv2.resize(image.astype(np.float32), (320, 320), interpolation=cv2.INTER_CUBIC), 0, 255)
    resized = resized.astype(np.uint8)
    lung_map = lung_model(resized[None, ..., None])[0, ..., 0]
    crop, (y0, y1, x0, x1) = crop_to_lungs(resized, lung_map, size=(320, 320), return_box=True)
    assert (y0, y1, x0, x1) != (0, 320, 0, 320)
    np.testing.assert_array_equal(x * 255, three_channel(crop, "beasf_clahe_original").astype(np.float32))
    mask320 = cv2.resize(mask, (320, 320), interpolation=cv2.INTER_NEAREST)
    expected = cv2.resize(np.ascontiguousarray(mask320[y0:y1, x0:x1]), (320, 320), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(m, expected)


@pytest.mark.parametrize("normalization", ["unit", "imagenet"])
@pytest.mark.parametrize("shape", [(7, 9), (7, 9, 1), (7, 9, 3), (5, 4, 3)])
def test_the_scaling_table_gives_the_arithmetic_bit_for_bit(normalization, shape):
    from cxrzoo.preprocessing.recipes import _scale_step

    a = RNG.integers(0, 256, shape, dtype=np.uint8)
    a[0, 0], a[-1, -1] = 0, 255
    x = np.divide(a, np.float32(255), dtype=np.float32)
    x = x[..., None] if x.ndim == 2 else x
    if normalization == "imagenet":
        x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    got = _scale_step(normalization).image(a)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got, x)
    floats = a.astype(np.float32)  # non-uint8 input takes the arithmetic path
    np.testing.assert_array_equal(_scale_step(normalization).image(floats), x)


@pytest.mark.parametrize(
    "name, options",
    [
        ("cxrnet", {}),
        ("cxrnet", {"module": 2}),
        ("covid_cxnet", {}),
        ("covid_cxnet_base", {"input_shape": (64, 64, 1)}),
        ("tahir_classifier", {}),
        ("tahir_segmentation", {}),
        ("screening_baselines", {"size": 299}),
    ],
)
def test_prepare_into_a_given_array_gives_the_same_values(name, options):
    image = RNG.integers(0, 256, (90, 70), dtype=np.uint8)
    prep = recipe(name, **options)
    expected = prep.prepare(image)[0]
    batch = np.full((2,) + prep.output_shape, np.nan, np.float32)
    out, _ = prep.prepare(image, out=batch[1])
    assert np.shares_memory(out, batch)
    np.testing.assert_array_equal(batch[1], expected)
    assert np.isnan(batch[0]).all()
    with pytest.raises(ValueError, match="C-contiguous float32"):
        prep.prepare(image, out=np.empty(prep.output_shape, np.float64))
    # The final x / 255 (and ImageNet) table writes straight into the array; Module 2's standardization copies.
    before_last = image
    for step in prep.steps[:-1]:
        before_last, _ = step.apply(before_last, [])
    writes = prep.steps[-1].into is not None and prep.steps[-1].into(
        before_last, np.empty(prep.output_shape, np.float32)
    )
    assert writes == (options != {"module": 2})
