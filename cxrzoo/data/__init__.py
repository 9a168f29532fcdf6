"""Data: readers, the ``tf.data`` pipeline, each paper's augmentation, and patient-disjoint splits.

See docs/data.md. Example::

    from cxrzoo.data import read_image_folder, make_dataset, patient_kfold
    samples = read_image_folder("v7_covid_lungs/train", masks=("lungs",))
    ds = make_dataset(samples.images, samples.masks, recipe="cxrnet", augment="cxrnet_module1",
                      batch_size=8, seed=1)
"""

from cxrzoo.data.augment import PRESETS, Augmentation, augmentation, list_augmentations
from cxrzoo.data.pipeline import build_pipeline, make_dataset
from cxrzoo.data.readers import (
    Samples,
    cxrnet_h5_dataset,
    read_class_folders,
    read_covid_qu_ex,
    read_csv,
    read_cxrnet_h5,
    read_image_folder,
    write_cxrnet_h5,
)
from cxrzoo.data.splits import class_weights, patient_kfold

__all__ = [
    "PRESETS",
    "Augmentation",
    "Samples",
    "augmentation",
    "build_pipeline",
    "class_weights",
    "cxrnet_h5_dataset",
    "list_augmentations",
    "make_dataset",
    "patient_kfold",
    "read_class_folders",
    "read_covid_qu_ex",
    "read_csv",
    "read_cxrnet_h5",
    "read_image_folder",
    "write_cxrnet_h5",
]
