"""CXR-Net Module 2 (WST + cross-attention + CONV RES ensemble) and the end-to-end CXR-Net.

Reference:
    Gatti et al., "CXR-Net: A Multitask Deep Learning Network for Explainable and Accurate Diagnosis of COVID-19
    Pneumonia from Chest X-ray Images", §2.2 "Module 2", §3.2; authors' code and weights:
    github.com/dgattiwsu/CXR-Net (Apache-2.0). Facts used here: docs/models/cxrnet.md

Module 2, one member (:func:`build_cxrnet_member`; input the 50-channel WST map at 75×85)::

    a0 = S0 channel, m0 = pooled float mask, m1 = (m0 > 0.3)
    rows = attention along rows (query a0, key m1, value m0); cols = the same along columns
    [input, a0·rows·cols] (51) ─ dropout ─ BN ─ stem ─ drop ─ res ─ drop ─ final 'add' block (classes)
                              ─ LeakyReLU ─ ·m1 ─ GAP ─ softmax

The CONV RES blocks are Module 1's (:func:`cxrzoo.models.cxrnet.res_cr_net.conv_res_block`) with 3×3 kernels, dilations
1/2/3 and 17 filters per branch. The published system (:func:`build_cxrnet_classifier`) runs one WST
(J=2, L=6) on the standardized CXR, concatenates the 4×4 average-pooled float lung mask, feeds six members and
averages their masked 75×85×2 maps before GAP and softmax (not their probabilities). :func:`build_cxrnet` puts
Module 1, the authors' mask preparation and standardization in front, in one Keras model.

Weights load by layer name through :func:`member_legacy_names`; the row and column attention layers, which have
identical shapes, can never receive each other's weights.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from cxrzoo.models.cxrnet.layers import AxisAttention, LungMaskGate, MinMaxRescale, SelectChannel, Threshold
from cxrzoo.models.cxrnet.preprocessing import CXRNET_MEAN, CXRNET_STD
from cxrzoo.models.cxrnet.res_cr_net import LEAKY_SLOPE, _k2, build_res_cr_net, conv_res_block
from cxrzoo.nn.model import register_model
from cxrzoo.nn.scattering import Scattering2D
from cxrzoo.weights.loading import (
    assign_by_name,
    is_legacy_h5,
    load_weights,
    looks_like_path,
    read_legacy_h5,
    resolve_weights,
)

if TYPE_CHECKING:
    from cxrzoo.weights.manifest import WeightsEntry

MEMBER_ARCH = "cxrnet_member"
CLASSIFIER_ARCH = "cxrnet_classifier"
CLASS_NAMES = ("covid", "non_covid")
WST_J, WST_L = 2, 6
MASK_MODES = ("binary", "float")
# L1L2 on the first separable convolutions of the final block (authors' Module 2 code); training only.
FINAL_BLOCK_REGULARIZER = dict(l1=1e-5, l2=1e-4)


# ------------------------------------------------------------------------------------------------- one member


def cross_attention(
    features: keras.KerasTensor,
    *,
    mask_threshold: float,
    num_heads: int = 2,
    head_size: int = 64,
    name: str = "attention",
) -> tuple[keras.KerasTensor, keras.KerasTensor, keras.KerasTensor, keras.KerasTensor]:
    """CXR-Net's ATTENTION block on the WST map ``features`` (S0 first, pooled float mask last).

    Returns ``(concat, a0, m0, m1)``: the input with the cross-attention map appended, the S0 channel, the float
    mask and the binary mask (m0 > ``mask_threshold``).
    """
    a0 = SelectChannel(0, name="image_channel")(features)
    m0 = SelectChannel(-1, name="mask_channel")(features)
    m1 = Threshold(mask_threshold, name="mask_binary")(m0)
    rows = AxisAttention(num_heads, head_size, axis=2, name="row_attention")([a0, m1, m0])
    cols = AxisAttention(num_heads, head_size, axis=1, name="column_attention")([a0, m1, m0])
    attended = keras.layers.Multiply(name=f"{name}_map")([a0, rows, cols])
    return keras.layers.Concatenate(name=f"{name}_concat")([features, attended]), a0, m0, m1


def _member_trunk(
    features: keras.KerasTensor,
    *,
    classes: int,
    filters: int,
    conv_blocks: int,
    dilation_rates: Sequence[int],
    dropout: float,
    mask_threshold: float,
    mask_mode: str,
    gap_threshold: float | None,
    scale_by_input: bool,
    num_heads: int,
    head_size: int,
    kernel_initializer: str | keras.initializers.Initializer,
) -> keras.KerasTensor:
    """Layers of one member from the WST map to the masked (B, H, W, classes) map."""
    x, a0, m0, m1 = cross_attention(features, mask_threshold=mask_threshold, num_heads=num_heads, head_size=head_size)
    x = keras.layers.SpatialDropout2D(dropout, name="prep_dropout")(x)
    x = keras.layers.BatchNormalization(name="prep_bn")(x)
    block = dict(
        kernel_sizes=(3,) * len(dilation_rates),
        dilation_rates=tuple(dilation_rates),
        kernel_initializer=kernel_initializer,
    )
    x = conv_res_block(x, filters, name="stem", preactivate=False, **block)
    x = keras.layers.SpatialDropout2D(dropout, name="stem_dropout")(x)
    for r in range(1, conv_blocks):
        x = conv_res_block(x, filters, name=f"block{r}", preactivate=True, **block)
        x = keras.layers.SpatialDropout2D(dropout, name=f"block{r}_dropout")(x)
    x = conv_res_block(
        x,
        classes,
        name="final",
        preactivate=True,
        mode="add",
        first_regularizer=keras.regularizers.L1L2(**FINAL_BLOCK_REGULARIZER),
        **block,
    )
    x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name="final_act")(x)
    weights = [m1 if mask_mode == "binary" else m0]
    if scale_by_input or gap_threshold is not None:
        brightness = MinMaxRescale(name="input_rescaled")(a0)
        if scale_by_input:
            weights.append(brightness)
        if gap_threshold is not None:
            weights.append(Threshold(gap_threshold, name="dense_regions")(brightness))
    return keras.layers.Multiply(name="masked_map")([x, *weights])


def member_legacy_names(conv_blocks: int = 2, branches: int = 3) -> dict[str, str]:
    """Map of a member's layer names → the Keras 2 names in the authors' Module 2 files (reference §2.6).

    The authors built: attention layers (column attention first), the prep BN, then stem, residual blocks and the
    final block in order, so each layer type is numbered in that order; BN indices are shifted by the prep BN.
    """
    names = {
        "row_attention": "multi_head_attention",
        "column_attention": "multi_head_attention_1",
        "prep_bn": "batch_normalization",
    }
    blocks = ["stem", *(f"block{r}" for r in range(1, conv_blocks)), "final"]
    per_block_bn = branches + 2  # pre-activation BN, one BN per branch, shortcut BN
    for b, block in enumerate(blocks):
        if b:
            names[f"{block}_preact_bn"] = _k2("batch_normalization", per_block_bn * b)
        for i in range(branches):
            names[f"{block}_branch{i + 1}_conv1"] = _k2("separable_conv2d", 2 * branches * b + 2 * i)
            names[f"{block}_branch{i + 1}_conv2"] = _k2("separable_conv2d", 2 * branches * b + 2 * i + 1)
            names[f"{block}_branch{i + 1}_bn"] = _k2("batch_normalization", per_block_bn * b + i + 1)
        names[f"{block}_shortcut_conv"] = _k2("conv2d", b)
        names[f"{block}_shortcut_bn"] = _k2("batch_normalization", per_block_bn * b + branches + 1)
    return names


def _convert_attention(layer: keras.Layer, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Authors' attention arrays (heads, in, size) ×3, (heads, size, out), (out,) → :class:`AxisAttention`."""
    if isinstance(layer, AxisAttention):
        if len(arrays) != 5:
            raise ValueError(f"attention layer {layer.name!r}: expected 5 arrays, file has {len(arrays)}")
        q, k, v, wo, bo = arrays
        return [np.transpose(q, (1, 0, 2)), np.transpose(k, (1, 0, 2)), np.transpose(v, (1, 0, 2)), wo, bo]
    return arrays


