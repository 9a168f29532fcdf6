"""How COVID-XNet trained its models: augmentation presets and training recipes, as data.

Each value says where it comes from (``source``) and what the paper leaves open (``unstated``); docs/training.md and
docs/data.md list them all.
"""

from __future__ import annotations

from cxrzoo.data.augment import Augmentation, register_augmentation
from cxrzoo.training.recipes import (
    TrainingRecipe,
    classification_metrics,
    crossentropy_loss,
    register_training_recipe,
)

# COVID-XNet §2.2.3: rotation 15°, shifts 20%, "shear 20%" (Keras shear_range=0.2, i.e. 0.2 degrees), zoom 20%,
# horizontal flips; the fill mode is not stated (Keras' default "nearest").
register_augmentation(
    Augmentation(
        "covid_xnet",
        "covid_xnet",
        rotation=15.0,
        shift=(0.2, 0.2),
        shear=0.2,
        zoom=(0.8, 1.2),
        horizontal_flip=0.5,
        fill_mode="nearest",
    )
)


register_training_recipe(
    TrainingRecipe(
        "covid_xnet",
        "classification",
        "Adadelta",
        dict(learning_rate=1.0, rho=0.95, epsilon=1e-7),
        crossentropy_loss,
        classification_metrics,
        batch_size=32,
        epochs=100,
        class_weight="balanced",
        augment="covid_xnet",
        source="COVID-XNet §2.2.3: Adadelta, batch 32, Keras class_weight, stratified patient-disjoint 5-fold CV",
        unstated=(
            "learning rate (1.0: Adadelta as published by Zeiler and standalone Keras' default; tf.keras "
            "defaults to 0.001)",
            "epochs (100 chosen)",
            "loss (categorical cross-entropy for the softmax head)",
        ),
    )
)
