"""Model builders, one module per seed paper (importing this package registers them all).

| module | paper |
|---|---|
| :mod:`cxrzoo.models.res_cr_net` | 000 CXR-Net Module 1 (Res-CR-Net lung segmenter) |
"""

from __future__ import annotations

from cxrzoo._compat import check_backend

check_backend()

from cxrzoo.models import res_cr_net  # noqa: E402  (registers its builders)


def load_model(path, *, compile: bool = False, safe_mode: bool = True):
    """Loads a ``.keras`` file saved from a cxrzoo model (registers cxrzoo's custom layers first).

    ``safe_mode=True`` (the default) refuses arbitrary Python code (``Lambda`` layers) in the file; every cxrzoo
    model round-trips with it.
    """
    import keras

    import cxrzoo.layers  # noqa: F401  (registration of custom layers)

    return keras.models.load_model(path, compile=compile, safe_mode=safe_mode)
