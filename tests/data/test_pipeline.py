"""make_dataset: values equal the eager recipe, structure per use, seeded determinism, caching, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxrzoo.data import make_dataset, read_image_folder
from cxrzoo.preprocessing import read_image, recipe

RNG = np.random.default_rng(21)


@pytest.fixture
def v7(shared):
    samples = read_image_folder(shared("data", "v7_covid_lungs", "val"), masks=("lungs",))
    return samples.subset(range(6))


def _collect(ds):
    batches = [b if isinstance(b, tuple) else (b,) for b in ds]
    return [np.concatenate([b[k].numpy() for b in batches]) for k in range(len(batches[0]))]


def test_values_equal_the_eager_recipe_and_masks_follow(v7):
    x, m = _collect(make_dataset(v7.images, v7.masks, recipe="cxrnet", batch_size=4, shuffle=False))
    assert x.shape == (6, 300, 340, 1) and m.shape == (6, 300, 340, 1) and x.dtype == m.dtype == np.float32
    prep = recipe("cxrnet")
    for i, (path, (mask_path,)) in enumerate(zip(v7.images, v7.masks)):
        expected, (mask,) = prep.prepare(read_image(path, native_depth=True), [read_image(mask_path)])
        np.testing.assert_array_equal(x[i], expected)
        np.testing.assert_array_equal(m[i, ..., 0], (mask > 127).astype(np.float32))


def test_structures_for_each_use(v7):
    labels = np.array([0, 1, 0, 1, 1, 0])
    weights = np.linspace(0.5, 1.0, 6)
    only_x = next(iter(make_dataset(v7.images, recipe="screening_baselines", batch_size=3, shuffle=False)))
    assert only_x.shape == (3, 224, 224, 1)
    x, y = next(iter(make_dataset(v7.images, labels=labels, recipe="screening_baselines", batch_size=3, shuffle=False)))
    np.testing.assert_array_equal(y.numpy(), labels[:3])
    x, (m, y), w = next(
        iter(
            make_dataset(
                v7.images,
                v7.masks,
                labels,
                recipe="tahir_segmentation",
                batch_size=3,
                shuffle=False,
                sample_weights=weights,
            )
        )
    )
    assert x.shape == (3, 256, 256, 3) and m.shape == (3, 256, 256, 1)
    np.testing.assert_allclose(w.numpy(), weights[:3].astype(np.float32))
    (x, m), y = next(
        iter(make_dataset(v7.images, v7.masks, labels, recipe="cxrnet", batch_size=2, shuffle=False, mask_role="input"))
    )
    assert m.shape == (2, 300, 340, 1) and set(np.unique(m.numpy())) <= {0.0, 1.0}  # 0/255 → 0/1 continuous scale


def test_arrays_ragged_lists_and_multi_class_masks():
    images = RNG.integers(0, 256, (5, 40, 50), dtype=np.uint8)
    masks = RNG.integers(0, 2, (5, 40, 50, 2), dtype=np.uint8)  # already 0/1, two classes
    x, m = _collect(make_dataset(images, masks, recipe=None, batch_size=5, shuffle=False))
    np.testing.assert_array_equal(x[..., 0], images.astype(np.float32))  # recipe None: no scaling
    np.testing.assert_array_equal(m, masks.astype(np.float32))
    ragged = [RNG.integers(0, 256, s, dtype=np.uint8) for s in [(30, 40), (50, 20), (64, 64)]]
    bools = [img > 128 for img in ragged]
    x, m = _collect(make_dataset(ragged, bools, recipe="tahir_segmentation", batch_size=3, shuffle=False))
    assert x.shape == (3, 256, 256, 3) and m.shape == (3, 256, 256, 1)
    np.testing.assert_array_equal(x[2], recipe("tahir_segmentation")(ragged[2]))


def test_shuffling_and_augmentation_are_seeded(v7):
    def epochs(seed):
        ds = make_dataset(v7.images, v7.masks, recipe="cxrnet", augment="cxrnet_module1", batch_size=6, seed=seed)
        return [next(iter(ds)) for _ in range(2)], ds

    (a1, a2), ds = epochs(3)
    (b1, b2), _ = epochs(3)
    (c1, _), _ = epochs(4)
    for p, q in [(a1, b1), (a2, b2)]:
        np.testing.assert_array_equal(p[0].numpy(), q[0].numpy())
        np.testing.assert_array_equal(p[1].numpy(), q[1].numpy())
    assert not np.array_equal(a1[0].numpy(), a2[0].numpy())  # each epoch differs
    assert not np.array_equal(a1[0].numpy(), c1[0].numpy())  # another seed differs
    plain = _collect(make_dataset(v7.images, recipe="cxrnet", batch_size=6, shuffle=True, seed=1))[0]
    ordered = _collect(make_dataset(v7.images, recipe="cxrnet", batch_size=6, shuffle=False))[0]
    sums = lambda arr: sorted(arr.reshape(len(arr), -1).sum(1).tolist())
    assert sums(plain) == sums(ordered) and not np.array_equal(plain, ordered)  # a permutation


def test_cache_gives_the_same_examples(v7, tmp_path):
    kwargs = dict(recipe="covid_cxnet", batch_size=3, shuffle=False)
    reference = _collect(make_dataset(v7.images, **kwargs))[0]
    for cache in ("memory", str(tmp_path / "cache")):
        ds = make_dataset(v7.images, cache=cache, **kwargs)
        np.testing.assert_array_equal(_collect(ds)[0], reference)
        np.testing.assert_array_equal(_collect(ds)[0], reference)  # second epoch from the cache


def test_every_op_runs_in_parallel_map_like_eager(v7):
    # Parallel workers give what one eager call gives, whatever the scheduling.
    prep = recipe("tahir_classifier")
    ds = make_dataset(v7.images, recipe=prep, batch_size=6, shuffle=False, num_parallel_calls=4)
    x = _collect(ds)[0]
    for i, path in enumerate(v7.images):
        np.testing.assert_array_equal(x[i], prep(read_image(path)))


def test_errors_are_clear(v7, tmp_path):
    with pytest.raises(ValueError, match="one entry per image"):
        make_dataset(v7.images, v7.masks[:2], recipe="cxrnet", batch_size=2)
    with pytest.raises(ValueError, match="unknown recipe"):
        make_dataset(v7.images, recipe="cxr", batch_size=2)
    with pytest.raises(ValueError, match="mask_role"):
        make_dataset(v7.images, v7.masks, recipe="cxrnet", batch_size=2, mask_role="label")
    with pytest.raises(ValueError, match="no images"):
        make_dataset([], recipe="cxrnet", batch_size=2)
    with pytest.raises(TypeError, match="sequence of paths"):
        make_dataset(v7.images[0], recipe="cxrnet", batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(v7.images, recipe="cxrnet", batch_size=0)
    with pytest.raises(TypeError, match="numeric"):
        make_dataset(v7.images, labels=["a"] * 6, recipe="cxrnet", batch_size=2)
    with pytest.raises(ValueError, match="sample_weights need targets"):
        make_dataset(v7.images, recipe="cxrnet", batch_size=2, sample_weights=np.ones(6))
    import tensorflow as tf

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "fine.png")
    ds = make_dataset([str(tmp_path / "fine.png"), str(broken)], recipe="cxrnet", batch_size=2, shuffle=False)
    with pytest.raises(tf.errors.OpError, match="broken.png"):
        list(ds)
    ragged = [np.zeros((4, 5), np.uint8), np.zeros((6, 5), np.uint8)]
    with pytest.raises(tf.errors.OpError, match="differ in shape"):
        list(make_dataset(ragged, recipe=None, batch_size=2, shuffle=False))


def test_the_examples_of_one_batch_are_shared_by_the_pool():
    # The epoch's last batch must not run on one core while the others idle: its examples go to every pool thread.
    import threading
    import time

    from cxrzoo.data.pipeline import _cpu_count, build_pipeline

    if _cpu_count() < 2:
        pytest.skip("one core: the pool has a single thread")
    threads = {}

    def load(i):
        time.sleep(0.02)  # releases the GIL, like the decoders
        threads[i] = threading.get_ident()
        return np.full((2, 3, 1), i, np.float32), None

    ds = build_pipeline(load, 9, x_shape=(2, 3, 1), has_masks=False, batch_size=8, shuffle=False)
    threads.clear()  # the eager first call
    batches = [b.numpy() for b in ds]
    np.testing.assert_array_equal(np.concatenate(batches)[:, 0, 0, 0], np.arange(9))
    assert len({threads[i] for i in range(8)}) >= 2


def test_loaders_that_fill_batch_slots_and_those_that_return_arrays_agree():
    from cxrzoo.data.pipeline import build_pipeline

    images = RNG.integers(0, 256, (5, 40, 50), dtype=np.uint8)
    prep = recipe("tahir_classifier", size=(24, 32))
    slots = []

    def returning(i):
        return prep.prepare(images[i])[0], None

    def filling(i, out=None):
        slots.append(out is not None)
        return prep.prepare(images[i], out=out)[0], None

    filling.fills_slots = True
    x = {}
    for name, load in (("returning", returning), ("filling", filling)):
        ds = build_pipeline(load, 5, x_shape=prep.output_shape, has_masks=False, batch_size=2, shuffle=False)
        x[name] = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_array_equal(x["filling"], x["returning"])
    assert slots.count(True) == 5  # every example of the dataset went straight into its slot


def test_autotuning_is_off():
    # With tf.data's autotuning on, iterating epoch after epoch started about every other epoch 0.3 s late on
    # TF 2.21 (docs/performance.md): fixed parallelism instead.
    ds = make_dataset(RNG.integers(0, 256, (3, 8, 8), dtype=np.uint8), recipe=None, batch_size=2)
    assert ds.options().autotune.enabled is False
