"""Checks that the installed stack is one cxrzoo can run on, without importing it.

`import cxrzoo` must stay cheap and free of side effects, so these checks read package metadata and the
environment only; TensorFlow and Keras are imported later, by the first function that needs them.
"""

from __future__ import annotations

import os
from importlib import metadata

MIN_KERAS = (3, 3)


class UnsupportedStackError(ImportError):
    """Raised at import time when the Keras/TensorFlow stack cannot run cxrzoo."""


def _major_minor(version: str) -> tuple[int, int]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    while len(parts) < 2:
        parts.append(0)
    return parts[0], parts[1]


def check_stack() -> None:
    """Fail with one clear error on a Keras 2 / tf_keras stack or a non-TensorFlow Keras backend."""
    try:
        keras_version = metadata.version("keras")
    except metadata.PackageNotFoundError:
        raise UnsupportedStackError(
            "cxrzoo needs Keras 3 with the TensorFlow backend, and Keras is not installed. "
            "Install it with: pip install 'tensorflow>=2.16' 'keras>=3.3'"
        ) from None
    if _major_minor(keras_version) < MIN_KERAS:
        raise UnsupportedStackError(
            f"cxrzoo needs Keras >= {MIN_KERAS[0]}.{MIN_KERAS[1]} (Keras 3); found keras {keras_version}, "
            "which is a Keras 2 stack. Upgrade with: pip install 'tensorflow>=2.16' 'keras>=3.3'"
        )
    legacy = os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower()
    if legacy in {"1", "true", "yes"}:
        raise UnsupportedStackError(
            f"TF_USE_LEGACY_KERAS={os.environ['TF_USE_LEGACY_KERAS']} selects the Keras 2 (tf_keras) stack, "
            "which cxrzoo does not support. Unset it to use Keras 3."
        )
    backend = os.environ.get("KERAS_BACKEND", "").strip().lower()
    if backend and backend != "tensorflow":
        raise UnsupportedStackError(
            f"cxrzoo runs on the TensorFlow backend of Keras 3, but KERAS_BACKEND={backend!r} is set. "
            "Unset it or set KERAS_BACKEND=tensorflow."
        )


def check_backend() -> None:
    """Checks the backend Keras actually loaded (it may come from ~/.keras/keras.json)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UnsupportedStackError(
            f"cxrzoo runs on the TensorFlow backend of Keras 3, but Keras loaded the "
            f"{keras.backend.backend()!r} backend (see KERAS_BACKEND or ~/.keras/keras.json)."
        )
