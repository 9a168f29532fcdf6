"""CXR-Net's high-resolution Grad-CAM heat maps (§3.2.2; docs/models/cxrnet.md).

Module 2 keeps its maps at 75×85 up to the last layer, whose two channels, masked and averaged over the six
members, are globally pooled into the class logits. The authors' maps (``_HEAT_MAP_DIFF``, layer ``average``):

* for class c, the Grad-CAM weights are the spatial means of ∂p_c/∂A per channel of the averaged map A, and the
  map is Σ_ch weight·A_ch, **without ReLU**;
* bilinear up-sampling to 300×340 (``cv2.resize``), restriction to the lung mask (M > 0.3 at full resolution),
  min-max scaling to [0, 1] over the pixels inside the mask;
* the difference map is the positive map minus the negative map.

Because the head is softmax(GAP(A)), the two class maps are opposite (the weights are ±p0·p1/(H·W)), so inside
the mask ``difference = 2·positive − 1`` exactly; the tests check this property.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.models.cxrnet.layers import native_dilation, xla_depthwise
from cxrzoo.nn.model import check_input, spec_of
from cxrzoo.nn.rewrite import fold_batch_norm, polyphase_dilated

if TYPE_CHECKING:
    import keras
    import numpy.typing as npt
    import tensorflow as tf
    from matplotlib.figure import Figure

__all__ = ["cxrnet_figure", "cxrnet_heatmaps", "cxrnet_heatmaps_at_size", "cxrnet_scores"]

_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# Batches run in chunks of at most 8 images (memory); with XLA, which compiles once per batch size, a chunk is
# also padded up to one of these sizes.
_BATCH_BUCKETS = (1, 2, 4, 8)


def _member_maps(model: keras.Model) -> list:
    """The members' masked maps as symbolic tensors of ``model``'s graph: the inputs of the averaging layer."""
    layer = model.get_layer("feature_map")
    inputs = layer.input
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _heatmap_step(model: keras.Model, jit_compile: bool | str, maps: bool = True) -> Callable[..., dict]:
    """images → dict of scores, member scores, (class maps at full size,) mask and lung probability; compiled,
    cached per model, mode and whether the maps are wanted (without them there is no backward pass)."""
    steps = _STEPS.setdefault(model, {})
    if (jit_compile, maps) in steps:
        return steps[(jit_compile, maps)]
    import keras
    import tensorflow as tf

    names = {layer.name for layer in model.layers}
    missing = {"feature_map", "gap"} - names
    if missing:
        raise ValueError(
            f"model {model.name!r} is not a CXR-Net model (no layer {sorted(missing)[0]!r}); "
            "use cxrzoo.build_cxrnet() or cxrzoo.build_cxrnet_classifier()"
        )
    gap = model.get_layer("gap")
    head = model.get_layer("predictions") if "predictions" in names else None
    end_to_end = isinstance(model.output, dict)
    if not end_to_end and len(model.inputs) != 2:
        raise ValueError(f"model {model.name!r}: expected the end-to-end CXR-Net or the [image, mask] classifier")
    threshold = model.get_layer("member0").get_layer("mask_binary").threshold
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    specs = [tf.TensorSpec((None, *tuple(t.shape[1:])), tf.float32) for t in model.inputs]
    signature = [specs[0]] if end_to_end else [specs]

    def classify(feature_map):
        scores = gap(feature_map)
        return head(scores) if head is not None else scores

    def maps_and_scores(out, mask, lungs):
        # each member's own head is softmax(GAP(its masked map)); the ensemble's is the same on their average
        result = {
            "members": tf.stack([classify(m) for m in out["members"]], axis=1),
            "inside": mask[..., 0] > threshold,
            "lungs": lungs[..., 0],
        }
        if not maps:
            result["scores"] = classify(out["feature_map"])
            return result
        feature_map = out["feature_map"]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(feature_map)
            scores = classify(feature_map)
            per_class = [scores[:, c] for c in range(scores.shape[-1])]
        cams = []
        for score in per_class:
            grads = tape.gradient(score, feature_map)  # rows are independent: one backward pass serves the batch
            weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
            cams.append(tf.reduce_sum(weights * feature_map, axis=-1))
        del tape
        cams = tf.stack(cams, axis=-1)  # (B, h, w, classes)
        # TF's half-pixel-centre bilinear resize is cv2.resize(INTER_LINEAR) for up-sampling.
        result["scores"] = scores
        result["cams"] = tf.image.resize(cams, size, method="bilinear")
        return result

    if end_to_end and jit_compile != "all":
        # Module 1 on TensorFlow's own (oneDNN) kernels, which run its full-resolution dilated depthwise
        # convolutions faster on CPU than XLA, with its BatchNormalizations folded into the convolutions (a fifth
        # of its time at 300×340) and its rate-5 branches on polyphase components (rate 3 is faster on TF's
        # dilated kernel, native_dilation below); with jit_compile=True, Module 2 and the heat-map math, many
        # small ops at 75×85, as one XLA cluster (a jit-compiled function called from the graph).
        module1 = model.get_layer("module1")
        segmenter = fold_batch_norm(polyphase_dilated(module1, min_rate=4))
        snapshot = [w.numpy() for w in module1.weights]
        scale, lung_channel = model.get_layer("module1_scale"), model.get_layer("lung_mask")
        gate, standardize = model.get_layer("mask"), model.get_layer("standardize")
        standardized, mask = standardize.output, gate.output
        back = keras.Model(
            [standardized, mask],
            {"feature_map": model.get_layer("feature_map").output, "members": _member_maps(model)},
        )

        def module2(standardized, mask, lungs):
            return maps_and_scores(back([standardized, mask], training=False), mask, lungs)

        if jit_compile:
            module2 = tf.function(module2, jit_compile=True)

        @tf.function(input_signature=signature)
        def hybrid(images):
            # Module 1 one image at a time: its full-resolution activations (about 160 MB per image) are what a
            # batch costs in memory; Module 2 at 75×85 stays batched. The same numbers either way.
            with native_dilation(3):
                lungs = tf.map_fn(
                    lambda image: lung_channel(segmenter(scale(image[None]), training=False))[0],
                    images,
                    parallel_iterations=1,
                )
            mask = gate([images, lungs])
            # traced here, so only Module 2's layers get the depthwise form XLA fuses
            with xla_depthwise() if jit_compile else contextlib.nullcontext():
                return module2(standardize(images), mask, lungs)

        def run_hybrid(images: np.ndarray) -> Sequence[tf.Tensor]:
            # the folded copy is a snapshot of Module 1: fold again if its weights have changed since (fine-tuning)
            if any(not np.array_equal(w.numpy(), old) for w, old in zip(module1.weights, snapshot)):
                del steps[(jit_compile, maps)]
                return _heatmap_step(model, jit_compile, maps)(images)
            return hybrid(images)

        steps[(jit_compile, maps)] = run_hybrid
        return run_hybrid

    outputs = {"feature_map": model.get_layer("feature_map").output, "members": _member_maps(model)}
    if end_to_end:
        outputs.update(mask=model.output["mask"], lung_mask=model.output["lung_mask"])
    forward = keras.Model(model.inputs, outputs)

    @tf.function(input_signature=signature, jit_compile=bool(jit_compile))
    def step(inputs: tf.Tensor | list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        out = forward(inputs, training=False)
        mask = out["mask"] if end_to_end else inputs[1]
        lungs = out["lung_mask"] if end_to_end else inputs[1]
        return maps_and_scores(out, mask, lungs)

    def run(inputs: np.ndarray | list[np.ndarray]) -> Sequence[tf.Tensor]:
        if not jit_compile:
            return step(inputs)
        with xla_depthwise():  # read while tracing: the XLA graph gets the fusable depthwise form
            return step(inputs)

    steps[(jit_compile, maps)] = run
    return run


def _run_chunked(
    step: Callable[..., dict], x: np.ndarray | list[np.ndarray], n: int, pad: bool
) -> dict[str, np.ndarray]:
    """Runs ``step`` on chunks of at most 8 images, padded to :data:`_BATCH_BUCKETS` sizes if ``pad``."""
    largest = _BATCH_BUCKETS[-1]
    parts = []
    for start in range(0, n, largest):
        chunk = [a[start : start + largest] for a in x] if isinstance(x, list) else x[start : start + largest]
        count = (chunk[0] if isinstance(chunk, list) else chunk).shape[0]
        size = next(b for b in _BATCH_BUCKETS if b >= count) if pad else count
        if size > count:
            chunk = [_pad_rows(a, size) for a in chunk] if isinstance(chunk, list) else _pad_rows(chunk, size)
        parts.append({k: t.numpy()[:count] for k, t in step(chunk).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` with zero rows appended up to ``size`` rows (a fixed XLA batch size)."""
    return np.concatenate([a, np.zeros((size - a.shape[0], *a.shape[1:]), a.dtype)])


