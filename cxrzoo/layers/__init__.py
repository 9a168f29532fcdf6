"""Custom Keras 3 layers used by the zoo's models, registered for ``.keras`` serialization (package ``cxrzoo``).

Importing this module registers them; :func:`cxrzoo.models.load_model` does so before loading a saved model.
"""

from cxrzoo.layers.common import ExpandDims, FoldedBatchNormalization, PolyphaseMerge, PolyphaseSplit, ReduceSum
from cxrzoo.layers.cxrnet import (
    AxisAttention,
    LungMaskGate,
    MinMaxRescale,
    SelectChannel,
    SeparableConv2D,
    Threshold,
    xla_depthwise,
)
from cxrzoo.layers.scattering import Scattering2D
from cxrzoo.layers.upsampling import AlignedBilinearUpsampling2D

__all__ = [
    "AlignedBilinearUpsampling2D",
    "AxisAttention",
    "ExpandDims",
    "FoldedBatchNormalization",
    "LungMaskGate",
    "MinMaxRescale",
    "PolyphaseMerge",
    "PolyphaseSplit",
    "ReduceSum",
    "Scattering2D",
    "SelectChannel",
    "SeparableConv2D",
    "Threshold",
    "xla_depthwise",
]