def _conv_blocks_of(member: keras.Model) -> int:
    return 1 + sum(1 for layer in member.layers if re.fullmatch(r"block\d+_preact_bn", layer.name))


def _assign_member(member: keras.Model, arrays: Mapping[str, list[np.ndarray]], source: str) -> None:
    assign_by_name(
        member, arrays, name_map=member_legacy_names(_conv_blocks_of(member)), convert=_convert_attention, source=source
    )


def _load_member_weights(model: keras.Model, paths: list[Path], entry: WeightsEntry | None) -> None:
    path = paths[0]
    if path.suffix in {".h5", ".hdf5"} and is_legacy_h5(path):
        arrays = read_legacy_h5(path)
        if set(arrays) & {"model", "model_1"}:
            raise ValueError(f"{path} is the authors' ensemble file; load it with build_cxrnet_classifier")
        _assign_member(model, arrays, str(path))
    else:
        model.load_weights(path)


def _published_tag(weights: str | os.PathLike | None) -> bool:
    return weights is not None and not looks_like_path(weights)


def _check_modes(weights: str | os.PathLike | None, gap_threshold: float | None, scale_by_input: bool) -> None:
    if _published_tag(weights) and (gap_threshold is not None or scale_by_input):
        raise ValueError(
            "the published CXR-Net weights were trained without gap_threshold and scale_by_input; "
            "use these modes with weights=None (training) or with your own weights file"
        )


