"""The thesis' segmentation-driven COVID-19 detector: lung and infection segmenters in parallel, the thesis'
post-processing, detection, per-lung quantification, and the 3-class classifier with Score-CAM.

Reference:
    Tahir, "Deep ConvNets for COVID-19 Recognition from Chest X-Rays" (M.Sc. thesis, Qatar University, 2021),
    §3.2 (Figure 3), §3.2.2.2 post-processing, §3.2.2.3 detection and quantification, §3.2.3 classifiers, §3.2.5
    Score-CAM, Tables 5-12.

The system (Figure 3)::

    CXR ─┬─ lung segmenter ──────── p_lung > 0.5 ─ fill holes ─ drop regions < 5% of the positives ─┐
         ├─ infection segmenter ─── p_inf > 0.5 ────────────────────────────────────────────── AND ─┴─ infection
         │                          (both see the plain CXR: the "parallel" scheme, Table 6)
         └─ CXR × lung mask ─ 3-class classifier (COVID-19 / non-COVID / normal) ─ Score-CAM

* **Detection**: positive when at least one lung pixel is infected.
* **Quantification**: infected fraction = infected lung pixels / lung pixels, overall and per lung.
* **Left and right** come from the connected components of the post-processed lung mask, in radiological
  orientation: the patient faces the viewer, so the **patient's left lung is on the image's right** (larger column
  index). See :func:`split_lungs` for how merged or single lungs are handled.

The thesis' best models are the defaults of :func:`build_infection_detector_models`: FPN/DenseNet121 for the lungs
(DSC 97.99%, Table 5), U-Net++/DenseNet121 for the infection (DSC 88.21%, Table 7), InceptionV4 for the classifier
(sensitivity 91.95%, Table 10). No trained weights were published; the models are built untrained unless weights
files are given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from scipy import ndimage

from cxrzoo.explain.cam import ScoreCAM
from cxrzoo.models.infection_detector.classifiers import build_infection_detector_models
from cxrzoo.nn.model import spec_of
from cxrzoo.preprocessing.geometry import resize
from cxrzoo.preprocessing.images import ImageInput, image_list, load_image
from cxrzoo.preprocessing.lungs import as_binary_mask as _binary
from cxrzoo.preprocessing.lungs import split_lungs
from cxrzoo.preprocessing.recipes import recipe

if TYPE_CHECKING:
    import numpy.typing as npt

THRESHOLD = 0.5
MIN_REGION_FRACTION = 0.05
#: Class order of the thesis' scheme II classifier (Table 10) and of its scheme I (COVID-family) classifier.
TAHIR_LABELS = ("covid19", "non_covid", "normal")
COVID_FAMILY_LABELS = ("covid19", "mers", "sars")
_EIGHT_CONNECTED = np.ones((3, 3), bool)


# ------------------------------------------------------------------------------------------ post-processing


def _probability(prob: npt.ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(prob)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) probability map, got shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{what} must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return array


def remove_small_regions(
    mask: npt.ArrayLike, min_fraction: float = MIN_REGION_FRACTION, *, reference_pixels: int | None = None
) -> np.ndarray:
    """Drops the 8-connected regions smaller than ``min_fraction`` of ``reference_pixels`` (default: the mask's
    positive pixels), as the thesis does with "regions < 5% of the total positive predicted pixels"."""
    mask = _binary(mask, "mask")
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError(f"min_fraction must be in [0, 1), got {min_fraction}")
    total = int(mask.sum()) if reference_pixels is None else int(reference_pixels)
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_fraction * total
    keep[0] = False
    return keep[labels]


def fill_holes(mask: npt.ArrayLike) -> np.ndarray:
    """Fills the holes of a binary mask: background regions not 4-connected to the image border (the complement
    of 8-connected foreground, so a diagonal gap never opens a hole to the outside)."""
    return ndimage.binary_fill_holes(_binary(mask, "mask"))


def postprocess_lung_mask(
    probability: npt.ArrayLike, *, threshold: float = THRESHOLD, min_region_fraction: float = MIN_REGION_FRACTION
) -> np.ndarray:
    """Thesis §3.2.2.2 for the lung: ``p > threshold``, hole filling, then removal of the regions smaller than
    ``min_region_fraction`` of the predicted positive pixels. Returns a boolean (H, W) mask."""
    predicted = _probability(probability, "lung probability") > threshold
    return remove_small_regions(fill_holes(predicted), min_region_fraction, reference_pixels=int(predicted.sum()))


def postprocess_infection_mask(
    probability: npt.ArrayLike, lung_mask: npt.ArrayLike, *, threshold: float = THRESHOLD
) -> np.ndarray:
    """Thesis §3.2.2.2 for the infection: ``p > threshold`` AND the post-processed lung mask (no other cleaning)."""
    infection = _probability(probability, "infection probability") > threshold
    lung = _binary(lung_mask, "lung_mask")
    if infection.shape != lung.shape:
        raise ValueError(f"infection map {infection.shape} and lung mask {lung.shape} differ in size")
    return infection & lung


def _fraction(infection: np.ndarray, lung: np.ndarray) -> float:
    area = int(lung.sum())
    return float((infection & lung).sum() / area) if area else float("nan")


def quantify_infection(lung_mask: npt.ArrayLike, infection_mask: npt.ArrayLike) -> dict[str, Any]:
    """Detection and quantification (thesis §3.2.2.3) from post-processed masks.

    Returns ``covid_positive`` (any infected lung pixel), ``infected_fraction`` (infected lung pixels / lung
    pixels) and ``infected_fraction_left`` / ``_right`` for the patient's lungs (:func:`split_lungs`). A fraction
    whose lung area is empty (no lung found) is NaN, never a misleading 0.
    """
    lung = _binary(lung_mask, "lung_mask")
    infection = _binary(infection_mask, "infection_mask")
    if infection.shape != lung.shape:
        raise ValueError(f"infection mask {infection.shape} and lung mask {lung.shape} differ in size")
    infection = infection & lung
    left, right = split_lungs(lung)
    return {
        "covid_positive": bool(infection.any()),
        "infected_fraction": _fraction(infection, lung),
        "infected_fraction_left": _fraction(infection, left),
        "infected_fraction_right": _fraction(infection, right),
    }


def detect_infection(
    lung_probability: npt.ArrayLike,
    infection_probability: npt.ArrayLike,
    *,
    threshold: float = THRESHOLD,
    min_region_fraction: float = MIN_REGION_FRACTION,
) -> dict[str, Any]:
    """The thesis' post-processing, detection and quantification for one image's two probability maps.

    Args:
        lung_probability, infection_probability: (H, W) maps in [0, 1] of the same size (binary masks work too:
            a human annotation stands in for a perfect prediction).
        threshold: a pixel is positive when ``p > threshold`` (0.5).
        min_region_fraction: lung regions smaller than this share of the predicted lung pixels are removed (0.05).

    Returns:
        ``{"covid_positive", "infected_fraction", "infected_fraction_left", "infected_fraction_right",
        "lung_mask", "infection_mask"}`` (see :func:`quantify_infection`; masks are boolean (H, W)).
    """
    lung = postprocess_lung_mask(lung_probability, threshold=threshold, min_region_fraction=min_region_fraction)
    infection = postprocess_infection_mask(infection_probability, lung, threshold=threshold)
    return {**quantify_infection(lung, infection), "lung_mask": lung, "infection_mask": infection}


# ------------------------------------------------------------------------------------------------ the detector


def _output_is_probability(model: keras.Model) -> bool:
    """Whether ``model`` ends in a sigmoid / softmax (else its output is taken as logits)."""
    head = model.layers[-1]
    activation = getattr(head, "activation", None)
    return getattr(activation, "__name__", str(activation)) in ("sigmoid", "softmax")


#: Mask-channel names (from a model's spec) that mean "this pixel is lung" / "this pixel is infected".
_FOREGROUND_LABELS = {"lung": ("lungs", "lung", "foreground"), "infection": ("infection", "foreground")}


def _foreground_channel(model: keras.Model, what: str) -> int:
    """Which output channel of a segmenter is the foreground.

    A model that carries a spec (``cxrzoo.create_model``) says what each channel means, so e.g. Res-CR-Net's
    [lungs, non_lungs] maps to channel 0; a model without one is read the thesis' way: 1 channel = foreground,
    2 channels = [background, foreground].
    """
    channels = int(model.output_shape[-1])
    spec = spec_of(model)
    if spec is not None:
        if spec.task != "segmentation":
            raise ValueError(f"the {what} segmenter {spec.name!r} is a {spec.task} model, not a segmenter")
        for label in _FOREGROUND_LABELS[what]:
            if label in spec.output.labels:
                return spec.output.labels.index(label)
        raise ValueError(
            f"the {what} segmenter {spec.name!r} outputs channels {list(spec.output.labels)}, none of "
            f"which is a {what} mask ({' / '.join(_FOREGROUND_LABELS[what])}); give the detector a "
            f"{what} segmenter"
        )
    if channels == 1:
        return 0
    if channels == 2:
        return 1
    raise ValueError(
        f"the {what} segmenter must output 1 channel (foreground) or 2 (background, foreground); it outputs {channels}"
    )


def _foreground(output: np.ndarray, is_probability: bool, channel: int) -> np.ndarray:
    """(B, H, W, K) model output → (B, H, W) probability of ``channel`` (sigmoid for K = 1, softmax otherwise)."""
    if output.shape[-1] == 1:
        z = output[..., 0]
        return z if is_probability else 1.0 / (1.0 + np.exp(-z))
    if is_probability:
        return output[..., channel]
    z = output - output.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e[..., channel] / e.sum(axis=-1)


def _segmenter_recipe(
    model: keras.Model, default: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """The preparation a segmenter needs: its spec's recipe when it carries one, else ``default``."""
    spec = spec_of(model)
    return default if spec is None or spec.recipe is None else recipe(weights=spec)


