"""The segmentation-driven infection detector's preparation: recipes ``"infection_detector_segmentation"`` and
``"infection_detector_classifier"`` (the thesis' four input schemes). The older names ``"tahir_segmentation"`` and
``"tahir_classifier"`` are aliases.

Reference: Tahir, segmentation-driven COVID-19 infection detector (thesis), §3.2 (docs/models/infection_detector.md).
"""

from __future__ import annotations

from cxrzoo.preprocessing.enhance import complement, three_channel
from cxrzoo.preprocessing.histogram import clahe
from cxrzoo.preprocessing.recipes import (
    Recipe,
    Step,
    check_size,
    register_recipe,
    replicate3,
    resize_step,
    scale_step,
    to_uint8_step,
)


def segmentation_recipe(size: int | tuple[int, int] = (256, 256), normalization: str = "imagenet") -> Recipe:
    size = check_size(size, "recipe 'infection_detector_segmentation'")
    steps = (
        to_uint8_step(),
        resize_step(size, "bilinear"),
        Step("gray replicated to 3 channels", replicate3),
        scale_step(normalization),
    )
    return Recipe("infection_detector_segmentation", "infection_detector", size + (3,), steps)


INPUT_SCHEMES = ("original", "clahe", "complement", "original_clahe_complement")


def classifier_recipe(
    scheme: str = "original_clahe_complement", size: int | tuple[int, int] = (256, 256), normalization: str = "imagenet"
) -> Recipe:
    size = check_size(size, "recipe 'infection_detector_classifier'")
    if scheme not in INPUT_SCHEMES:
        raise ValueError(
            f"recipe 'infection_detector_classifier': scheme must be one of {INPUT_SCHEMES}, got {scheme!r}"
        )
    single = {"original": lambda a: a, "clahe": lambda a: clahe(a), "complement": complement}
    if scheme == "original_clahe_complement":
        channels = Step(
            "three channels original_clahe_complement (CLAHE 2.0 / 8x8)", lambda a: three_channel(a, scheme)
        )
    else:
        channels = Step(f"{scheme}, replicated to 3 channels", lambda a: replicate3(single[scheme](a)))
    steps = (to_uint8_step(), resize_step(size, "bilinear"), channels, scale_step(normalization))
    return Recipe("infection_detector_classifier", "infection_detector", size + (3,), steps)


register_recipe("infection_detector_segmentation", segmentation_recipe, aliases=("tahir_segmentation",))
register_recipe("infection_detector_classifier", classifier_recipe, aliases=("tahir_classifier",))
