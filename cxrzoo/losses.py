"""The losses the papers trained with, as Keras 3 losses that serialize by name.

| loss | paper | used for |
|---|---|---|
| :class:`WeightedTanimotoLoss` (:func:`weighted_tanimoto`) | 000 CXR-Net | Module 1 lung segmentation (Res-CR-Net) |
| :class:`DiceLoss` (:func:`dice_coefficient`) | 000 CXR-Net (metric), 001 COVID-CXNet U-Net | segmentation |
| :class:`WeightedBinaryCrossentropy` | 002 screening baselines | class-weighted binary classification |
| :class:`LabelSmoothingCrossentropy` | 001 COVID-CXNet | binary or 3-class classification |

Metrics that are monitored during training live here too (:class:`TanimotoCoefficient`, :class:`DiceCoefficient`);
evaluation metrics on arrays live in :mod:`cxrzoo.metrics`.

**Segmentation label format.** ``y_true`` and ``y_pred`` are (B, H, W, C) with one channel per class, as Res-CR-Net
emits them (softmax over ``[lungs, non_lungs]``); ``y_true`` holds 0/1 (soft values in [0, 1] are accepted) and
``y_pred`` probabilities. A single-channel sigmoid output (B, H, W, 1) works the same way.

**Batch-global sums.** CXR-Net's Tanimoto and Dice are ratios of sums over the *whole batch tensor* (batch, pixels
and channels), not means of per-image ratios, and the contour weights are normalized over the whole batch as well.
So these losses return one scalar per batch and ignore ``reduction``. Under a ``tf.distribute`` strategy each
replica sees only its shard of the global batch; the sums are therefore all-reduced across replicas, which makes the
loss value and its gradients those of the single-device global batch (see :func:`replica_sum`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy.typing as npt
    import tensorflow as tf

    TensorLike: TypeAlias = tf.Tensor | npt.ArrayLike  # what keras.ops.convert_to_tensor accepts

__all__ = [
    "DiceCoefficient",
    "DiceLoss",
    "LabelSmoothingCrossentropy",
    "TanimotoCoefficient",
    "WeightedBinaryCrossentropy",
    "WeightedTanimotoLoss",
    "contour_weights",
    "contour_window",
    "dice_coefficient",
    "replica_sum",
    "tanimoto_coefficient",
    "weighted_tanimoto",
]

# CXR-Net's contour weighting (docs/models/cxrnet.md): border pixels are those whose k×k neighbourhood mean lies
# strictly between these bounds; they weigh 1 + BORDER_BOOST before rescaling and squaring.
BORDER_LOW, BORDER_HIGH, BORDER_BOOST = 0.005, 0.995, 2.0
SMOOTH = 1.0  # the authors' smoothing for the contour mode


def replica_sum(x: tf.Tensor) -> tf.Tensor:
    """Sum of ``x`` over the replicas of the current ``tf.distribute`` strategy (``x`` itself with one replica).

    Differentiable: the gradient of an all-reduced sum is the all-reduced sum of the gradients, so a loss built from
    replica sums gives every replica the global-batch value, and the replica gradients add up to the global one.
    """
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def _num_replicas() -> int:
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    return 1 if ctx is None else ctx.num_replicas_in_sync


def contour_window(height: int, width: int) -> int:
    """CXR-Net's average-pooling window for the contour weights: 11, 21, 31 or 41 by ``min(height, width)``."""
    side = min(int(height), int(width))
    for limit, window in ((150, 11), (300, 21), (600, 31)):
        if side <= limit:
            return window
    return 41


def _check_segmentation(y_true: tf.Tensor, y_pred: tf.Tensor | None = None) -> None:
    if len(y_true.shape) != 4:
        raise ValueError(f"segmentation labels must be (B, H, W, C), got shape {tuple(y_true.shape)}")
    if y_pred is not None and tuple(y_pred.shape)[1:] != tuple(y_true.shape)[1:]:
        raise ValueError(f"y_true {tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)} shapes differ")


