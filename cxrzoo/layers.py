"""Every custom Keras layer of the zoo in one namespace (shared ones from :mod:`cxrzoo.nn`, the papers' own from
their folders), registered for ``.keras`` serialization under the package ``cxrzoo``.
"""

from cxrzoo.models.covid_cxnet.hierarchical import HierarchicalProbabilities
from cxrzoo.models.covid_xnet.bone_suppression import TiedConvAutoencoder
from cxrzoo.models.cxrnet.layers import (
    AxisAttention,
    LungMaskGate,
    MinMaxRescale,
    SelectChannel,
    SeparableConv2D,
    Threshold,
    xla_depthwise,
)
from cxrzoo.nn.layers import ExpandDims, FoldedBatchNormalization, PolyphaseMerge, PolyphaseSplit, ReduceSum
from cxrzoo.nn.scattering import Scattering2D
from cxrzoo.nn.upsampling import AlignedBilinearUpsampling2D

__all__ = [
    "AlignedBilinearUpsampling2D",
    "AxisAttention",
    "ExpandDims",
    "FoldedBatchNormalization",
    "HierarchicalProbabilities",
    "LungMaskGate",
    "MinMaxRescale",
    "PolyphaseMerge",
    "PolyphaseSplit",
    "ReduceSum",
    "Scattering2D",
    "SelectChannel",
    "SeparableConv2D",
    "Threshold",
    "TiedConvAutoencoder",
    "xla_depthwise",
]
