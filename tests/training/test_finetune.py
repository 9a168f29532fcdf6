"""transfer_weights / set_trainable: published weights into a model with a new head."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.training import set_trainable, transfer_weights


def _member(classes, seed):
    keras.utils.set_random_seed(seed)
    return cxrzoo.build_cxrnet_member(input_shape=(12, 14, 6), filters=3, conv_blocks=1, classes=classes)


def test_transfer_into_a_three_class_member_keeps_everything_but_the_final_block():
    source, target = _member(2, 0), _member(3, 1)
    before = {w.path: w.numpy().copy() for w in target.weights}
    report = transfer_weights(source, target, freeze=True)
    assert report.mismatched and all(p.startswith("final_") for p in report.mismatched)
    assert "row_attention" in report.copied and "stem_shortcut_conv" in report.copied and not report.new
    for path in report.copied:
        for a, b in zip(target.get_layer(path).weights, source.get_layer(path).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for path in report.mismatched:  # untouched initialization
        for w in target.get_layer(path).weights:
            np.testing.assert_array_equal(w.numpy(), before[w.path])
    trainable = {w.path.split("/")[0] for w in target.trainable_weights}
    assert trainable == {p for p in report.mismatched if target.get_layer(p).trainable_weights}
    changed = set_trainable(target, True)
    assert set(changed) == set(report.copied + report.mismatched)
    assert len(target.trainable_weights) == len(source.trainable_weights)
    assert set_trainable(target, False, layers=("stem_",)) and all(
        not target.get_layer(p).trainable for p in report.copied if p.startswith("stem_")
    )


def test_transfer_needs_a_common_layer():
    inputs = keras.Input((3,))
    other = keras.Model(inputs, keras.layers.Dense(2, name="unrelated")(inputs))
    with pytest.raises(ValueError, match="no layer"):
        transfer_weights(other, _member(2, 0))
