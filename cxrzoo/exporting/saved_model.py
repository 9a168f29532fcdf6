"""SavedModel export: the model traced into a TensorFlow graph, with the paper's preparation in front of it.

Signatures (docs/export.md):

- ``serving_default``: ``images`` (a batch of encoded PNG/JPEG/BMP/GIF files, ``tf.string``) → one output per
  label (``{"covid": p, "non_covid": p}``; segmentation: one (B, H, W) map per channel at the model's size) and
  ``probabilities`` (B, K) or (B, H, W, K). The preparation is the graph recipe of the spec
  (:func:`cxrzoo.preprocessing.graph.graph_recipe`), equal to the NumPy recipe to the bit. Models without one
  (no image recipe, several inputs, or a recipe needing OpenCV-only operations) get the ``prepared`` function
  here instead.
- ``prepared``: the model's own input contract (e.g. ``image`` float32 (B, 300, 340, 1) 0..255 for CXR-Net) → its
  outputs by name.
- ``metadata``: no input → ``cxrzoo_spec`` (the JSON record of :func:`cxrzoo.exporting.read_metadata`); the same
  JSON is the asset ``assets/cxrzoo_spec.json``.

The SavedModel needs neither cxrzoo nor Keras to load: ``tf.saved_model.load(path)`` in plain TensorFlow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from cxrzoo.exporting._common import (
    METADATA_KEY,
    METADATA_NAME,
    activate,
    metadata_json,
    prepared_function,
    primary,
)
from cxrzoo.preprocessing.graph import decode_gray, graph_recipe
from cxrzoo.spec import ModelSpec

#: Signature names.
SERVING, PREPARED, METADATA = "serving_default", "prepared", "metadata"


def image_function(model: keras.Model, spec: ModelSpec) -> tf.types.experimental.GenericFunction | None:
    """``tf.function`` from a batch of encoded image files to labelled outputs, or None when the spec has no
    graph recipe or the model takes more than one input."""
    prepare = graph_recipe(spec)
    if prepare is None or len(model.inputs) != 1 or spec.task not in ("classification", "segmentation"):
        return None
    shape = tuple(int(s) for s in spec.input.shape)
    labels = list(spec.output.labels)
    call = prepared_function(model, spec)

    def one(data):
        return prepare(*decode_gray(data))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")], autograph=False)
    def serve(images):
        batch = tf.map_fn(one, images, fn_output_signature=tf.TensorSpec(shape, tf.float32))
        p = activate(primary(call(batch), spec), spec)
        out = {label: p[..., k] for k, label in enumerate(labels)}
        out["probabilities"] = p
        return out

    return serve


def build_module(
    model: keras.Model, spec: ModelSpec, record_json: str, asset: str | None, *, images: bool = True
) -> tuple[tf.Module, dict]:
    """The ``tf.Module`` to save and its signatures: serving_default (images or prepared), prepared, metadata."""
    module = tf.Module()
    module.model = model  # tracks the variables
    prepared = prepared_function(model, spec)
    serve = image_function(model, spec) if images else None

    @tf.function(input_signature=[], autograph=False)
    def metadata():
        return {METADATA_KEY: tf.constant(record_json)}

    module.prepared, module.metadata = prepared, metadata
    if asset is not None:
        module.spec_asset = tf.saved_model.Asset(asset)
    signatures = {SERVING: serve if serve is not None else prepared, PREPARED: prepared, METADATA: metadata}
    if serve is not None:
        module.serve = serve
    return module, signatures


def write_saved_model(folder: str, model: keras.Model, spec: ModelSpec, record: dict, *, images: bool = True) -> None:
    """Saves the SavedModel into ``folder`` (an empty folder)."""
    images = images and image_function(model, spec) is not None
    record = dict(record, signatures=_signature_notes(model, spec, images))
    text = metadata_json(record)
    with tempfile.TemporaryDirectory() as staging:
        asset = Path(staging) / METADATA_NAME  # an asset keeps its file name: assets/cxrzoo_spec.json
        asset.write_text(text, encoding="utf-8")
        module, signatures = build_module(model, spec, text, str(asset), images=images)
        tf.saved_model.save(module, folder, signatures=signatures)


def _signature_notes(model: keras.Model, spec: ModelSpec, images: bool) -> dict:
    inputs = ", ".join(t.name for t in model.inputs)
    return {
        SERVING: "images: encoded PNG/JPEG/BMP/GIF files (tf.string, batch) -> one output per label and "
        "probabilities; the preparation runs in the graph"
        if images
        else f"the same as {PREPARED} (no in-graph preparation for this model)",
        PREPARED: f"{inputs}: {spec.input.description}",
        METADATA: f"{METADATA_KEY}: this JSON",
    }
