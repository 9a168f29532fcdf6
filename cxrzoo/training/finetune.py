"""Fine-tuning helpers: carry published weights into a model with a different head, freeze and unfreeze.

The usual recipe (docs/finetuning.md): build the published model, build the model you want (e.g. ``classes=3``),
:func:`transfer_weights` from one to the other with ``freeze=True``, train the new layers, then
:func:`set_trainable` everything back and train briefly with a lower learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import keras

__all__ = ["TransferReport", "set_trainable", "transfer_weights"]


class TransferReport(NamedTuple):
    """Layer paths (``member0/stem_conv`` inside nested models) by outcome of :func:`transfer_weights`."""

    copied: list[str]  # weights copied from the source
    mismatched: list[str]  # present in the source with other weight shapes (e.g. a new number of classes)
    new: list[str]  # absent from the source


def _weighted_layers(model: keras.Model, prefix: str = "") -> dict:
    """Path → layer for every layer that owns weights, descending into nested models."""
    import keras

    out = {}
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            out.update(_weighted_layers(layer, prefix=f"{path}/"))
        elif layer.weights:
            out[path] = layer
    return out


def transfer_weights(source: keras.Model, target: keras.Model, *, freeze: bool = False) -> TransferReport:
    """Copies every layer's weights from ``source`` into the layer of the same name (path) in ``target`` when all
    their shapes agree; the other layers of ``target`` keep their initialization.

    Args:
        source: the trained model (e.g. ``build_cxrnet_member(weights="cxrnet_member.hfhs_fold0")``).
        target: the model to fine-tune, built with the same layer names (e.g. the same builder with ``classes=3``).
        freeze: mark the copied layers non-trainable (their BatchNormalization layers then also run in inference
            mode, which is what fine-tuning with few images wants).

    Returns:
        A :class:`TransferReport`; ValueError if nothing could be copied (the models share no layer).

    Example:
        >>> published = cxrzoo.build_cxrnet_member(weights="cxrnet_member.hfhs_fold0")
        >>> mine = cxrzoo.build_cxrnet_member(classes=3)
        >>> report = transfer_weights(published, mine, freeze=True)   # all but the final 3-class block
    """
    src = _weighted_layers(source)
    copied, mismatched, new = [], [], []
    for path, layer in _weighted_layers(target).items():
        other = src.get(path)
        if other is None:
            new.append(path)
            continue
        values = other.get_weights()
        if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.weights]:
            mismatched.append(path)
            continue
        layer.set_weights(values)
        if freeze:
            layer.trainable = False
        copied.append(path)
    if not copied:
        raise ValueError(f"no layer of {target.name!r} matches a layer of {source.name!r} by name and shapes")
    return TransferReport(copied, mismatched, new)


def set_trainable(
    model: keras.Model, trainable: bool = True, *, layers: Sequence[str] | Callable | None = None
) -> list[str]:
    """Sets ``trainable`` on the weighted layers of ``model`` (all, those whose path starts with one of the
    ``layers`` prefixes, or those for which ``layers(path)`` is true); returns the paths changed.

    Recompile (or call a fit function, which compiles) after changing what is trainable.
    """
    chosen = []
    for path, layer in _weighted_layers(model).items():
        if layers is None:
            keep = True
        elif callable(layers):
            keep = bool(layers(path))
        else:
            keep = any(path.startswith(prefix) for prefix in layers)
        if keep:
            layer.trainable = trainable
            chosen.append(path)
    return chosen
