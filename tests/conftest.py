"""Shared test configuration: offline by default, a socket guard, and access to ../shared.

The default tier never touches the network: ``CXRZOO_OFFLINE=1`` is set for the whole session and any attempt to
open an internet socket fails the test that made it. Tests marked ``loopback`` may talk to 127.0.0.1 only (a local
HTTP server standing in for GitHub). The authors' weights, fixtures and data are read from ``../shared`` (or
``$CXRZOO_SHARED``); tests that need them skip with a reason when it is absent.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared")).resolve()


class NetworkBlocked(RuntimeError):
    """Raised by the socket guard. Not an OSError, so code that retries on network errors cannot swallow it."""


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_allow_loopback = False


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(sock, address):
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    if _allow_loopback and _is_loopback(address):
        return
    raise NetworkBlocked(f"network access blocked in tests: connect to {address!r}")


def _guarded_connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host not in (None, "") and not _is_loopback((host,)):
        raise NetworkBlocked(f"network access blocked in tests: name lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_sessionstart(session):
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    os.environ["CXRZOO_OFFLINE"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _loopback_permission(request):
    global _allow_loopback
    _allow_loopback = request.node.get_closest_marker("loopback") is not None
    yield
    _allow_loopback = False


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Each test gets an empty cache, so nothing depends on (or pollutes) ~/.cache/cxrzoo.
    monkeypatch.setenv("CXRZOO_HOME", str(tmp_path_factory.mktemp("cxrzoo_home")))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the calling test (with the reason) when it does not exist."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the authors' files in ../shared are not available on this machine)")
    return path


@pytest.fixture
def shared():
    """``shared("fixtures", "cxrnet", ...)`` → a path under ../shared, or a skip with the reason."""
    return shared_path


@pytest.fixture
def shared_weights(monkeypatch) -> Path:
    """Points CXRZOO_WEIGHTS_PATH at ../shared/weights (offline mirror) or skips."""
    folder = shared_path("weights")
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(folder))
    return folder


@pytest.fixture(scope="session")
def published_cxrnet():
    """The end-to-end CXR-Net with its published weights, built once per session; tests must not modify it."""
    folder = shared_path("weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CXRZOO_WEIGHTS_PATH", str(folder))
        from cxrzoo.models.cxrnet import build_cxrnet

        return build_cxrnet()


@pytest.fixture(scope="session")
def cxrnet_sample_image() -> np.ndarray:
    """The authors' equalized CXR-Net sample (002130-004-1), float32 (300, 340) with values 0..255."""
    from PIL import Image

    path = shared_path("fixtures", "cxrnet", "sample", "002130-004-1_image_equalized.png")
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float32)
