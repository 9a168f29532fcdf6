"""Scattering2D: equal to kymatio (the oracle the published weights were trained with), serializable, strict."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.layers.scattering import Scattering2D, morlet_filter_bank, padded_size, scattering_paths

KYMATIO_TOLERANCE = 1e-4


def _kymatio_numpy(x, J, L, max_order=2):
    from kymatio.numpy import Scattering2D as Oracle

    out = Oracle(J=J, shape=x.shape[1:], L=L, max_order=max_order)(x)  # (B, K, H', W')
    return np.transpose(out, (0, 2, 3, 1))


def test_equals_kymatio_keras_on_the_authors_standardized_cxr(shared):
    import h5py
    from kymatio.keras import Scattering2D as KymatioKeras

    with h5py.File(shared("fixtures", "cxrnet", "sample", "002130-004-1.h5"), "r") as h5:
        x = h5["X"][..., 0].astype("float32")[None]
    rng = np.random.default_rng(0)
    batch = np.concatenate([x, rng.standard_normal(x.shape).astype("float32")])
    inputs = keras.Input((300, 340))
    oracle = keras.Model(inputs, KymatioKeras(J=2, L=6)(inputs))
    expected = np.transpose(oracle(batch).numpy(), (0, 2, 3, 1))
    ours = Scattering2D(J=2, L=6)(batch[..., None]).numpy()
    assert ours.shape == expected.shape == (2, 75, 85, 49)
    worst = np.abs(ours - expected).max(axis=(0, 1, 2))
    print(f"max |ours - kymatio.keras| per channel: {worst.max():.2e} (channel {int(worst.argmax())})")
    assert worst.max() <= KYMATIO_TOLERANCE
    # every channel carries signal, so matching all 49 checks the channel order too
    assert np.all(np.abs(expected).max(axis=(0, 1, 2)) > 1e-3)


@pytest.mark.parametrize(
    "J, L, shape, max_order", [(1, 8, (32, 40), 2), (3, 4, (64, 72), 2), (2, 6, (33, 47), 1), (2, 3, (20, 24), 2)]
)
def test_equals_kymatio_for_other_scales_angles_and_odd_sizes(J, L, shape, max_order):
    x = np.random.default_rng(J * 10 + L).standard_normal((2, *shape)).astype("float32")
    ours = Scattering2D(J=J, L=L, max_order=max_order)(x).numpy()
    expected = _kymatio_numpy(x, J, L, max_order)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= KYMATIO_TOLERANCE


def test_paths_follow_kymatio_order():
    paths = scattering_paths(2, 6, 2)
    assert len(paths) == 49 == 1 + 2 * 6 + 6 * 6 * 2 * 1 // 2
    assert paths[0] == ()
    assert paths[1:13] == [((j, t),) for j in range(2) for t in range(6)]
    assert paths[13] == ((0, 0), (1, 0)) and paths[14] == ((0, 0), (1, 1)) and paths[19] == ((0, 1), (1, 0))
    assert Scattering2D(J=2, L=6).coefficients == 49
    assert padded_size(300, 2) == 308 and padded_size(340, 2) == 348


def test_multi_channel_input_is_channel_major():
    x = np.random.default_rng(1).standard_normal((2, 24, 28, 2)).astype("float32")
    layer = Scattering2D(J=2, L=3)
    both = layer(x).numpy()
    k = layer.coefficients
    assert both.shape == (2, 6, 7, 2 * k)
    for c in range(2):
        np.testing.assert_allclose(both[..., c * k : (c + 1) * k], layer(x[..., c]).numpy(), atol=1e-6)


def test_filter_bank_is_zero_mean_and_cached():
    phi, psi = morlet_filter_bank(32, 40, 2, 6)
    assert morlet_filter_bank(32, 40, 2, 6)[0] is phi
    assert len(phi) == 2 and phi[0].shape == (32, 40) and phi[1].shape == (16, 20)
    assert set(psi) == {(j, t) for j in range(2) for t in range(6)}
    for levels in psi.values():
        assert abs(float(levels[0][0, 0])) < 1e-6  # Morlet wavelets have no DC component
    assert abs(float(phi[0][0, 0]) - 1.0) < 1e-3  # the low-pass keeps it
    with pytest.raises(ValueError):
        phi[0][0, 0] = 2.0  # read-only: a shared cache must not be mutated


def test_keras_round_trip_keeps_only_the_parameters(tmp_path):
    inputs = keras.Input((24, 28, 1))
    model = keras.Model(inputs, Scattering2D(J=2, L=4, name="wst")(inputs))
    config = model.get_layer("wst").get_config()
    assert {k: config[k] for k in ("J", "L", "max_order")} == {"J": 2, "L": 4, "max_order": 2}
    assert len(json.dumps(config)) < 1000  # no filter arrays in the config
    path = tmp_path / "wst.keras"
    model.save(path)
    assert path.stat().st_size < 50_000
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).standard_normal((1, 24, 28, 1)).astype("float32")
    np.testing.assert_array_equal(reloaded(x).numpy(), model(x).numpy())
    assert reloaded.count_params() == 0


def test_runs_inside_tf_function_with_a_dynamic_batch():
    import tensorflow as tf

    layer = Scattering2D(J=2, L=3)
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, 24, 28, 1), tf.float32)])
    x = np.random.default_rng(3).standard_normal((3, 24, 28, 1)).astype("float32")
    np.testing.assert_allclose(fn(x).numpy(), layer(x).numpy(), atol=1e-6)


def test_bad_arguments_and_shapes_are_named():
    with pytest.raises(ValueError, match="J must be"):
        Scattering2D(J=0)
    with pytest.raises(ValueError, match="max_order"):
        Scattering2D(J=2, max_order=3)
    with pytest.raises(ValueError, match="static spatial sizes"):
        Scattering2D(J=2, L=4)(keras.Input((None, None, 1)))
    with pytest.raises(ValueError, match="smaller than 2\\*\\*J"):
        Scattering2D(J=3, L=4)(np.zeros((1, 6, 20, 1), "float32"))
