"""Heat maps over radiographs: an RGB blend for arrays, and PNG figures for reports.

>>> from cxrzoo.explain import GradCAM, overlay, save_overlay
>>> maps = GradCAM()(model, x)
>>> rgb = overlay(image, maps[0])                                   # (H, W, 3) uint8
>>> save_overlay("gradcam.png", image, {"Grad-CAM": maps[0]}, title="p(COVID-19) = 0.93")
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cxrzoo.fileio import atomic_write

__all__ = ["overlay", "save_overlay"]


def _gray_rgb(image) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) image → float (H, W, 3) in [0, 1]."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3 or min(img.shape[:2]) < 1:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {np.shape(image)}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    img = img.astype(np.float32)
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or infinite values")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:  # any other range (e.g. standardized input) is shown min-max scaled
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img


def _heatmap(heatmap, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h = np.asarray(heatmap, dtype=np.float32)
    if h.ndim == 3 and h.shape[-1] == 1:
        h = h[..., 0]
    if h.ndim != 2:
        raise ValueError(f"heatmap must be (H, W), got shape {np.shape(heatmap)}")
    if not np.all(np.isfinite(h)) or h.min() < 0.0 or h.max() > 1.0:
        raise ValueError("heatmap values must be finite and in [0, 1] (the CAM methods return such maps)")
    if h.shape != tuple(size):
        h = cv2.resize(h, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(h, 0.0, 1.0)


def overlay(
    image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.4, colormap: str = "jet", threshold: float = 0.0
) -> np.ndarray:
    """Blends a [0, 1] heat map (resized to the image if needed) over a radiograph; returns (H, W, 3) uint8.

    Args:
        image: (H, W), (H, W, 1) or (H, W, 3); uint8, or float (shown as is in [0, 1], else min-max scaled).
        heatmap: (H, W) in [0, 1], e.g. one map of :class:`cxrzoo.explain.GradCAM`.
        alpha: weight of the coloured map where it is shown (0 = image only).
        colormap: a Matplotlib colormap name.
        threshold: map values below it are not coloured (CheXNet-Keras hid values < 0.2).
    """
    from matplotlib import colormaps

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base = _gray_rgb(image)
    h = _heatmap(heatmap, base.shape[:2])
    colours = colormaps[colormap](h)[..., :3].astype(np.float32)
    weight = (alpha * (h >= threshold))[..., None] if threshold > 0 else alpha
    blended = (1.0 - weight) * base + weight * colours
    return np.clip(np.floor(blended * 255.0 + 0.5), 0, 255).astype(np.uint8)


def save_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    heatmaps: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray,
    *,
    title: str | None = None,
    alpha: float = 0.4,
    colormap: str = "jet",
    threshold: float = 0.0,
    dpi: int = 100,
) -> Path:
    """Writes a PNG figure: the image, then one overlay panel per heat map, with a shared colour bar.

    ``heatmaps`` is one (H, W) map, a sequence of them, or a mapping panel title → map. The file is written to
    a temporary name and renamed, so a failure never leaves a partial PNG. Returns the path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if isinstance(heatmaps, Mapping):
        panels = list(heatmaps.items())
    elif isinstance(heatmaps, np.ndarray) and heatmaps.ndim == 2:
        panels = [("heat map", heatmaps)]
    else:
        panels = [(f"heat map {i + 1}", h) for i, h in enumerate(heatmaps)]
    if not panels:
        raise ValueError("save_overlay needs at least one heat map")
    base = _gray_rgb(image)
    blends = [(name, overlay(base, h, alpha=alpha, colormap=colormap, threshold=threshold)) for name, h in panels]

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_overlay writes PNG files; got {path.name!r}")
    fig = Figure(figsize=(3.2 * (len(blends) + 1) + 0.6, 3.6), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(blends) + 1)
    axes[0].imshow(base)
    axes[0].set_title("image")
    for ax, (name, rgb) in zip(axes[1:], blends):
        ax.imshow(rgb)
        ax.set_title(name)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormap), ax=list(axes), fraction=0.02, pad=0.01)
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # titles in scripts DejaVu Sans lacks warn once per glyph at drawing time; the figure is still written
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path
