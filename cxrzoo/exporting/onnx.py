"""ONNX export with tf2onnx (the optional extra ``pip install 'cxrzoo[export]'``): the model on prepared tensors.

Inputs keep the model's input names, outputs are named as the SavedModel's ``prepared`` signature names them
(``probabilities``, ``mask``, …). The spec's JSON record is the model's ``metadata_props`` entry ``cxrzoo_spec``
(plus ``labels`` and ``source`` for a quick look in Netron). Operations tf2onnx cannot express in ONNX are named
in an :class:`~cxrzoo.exporting.ExportError`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import keras

from cxrzoo.exporting._common import METADATA_KEY, ExportError, input_specs, metadata_json, prepared_function
from cxrzoo.spec import ModelSpec

#: The ONNX opset written (tf2onnx 1.17 supports up to 18; 17 is widely supported by runtimes).
DEFAULT_OPSET = 17


def _require():
    try:
        import onnx
        import tf2onnx
    except ImportError as err:
        raise ImportError(
            f"ONNX export needs tf2onnx and onnx ({err.name} is missing): pip install 'cxrzoo[export]'"
        ) from None
    return tf2onnx, onnx


def convert(model: keras.Model, spec: ModelSpec, record: dict, *, opset: int = DEFAULT_OPSET) -> Any:
    """The ``onnx.ModelProto`` of ``model`` with ``record`` in its metadata."""
    tf2onnx, onnx = _require()
    function = prepared_function(model, spec)
    signature = input_specs(model)
    names = list(function.get_concrete_function(*signature).structured_outputs)
    handler = _Collect()
    log = logging.getLogger("tf2onnx")
    log.addHandler(handler)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    except Exception as err:  # tf2onnx raises ValueError, KeyError, … on ops it cannot convert
        ops = handler.unsupported()
        reason = f"unsupported TensorFlow ops: {', '.join(ops)}" if ops else f"{type(err).__name__}: {err}"
        raise ExportError(f"{spec.name}: tf2onnx cannot convert this model to ONNX (opset {opset}): {reason}") from None
    finally:
        log.removeHandler(handler)
    ops = handler.unsupported()
    if ops:
        raise ExportError(
            f"{spec.name}: tf2onnx cannot convert this model to ONNX (opset {opset}): unsupported TensorFlow "
            f"ops: {', '.join(ops)}"
        )
    _rename_outputs(proto, names)
    _set_metadata(onnx, proto, record)
    return proto


class _Collect(logging.Handler):
    """Collects the op names of tf2onnx's "not supported" log lines."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def unsupported(self) -> list[str]:
        ops = set()
        for message in self.messages:
            ops.update(re.findall(r"Tensorflow op \[[^\]]*: (\w+)\] is not supported", message))
            for counts in re.findall(r"Unsupported ops: Counter\(\{([^}]*)\}\)", message):
                ops.update(re.findall(r"'(\w+)'", counts))
        return sorted(ops)


def _rename_outputs(proto, names: list[str]) -> None:
    """tf2onnx names the outputs after graph tensors (``Identity:0``); give them the signature's names, in the
    order of the concrete function's flattened outputs (sorted keys)."""
    outputs = list(proto.graph.output)
    if len(outputs) != len(names):
        return
    mapping = {out.name: name for out, name in zip(outputs, sorted(names))}
    for node in proto.graph.node:
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
    for out in outputs:
        out.name = mapping[out.name]


def _set_metadata(onnx, proto, record: dict) -> None:
    values = {
        METADATA_KEY: metadata_json(record),
        "labels": ",".join(record["labels"]),
        "source": record["name"],
    }
    del proto.metadata_props[:]
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"cxrzoo export of {record['name']} (metadata_props['{METADATA_KEY}'] holds the spec)"
    proto.producer_name = "cxrzoo (tf2onnx)"


def read_onnx_metadata(path: str) -> str | None:
    """The ``cxrzoo_spec`` JSON text of an ONNX file, or None."""
    _, onnx = _require()
    proto = onnx.load(path, load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return entry.value
    return None


__all__ = ["DEFAULT_OPSET", "convert", "read_onnx_metadata"]
