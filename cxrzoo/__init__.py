"""cxrzoo: a Keras 3 model zoo for chest X-ray (CXR) COVID-19 research.

The published systems of five papers, rebuilt layer for layer, with their authors' weights (verified by hash),
their preprocessing, and their heat maps::

    import cxrzoo
    model = cxrzoo.build_res_cr_net(weights="res_cr_net.v7_lungs")
    cxrzoo.list_models()        # every architecture in the zoo
    cxrzoo.list_weights()       # every published weights file, by tag

``import cxrzoo`` is cheap and has no side effects: TensorFlow and Keras are imported by the first attribute
that needs them (PEP 562 lazy attributes), never at package import.
"""

from __future__ import annotations

import importlib

from cxrzoo._compat import check_stack as _check_stack
from cxrzoo._version import __version__

_check_stack()

# Public name -> module that defines it. Submodules import TensorFlow only when one of their names is used.
_EXPORTS = {
    # registry and weights
    "list_models": "cxrzoo.registry",
    "create_model": "cxrzoo.registry",
    "model_info": "cxrzoo.registry",
    "list_weights": "cxrzoo.weights",
    "weights_info": "cxrzoo.weights",
    "get_weights_file": "cxrzoo.weights",
    # CXR-Net (paper 000)
    "build_res_cr_net": "cxrzoo.models.res_cr_net",
    "build_cxrnet_member": "cxrzoo.models.cxrnet",
    "build_cxrnet_classifier": "cxrzoo.models.cxrnet",
    "build_cxrnet": "cxrzoo.models.cxrnet",
    "prepare_cxrnet_input": "cxrzoo.preprocessing",
    # COVID-CXNet (paper 001)
    "build_covid_cxnet": "cxrzoo.models.covid_cxnet",
    "build_covid_cxnet_base": "cxrzoo.models.covid_cxnet",
    "build_covid_cxnet_lung_unet": "cxrzoo.models.covid_cxnet",
    "HierarchicalClassifier": "cxrzoo.models.covid_cxnet",
    # screening baselines (paper 002)
    "build_alexnet": "cxrzoo.models.screening",
    "build_vgg16": "cxrzoo.models.screening",
    "build_resnet50": "cxrzoo.models.screening",
    "build_densenet121": "cxrzoo.models.screening",
    "build_inception_v3": "cxrzoo.models.screening",
    # segmentation-driven infection detector (paper 003)
    "build_unet": "cxrzoo.models.segmentation",
    "build_unet_plus_plus": "cxrzoo.models.segmentation",
    "build_fpn": "cxrzoo.models.segmentation",
    "build_cxr_classifier": "cxrzoo.models.infection_detector",
    "build_squeezenet": "cxrzoo.models.infection_detector",
    "build_infection_detector_models": "cxrzoo.models.infection_detector",
    "InfectionDetector": "cxrzoo.models.infection_detector",
    # COVID-XNet (paper 004) and its bone suppression
    "build_covid_xnet": "cxrzoo.models.covid_xnet",
    "build_bone_suppression": "cxrzoo.models.bone_suppression",
}

_SUBMODULES = (
    "cli",
    "data",
    "explain",
    "layers",
    "losses",
    "metrics",
    "models",
    "preprocessing",
    "registry",
    "training",
    "weights",
)

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'cxrzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