def _check_member_args(
    classes: int, mask_mode: str, filters: int, conv_blocks: int, dilation_rates: Sequence[int]
) -> None:
    if classes < 2:
        raise ValueError(f"classes must be >= 2, got {classes}")
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
    if filters < 1 or conv_blocks < 1 or not dilation_rates:
        raise ValueError(
            f"need filters >= 1, conv_blocks >= 1 and dilation rates; got {filters}, {conv_blocks}, "
            f"{tuple(dilation_rates)}"
        )


@register_model(paper="cxrnet", task="classification", cam_layer="masked_map")
def build_cxrnet_member(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (75, 85, 50),
    include_top: bool = True,
    classes: int = 2,
    classifier_activation: str | None = "softmax",
    mask_threshold: float = 0.3,
    mask_mode: str = "binary",
    gap_threshold: float | None = None,
    scale_by_input: bool = False,
    filters: int = 17,
    conv_blocks: int = 2,
    dilation_rates: Sequence[int] = (1, 2, 3),
    dropout: float = 0.05,
    num_heads: int = 2,
    head_size: int = 64,
    kernel_initializer: str | keras.initializers.Initializer = "he_normal",
    name: str = "cxrnet_member",
) -> keras.Model:
    """One CXR-Net Module 2 member: cross-attention + CONV RES blocks on a WST map, masked, GAP, softmax.

    Reference: Gatti et al., CXR-Net, §2.2.3 and Fig. 3; six such members, one per
    cross-validation fold, make the published ensemble (:func:`build_cxrnet_classifier`).

    Args:
        weights: None, a tag (``"cxrnet_member.hfhs_fold0"`` … ``"hfhs_fold5"``) or a weights file path (the
            authors' Keras 2 member file or a Keras 3 ``.weights.h5``).
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C) of the WST map: C-1 scattering channels with S0 first, the pooled float lung mask
            last. (75, 85, 50) for a 300×340 CXR and J=2, L=6; the layers accept any H and W.
        include_top: False returns the masked (B, H, W, ``classes``) map (layer ``masked_map``) instead of
            probabilities; the ensemble averages these maps.
        classes: output classes; 2 in the paper (index 0 = COVID-19 positive). More classes (the paper's suggested
            fine-grained extension) build and train; the published weights need 2.
        classifier_activation: "softmax" or None (logits = GAP of the masked map).
        mask_threshold: the float mask is binarized at this value (0.3) for the attention key and the final mask.
        mask_mode: "binary" (published) multiplies the final map by the binary mask; "float" by the float mask.
        gap_threshold: the paper's optional mode (§3.2.2, Table 3): exclude clear (dark) lung regions from the
            pooling, i.e. also multiply the final map by ``rescaled S0 > gap_threshold``, where the S0 channel is
            min-max rescaled to [0, 1] per image. None (published) disables it.
        scale_by_input: the paper's other optional mode: also multiply the final map by the min-max rescaled S0
            channel (down-weights clear regions). False in the published models.
        filters, conv_blocks, dilation_rates, dropout: 17 filters per branch; stem + ``conv_blocks - 1`` residual
            blocks before the final block; 3×3 branches with dilations 1, 2, 3; SpatialDropout2D 0.05.
        num_heads, head_size: the attention layers (2 heads of 64).
        kernel_initializer: for training from scratch.
        name: model name.

    Returns:
        A ``keras.Model`` from (B, H, W, C) to (B, ``classes``) probabilities (or the masked map). At the paper's
        configuration it has 20,467 parameters (19,737 trainable).

    Example:
        >>> member = cxrzoo.build_cxrnet_member(weights="cxrnet_member.hfhs_fold0")
        >>> member.predict(wst_features)          # (B, 75, 85, 50) → (B, 2)
    """
    _check_member_args(classes, mask_mode, filters, conv_blocks, dilation_rates)
    _check_modes(weights, gap_threshold, scale_by_input)
    if classifier_activation not in ("softmax", None):
        raise ValueError(f"classifier_activation must be 'softmax' or None, got {classifier_activation!r}")
    if input_tensor is None:
        if len(input_shape) != 3 or input_shape[-1] is None or input_shape[-1] < 2:
            raise ValueError(f"input_shape must be (H, W, C) with C >= 2 (WST channels + mask), got {input_shape}")
        inputs = keras.Input(shape=tuple(input_shape), name="wst_features")
    else:
        inputs = input_tensor
    x = _member_trunk(
        inputs,
        classes=classes,
        filters=filters,
        conv_blocks=conv_blocks,
        dilation_rates=dilation_rates,
        dropout=dropout,
        mask_threshold=mask_threshold,
        mask_mode=mask_mode,
        gap_threshold=gap_threshold,
        scale_by_input=scale_by_input,
        num_heads=num_heads,
        head_size=head_size,
        kernel_initializer=kernel_initializer,
    )
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    return load_weights(
        model,
        weights,
        arch=MEMBER_ARCH,
        loader=_load_member_weights,
        classes=classes,
        mask_threshold=mask_threshold,
        mask_mode=mask_mode,
    )


