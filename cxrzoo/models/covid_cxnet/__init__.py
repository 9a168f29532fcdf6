"""COVID-CXNet (Haghanifar et al.): the CheXNet-initialised DenseNet-121 classifier, the small base model, the
multi-class and hierarchical variants, CLAHE + BEASF enhancement and U-Net lung cropping.

| module | what |
|---|---|
| :mod:`~cxrzoo.models.covid_cxnet.models` | :func:`build_covid_cxnet`, the base model, the lung U-Net, CheXNet loading |
| :mod:`~cxrzoo.models.covid_cxnet.hierarchical` | :class:`HierarchicalClassifier` (normal / pneumonia, then COVID-19 / CAP) |
| :mod:`~cxrzoo.models.covid_cxnet.preprocessing` | recipes ``"covid_cxnet"``, ``"covid_cxnet_base"``, the U-Net lung crop |
| :mod:`~cxrzoo.models.covid_cxnet.training` | augmentation presets and training recipes |
| :mod:`~cxrzoo.models.covid_cxnet.specs` | the published models' specs |

Model card: docs/models/covid_cxnet.md.
"""

from cxrzoo.catalog import register_paper
from cxrzoo.models.covid_cxnet import (
    specs,  # noqa: F401
    training,  # noqa: F401
)
from cxrzoo.models.covid_cxnet.hierarchical import HierarchicalClassifier, HierarchicalProbabilities
from cxrzoo.models.covid_cxnet.models import (
    CLASS_NAMES_3,
    build_covid_cxnet,
    build_covid_cxnet_base,
    build_covid_cxnet_lung_unet,
    load_chexnet_backbone,
)
from cxrzoo.models.covid_cxnet.preprocessing import covid_cxnet_base_recipe, covid_cxnet_lung_mask, covid_cxnet_recipe

PAPER = register_paper(
    "covid_cxnet",
    "COVID-CXNet",
    "Haghanifar et al., COVID-CXNet: Detecting COVID-19 in Frontal Chest X-ray Images using Deep Learning "
    "(arXiv:2006.13807)",
    "models/covid_cxnet.md",
)

__all__ = [
    "CLASS_NAMES_3",
    "HierarchicalClassifier",
    "HierarchicalProbabilities",
    "build_covid_cxnet",
    "build_covid_cxnet_base",
    "build_covid_cxnet_lung_unet",
    "covid_cxnet_base_recipe",
    "covid_cxnet_lung_mask",
    "covid_cxnet_recipe",
    "load_chexnet_backbone",
]
