"""The segmentation-driven infection detector (Tahir, M.Sc. thesis): U-Net / U-Net++ / FPN over five encoders for
lung and infection segmentation, detection and per-lung quantification, 3-class classifiers, Score-CAM.

| module | what |
|---|---|
| :mod:`~cxrzoo.models.infection_detector.segmentation` | U-Net, U-Net++ and FPN decoders over the shared encoders |
| :mod:`~cxrzoo.models.infection_detector.classifiers` | backbone classifiers, SqueezeNet, the detector's three models |
| :mod:`~cxrzoo.models.infection_detector.detector` | :class:`InfectionDetector`, post-processing, quantification |
| :mod:`~cxrzoo.models.infection_detector.preprocessing` | recipes ``"infection_detector_segmentation"`` / ``"_classifier"`` |
| :mod:`~cxrzoo.models.infection_detector.training` | augmentation preset and training recipes |
| :mod:`~cxrzoo.models.infection_detector.specs` | one spec per architecture (no weights were published) |

Model card: docs/models/infection_detector.md.
"""

from cxrzoo.catalog import register_paper
from cxrzoo.models.infection_detector import (
    specs,  # noqa: F401
    training,  # noqa: F401
)
from cxrzoo.models.infection_detector.classifiers import (
    build_cxr_classifier,
    build_infection_detector_models,
    build_squeezenet,
)
from cxrzoo.models.infection_detector.detector import (
    COVID_FAMILY_LABELS,
    TAHIR_LABELS,
    InfectionDetector,
    detect_infection,
    fill_holes,
    postprocess_infection_mask,
    postprocess_lung_mask,
    quantify_infection,
    remove_small_regions,
    split_lungs,
)
from cxrzoo.models.infection_detector.preprocessing import classifier_recipe, segmentation_recipe
from cxrzoo.models.infection_detector.segmentation import (
    DECODERS,
    build_fpn,
    build_segmentation_model,
    build_unet,
    build_unet_plus_plus,
)

PAPER = register_paper(
    "infection_detector",
    "Infection detector",
    "Tahir, Deep ConvNets for COVID-19 Recognition from Chest X-Rays (M.Sc. thesis, Qatar University, "
    "2021): the segmentation-driven infection detector",
    "models/infection_detector.md",
)

__all__ = [
    "COVID_FAMILY_LABELS",
    "DECODERS",
    "TAHIR_LABELS",
    "InfectionDetector",
    "build_cxr_classifier",
    "build_fpn",
    "build_infection_detector_models",
    "build_segmentation_model",
    "build_squeezenet",
    "build_unet",
    "build_unet_plus_plus",
    "classifier_recipe",
    "detect_infection",
    "fill_holes",
    "postprocess_infection_mask",
    "postprocess_lung_mask",
    "quantify_infection",
    "remove_small_regions",
    "segmentation_recipe",
    "split_lungs",
]
