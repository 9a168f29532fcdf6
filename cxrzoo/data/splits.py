"""Patient-disjoint, stratified cross-validation folds and 'balanced' class weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt


def _class_ids(labels: npt.ArrayLike) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2:  # one-hot or per-class scores
        return labels.argmax(axis=1)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D class ids or 2-D one-hot rows, got shape {labels.shape}")
    return labels


def patient_kfold(
    labels: npt.ArrayLike, groups: npt.ArrayLike | None = None, n_splits: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold cross-validation in which no patient appears in two folds.

    Every image of a patient (``groups`` value) goes to the same fold, so a model is never validated on a patient
    it was trained on (COVID-XNet's "images from the same patient were only present in a single set"). Patients
    are dealt out largest first (ties in a seeded random order); each goes to the fold where the classes' shares
    across folds stay most even (the mean over classes of the standard deviation of each class's fraction per fold),
    ties to the fold with fewest images.

    Args:
        labels: class per image (any hashable values) or one-hot rows.
        groups: patient id per image; None treats every image as its own patient (plain stratified k-fold).
        n_splits: number of folds, >= 2 and at most the number of patients.
        seed: seed of the tie-breaking order.

    Returns:
        ``n_splits`` pairs ``(train_indices, validation_indices)`` of sorted int arrays; every image is in exactly
        one validation set.

    Example::

        for train, val in patient_kfold(samples.labels, samples.groups, n_splits=5, seed=0): ...
    """
    classes, y = np.unique(_class_ids(labels), return_inverse=True)
    n = y.size
    if n == 0:
        raise ValueError("patient_kfold: no samples")
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"patient_kfold: groups must have one entry per label ({n}), got shape {groups.shape}")
    if int(n_splits) != n_splits or n_splits < 2:
        raise ValueError(f"patient_kfold: n_splits must be an int >= 2, got {n_splits}")
    n_splits = int(n_splits)
    group_ids, g = np.unique(groups, return_inverse=True)
    if group_ids.size < n_splits:
        raise ValueError(f"patient_kfold: {group_ids.size} patients cannot fill {n_splits} folds")

    counts = np.zeros((group_ids.size, classes.size), np.int64)
    np.add.at(counts, (g, y), 1)
    sizes = counts.sum(axis=1)
    order = np.random.default_rng(seed).permutation(group_ids.size)
    order = order[np.argsort(-sizes[order], kind="stable")]

    class_totals = counts.sum(axis=0).astype(np.float64)
    per_fold = np.zeros((n_splits, classes.size), np.int64)
    fold_of_group = np.empty(group_ids.size, np.int64)
    for group in order:
        best, best_key = 0, None
        for fold in range(n_splits):
            trial = per_fold.copy()
            trial[fold] += counts[group]
            spread = float(np.mean(np.std(trial / class_totals, axis=0)))
            key = (spread, int(per_fold[fold].sum()))
            if best_key is None or key < best_key:
                best, best_key = fold, key
        per_fold[best] += counts[group]
        fold_of_group[group] = best

    fold_of_sample = fold_of_group[g]
    folds = []
    for fold in range(n_splits):
        val = np.flatnonzero(fold_of_sample == fold)
        if val.size == 0:
            raise ValueError(f"patient_kfold: fold {fold} is empty; use fewer folds")
        folds.append((np.flatnonzero(fold_of_sample != fold), val))
    return folds


def class_weights(labels: npt.ArrayLike) -> dict[int, float]:
    """'Balanced' class weights ``n_samples / (n_classes * count_c)`` as a ``{class: weight}`` dict for Keras.

    Computed by scikit-learn's ``compute_class_weight("balanced", ...)``, which COVID-CXNet and COVID-XNet used
    (e.g. COVID-CXNet's 3-class counts 3674 / 3500 / 1326 give 0.7712 / 0.8095 / 2.1368).
    ``labels`` are non-negative integer class ids (or one-hot rows); classes that never occur get no entry.
    """
    y = _class_ids(labels)
    if y.size == 0:
        raise ValueError("class_weights: no labels")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("class_weights: labels must be non-negative integer class ids (or one-hot rows)")
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}
