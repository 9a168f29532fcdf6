"""How COVID-CXNet trained its models: augmentation presets and training recipes, as data.

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
    dice_loss,
    register_training_recipe,
    segmentation_metrics,
    smoothed_crossentropy_loss,
)

# COVID-CXNet binary (hands_on notebook, docs/models/covid_cxnet.md §1.5).
register_augmentation(
    Augmentation(
        "covid_cxnet",
        "covid_cxnet",
        rotation=170.0,
        shift=(0.2, 0.2),
        zoom=(0.8, 1.5),
        horizontal_flip=0.5,
        vertical_flip=0.5,
        brightness=(0.5, 1.3),
        fill_mode="constant",
    )
)


# COVID-CXNet 3-class and hierarchical notebooks: the same with shifts of 0.1.
register_augmentation(
    Augmentation(
        "covid_cxnet_multiclass",
        "covid_cxnet",
        rotation=170.0,
        shift=(0.1, 0.1),
        zoom=(0.8, 1.5),
        horizontal_flip=0.5,
        vertical_flip=0.5,
        brightness=(0.5, 1.3),
        fill_mode="constant",
    )
)


# COVID-CXNet base model (main.py): rotation 90 and flips, Keras' default fill.
register_augmentation(
    Augmentation(
        "covid_cxnet_base", "covid_cxnet", rotation=90.0, horizontal_flip=0.5, vertical_flip=0.5, fill_mode="nearest"
    )
)


register_training_recipe(
    TrainingRecipe(
        "covid_cxnet_unet",
        "segmentation",
        "Adam",
        dict(learning_rate=2e-4, **ADAM),
        dice_loss,
        segmentation_metrics,
        batch_size=16,
        epochs=50,
        source="COVID-CXNet lung U-Net lineage (docs/models/covid_cxnet.md §1.4): loss -Dice with smoothing 1, "
        "Adam 2e-4, batch 16, ModelCheckpoint on the best val_loss",
        unstated=("epochs (50 chosen)",),
    )
)


register_training_recipe(
    TrainingRecipe(
        "covid_cxnet",
        "classification",
        "Adam",
        dict(learning_rate=1e-3, **ADAM),
        smoothed_crossentropy_loss,
        classification_metrics,
        batch_size=16,
        epochs=20,
        class_weight="balanced",
        augment="covid_cxnet",
        source="COVID-CXNet binary (docs/models/covid_cxnet.md §1.5): BinaryCrossentropy(label_smoothing 0.1), "
        "Adam 1e-3, batch 16, 20 epochs, 'balanced' class weights, best-val_loss checkpoint",
    )
)


register_training_recipe(
    TrainingRecipe(
        "covid_cxnet_multiclass",
        "classification",
        "Adam",
        dict(learning_rate=2e-4, **ADAM),
        smoothed_crossentropy_loss,
        classification_metrics,
        batch_size=16,
        epochs=30,
        class_weight="balanced",
        augment="covid_cxnet_multiclass",
        source="COVID-CXNet 3-class (docs/models/covid_cxnet.md §1.5): CategoricalCrossentropy(label_smoothing "
        "0.1), Adam 2e-4, batch 16, 30 epochs, 'balanced' class weights",
    )
)


register_training_recipe(
    TrainingRecipe(
        "covid_cxnet_base",
        "classification",
        "Adam",
        dict(learning_rate=1e-3, **ADAM),
        crossentropy_loss,
        classification_metrics,
        batch_size=32,
        epochs=150,
        early_stopping=dict(patience=10, min_delta=0.002),
        class_weight="balanced",
        augment="covid_cxnet_base",
        source="COVID-CXNet base CNN (docs/models/covid_cxnet.md §1.5): BCE, Adam 1e-3, batch 32, 150 epochs, "
        "EarlyStopping(val_loss, patience 10, min_delta 0.002), 'balanced' class weights",
    )
)
