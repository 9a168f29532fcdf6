"""``make_dataset``: files or arrays → an (optionally shuffled and augmented) batched, prefetched ``tf.data.Dataset``.

Stages: indices → (shuffle) → batches of indices → load + recipe (one ``tf.numpy_function`` call per batch; its
examples are prepared by a shared pool of one thread per core, see :func:`_example_pool`; the NumPy/OpenCV/Pillow
kernels release the GIL, so the threads really run side by side) → (cache, per example) → augmentation (TF ops on
the batch, stateless, seeded per example) → prefetch. Label masks go through the recipe's geometry with nearest
neighbour interpolation and through the augmentation with the very same matrix as their image.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.data.augment import Augmentation, augment_batch, augmentation
from cxrzoo.preprocessing.io import read_image
from cxrzoo.preprocessing.recipes import Recipe
from cxrzoo.preprocessing.recipes import recipe as _recipe

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy.typing as npt
    import tensorflow as tf

    _Path: TypeAlias = str | os.PathLike
    # one (N, H, W[, C]) array, or per image a path or an array
    Images: TypeAlias = np.ndarray | Sequence[_Path | npt.ArrayLike]
    # one (N, H, W[, K]) array, or per image a mask path, a list of mask paths / arrays, or an (H, W[, K]) array
    Masks: TypeAlias = np.ndarray | Sequence[_Path | Sequence[_Path | npt.ArrayLike] | npt.ArrayLike]

MASK_ROLES = ("target", "input")

Loader = Callable[[int], tuple[np.ndarray, "np.ndarray | None"]]


def _is_path(x: object) -> bool:
    return isinstance(x, (str, os.PathLike))


def _image_at(images: Images, i: int) -> np.ndarray:
    item = images[i]
    if _is_path(item):
        return read_image(item, native_depth=True)
    item = np.asarray(item)
    return item.astype(np.uint8) if item.dtype == np.bool_ else item


def _masks_at(masks: Masks | None, i: int) -> list[np.ndarray]:
    if masks is None:
        return []
    if isinstance(masks, np.ndarray):
        item = masks[i]
    else:
        item = masks[i]
        if _is_path(item):
            return [read_image(item)]
        if isinstance(item, (list, tuple)):
            return [read_image(p) if _is_path(p) else _as_mask_array(np.asarray(p)) for p in item]
    item = _as_mask_array(np.asarray(item))
    if item.ndim == 3:
        return [item[..., k] for k in range(item.shape[-1])]
    return [item]


def _as_mask_array(m: np.ndarray) -> np.ndarray:
    return m.astype(np.uint8) if m.dtype == np.bool_ else m


def _binarize(m: np.ndarray) -> np.ndarray:
    """Label masks → {0, 1}: float masks at 0.5, 0/1 integer masks as they are, 0..255 masks at 128."""
    if m.dtype.kind == "f":
        return (m > 0.5).astype(np.float32)
    return (m > (0 if m.max(initial=0) <= 1 else 127)).astype(np.float32)


def _as_mask_input(m: np.ndarray) -> np.ndarray:
    """Mask inputs (CXR-Net Module 2's M) stay continuous: uint8 → [0, 1], floats as they are."""
    return m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else m.astype(np.float32)


def _make_loader(images: Images, masks: Masks | None, prep: Recipe | None, mask_role: str) -> Loader:
    finish = _binarize if mask_role == "target" else _as_mask_input

    def load(i: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        image = _image_at(images, i)
        mask_list = _masks_at(masks, i)
        if prep is not None:
            x, mask_list = prep.prepare(image, mask_list, out=out)
        else:
            x = image.astype(np.float32)
            if x.ndim == 2:
                x = x[..., None]
            for m in mask_list:
                if m.shape[:2] != x.shape[:2]:
                    raise ValueError(
                        f"example {i}: a mask of shape {m.shape} does not match its image of shape {x.shape}"
                    )
        m = np.stack([finish(m) for m in mask_list], axis=-1) if mask_list else None
        return x, m

    load.fills_slots = True  # see build_pipeline
    return load


def _aligned_empty(shape: tuple[int, ...], alignment: int = 64) -> np.ndarray:
    """An uninitialised float32 array in a buffer aligned for TensorFlow, which then adopts it without a copy
    (NumPy's default 16-byte alignment makes ``tf.numpy_function`` copy every batch: 7 ms for 16 × 320² × 3)."""
    nbytes = int(np.prod(shape)) * 4
    raw = np.empty(nbytes + alignment, np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset : offset + nbytes].view(np.float32).reshape(shape)


def _put(batch: np.ndarray, k: int, array: np.ndarray) -> None:
    if np.shape(array) != batch.shape[1:]:
        raise ValueError(
            f"examples of one batch differ in shape: {np.shape(array)} vs {batch.shape[1:]} (give a "
            "recipe that resizes, or images of one size)"
        )
    batch[k] = array


def _aligned_stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)`` as float32 in an aligned buffer (see :func:`_aligned_empty`)."""
    out = _aligned_empty((len(arrays),) + np.shape(arrays[0]))
    for k, array in enumerate(arrays):
        _put(out, k, array)
    return out


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _example_pool() -> ThreadPoolExecutor:
    """The threads that prepare examples for every dataset: one per core, created on first use, shared.

    Work is per example, not per batch, and first come first served: the batches in flight are finished in order,
    the last batch of an epoch is shared by all cores, and no thread stops to stack a finished batch (each example
    is written into its slot). With whole batches per tf.data worker, each worker idled 27-34 ms ("cxrnet") and
    54-190 ms ("covid_cxnet") per 300-image epoch on 2 cores; with the pool 6-8 ms (docs/performance.md). The
    pool never waits on itself, so sharing it cannot deadlock.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_cpu_count(), thread_name_prefix="cxrzoo-examples")
        return _POOL


