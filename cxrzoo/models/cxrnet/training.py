"""How CXR-Net trained its models: augmentation presets and training recipes, as data.

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
    tanimoto_loss,
)

# CXR-Net Module 1: Keras ImageDataGenerator on images and both mask streams (docs/models/cxrnet.md §7).
register_augmentation(
    Augmentation(
        "cxrnet_module1",
        "cxrnet",
        rotation=90.0,
        shift=(0.1, 0.1),
        shear=15.0,
        zoom=(0.9, 1.1),
        horizontal_flip=0.5,
        vertical_flip=0.5,
        fill_mode="reflect",
    )
)


# CXR-Net Module 2: randomShiftScaleRotate (p 0.7) + flips, applied to X and M (docs/models/cxrnet.md §7).
register_augmentation(
    Augmentation(
        "cxrnet_module2",
        "cxrnet",
        rotation=15.0,
        shift=(0.1, 0.1),
        round_shift=True,
        zoom=(0.9, 1.1),
        isotropic_zoom=True,
        forward_scale=True,
        aspect=1.1,
        transform_probability=0.7,
        horizontal_flip=0.3,
        vertical_flip=0.2,
        flip_both_if_unchanged=0.2,
        fill_mode="mirror",
        center="corner",
    )
)


register_training_recipe(
    TrainingRecipe(
        "cxrnet_module1",
        "segmentation",
        "Adam",
        dict(learning_rate=1e-3, amsgrad=False, **ADAM),
        tanimoto_loss,
        segmentation_metrics,
        batch_size=12,
        epochs=100,
        early_stopping=dict(patience=200, min_delta=0.001),
        augment="cxrnet_module1",
        source="CXR-Net Module 1 (docs/models/cxrnet.md §1.3, §5, §7): Adam() defaults, weighted Tanimoto loss with "
        "contour weights, metric tani_coeff, EarlyStopping(val_loss, patience 200, min_delta 0.001), "
        "ModelCheckpoint(best val_loss, weights only); V7 model batch 12, 100 epochs (JMS: batch 8, 300)",
    )
)


register_training_recipe(
    TrainingRecipe(
        "cxrnet_module2",
        "classification",
        "Adam",
        dict(learning_rate=2e-3, amsgrad=True, **ADAM),
        crossentropy_loss,
        classification_metrics,
        batch_size=13,
        epochs=200,
        class_weight="balanced",
        augment="cxrnet_module2",
        source="CXR-Net Module 2 (docs/models/cxrnet.md §5, §7): categorical cross-entropy with per-image class "
        "weights, Adam(lr 0.002, amsgrad), batch 13, 200 epochs per fold, 6 folds, best-val_loss "
        "checkpoint",
    )
)