# --------------------------------------------------------------------------------------------- the ensemble


def read_ensemble_h5(path: str | os.PathLike) -> list[dict[str, list[np.ndarray]]]:
    """The authors' ensemble file as one ``{Keras 2 member layer name: arrays}`` dict per member, in member order.

    Each member group (``model``, ``model_1`` … ``model_5``) lists 130 ``weight_names`` under per-layer scopes
    named by TensorFlow: ``<layer>_<k+1>`` for member k (``multi_head_attention_1_1`` → ``multi_head_attention_1``)
    except for the first layer of each type, whose unnumbered name got another number (``multi_head_attention_2``
    is member 0's ``multi_head_attention``). Scopes are matched to layer names by these rules, never by position;
    a scope that matches no layer, or two scopes matching one layer, fail the load.
    """
    import h5py

    known = set(member_legacy_names().values())
    groups = read_legacy_h5(path)  # validates the file; arrays in each group's weight_names order
    with h5py.File(path, "r") as h5:
        root = h5["model_weights"] if "model_weights" in h5 else h5
        weight_names = {
            g: [w.decode() if isinstance(w, bytes) else str(w) for w in root[g].attrs["weight_names"]] for g in groups
        }
    members: list[tuple[int, dict[str, list[np.ndarray]]]] = []
    for group_name, arrays in groups.items():
        match = re.fullmatch(r"model(?:_(\d+))?", group_name)
        if match is None:
            raise ValueError(f"{path}: unexpected weighted group {group_name!r} (expected model, model_1, ...)")
        k = int(match.group(1) or 0)
        scopes: dict[str, list[np.ndarray]] = {}
        for name, array in zip(weight_names[group_name], arrays):
            scopes.setdefault(name.split("/")[0], []).append(array)
        layers: dict[str, list[np.ndarray]] = {}
        unnumbered = set()
        for scope, values in scopes.items():
            suffix = f"_{k + 1}"
            stripped = scope[: -len(suffix)] if scope.endswith(suffix) else None
            if stripped in known:
                target = stripped
            else:
                target = re.sub(r"_\d+$", "", scope)
                if target not in known or target in unnumbered:
                    raise ValueError(f"{path}: cannot tell which layer of member {k} scope {scope!r} holds")
                unnumbered.add(target)
            if target in layers:
                raise ValueError(f"{path}: two scopes of member {k} map to layer {target!r}")
            layers[target] = values
        members.append((k, layers))
    members.sort(key=lambda item: item[0])
    if [k for k, _ in members] != list(range(len(members))):
        raise ValueError(f"{path}: member groups are not model, model_1, ... in sequence")
    return [layers for _, layers in members]