def _normalize(cam: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] over the pixels inside the mask; 0 outside (and everywhere for a flat map)."""
    if not inside.any():
        return np.zeros_like(cam, dtype=np.float32)
    values = cam[inside]
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(cam, dtype=np.float32)
    return np.where(inside, (cam - low) / (high - low), 0.0).astype(np.float32)


def _as_batch(
    model: keras.Model, images: npt.ArrayLike | Sequence[npt.ArrayLike]
) -> tuple[np.ndarray | list[np.ndarray], int]:
    spec = spec_of(model)
    if spec is not None and getattr(model, "check_inputs", True) and isinstance(images, np.ndarray):
        # the same contract as model.predict: x / 255 is an error here too, not "no lung found"
        check_input(spec, images if images.ndim == 4 else images[..., None], where="the images", stacklevel=4)
    if isinstance(model.output, dict):
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[..., None]
        expected = tuple(model.inputs[0].shape[1:])
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(
                f"images must be (B, {expected[0]}, {expected[1]}) or "
                f"(B, {', '.join(map(str, expected))}) prepared CXRs, got shape {np.shape(images)}"
            )
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"images must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 255:
            raise ValueError(
                "images must be prepared 8-bit CXRs with finite values in 0..255 (see cxrzoo.prepare_cxrnet_input)"
            )
        return x, x.shape[0]
    if not isinstance(images, (list, tuple)) or len(images) != 2:
        raise ValueError("the classifier takes [image, mask]: pass images=[X, M]")
    x, m = (np.asarray(a, np.float32) for a in images)
    if x.shape != m.shape or x.ndim != 4 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise ValueError(f"X and M must be finite (B, H, W, 1) arrays of one shape, got {x.shape} and {m.shape}")
    return [x, m], x.shape[0]


def cxrnet_heatmaps(
    model: keras.Model,
    images: npt.ArrayLike | Sequence[npt.ArrayLike],
    *,
    empty: str = "raise",
    jit_compile: bool | str = False,
) -> dict[str, np.ndarray]:
    """The CXR-Net authors' positive, negative and difference heat maps at full input resolution.

    Reference: Gatti et al., CXR-Net, §3.2.2, Figs. 12–14; docs/models/cxrnet.md

    Args:
        model: the end-to-end model of :func:`cxrzoo.build_cxrnet` (or one reloaded from ``.keras``), or the
            Module 2 classifier of :func:`cxrzoo.build_cxrnet_classifier`.
        images: for the end-to-end model, prepared CXRs (B, 300, 340) or (B, 300, 340, 1) with values 0..255
            (:func:`cxrzoo.prepare_cxrnet_input`); for the classifier, ``[X, M]`` as it takes them.
        empty: what to do with an image whose lung mask is empty: "raise" (ValueError naming the images) or
            "zeros" (its maps are all 0 and its ``mask`` all False; a batch job can report it and go on).
        jit_compile: False (default): TensorFlow's graph executor. True: Module 2 and the heat-map computation
            compiled with XLA, Module 1 left on TensorFlow's kernels (for the end-to-end model; the classifier is
            all Module 2); the fastest on CPU (docs/performance.md). In both, the end-to-end model's Module 1 runs
            as an inference copy (:func:`cxrzoo.models.fold_batch_norm` of
            :func:`cxrzoo.models.polyphase_dilated`), rebuilt when its weights change. "all": the whole
            end-to-end model as it is, with XLA.
            With XLA the first call for each batch size (batches are padded to 1, 2, 4 or 8 images) compiles for
            5-30 s: worth it for many images. All modes give the same maps to about 1e-5.

    Returns:
        A dict of NumPy arrays: ``positive`` and ``negative`` (B, H, W) float32 in [0, 1] inside the mask,
        ``difference`` (B, H, W) in [−1, 1] (positive − negative), all 0 outside the mask; ``mask`` (B, H, W) bool
        (lung mask > 0.3, the region the maps are defined on); ``probabilities`` (B, 2); ``member_probabilities``
        (B, 6, 2), each member's own softmax(GAP(masked map)); ``class_maps`` (B, H, W, 2), the Grad-CAM maps
        before masking and scaling (:func:`cxrnet_heatmaps_at_size` makes the maps at another size from them);
        ``lung_mask`` (B, H, W) float32 (Module 1's lung probability, or the classifier's M input). The whole
        batch goes through one forward and one backward pass; results are deterministic and do not depend on
        which other images share the batch.

    Raises:
        ValueError: bad images, a model that is not CXR-Net, or an image whose lung mask is empty (named by index).

    Examples:
        >>> model = cxrzoo.build_cxrnet()
        >>> maps = cxrnet_heatmaps(model, cxrzoo.prepare_cxrnet_input("cxr.png")[None])
        >>> maps["difference"][0]       # (300, 340), red = COVID-19 evidence
    """
    if empty not in ("raise", "zeros"):
        raise ValueError(f"empty must be 'raise' or 'zeros', got {empty!r}")
    if not (isinstance(jit_compile, bool) or jit_compile == "all"):
        raise ValueError(f"jit_compile must be False, True or 'all', got {jit_compile!r}")
    step = _heatmap_step(model, jit_compile)
    x, n = _as_batch(model, images)
    if n == 0:
        raise ValueError("images is an empty batch")
    out = _run_chunked(step, x, n, pad=bool(jit_compile))
    scores, cams, inside, lungs = out["scores"], out["cams"], out["inside"], out["lungs"]
    blank = [i for i in range(n) if not inside[i].any()]
    if blank and empty == "raise":
        raise ValueError(f"no lung found in image(s) {blank}: the lung mask is empty, so there is no region to map")
    positive = np.stack([_normalize(cams[i, ..., 0], inside[i]) for i in range(n)])
    negative = np.stack([_normalize(cams[i, ..., 1], inside[i]) for i in range(n)])
    return {
        "positive": positive,
        "negative": negative,
        "difference": (positive - negative).astype(np.float32),
        "mask": inside,
        "probabilities": scores.astype(np.float32),
        "member_probabilities": out["members"].astype(np.float32),
        "class_maps": cams.astype(np.float32),
        "lung_mask": lungs.astype(np.float32),
    }


def cxrnet_scores(
    model: keras.Model, images: npt.ArrayLike | Sequence[npt.ArrayLike], *, jit_compile: bool | str = False
) -> dict[str, np.ndarray]:
    """CXR-Net's scores, each member's scores and the lung mask, without the heat maps (no backward pass).

    The fastest way to the published model's probabilities: the same compiled forward pass as
    :func:`cxrnet_heatmaps` (Module 1 as its folded, polyphase inference copy), so the probabilities are the same.

    Args:
        model: the end-to-end model of :func:`cxrzoo.build_cxrnet` (or the ``[X, M]`` classifier).
        images: prepared CXRs (B, 300, 340[, 1]) with values 0..255 (:func:`cxrzoo.prepare_cxrnet_input`).
        jit_compile: as in :func:`cxrnet_heatmaps`.

    Returns:
        A dict of NumPy arrays: ``probabilities`` (B, 2) (index 0 = COVID-19 positive), ``member_probabilities``
        (B, members, 2) (each member's own softmax(GAP(masked map)); their spread is the ensemble's
        disagreement), ``lung_mask`` (B, H, W) float32 (Module 1's lung probability) and ``has_lungs`` (B,) bool
        (False: Module 2 saw no lung pixel, so the scores are those of an empty map, 0.5/0.5).

    Example:
        >>> out = cxrnet_scores(cxrzoo.build_cxrnet(), cxrzoo.prepare_cxrnet_input("cxr.png")[None])
        >>> out["probabilities"][0], out["member_probabilities"][0, :, 0].std()
    """
    if not (isinstance(jit_compile, bool) or jit_compile == "all"):
        raise ValueError(f"jit_compile must be False, True or 'all', got {jit_compile!r}")
    step = _heatmap_step(model, jit_compile, maps=False)
    x, n = _as_batch(model, images)
    if n == 0:
        raise ValueError("images is an empty batch")
    out = _run_chunked(step, x, n, pad=bool(jit_compile))
    return {
        "probabilities": out["scores"].astype(np.float32),
        "member_probabilities": out["members"].astype(np.float32),
        "lung_mask": out["lungs"].astype(np.float32),
        "has_lungs": out["inside"].any(axis=(1, 2)),
    }


def cxrnet_heatmaps_at_size(maps: Mapping[str, np.ndarray], index: int, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """One image's maps of a :func:`cxrnet_heatmaps` result at another size (e.g. the original image's).

    The authors' definition at the new resolution: the class maps resized bilinearly (OpenCV), the region the
    maps are defined on resized as a mask (nearest), then min-max scaled inside it. As at the model's size, inside
    the mask ``difference == 2 * positive - 1`` up to float rounding.

    Returns a dict in the layout of :func:`cxrnet_heatmaps` for a batch of one: ``positive``, ``negative``,
    ``difference`` (1, H, W) float32, ``mask`` (1, H, W) bool, ``probabilities`` (1, 2); so
    ``cxrnet_figure(original_image, cxrnet_heatmaps_at_size(maps, i, original_image.shape))`` draws the figure on
    the original image.

    Example:
        >>> big = cxrnet_heatmaps_at_size(maps, 0, image.shape[:2])
        >>> fig = cxrnet_figure(image, big)
    """
    import cv2

    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be (H, W) with positive entries, got {size!r}")
    cams = cv2.resize(np.ascontiguousarray(maps["class_maps"][index], np.float32), (width, height))
    inside = cv2.resize(maps["mask"][index].astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    positive = _normalize(cams[..., 0], inside)
    negative = _normalize(cams[..., 1], inside)
    return {
        "positive": positive[None],
        "negative": negative[None],
        "difference": (positive - negative).astype(np.float32)[None],
        "mask": inside[None],
        "probabilities": np.asarray(maps["probabilities"][index : index + 1], np.float32),
    }


def cxrnet_figure(
    image: npt.ArrayLike,
    maps: Mapping[str, np.ndarray],
    index: int = 0,
    *,
    title: str | None = None,
    class_names: Sequence[str] = ("Positive", "Negative"),
) -> Figure:
    """The authors' four-panel heat-map figure for one image of a :func:`cxrnet_heatmaps` result.

    Panels: the input; the positive map (opacity min(0.5, p_covid)); the negative map (opacity
    min(0.5, p_non_covid)); the difference map on a −1..1 scale (opacity min(0.5, |p_covid − p_non_covid|)),
    jet colour map, nothing drawn outside the lung mask; scores in the titles (docs/models/cxrnet.md).

    Args:
        image: the prepared (300, 340) CXR (as given to the model).
        maps: the dict returned by :func:`cxrnet_heatmaps`.
        index: which image of the batch.
        title: title of the input panel (e.g. the file name).
        class_names: score labels of classes 0 and 1.

    Returns:
        A ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state); save it with ``fig.savefig(path)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    img = np.asarray(image, np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    inside = np.asarray(maps["mask"][index], bool)
    if img.shape != inside.shape:
        raise ValueError(f"image {img.shape} does not match the maps {inside.shape}")
    p_pos, p_neg = (float(v) for v in maps["probabilities"][index][:2])
    panels = [
        (f"{class_names[0]} score: {p_pos:.3f}", maps["positive"][index], Normalize(0.0, 1.0), min(0.5, p_pos)),
        (f"{class_names[1]} score: {p_neg:.3f}", maps["negative"][index], Normalize(0.0, 1.0), min(0.5, p_neg)),
        ("DIFFERENCE MAP", maps["difference"][index], Normalize(-1.0, 1.0), min(0.5, abs(p_pos - p_neg))),
    ]
    fig = Figure(figsize=(16, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4)
    axes[0].imshow(img, cmap="gray")
    axes[0].set_title(title or "input")
    for ax, (name, heat, norm, alpha) in zip(axes[1:], panels):
        ax.imshow(img, cmap="gray")
        ax.imshow(np.ma.masked_where(~inside, heat), cmap="jet", norm=norm, alpha=alpha)
        ax.set_title(name)
    for ax in axes:
        ax.axis("off")
    with warnings.catch_warnings():
        # DejaVu lacks a few glyphs of the titles on some systems; the figure is complete without them
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        fig.tight_layout()
    return fig
