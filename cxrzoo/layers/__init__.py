"""Custom Keras 3 layers used by the zoo's models, registered for ``.keras`` serialization (package ``cxrzoo``).

Importing this module registers them; :func:`cxrzoo.models.load_model` does so before loading a saved model.
"""

from cxrzoo.layers.common import ExpandDims, ReduceSum

__all__ = ["ExpandDims", "ReduceSum"]
