"""The model registry: every architecture of the zoo under a stable name, as in timm.

    >>> import cxrzoo
    >>> cxrzoo.list_models("res_cr_net*")
    ['res_cr_net']
    >>> model = cxrzoo.create_model("res_cr_net", weights="res_cr_net.v7_lungs")

Builders register themselves with :func:`register_model` in their own module under :mod:`cxrzoo.models`;
registering has no side effect beyond adding an entry. :func:`list_models` and :func:`create_model` import
:mod:`cxrzoo.models` (and so TensorFlow) on first use.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PAPERS = {
    "cxrnet": "000 Gatti et al., CXR-Net (Res-CR-Net lung segmenter + WST/cross-attention ensemble)",
    "covid_cxnet": "001 Haghanifar et al., COVID-CXNet",
    "screening": "002 Loconte & Colavito, Screening X-ray images for COVID-19 infections (baselines)",
    "infection_detector": "003 Tahir, segmentation-driven COVID-19 infection detector (thesis)",
    "covid_xnet": "004 Duran-Lopez et al., COVID-XNet",
}
TASKS = ("segmentation", "classification", "image", "features")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one architecture."""

    name: str
    builder: Callable[..., Any]
    paper: str
    task: str
    default_kwargs: Mapping[str, Any] = field(default_factory=dict)
    cam_layer: str | None = None  # default target layer of the CAM methods in cxrzoo.explain
    summary: str = ""

    @property
    def weights(self) -> list[str]:
        from cxrzoo.weights import list_weights

        return list_weights(self.name)


_REGISTRY: dict[str, ModelInfo] = {}


def register(
    name: str,
    builder: Callable[..., Any],
    *,
    paper: str,
    task: str,
    cam_layer: str | None = None,
    summary: str | None = None,
    **default_kwargs: Any,
) -> ModelInfo:
    """Registers ``builder`` (called with ``default_kwargs`` merged under the caller's) as ``name``."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; expected one of {sorted(PAPERS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if name in _REGISTRY and _REGISTRY[name].builder is not builder:
        raise ValueError(f"model name {name!r} is already registered")
    doc = inspect.getdoc(builder) or ""
    info = ModelInfo(
        name=name,
        builder=builder,
        paper=paper,
        task=task,
        default_kwargs=dict(default_kwargs),
        cam_layer=cam_layer,
        summary=summary or (doc.splitlines()[0] if doc else ""),
    )
    _REGISTRY[name] = info
    return info


def register_model(name: str | None = None, **meta: Any):
    """Decorator form of :func:`register`; the name defaults to the builder's name without ``build_``."""

    def decorate(builder):
        register(name or builder.__name__.removeprefix("build_"), builder, **meta)
        return builder

    return decorate


@functools.lru_cache(maxsize=1)
def _populate() -> None:
    importlib.import_module("cxrzoo.models")


def list_models(
    pattern: str = "*", *, paper: str | None = None, task: str | None = None, pretrained: bool = False
) -> list[str]:
    """Registered model names matching the glob ``pattern``, optionally only one paper's, one task's, or only
    those with published weights (``pretrained=True``)."""
    _populate()
    names = []
    for name, info in _REGISTRY.items():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if paper is not None and info.paper != paper:
            continue
        if task is not None and info.task != task:
            continue
        if pretrained and not info.weights:
            continue
        names.append(name)
    return sorted(names)


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; ValueError listing the valid names if unknown."""
    _populate()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}") from None


def create_model(name: str, weights: str | None = None, **kwargs: Any):
    """Builds the registered model ``name``; ``weights`` is None, a tag (see ``list_weights(name)``) or a path.

    A tag's recorded builder arguments (e.g. ``input_shape``) are used as defaults, so
    ``create_model("covid_cxnet_base", weights="covid_cxnet_base.v_free")`` builds the 300×300×3 variant.
    """
    info = model_info(name)
    merged = dict(info.default_kwargs)
    if weights is not None and not _is_path(weights):
        from cxrzoo.weights import weights_info

        entry = weights_info(weights)
        if entry.role == "model" and entry.arch == name:
            merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in entry.builder_kwargs.items()})
    merged.update(kwargs)
    return info.builder(weights=weights, **merged)


def _is_path(weights: Any) -> bool:
    from cxrzoo.weights.loading import looks_like_path

    return looks_like_path(weights)
