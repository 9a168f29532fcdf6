"""``ensemble``: several trained models as parallel paths of ONE Keras model, joined by averaging activations.

CXR-Net joins its six cross-validation members by averaging their masked feature maps *before* global average
pooling and softmax (docs/models/cxrnet.md): ``softmax(GAP(mean_k A_k))``. Because GAP is linear this equals the
softmax of the mean of the members' logits, and it differs from the mean of their probabilities (0.93871 against
0.92052 on the authors' sample). Weights are never averaged: members trained from different initializations have
no common coordinate system, so the ensemble keeps every member's weights.

| mode | joins | output |
|---|---|---|
| ``"feature_average"`` | the input of the last global pooling layer (CXR-Net: ``masked_map``) | head applied to the mean map |
| ``"logit_average"`` | the input of the output activation | activation of the mean logits |
| ``"probability_average"`` | the outputs | mean probabilities |

The members are copied into the ensemble (``keras.models.clone_model`` + their weights), so the ensemble is
self-contained and freezing it leaves the given models untouched; it saves to ``.keras`` and reloads with
``cxrzoo.models.load_model``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

__all__ = ["ENSEMBLE_MODES", "ensemble"]

ENSEMBLE_MODES = ("feature_average", "logit_average", "probability_average")
_POOLING = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling3D,
)


def _activation_name(layer: keras.Layer) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "softmax" if isinstance(layer, keras.layers.Softmax) else None
    return getattr(activation, "__name__", str(activation))


def _fresh(layer: keras.Layer) -> keras.Layer:
    """A new, unbuilt layer with ``layer``'s configuration (for weight-free head layers)."""
    return layer.__class__.from_config(layer.get_config())


def _copy(member: keras.Model, *, linear_output: bool = False) -> keras.Model:
    """A clone of ``member`` with its weights; with ``linear_output`` the last layer's activation is removed."""
    last = member.layers[-1]

    def clone(layer: keras.Layer) -> keras.Layer:
        config = layer.get_config()
        if linear_output and layer is last:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(member, clone_function=clone)
    copy.set_weights(member.get_weights())
    return copy


def _head_after(member: keras.Model, pooling: keras.Layer) -> list:
    """The layers from ``pooling`` to the output, checked to form a weight-free chain."""
    chain, layer = [], pooling
    while True:
        chain.append(layer)
        if layer.output is member.outputs[0] or layer is member.layers[-1]:
            break
        consumers = [other for other in member.layers if any(t is layer.output for t in _inputs_of(other))]
        if len(consumers) != 1:
            raise ValueError(f"the head after {pooling.name!r} is not a simple chain of layers")
        layer = consumers[0]
    heavy = [h.name for h in chain if h.weights]
    if heavy:
        raise ValueError(
            f"feature averaging needs a weight-free head after the feature map (CXR-Net: GAP → "
            f"softmax), but {heavy} have weights; use mode='logit_average' or 'probability_average'"
        )
    return chain


def _inputs_of(layer: keras.Layer) -> list:
    try:
        inputs = layer.input
    except (AttributeError, ValueError):
        return []
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _feature_layer(member: keras.Model, feature_layer: str | None) -> keras.Layer:
    if feature_layer is not None:
        layer = member.get_layer(feature_layer)
        consumers = [other for other in member.layers if any(t is layer.output for t in _inputs_of(other))]
        if len(consumers) != 1:
            raise ValueError(f"layer {feature_layer!r} must feed exactly one layer, the head")
        return consumers[0]
    pools = [layer for layer in member.layers if isinstance(layer, _POOLING)]
    if not pools:
        raise ValueError(
            f"model {member.name!r} has no global average pooling layer to average before; name "
            "the feature layer (feature_layer=...) or use another mode"
        )
    return pools[-1]


def _check_members(models: Sequence[keras.Model]) -> None:
    if len(models) < 2:
        raise ValueError(f"an ensemble needs at least two models, got {len(models)}")
    for m in models:
        if not isinstance(m, keras.Model):
            raise TypeError(f"ensemble members must be keras.Model, got {type(m).__name__}")
        if len(m.outputs) != 1:
            raise ValueError(f"member {m.name!r} has {len(m.outputs)} outputs; ensemble needs single-output models")
    first = models[0]
    for m in models[1:]:
        if [tuple(t.shape[1:]) for t in m.inputs] != [tuple(t.shape[1:]) for t in first.inputs]:
            raise ValueError(
                f"member {m.name!r} takes inputs {[t.shape for t in m.inputs]}, member "
                f"{first.name!r} {[t.shape for t in first.inputs]}"
            )
        if tuple(m.output_shape[1:]) != tuple(first.output_shape[1:]):
            raise ValueError(f"member {m.name!r} outputs {m.output_shape}, member {first.name!r} {first.output_shape}")