def contour_weights(y_true: TensorLike, *, window: int | None = None) -> tf.Tensor:
    """CXR-Net's contour-aware weight map for ``y_true`` (B, H, W, C), same shape, mean of the unsquared map 1.

    Each class channel is average-pooled with a ``window``×``window`` box (stride 1, 'same' padding that averages
    only over pixels inside the image; the window is :func:`contour_window` of H and W unless given). Pixels whose
    pooled value lies strictly between 0.005 and 0.995 form the border band and weigh 3, the others 1; the map is
    rescaled so that its mean over the whole batch tensor is 1, and then squared (so border pixels weigh 9× more).
    Not a distance transform: there are no U-Net ``w0``/``sigma`` parameters. Under a strategy the mean is taken
    over the global batch.
    """
    y_true = ops.convert_to_tensor(y_true)
    _check_segmentation(y_true)
    if window is None:
        height, width = y_true.shape[1], y_true.shape[2]
        if height is None or width is None:
            raise ValueError("contour_weights needs a static height and width to choose its window; pass window=")
        window = contour_window(height, width)
    y_true = ops.cast(y_true, "float32")
    pooled = ops.average_pool(y_true, pool_size=int(window), strides=1, padding="same")
    border = ops.cast(ops.logical_and(pooled > BORDER_LOW, pooled < BORDER_HIGH), "float32")
    weights = 1.0 + BORDER_BOOST * border
    count = replica_sum(ops.cast(ops.size(weights), "float32"))
    weights = weights * (count / replica_sum(ops.sum(weights)))
    return ops.square(weights)


def _weights_with_samples(
    weights: tf.Tensor | None, sample_weight: TensorLike | None, y_true: tf.Tensor
) -> tf.Tensor | None:
    """Folds per-image ``sample_weight`` (B,) into the pixel weights (None means all ones)."""
    if sample_weight is None:
        return weights
    sample_weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1, 1, 1))
    base = ops.ones_like(y_true) if weights is None else weights
    return base * sample_weight


def tanimoto_coefficient(
    y_true: TensorLike,
    y_pred: TensorLike,
    weights: TensorLike | None = None,
    *,
    smooth: float = SMOOTH,
    complement: bool = True,
) -> tf.Tensor:
    """Tanimoto coefficient of CXR-Net (with its complement by default), one scalar over the whole batch.

    ``T = (Σ w·y·p + s) / (Σ w·(y² + p² − y·p) + s)``; with ``complement`` the same with ``y → 1−y, p → 1−p`` is
    averaged in. Sums run over batch, pixels and channels (and over replicas under a strategy). ``weights`` is None
    (all ones, the authors' ``tani_coeff``) or a map broadcastable to ``y_true``. 1 for a perfect prediction.
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    _check_segmentation(y_true, y_pred)
    w = ops.ones_like(y_true) if weights is None else ops.cast(weights, "float32")

    def ratio(y: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
        inter = replica_sum(ops.sum(w * y * p))
        union = replica_sum(ops.sum(w * (ops.square(y) + ops.square(p) - y * p)))
        return (inter + smooth) / (union + smooth)

    direct = ratio(y_true, y_pred)
    if not complement:
        return direct
    return 0.5 * (direct + ratio(1.0 - y_true, 1.0 - y_pred))


def weighted_tanimoto(
    y_true: TensorLike,
    y_pred: TensorLike,
    *,
    smooth: float = SMOOTH,
    window: int | None = None,
    sample_weight: TensorLike | None = None,
) -> tf.Tensor:
    """CXR-Net's ``weighted_tani_loss``: ``1 − T`` with contour weights (:func:`contour_weights`), a scalar."""
    weights = _weights_with_samples(contour_weights(y_true, window=window), sample_weight, y_true)
    return 1.0 - tanimoto_coefficient(y_true, y_pred, weights, smooth=smooth)


