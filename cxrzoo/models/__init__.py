"""Model builders, one module per seed paper (importing this package registers them all).

| module | paper |
|---|---|
| :mod:`cxrzoo.models.res_cr_net` | 000 CXR-Net Module 1 (Res-CR-Net lung segmenter) |
| :mod:`cxrzoo.models.cxrnet` | 000 CXR-Net Module 2 (WST + cross-attention ensemble) and the end-to-end CXR-Net |
| :mod:`cxrzoo.models.covid_cxnet` | 001 COVID-CXNet (classifier, base model, lung U-Net, hierarchical classifier) |
| :mod:`cxrzoo.models.covid_xnet` | 004 COVID-XNet (custom CNN with a CAM head) |
| :mod:`cxrzoo.models.bone_suppression` | 004 COVID-XNet preprocessing: the bone-suppression autoencoder |
| :mod:`cxrzoo.models.screening` | 002 screening baselines (AlexNet, VGG16, ResNet50, DenseNet121, InceptionV3) |
| :mod:`cxrzoo.models.segmentation` | 003 Tahir thesis: U-Net / U-Net++ / FPN over five encoders (:mod:`~cxrzoo.models.encoders`) |
| :mod:`cxrzoo.models.infection_detector` | 003 Tahir thesis: classifiers, SqueezeNet, the infection detector |

:mod:`cxrzoo.models.inference` makes inference copies of any of them: :func:`fold_batch_norm` merges each
BatchNormalization into the convolution before it; :func:`polyphase_dilated` runs dilated convolutions undilated on
polyphase components.
"""

from __future__ import annotations

from cxrzoo._compat import check_backend

check_backend()

from cxrzoo.models import (  # noqa: E402
    bone_suppression,
    covid_cxnet,
    covid_xnet,
    cxrnet,
    infection_detector,
    res_cr_net,
    screening,
    segmentation,
)
from cxrzoo.models.inference import fold_batch_norm, polyphase_dilated  # noqa: E402,F401


def load_model(path, *, compile: bool = False, safe_mode: bool = True):
    """Loads a ``.keras`` file saved from a cxrzoo model (registers cxrzoo's custom layers first).

    ``safe_mode=True`` (the default) refuses arbitrary Python code (``Lambda`` layers) in the file; every cxrzoo
    model round-trips with it.
    """
    import keras

    import cxrzoo.layers  # noqa: F401  (registration of custom layers)

    return keras.models.load_model(path, compile=compile, safe_mode=safe_mode)