def _input_size(model: keras.Model, default: tuple[int, int] = (256, 256)) -> tuple[int, int]:
    h, w = model.input_shape[1:3]
    return (h or default[0], w or default[1])


class InfectionDetector:
    """The thesis' COVID-19 detection, localization and quantification system on CXR images.

    Reference: Tahir thesis §3.2, Figure 3 (module docstring).

    Args:
        lung_segmenter, infection_segmenter: Keras models mapping (B, H, W, C) to (B, H, W, 1) foreground
            probabilities or logits, or (B, H, W, 2) [background, foreground] (the thesis' softmax). An output
            layer with a sigmoid / softmax activation is read as probabilities, anything else as logits.
        classifier: optional 3-class model applied to the lung-segmented CXR (:data:`TAHIR_LABELS` order).
        labels: the classifier's class names.
        threshold: 0.5 (thesis); min_region_fraction: 0.05 (thesis).
        segmentation_recipe: callable image → model input; default
            ``cxrzoo.preprocessing.recipe("infection_detector_segmentation", size=<segmenter input size>)``. A
            segmenter that carries a spec (``cxrzoo.create_model``) is prepared with its own recipe instead, and
            its spec says which output channel is the lung / infection mask (Res-CR-Net's lung channel is 0).
        classifier_recipe: default ``recipe("infection_detector_classifier", size=<classifier input size>)``.
        score_cam: the explainer used when ``explain=True``; default ``cxrzoo.explain.ScoreCAM()`` (all channels,
            as the thesis; ``ScoreCAM(max_n=64)`` is much faster).
        batch_size: images per forward pass.

    Calling the detector on one image (a path, or a 2-D / (H, W, 1|3|4) array of any size) returns one dict; on a
    list of images or an (N, H, W) / (N, H, W, C) array it returns a list of dicts. Each dict has
    ``covid_positive`` (bool), ``infected_fraction``, ``infected_fraction_left``, ``infected_fraction_right``
    (floats; NaN when the lung is not found), ``lung_mask`` and ``infection_mask`` (boolean, at the input image's
    size) and, with a classifier, ``class_probabilities`` ({label: p}) and ``predicted_class``; with
    ``explain=True`` also ``score_cam`` ((H, W) in [0, 1] at the input's size, for the predicted class).

    The segmenters see each image resized to their input size; their probability maps are resized back
    (bilinear) and post-processed at the image's own resolution.

    Example:
        >>> detector = cxrzoo.InfectionDetector.build(lung_weights="lung.weights.h5",
        ...                                            infection_weights="infection.weights.h5",
        ...                                            classifier_weights="classifier.weights.h5")
        >>> result = detector("cxr.png", explain=True)
        >>> result["covid_positive"], result["infected_fraction_left"]
    """

    def __init__(
        self,
        lung_segmenter: keras.Model,
        infection_segmenter: keras.Model,
        classifier: keras.Model | None = None,
        *,
        labels: Sequence[str] = TAHIR_LABELS,
        threshold: float = THRESHOLD,
        min_region_fraction: float = MIN_REGION_FRACTION,
        segmentation_recipe: Callable[[np.ndarray], np.ndarray] | None = None,
        classifier_recipe: Callable[[np.ndarray], np.ndarray] | None = None,
        score_cam: Callable[..., np.ndarray] | None = None,
        batch_size: int = 8,
    ):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lung_segmenter = lung_segmenter
        self.infection_segmenter = infection_segmenter
        self.classifier = classifier
        self.labels = tuple(labels)
        if classifier is not None and int(classifier.output_shape[-1]) != len(self.labels):
            raise ValueError(
                f"the classifier has {classifier.output_shape[-1]} outputs but {len(self.labels)} "
                f"labels were given: {self.labels}"
            )
        self.threshold = float(threshold)
        self.min_region_fraction = float(min_region_fraction)
        self.batch_size = int(batch_size)
        self._channels = (
            _foreground_channel(lung_segmenter, "lung"),
            _foreground_channel(infection_segmenter, "infection"),
        )
        self.segmentation_size = _input_size(infection_segmenter)
        self.segmentation_recipe = segmentation_recipe or recipe(
            "infection_detector_segmentation", size=self.segmentation_size
        )
        self._recipes = (
            _segmenter_recipe(lung_segmenter, self.segmentation_recipe),
            _segmenter_recipe(infection_segmenter, self.segmentation_recipe),
        )
        self.classifier_recipe = classifier_recipe
        if classifier is not None and classifier_recipe is None:
            self.classifier_recipe = recipe("infection_detector_classifier", size=_input_size(classifier))
        self._score_cam = score_cam
        self._probability = (_output_is_probability(lung_segmenter), _output_is_probability(infection_segmenter))
        self._parallel = self._parallel_model()

    @classmethod
    def build(
        cls,
        *,
        lung_decoder: str = "fpn",
        lung_encoder: str = "densenet121",
        infection_decoder: str = "unet_plus_plus",
        infection_encoder: str = "densenet121",
        classifier_backbone: str | None = "inceptionv4",
        input_shape: Sequence[int | None] = (256, 256, 3),
        lung_weights: str | os.PathLike | None = None,
        infection_weights: str | os.PathLike | None = None,
        classifier_weights: str | os.PathLike | None = None,
        **detector_kwargs,
    ) -> InfectionDetector:
        """Builds the three networks with :func:`build_infection_detector_models` and wraps them."""
        models = build_infection_detector_models(
            lung_decoder=lung_decoder,
            lung_encoder=lung_encoder,
            infection_decoder=infection_decoder,
            infection_encoder=infection_encoder,
            classifier_backbone=classifier_backbone,
            input_shape=input_shape,
            lung_weights=lung_weights,
            infection_weights=infection_weights,
            classifier_weights=classifier_weights,
        )
        return cls(models["lung"], models["infection"], models["classifier"], **detector_kwargs)

    def _parallel_model(self) -> keras.Model | None:
        # One graph with both segmenters on the same input: a single predict() runs the two independent branches,
        # which TensorFlow's executor schedules concurrently (the thesis' parallel configuration).
        if (
            self.lung_segmenter.input_shape != self.infection_segmenter.input_shape
            or self._recipes[0] is not self._recipes[1]
        ):
            return None
        inputs = keras.Input(shape=self.lung_segmenter.input_shape[1:], name="cxr")
        return keras.Model(
            inputs, [self.lung_segmenter(inputs), self.infection_segmenter(inputs)], name="parallel_segmenters"
        )

    # ------------------------------------------------------------------------------------------------ inputs

    # ------------------------------------------------------------------------------------------------ stages

    def segment(self, images: ImageInput | Sequence[ImageInput]) -> tuple[np.ndarray, np.ndarray]:
        """Lung and infection foreground probabilities, (N, h, w) each at its segmenter's input size."""
        grays = [load_image(im) for im in image_list(images)[0]]
        lung_prep, infection_prep = self._recipes
        batch = np.stack([lung_prep(g) for g in grays])
        if self._parallel is not None:
            lung, infection = self._parallel.predict(batch, batch_size=self.batch_size, verbose=0)
        else:
            lung = self.lung_segmenter.predict(batch, batch_size=self.batch_size, verbose=0)
            if infection_prep is not lung_prep:
                batch = np.stack([infection_prep(g) for g in grays])
            infection = self.infection_segmenter.predict(batch, batch_size=self.batch_size, verbose=0)
        if isinstance(lung, dict) or isinstance(infection, dict):
            raise ValueError("the segmenters must each return one (B, H, W, K) array")
        return (
            _foreground(np.asarray(lung), self._probability[0], self._channels[0]),
            _foreground(np.asarray(infection), self._probability[1], self._channels[1]),
        )

    def __call__(
        self, images: ImageInput | Sequence[ImageInput], *, explain: bool = False
    ) -> dict[str, Any] | list[dict[str, Any]]:
        items, single = image_list(images)
        grays = [load_image(im) for im in items]
        lung_p, infection_p = self.segment(grays)
        results = []
        for gray, lp, ip in zip(grays, lung_p, infection_p):
            size = gray.shape
            lp = resize(np.ascontiguousarray(lp, np.float32), size, "bilinear")
            ip = resize(np.ascontiguousarray(ip, np.float32), size, "bilinear")
            results.append(
                detect_infection(lp, ip, threshold=self.threshold, min_region_fraction=self.min_region_fraction)
            )
        if self.classifier is not None:
            self._classify(grays, results, explain=explain)
        elif explain:
            raise ValueError("explain=True needs a classifier (Score-CAM explains the 3-class classification)")
        return results[0] if single else results

    def _classify(self, grays: list[np.ndarray], results: list[dict[str, Any]], *, explain: bool) -> None:
        segmented = np.stack(
            [self.classifier_recipe(np.where(r["lung_mask"], g, 0).astype(g.dtype)) for g, r in zip(grays, results)]
        )
        probs = np.asarray(self.classifier.predict(segmented, batch_size=self.batch_size, verbose=0))
        for r, p in zip(results, probs):
            r["class_probabilities"] = {label: float(v) for label, v in zip(self.labels, p)}
            r["predicted_class"] = self.labels[int(np.argmax(p))]
        if explain:
            maps = self.score_cam(self.classifier, segmented, class_index=np.argmax(probs, axis=-1))
            for g, r, m in zip(grays, results, maps):
                r["score_cam"] = np.clip(resize(np.ascontiguousarray(m, np.float32), g.shape, "bilinear"), 0, 1)

    @property
    def score_cam(self) -> Callable[..., np.ndarray]:
        """The Score-CAM explainer (``cxrzoo.explain.ScoreCAM()`` unless one was given)."""
        if self._score_cam is None:
            self._score_cam = ScoreCAM()
        return self._score_cam


__all__ = [
    "COVID_FAMILY_LABELS",
    "TAHIR_LABELS",
    "InfectionDetector",
    "detect_infection",
    "fill_holes",
    "postprocess_infection_mask",
    "postprocess_lung_mask",
    "quantify_infection",
    "remove_small_regions",
    "split_lungs",
]
