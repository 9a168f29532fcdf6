"""Model specs: the single source of truth for how one model (an architecture, or its published weights) is used.

A :class:`ModelSpec` says everything a caller could get wrong: the builder and its arguments, the weights tags it
loads, the input contract (shape, channels, dtype, value range, the size the weights were trained at), the
preprocessing recipe with its options, the output contract (label names in order, activation, what each mask
channel means, the paper's operating threshold), the CAM layer and the exact parameter count. Like timm's
``pretrained_cfg`` or a keras-hub preset, everything else derives from it: ``recipe(weights=TAG)``,
:func:`cxrzoo.create_model`, :func:`cxrzoo.pipeline`, the CLI and the docs tables.

Specs are registered by each paper's folder (``cxrzoo/models/<paper>/specs.py``) under ``arch`` (random
initialisation) and ``arch.tag`` (published weights). The weights manifest keeps provenance and hashes; a test
checks specs and manifest against each other. A model built by :func:`cxrzoo.create_model` carries its spec, also
through a ``.keras`` round trip (:func:`cxrzoo.model_spec`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cxrzoo.catalog import Catalog

TASKS = ("segmentation", "classification", "image", "features")
OUTPUT_KINDS = ("probabilities", "logits", "mask", "image", "features")


@dataclass(frozen=True)
class InputSpec:
    """What the model's (first) input must hold, per image.

    Attributes:
        shape: ``(H, W, C)``; None for a free dimension.
        value_range: ``(low, high)`` of the prepared values, e.g. ``(0, 255)`` or ``(0, 1)``; None where the input is
            a computed feature map without a fixed range.
        trained_size: ``(H, W)`` the published weights were trained at (None: any size is as good).
        dtype: the dtype fed to the model.
        description: the preparation in words.
    """

    shape: tuple[int | None, int | None, int]
    value_range: tuple[float, float] | None
    trained_size: tuple[int, int] | None = None
    dtype: str = "float32"
    description: str = ""


@dataclass(frozen=True)
class OutputSpec:
    """What the model's output means.

    Attributes:
        kind: "probabilities", "logits", "mask" (per-pixel probabilities), "image" or "features".
        labels: class names in output order, or the meaning of each mask channel in channel order.
        activation: the last activation ("softmax", "sigmoid", "relu" or None).
        key: for a model with a dict of outputs, the entry holding this output (e.g. "probabilities").
        positive: the label a binary decision is about (e.g. "covid").
        threshold: the paper's operating point on the positive label's probability (or the mask threshold).
    """

    kind: str
    labels: tuple[str, ...]
    activation: str | None
    key: str | None = None
    positive: str | None = None
    threshold: float | None = None

    def index(self, label: str) -> int:
        """The output index of ``label``; ValueError naming the labels otherwise."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(f"no output {label!r}; this model's outputs are {list(self.labels)}") from None


@dataclass(frozen=True)
class ModelSpec:
    """One architecture (``name == arch``, random initialisation) or one published model (``name == "arch.tag"``).

    Example::

        spec = cxrzoo.model_spec("res_cr_net.v7_lungs")
        spec.output.labels          # ('lungs', 'non_lungs')
        spec.input.trained_size     # (300, 340)
    """

    name: str
    arch: str
    paper: str
    task: str
    input: InputSpec
    output: OutputSpec
    recipe: str | None
    recipe_options: Mapping[str, Any] = field(default_factory=dict)
    builder_kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: tuple[str, ...] = ()
    cam_layer: str | None = None
    parameters: int | None = None
    description: str = ""
    training_recipe: str | None = None
    obtainable: bool = True  # False: the weights were published, but no copy can be had (the manifest says why)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"spec {self.name!r}: task must be one of {TASKS}, got {self.task!r}")
        if self.output.kind not in OUTPUT_KINDS:
            raise ValueError(f"spec {self.name!r}: output kind must be one of {OUTPUT_KINDS}")
        if self.name != self.arch and not self.name.startswith(self.arch + "."):
            raise ValueError(f"spec name {self.name!r} must be {self.arch!r} or {self.arch!r}.TAG")

    @property
    def tag(self) -> str | None:
        """The tag part of ``arch.tag`` (None for an architecture's random-initialisation spec)."""
        return self.name.partition(".")[2] or None

    @property
    def pretrained(self) -> bool:
        return bool(self.weights)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.output.labels

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists); :meth:`from_dict` inverts it."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        data = dict(data)
        inp = dict(data.pop("input"))
        inp["shape"] = tuple(inp["shape"])
        if inp.get("value_range") is not None:
            inp["value_range"] = tuple(inp["value_range"])
        if inp.get("trained_size") is not None:
            inp["trained_size"] = tuple(inp["trained_size"])
        out = dict(data.pop("output"))
        out["labels"] = tuple(out["labels"])
        data["weights"] = tuple(data.get("weights", ()))
        data["builder_kwargs"] = {k: _tuples(v) for k, v in dict(data.get("builder_kwargs", {})).items()}
        data["recipe_options"] = {k: _tuples(v) for k, v in dict(data.get("recipe_options", {})).items()}
        return cls(input=InputSpec(**inp), output=OutputSpec(**out), **data)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Architecture:
    """A registered builder: its name, paper, task, default CAM layer and default published weights."""

    name: str
    builder: Callable[..., Any]
    paper: str
    task: str
    cam_layer: str | None = None
    summary: str = ""
    default_kwargs: Mapping[str, Any] = field(default_factory=dict)  # builder arguments fixed by this name

    @property
    def specs(self) -> list[str]:
        """The specs of this architecture: its own name first, then ``arch.tag`` for each published model."""
        return [self.name] + SPECS.names(f"{self.name}.*")

    @property
    def weights(self) -> list[str]:
        """Tags of the published models of this architecture whose weights can be obtained."""
        return [n for n in SPECS.names(f"{self.name}.*") if SPECS.get(n).obtainable]

    @property
    def default_weights(self) -> str | None:
        """The spec ``weights="default"`` loads: the first obtainable published model (None: random init)."""
        return DEFAULT_WEIGHTS.get(self.name)


ARCHITECTURES: Catalog[Architecture] = Catalog("model")
SPECS: Catalog[ModelSpec] = Catalog("model spec")
DEFAULT_WEIGHTS: dict[str, str] = {}


def register_architecture(
    name: str,
    builder: Callable[..., Any],
    *,
    paper: str,
    task: str,
    cam_layer: str | None = None,
    summary: str | None = None,
    **default_kwargs: Any,
) -> Architecture:
    """Registers ``builder`` as the architecture ``name`` of ``paper`` (a paper key); ``default_kwargs``
    are builder arguments this name fixes (e.g. ``encoder="resnet18"`` for ``unet_resnet18``)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    doc = (builder.__doc__ or "").strip()
    arch = Architecture(
        name, builder, paper, task, cam_layer, summary or (doc.splitlines()[0] if doc else ""), dict(default_kwargs)
    )
    return ARCHITECTURES.register(name, arch)


def register_spec(spec: ModelSpec, *, default: bool = False) -> ModelSpec:
    """Registers ``spec``; ``default=True`` makes it what ``weights="default"`` loads for its architecture."""
    SPECS.register(spec.name, spec)
    if default:
        if not spec.pretrained or not spec.obtainable:
            raise ValueError(f"spec {spec.name!r}: only obtainable published weights can be the default")
        DEFAULT_WEIGHTS[spec.arch] = spec.name
    return spec


def get_spec(name: str) -> ModelSpec:
    """The registered spec ``arch`` or ``arch.tag``; ValueError listing the valid names."""
    return SPECS.get(name)
