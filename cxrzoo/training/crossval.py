"""``cross_validate``: k-fold training in which no patient is ever in both a fold's training and validation set.

CXR-Net trained its six Module 2 members by 6-fold cross-validation and joined them into its ensemble; COVID-XNet
reports 5-fold results with "images from the same patient only present in a single set". The folds come from
:func:`cxrzoo.data.patient_kfold`, which assigns whole patients to folds, so patient-disjointness holds by
construction (and is checked again here before any training).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxrzoo.data.splits import patient_kfold
from cxrzoo.training.fit import TrainingResult, fit_classifier, fit_segmenter

if TYPE_CHECKING:
    import numpy.typing as npt
    import tensorflow as tf

__all__ = ["CrossValidationResult", "cross_validate"]


@dataclass
class CrossValidationResult:
    """Fold models and what they predict on the patients they never saw.

    Attributes:
        folds: ``(train_indices, validation_indices)`` per fold.
        models: the trained model of each fold (best validation weights).
        histories: each fold's ``{metric: [value per epoch]}``.
        results: each fold's full :class:`~cxrzoo.training.TrainingResult`.
        oof_predictions: (N, ...) predictions for every case by the fold model that did not train on it.
        fold_of_sample: (N,) the fold whose validation set holds each case.
    """

    folds: list[tuple[np.ndarray, np.ndarray]]
    models: list
    histories: list[dict]
    results: list[TrainingResult]
    oof_predictions: np.ndarray
    fold_of_sample: np.ndarray
    groups: np.ndarray | None = field(default=None, repr=False)


def _take(data: Sequence[Any], index: np.ndarray) -> tuple:
    """Rows ``index`` of every array in ``(x, y[, w])``; ``x`` may be a pair of arrays."""
    x, *rest = data
    x = tuple(np.asarray(a)[index] for a in x) if isinstance(x, (tuple, list)) else np.asarray(x)[index]
    return (x, *(np.asarray(a)[index] for a in rest))


def _n_cases(data: Sequence[Any]) -> int:
    x = data[0]
    return len(x[0]) if isinstance(x, (tuple, list)) else len(x)


def cross_validate(
    builder: Callable,
    data: Sequence[Any],
    n_splits: int = 6,
    groups: npt.ArrayLike | None = None,
    *,
    task: str = "classification",
    stratify: npt.ArrayLike | None = None,
    seed: int = 0,
    output_dir: str | os.PathLike | None = None,
    predict_batch_size: int = 32,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = 0,
    **fit_kwargs,
) -> CrossValidationResult:
    """Trains a fresh ``builder()`` model on each of ``n_splits`` patient-disjoint folds.

    Args:
        builder: zero-argument callable returning a new, untrained model (called once per fold, inside the
            strategy's scope; Keras is seeded with ``seed + fold`` first, so folds start from different,
            reproducible initializations).
        data: arrays ``(x, y)`` or ``(x, y, sample_weight)``, as :func:`~cxrzoo.training.fit_classifier` takes
            them (``x`` may be an ``(image, mask)`` pair).
        n_splits: folds (CXR-Net: 6; COVID-XNet: 5).
        groups: patient id per case. Every case of a patient lands in the same fold. None treats every case as
            its own patient: only right when each patient contributes one image.
        task: "classification" (:func:`fit_classifier`) or "segmentation" (:func:`fit_segmenter`).
        stratify: labels to balance across folds (default: the class labels ``y`` for classification, none for
            segmentation).
        seed: seeds the fold assignment (:func:`cxrzoo.data.patient_kfold`) and each fold's training.
        output_dir: if given, fold ``k`` writes its checkpoint and CSV history to ``output_dir/fold{k}``.
        predict_batch_size: batch size of the out-of-fold predictions.
        strategy: a ``tf.distribute`` strategy, used for every fold.
        verbose: passed to ``Model.fit``.
        **fit_kwargs: passed to the fit function (``recipe``, ``epochs``, ``batch_size``, ``augment``, …).

    Returns:
        A :class:`CrossValidationResult`.

    Example:
        >>> cv = cross_validate(lambda: cxrzoo.build_cxrnet_member(), (features, labels), n_splits=6,
        ...                     groups=patient_ids, epochs=30, augment=None)
        >>> cxrzoo.metrics.roc_auc(labels == 0, cv.oof_predictions[:, 0])
    """
    import keras

    if task not in ("classification", "segmentation"):
        raise ValueError(f"task must be 'classification' or 'segmentation', got {task!r}")
    if not callable(builder) or isinstance(builder, keras.Model):
        raise TypeError(
            "builder must be a zero-argument callable that returns a new model (not a model: each "
            "fold needs fresh weights)"
        )
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError("data must be a tuple (x, y) or (x, y, sample_weight) of arrays")
    n = _n_cases(data)
    if any(len(a) != n for a in data[1:]):
        raise ValueError("x, y (and sample_weight) must have one entry per case")
    if stratify is None:
        stratify = data[1] if task == "classification" else np.zeros(n, np.int64)
    group_array = None if groups is None else np.asarray(groups)
    folds = patient_kfold(stratify, group_array, n_splits=n_splits, seed=seed)
    if group_array is not None:
        for k, (train, val) in enumerate(folds):
            shared = np.intersect1d(group_array[train], group_array[val])
            if shared.size:
                raise AssertionError(f"fold {k}: patients {shared[:5]} are in both training and validation")

    fit = fit_classifier if task == "classification" else fit_segmenter
    fold_of_sample = np.full(n, -1, np.int64)
    models, histories, results, oof = [], [], [], None
    for k, (train, val) in enumerate(folds):
        keras.utils.set_random_seed(seed + k)
        folder = None if output_dir is None else Path(output_dir) / f"fold{k}"
        result = fit(
            builder,
            _take(data, train),
            _take(data, val),
            strategy=strategy,
            seed=seed + k,
            output_dir=folder,
            verbose=verbose,
            **fit_kwargs,
        )
        x_val = _take(data, val)[0]
        pred = np.asarray(
            result.model.predict(
                list(x_val) if isinstance(x_val, tuple) else x_val, batch_size=predict_batch_size, verbose=0
            )
        )
        if oof is None:
            oof = np.zeros((n, *pred.shape[1:]), pred.dtype)
        oof[val] = pred
        fold_of_sample[val] = k
        models.append(result.model)
        histories.append(result.history)
        results.append(result)
    return CrossValidationResult(
        folds=folds,
        models=models,
        histories=histories,
        results=results,
        oof_predictions=oof,
        fold_of_sample=fold_of_sample,
        groups=group_array,
    )