def _members_of(model: keras.Model) -> list:
    members = [layer for layer in model.layers if re.fullmatch(r"member\d+", layer.name)]
    return sorted(members, key=lambda layer: int(layer.name[len("member") :]))


def _load_classifier_weights(model: keras.Model, paths: list[Path], entry: WeightsEntry | None) -> None:
    path = paths[0]
    if not (path.suffix in {".h5", ".hdf5"} and is_legacy_h5(path)):
        model.load_weights(path)
        return
    groups = read_ensemble_h5(path)
    members = _members_of(model)
    if len(groups) != len(members):
        raise ValueError(f"{path} holds {len(groups)} members, the model has {len(members)}")
    for member, arrays in zip(members, groups):
        _assign_member(member, arrays, f"{path} ({member.name})")


def load_member_files(model: keras.Model, member_weights: Sequence) -> None:
    """Loads one member weights file (tag or path) into each member of an ensemble model, in order.

    ``load_member_files(classifier, [f"cxrnet_member.hfhs_fold{k}" for k in range(6)])`` gives the same model as
    ``weights="cxrnet_classifier.hfhs_ensemble6"`` (the authors' ensemble groups equal their member files).
    """
    members = _members_of(model)
    if len(member_weights) != len(members):
        raise ValueError(f"{len(member_weights)} member weights for {len(members)} members")
    for member, weights in zip(members, member_weights):
        paths, entry = resolve_weights(weights, arch=MEMBER_ARCH)
        _load_member_weights(member, paths, entry)


def module2(
    image: keras.KerasTensor,
    mask: keras.KerasTensor,
    *,
    members: int,
    classes: int,
    classifier_activation: str | None,
    **member_kwargs,
) -> dict[str, keras.KerasTensor]:
    """Module 2 on the standardized image and the [0, 1] lung mask tensors: WST, members, average, GAP, softmax.

    Returns a dict of tensors: ``features`` (WST map + pooled mask), ``feature_map`` (the members' averaged
    masked map, the Grad-CAM target), ``logits`` (its GAP) and ``probabilities``.
    """
    step = 2**WST_J
    wst = Scattering2D(J=WST_J, L=WST_L, name="wst")(image)
    pooled = keras.layers.AveragePooling2D(step, name="mask_pool")(mask)
    features = keras.layers.Concatenate(name="wst_features")([wst, pooled])
    maps = []
    for k in range(members):
        member = build_cxrnet_member(
            input_shape=tuple(features.shape[1:]),
            include_top=False,
            classes=classes,
            name=f"member{k}",
            **member_kwargs,
        )
        maps.append(member(features))
    if members > 1:
        feature_map = keras.layers.Average(name="feature_map")(maps)
    else:
        feature_map = keras.layers.Identity(name="feature_map")(maps[0])
    logits = keras.layers.GlobalAveragePooling2D(name="gap")(feature_map)
    probabilities = logits
    if classifier_activation is not None:
        probabilities = keras.layers.Activation(classifier_activation, name="predictions")(logits)
    return {"features": features, "feature_map": feature_map, "logits": logits, "probabilities": probabilities}


def _check_classifier_args(members: int, input_shape: Sequence[int], classifier_activation: str | None) -> None:
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    if classifier_activation not in ("softmax", None):
        raise ValueError(f"classifier_activation must be 'softmax' or None, got {classifier_activation!r}")
    if len(input_shape) != 3 or input_shape[-1] != 1 or None in tuple(input_shape):
        raise ValueError(f"input_shape must be a fixed (H, W, 1), got {tuple(input_shape)}")
    if input_shape[0] < 2**WST_J or input_shape[1] < 2**WST_J:
        raise ValueError(f"input_shape {tuple(input_shape)} is smaller than the WST scale {2**WST_J}")


