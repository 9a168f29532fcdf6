"""cxrzoo: a Keras 3 model zoo for chest X-ray (CXR) COVID-19 research.

The published systems of five papers, rebuilt layer for layer, with their authors' weights (verified by hash),
their preprocessing, and their heat maps::

    import cxrzoo
    covid = cxrzoo.pipeline("cxrnet")                 # the authors' CXR-Net, bound to its preparation
    covid.predict(["cxr.png"])                        # [{'probabilities': {'covid': ..., 'non_covid': ...}, ...}]
    model = cxrzoo.create_model("res_cr_net.v7_lungs")  # a Keras model carrying its spec
    cxrzoo.list_models(pretrained=True)               # architectures whose published weights can be loaded

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
    # the zoo: names, specs, pipelines
    "list_models": "cxrzoo.registry",
    "list_papers": "cxrzoo.registry",
    "list_specs": "cxrzoo.registry",
    "create_model": "cxrzoo.registry",
    "model_info": "cxrzoo.registry",
    "model_spec": "cxrzoo.registry",
    "pipeline": "cxrzoo.pipelines",
    "segment_lungs": "cxrzoo.pipelines",
    "Pipeline": "cxrzoo.pipelines",
    "export": "cxrzoo.exporting",
    "predict_files": "cxrzoo.batch",
    "ModelSpec": "cxrzoo.spec",
    "list_weights": "cxrzoo.weights",
    "weights_info": "cxrzoo.weights",
    "get_weights_file": "cxrzoo.weights",
    "load_model": "cxrzoo.models",
    # CXR-Net
    "build_res_cr_net": "cxrzoo.models.cxrnet",
    "build_cxrnet_member": "cxrzoo.models.cxrnet",
    "build_cxrnet_classifier": "cxrzoo.models.cxrnet",
    "build_cxrnet": "cxrzoo.models.cxrnet",
    "prepare_cxrnet_input": "cxrzoo.models.cxrnet",
    "cxrnet_heatmaps": "cxrzoo.models.cxrnet",
    # COVID-CXNet
    "build_covid_cxnet": "cxrzoo.models.covid_cxnet",
    "build_covid_cxnet_base": "cxrzoo.models.covid_cxnet",
    "build_covid_cxnet_lung_unet": "cxrzoo.models.covid_cxnet",
    "HierarchicalClassifier": "cxrzoo.models.covid_cxnet",
    # the screening baselines
    "build_alexnet": "cxrzoo.models.screening",
    "build_vgg16": "cxrzoo.models.screening",
    "build_resnet50": "cxrzoo.models.screening",
    "build_densenet121": "cxrzoo.models.screening",
    "build_inception_v3": "cxrzoo.models.screening",
    # the segmentation-driven infection detector
    "build_unet": "cxrzoo.models.infection_detector",
    "build_unet_plus_plus": "cxrzoo.models.infection_detector",
    "build_fpn": "cxrzoo.models.infection_detector",
    "build_cxr_classifier": "cxrzoo.models.infection_detector",
    "build_squeezenet": "cxrzoo.models.infection_detector",
    "build_infection_detector_models": "cxrzoo.models.infection_detector",
    "InfectionDetector": "cxrzoo.models.infection_detector",
    # COVID-XNet and its bone suppression
    "build_covid_xnet": "cxrzoo.models.covid_xnet",
    "build_bone_suppression": "cxrzoo.models.covid_xnet",
    "suppress_bones": "cxrzoo.models.covid_xnet",
}

_SUBMODULES = (
    "batch",
    "catalog",
    "cli",
    "data",
    "evaluation",
    "explain",
    "exporting",
    "layers",
    "losses",
    "metrics",
    "models",
    "nn",
    "pipelines",
    "preprocessing",
    "registry",
    "spec",
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
