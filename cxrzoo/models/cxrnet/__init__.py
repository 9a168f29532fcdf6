"""CXR-Net (Gatti et al.): Module 1, the Res-CR-Net lung segmenter; Module 2, the wavelet-scattering +
cross-attention + residual ensemble of six members; the end-to-end model; the high-resolution Grad-CAM maps.

| module | what |
|---|---|
| :mod:`~cxrzoo.models.cxrnet.res_cr_net` | Module 1 (Res-CR-Net) and its Keras 2 weight names |
| :mod:`~cxrzoo.models.cxrnet.classifier` | Module 2 members, the ensemble, the end-to-end :func:`build_cxrnet`, the ensemble file reader |
| :mod:`~cxrzoo.models.cxrnet.layers` | the paper's layers (axis attention, lung-mask gate, …) |
| :mod:`~cxrzoo.models.cxrnet.preprocessing` | :func:`prepare_cxrnet_input` and the recipe ``"cxrnet"`` |
| :mod:`~cxrzoo.models.cxrnet.heatmaps` | :func:`cxrnet_heatmaps` and the authors' figure |
| :mod:`~cxrzoo.models.cxrnet.training` | augmentation presets and training recipes of both modules |
| :mod:`~cxrzoo.models.cxrnet.specs` | the published models' specs |

Model card: docs/models/cxrnet.md and docs/models/res_cr_net.md.
"""

from cxrzoo.catalog import register_paper
from cxrzoo.models.cxrnet import (
    specs,  # noqa: F401  (registers the specs)
    training,  # noqa: F401  (registers presets and recipes)
)
from cxrzoo.models.cxrnet.classifier import (
    build_cxrnet,
    build_cxrnet_classifier,
    build_cxrnet_member,
    load_member_files,
    member_legacy_names,
    read_ensemble_h5,
)
from cxrzoo.models.cxrnet.heatmaps import cxrnet_figure, cxrnet_heatmaps, cxrnet_heatmaps_at_size, cxrnet_scores
from cxrzoo.models.cxrnet.preprocessing import CXRNET_MEAN, CXRNET_SIZE, CXRNET_STD, cxrnet_recipe, prepare_cxrnet_input
from cxrzoo.models.cxrnet.res_cr_net import build_res_cr_net, legacy_layer_names

PAPER = register_paper(
    "cxrnet",
    "CXR-Net",
    "Gatti et al., CXR-Net: a multitask deep learning network for explainable and accurate diagnosis of "
    "COVID-19 pneumonia from chest X-ray images",
    "models/cxrnet.md",
)

__all__ = [
    "CXRNET_MEAN",
    "CXRNET_SIZE",
    "CXRNET_STD",
    "build_cxrnet",
    "build_cxrnet_classifier",
    "build_cxrnet_member",
    "build_res_cr_net",
    "cxrnet_figure",
    "cxrnet_heatmaps",
    "cxrnet_heatmaps_at_size",
    "cxrnet_recipe",
    "cxrnet_scores",
    "legacy_layer_names",
    "load_member_files",
    "member_legacy_names",
    "prepare_cxrnet_input",
    "read_ensemble_h5",
]