@register_model(paper="cxrnet", task="classification", cam_layer="feature_map")
def build_cxrnet_classifier(
    *,
    weights: str | None = None,
    members: int = 6,
    input_shape: Sequence[int] = (300, 340, 1),
    mask_threshold: float = 0.3,
    mask_mode: str = "binary",
    gap_threshold: float | None = None,
    scale_by_input: bool = False,
    classes: int = 2,
    classifier_activation: str | None = "softmax",
    name: str = "cxrnet_classifier",
    **member_kwargs,
) -> keras.Model:
    """CXR-Net Module 2 as the authors ran it: one WST block feeding ``members`` members, maps averaged.

    Reference: Gatti et al., CXR-Net, §2.2.3, Fig. 5, Table 2 (accuracy 0.789, ROC AUC 0.852 on
    the private HFHS test set).

    Args:
        weights: None, ``"cxrnet_classifier.hfhs_ensemble6"`` (the authors' ensemble file), or a weights file
            path. To assemble an ensemble from member files use :func:`load_member_files`.
        members: parallel members sharing the WST (6 published).
        input_shape: (H, W, 1) of both inputs; fixed, because the WST filter bank depends on it.
        mask_threshold, mask_mode, gap_threshold, scale_by_input: see :func:`build_cxrnet_member`.
        classes: 2 (index 0 = COVID-19 positive, 1 = negative); more classes build and train.
        classifier_activation: "softmax" or None (logits).
        name: model name.
        **member_kwargs: architecture arguments passed to each :func:`build_cxrnet_member` (``filters``, …).

    Input contract: ``[image, mask]``, both float32 (B, 300, 340, 1). ``image`` = (equalized 8-bit CXR − 124.0716)
    / 75.9749 (see :func:`cxrzoo.prepare_cxrnet_input`); ``mask`` = Module 1's V7 lung probability read back from
    8 bits, set to 0 where the equalized image is < 6 or > 225. :func:`build_cxrnet` does all of this in-graph.

    Returns:
        A ``keras.Model`` ``[image, mask]`` → (B, ``classes``). Softmax of the GAP of the *averaged* masked maps
        (not the mean of the members' probabilities). 122,802 parameters with 6 members.

    Example:
        >>> model = cxrzoo.build_cxrnet_classifier(weights="cxrnet_classifier.hfhs_ensemble6")
        >>> model.predict([X, M])                 # [[0.9387, 0.0613]] on the authors' sample
    """
    _check_classifier_args(members, input_shape, classifier_activation)
    _check_member_args(
        classes,
        mask_mode,
        member_kwargs.get("filters", 17),
        member_kwargs.get("conv_blocks", 2),
        member_kwargs.get("dilation_rates", (1, 2, 3)),
    )
    _check_modes(weights, gap_threshold, scale_by_input)
    image = keras.Input(shape=tuple(input_shape), name="image")
    mask = keras.Input(shape=tuple(input_shape), name="lung_mask")
    out = module2(
        image,
        mask,
        members=members,
        classes=classes,
        classifier_activation=classifier_activation,
        mask_threshold=mask_threshold,
        mask_mode=mask_mode,
        gap_threshold=gap_threshold,
        scale_by_input=scale_by_input,
        **member_kwargs,
    )
    model = keras.Model([image, mask], out["probabilities"], name=name)
    return load_weights(
        model,
        weights,
        arch=CLASSIFIER_ARCH,
        loader=_load_classifier_weights,
        members=members,
        input_shape=tuple(input_shape),
        mask_threshold=mask_threshold,
        mask_mode=mask_mode,
        classes=classes,
    )


# ------------------------------------------------------------------------------------------ the whole pipeline


