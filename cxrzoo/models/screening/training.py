"""How the screening baselines trained its models: augmentation presets and training recipes, as data.

Each value says where it comes from (``source``) and what the paper leaves open (``unstated``); docs/training.md and
docs/data.md list them all.
"""

from __future__ import annotations

from cxrzoo.data.augment import Augmentation, register_augmentation
from cxrzoo.training.recipes import (
    ADAM,
    TrainingRecipe,
    classification_metrics,
    register_training_recipe,
    weighted_bce_loss,
)

# The screening baselines' paper §V.A: scale U(0.9, 1.1), translation U(-0.1, 0.1) of each side, rotation U(-10, 10)°;
# torchvision-style
# whole-pixel translations and zero fill (the paper states neither).
register_augmentation(
    Augmentation(
        "screening_baselines",
        "screening",
        rotation=10.0,
        shift=(0.1, 0.1),
        round_shift=True,
        zoom=(0.9, 1.1),
        isotropic_zoom=True,
        forward_scale=True,
        fill_mode="constant",
    )
)


register_training_recipe(
    TrainingRecipe(
        "screening",
        "classification",
        "Adam",
        dict(learning_rate=1e-3, **ADAM),
        weighted_bce_loss,
        classification_metrics,
        batch_size=32,
        epochs=100,
        early_stopping=dict(patience=20, min_delta=0.0),
        class_weight="balanced",
        class_weight_in_loss=True,
        augment="screening_baselines",
        source="Loconte & Colavito: Adam defaults (lr 1e-4 for AlexNet and VGG16), weighted BCE with "
        "weights inversely proportional to the class frequencies, batch 32, at most 100 epochs, stop "
        "after 20 without val-loss improvement",
    )
)
