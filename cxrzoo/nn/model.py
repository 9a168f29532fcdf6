"""A Keras model that carries its :class:`~cxrzoo.spec.ModelSpec` and checks its inputs against it.

:func:`attach_spec` wraps any functional model (same layers, same weights) in :class:`SpecModel`, whose
``get_config`` holds the spec, so the spec survives ``model.save("m.keras")`` / ``keras.models.load_model`` with
``safe_mode=True``. ``predict`` and eager calls on NumPy arrays check the arrays against the spec's input contract
first (:func:`check_input`), because the mistakes they catch give plausible numbers, not errors: a CXR-Net input
scaled by 1/255 scores exactly [0.5, 0.5]; Res-CR-Net run at another size than its weights were trained at segments
badly (lung Dice 0.15-0.30 at 1024×1024 instead of 0.88-0.91).

What is checked, and whether it raises or warns (docs/architecture.md):

- shape (rank, channels, a fixed height/width) and dtype: :class:`InputContractError` (a ValueError), with the fix;
- NaN or infinite values: :class:`InputContractError`;
- for published weights, values outside the range they were trained on, or data that look scaled to [0, 1]
  where 0..255 is expected: raises, since no correct use gives such input (random weights have no such range);
- a height/width other than the size the published weights were trained at: :class:`InputContractWarning`, since
  fine-tuning at another size is legitimate; the message names the size and the function that resizes for you.

``model.check_inputs = False`` turns the checks off for one model.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from cxrzoo.spec import SPECS, ModelSpec, register_architecture

# Tolerance on the value range: prepared inputs are computed in float32 (rounding) and some recipes rescale.
_RANGE_SLACK = 1e-3


class InputContractError(ValueError):
    """An input that does not meet the model's input contract (shape, dtype, values)."""


class InputContractWarning(UserWarning):
    """An input the model accepts but its weights were not trained on (another spatial size)."""


def _fix_hint(spec: ModelSpec) -> str:
    return (
        f"prepare images with cxrzoo.preprocessing.recipe(weights={spec.name!r}), or let "
        f"cxrzoo.pipeline({spec.name!r}).predict(paths_or_arrays) do it"
    )


def check_input(spec: ModelSpec, x: Any, *, where: str = "input", stacklevel: int = 2) -> None:
    """Checks a NumPy batch ``x`` (B, H, W, C) against ``spec.input``; see the module docstring for the rules."""
    inp = spec.input
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)):
        x = x[0]
    x = np.asarray(x)
    if x.dtype.kind not in "uif":
        raise InputContractError(f"{spec.name}: {where} must be numeric, got dtype {x.dtype}")
    if x.ndim != 4:
        hint = ""
        if x.ndim == 3 and x.shape[-1] != inp.shape[-1]:
            hint = f" (a batch of {x.shape[0]} images without the channel axis? add it with x[..., None])"
        elif x.ndim == 3:
            hint = " (one image? add the batch axis with x[None])"
        elif x.ndim == 2:
            hint = " (one 2-D image? use x[None, ..., None])"
        raise InputContractError(
            f"{spec.name}: {where} must be a batch (B, H, W, C) with (H, W, C) = {inp.shape}, "
            f"got shape {x.shape}{hint}; {_fix_hint(spec)}"
        )
    if x.shape[-1] != inp.shape[-1]:
        raise InputContractError(
            f"{spec.name}: {where} must have {inp.shape[-1]} channel(s), got shape {x.shape}; {_fix_hint(spec)}"
        )
    for want, got in zip(inp.shape[:2], x.shape[1:3]):
        if want is not None and want != got:
            raise InputContractError(
                f"{spec.name}: {where} must be {inp.shape[0]}×{inp.shape[1]} (H×W), got "
                f"{x.shape[1]}×{x.shape[2]} (shape {x.shape}); {_fix_hint(spec)}"
            )
    if x.size == 0:
        raise InputContractError(f"{spec.name}: {where} is empty (shape {x.shape})")
    lo, hi = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputContractError(f"{spec.name}: {where} contains NaN or infinite values")
    # like the range below: randomly initialised weights were not trained at any size
    if spec.pretrained and inp.trained_size is not None and tuple(x.shape[1:3]) != tuple(inp.trained_size):
        h, w = inp.trained_size
        warnings.warn(
            f"{spec.name}: its weights were trained on {h}×{w} inputs, this input is "
            f"{x.shape[1]}×{x.shape[2]}; results at other sizes can be much worse (Res-CR-Net: lung Dice "
            f"0.15-0.30 at 1024×1024 against 0.88-0.91 at 300×340). Resize to {h}×{w} and back, as "
            f"cxrzoo.pipeline({spec.name!r}) and cxrzoo.segment_lungs do",
            InputContractWarning,
            stacklevel=stacklevel,
        )
    if inp.value_range is None or not spec.pretrained:
        # the range is what published weights were trained on; randomly initialised weights have none yet
        return
    want_lo, want_hi = inp.value_range
    slack = _RANGE_SLACK * max(1.0, want_hi - want_lo)
    if lo < want_lo - slack or hi > want_hi + slack:
        raise InputContractError(
            f"{spec.name}: {where} values lie in [{lo:.4g}, {hi:.4g}], outside the range this model was trained on, "
            f"[{want_lo:g}, {want_hi:g}] ({inp.description or 'see its spec'}); {_fix_hint(spec)}"
        )
    if want_hi - want_lo >= 100 and 0 < hi <= 1.0 + slack:
        raise InputContractError(
            f"{spec.name}: {where} values lie in [{lo:.4g}, {hi:.4g}], but this model takes {want_lo:g}..{want_hi:g} "
            f"({inp.description or 'see its spec'}): the input looks scaled to [0, 1] (x / 255?); feed the "
            f"prepared 0..255 values; {_fix_hint(spec)}"
        )


