"""Keras machinery shared by every paper, free of any paper's defaults: layers, builder helpers, backbones,
inference rewrites (:func:`fold_batch_norm`, :func:`polyphase_dilated`) and the spec-carrying model."""

from cxrzoo.nn.model import InputContractError, InputContractWarning, SpecModel, attach_spec, check_input, spec_of
from cxrzoo.nn.rewrite import fold_batch_norm, polyphase_dilated

__all__ = [
    "InputContractError",
    "InputContractWarning",
    "SpecModel",
    "attach_spec",
    "check_input",
    "fold_batch_norm",
    "polyphase_dilated",
    "spec_of",
]
