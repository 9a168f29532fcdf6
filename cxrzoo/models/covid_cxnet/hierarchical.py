"""COVID-CXNet's two-level (hierarchical) classifier: normal vs pneumonia, then COVID-19 vs CAP.

Reference: Haghanifar et al., COVID-CXNet, §3 (hierarchical classification); docs/models/covid_cxnet.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from cxrzoo.models.covid_cxnet.models import CLASS_NAMES_3, build_covid_cxnet
from cxrzoo.training import fit_classifier

if TYPE_CHECKING:
    import numpy.typing as npt
    import tensorflow as tf

    from cxrzoo.training import TrainingResult


@keras.saving.register_keras_serializable(package="cxrzoo")
class HierarchicalProbabilities(keras.layers.Layer):
    """Combines P(pneumonia) = p₁ and P(COVID-19 | pneumonia) = p₂ into [P(normal), P(CAP), P(COVID-19)]."""

    def call(self, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
        p1, p2 = inputs
        return ops.concatenate([1.0 - p1, p1 * (1.0 - p2), p1 * p2], axis=-1)

    def compute_output_shape(self, input_shapes: Sequence[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        return (*tuple(input_shapes[0])[:-1], 3)


def _as_class_labels(y: npt.ArrayLike) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 3:
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if y.size and (not np.all(np.isin(y, (0, 1, 2)))):
        raise ValueError(f"labels must be 0 (normal), 1 (CAP) or 2 (COVID-19); got values {np.unique(y)[:8]}")
    return y.astype(np.int64)


class HierarchicalClassifier:
    """COVID-CXNet's two-level classifier: level 1 normal vs pneumonia, level 2 COVID-19 vs CAP.

    Reference: Haghanifar et al., COVID-CXNet, §5.3 and Table 5 (accuracy 87.21%, f-scores 0.92
    for COVID-19 and 0.85 for CAP); the authors' ``hierarchical_covid_cxnet`` notebook.

    Both levels are binary COVID-CXNets (by default built with :func:`build_covid_cxnet`, ``classes=1``). Labels
    are the authors' three classes: 0 normal, 1 CAP (community-acquired pneumonia), 2 COVID-19. :attr:`model` is a
    single Keras model giving the combined probabilities ``[1 − p₁, p₁(1 − p₂), p₁p₂]`` (rows sum to 1); it
    shares its layers with :attr:`level1` and :attr:`level2`, so training a level updates it.

    Args:
        level1, level2: binary Keras models (sigmoid, one output) on the same input; built when None.
        level2_on: which samples train level 2: ``"pneumonia"`` (CAP vs COVID-19 only, as the paper describes
            it) or ``"all"`` (COVID-19 vs everything else, normals included, as the authors' notebook actually
            relabelled the data).
        **builder_kwargs: passed to :func:`build_covid_cxnet` for the levels that are built (e.g.
            ``input_shape``, ``backbone_weights``).

    Example:
        >>> clf = cxrzoo.HierarchicalClassifier(input_shape=(320, 320, 3))
        >>> clf.fit(x_train, y_train, epochs=20)          # y: 0 normal, 1 CAP, 2 COVID-19
        >>> probabilities = clf.predict(x_test)             # (N, 3)
    """

    labels = CLASS_NAMES_3
    LEVEL2_ON = ("pneumonia", "all")

    def __init__(
        self,
        level1: keras.Model | None = None,
        level2: keras.Model | None = None,
        *,
        level2_on: str = "pneumonia",
        **builder_kwargs,
    ):
        if level2_on not in self.LEVEL2_ON:
            raise ValueError(f"level2_on must be one of {self.LEVEL2_ON}, got {level2_on!r}")
        self.level2_on = level2_on
        builder_kwargs = {"classes": 1, **builder_kwargs}
        self.level1 = level1 if level1 is not None else build_covid_cxnet(name="covid_cxnet_level1", **builder_kwargs)
        self.level2 = level2 if level2 is not None else build_covid_cxnet(name="covid_cxnet_level2", **builder_kwargs)
        for tag, level in (("level1", self.level1), ("level2", self.level2)):
            if tuple(level.output_shape) != (None, 1):
                raise ValueError(f"{tag} must output one probability per image, got shape {level.output_shape}")
        if tuple(self.level1.input_shape) != tuple(self.level2.input_shape):
            raise ValueError(
                f"the levels take different inputs: {self.level1.input_shape} vs {self.level2.input_shape}"
            )
        inputs = keras.Input(shape=tuple(self.level1.input_shape[1:]), name="image")
        combined = HierarchicalProbabilities(name="probabilities")([self.level1(inputs), self.level2(inputs)])
        self.model = keras.Model(inputs, combined, name="covid_cxnet_hierarchical")

    def level_targets(self, y: npt.ArrayLike, level: int) -> tuple[np.ndarray, np.ndarray]:
        """(sample mask, binary labels) for training ``level`` (1 or 2) from 3-class labels ``y``."""
        y = _as_class_labels(y)
        if level == 1:
            return np.ones(y.shape, bool), (y != 0).astype(np.float32)
        if level == 2:
            keep = y != 0 if self.level2_on == "pneumonia" else np.ones(y.shape, bool)
            return keep, (y[keep] == 2).astype(np.float32)
        raise ValueError(f"level must be 1 or 2, got {level!r}")

    def fit(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        validation_data: tuple | None = None,
        trainer: Callable | None = None,
        **fit_kwargs,
    ) -> dict[str, Any]:
        """Trains level 1, then level 2, each on its own binary targets; returns ``{"level1": ..., "level2": ...}``.

        Args:
            x: images (N, H, W, C) as a NumPy array. y: labels (N,) in {0, 1, 2} or one-hot (N, 3).
            validation_data: optional ``(x_val, y_val)`` with 3-class labels; relabelled per level.
            trainer: ``trainer(model, x, y, validation_data=..., **fit_kwargs) -> result``; default:
                :func:`cxrzoo.training.fit_classifier` with the authors' hierarchical setting (Adam 1e-4, binary
                cross-entropy with label smoothing 0.1, batch 16, 20 epochs, no class weights, the multiclass
                augmentation), returning its ``TrainingResult``.
            **fit_kwargs: passed to the trainer (for the default: any ``fit_classifier`` argument, e.g.
                ``epochs``, ``batch_size``); an ``output_dir`` gets a ``level1`` / ``level2`` subfolder.
        """
        x = np.asarray(x)
        histories = {}
        for level, model in ((1, self.level1), (2, self.level2)):
            keep, targets = self.level_targets(y, level)
            if targets.size == 0:
                raise ValueError(f"no training samples for level {level}")
            val = None
            if validation_data is not None:
                x_val, y_val = validation_data
                vkeep, vtargets = self.level_targets(y_val, level)
                val = (np.asarray(x_val)[vkeep], vtargets)
            options = dict(fit_kwargs)
            if options.get("output_dir") is not None:  # one folder per level, so checkpoints do not collide
                options["output_dir"] = Path(options["output_dir"]) / f"level{level}"
            histories[f"level{level}"] = (trainer or _authors_trainer)(
                model, x[keep], targets, validation_data=val, **options
            )
        return histories

    def predict(self, x: npt.ArrayLike, **predict_kwargs) -> np.ndarray:
        """Combined probabilities (N, 3) in the order :attr:`labels`."""
        return self.model.predict(x, **{"verbose": 0, **predict_kwargs})


def _authors_trainer(
    model: keras.Model, x: np.ndarray, y: np.ndarray, *, validation_data: tuple | None = None, **fit_kwargs
) -> TrainingResult:
    """The hierarchical notebook's setting through :func:`cxrzoo.training.fit_classifier`: Adam 1e-4, binary
    cross-entropy with label smoothing 0.1, batch 16, 20 epochs, no class weights, the multiclass augmentation."""
    options = {
        "recipe": "covid_cxnet",
        "learning_rate": 1e-4,
        "class_weight": None,
        "augment": "covid_cxnet_multiclass",
        "batch_size": 16,
        "epochs": 20,
        **fit_kwargs,
    }
    return fit_classifier(model, (x, y), validation_data, **options)
