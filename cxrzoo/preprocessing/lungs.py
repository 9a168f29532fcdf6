"""COVID-CXNet's lung ROI extraction: U-Net lung map → dilation → bounding-box crop (→ resize).

Reference: Haghanifar et al., COVID-CXNet, §3.2 "Segmentation procedure" and Fig. 4
(AHE → U-Net → dilation → crop & resize). The details below are those of the authors' notebooks
(docs/models/covid_cxnet.md), which the paper does not spell out:

1. local histogram equalization with a disk of radius 40 on the 8-bit 320×320 image;
2. the U-Net sees those **unscaled 0..255 values** and returns a sigmoid map, which is **not thresholded**;
3. the map is dilated as floats with a 5×5 kernel of ones, 3 iterations;
4. the box spans the rows and columns where the dilated map is **exactly 1.0** (so it relies on saturated sigmoid
   outputs), and the crop is ``img[ymin - margin : ymax + margin, xmin - margin : xmax + margin]``: the end index is
   exclusive, so with margin 0 the last row and column of the box are dropped (kept here, for parity);
5. the crop is resized back to 320×320 with bicubic interpolation.

Steps 1–2 are :func:`covid_cxnet_lung_mask`, steps 3–5 :func:`crop_to_lungs`. Unlike the authors' code, an empty
map does not crash and a margin never wraps around the image edge (see ``on_empty`` and the clamping rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from cxrzoo.preprocessing.geometry import resize

if TYPE_CHECKING:
    import numpy.typing as npt

ON_EMPTY = ("full", "raise")


def _as_float_mask(mask: npt.ArrayLike, image_hw: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W) or (H, W, 1), got shape {mask.shape}")
    if mask.shape != tuple(image_hw):
        raise ValueError(f"mask shape {mask.shape} does not match the image's {tuple(image_hw)}")
    if mask.dtype == bool or np.issubdtype(mask.dtype, np.integer):
        # Binary masks (0/1, 0/255, bool): every non-zero pixel is a certain lung pixel.
        return (mask != 0).astype(np.float32)
    if not np.issubdtype(mask.dtype, np.floating):
        raise TypeError(f"mask must be bool, integer or float, got dtype {mask.dtype}")
    if not np.all(np.isfinite(mask)):
        raise ValueError("mask contains NaN or infinite values")
    if mask.size and (mask.min() < 0.0 or mask.max() > 1.0):
        raise ValueError(f"a float mask must be a probability map in [0, 1]; got [{mask.min():.4g}, {mask.max():.4g}]")
    return mask.astype(np.float32, copy=False)


def lung_box(
    mask: npt.ArrayLike,
    dilation: tuple[int, int] = (5, 5),
    iterations: int = 3,
    margin: int = 0,
) -> tuple[int, int, int, int] | None:
    """The authors' crop box ``(y0, y1, x0, x1)`` (end exclusive) for ``mask``, or None when it is empty.

    ``mask`` is a float probability map in [0, 1] (the U-Net output; only exactly-1.0 pixels count after
    dilation, as in the authors' code) or a binary mask (bool or integer; non-zero counts as 1.0). The box is
    clamped to the image (the authors' negative start indices would wrap around) and is at least one pixel tall
    and wide.
    """
    import cv2

    m = _as_float_mask(mask, np.shape(mask)[:2])
    if len(dilation) != 2 or min(dilation) < 1:
        raise ValueError(f"dilation must be a (height, width) kernel size >= 1, got {dilation!r}")
    if int(iterations) < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations!r}")
    if int(margin) < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    if iterations:
        m = cv2.dilate(m, np.ones(tuple(int(d) for d in dilation), np.uint8), iterations=int(iterations))
    rows, cols = np.nonzero(m == 1.0)
    if rows.size == 0:
        return None
    h, w = m.shape
    y0 = max(int(rows.min()) - margin, 0)
    x0 = max(int(cols.min()) - margin, 0)
    y1 = min(max(int(rows.max()) + margin, y0 + 1), h)
    x1 = min(max(int(cols.max()) + margin, x0 + 1), w)
    return y0, y1, x0, x1


def crop_to_lungs(
    img: npt.ArrayLike,
    mask: npt.ArrayLike,
    dilation: tuple[int, int] = (5, 5),
    iterations: int = 3,
    margin: int = 0,
    *,
    size: tuple[int, int] | None = None,
    on_empty: str = "full",
    return_box: bool = False,
) -> np.ndarray | tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crops ``img`` to the dilated lung region of ``mask``, as COVID-CXNet's ROI-extraction block does.

    Reference: Haghanifar et al., COVID-CXNet, §3.2 and Fig. 4; the authors' ``do_segmentation``.

    Args:
        img: (H, W) or (H, W, C) NumPy image (any dtype; it is sliced, not converted).
        mask: (H, W) or (H, W, 1): the U-Net's float map in [0, 1] (see :func:`covid_cxnet_lung_mask`), or a
            binary mask (bool / integer, non-zero = lung).
        dilation: kernel (height, width) of ones for ``cv2.dilate`` (authors: 5×5).
        iterations: dilation iterations (authors: 3; 0 disables dilation).
        margin: extra pixels on each side (authors: 0 in training, 10 in their segmentation demo). The end index
            stays exclusive as in the authors' code; indices are clamped to the image.
        size: optional (height, width) to resize the crop to, with OpenCV bicubic interpolation as the authors
            did (they used (320, 320)). None returns the crop as is.
        on_empty: what to do when no pixel of the dilated map is exactly 1.0 (the authors' code crashes):
            ``"full"`` (default) uses the whole image, so a bad segmentation degrades to no cropping;
            ``"raise"`` raises ValueError.
        return_box: also return the box ``(y0, y1, x0, x1)`` used (the full image's box for the fallback).

    Returns:
        The crop (resized when ``size`` is given), or ``(crop, box)`` with ``return_box=True``.

    Example:
        >>> p = covid_cxnet_lung_mask(image_320, unet)        # float map from the lung U-Net
        >>> roi = crop_to_lungs(image_320, p, size=(320, 320))
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise ValueError(f"img must be a non-empty (H, W) or (H, W, C) array, got shape {img.shape}")
    if on_empty not in ON_EMPTY:
        raise ValueError(f"on_empty must be one of {ON_EMPTY}, got {on_empty!r}")
    _as_float_mask(mask, img.shape[:2])  # shape and value checks against this image
    box = lung_box(mask, dilation=dilation, iterations=iterations, margin=margin)
    if box is None:
        if on_empty == "raise":
            raise ValueError("the lung mask is empty: no pixel of the dilated map equals 1.0")
        box = (0, img.shape[0], 0, img.shape[1])
    y0, y1, x0, x1 = box
    crop = img[y0:y1, x0:x1]
    if size is not None:
        crop = resize(np.ascontiguousarray(crop), size, "bicubic")
    return (crop, box) if return_box else crop


_EIGHT_CONNECTED = np.ones((3, 3), bool)


def as_binary_mask(mask: npt.ArrayLike, what: str = "mask") -> np.ndarray:
    """``mask`` as a 2-D boolean array (numeric masks: > 0), checked; ``what`` names it in errors."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) mask, got shape {array.shape}")
    if array.dtype != bool:
        if not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{what} must be boolean or numeric, got dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise ValueError(f"{what} contains NaN or infinite values")
        array = array > 0
    return array


def split_lungs(lung_mask: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The patient's (left, right) lung masks from a lung mask, by connected components.

    Radiological orientation: the patient's left lung appears on the image's right. Rules, on 8-connected
    components:

    * two or more components: the split column is halfway between the centroids of the two largest; each
      component goes to the side of its centroid (right of the split → patient's left);
    * one component that straddles the image's centre column (lungs touching behind the heart): it is cut at its
      narrowest column (fewest lung pixels) within the middle half of its bounding box;
    * one component on one side of the centre column: a single lung (the other one, e.g. fully opacified, was not
      segmented), assigned by side; the other mask is empty;
    * no lung pixel: both masks empty.
    """
    lung = as_binary_mask(lung_mask, "lung_mask")
    left, right = np.zeros_like(lung), np.zeros_like(lung)
    labels, count = ndimage.label(lung, structure=_EIGHT_CONNECTED)
    if count == 0:
        return left, right
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(lung, labels, index)
    columns = np.array([c[1] for c in ndimage.center_of_mass(lung, labels, index)])
    width = lung.shape[1]
    if count >= 2:
        a, b = np.argsort(sizes)[::-1][:2]
        split = 0.5 * (columns[a] + columns[b])
        image_right = index[columns > split]
        left = np.isin(labels, image_right)
        return left, lung & ~left
    cols = np.nonzero(lung.any(axis=0))[0]
    x0, x1 = int(cols[0]), int(cols[-1])
    centre = (width - 1) / 2.0
    if x0 < centre < x1:
        quarter = (x1 - x0) // 4
        lo, hi = x0 + quarter, x1 - quarter
        counts = lung[:, lo : hi + 1].sum(axis=0)
        cut = lo + int(np.argmin(counts))
        left = lung.copy()
        left[:, : cut + 1] = False
        return left, lung & ~left
    if columns[0] > centre:
        return lung.copy(), right
    return left, lung.copy()
