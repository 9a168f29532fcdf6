"""COVID-CXNet's preparation: gray, bicubic resize, optional U-Net lung crop and histogram matching, and the
[BEASF, CLAHE, original] channel stack (recipes ``"covid_cxnet"`` and ``"covid_cxnet_base"``).

Reference: Haghanifar et al., COVID-CXNet; the authors' notebooks and scripts (docs/models/covid_cxnet.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.preprocessing.enhance import three_channel
from cxrzoo.preprocessing.geometry import resize
from cxrzoo.preprocessing.histogram import match_histogram
from cxrzoo.preprocessing.lungs import crop_to_lungs
from cxrzoo.preprocessing.recipes import (
    Recipe,
    Step,
    check_size,
    gray_uint8,
    register_recipe,
    resize_truncate_step,
    scale_step,
    to_uint8_step,
)

if TYPE_CHECKING:
    import keras
    import numpy.typing as npt

#: Radius of the local histogram equalization in front of the lung U-Net.
EQUALIZE_DISK_RADIUS = 40


def covid_cxnet_lung_mask(img: npt.ArrayLike, model: keras.Model) -> np.ndarray:
    """COVID-CXNet's lung map for an 8-bit image: local equalization (disk 40), then the U-Net on raw 0..255.

    Reference: the authors' ``do_segmentation`` (docs/models/covid_cxnet.md, steps 3a–3b).

    Args:
        img: (H, W) uint8 image at the U-Net's input size (the authors: 320×320 after a bicubic resize).
        model: the lung U-Net (:func:`cxrzoo.build_covid_cxnet_lung_unet`; its published weights
            ``covid_cxnet_lung_unet.montgomery_shenzhen`` are not in the offline mirror).

    Returns:
        The sigmoid map, float32 (H, W) in [0, 1], not thresholded, ready for :func:`crop_to_lungs`.
    """
    from skimage.filters import rank
    from skimage.morphology import disk

    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 2:
        raise ValueError(f"covid_cxnet_lung_mask expects a (H, W) uint8 image, got {img.dtype} {img.shape}")
    equalized = rank.equalize(img, footprint=disk(EQUALIZE_DISK_RADIUS))
    # The authors feed the equalized 0..255 values unscaled.
    x = equalized.astype(np.float32)[None, ..., None]
    out = np.asarray(model(x, training=False))
    if out.shape[:3] != x.shape[:3] or out.shape[-1] != 1:
        raise ValueError(f"the lung model returned shape {out.shape} for input {x.shape}; expected (1, H, W, 1)")
    return out[0, ..., 0].astype(np.float32)


class _LungCropStep(Step):
    """COVID-CXNet's ROI block: lung map from the U-Net, dilated box, crop, bicubic resize."""

    def __init__(self, model: keras.Model, size: tuple[int, int]):
        super().__init__(f"lung crop with the U-Net, bicubic resize to {size[0]}x{size[1]}", image=None)
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_size", size)

    def apply(self, image: np.ndarray, masks: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        lung_map = covid_cxnet_lung_mask(image, self._model)
        crop, (y0, y1, x0, x1) = crop_to_lungs(image, lung_map, size=self._size, return_box=True)
        return crop, [resize(np.ascontiguousarray(m[y0:y1, x0:x1]), self._size, "nearest") for m in masks]


def covid_cxnet_recipe(
    channel_order: str = "beasf_clahe_original",
    lung_model: keras.Model | None = None,
    template: npt.ArrayLike | None = None,
    size: int | tuple[int, int] = (320, 320),
) -> Recipe:
    size = check_size(size, "recipe 'covid_cxnet'")
    if channel_order not in ("beasf_clahe_original", "original_beasf_clahe"):
        raise ValueError(
            "recipe 'covid_cxnet': channel_order must be 'beasf_clahe_original' (notebooks) or "
            f"'original_beasf_clahe' (scripts), got {channel_order!r}"
        )
    steps = [to_uint8_step(), resize_truncate_step(size)]
    if lung_model is not None:
        steps.append(_LungCropStep(lung_model, size))
    if template is not None:
        template = gray_uint8(np.asarray(template), "recipe 'covid_cxnet' template")
        steps.append(Step("histogram matching to the template image", lambda a: match_histogram(a, template)))
    steps.append(
        Step(
            f"three channels {channel_order} (BEASF gamma 1.5, CLAHE 2.0 / 8x8)",
            lambda a: three_channel(a, channel_order),
        )
    )
    steps.append(scale_step())
    return Recipe("covid_cxnet", "covid_cxnet", size + (3,), tuple(steps))


def covid_cxnet_base_recipe(input_shape: Sequence[int] | None = None) -> Recipe:
    """The base CNN's input: 3 channels [original, BEASF, CLAHE] / 255 or 1 channel / 255, at ``input_shape``.

    The two published models differ (``covid_cxnet_base.v1_0``: 400×400×1, ``covid_cxnet_base.v_free``:
    300×300×3), so there is no default: ``recipe(weights=TAG)`` takes the shape from the model's spec.
    """
    if input_shape is None:
        raise TypeError(
            "recipe 'covid_cxnet_base' needs input_shape: the published models take (400, 400, 1) "
            "(covid_cxnet_base.v1_0) or (300, 300, 3) (covid_cxnet_base.v_free); use "
            "recipe(weights='covid_cxnet_base.v_free') to take it from the weights"
        )
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"recipe 'covid_cxnet_base': input_shape must be (H, W, 1) or (H, W, 3), got {input_shape}")
    size = check_size(input_shape[:2], "recipe 'covid_cxnet_base'")
    steps = [to_uint8_step(), resize_truncate_step(size)]
    if input_shape[-1] == 3:
        steps.append(
            Step(
                "three channels original_beasf_clahe (BEASF gamma 1.5, CLAHE 2.0 / 8x8)",
                lambda a: three_channel(a, "original_beasf_clahe"),
            )
        )
    steps.append(scale_step())
    return Recipe("covid_cxnet_base", "covid_cxnet", size + (input_shape[-1],), tuple(steps))


register_recipe("covid_cxnet", covid_cxnet_recipe)
register_recipe("covid_cxnet_base", covid_cxnet_base_recipe)
