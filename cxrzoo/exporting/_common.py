"""What every export format shares: the model and its spec, the metadata record, the signatures' tensors, atomic
writes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cxrzoo._version import __version__
from cxrzoo.registry import create_model, model_spec
from cxrzoo.spec import ModelSpec
from cxrzoo.weights.manifest import weights_info

#: File name of the spec inside a SavedModel's ``assets/`` and the metadata key in LiteRT and ONNX files.
METADATA_NAME = "cxrzoo_spec.json"
METADATA_KEY = "cxrzoo_spec"


class ExportError(ValueError):
    """A model that cannot be exported in the format asked for, with the reason and what to do instead."""


def resolve(name_or_model: Any) -> tuple[keras.Model, ModelSpec, bool]:
    """(model, spec, whether it came as a model object) for a spec name (built with its published weights, as
    :func:`cxrzoo.create_model` builds it) or a model carrying a spec."""
    if isinstance(name_or_model, str):
        model = create_model(name_or_model)
        return model, model_spec(model), False
    if not isinstance(name_or_model, keras.Model):
        raise TypeError(f"export expects a model name or a Keras model, got {type(name_or_model).__name__}")
    return name_or_model, model_spec(name_or_model), True


def metadata(spec: ModelSpec, *, fmt: str, from_object: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record every export carries: spec, labels, input contract, weights tags with their sha256, versions."""
    weights = []
    for tag in spec.weights:
        entry = weights_info(tag)
        weights.append({"tag": tag, "files": [{"filename": f.filename, "sha256": f.sha256} for f in entry.files]})
    record = {
        "name": spec.name,
        "format": fmt,
        "labels": list(spec.output.labels),
        "task": spec.task,
        "output_kind": spec.output.kind,
        "input": {
            "shape": list(spec.input.shape),
            "value_range": None if spec.input.value_range is None else list(spec.input.value_range),
            "dtype": spec.input.dtype,
            "description": spec.input.description,
        },
        "weights": weights,
        # a model object passed to export() may have been fine-tuned: its weights are then not the tags' files
        "weights_from_model_object": from_object,
        "cxrzoo_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "spec": spec.to_dict(),
    }
    record.update(extra or {})
    return record


def metadata_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=1, sort_keys=True)


# ------------------------------------------------------------------------------------------------- signatures


def input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    """One ``tf.TensorSpec`` per model input (batch dimension free), named after the model's inputs."""
    specs = []
    for tensor in model.inputs:
        name = tensor.name.split(":")[0].split("/")[0] or "input"
        specs.append(tf.TensorSpec((None, *tensor.shape[1:]), tf.as_dtype(tensor.dtype or "float32"), name=name))
    return specs


def output_dict(out: Any, spec: ModelSpec, taken: tuple[str, ...] = ()) -> dict[str, tf.Tensor]:
    """A model's outputs as a dict: dict outputs keep their keys, a single tensor is named by the spec's kind
    (``probabilities``, ``mask``, …; ``<kind>_output`` where an input already has that name, e.g. the bone
    suppression model's ``image``: ONNX needs distinct names)."""
    if isinstance(out, dict):
        return dict(out)
    name = spec.output.kind if spec.output.kind not in taken else f"{spec.output.kind}_output"
    if isinstance(out, (list, tuple)):
        if len(out) == 1:
            return {name: out[0]}
        return {f"output_{i}": t for i, t in enumerate(out)}
    return {name: out}


def prepared_function(model: keras.Model, spec: ModelSpec) -> Callable:
    """``tf.function`` of the model on prepared tensors (its input contract), outputs as :func:`output_dict`."""
    inputs = input_specs(model)
    names = tuple(t.name for t in inputs)

    def call(*tensors):
        out = model(list(tensors) if len(tensors) > 1 else tensors[0], training=False)
        return output_dict(out, spec, names)

    call.__name__ = "prepared"
    return tf.function(call, input_signature=inputs, autograph=False)


def primary(out: dict[str, tf.Tensor], spec: ModelSpec) -> tf.Tensor:
    """The output the spec describes (``spec.output.key`` of a dict, else the only one)."""
    if spec.output.key is not None and spec.output.key in out:
        return out[spec.output.key]
    return next(iter(out.values()))


def activate(scores: tf.Tensor, spec: ModelSpec) -> tf.Tensor:
    """Probabilities from the primary output, as :class:`cxrzoo.Pipeline` computes them."""
    if spec.output.kind == "logits":
        return tf.sigmoid(scores) if scores.shape[-1] == 1 else tf.nn.softmax(scores, axis=-1)
    if spec.output.kind == "mask" and spec.output.activation is None:
        return tf.sigmoid(scores)
    return scores


# ----------------------------------------------------------------------------------------------------- writing


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if not target.parent.exists():
        raise FileNotFoundError(f"{target.parent}: no such folder for the export")
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(target: Path, write: Callable[[str], None]) -> Path:
    """Writes a file atomically: ``write(tmp)`` into a temporary file beside ``target``, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def write_folder(target: Path, write: Callable[[str], None]) -> Path:
    """Writes a folder atomically: ``write(tmp)`` fills a temporary folder beside ``target``, which then takes
    ``target``'s place (an existing ``target`` is moved aside first and removed after)."""
    tmp = tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
    aside = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        write(tmp)
        if target.exists():
            aside = tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent)
            os.replace(target, Path(aside) / "old")
        os.replace(tmp, target)
    finally:
        if Path(tmp).exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    return target


def as_numpy_dict(out: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in out.items()}
