"""The end-to-end CXR-Net: Module 1 + the authors' mask + Module 2 in one model; .keras and SavedModel."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.cxrnet import build_cxrnet

GOLDEN = np.array([0.93871009, 0.06128994])
END_TO_END_TOLERANCE = 2e-3  # the mask comes from Module 1 here, not from the authors' stored 8-bit PNG
ROUND_TRIP_TOLERANCE = 1e-6
SAMPLE = ("fixtures", "cxrnet", "sample")


@pytest.fixture(scope="module")
def forward(published_cxrnet):
    """The model as one traced function for any batch size (model.predict would trace per batch size)."""
    import tensorflow as tf

    fn = tf.function(
        lambda x: published_cxrnet(x, training=False), input_signature=[tf.TensorSpec((None, 300, 340, 1), tf.float32)]
    )
    return lambda x: {k: v.numpy() for k, v in fn(x).items()}


@pytest.fixture
def model(published_cxrnet, shared_weights):
    return published_cxrnet


@pytest.fixture
def sample_image(cxrnet_sample_image):
    return cxrnet_sample_image[None, ..., None]


def test_graph_and_outputs(model):
    assert model.count_params() == 59_941 + 122_802
    # Module 1 is frozen; Module 2 stays trainable for fine-tuning
    assert not model.get_layer("module1").trainable
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 6 * 19_737
    shapes = {k: tuple(v.shape) for k, v in model.output.items()}
    assert shapes == {
        "probabilities": (None, 2),
        "logits": (None, 2),
        "feature_map": (None, 75, 85, 2),
        "lung_mask": (None, 300, 340, 1),
        "mask": (None, 300, 340, 1),
    }
    standardize = model.get_layer("standardize")
    np.testing.assert_allclose(
        standardize(np.array([[[[124.07157127013421]], [[200.0]]]], "float32")).numpy().ravel(),
        [0.0, (200 - 124.07157127013421) / 75.97485671901313],
        atol=1e-6,
    )


def test_authors_sample_from_the_equalized_png(forward, sample_image, shared):
    out = forward(sample_image)
    p = out["probabilities"][0]
    print(f"\nend-to-end [covid, non_covid] = {p} (authors {GOLDEN}); |diff| = {np.abs(p - GOLDEN).max():.2e}")
    assert np.abs(p - GOLDEN).max() <= END_TO_END_TOLERANCE
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-6)
    # the in-graph mask is the authors' H5 mask: Module 1 (V7), 8-bit round trip, intensity gate
    with h5py.File(shared(*SAMPLE, "002130-004-1.h5"), "r") as h5:
        authors_mask = h5["M"][..., 0]
    assert np.abs(out["mask"][0, ..., 0] - authors_mask).max() < 1e-6
    assert int((out["lung_mask"][0, ..., 0] > 0.5).sum()) == 23_807  # the authors' binary mask, reference §4
    np.testing.assert_allclose(out["logits"][0], out["feature_map"][0].mean(axis=(0, 1)), atol=1e-4)


def test_batches_agree_with_single_images(forward, sample_image):
    flipped = sample_image[:, :, ::-1].copy()
    batch = np.concatenate([sample_image, flipped])
    together = forward(batch)["probabilities"]
    alone = np.concatenate([forward(x)["probabilities"] for x in (sample_image, flipped)])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_keras_file_and_saved_model_reproduce_the_scores(model, forward, sample_image, tmp_path):
    import tensorflow as tf

    expected = forward(sample_image)
    path = tmp_path / "cxrnet.keras"
    model.save(path)
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    again = {k: v.numpy() for k, v in reloaded(sample_image, training=False).items()}  # eager: one call, no trace
    np.testing.assert_allclose(again["probabilities"], expected["probabilities"], atol=ROUND_TRIP_TOLERANCE)
    # the maps (values up to ~20) only differ by float32 summation order between eager and graph execution
    for key in ("feature_map", "mask"):
        np.testing.assert_allclose(again[key], expected[key], rtol=1e-5, atol=1e-5)

    export = tmp_path / "cxrnet_savedmodel"
    model.export(str(export), verbose=False)
    loaded = tf.saved_model.load(str(export))  # keep a reference: the served function needs its variables
    served = loaded.serve(tf.constant(sample_image))
    probabilities = served["probabilities"].numpy()
    print(f"\nSavedModel probabilities {probabilities[0]}; .keras {again['probabilities'][0]}")
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=ROUND_TRIP_TOLERANCE)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="std"):
        build_cxrnet(weights=None, segmenter_weights=None, std=0)
    with pytest.raises(ValueError, match="gap_threshold"):
        build_cxrnet(weights="cxrnet_classifier.hfhs_ensemble6", segmenter_weights=None, gap_threshold=0.3)