def dice_coefficient(
    y_true: TensorLike, y_pred: TensorLike, weights: TensorLike | None = None, *, smooth: float = SMOOTH
) -> tf.Tensor:
    """Soft Dice ``(2 Σ w·y·p + s) / (Σ w·y + Σ w·p + s)`` over the whole batch tensor (and replicas), a scalar.

    ``weights`` None gives the unweighted Dice CXR-Net reports; a weight map (e.g. :func:`contour_weights`) goes
    inside every sum. 1 for a perfect prediction; 1 as well when both masks are empty (thanks to ``smooth``).
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    _check_segmentation(y_true, y_pred)
    w = ops.ones_like(y_true) if weights is None else ops.cast(weights, "float32")
    inter = replica_sum(ops.sum(w * y_true * y_pred))
    total = replica_sum(ops.sum(w * y_true)) + replica_sum(ops.sum(w * y_pred))
    return (2.0 * inter + smooth) / (total + smooth)


class _GlobalBatchLoss(keras.losses.Loss):
    """``1 − coefficient`` over the global batch, optionally contour-weighted: ``reduction`` does not apply,
    ``sample_weight`` (B,) weighs each image's pixels inside the sums. Returns ``value / replicas`` because Keras
    sums replica gradients and leaves scalar losses unscaled; the value Keras logs (times replicas) and the summed
    gradients are then the global ones."""

    coefficient = None  # tanimoto_coefficient or dice_coefficient

    def __init__(
        self,
        *,
        weighting: str | None,
        smooth: float,
        window: int | None,
        name: str,
        dtype: str | keras.DTypePolicy | None = None,
    ):
        if weighting not in ("contour", None):
            raise ValueError(f"weighting must be 'contour' or None, got {weighting!r}")
        super().__init__(name=name, reduction="sum_over_batch_size", dtype=dtype)
        self.weighting = weighting
        self.smooth = float(smooth)
        self.window = None if window is None else int(window)

    def __call__(self, y_true: TensorLike, y_pred: TensorLike, sample_weight: TensorLike | None = None) -> tf.Tensor:
        with keras.name_scope(self.name):
            y_true = ops.convert_to_tensor(y_true, dtype="float32")
            y_pred = ops.convert_to_tensor(y_pred, dtype="float32")
            value = self.global_value(y_true, y_pred, sample_weight)
            return ops.cast(value / float(_num_replicas()), self.dtype)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return self.global_value(y_true, y_pred, None)

    def global_value(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: TensorLike | None) -> tf.Tensor:
        weights = contour_weights(y_true, window=self.window) if self.weighting == "contour" else None
        weights = _weights_with_samples(weights, sample_weight, y_true)
        return 1.0 - type(self).coefficient(y_true, y_pred, weights, smooth=self.smooth)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "smooth": self.smooth, "weighting": self.weighting, "window": self.window}


@keras.saving.register_keras_serializable(package="cxrzoo")
class WeightedTanimotoLoss(_GlobalBatchLoss):
    """CXR-Net's weighted Tanimoto loss with complement (``weighted_tani_loss``, docs/models/cxrnet.md).

    ``loss = 1 − (T_d + T_c) / 2`` where ``T_d = (Σ w·y·p + s) / (Σ w·(y² + p² − y·p) + s)``, ``T_c`` the same on
    the complements, ``w`` the squared contour weights of :func:`contour_weights` (``weighting="contour"``, as the
    authors trained) or 1 (``weighting=None``), and ``s = smooth`` = 1.

    Shapes: ``y_true`` and ``y_pred`` (B, H, W, C), one channel per class (Res-CR-Net: ``[lungs, non_lungs]``),
    labels 0/1, predictions probabilities (softmax or sigmoid). H and W must be static for the contour window.
    Reduction: none; the result is one scalar over the whole (global) batch. ``sample_weight`` (B,) scales each
    image's pixel weights. Range [0, 1]; 0 for a perfect prediction.

    Example:
        >>> model.compile(optimizer="adam", loss=cxrzoo.losses.WeightedTanimotoLoss(),
        ...               metrics=[cxrzoo.losses.TanimotoCoefficient()])
    """

    coefficient = staticmethod(tanimoto_coefficient)

    def __init__(
        self,
        *,
        weighting: str | None = "contour",
        smooth: float = SMOOTH,
        window: int | None = None,
        name: str = "weighted_tanimoto",
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(weighting=weighting, smooth=smooth, window=window, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="cxrzoo")
class DiceLoss(_GlobalBatchLoss):
    """Soft Dice loss ``1 − D`` with ``D`` of :func:`dice_coefficient`, optionally contour-weighted.

    Shapes: ``y_true``, ``y_pred`` (B, H, W, C) (labels 0/1, probabilities). ``weighting`` None (plain Dice) or
    ``"contour"`` (the weight map of :func:`contour_weights` inside every sum). Reduction: none, one scalar over the
    global batch; ``sample_weight`` (B,) scales each image's pixels. ``smooth`` 1 as in CXR-Net and COVID-CXNet's
    U-Net (which minimized ``−D``; ``1 − D`` has the same gradients).
    """

    coefficient = staticmethod(dice_coefficient)

    def __init__(
        self,
        *,
        weighting: str | None = None,
        smooth: float = SMOOTH,
        window: int | None = None,
        name: str = "dice_loss",
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(weighting=weighting, smooth=smooth, window=window, name=name, dtype=dtype)


def _class_weight_vector(class_weight: Mapping[int, float] | Sequence[float] | None) -> list[float] | None:
    if class_weight is None:
        return None
    if isinstance(class_weight, Mapping):
        keys = sorted(int(k) for k in class_weight)
        if keys != list(range(len(keys))):
            raise ValueError(f"class_weight keys must be 0..C-1, got {sorted(class_weight)}")
        values = [float(class_weight[k]) for k in keys]
    else:
        values = [float(v) for v in class_weight]
    if len(values) < 2 or any(not v > 0 for v in values):
        raise ValueError(f"class_weight needs at least two positive weights, got {values}")
    return values


class _Crossentropy(keras.losses.Loss):
    """Class-weighted, label-smoothed cross-entropy for a sigmoid (last axis 1) or a softmax (last axis C) head."""

    def __init__(
        self,
        *,
        class_weight: Mapping[int, float] | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.class_weight = _class_weight_vector(class_weight)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)
        if tuple(y_true.shape)[1:] != tuple(y_pred.shape)[1:]:
            raise ValueError(f"y_true {tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)} shapes differ")
        classes = y_pred.shape[-1]
        binary = classes == 1
        n_classes = 2 if binary else classes
        if self.class_weight is not None and len(self.class_weight) != n_classes:
            raise ValueError(f"class_weight has {len(self.class_weight)} entries for {n_classes} classes")
        eps = self.label_smoothing
        if binary:
            target = y_true * (1.0 - eps) + 0.5 * eps
            values = ops.mean(ops.binary_crossentropy(target, y_pred, from_logits=self.from_logits), axis=-1)
        else:
            target = y_true * (1.0 - eps) + eps / classes
            values = ops.categorical_crossentropy(target, y_pred, from_logits=self.from_logits)
        if self.class_weight is None:
            return values
        table = ops.convert_to_tensor(self.class_weight, dtype=values.dtype)
        if binary:
            label = ops.mean(ops.cast(y_true, values.dtype), axis=-1)
            weight = table[0] * (1.0 - label) + table[1] * label
        else:
            weight = ops.sum(ops.cast(y_true, values.dtype) * table, axis=-1)
        return values * weight

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_weight": self.class_weight,
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }


@keras.saving.register_keras_serializable(package="cxrzoo")
class WeightedBinaryCrossentropy(_Crossentropy):
    """Class-weighted binary cross-entropy of the seed-2 screening baselines (Loconte & Colavito).

    ``loss_i = −w_{y_i} [y_i log p_i + (1 − y_i) log(1 − p_i)]`` with ``class_weight = {0: w0, 1: w1}`` inversely
    proportional to the class frequencies of the training set (compute them with :func:`cxrzoo.data.class_weights`).
    ``from_logits=True`` uses the numerically stable logit form (for a head without sigmoid).

    Shapes: ``y_true`` (B,) or (B, 1) with labels 0/1; ``y_pred`` (B, 1) probabilities or logits. Reduction as
    ``reduction`` (default: mean over the batch, ``sum_over_batch_size``); ``sample_weight`` multiplies per sample.
    """

    def __init__(
        self,
        class_weight: Mapping[int, float] | Sequence[float] | None = None,
        *,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "weighted_binary_crossentropy",
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(
            class_weight=class_weight,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        if y_pred.shape[-1] != 1:
            raise ValueError(f"WeightedBinaryCrossentropy needs one output per sample (B, 1), got {y_pred.shape}")
        return super().call(y_true, y_pred)


@keras.saving.register_keras_serializable(package="cxrzoo")
class LabelSmoothingCrossentropy(_Crossentropy):
    """COVID-CXNet's label-smoothed cross-entropy (``label_smoothing=0.1``), optionally class-weighted.

    A sigmoid head (``y_pred`` (B, 1)) gets binary cross-entropy with targets ``y(1 − ε) + ε/2`` (Keras'
    ``BinaryCrossentropy(label_smoothing=ε)``); a softmax head (B, C) categorical cross-entropy with targets
    ``y(1 − ε) + ε/C`` (``CategoricalCrossentropy(label_smoothing=ε)``). COVID-CXNet used ε = 0.1 for both its
    binary and its 3-class models, with 'balanced' class weights (e.g. [0.7712, 0.8095, 2.1368] for normal, CAP,
    COVID): pass ``class_weight`` here or to ``fit``, not both.

    Shapes: ``y_true`` (B,) / (B, 1) labels 0/1 for binary, (B, C) one-hot for categorical. Reduction as
    ``reduction`` (default mean over the batch).
    """

    def __init__(
        self,
        label_smoothing: float = 0.1,
        *,
        class_weight: Mapping[int, float] | Sequence[float] | None = None,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "label_smoothing_crossentropy",
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(
            class_weight=class_weight,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )


class _PooledOverlap(keras.metrics.Metric):
    """Accumulates intersection/denominator sums over every batch of an epoch (and every replica): the result is
    the coefficient of the whole evaluated set, independent of how it was batched."""

    def __init__(
        self,
        *,
        smooth: float = SMOOTH,
        threshold: float | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.smooth = float(smooth)
        self.threshold = None if threshold is None else float(threshold)
        self.class_id = None if class_id is None else int(class_id)
        self.sums = [
            self.add_variable(shape=(), initializer="zeros", name=f"sum{i}", aggregation="sum")
            for i in range(self._n_sums)
        ]

    _n_sums = 2

    def _prepare(self, y_true: TensorLike, y_pred: TensorLike) -> tuple[tf.Tensor, tf.Tensor]:
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        if self.class_id is not None:
            y_true = y_true[..., self.class_id]
            y_pred = y_pred[..., self.class_id]
        if self.threshold is not None:
            y_pred = ops.cast(y_pred > self.threshold, "float32")
        return y_true, y_pred

    def update_state(self, y_true: TensorLike, y_pred: TensorLike, sample_weight: TensorLike | None = None) -> None:
        y_true, y_pred = self._prepare(y_true, y_pred)
        for var, value in zip(self.sums, self._batch_sums(y_true, y_pred)):
            var.assign_add(ops.cast(value, var.dtype))

    def reset_state(self) -> None:
        for var in self.sums:
            var.assign(ops.zeros_like(var))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth, "threshold": self.threshold, "class_id": self.class_id}


@keras.saving.register_keras_serializable(package="cxrzoo")
class TanimotoCoefficient(_PooledOverlap):
    """Unweighted Tanimoto coefficient with complement (CXR-Net's ``tani_coeff``), pooled over the evaluated set.

    Shapes: (B, H, W, C) labels 0/1 and probabilities. ``class_id`` restricts it to one channel; ``threshold``
    binarizes the predictions first. Keras 2 averaged the authors' per-batch values; pooling the sums instead makes
    the value independent of batch size and exact under a strategy (the sums are replica-aggregated).
    """

    _n_sums = 4

    def __init__(
        self,
        *,
        smooth: float = SMOOTH,
        threshold: float | None = None,
        class_id: int | None = None,
        name: str = "tanimoto",
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(smooth=smooth, threshold=threshold, class_id=class_id, name=name, dtype=dtype)

    @staticmethod
    def _batch_sums(y: tf.Tensor, p: tf.Tensor) -> tuple[tf.Tensor, ...]:
        def parts(a: tf.Tensor, b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return ops.sum(a * b), ops.sum(ops.square(a) + ops.square(b) - a * b)

        return (*parts(y, p), *parts(1.0 - y, 1.0 - p))

    def result(self) -> tf.Tensor:
        s = self.smooth
        inter_d, union_d, inter_c, union_c = self.sums
        return 0.5 * ((inter_d + s) / (union_d + s) + (inter_c + s) / (union_c + s))


@keras.saving.register_keras_serializable(package="cxrzoo")
class DiceCoefficient(_PooledOverlap):
    """Unweighted soft (or, with ``threshold``, hard) Dice coefficient pooled over the evaluated set.

    Shapes: (B, H, W, C) labels 0/1 and probabilities; ``class_id`` picks one channel (e.g. 0, "lungs", for
    Res-CR-Net). With ``threshold=0.5, class_id=0`` this is the pooled pixel Dice of the lung masks.
    """

    def __init__(
        self,
        *,
        smooth: float = SMOOTH,
        threshold: float | None = None,
        class_id: int | None = None,
        name: str = "dice",
        dtype: str | keras.DTypePolicy | None = None,
    ):
        super().__init__(smooth=smooth, threshold=threshold, class_id=class_id, name=name, dtype=dtype)

    @staticmethod
    def _batch_sums(y: tf.Tensor, p: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return ops.sum(y * p), ops.sum(y) + ops.sum(p)

    def result(self) -> tf.Tensor:
        inter, total = self.sums
        return (2.0 * inter + self.smooth) / (total + self.smooth)