def _forget_pool_after_fork() -> None:
    # A forked child inherits the executor object but not its threads.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _as_label_array(values: npt.ArrayLike | None, n: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values)
    if array.shape[:1] != (n,):
        raise ValueError(f"{name} must have one entry per image ({n}), got shape {array.shape}")
    if array.dtype.kind in "iub":
        return array.astype(np.int32)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contain NaN or infinite values")
        return array.astype(np.float32)
    raise TypeError(f"{name} must be numeric (map class names to ids first), got dtype {array.dtype}")


def make_dataset(
    images: Images,
    masks: Masks | None = None,
    labels: npt.ArrayLike | None = None,
    *,
    recipe: str | Recipe | None,
    augment: str | Augmentation | None = None,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    cache: str | None = None,
    drop_remainder: bool = False,
    sample_weights: npt.ArrayLike | None = None,
    mask_role: str = "target",
    num_parallel_calls: int | None = None,
) -> tf.data.Dataset:
    """Build the input pipeline of a paper's model from files or arrays.

    Args:
        images: a sequence of image paths (read with :func:`cxrzoo.preprocessing.read_image` at native depth),
            a sequence of 2-D/3-D arrays, or one ``(N, H, W[, C])`` array.
        masks: None; per image a mask path, a list of mask paths (one per mask class, e.g. ``lungs``,
            ``non_lungs``), or an array ``(H, W[, K])``; or one ``(N, H, W[, K])`` array. Masks must have their
            image's size. Label masks become float32 ``(H, W, K)`` in {0, 1} (0..255 masks: > 127; 0/1 masks:
            > 0; float masks: > 0.5).
        labels: None, or one class id / one-hot row / target per image.
        recipe: a recipe name (:func:`cxrzoo.preprocessing.recipe`), a :class:`Recipe`, or None to use the images
            as they are (cast to float32, no scaling: e.g. CXR-Net's standardized H5 arrays).
        augment: None, a preset name (:func:`cxrzoo.data.augment.list_augmentations`) or an
            :class:`~cxrzoo.data.augment.Augmentation`; applied after the recipe, to image and masks alike.
        batch_size: examples per batch.
        shuffle: reshuffle the examples every epoch (off by default, so ``model.predict(ds)`` lines up with the
            inputs and labels in order; training asks for it, as :func:`cxrzoo.training.fit_segmenter` does).
        seed: makes shuffling and augmentation reproducible (each epoch still differs); None draws fresh
            randomness.
        cache: None, "memory", or a file path prefix: cache the prepared (pre-augmentation) examples after the
            first epoch. With shuffling the shuffle buffer then holds the whole prepared set in memory.
        drop_remainder: drop a last, smaller batch.
        sample_weights: optional per-image weights, yielded as a third element (e.g. CXR-Net's ``w``).
        mask_role: "target" (masks are what the model predicts: nearest neighbour everywhere, binarized) or
            "input" (masks are a second model input, like CXR-Net Module 2's M: bilinear, kept continuous).
        num_parallel_calls: batches loaded at once (default: one per core); the examples of those batches are
            prepared by a shared pool of one thread per core, first come first served.

    Yields batches of:
        - ``x`` alone (no masks, no labels); ``(x, labels)``; ``(x, masks)`` for segmentation; ``(x, (masks,
          labels))`` when both are given; with ``mask_role="input"``: ``((x, masks), labels)``;
        - plus a trailing ``sample_weights`` element when given.

    Example::

        ds = make_dataset(paths, mask_paths, recipe="cxrnet", augment="cxrnet_module1", batch_size=8, seed=1)
        model.fit(ds, epochs=10)
    """
    if isinstance(images, np.ndarray) and images.dtype.kind in "USO":
        images = images.tolist()  # an array of paths
    if isinstance(masks, np.ndarray) and masks.dtype.kind in "USO":
        masks = masks.tolist()
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(f"an image array must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    elif _is_path(images) or not isinstance(images, Sequence):
        raise TypeError(
            f"images must be a sequence of paths or arrays, or an (N, H, W[, C]) array, got {type(images).__name__}"
        )
    n = len(images)
    if n == 0:
        raise ValueError("make_dataset: no images")
    if masks is not None and len(masks) != n:
        raise ValueError(f"masks must have one entry per image ({n}), got {len(masks)}")
    if mask_role not in MASK_ROLES:
        raise ValueError(f"mask_role must be one of {MASK_ROLES}, got {mask_role!r}")
    prep = _recipe(recipe) if isinstance(recipe, str) else recipe
    if prep is not None and not isinstance(prep, Recipe):
        raise TypeError(f"recipe must be a name, a Recipe or None, got {type(recipe).__name__}")
    load = _make_loader(images, masks, prep, mask_role)
    if prep is not None:
        x_shape = prep.output_shape
    elif isinstance(images, np.ndarray):
        x_shape = images.shape[1:] + ((1,) if images.ndim == 3 else ())
    else:
        x_shape = None  # from the first example
    return build_pipeline(
        load,
        n,
        x_shape=x_shape,
        has_masks=masks is not None,
        labels=labels,
        sample_weights=sample_weights,
        augment=augment,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        drop_remainder=drop_remainder,
        mask_role=mask_role,
        num_parallel_calls=num_parallel_calls,
    )


def build_pipeline(
    load: Loader,
    n: int,
    *,
    x_shape: Sequence[int | None] | None,
    has_masks: bool,
    labels: npt.ArrayLike | None = None,
    sample_weights: npt.ArrayLike | None = None,
    augment: str | Augmentation | None = None,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    cache: str | None = None,
    drop_remainder: bool = False,
    mask_role: str = "target",
    num_parallel_calls: int | None = None,
) -> tf.data.Dataset:
    """The pipeline behind :func:`make_dataset`, for any ``load(i) -> (x float32 (H, W, C), masks or None)``.

    Readers with their own storage (e.g. :func:`cxrzoo.data.cxrnet_h5_dataset`) use it directly. The first
    example is loaded eagerly to check the loader and learn the shapes. A loader with the attribute
    ``fills_slots = True`` is called as ``load(i, out)`` with its example's slot of the batch and may write ``x``
    there (returning ``out``) instead of returning a new array.
    """
    import tensorflow as tf

    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size}")
    if cache is not None and not isinstance(cache, str):
        raise TypeError(f"cache must be None, 'memory' or a file path prefix, got {cache!r}")
    aug: Augmentation | None = None if augment is None else augmentation(augment)
    labels = _as_label_array(labels, n, "labels")
    sample_weights = _as_label_array(sample_weights, n, "sample_weights")
    if sample_weights is not None:
        sample_weights = sample_weights.astype(np.float32)
        if labels is None and not (has_masks and mask_role == "target"):
            raise ValueError("sample_weights need targets: give labels or target masks")

    x0, m0 = load(0)
    if (m0 is not None) != has_masks:
        raise AssertionError("the loader's masks disagree with has_masks")
    if x_shape is None:
        x_shape = (None, None, x0.shape[-1])
    x_shape = tuple(x_shape)
    m_shape = None if m0 is None else x_shape[:2] + (m0.shape[-1],)
    parallel = _cpu_count() if num_parallel_calls is None else int(num_parallel_calls)
    if parallel < 1 and parallel != tf.data.AUTOTUNE:
        raise ValueError(f"num_parallel_calls must be a positive int, got {num_parallel_calls}")
    batch_size = int(batch_size)

    # Whole batches cross between TensorFlow and Python in one numpy_function call (per example, the crossing would
    # rival the cost of preparing a small image); inside it the examples go to the shared pool, and when the shapes
    # are known each thread writes its example straight into the batch.
    static = None not in x_shape  # the masks share the image's height and width
    fills_slots = getattr(load, "fills_slots", False)

    def _load_numpy(indices: np.ndarray) -> tuple[np.ndarray, ...]:
        ids = [int(i) for i in indices]
        if not static:
            examples = list(_example_pool().map(load, ids))
            x = _aligned_stack([e[0] for e in examples])
            return (x,) if m_shape is None else (x, _aligned_stack([e[1] for e in examples]))
        x = _aligned_empty((len(ids),) + x_shape)
        m = None if m_shape is None else _aligned_empty((len(ids),) + m_shape)

        def fill(k: int) -> None:
            slot = x[k]
            xk, mk = load(ids[k], slot) if fills_slots else load(ids[k])
            if xk is not slot:
                _put(x, k, xk)
            if m is not None:
                _put(m, k, mk)

        for _ in _example_pool().map(fill, range(len(ids))):  # in order; the first error is raised here
            pass
        return (x,) if m is None else (x, m)

    def _load(indices: tf.Tensor) -> dict[str, tf.Tensor]:
        touts = [tf.float32] if m_shape is None else [tf.float32, tf.float32]
        out = tf.numpy_function(_load_numpy, [indices], touts, stateful=False, name="load_examples")
        batch = {"i": indices, "x": tf.ensure_shape(out[0], (None,) + x_shape)}
        if m_shape is not None:
            batch["m"] = tf.ensure_shape(out[1], (None,) + m_shape)
        return batch

    label_tensor = None if labels is None else tf.constant(labels)
    weight_tensor = None if sample_weights is None else tf.constant(sample_weights)

    def _structure(batch: dict[str, tf.Tensor]):
        x, i = batch["x"], batch["i"]
        y = None if label_tensor is None else tf.gather(label_tensor, i)
        m = batch.get("m")
        if m is not None and mask_role == "input":
            x = (x, m)
        elif m is not None:
            y = m if y is None else (m, y)
        if y is None:
            return x
        return (x, y) if weight_tensor is None else (x, y, tf.gather(weight_tensor, i))

    def _load_and_structure(indices: tf.Tensor):
        return _structure(_load(indices))

    def _augment(batch: dict[str, tf.Tensor], r: tf.Tensor):
        # Each example's transform is keyed by (a per-epoch random stream, its index): reproducible with a seed,
        # different every epoch, and independent of which batch or worker handles the example.
        seeds = tf.stack([r[: tf.shape(batch["i"])[0]], batch["i"]], axis=1)
        masks = batch.get("m") if mask_role == "target" else None
        inputs = batch.get("m") if mask_role == "input" else None
        x, masks, inputs = augment_batch(aug, batch["x"], masks, seeds=seeds, mask_inputs=inputs)
        out = dict(batch, x=x)
        if "m" in batch:
            out["m"] = masks if masks is not None else inputs
        return _structure(out)

    ds = tf.data.Dataset.range(n)
    if cache is None:
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(_load if aug is not None else _load_and_structure, num_parallel_calls=parallel, deterministic=True)
    else:
        ds = ds.batch(batch_size).map(_load, num_parallel_calls=parallel, deterministic=True).unbatch()
        ds = ds.cache("" if cache == "memory" else cache)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if aug is None:
            ds = ds.map(_structure, num_parallel_calls=parallel, deterministic=True)
    if aug is not None:
        randomness = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(batch_size)
        ds = tf.data.Dataset.zip((ds, randomness)).map(_augment, num_parallel_calls=parallel, deterministic=True)
    # The loading work is Python (numpy_function) plus OpenCV/NumPy kernels; on a small machine it runs fastest in
    # the pipeline's own pool, one thread per core, with no intra-op fan-out of the pipeline's ops (measured on
    # 2 cores: ~15% more images/s and ~20% less CPU per image than TensorFlow's shared pools; docs/performance.md).
    options = tf.data.Options()
    options.threading.private_threadpool_size = _cpu_count()
    options.threading.max_intra_op_parallelism = 1
    # tf.data's autotuning is off, with fixed parallelism instead: with it on, iterating the dataset epoch after
    # epoch (`for batch in ds`, `list(ds)`) started about every other epoch 0.3 s late on TF 2.21 (160 images:
    # 0.63 instead of 0.33 s; docs/performance.md); and with the examples in the shared pool there is little left
    # to tune.
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
