"""COVID-XNet (Duran-Lopez et al.): histogram matching, bone suppression, CLAHE, and a custom CNN with class
activation maps. The bone-suppression autoencoder is the published ML-BoneSuppression network the paper used.

| module | what |
|---|---|
| :mod:`~cxrzoo.models.covid_xnet.covid_xnet` | :func:`build_covid_xnet` (CNN with a GAP/CAM head) |
| :mod:`~cxrzoo.models.covid_xnet.bone_suppression` | :func:`build_bone_suppression` and its TF1 checkpoint conversion |
| :mod:`~cxrzoo.models.covid_xnet.bones` | :func:`suppress_bones`, the preprocessing step |
| :mod:`~cxrzoo.models.covid_xnet.preprocessing` | the recipe ``"covid_xnet"`` |
| :mod:`~cxrzoo.models.covid_xnet.training` | augmentation preset and training recipe |
| :mod:`~cxrzoo.models.covid_xnet.specs` | the specs |

Model cards: docs/models/covid_xnet.md, docs/models/bone_suppression.md.
"""

from cxrzoo.catalog import register_paper
from cxrzoo.models.covid_xnet import (
    specs,  # noqa: F401
    training,  # noqa: F401
)
from cxrzoo.models.covid_xnet.bone_suppression import TiedConvAutoencoder, build_bone_suppression
from cxrzoo.models.covid_xnet.bones import suppress_bones
from cxrzoo.models.covid_xnet.covid_xnet import CLASS_NAMES, build_covid_xnet
from cxrzoo.models.covid_xnet.preprocessing import covid_xnet_recipe

PAPER = register_paper(
    "covid_xnet",
    "COVID-XNet",
    "Duran-Lopez et al., COVID-XNet: A Custom Deep Learning System to Diagnose and Locate COVID-19 in "
    "Chest X-ray Images",
    "models/covid_xnet.md",
)

__all__ = [
    "CLASS_NAMES",
    "TiedConvAutoencoder",
    "build_bone_suppression",
    "build_covid_xnet",
    "covid_xnet_recipe",
    "suppress_bones",
]
