"""The papers: one folder each, holding everything of that paper (importing this package registers them all).

| folder | paper |
|---|---|
| :mod:`cxrzoo.models.cxrnet` | CXR-Net: Res-CR-Net lung segmenter (Module 1), WST + cross-attention ensemble (Module 2), heat maps |
| :mod:`cxrzoo.models.covid_cxnet` | COVID-CXNet: DenseNet-121 classifier, base model, lung U-Net, hierarchical classifier |
| :mod:`cxrzoo.models.screening` | the screening baselines: AlexNet, VGG16, ResNet50, DenseNet121, InceptionV3 |
| :mod:`cxrzoo.models.infection_detector` | the segmentation-driven infection detector: U-Net / U-Net++ / FPN, classifiers, detector |
| :mod:`cxrzoo.models.covid_xnet` | COVID-XNet: custom CNN with CAMs, bone suppression |

Each folder has the architecture, its weight conversion, preprocessing recipes, training presets, specs, heat maps
and end-to-end system; shared machinery lives below (:mod:`cxrzoo.nn`, :mod:`cxrzoo.preprocessing`, …) and never
imports a paper. docs/architecture.md shows the layers and where a sixth paper goes.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cxrzoo._compat import check_backend

if TYPE_CHECKING:
    import os

    import keras

check_backend()

from cxrzoo.models import covid_cxnet, covid_xnet, cxrnet, infection_detector, screening  # noqa: E402
from cxrzoo.nn.rewrite import fold_batch_norm, polyphase_dilated  # noqa: E402

# Module paths of earlier releases, kept importable: ``from cxrzoo.models.res_cr_net import build_res_cr_net``.
_MOVED_MODULES = {
    "res_cr_net": cxrnet.res_cr_net,
    "bone_suppression": covid_xnet.bone_suppression,
    "segmentation": infection_detector.segmentation,
    "inference": sys.modules["cxrzoo.nn.rewrite"],
    "encoders": sys.modules["cxrzoo.nn.backbones"],
}
for _old, _module in _MOVED_MODULES.items():
    sys.modules[f"{__name__}.{_old}"] = _module
    globals()[_old] = _module
del _old, _module

PAPERS = ("cxrnet", "covid_cxnet", "screening", "infection_detector", "covid_xnet")

__all__ = [
    "PAPERS",
    "covid_cxnet",
    "covid_xnet",
    "cxrnet",
    "fold_batch_norm",
    "infection_detector",
    "load_model",
    "polyphase_dilated",
    "screening",
]


def load_model(path: str | os.PathLike, *, compile: bool = False, safe_mode: bool = True) -> keras.Model:
    """Loads a ``.keras`` file saved from a cxrzoo model (every paper's layers are registered by this package).

    ``safe_mode=True`` (the default) refuses arbitrary Python code (``Lambda`` layers) in the file; every cxrzoo
    model round-trips with it, and a model made by :func:`cxrzoo.create_model` keeps its spec.
    """
    import keras

    return keras.models.load_model(path, compile=compile, safe_mode=safe_mode)
