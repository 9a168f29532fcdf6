"""CXR-Net Module 2: exact graph, published weights by layer name, the authors' score, optional modes."""

from __future__ import annotations

import functools
import shutil

import h5py
import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.cxrnet import (
    build_cxrnet_classifier,
    build_cxrnet_member,
    load_member_files,
    member_legacy_names,
    read_ensemble_h5,
)
from cxrzoo.weights.loading import read_legacy_h5

GOLDEN = np.array([0.93871009, 0.06128994])  # printed by the authors' notebooks for 002130-004-1
GOLDEN_TOLERANCE = 1e-5
# reference cxrnet.md §8: positive-class probability of each member alone on the sample (kymatio 0.3, TF 2.21)
REFERENCE_MEMBERS = [0.968818, 0.947764, 0.966852, 0.881868, 0.792984, 0.964843]
SWAPPED_ATTENTION_SCORE = 0.92811  # reference §2.6: the score with the row/column attention weights exchanged
MEMBER_TAGS = [f"cxrnet_member.hfhs_fold{k}" for k in range(6)]


@functools.cache
def _read_sample(path: str):
    with h5py.File(path, "r") as h5:
        return h5["X"][...][None].astype("float32"), h5["M"][...][None].astype("float32")


@functools.lru_cache(maxsize=1)
def _published_ensemble():
    return build_cxrnet_classifier(weights="cxrnet_classifier.hfhs_ensemble6")


@pytest.fixture
def xm(shared):
    """The authors' Module 2 input (X, M) for 002130-004-1."""
    return _read_sample(str(shared("fixtures", "cxrnet", "sample", "002130-004-1.h5")))


@pytest.fixture
def ensemble(shared_weights):
    """The published ensemble, built once per test session from the offline mirror."""
    return _published_ensemble()


def _run(model, inputs):
    """One eager call (no tracing: each test runs a model once or twice), as NumPy."""
    return keras.ops.convert_to_numpy(model(inputs, training=False))


def _member_probabilities(model, x, m):
    """Each member alone: softmax(GAP(its masked map)), from the ensemble's own member sub-models."""
    features = _run(keras.Model(model.inputs, model.get_layer("wst_features").output), [x, m])
    out = []
    for k in range(6):
        logits = _run(model.get_layer(f"member{k}"), features).mean(axis=(1, 2))[0]
        out.append(float(np.exp(logits[0]) / np.exp(logits).sum()))
    return out


def test_parameter_counts_at_paper_configuration():
    member = build_cxrnet_member()
    assert member.count_params() == 20_467
    assert sum(int(np.prod(w.shape)) for w in member.trainable_weights) == 19_737
    assert member.output_shape == (None, 2)
    ensemble = build_cxrnet_classifier()
    assert ensemble.count_params() == 122_802
    assert [tuple(t.shape) for t in ensemble.inputs] == [(None, 300, 340, 1)] * 2
    assert ensemble.get_layer("feature_map").output.shape == (None, 75, 85, 2)
    assert ensemble.get_layer("wst").count_params() == 0


def test_member_graph_follows_the_authors():
    member = build_cxrnet_member()
    names = [layer.name for layer in member.layers]
    assert [n for n in names if n.endswith("_dropout")] == ["prep_dropout", "stem_dropout", "block1_dropout"]
    branch = member.get_layer("block1_branch3_conv1")
    assert branch.kernel_size == (3, 3) and branch.dilation_rate == (3, 3) and branch.filters == 17
    final = member.get_layer("final_branch1_conv1")
    assert final.filters == 2 and final.depthwise_regularizer is not None
    assert member.get_layer("final_add").output.shape == (None, 75, 85, 2)
    assert member.get_layer("row_attention").axis == 2 and member.get_layer("column_attention").axis == 1
    assert member.get_layer("mask_binary").threshold == 0.3
    assert np.isclose(member.get_layer("final_act").negative_slope, 0.1)
    masked = member.get_layer("masked_map")
    assert [t.name for t in masked.input] == [
        member.get_layer("final_act").output.name,
        member.get_layer("mask_binary").output.name,
    ]


def test_legacy_name_map_covers_every_weighted_layer():
    member = build_cxrnet_member()
    mapping = member_legacy_names()
    assert set(mapping) == {layer.name for layer in member.layers if layer.weights}
    assert len(set(mapping.values())) == len(mapping) == 38
    assert mapping["row_attention"] == "multi_head_attention"
    assert mapping["column_attention"] == "multi_head_attention_1"
    assert (
        mapping["final_branch3_conv2"] == "separable_conv2d_17"
        and mapping["final_shortcut_bn"] == "batch_normalization_14"
    )