@register_model(paper="cxrnet", task="classification", cam_layer="feature_map")
def build_cxrnet(
    *,
    weights: str | None = "cxrnet_classifier.hfhs_ensemble6",
    segmenter_weights: str | None = "res_cr_net.v7_lungs",
    members: int = 6,
    input_shape: Sequence[int] = (300, 340, 1),
    mask_threshold: float = 0.3,
    quantize_mask: bool = True,
    intensity_gate: tuple[float, float] = (6.0, 225.0),
    mean: float | None = None,
    std: float | None = None,
    classifier_activation: str | None = "softmax",
    name: str = "cxrnet",
    **module2_kwargs,
) -> keras.Model:
    """The end-to-end CXR-Net: Module 1 (frozen), the authors' mask and standardization, Module 2, one model.

    Reference: Gatti et al., CXR-Net, Fig. 5 and §2; the authors ran the steps as separate
    scripts with files in between (docs/models/cxrnet.md). In the graph here::

        image (0..255) ─ /255 ─ Module 1 ─ p_lung ─┐
              ├──────────────────────── gate ──────┴─ M = gate · round(255·p_lung)/255
              └─ (x − mean)/std ─ X ──────────── Module 2 [X, M] ─ probabilities, feature_map

    Args:
        weights: Module 2 weights (tag ``"cxrnet_classifier.hfhs_ensemble6"``, a path, or None).
        segmenter_weights: Module 1 weights (``"res_cr_net.v7_lungs"``, which the authors' pipeline used).
        members: Module 2 members (6).
        input_shape: (300, 340, 1): the published models' size.
        mask_threshold: Module 2's binary-mask threshold (0.3).
        quantize_mask: round the lung probability to 8 bits as the authors' PNG round trip did.
        intensity_gate: (low, high): the mask is 0 where the image is below ``low`` or above ``high``.
        mean, std: Module 2 standardization (default: the authors' training-set values,
            :data:`cxrzoo.preprocessing.CXRNET_MEAN` and ``CXRNET_STD``).
        classifier_activation: "softmax" or None (then ``probabilities`` holds logits).
        name: model name.
        **module2_kwargs: further :func:`build_cxrnet_classifier` arguments (``mask_mode``, ``classes``, …).

    Input contract: float32 (B, 300, 340, 1) with values 0..255: CXRs prepared by
    :func:`cxrzoo.prepare_cxrnet_input` (8-bit, 300×340, histogram-equalized).

    Returns:
        A ``keras.Model`` whose outputs are a dict: ``probabilities`` (B, 2) (index 0 = COVID-19 positive),
        ``logits`` (B, 2), ``feature_map`` (B, 75, 85, 2) (averaged masked maps, the Grad-CAM target),
        ``lung_mask`` (B, 300, 340, 1) (Module 1's lung probability) and ``mask`` (B, 300, 340, 1) (the gated
        8-bit mask Module 2 sees). Saves to ``.keras`` and exports as a SavedModel (``model.export(path)``).

    Example:
        >>> model = cxrzoo.build_cxrnet()
        >>> image = cxrzoo.prepare_cxrnet_input("cxr.png")
        >>> model.predict(image[None, ..., None].astype("float32"))["probabilities"]
    """
    mean = CXRNET_MEAN if mean is None else float(mean)
    std = CXRNET_STD if std is None else float(std)
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    low, high = intensity_gate
    classes = module2_kwargs.pop("classes", 2)
    mask_mode = module2_kwargs.pop("mask_mode", "binary")
    gap_threshold = module2_kwargs.get("gap_threshold")
    _check_classifier_args(members, input_shape, classifier_activation)
    _check_member_args(
        classes,
        mask_mode,
        module2_kwargs.get("filters", 17),
        module2_kwargs.get("conv_blocks", 2),
        module2_kwargs.get("dilation_rates", (1, 2, 3)),
    )
    _check_modes(weights, gap_threshold, module2_kwargs.get("scale_by_input", False))

    image = keras.Input(shape=tuple(input_shape), name="image")
    segmenter = build_res_cr_net(weights=segmenter_weights, input_shape=tuple(input_shape), name="module1")
    segmenter.trainable = False
    probabilities = segmenter(keras.layers.Rescaling(1.0 / 255.0, name="module1_scale")(image))
    lung = SelectChannel(0, name="lung_mask")(probabilities)
    mask = LungMaskGate(low, high, levels=255 if quantize_mask else None, name="mask")([image, lung])
    standardized = keras.layers.Normalization(mean=mean, variance=std * std, name="standardize")(image)
    out = module2(
        standardized,
        mask,
        members=members,
        classes=classes,
        classifier_activation=classifier_activation,
        mask_threshold=mask_threshold,
        mask_mode=mask_mode,
        **module2_kwargs,
    )
    outputs = {
        "probabilities": out["probabilities"],
        "logits": out["logits"],
        "feature_map": out["feature_map"],
        "lung_mask": lung,
        "mask": mask,
    }
    model = keras.Model(image, outputs, name=name)
    return load_weights(
        model,
        weights,
        arch=CLASSIFIER_ARCH,
        loader=_load_classifier_weights,
        members=members,
        input_shape=tuple(input_shape),
        mask_threshold=mask_threshold,
        mask_mode=mask_mode,
        classes=classes,
    )
