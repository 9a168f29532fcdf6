"""CXR-Net's preparation of a radiograph: :func:`prepare_cxrnet_input` and the recipe ``"cxrnet"``.

Reference: Gatti et al., CXR-Net (Module 1 and Module 2 inputs); the authors' inference script. docs/models/cxrnet.md
and docs/preprocessing.md say which details are stated and which were read from the authors' code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cxrzoo.preprocessing import _dispatch, graph
from cxrzoo.preprocessing.geometry import resize
from cxrzoo.preprocessing.histogram import equalize_hist
from cxrzoo.preprocessing.io import read_image
from cxrzoo.preprocessing.recipes import Recipe, Step, gray, register_recipe, scale_step

if TYPE_CHECKING:
    import tensorflow as tf

#: CXR-Net's network input: height 300, width 340.
CXRNET_SIZE = (300, 340)
#: Module 2 standardization of X (``standardization_parameters_V7.json``; the JMS file has the same values).
CXRNET_MEAN = 124.07157127013421
CXRNET_STD = 75.97485671901313


def _cxrnet_kernel(image: np.ndarray) -> np.ndarray:
    values = gray(image, "prepare_cxrnet_input")
    lo, hi = float(values.min()), float(values.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("prepare_cxrnet_input: the image contains NaN or infinite values")
    # The authors min-max scale the pixel data to [0, 255] as floats: (x - min) / (max - min) * 255, evaluated in
    # that order. A constant image has no range: zeros here.
    scaled = values
    if hi > lo and values.dtype == np.uint8:
        # 8-bit data has 256 possible values: the same float64 operations on a table, applied by cv2.LUT (the
        # same numbers, ~30% less time for the whole preparation)
        table = (np.arange(256, dtype=np.float64) - lo) / (hi - lo) * 255.0
        scaled = cv2.LUT(values, table)
    elif hi > lo:
        scaled = values.astype(np.float64)
        np.subtract(scaled, lo, out=scaled)
        np.divide(scaled, hi - lo, out=scaled)
        np.multiply(scaled, 255.0, out=scaled)
    else:
        scaled = np.zeros(values.shape, np.float64)
    height, width = CXRNET_SIZE
    small = cv2.resize(scaled, (width, height), interpolation=cv2.INTER_LINEAR)
    return equalize_hist(cv2.convertScaleAbs(small))


def prepare_cxrnet_input(
    image: np.ndarray | tf.Tensor | str | os.PathLike | bytes | bytearray,
) -> np.ndarray | tf.Tensor:
    """CXR-Net's preparation of a radiograph: the ``uint8 (300, 340)`` image Module 1 and Module 2 start from.

    The authors' steps (their ``Predict_new_patient.py``; docs/models/cxrnet.md): grayscale; min-max scale the
    (>= 8-bit) pixel data to [0, 255] as float64; ``cv2.resize(img, (340, 300))`` (bilinear; height 300, width 340);
    ``cv2.convertScaleAbs`` (round half to even, saturate) to uint8; global histogram equalization
    (``cv2.equalizeHist``). Module 1 then takes ``x / 255``; Module 2 standardizes with :data:`CXRNET_MEAN` and
    :data:`CXRNET_STD` (``recipe("cxrnet", module=2)``).

    Args:
        image: a 2-D array or tensor of any numeric dtype (pass full-depth data, e.g.
            ``read_image(path, native_depth=True)``, to keep the authors' precision), an ``(H, W, 3|4)`` colour
            array (converted with :func:`to_gray`), or a path / encoded bytes (read with ``native_depth=True``).
            A constant image becomes all zeros.

    Example::

        x = prepare_cxrnet_input("cxr.dcm")[None, ..., None] / 255.0     # Module 1 input
    """
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        image = read_image(image, native_depth=True)
    if not _dispatch.is_tensor(image):
        return _cxrnet_kernel(image)
    import tensorflow as tf

    return _dispatch.run(_cxrnet_kernel, image, dtype=tf.uint8, shape=CXRNET_SIZE, name="prepare_cxrnet_input")


#: What the recipe's last step makes: Module 1's input (x / 255), Module 2's X (standardized), or the end-to-end
#: model's input (the prepared 8-bit values as float32, 0..255; :func:`cxrzoo.build_cxrnet` does the rest in-graph).
MODULES = (1, 2, "end_to_end")


def cxrnet_recipe(module: int | str = 1) -> Recipe:
    """The recipe ``"cxrnet"``: :func:`prepare_cxrnet_input`, then the input of ``module`` (see :data:`MODULES`)."""
    if module not in MODULES:
        raise ValueError(f"recipe 'cxrnet': module must be one of {MODULES}, got {module!r}")
    steps = [
        Step(
            "CXR-Net preparation: min-max to [0, 255] (float64), bilinear resize to 300x340, "
            "convertScaleAbs, equalizeHist",
            _cxrnet_kernel,
            lambda m: resize(m, CXRNET_SIZE, "nearest"),
        )
    ]
    if module == 1:
        steps.append(scale_step())
    elif module == 2:
        steps.append(
            Step(
                f"(x - {CXRNET_MEAN}) / {CXRNET_STD} → float32 (Module 2 X)",
                lambda a: ((a.astype(np.float64) - CXRNET_MEAN) / CXRNET_STD).astype(np.float32)[..., None],
            )
        )
    else:
        steps.append(
            Step(
                "0..255 as float32 (the end-to-end model scales and standardizes in-graph)",
                lambda a: a.astype(np.float32)[..., None],
            )
        )
    return Recipe("cxrnet", "cxrnet", CXRNET_SIZE + (1,), tuple(steps))


register_recipe("cxrnet", cxrnet_recipe)


def cxrnet_graph_recipe(module: int | str = 1) -> Callable:
    """The recipe ``"cxrnet"`` as TensorFlow operations (for exported SavedModels): ``prepare(gray, bits)`` takes the
    float64 gray image of :func:`cxrzoo.preprocessing.graph.decode_gray` and returns what ``recipe("cxrnet",
    module=module)`` returns for the same file, bit for bit (float32 (300, 340, 1)).

    Example::

        prepare = cxrnet_graph_recipe("end_to_end")
        x = prepare(*graph.decode_gray(tf.io.read_file("cxr.png")))
    """
    if module not in MODULES:
        raise ValueError(f"recipe 'cxrnet': module must be one of {MODULES}, got {module!r}")
    import tensorflow as tf

    def prepare(gray, bits):
        del bits  # min-max scaling makes 8- and 16-bit data alike
        lo, hi = tf.reduce_min(gray), tf.reduce_max(gray)
        # the same float64 operations in the same order as _cxrnet_kernel; a constant image becomes zeros
        scaled = tf.cond(hi > lo, lambda: (gray - lo) / (hi - lo) * 255.0, lambda: tf.zeros_like(gray))
        equalized = graph.equalize_hist(graph.convert_scale_abs(graph.resize_bilinear(scaled, CXRNET_SIZE)))
        # the last step as a table of the 256 levels computed by NumPy, like the recipe's own step: inside a
        # tf.function Grappler turns x / 255 into x * (1 / 255), which is not the same float32 number
        return tf.gather(tf.constant(table), tf.cast(equalized, tf.int32))[..., None]

    levels = np.arange(256, dtype=np.uint8)
    if module == 1:
        table = np.divide(levels, np.float32(255.0), dtype=np.float32)
    elif module == 2:
        table = ((levels.astype(np.float64) - CXRNET_MEAN) / CXRNET_STD).astype(np.float32)
    else:
        table = levels.astype(np.float32)
    return prepare


graph.register_graph_recipe("cxrnet", cxrnet_graph_recipe)