def test_member_files_load_by_tag_and_equal_the_ensemble_groups(shared_weights, ensemble):
    for k, tag in enumerate(MEMBER_TAGS):
        member = build_cxrnet_member(weights=tag, include_top=False, name=f"member{k}")
        inside = ensemble.get_layer(f"member{k}")
        assert [w.path for w in member.weights] == [w.path for w in inside.weights]
        for a, b in zip(member.weights, inside.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_ensemble_reader_maps_every_scope_by_name(shared_weights):
    groups = read_ensemble_h5(shared_weights / "ensemble_model_17F_2R1_0R2_2021-02-16_11_28_weights.h5")
    assert len(groups) == 6
    names = set(member_legacy_names().values())
    for k, group in enumerate(groups):
        assert set(group) == names
        single = read_legacy_h5(shared_weights / f"model_17F_2R1_0R2_2021-02-16_11_28_M{k}_resnet_weights.h5")
        for name in names:
            for a, b in zip(group[name], single[name]):
                np.testing.assert_array_equal(a, b)


def test_golden_score_of_the_published_ensemble(ensemble, xm):
    x, m = xm
    p = _run(ensemble, [x, m])[0]
    members = _member_probabilities(ensemble, x, m)
    print(f"\nensemble [covid, non_covid] = {p} (authors {GOLDEN}); |diff| = {np.abs(p - GOLDEN).max():.2e}")
    for k, (ours, ref) in enumerate(zip(members, REFERENCE_MEMBERS)):
        print(f"  member M{k}: p(covid) = {ours:.6f} (reference table {ref:.6f})")
    assert np.abs(p - GOLDEN).max() <= GOLDEN_TOLERANCE
    np.testing.assert_allclose(members, REFERENCE_MEMBERS, atol=5e-5)
    # the authors average the masked maps before GAP + softmax, not the members' probabilities (0.92052)
    assert abs(float(np.mean(members)) - p[0]) > 0.01


def test_attention_layers_cannot_swap(shared_weights, ensemble, xm, tmp_path):
    x, m = xm
    golden = _run(ensemble, [x, m])[0, 0]
    # what a loader that went by position could have done: give the rows the columns' weights
    saved = {}
    for k in range(6):
        member = ensemble.get_layer(f"member{k}")
        rows, cols = member.get_layer("row_attention"), member.get_layer("column_attention")
        saved[k] = (rows.get_weights(), cols.get_weights())
        rows.set_weights(saved[k][1])
        cols.set_weights(saved[k][0])
    try:
        swapped = _run(ensemble, [x, m])[0, 0]
    finally:
        for k in range(6):
            member = ensemble.get_layer(f"member{k}")
            member.get_layer("row_attention").set_weights(saved[k][0])
            member.get_layer("column_attention").set_weights(saved[k][1])
    print(
        f"\nscore with swapped attention weights: {swapped:.5f} (reference {SWAPPED_ATTENTION_SCORE}); "
        f"correct: {golden:.5f}"
    )
    assert abs(swapped - SWAPPED_ATTENTION_SCORE) < 1e-4
    assert abs(swapped - golden) > 0.01

    # The loader goes by group name: a member file whose groups are listed in another order loads the same.
    source = shared_weights / "model_17F_2R1_0R2_2021-02-16_11_28_M0_resnet_weights.h5"
    reordered = tmp_path / "reordered.h5"
    shutil.copy(source, reordered)
    with h5py.File(reordered, "r+") as h5:
        names = list(h5.attrs["layer_names"])
        i, j = names.index(b"multi_head_attention"), names.index(b"multi_head_attention_1")
        names[i], names[j] = names[j], names[i]
        h5.attrs["layer_names"] = np.array(names)
    by_tag = build_cxrnet_member(weights="cxrnet_member.hfhs_fold0")
    by_reordered = build_cxrnet_member(weights=str(reordered))
    for a, b in zip(by_tag.weights, by_reordered.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... and a file that names the row attention differently is refused, naming the layer
    renamed = tmp_path / "renamed.h5"
    shutil.copy(source, renamed)
    with h5py.File(renamed, "r+") as h5:
        h5.move("multi_head_attention", "attention_rows")
        h5.attrs["layer_names"] = np.array(
            [b"attention_rows" if n == b"multi_head_attention" else n for n in h5.attrs["layer_names"]]
        )
    with pytest.raises(ValueError, match="row_attention"):
        build_cxrnet_member(weights=str(renamed))


def test_ensemble_from_member_files_equals_the_ensemble_file(shared_weights, ensemble, xm):
    x, m = xm
    assembled = build_cxrnet_classifier()
    load_member_files(assembled, MEMBER_TAGS)
    np.testing.assert_array_equal(_run(assembled, [x, m]), _run(ensemble, [x, m]))
    with pytest.raises(ValueError, match="6 members"):
        load_member_files(assembled, MEMBER_TAGS[:2])
    with pytest.raises(ValueError, match="ensemble file"):
        build_cxrnet_member(weights=str(shared_weights / "ensemble_model_17F_2R1_0R2_2021-02-16_11_28_weights.h5"))


def test_more_classes_and_the_optional_modes_build_and_train():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 40, 1)).astype("float32")
    m = (rng.random((4, 32, 40, 1)) > 0.3).astype("float32")
    # one small model exercises all three: a third class, clear-lung exclusion and scaling by the input
    model = build_cxrnet_classifier(
        members=1, input_shape=(32, 40, 1), classes=3, gap_threshold=0.4, scale_by_input=True
    )
    assert model.output_shape == (None, 3)
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 4)]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit([x, m], y, epochs=2, batch_size=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))

    plain = build_cxrnet_member(input_shape=(8, 10, 50), include_top=False)
    gated = build_cxrnet_member(input_shape=(8, 10, 50), include_top=False, gap_threshold=0.5)
    scaled = build_cxrnet_member(input_shape=(8, 10, 50), include_top=False, scale_by_input=True)
    gated.set_weights(plain.get_weights())
    scaled.set_weights(plain.get_weights())
    features = rng.standard_normal((1, 8, 10, 50)).astype("float32")
    features[..., -1] = 1.0
    a, b, c = (_run(model_, features) for model_ in (plain, gated, scaled))
    brightness = (features[..., :1] - features[..., 0].min()) / np.ptp(features[..., 0])
    np.testing.assert_allclose(b, a * (brightness > 0.5), atol=1e-5)  # the darker regions no longer count
    np.testing.assert_allclose(c, a * brightness, atol=1e-5)