def ensemble(
    models: Sequence[keras.Model],
    mode: str = "feature_average",
    *,
    feature_layer: str | None = None,
    front: keras.Model | None = None,
    trainable: bool = False,
    name: str = "ensemble",
) -> keras.Model:
    """Joins trained ``models`` into one Keras model whose members run as parallel paths.

    Args:
        models: two or more single-output models with the same inputs and output shape (e.g. the fold models of
            :func:`cxrzoo.training.cross_validate`).
        mode: ``"feature_average"`` (CXR-Net's rule: average the maps entering the last global average pooling,
            then apply the members' weight-free head), ``"logit_average"`` (average the inputs of the output
            softmax/sigmoid, then apply it) or ``"probability_average"`` (average the outputs).
        feature_layer: for ``feature_average``, the name of the layer whose output is averaged (default: the input
            of the last global average pooling layer; CXR-Net members: ``"masked_map"``).
        front: optional model or layer applied once to the ensemble's inputs, whose output all members take
            (CXR-Net: the one WST block the six members share).
        trainable: False (CXR-Net) freezes the members inside the ensemble (the given models are not affected).
        name: the ensemble's name.

    Returns:
        A ``keras.Model`` with the members as sub-models ``member0``, ``member1``, …; the averaged tensor is the
        layer ``feature_map`` (feature mode), ``logits`` (logit mode) or ``predictions`` (probability mode).

    Example:
        >>> cv = cxrzoo.training.cross_validate(builder, (features, labels), n_splits=6, groups=patients)
        >>> model = cxrzoo.training.ensemble(cv.models, "feature_average")
    """
    if mode not in ENSEMBLE_MODES:
        raise ValueError(f"mode must be one of {ENSEMBLE_MODES}, got {mode!r}")
    models = list(models)
    _check_members(models)
    first = models[0]
    if front is not None:
        front_inputs = front.inputs if isinstance(front, keras.Model) else None
        if front_inputs is None:
            raise TypeError("front must be a functional keras.Model (its inputs become the ensemble's)")
        inputs = [keras.Input(shape=tuple(t.shape[1:]), name=t.name.split(":")[0]) for t in front_inputs]
        shared = front(inputs if len(inputs) > 1 else inputs[0])
        member_inputs = shared
    else:
        inputs = [keras.Input(shape=tuple(t.shape[1:]), name=t.name.split(":")[0]) for t in first.inputs]
        member_inputs = inputs if len(inputs) > 1 else inputs[0]

    head: list = []
    paths = []

    def path_model(copy: keras.Model, output: keras.KerasTensor, k: int) -> keras.Model:
        ins = copy.inputs if len(copy.inputs) > 1 else copy.inputs[0]
        return keras.Model(ins, output, name=f"member{k}")

    for k, member in enumerate(models):
        if mode == "feature_average":
            copy = _copy(member)
            pooling = _feature_layer(copy, feature_layer)
            chain = _head_after(copy, pooling)
            head = head or chain
            path = path_model(copy, pooling.input, k)
        elif mode == "logit_average":
            last = member.layers[-1]
            activation = _activation_name(last)
            if activation not in ("softmax", "sigmoid"):
                raise ValueError(
                    f"member {member.name!r} ends in {last.name!r} without a softmax/sigmoid "
                    "activation; its outputs are logits already: use 'probability_average'"
                )
            head = head or [keras.layers.Activation(activation, name="predictions")]
            if last.weights:
                copy = _copy(member, linear_output=True)
                path = path_model(copy, copy.outputs[0], k)
            else:
                copy = _copy(member)
                path = path_model(copy, copy.layers[-1].input, k)
        else:
            copy = _copy(member)
            path = path_model(copy, copy.outputs[0], k)
        path.trainable = trainable
        paths.append(path(member_inputs))

    if mode == "feature_average":
        x = keras.layers.Average(name="feature_map")(paths)
        for layer in head:
            x = _fresh(layer)(x)
    elif mode == "logit_average":
        x = keras.layers.Average(name="logits")(paths)
        x = head[0](x)
    else:
        x = keras.layers.Average(name="predictions")(paths)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], x, name=name)
