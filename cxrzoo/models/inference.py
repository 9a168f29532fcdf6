"""Inference copies of trained models: BatchNormalization folded into the convolution in front of it.

At inference a BatchNormalization layer is a per-channel affine map, ``y = s·x + t`` with
``s = gamma / sqrt(moving_variance + epsilon)`` and ``t = beta − s·moving_mean``. When its input is the output of a
convolution that nothing else reads, the map can be folded into that convolution's kernel and bias, which removes
one full pass over the feature map per normalization. In Res-CR-Net (CXR-Net Module 1) 24 of its 29 normalizations
follow a convolution, and at 300×340 on a CPU their passes are about a fifth of the forward time.
"""

from __future__ import annotations

import keras
import numpy as np

from cxrzoo.layers.common import FoldedBatchNormalization

__all__ = ["fold_batch_norm"]

_FOLDABLE = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)


def _graph(model) -> tuple[dict[str, list[str]], dict[str, int], dict[str, int], set[str]]:
    """From the model's public functional config: per layer, the layers it reads; how many calls read each layer's
    output; how many times each layer is called; the layers whose outputs are model outputs."""
    config = model.get_config()
    inputs_of, readers, calls = {}, {}, {}
    for spec in config["layers"]:
        names = []

        def walk(obj):
            if isinstance(obj, dict):
                if obj.get("class_name") == "__keras_tensor__":
                    names.append(obj["config"]["keras_history"][0])
                else:
                    for value in obj.values():
                        walk(value)
            elif isinstance(obj, (list, tuple)):
                for value in obj:
                    walk(value)

        walk(spec.get("inbound_nodes", []))
        inputs_of[spec["name"]] = names
        calls[spec["name"]] = len(spec.get("inbound_nodes", []))
        for name in names:
            readers[name] = readers.get(name, 0) + 1
    outputs = {entry[0] for entry in keras.tree.flatten(config["output_layers"]) if isinstance(entry, str)}
    return inputs_of, readers, calls, outputs


def _pairs(model) -> dict[str, str]:
    """{convolution name: BatchNormalization name} for every foldable pair."""
    inputs_of, readers, calls, outputs = _graph(model)
    layers = {layer.name: layer for layer in model.layers}
    pairs = {}
    for name, sources in inputs_of.items():
        bn = layers.get(name)
        if not isinstance(bn, keras.layers.BatchNormalization) or len(sources) != 1 or calls[name] != 1:
            continue
        conv = layers.get(sources[0])
        if (isinstance(conv, _FOLDABLE) and readers.get(conv.name) == 1 and calls[conv.name] == 1
                and conv.name not in outputs and conv.data_format == "channels_last"
                and conv.activation in (None, keras.activations.linear) and bn.axis in (-1, len(bn.input.shape) - 1)):
            pairs[conv.name] = bn.name
    return pairs


def _affine(bn) -> tuple[np.ndarray, np.ndarray]:
    mean, var = (np.asarray(v.numpy(), np.float64) for v in (bn.moving_mean, bn.moving_variance))
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - scale * mean


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of ``model`` for inference with each foldable BatchNormalization merged into its convolution.

    A BatchNormalization folds when its only input is a ``Conv2D``, ``SeparableConv2D`` or ``DepthwiseConv2D``
    (channels last, linear activation) whose output nothing else reads; the folded layer keeps its name and becomes
    a pass-through ``FoldedBatchNormalization``, and the convolution gains the bias. Other layers are copied with
    their weights. The copy gives the original's inference outputs to float rounding (~1e-6); it is not meant for
    training (the statistics are gone). ``model`` is not changed.

    Example:
        >>> fast = fold_batch_norm(cxrzoo.build_res_cr_net(weights="res_cr_net.v7_lungs"))
        >>> lungs = fast(x, training=False)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"fold_batch_norm needs a functional keras.Model, got {type(model).__name__}")
    pairs = _pairs(model)
    folded_bns = set(pairs.values())

    def clone(layer):
        config = layer.get_config()
        if layer.name in folded_bns:
            return FoldedBatchNormalization(name=layer.name)
        if layer.name in pairs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in folded_bns or not layer.weights:  # (an unnamed input layer is renamed by the cloning)
            continue
        target = copy.get_layer(layer.name)
        weights = layer.get_weights()
        if layer.name in pairs:
            scale, shift = _affine(model.get_layer(pairs[layer.name]))
            if isinstance(layer, keras.layers.SeparableConv2D):
                kernel = np.asarray(layer.pointwise_kernel.numpy(), np.float64) * scale
                weights = [layer.depthwise_kernel.numpy(), kernel.astype(np.float32)]
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                kernel = np.asarray(layer.kernel.numpy(), np.float64)
                kernel = (kernel * scale.reshape(kernel.shape[2], kernel.shape[3])).astype(np.float32)
                weights = [kernel]
            else:
                weights = [(np.asarray(layer.kernel.numpy(), np.float64) * scale).astype(np.float32)]
            bias = np.asarray(layer.bias.numpy(), np.float64) if layer.use_bias else 0.0
            weights.append((scale * bias + shift).astype(np.float32))
        target.set_weights(weights)
    return copy
