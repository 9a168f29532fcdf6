"""How the segmentation-driven infection detector trained its models: augmentation presets and training
recipes, as data.

Each value says where it comes from (``source``) and what the paper leaves open (``unstated``); docs/training.md and
docs/data.md list them all.
"""

from __future__ import annotations

from cxrzoo.data.augment import Augmentation, register_augmentation
from cxrzoo.training.recipes import (
    ADAM,
    TrainingRecipe,
    classification_metrics,
    crossentropy_loss,
    register_training_recipe,
    segmentation_metrics,
)

# Thesis study I: rotations of 5, 10, 20 and 25 degrees (either sign here) and shifts within ±10%.
register_augmentation(
    Augmentation(
        "infection_detector",
        "infection_detector",
        rotation_choices=(-25.0, -20.0, -10.0, -5.0, 5.0, 10.0, 20.0, 25.0),
        shift=(0.1, 0.1),
        fill_mode="constant",
    ),
    aliases=("tahir",),
)


register_training_recipe(
    TrainingRecipe(
        "infection_detector_segmentation",
        "segmentation",
        "Adam",
        dict(learning_rate=1e-4, **ADAM),
        crossentropy_loss,
        segmentation_metrics,
        batch_size=4,
        epochs=40,
        early_stopping=dict(patience=8, min_delta=0.0),
        reduce_lr=dict(factor=0.2, patience=3),
        augment="infection_detector",
        source="Tahir thesis §3.2.2.1 and §4.1: cross-entropy, Adam 1e-4 (β 0.9/0.999), LR ÷5 after 3 epochs "
        "without val-loss improvement, early stopping after 8, batch 4, 40 epochs",
    )
)


register_training_recipe(
    TrainingRecipe(
        "infection_detector_classifier",
        "classification",
        "Adam",
        dict(learning_rate=1e-4, **ADAM),
        crossentropy_loss,
        classification_metrics,
        batch_size=4,
        epochs=40,
        early_stopping=dict(patience=8, min_delta=0.0),
        reduce_lr=dict(factor=0.2, patience=3),
        augment="infection_detector",
        source="Tahir thesis §3.2.3.1 and §4.1: cross-entropy, Adam 1e-4, LR ÷5 after 3 epochs without "
        "improvement, early stopping after 8, batch 4, 40 epochs",
    )
)
