"""The screening baselines (Loconte & Colavito, "Screening X-ray images for COVID-19 infections"): AlexNet, VGG16,
ResNet50, DenseNet121 and InceptionV3 (with its auxiliary head) on grayscale CXRs.

| module | what |
|---|---|
| :mod:`~cxrzoo.models.screening.baselines` | the five builders |
| :mod:`~cxrzoo.models.screening.preprocessing` | the recipe ``"screening_baselines"`` |
| :mod:`~cxrzoo.models.screening.training` | augmentation preset and training recipe |
| :mod:`~cxrzoo.models.screening.specs` | one spec per architecture (no weights were published) |

Model card: docs/models/screening_baselines.md.
"""

from cxrzoo.catalog import register_paper
from cxrzoo.models.screening import (
    specs,  # noqa: F401
    training,  # noqa: F401
)
from cxrzoo.models.screening.baselines import (
    AUX_LOSS_WEIGHT,
    build_alexnet,
    build_densenet121,
    build_inception_v3,
    build_resnet50,
    build_vgg16,
    without_aux_classifier,
)
from cxrzoo.models.screening.preprocessing import screening_recipe

PAPER = register_paper(
    "screening",
    "Screening baselines",
    "Loconte & Colavito, Screening X-ray images for COVID-19 infections",
    "models/screening_baselines.md",
)

__all__ = [
    "AUX_LOSS_WEIGHT",
    "build_alexnet",
    "build_densenet121",
    "build_inception_v3",
    "build_resnet50",
    "build_vgg16",
    "screening_recipe",
    "without_aux_classifier",
]
