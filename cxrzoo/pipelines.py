"""Use a published model on your own images in one call: :func:`pipeline` and :func:`segment_lungs`.

A :class:`Pipeline` binds a model to its spec: it reads images (paths of PNG/JPEG/TIFF/DICOM files, or arrays of any
size and bit depth), prepares them with the recipe the weights were trained on, runs the model and returns results
with label names; segmentation masks come back at each image's original size. Nothing about the input contract is
left to the caller.

Example::

    import cxrzoo
    covid = cxrzoo.pipeline("cxrnet")                       # the authors' CXR-Net, both weights files
    result = covid.predict(["cxr.png"])[0]
    result["probabilities"]                                 # {'covid': 0.0042, 'non_covid': 0.9958}
    lungs = cxrzoo.segment_lungs(["cxr.png"])[0]
    lungs["mask"].shape, lungs["areas"]["left"]["fraction"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import keras
import numpy as np

from cxrzoo.nn.model import InputContractError
from cxrzoo.preprocessing.images import PATH_TYPES, ImageInput, image_list, load_image
from cxrzoo.preprocessing.lungs import split_lungs
from cxrzoo.preprocessing.recipes import Recipe, recipe
from cxrzoo.registry import create_model
from cxrzoo.spec import SPECS, ModelSpec


def _as_items(images: ImageInput | Sequence[ImageInput]) -> list:
    try:
        return image_list(images)[0]
    except ValueError as err:
        raise InputContractError(str(err)) from None


def _load(item: ImageInput) -> np.ndarray:
    """One image at full depth (a pipeline's recipe does the rest, colour included)."""
    try:
        return load_image(item, native_depth=True, gray=False)
    except ValueError as err:
        if isinstance(item, PATH_TYPES):
            raise
        raise InputContractError(str(err)) from None


def _resize_back(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, K) float maps → (H, W, K) by bilinear interpolation (OpenCV, half-pixel centres)."""
    out = cv2.resize(np.ascontiguousarray(maps, np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return out.reshape(size + (maps.shape[-1],))


def _from_logits(scores: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis: sigmoid for one output, softmax for several."""
    if scores.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-scores))
    z = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Pipeline:
    """A published model with its preparation and label names; build one with :func:`pipeline`.

    Attributes:
        model: the Keras model (carries its spec; fine-tune it like any Keras model).
        spec: its :class:`~cxrzoo.spec.ModelSpec`.
        recipe: the :class:`~cxrzoo.preprocessing.Recipe` its weights were trained with.
    """

    def __init__(self, model: keras.Model, spec: ModelSpec, *, batch_size: int = 8):
        if spec.recipe is None:
            raise ValueError(
                f"there is no image pipeline for {spec.name!r} ({spec.description}): it has no preparation recipe; "
                f"its input is {spec.input.description}; see its model card"
            )
        if spec.task not in ("classification", "segmentation"):
            raise ValueError(f"{spec.name!r} is a {spec.task} model; pipelines cover classification and segmentation")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.spec = spec
        self.recipe: Recipe = recipe(weights=spec)
        self.batch_size = int(batch_size)

    def __repr__(self) -> str:
        return f"Pipeline({self.spec.name!r}, labels={list(self.spec.output.labels)}, recipe={self.recipe.name!r})"

    def preprocess(self, images: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        """The model's input batch, float32 (N, H, W, C), for paths or arrays of any size and depth."""
        return np.stack([self.recipe.prepare(_load(item))[0] for item in _as_items(images)])

    def _raw(self, batch: np.ndarray) -> np.ndarray:
        out = self.model.predict(batch, batch_size=self.batch_size, verbose=0)
        if isinstance(out, dict):
            out = out[self.spec.output.key]
        elif isinstance(out, (list, tuple)):
            out = out[0]
        return np.asarray(out, np.float32)

    def predict(self, images: ImageInput | Sequence[ImageInput]) -> list[dict[str, Any]]:
        """One result dict per image, in input order.

        Classification: ``probabilities`` ({label: p}), ``label`` (the most probable one) and, for a binary
        decision, ``positive`` (its label's probability ≥ the spec's threshold). Segmentation: ``probabilities``
        ((H, W, K) float32 at the image's own size, channels named by ``channels``) and ``masks`` ({channel: (H, W)
        bool} at the spec's threshold).
        """
        items = _as_items(images)
        results = []
        for start in range(0, len(items), self.batch_size):
            arrays = [_load(item) for item in items[start : start + self.batch_size]]
            batch = np.stack([self.recipe.prepare(a)[0] for a in arrays])
            results += self.predict_prepared(batch, [a.shape[:2] for a in arrays])
        return results

    def predict_prepared(self, batch: np.ndarray, sizes: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        """:meth:`predict` for a batch already prepared with :attr:`recipe` (e.g. in other threads or processes).

        ``batch`` is float32 (N, H, W, C) as :meth:`preprocess` makes it; ``sizes`` the N original (height,
        width), to which segmentation maps are mapped back. The results equal :meth:`predict`'s on the same
        images, whichever other images share the batch.

        Example::

            pipe = cxrzoo.pipeline("res_cr_net.v7_lungs")
            image = cxrzoo.preprocessing.read_image("cxr.png", native_depth=True)
            pipe.predict_prepared(pipe.preprocess([image]), [image.shape[:2]])[0]["masks"]["lungs"]
        """
        batch = np.asarray(batch, np.float32)
        if len(sizes) != len(batch):
            raise ValueError(f"{len(batch)} prepared images but {len(sizes)} sizes")
        raw = self._raw(batch)
        return [self._result(out, tuple(int(v) for v in size[:2])) for out, size in zip(raw, sizes)]

    def _result(self, out: np.ndarray, size: tuple[int, int]) -> dict[str, Any]:
        spec, labels = self.spec, self.spec.output.labels
        if spec.task == "classification":
            p = _from_logits(out) if spec.output.activation is None else out
            result: dict[str, Any] = {
                "probabilities": {label: float(v) for label, v in zip(labels, p)},
                "label": labels[int(np.argmax(p))] if len(labels) > 1 else None,
            }
            if spec.output.positive is not None:
                threshold = 0.5 if spec.output.kind == "logits" else spec.output.threshold
                result["positive"] = bool(p[labels.index(spec.output.positive)] >= threshold)
            return result
        maps = _resize_back(_from_logits(out) if spec.output.activation is None else out, size)
        threshold = spec.output.threshold if spec.output.activation is not None else 0.5
        return {
            "channels": labels,
            "probabilities": maps,
            "masks": {label: maps[..., k] >= threshold for k, label in enumerate(labels)},
        }


def pipeline(name: str, *, model: keras.Model | None = None, batch_size: int = 8, **kwargs: Any) -> Pipeline:
    """A :class:`Pipeline` for a published model (``"cxrnet"``, ``"res_cr_net.v7_lungs"``, …) or an architecture.

    ``name`` is resolved as by :func:`cxrzoo.create_model` (an architecture gets its default published weights);
    ``model`` passes a model you already built or fine-tuned (it must carry the same spec); ``kwargs`` go to
    :func:`cxrzoo.create_model`.
    """
    if model is None:
        model = create_model(name, **kwargs)
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        spec = SPECS.get(name)
    return Pipeline(model, spec, batch_size=batch_size)


def segment_lungs(
    images: ImageInput | Sequence[ImageInput], *, weights: str = "res_cr_net.v7_lungs", batch_size: int = 8
) -> list[dict[str, Any]]:
    """Lung masks at each image's original size, with per-lung areas.

    The images go through the model's own preparation (Res-CR-Net: 300×340, equalized), the lung probability is
    resized back to the image's size (bilinear) and thresholded at the spec's 0.5; the mask is split into the
    patient's left and right lung (radiological orientation: the patient's left is on the image's right).

    Returns, per image: ``mask`` ((H, W) bool), ``probability`` ((H, W) float32), ``areas``: ``{"left": {"pixels",
    "fraction"}, "right": {...}, "total": {...}}`` (fractions of the image's pixels).

    Example::

        out = cxrzoo.segment_lungs("cxr.png")[0]
        out["areas"]["total"]["fraction"]
    """
    pipe = _lung_pipelines(weights, batch_size)
    spec = pipe.spec
    channel = lung_channel(spec)
    if spec.task != "segmentation":
        raise ValueError(f"segment_lungs needs a lung segmenter; {spec.name!r} is a {spec.task} model")
    results = []
    for res in pipe.predict(images):
        mask = res["masks"][channel]
        k = spec.output.labels.index(channel)
        results.append({"mask": mask, "probability": res["probabilities"][..., k], "areas": lung_areas(mask)})
    return results


def lung_channel(spec: ModelSpec) -> str:
    """The output channel of a lung segmenter's spec that holds the lungs."""
    return "lungs" if "lungs" in spec.output.labels else spec.output.labels[0]


def lung_areas(mask: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-lung areas of a lung mask, as :func:`segment_lungs` reports them.

    ``{"left": {"pixels", "fraction"}, "right": {...}, "total": {...}}``: the patient's left and right lung
    (radiological orientation, :func:`cxrzoo.preprocessing.split_lungs`) and both, as pixel counts and fractions
    of the image's pixels.

    Example::

        lung_areas(cxrzoo.segment_lungs("cxr.png")[0]["mask"])["left"]["fraction"]
    """
    mask = np.asarray(mask, bool)
    left, right = split_lungs(mask)
    total = mask.size
    return {
        side: {"pixels": int(m.sum()), "fraction": float(m.sum()) / total}
        for side, m in (("left", left), ("right", right), ("total", mask))
    }


_LUNG_PIPELINES: dict[str, Pipeline] = {}


def _lung_pipelines(weights: str, batch_size: int) -> Pipeline:
    # The segmenter is built once per process and weights tag: segment_lungs is called image by image in loops.
    if weights not in _LUNG_PIPELINES:
        _LUNG_PIPELINES[weights] = pipeline(weights, batch_size=batch_size)
    pipe = _LUNG_PIPELINES[weights]
    pipe.batch_size = int(batch_size)
    return pipe


__all__ = ["Pipeline", "lung_areas", "lung_channel", "pipeline", "segment_lungs"]
