"""Histogram operations on 8-bit images: global equalization, CLAHE, histogram matching and BEASF.

All of them are 256-entry lookup tables built from a histogram and applied with ``cv2.LUT``, so their cost is one
pass to count and one pass to map, whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cxrzoo.preprocessing import _dispatch

if TYPE_CHECKING:
    import tensorflow as tf

_LEVELS = 256


def _histogram(img: np.ndarray) -> np.ndarray:
    """Counts of the 256 gray levels (int64)."""
    if img.size < 1 << 24:  # OpenCV counts in float32, exactly up to 2**24 pixels, and far faster than bincount
        return cv2.calcHist([np.ascontiguousarray(img)], [0], None, [_LEVELS], [0, _LEVELS]).ravel().astype(np.int64)
    return np.bincount(img.ravel(), minlength=_LEVELS)


def _apply_lut(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return cv2.LUT(img, lut.astype(np.uint8, copy=False)).reshape(img.shape)


def _uint8_op(
    name: str, kernel: Callable[[np.ndarray], np.ndarray], img: np.ndarray | tf.Tensor
) -> np.ndarray | tf.Tensor:
    """Validate a 2-D uint8 image and run ``kernel`` on it (eagerly or inside a graph)."""
    _dispatch.check_image(img, name)

    def _checked(array: np.ndarray) -> np.ndarray:
        _dispatch.check_image(array, name)
        return kernel(array)

    return _dispatch.run(_checked, img, dtype=img.dtype, shape=img.shape, name=name)


# --------------------------------------------------------------------------------------------------- equalization


def equalization_lut(img: np.ndarray) -> np.ndarray:
    """The 256-entry uint8 table of OpenCV's ``equalizeHist`` for this image.

    OpenCV's rule: with ``i0`` the lowest level present and ``N`` the pixel count, level ``i > i0`` maps to
    ``round(cumsum(hist)[i] - hist[i0]) * 255 / (N - hist[i0]))`` computed in float32 and rounded half to even;
    levels ``<= i0`` map to 0. A constant image maps to itself.
    """
    hist = _histogram(img)
    first = int(np.flatnonzero(hist)[0])
    lut = np.zeros(_LEVELS, np.uint8)
    if hist[first] == img.size:
        lut[first] = first
        return lut
    scale = np.float32(_LEVELS - 1) / np.float32(img.size - hist[first])
    running = np.cumsum(hist[first + 1 :]).astype(np.float32)
    lut[first + 1 :] = np.clip(np.rint(running * scale), 0, 255)
    return lut


def equalize_hist(img: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """Global histogram equalization, bit-identical to ``cv2.equalizeHist``.

    CXR-Net's preparation ends with it, and the screening baselines' paper optionally applies it. Input and output: a
    2-D uint8
    NumPy array or tensor.

    Example::

        eq = equalize_hist(img)
    """
    return _uint8_op("equalize_hist", lambda a: _apply_lut(a, equalization_lut(a)), img)


# --------------------------------------------------------------------------------------------------------- CLAHE


def clahe(
    img: np.ndarray | tf.Tensor, clip_limit: float = 2.0, tile_grid_size: tuple[int, int] = (8, 8)
) -> np.ndarray | tf.Tensor:
    """Contrast-limited adaptive histogram equalization with OpenCV's semantics (``cv2.createCLAHE(...).apply``).

    Args:
        img: 2-D uint8 array or tensor.
        clip_limit: OpenCV's ``clipLimit``: each tile histogram is clipped at ``max(1, int(clip_limit * tile_area /
            256))`` counts and the excess redistributed; 0 disables clipping (plain adaptive equalization). COVID-
            CXNet uses 2.0; the thesis and COVID-XNet do not state theirs (cxrzoo uses 2.0).
        tile_grid_size: OpenCV's ``tileGridSize``, ``(tiles across, tiles down)``; (8, 8) everywhere in the papers.

    OpenCV itself computes the result (the paper pipelines used it, and scikit-image's CLAHE differs from it).
    """
    clip_limit = float(clip_limit)
    if not np.isfinite(clip_limit) or clip_limit < 0:
        raise ValueError(f"clahe: clip_limit must be a finite number >= 0, got {clip_limit}")
    try:
        tiles = tuple(int(t) for t in tile_grid_size)
    except TypeError:
        raise ValueError(f"clahe: tile_grid_size must be a pair of ints, got {tile_grid_size!r}") from None
    if len(tiles) != 2 or min(tiles) < 1:
        raise ValueError(f"clahe: tile_grid_size must be two positive ints, got {tile_grid_size!r}")

    def _kernel(array: np.ndarray) -> np.ndarray:
        # A new CLAHE object per call: OpenCV's keeps per-call buffers, so sharing one across tf.data threads races.
        return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tiles).apply(array)

    return _uint8_op("clahe", _kernel, img)


# --------------------------------------------------------------------------------------------- histogram matching


def _quantiles(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of pixels at or below each level (all 256 levels) and the levels actually present."""
    counts = _histogram(np.asarray(img))
    cumulative = np.cumsum(counts).astype(np.float64)
    cumulative /= cumulative[-1]
    return cumulative, np.flatnonzero(counts)


def matching_lut(img: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The uint8 table of :func:`match_histogram` mapping ``img``'s levels onto ``reference``'s distribution."""
    src_quantiles, _ = _quantiles(img)
    ref_cumulative, ref_levels = _quantiles(reference)
    mapped = np.interp(src_quantiles, ref_cumulative[ref_levels], ref_levels.astype(np.float64))
    return mapped.astype(np.uint8)  # truncation, as the authors' cast


def match_histogram(img: np.ndarray | tf.Tensor, reference: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """Map ``img``'s gray levels so that its histogram matches ``reference``'s (quantile mapping).

    Each level's cumulative share of pixels is looked up on the reference's cumulative distribution and linearly
    interpolated between the reference's levels (``np.interp``); the result is truncated to uint8. This is
    COVID-CXNet's step (multiclass and hierarchical notebooks, template = first image of the set) and the
    histogram matching COVID-XNet's paper applies to every image (its method and reference image are not stated;
    cxrzoo uses the same quantile mapping).

    Args:
        img: 2-D uint8 array or tensor.
        reference: uint8 array (any shape) whose histogram is the target; a NumPy array or an eager tensor.
    """
    if _dispatch.is_tensor(reference):
        if not hasattr(reference, "numpy"):
            raise TypeError("match_histogram: reference must be a NumPy array or an eager tensor, not a symbolic one")
        reference = reference.numpy()
    if not isinstance(reference, np.ndarray) or reference.dtype != np.uint8 or reference.size == 0:
        raise TypeError(
            f"match_histogram: reference must be a non-empty uint8 array, got {_dispatch.describe(reference)}"
        )
    reference = reference.copy()
    return _uint8_op("match_histogram", lambda a: _apply_lut(a, matching_lut(a, reference)), img)


# --------------------------------------------------------------------------------------------------------- BEASF


def beasf_lut(img: np.ndarray, gamma: float = 1.5) -> np.ndarray:
    """The float64 table of :func:`beasf` (before the truncating cast), indexed by gray level."""
    low_value, high_value = int(img.min()), int(img.max())
    if low_value == high_value:
        return np.arange(_LEVELS, dtype=np.float64)  # a constant image is returned unchanged
    n = img.size
    m = int(img.sum(dtype=np.int64) // n)  # the authors' int(np.mean(img, dtype=int32)), without int32 overflow

    # The authors' np.histogram(img, bins=256) has no range: its 256 bins span [min, max], not 0..255. Binning the
    # distinct levels weighted by their counts gives the same histogram at a fraction of the cost.
    counts = _histogram(img)[low_value : high_value + 1]
    levels = np.arange(low_value, high_value + 1)
    hist = np.histogram(levels, bins=_LEVELS, range=(low_value, high_value), weights=counts)[0] / n

    # Sub-histograms share bin m; each is renormalised by a left-to-right running sum, as the authors' loop does.
    lower = np.zeros(_LEVELS)
    lower[: m + 1] = hist[: m + 1]
    lower[: m + 1] /= np.cumsum(hist[: m + 1])[-1]
    upper = np.zeros(_LEVELS)
    upper[m:] = hist[m:]
    upper[m:] /= np.cumsum(hist[m:])[-1]
    cdf_lower, cdf_upper = np.cumsum(lower), np.cumsum(upper)

    found = np.flatnonzero(cdf_lower[: m + 2] > 0.5)
    half_low = int(found[0]) if found.size else 0
    found = np.flatnonzero(cdf_upper[m + 1 :] > 0.5)  # the authors' look-ahead: tone t tests cdf_upper[t + 1]
    half_up = m + int(found[0]) if found.size else 0

    lut = np.zeros(_LEVELS)
    if m > 0:
        tones = np.arange(0, m + 1)
        s_low = 1 / (1 + np.exp(-gamma * (5.0 * (tones - half_low) / m)))
        lut[: m + 1] = np.trunc(m * s_low)
        first, last = lut[0], lut[m]
        if last > first:
            lut[: m + 1] = np.trunc((m / (last - first)) * (lut[: m + 1] - first))
        else:  # the sigmoid is flat after truncation: keep the lower tones as they are
            lut[: m + 1] = tones
    tones = np.arange(m, _LEVELS)
    s_up = 1 / (1 + np.exp(-gamma * (5.0 * (tones - half_up) / (255 - m))))
    lut[m + 1 :] = np.trunc(m + (255 - m) * s_up[: 255 - m])  # tone t takes the sigmoid of tone t - 1 (authors')
    first, last = lut[m + 1], lut[255]
    if last > first:
        lut[m + 1 :] = (255 - m) * (lut[m + 1 :] - first) / (last - first) + m
    else:
        lut[m + 1 :] = np.arange(m + 1, _LEVELS)
    return lut


def beasf(img: np.ndarray | tf.Tensor, gamma: float = 1.5) -> np.ndarray | tf.Tensor:
    """Bi-histogram equalization with adaptive sigmoid functions (BEASF), bit for bit as COVID-CXNet computes it.

    COVID-CXNet's second channel (gamma 1.5), a port of Arriaga-Garcia et al. (2014). The image is split at its
    mean m; each half's median places a sigmoid (slope ``gamma``) whose values, truncated and stretched, map the
    lower tones onto [0, m] and the upper tones onto [m, 255]. The authors' quirks are kept because the published
    results depend on them: the histogram's 256 bins span [min, max] rather than 0..255 (yet the table is indexed
    by gray level), the upper median looks one bin ahead, upper tone t uses the sigmoid value of tone t - 1, and
    the final table is truncated to uint8.

    Degenerate inputs (defined here; the authors' code divides by zero): a constant image is returned unchanged;
    if the lower or upper half of the table collapses to one value (e.g. mean 0, or a nearly binary image) that
    half maps each tone to itself.

    Args:
        img: 2-D uint8 array or tensor.
        gamma: sigmoid slope, > 0 (the paper compares 0.5, 1.0, 1.5 and 2.0 and uses 1.5).
    """
    gamma = float(gamma)
    if not np.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"beasf: gamma must be a finite number > 0, got {gamma}")

    # Every division in beasf_lut is guarded (the tests run the degenerate cases with warnings as errors), so no
    # np.errstate here: entering one costs more than the rest of the table.
    return _uint8_op("beasf", lambda a: _apply_lut(a, beasf_lut(a, gamma)), img)
