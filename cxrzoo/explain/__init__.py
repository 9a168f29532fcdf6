"""Where the models look: Grad-CAM, Grad-CAM++, Score-CAM and CAM for any model, and overlays.

CXR-Net's own high-resolution heat maps live with the paper: :func:`cxrzoo.models.cxrnet.cxrnet_heatmaps`.
"""

import importlib
import warnings

from cxrzoo.explain.cam import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, default_cam_layer
from cxrzoo.explain.overlay import overlay, save_overlay

__all__ = ["CAM", "GradCAM", "GradCAMPlusPlus", "ScoreCAM", "default_cam_layer", "overlay", "save_overlay"]

_MOVED = {"cxrnet_heatmaps": "cxrzoo.models.cxrnet", "cxrnet_figure": "cxrzoo.models.cxrnet"}


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(f"cxrzoo.explain.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
        value = getattr(importlib.import_module(_MOVED[name]), name)
        globals()[name] = value  # once: ``from ... import name`` looks a name up twice
        return value
    raise AttributeError(f"module 'cxrzoo.explain' has no attribute {name!r}")
