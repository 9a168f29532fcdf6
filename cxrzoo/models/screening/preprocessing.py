"""The screening baselines' preparation (recipe ``"screening_baselines"``): crop the top 8 %, centre square,
bicubic 224, optional equalization, bilinear 299 for InceptionV3.

Reference: Loconte & Colavito, Screening X-ray images for COVID-19 infections, §3 (docs/models/screening_baselines.md).
"""

from __future__ import annotations

from cxrzoo.preprocessing.geometry import center_crop, crop_top
from cxrzoo.preprocessing.histogram import equalize_hist
from cxrzoo.preprocessing.recipes import Recipe, Step, register_recipe, resize_step, scale_step, to_uint8_step


def screening_recipe(equalize: bool = False, size: int = 224) -> Recipe:
    if isinstance(size, (tuple, list)):  # (H, W) from a spec: the baselines take squares
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"recipe 'screening_baselines': the baselines take square inputs, got size {tuple(size)}")
        size = size[0]
    size = int(size)
    if size < 1:
        raise ValueError(f"recipe 'screening_baselines': size must be positive, got {size}")
    steps = [
        to_uint8_step(),
        Step("crop the top 8% of rows", lambda a: crop_top(a, 0.08), lambda m: crop_top(m, 0.08)),
        Step(
            "centre crop to the largest square", lambda a: center_crop(a, "square"), lambda m: center_crop(m, "square")
        ),
        resize_step((224, 224), "bicubic"),
    ]
    if equalize:
        steps.append(Step("global histogram equalization", equalize_hist))
    if size != 224:  # InceptionV3: the paper upsamples the 224 images bilinearly to 299
        steps.append(resize_step((size, size), "bilinear"))
    steps.append(scale_step())
    return Recipe("screening_baselines", "screening", (size, size, 1), tuple(steps))


register_recipe("screening_baselines", screening_recipe)
