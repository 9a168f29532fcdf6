"""The thesis' segmentation-driven COVID-19 detector: lung and infection segmenters in parallel, the thesis'
post-processing, detection, per-lung quantification, and the 3-class classifier with Score-CAM.

Reference:
    Tahir, "Deep ConvNets for COVID-19 Recognition from Chest X-Rays" (M.Sc. thesis, Qatar University, 2021; seed
    paper 003), §3.2 (Figure 3), §3.2.2.2 post-processing, §3.2.2.3 detection and quantification, §3.2.3 classifiers,
    §3.2.5 Score-CAM, Tables 5-12.

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
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from scipy import ndimage

from cxrzoo.models.encoders import CLASSIFIER_CAM_LAYER, ENCODERS, build_backbone_classifier, make_input
from cxrzoo.models.segmentation import build_segmentation_model
from cxrzoo.registry import register, register_model
from cxrzoo.weights.loading import load_weights

THRESHOLD = 0.5
MIN_REGION_FRACTION = 0.05
#: Class order of the thesis' scheme II classifier (Table 10) and of its scheme I (COVID-family) classifier.
TAHIR_LABELS = ("covid19", "non_covid", "normal")
COVID_FAMILY_LABELS = ("covid19", "mers", "sars")
_EIGHT_CONNECTED = np.ones((3, 3), bool)


# ------------------------------------------------------------------------------------------------ classifiers


def build_cxr_classifier(
    *,
    backbone: str,
    weights=None,
    input_tensor=None,
    input_shape=(256, 256, 3),
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 3,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
):
    """The thesis' CXR classifiers: an ImageNet backbone whose last layer is replaced by one linear layer.

    Reference: Tahir thesis (seed paper 003) §3.2.3, Tables 9, 10, 12 (scheme II: COVID-19 / non-COVID / normal on
    lung-segmented CXRs; InceptionV4 best, overall sensitivity 91.95%).

    Args:
        backbone: "resnet18", "resnet50", "densenet121", "densenet161" or "inceptionv4" (torchvision / Cadene
            graphs; InceptionV4 with its original, unpadded stem).
        weights: None or the path of weights saved from a model built with the same arguments.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C); the thesis: 256×256, 3 channels (see the ``"tahir_classifier"`` recipe).
        include_top, pooling: keras.applications semantics.
        classes: 3 (the thesis' both schemes; labels :data:`TAHIR_LABELS` or :data:`COVID_FAMILY_LABELS`).
        classifier_activation: "softmax" (default), "sigmoid" or None (logits). The logits are always reachable at
            layer ``predictions``.
        name: model name (default ``"cxr_classifier_<backbone>"``, the registry name).

    Returns:
        A ``keras.Model``. Trainable parameters with 3 classes: ResNet18 11,178,051; ResNet50 23,514,179;
        DenseNet121 6,956,931; DenseNet161 26,478,627; InceptionV4 41,147,427 (Table 12: 11.18, 23.51, 6.96,
        26.48, 41.15 M).

    Example:
        >>> model = cxrzoo.build_cxr_classifier(backbone="inceptionv4")
        >>> probs = model.predict(cxrzoo.preprocessing.recipe("tahir_classifier")(segmented_cxr)[None])
    """
    return build_backbone_classifier(
        backbone,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or f"cxr_classifier_{backbone}",
        arch=f"cxr_classifier_{backbone}",
    )


for _backbone in ENCODERS:
    register(
        f"cxr_classifier_{_backbone}",
        build_cxr_classifier,
        paper="infection_detector",
        task="classification",
        cam_layer=CLASSIFIER_CAM_LAYER[_backbone],
        backbone=_backbone,
        summary=f"{_backbone} + one linear layer: the thesis' 3-class CXR classifier",
    )
del _backbone

SQUEEZENET_FIRES = {
    # version → (stem filters, stem kernel, (squeeze, expand) of fire2 … fire9, fires followed by a max-pool)
    "1_0": (96, 7, ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)), (4, 8)),
    "1_1": (64, 3, ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)), (3, 5)),
}


def fire_module(x, squeeze: int, expand: int, *, name: str):
    """SqueezeNet Fire module: 1×1 squeeze → ReLU → [1×1 expand ∥ 3×3 expand] → ReLU, concatenated."""
    s = keras.layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze1x1")(x)
    e1 = keras.layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(s)
    e3 = keras.layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3x3")(s)
    return keras.layers.Concatenate(name=f"{name}_concat")([e1, e3])


def _ceil_max_pool(x, *, name: str):
    # torchvision's MaxPool2d(3, 2, ceil_mode=True): one extra zero row/column at the bottom/right lets the last
    # window hang over the edge (inputs are ReLU outputs, so a zero never wins over a real value).
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


@register_model(paper="infection_detector", task="classification", cam_layer="fire9_concat")
def build_squeezenet(
    *,
    weights=None,
    input_tensor=None,
    input_shape=(256, 256, 3),
    version: str = "1_0",
    include_top: bool = True,
    classes: int = 3,
    classifier_activation: str | None = "softmax",
    dropout: float = 0.5,
    name: str = "squeezenet",
):
    """SqueezeNet as torchvision defines it: the thesis' smallest classifier (scheme I, COVID-19 / MERS / SARS).

    Reference: Tahir thesis (seed paper 003) §3.2.3 and Table 4 (pools after the first convolution and after the
    4th and 8th fire modules, i.e. SqueezeNet 1.0); Iandola et al. 2016.

    Args:
        weights, input_tensor, name: as :func:`build_cxr_classifier`.
        input_shape: (H, W, C); the thesis: 256×256.
        version: "1_0" (the thesis' layout, default) or "1_1".
        include_top: False returns the ``fire9_concat`` map (512 channels).
        classes: 3 (labels :data:`COVID_FAMILY_LABELS`).
        classifier_activation: "softmax", "sigmoid" or None. The head is torchvision's: dropout → 1×1
            convolution → ReLU → global average pool, so the "logits" at ``avg_pool`` are non-negative.
        dropout: rate before the final convolution (0.5).

    Returns:
        A ``keras.Model``; with 3 classes and 3-channel input SqueezeNet 1.0 has 736,963 trainable parameters
        (torchvision's 1,248,424 with 1,000 classes) and 1.1 has 724,035.

    Example:
        >>> model = cxrzoo.build_squeezenet()
    """
    if version not in SQUEEZENET_FIRES:
        raise ValueError(f"version must be one of {sorted(SQUEEZENET_FIRES)}, got {version!r}")
    if classifier_activation not in (None, "softmax", "sigmoid"):
        raise ValueError(f"classifier_activation must be None, 'softmax' or 'sigmoid', got {classifier_activation!r}")
    stem, kernel, fires, pools_after = SQUEEZENET_FIRES[version]
    inputs = make_input(input_tensor, input_shape)
    x = keras.layers.Conv2D(stem, kernel, strides=2, activation="relu", name="conv1")(inputs)
    x = _ceil_max_pool(x, name="pool1")
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    for i, (squeeze, expand) in enumerate(fires, start=1):
        x = fire_module(x, squeeze, expand, name=f"fire{i + 1}")
        if i + 1 in pools_after:
            x = _ceil_max_pool(x, name=f"pool{i + 1}")
    if include_top:
        x = keras.layers.Dropout(dropout, name="drop9")(x)
        x = keras.layers.Conv2D(classes, 1, activation="relu", name="conv10")(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation, name=f"predictions_{classifier_activation}")(x)
    model = keras.Model(inputs, x, name=name)
    return load_weights(model, weights, arch="squeezenet", classes=classes, version=version)


# ----------------------------------------------------------------------------------------- the thesis' system


def build_infection_detector_models(
    *,
    lung_decoder: str = "fpn",
    lung_encoder: str = "densenet121",
    infection_decoder: str = "unet_plus_plus",
    infection_encoder: str = "densenet121",
    classifier_backbone: str | None = "inceptionv4",
    input_shape=(256, 256, 3),
    lung_weights=None,
    infection_weights=None,
    classifier_weights=None,
) -> dict[str, Any]:
    """The three networks of the thesis' system, ready for :class:`InfectionDetector`.

    Reference: Tahir thesis (seed paper 003) §3.2, Figure 3; defaults are the best models of Tables 5, 7 and 10.

    Args:
        lung_decoder, infection_decoder: "unet", "unet_plus_plus" or "fpn".
        lung_encoder, infection_encoder, classifier_backbone: one of the five encoders; ``classifier_backbone=None``
            leaves the classifier out.
        input_shape: the shared (H, W, C) input of the three models (the thesis: 256×256×3).
        lung_weights, infection_weights, classifier_weights: None or paths of weights files saved from models
            built with the same arguments (no trained weights were published).

    Returns:
        ``{"lung": model, "infection": model, "classifier": model or None}``; the segmenters end in a sigmoid
        (one foreground probability per pixel), the classifier in a softmax over :data:`TAHIR_LABELS`.

    Example:
        >>> models = cxrzoo.build_infection_detector_models(lung_weights="lung.weights.h5", ...)
        >>> detector = cxrzoo.InfectionDetector(models["lung"], models["infection"], models["classifier"])
    """
    seg = dict(input_shape=input_shape, classes=1, activation="sigmoid")
    lung = build_segmentation_model(
        lung_decoder, lung_encoder, weights=lung_weights, name=f"lung_{lung_decoder}_{lung_encoder}", **seg
    )
    infection = build_segmentation_model(
        infection_decoder,
        infection_encoder,
        weights=infection_weights,
        name=f"infection_{infection_decoder}_{infection_encoder}",
        **seg,
    )
    classifier = None
    if classifier_backbone is not None:
        classifier = build_cxr_classifier(
            backbone=classifier_backbone, input_shape=input_shape, weights=classifier_weights
        )
    return {"lung": lung, "infection": infection, "classifier": classifier}


# ------------------------------------------------------------------------------------------ post-processing


def _binary(mask, what: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) mask, got shape {array.shape}")
    if array.dtype != bool:
        if not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{what} must be boolean or numeric, got dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise ValueError(f"{what} contains NaN or infinite values")
        array = array > 0
    return array


def _probability(prob, what: str) -> np.ndarray:
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


def remove_small_regions(mask, min_fraction: float = MIN_REGION_FRACTION, *, reference_pixels: int | None = None):
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


def fill_holes(mask) -> np.ndarray:
    """Fills the holes of a binary mask: background regions not 4-connected to the image border (the complement
    of 8-connected foreground, so a diagonal gap never opens a hole to the outside)."""
    return ndimage.binary_fill_holes(_binary(mask, "mask"))


def postprocess_lung_mask(
    probability, *, threshold: float = THRESHOLD, min_region_fraction: float = MIN_REGION_FRACTION
) -> np.ndarray:
    """Thesis §3.2.2.2 for the lung: ``p > threshold``, hole filling, then removal of the regions smaller than
    ``min_region_fraction`` of the predicted positive pixels. Returns a boolean (H, W) mask."""
    predicted = _probability(probability, "lung probability") > threshold
    return remove_small_regions(fill_holes(predicted), min_region_fraction, reference_pixels=int(predicted.sum()))


def postprocess_infection_mask(probability, lung_mask, *, threshold: float = THRESHOLD) -> np.ndarray:
    """Thesis §3.2.2.2 for the infection: ``p > threshold`` AND the post-processed lung mask (no other cleaning)."""
    infection = _probability(probability, "infection probability") > threshold
    lung = _binary(lung_mask, "lung_mask")
    if infection.shape != lung.shape:
        raise ValueError(f"infection map {infection.shape} and lung mask {lung.shape} differ in size")
    return infection & lung


def split_lungs(lung_mask) -> tuple[np.ndarray, np.ndarray]:
    """The patient's (left, right) lung masks from a lung mask, by connected components.

    Radiological orientation: the patient's left lung appears on the image's right. Rules, on 8-connected
    components:

    * two or more components: the split column is halfway between the centroids of the two largest; each
      component goes to the side of its centroid (right of the split → patient's left);
    * one component that straddles the image's centre column (lungs touching behind the heart): it is cut at its
      narrowest column (fewest lung pixels) within the middle half of its bounding box;
    * one component on one side of the centre column: a single lung (the other one, e.g. fully opacified, was not
      segmented), assigned by side; the other mask is empty;
    * no lung pixel: both masks empty.
    """
    lung = _binary(lung_mask, "lung_mask")
    left, right = np.zeros_like(lung), np.zeros_like(lung)
    labels, count = ndimage.label(lung, structure=_EIGHT_CONNECTED)
    if count == 0:
        return left, right
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(lung, labels, index)
    columns = np.array([c[1] for c in ndimage.center_of_mass(lung, labels, index)])
    width = lung.shape[1]
    if count >= 2:
        a, b = np.argsort(sizes)[::-1][:2]
        split = 0.5 * (columns[a] + columns[b])
        image_right = index[columns > split]
        left = np.isin(labels, image_right)
        return left, lung & ~left
    cols = np.nonzero(lung.any(axis=0))[0]
    x0, x1 = int(cols[0]), int(cols[-1])
    centre = (width - 1) / 2.0
    if x0 < centre < x1:
        quarter = (x1 - x0) // 4
        lo, hi = x0 + quarter, x1 - quarter
        counts = lung[:, lo : hi + 1].sum(axis=0)
        cut = lo + int(np.argmin(counts))
        left = lung.copy()
        left[:, : cut + 1] = False
        return left, lung & ~left
    if columns[0] > centre:
        return lung.copy(), right
    return left, lung.copy()


def _fraction(infection: np.ndarray, lung: np.ndarray) -> float:
    area = int(lung.sum())
    return float((infection & lung).sum() / area) if area else float("nan")


def quantify_infection(lung_mask, infection_mask) -> dict[str, Any]:
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
    lung_probability,
    infection_probability,
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


def _output_is_probability(model) -> bool:
    """Whether ``model`` ends in a sigmoid / softmax (else its output is taken as logits)."""
    head = model.layers[-1]
    activation = getattr(head, "activation", None)
    return getattr(activation, "__name__", str(activation)) in ("sigmoid", "softmax")


def _foreground(output: np.ndarray, is_probability: bool, what: str) -> np.ndarray:
    """(B, H, W, 1 or 2) model output → (B, H, W) foreground probability (2 channels: [background, foreground])."""
    channels = output.shape[-1]
    if channels == 1:
        z = output[..., 0]
        return z if is_probability else 1.0 / (1.0 + np.exp(-z))
    if channels == 2:
        if is_probability:
            return output[..., 1]
        z = output - output.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e[..., 1] / e.sum(axis=-1)
    raise ValueError(
        f"the {what} segmenter must output 1 channel (foreground) or 2 (background, foreground); it outputs {channels}"
    )


def _input_size(model, default=(256, 256)) -> tuple[int, int]:
    h, w = model.input_shape[1:3]
    return (h or default[0], w or default[1])


class InfectionDetector:
    """The thesis' COVID-19 detection, localization and quantification system on CXR images.

    Reference: Tahir thesis (seed paper 003) §3.2, Figure 3 (module docstring).

    Args:
        lung_segmenter, infection_segmenter: Keras models mapping (B, H, W, C) to (B, H, W, 1) foreground
            probabilities or logits, or (B, H, W, 2) [background, foreground] (the thesis' softmax). An output
            layer with a sigmoid / softmax activation is read as probabilities, anything else as logits.
        classifier: optional 3-class model applied to the lung-segmented CXR (:data:`TAHIR_LABELS` order).
        labels: the classifier's class names.
        threshold: 0.5 (thesis); min_region_fraction: 0.05 (thesis).
        segmentation_recipe: callable image → model input; default
            ``cxrzoo.preprocessing.recipe("tahir_segmentation", size=<segmenter input size>)``.
        classifier_recipe: default ``recipe("tahir_classifier", size=<classifier input size>)``.
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
        lung_segmenter,
        infection_segmenter,
        classifier=None,
        *,
        labels: Sequence[str] = TAHIR_LABELS,
        threshold: float = THRESHOLD,
        min_region_fraction: float = MIN_REGION_FRACTION,
        segmentation_recipe=None,
        classifier_recipe=None,
        score_cam=None,
        batch_size: int = 8,
    ):
        from cxrzoo.preprocessing import recipe

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
        self.segmentation_size = _input_size(lung_segmenter)
        if _input_size(infection_segmenter) != self.segmentation_size:
            raise ValueError(
                f"the lung and infection segmenters must share an input size, got "
                f"{self.segmentation_size} and {_input_size(infection_segmenter)}"
            )
        self.segmentation_recipe = segmentation_recipe or recipe("tahir_segmentation", size=self.segmentation_size)
        self.classifier_recipe = classifier_recipe
        if classifier is not None and classifier_recipe is None:
            self.classifier_recipe = recipe("tahir_classifier", size=_input_size(classifier))
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
        input_shape=(256, 256, 3),
        lung_weights=None,
        infection_weights=None,
        classifier_weights=None,
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

    def _parallel_model(self):
        # One graph with both segmenters on the same input: a single predict() runs the two independent branches,
        # which TensorFlow's executor schedules concurrently (the thesis' parallel configuration).
        if self.lung_segmenter.input_shape != self.infection_segmenter.input_shape:
            return None
        inputs = keras.Input(shape=self.lung_segmenter.input_shape[1:], name="cxr")
        return keras.Model(
            inputs, [self.lung_segmenter(inputs), self.infection_segmenter(inputs)], name="parallel_segmenters"
        )

    # ------------------------------------------------------------------------------------------------ inputs

    @staticmethod
    def _as_list(images) -> tuple[list, bool]:
        if isinstance(images, (str, os.PathLike, bytes)):
            return [images], True
        if isinstance(images, np.ndarray):
            single = images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4))
            if single:
                return [images], True
            if images.ndim not in (3, 4):
                raise ValueError(
                    f"images must be one (H, W[, C]) image or an (N, H, W[, C]) batch, got shape {images.shape}"
                )
            return list(images), False
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("images is an empty list")
            return list(images), False
        raise TypeError(f"images must be a path, an array or a list of them, got {type(images).__name__}")

    @staticmethod
    def _gray(image) -> np.ndarray:
        from cxrzoo.preprocessing import read_image, to_gray

        if isinstance(image, (str, os.PathLike, bytes)):
            return read_image(image)
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        elif array.ndim == 3:
            array = to_gray(array)
        if array.ndim != 2 or array.size == 0:
            raise ValueError(f"each image must be (H, W), (H, W, 1) or (H, W, 3|4), got shape {np.shape(image)}")
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise ValueError("an image contains NaN or infinite values")
        return array

    # ------------------------------------------------------------------------------------------------ stages

    def segment(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Lung and infection foreground probabilities, (N, h, w) each at the segmenters' input size."""
        batch = np.stack([self.segmentation_recipe(self._gray(im)) for im in self._as_list(images)[0]])
        if self._parallel is not None:
            lung, infection = self._parallel.predict(batch, batch_size=self.batch_size, verbose=0)
        else:
            lung = self.lung_segmenter.predict(batch, batch_size=self.batch_size, verbose=0)
            infection = self.infection_segmenter.predict(batch, batch_size=self.batch_size, verbose=0)
        return (
            _foreground(np.asarray(lung), self._probability[0], "lung"),
            _foreground(np.asarray(infection), self._probability[1], "infection"),
        )

    def __call__(self, images, *, explain: bool = False):
        from cxrzoo.preprocessing import resize

        items, single = self._as_list(images)
        grays = [self._gray(im) for im in items]
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

    def _classify(self, grays, results, *, explain: bool) -> None:
        from cxrzoo.preprocessing import resize

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
    def score_cam(self):
        """The Score-CAM explainer (``cxrzoo.explain.ScoreCAM()`` unless one was given)."""
        if self._score_cam is None:
            from cxrzoo.explain import ScoreCAM

            self._score_cam = ScoreCAM()
        return self._score_cam


__all__ = [
    "COVID_FAMILY_LABELS",
    "TAHIR_LABELS",
    "InfectionDetector",
    "build_cxr_classifier",
    "build_infection_detector_models",
    "build_squeezenet",
    "detect_infection",
    "fill_holes",
    "postprocess_infection_mask",
    "postprocess_lung_mask",
    "quantify_infection",
    "remove_small_regions",
    "split_lungs",
]
