"""Where the models look: Grad-CAM, Grad-CAM++, Score-CAM, CAM and CXR-Net's high-resolution heat maps."""

from cxrzoo.explain.cam import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, default_cam_layer
from cxrzoo.explain.cxrnet import cxrnet_figure, cxrnet_heatmaps
from cxrzoo.explain.overlay import overlay, save_overlay

__all__ = [
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "cxrnet_figure",
    "cxrnet_heatmaps",
    "default_cam_layer",
    "overlay",
    "save_overlay",
]
