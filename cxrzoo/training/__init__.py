"""Training the zoo's models as their papers did, on one device or many.

- :func:`fit_segmenter`, :func:`fit_classifier`: compile with a paper's recipe (optimizer, loss, metrics, batch
  size, epochs, early stopping, LR schedule, class weights, augmentation), train, keep the best weights, write a
  checkpoint and a CSV history. Recipes: :func:`list_training_recipes`, :func:`training_recipe`.
- :func:`cross_validate`: patient-disjoint k-fold training with out-of-fold predictions.
- :func:`ensemble`: fold models as parallel paths of one model, joined by feature-map (CXR-Net), logit or
  probability averaging.
- :func:`transfer_weights`, :func:`set_trainable`: carry published weights into a new head, freeze, unfreeze.
- :mod:`cxrzoo.training.distribute`: ``tf.distribute`` support (MirroredStrategy, MultiWorkerMirroredStrategy).
- :func:`custom_fit`: the loop the fit functions use where ``Model.fit`` cannot run (several workers).

See docs/training.md and docs/finetuning.md.
"""

from cxrzoo.training.crossval import CrossValidationResult, cross_validate
from cxrzoo.training.distribute import (
    build_in_scope,
    is_chief,
    num_replicas,
    shard_dataset,
    split_cpu,
    synchronized_batch_norm,
)
from cxrzoo.training.ensemble import ENSEMBLE_MODES, ensemble
from cxrzoo.training.finetune import TransferReport, set_trainable, transfer_weights
from cxrzoo.training.fit import TrainingResult, as_dataset, fit_classifier, fit_segmenter, prepare_labels
from cxrzoo.training.loop import custom_fit, with_class_weights
from cxrzoo.training.recipes import RECIPES, TrainingRecipe, list_training_recipes, training_recipe

__all__ = [
    "ENSEMBLE_MODES",
    "RECIPES",
    "CrossValidationResult",
    "TrainingRecipe",
    "TrainingResult",
    "TransferReport",
    "as_dataset",
    "build_in_scope",
    "cross_validate",
    "custom_fit",
    "ensemble",
    "fit_classifier",
    "fit_segmenter",
    "is_chief",
    "list_training_recipes",
    "num_replicas",
    "prepare_labels",
    "set_trainable",
    "shard_dataset",
    "split_cpu",
    "synchronized_batch_norm",
    "training_recipe",
    "transfer_weights",
    "with_class_weights",
]
