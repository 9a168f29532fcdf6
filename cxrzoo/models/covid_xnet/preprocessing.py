"""COVID-XNet's preparation (recipe ``"covid_xnet"``): histogram matching, rib suppression, CLAHE, resize.

Reference: Duran-Lopez et al., COVID-XNet, §2.2 (docs/models/covid_xnet.md). The rib-suppression step runs the
published bone-suppression autoencoder (:func:`cxrzoo.models.covid_xnet.suppress_bones`), so this recipe needs its
weights (``bone_suppression.jsrt_v2``) unless ``bone_suppression=False``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.models.covid_xnet.bones import suppress_bones
from cxrzoo.preprocessing.histogram import clahe, match_histogram
from cxrzoo.preprocessing.recipes import (
    Recipe,
    Step,
    check_size,
    gray_uint8,
    register_recipe,
    resize_step,
    scale_step,
    to_uint8_step,
)

if TYPE_CHECKING:
    import numpy.typing as npt


def covid_xnet_recipe(
    reference: npt.ArrayLike | None = None,
    bone_suppression: bool = True,
    clip_limit: float = 2.0,
    tile_grid_size: tuple[int, int] = (8, 8),
    size: int | tuple[int, int] = (128, 128),
    bone_size: tuple[int, int] | None = None,
) -> Recipe:
    size = check_size(size, "recipe 'covid_xnet'")
    steps = [to_uint8_step()]
    if reference is not None:
        reference = gray_uint8(np.asarray(reference), "recipe 'covid_xnet' reference")
        steps.append(Step("histogram matching to the reference image", lambda a: match_histogram(a, reference)))
    if bone_suppression:

        def _suppress(a: np.ndarray) -> np.ndarray:
            return suppress_bones(a, size=bone_size)

        steps.append(Step("rib-shadow suppression (ML-BoneSuppression autoencoder)", _suppress))
    steps.append(
        Step(f"CLAHE clip {clip_limit}, tiles {tuple(tile_grid_size)}", lambda a: clahe(a, clip_limit, tile_grid_size))
    )
    steps.append(resize_step(size, "area"))
    steps.append(scale_step())
    return Recipe("covid_xnet", "covid_xnet", size + (1,), tuple(steps))


register_recipe("covid_xnet", covid_xnet_recipe)