@keras.saving.register_keras_serializable(package="cxrzoo")
class SpecModel(keras.Model):
    """A functional model with a ``spec`` (its :class:`~cxrzoo.spec.ModelSpec`) and input checks.

    Build one with :func:`attach_spec`; ``cxrzoo.create_model`` and ``cxrzoo.pipeline`` return them.
    """

    def __init__(self, *args, spec: ModelSpec | dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = ModelSpec.from_dict(spec) if isinstance(spec, dict) else spec
        self.check_inputs = True

    def _check(self, x: Any, where: str) -> None:
        if self.check_inputs and self.spec is not None and _is_array_input(x):
            # the warning points at the line that called predict() or the model: check_input ← _check ← them
            check_input(self.spec, x, where=where, stacklevel=4)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self._check(x, "the input to predict()")
        return super().predict(x, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        if args:
            self._check(args[0], "the input")
        return super().__call__(*args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["spec"] = None if self.spec is None else self.spec.to_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> SpecModel:
        config = dict(config)
        spec = config.pop("spec", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.spec = None if spec is None else ModelSpec.from_dict(spec)
        model.check_inputs = True
        return model


def _is_array_input(x: Any) -> bool:
    if isinstance(x, (list, tuple)) and x:
        x = x[0]
    if isinstance(x, dict) and x:
        x = next(iter(x.values()))
    return isinstance(x, np.ndarray)


def attach_spec(model: keras.Model, spec: ModelSpec) -> SpecModel:
    """``model`` (functional) as a :class:`SpecModel` carrying ``spec``: the same layers and weights, one more
    wrapper. A :class:`SpecModel` gets its spec replaced."""
    if isinstance(model, SpecModel):
        model.spec = spec
        return model
    wrapped = SpecModel(model.input, model.output, name=model.name, spec=spec)
    wrapped.trainable = model.trainable
    return wrapped


def spec_of(model: Any) -> ModelSpec | None:
    """The spec a model carries, or None."""
    return getattr(model, "spec", None) if isinstance(getattr(model, "spec", None), ModelSpec) else None


# The builder arguments that say which published weights a model holds.
_WEIGHTS_ARGUMENTS = ("weights", "segmenter_weights", "backbone_weights")


def adapt_spec(spec: ModelSpec, model: keras.Model) -> ModelSpec:
    """``spec`` made true of ``model`` when it was built with other arguments: its real input shape (the size the
    weights were trained at is kept, so the size guard still warns), labels named by index when the number of
    outputs changed (never the old names on new outputs), and its parameter count."""
    changes: dict[str, Any] = {}
    shape = tuple(model.inputs[0].shape[1:])
    if shape != tuple(spec.input.shape):
        changes["input"] = dataclasses.replace(spec.input, shape=shape)
    out = model.output[spec.output.key] if isinstance(model.output, dict) and spec.output.key else model.outputs[0]
    units = int(out.shape[-1])
    if units != len(spec.output.labels):
        labels = tuple(f"class_{i}" for i in range(units))
        changes["output"] = dataclasses.replace(spec.output, labels=labels, positive=None)
    parameters = int(model.count_params())
    if parameters != spec.parameters:
        changes["parameters"] = parameters
    return spec.replace(**changes) if changes else spec


def _is_spec_name(value: Any) -> bool:
    return isinstance(value, str) and value in SPECS


def spec_for_build(arch: str, weights_arguments: dict[str, Any], model: keras.Model) -> ModelSpec | None:
    """The spec of a model a builder just made: the published model whose weights arguments it was called with
    (a weights file given by path counts as the architecture's own spec), adapted to the model's shapes."""
    wanted = {k: (v if _is_spec_name(v) else None) for k, v in weights_arguments.items()}
    for name in [*SPECS.names(f"{arch}.*"), arch]:
        spec = SPECS.get(name)
        if all(spec.builder_kwargs.get(k) == v for k, v in wanted.items()):
            return adapt_spec(spec, model)
    return None


def register_model(name: str | None = None, **meta: Any) -> Callable:
    """Decorator for a paper's builder: registers it (:func:`cxrzoo.spec.register_architecture`; the name defaults
    to the builder's without ``build_``) and makes the models it returns carry their spec, so
    ``cxrzoo.build_cxrnet()`` is guarded like ``cxrzoo.create_model("cxrnet")``."""

    def decorate(builder: Callable) -> Callable:
        arch = name or builder.__name__.removeprefix("build_")
        parameters = inspect.signature(builder).parameters
        defaults = {k: parameters[k].default for k in _WEIGHTS_ARGUMENTS if k in parameters}

        @functools.wraps(builder)
        def build(*args: Any, **kwargs: Any) -> keras.Model:
            model = builder(*args, **kwargs)
            if isinstance(model, SpecModel) or not isinstance(model, keras.Model):
                return model
            spec = spec_for_build(arch, {k: kwargs.get(k, v) for k, v in defaults.items()}, model)
            return model if spec is None else attach_spec(model, spec)

        register_architecture(arch, build, **meta)
        return build

    return decorate