def test_published_weights_refuse_incompatible_arguments(shared_weights):
    with pytest.raises(ValueError, match="gap_threshold"):
        build_cxrnet_classifier(weights="cxrnet_classifier.hfhs_ensemble6", gap_threshold=0.2)
    with pytest.raises(ValueError, match="members=6"):
        build_cxrnet_classifier(weights="cxrnet_classifier.hfhs_ensemble6", members=3)
    with pytest.raises(ValueError, match="classes=2"):
        build_cxrnet_member(weights="cxrnet_member.hfhs_fold1", classes=3)


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="mask_mode"):
        build_cxrnet_member(mask_mode="soft")
    with pytest.raises(ValueError, match="members"):
        build_cxrnet_classifier(members=0)
    with pytest.raises(ValueError, match="input_shape"):
        build_cxrnet_classifier(input_shape=(None, None, 1))
    with pytest.raises(ValueError, match="classes"):
        build_cxrnet_member(classes=1)


def test_classifier_round_trips_through_a_keras_file(tmp_path):
    model = build_cxrnet_classifier(members=2, input_shape=(24, 28, 1), mask_mode="float")
    rng = np.random.default_rng(1)
    x = [rng.standard_normal((2, 24, 28, 1)).astype("float32"), rng.random((2, 24, 28, 1)).astype("float32")]
    path = tmp_path / "classifier.keras"
    model.save(path)
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_run(reloaded, x), _run(model, x), atol=1e-6)
    weights = tmp_path / "classifier.weights.h5"
    model.save_weights(weights)
    again = build_cxrnet_classifier(members=2, input_shape=(24, 28, 1), mask_mode="float", weights=str(weights))
    np.testing.assert_allclose(_run(again, x), _run(model, x), atol=1e-6)


def test_registry_lists_the_cxrnet_models():
    assert {"cxrnet", "cxrnet_classifier", "cxrnet_member"} <= set(cxrzoo.list_models(paper="cxrnet"))
    assert cxrzoo.model_info("cxrnet_member").weights == MEMBER_TAGS
    assert cxrzoo.model_info("cxrnet_classifier").weights == ["cxrnet_classifier.hfhs_ensemble6"]
    assert cxrzoo.model_info("cxrnet_classifier").cam_layer == "feature_map"
