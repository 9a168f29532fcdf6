"""The zoo's front door: list, build and describe every model by name, as in timm.

    >>> import cxrzoo
    >>> cxrzoo.list_models("res_cr_net*")
    ['res_cr_net']
    >>> model = cxrzoo.create_model("res_cr_net.v7_lungs")        # V7 weights, verified by sha256
    >>> cxrzoo.model_spec(model).output.labels
    ('lungs', 'non_lungs')

Names are architectures (``"res_cr_net"``) or published models (``"res_cr_net.v7_lungs"``, an ``arch.tag``); each
has a :class:`~cxrzoo.spec.ModelSpec` that says how to feed it and read it. The first call imports the papers
(and so TensorFlow).
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any

import keras

import cxrzoo.models  # noqa: F401  (registers every paper)
from cxrzoo.catalog import PAPERS, paper_key
from cxrzoo.nn.model import adapt_spec, attach_spec, spec_of
from cxrzoo.preprocessing.recipes import RECIPES
from cxrzoo.spec import ARCHITECTURES, SPECS, Architecture, ModelSpec
from cxrzoo.weights.loading import looks_like_path
from cxrzoo.weights.manifest import list_weights as _manifest_tags

#: ``weights=`` value that loads an architecture's default published weights (as keras.applications' "imagenet").
DEFAULT = "default"


def list_papers() -> list[str]:
    """The paper keys (``"cxrnet"``, ``"covid_cxnet"``, …); ``list_models(paper=...)`` also takes the system's
    name (``"CXR-Net"``)."""
    return PAPERS.names()


def list_models(
    pattern: str = "*", *, paper: str | None = None, task: str | None = None, pretrained: bool = False
) -> list[str]:
    """Architecture names matching the glob ``pattern``, optionally one paper's (key or name, e.g. ``"CXR-Net"``),
    one task's, or only those whose published weights can be loaded (``pretrained=True``)."""
    key = paper_key(paper) if paper is not None else None
    names = []
    for name, arch in ARCHITECTURES.items():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if key is not None and arch.paper != key:
            continue
        if task is not None and arch.task != task:
            continue
        if pretrained and not arch.weights:
            continue
        names.append(name)
    return names


def list_specs(pattern: str = "*") -> list[str]:
    """Every spec name (architectures and ``arch.tag`` published models) matching the glob ``pattern``."""
    return SPECS.names(pattern)


def model_info(name: str) -> Architecture:
    """The registered architecture ``name`` (or of ``arch.tag``); ValueError listing the valid names."""
    return ARCHITECTURES.get(name.partition(".")[0] if isinstance(name, str) else name)


def model_spec(name_or_model: Any) -> ModelSpec:
    """The spec of an architecture (``"res_cr_net"``), a published model (``"res_cr_net.v7_lungs"``) or of a model
    built by :func:`create_model` (also after a ``.keras`` round trip)."""
    if isinstance(name_or_model, str):
        return SPECS.get(name_or_model)
    spec = spec_of(name_or_model)
    if spec is None:
        name = getattr(name_or_model, "name", type(name_or_model).__name__)
        raise ValueError(
            f"model {name!r} carries no spec: build it with cxrzoo.create_model(...) (or pass the spec "
            "name, e.g. model_spec('res_cr_net.v7_lungs'))"
        )
    return spec


def _resolve(name: str, weights: Any) -> tuple[ModelSpec, Any]:
    """(spec, weights path or None) for ``create_model(name, weights=...)``."""
    if not isinstance(name, str):
        raise TypeError(f"create_model expects a model name, got {type(name).__name__}")
    arch_name, _, tag = name.partition(".")
    arch = ARCHITECTURES.get(arch_name)
    if tag:
        if weights not in (DEFAULT, None) and weights != name:
            raise ValueError(
                f"create_model({name!r}) names its weights already; drop weights={weights!r} or call "
                f"create_model({arch_name!r}, weights=...)"
            )
        if weights is None:
            return SPECS.get(arch_name), None
        return SPECS.get(name), None
    if weights == DEFAULT:
        default = arch.default_weights
        return SPECS.get(default or arch_name), None
    if weights is None:
        return SPECS.get(arch_name), None
    if isinstance(weights, str) and not looks_like_path(weights):
        spec_name = weights if weights in SPECS else None
        if spec_name is None and weights in _manifest_tags():
            raise ValueError(
                f"weights {weights!r} are not a published model of {arch_name!r}; its published "
                f"models are {arch.weights or 'none'}"
            )
        spec = SPECS.get(weights)
        if spec.arch != arch_name:
            raise ValueError(
                f"weights {weights!r} belong to {spec.arch!r}, not {arch_name!r}; call create_model({weights!r})"
            )
        return spec, None
    return SPECS.get(arch_name), weights  # a file path: the architecture's spec, the caller's file


def create_model(name: str, *, weights: Any = DEFAULT, **kwargs: Any) -> keras.Model:
    """Builds a model by name, with its published weights unless told otherwise, carrying its spec.

    Args:
        name: an architecture (``"res_cr_net"``; see :func:`list_models`) or a published model
            (``"res_cr_net.v7_lungs"``; see :func:`list_specs`).
        weights: ``"default"`` (the architecture's default published weights where they can be obtained, as
            ``keras.applications`` loads ImageNet; random initialisation where there are none), ``None`` (random
            initialisation), a published model's name (``"res_cr_net.jms_lungs"``) or a weights file path.
        **kwargs: builder arguments (``input_shape``, ``classes``, …) over the spec's; changing the input size
            or the outputs of a published model makes the spec's contract wrong, so it warns or raises when used.

    Returns:
        A ``keras.Model`` whose spec :func:`model_spec` returns; its ``predict`` checks inputs against the spec.

    Example::

        model = cxrzoo.create_model("cxrnet")                    # the authors' CXR-Net (both weights files)
        random = cxrzoo.create_model("cxrnet", weights=None)    # same architecture, random initialisation
    """
    if "pretrained" in kwargs:
        raise TypeError(
            "create_model has no 'pretrained' argument: use weights='default' (the published weights, "
            "the default) or weights=None (random initialisation)"
        )
    spec, path = _resolve(name, weights)
    arch = ARCHITECTURES.get(spec.arch)
    if not spec.obtainable:
        raise ValueError(
            f"the weights of {spec.name!r} were published but cannot be obtained here ({spec.description});"
            f" build {spec.arch!r} with weights=None, or pass the file's path as weights="
        )
    call = {**arch.default_kwargs, **spec.builder_kwargs, **kwargs}
    if path is not None:
        call["weights"] = path
    elif not spec.pretrained:
        call.setdefault("weights", None)
        if "segmenter_weights" in call and "segmenter_weights" not in kwargs:
            call["segmenter_weights"] = None
    model = arch.builder(**call)
    if kwargs:
        spec = spec.replace(builder_kwargs={**spec.builder_kwargs, **kwargs})
        spec = _adapted(spec, model)
    return attach_spec(model, spec)


def _adapted(spec: ModelSpec, model: keras.Model) -> ModelSpec:
    """:func:`cxrzoo.nn.model.adapt_spec`, and a recipe that makes the new input size where its recipe has a size
    option (the infection detector's, COVID-XNet's, the base CNN's)."""
    adapted = adapt_spec(spec, model)
    shape = tuple(adapted.input.shape)
    if shape != tuple(spec.input.shape) and spec.recipe is not None and None not in shape:
        options = inspect.signature(RECIPES.get(spec.recipe)).parameters
        if "size" in options:
            adapted = adapted.replace(recipe_options={**spec.recipe_options, "size": shape[:2]})
        elif "input_shape" in options:
            adapted = adapted.replace(recipe_options={**spec.recipe_options, "input_shape": shape})
    return adapted
