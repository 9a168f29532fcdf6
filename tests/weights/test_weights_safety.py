"""Weights files given by path may not read other files; downloads are capped and fall through; verify reports per
tag; mirrors are readable by other users (issue 14)."""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxrzoo.weights.files as files_mod
from cxrzoo.cli import main
from cxrzoo.weights import (
    UnsafeWeightsFileError,
    WeightsDownloadError,
    fetch_weights,
    file_hash,
    get_weights_file,
    verify_weights,
    weights_info,
)
from cxrzoo.weights.loading import check_weights_file, read_legacy_h5, resolve_weights

TAG = "res_cr_net.jms_lungs"
SECRET = b"root:x:0:0:secret password line\n" * 3  # 96 bytes = 12 float64


def _legacy_file(path: Path, make_bias) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        group = f.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        group.create_dataset("dense/kernel:0", data=np.zeros((4, 12)))
        make_bias(f, group, "dense/bias:0")
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    return path


def _external(secret):
    return lambda f, group, name: group.create_dataset(
        name, shape=(12,), dtype="<f8", external=[(str(secret), 0, len(SECRET))]
    )


def _virtual(secret_h5):
    def make(f, group, name):
        layout = h5py.VirtualLayout(shape=(12,), dtype="<f8")
        layout[:] = h5py.VirtualSource(str(secret_h5), "data", shape=(12,))
        group.create_virtual_dataset(name, layout)

    return make


def _external_link(secret_h5):
    def make(f, group, name):
        group[name] = h5py.ExternalLink(str(secret_h5), "data")

    return make


@pytest.fixture
def hostile_files(tmp_path, secret):
    secret_h5 = tmp_path / "other.h5"
    with h5py.File(secret_h5, "w") as f:
        f["data"] = np.frombuffer(SECRET, "<f8")
    return {
        "external storage": _legacy_file(tmp_path / "external.h5", _external(secret)),
        "virtual dataset": _legacy_file(tmp_path / "virtual.h5", _virtual(secret_h5)),
        "external link": _legacy_file(tmp_path / "link.h5", _external_link(secret_h5)),
    }


@pytest.mark.parametrize("kind", ["external storage", "virtual dataset", "external link"])
def test_weights_that_read_other_files_are_refused(hostile_files, kind):
    path = hostile_files[kind]
    with pytest.raises(UnsafeWeightsFileError, match=r"dense/dense/bias:0"):
        read_legacy_h5(path)
    with pytest.raises(UnsafeWeightsFileError, match=r"dense/dense/bias:0"):
        resolve_weights(str(path), arch="res_cr_net")
    with pytest.raises(UnsafeWeightsFileError):
        check_weights_file(path)


def test_a_keras_archive_holding_external_storage_is_refused(tmp_path, secret):
    inner = _legacy_file(tmp_path / "model.weights.h5", _external(secret))
    archive = tmp_path / "model.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "{}")
        z.write(inner, "model.weights.h5")
    with pytest.raises(UnsafeWeightsFileError, match="model.keras:model.weights.h5"):
        resolve_weights(str(archive), arch="res_cr_net")


def test_plain_weights_files_still_load(tmp_path):
    path = _legacy_file(tmp_path / "plain.h5", lambda f, g, name: g.create_dataset(name, data=np.arange(12.0)))
    check_weights_file(path)
    np.testing.assert_array_equal(read_legacy_h5(path)["dense"][1], np.arange(12.0))


@pytest.mark.timeout(20)
def test_a_fifo_is_not_a_weights_file(tmp_path):
    fifo = tmp_path / "weights.h5"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeWeightsFileError, match="FIFO"):
        resolve_weights(str(fifo), arch="res_cr_net")


# ------------------------------------------------------------------------------- HDF5 fuzzing (random structure)


@st.composite
def _h5_nodes(draw, depth=0):
    count = draw(st.integers(0, 4 if depth < 2 else 0))
    nodes = []
    for i in range(count):
        kind = draw(st.sampled_from(["group", "dataset", "soft", "huge", "attr", "external", "virtual", "extlink"]))
        nodes.append(
            (
                f"n{i}",
                kind,
                draw(_h5_nodes(depth + 1))
                if kind == "group"
                else draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)),
            )
        )
    return nodes


def _build(group, nodes, secret, secret_h5):
    for name, kind, payload in nodes:
        if kind == "group":
            _build(group.create_group(name), payload, secret, secret_h5)
        elif kind == "dataset":
            group.create_dataset(name, data=np.zeros(tuple(payload), np.float32))
        elif kind == "soft":
            group[name] = h5py.SoftLink("/")
        elif kind == "huge":  # declares 8 TB of unwritten chunks
            group.create_dataset(name, shape=(2**40,), dtype="<f8", chunks=(1024,))
        elif kind == "attr":
            group.attrs["layer_names"] = [name.encode(), b"missing"]
            group.attrs["weight_names"] = [b"n0", b"nope"]
        elif kind == "external":
            group.create_dataset(name, shape=(12,), dtype="<f8", external=[(str(secret), 0, len(SECRET))])
        elif kind == "virtual":
            _virtual(secret_h5)(None, group, name)
        else:
            _external_link(secret_h5)(None, group, name)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=5000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(nodes=_h5_nodes(), root_attrs=st.booleans())
def test_random_hdf5_structures_give_clear_errors(tmp_path_factory, nodes, root_attrs):
    folder = tmp_path_factory.mktemp("fuzz")
    secret = folder / "secret.txt"
    secret.write_bytes(SECRET)
    secret_h5 = folder / "other.h5"
    with h5py.File(secret_h5, "w") as f:
        f["data"] = np.frombuffer(SECRET, "<f8")
    path = folder / "weights.h5"
    with h5py.File(path, "w") as f:
        _build(f, nodes, secret, secret_h5)
        if root_attrs:
            f.attrs["layer_names"] = [n.encode() for n, _, _ in nodes] or [b"x"]
    for call in (check_weights_file, read_legacy_h5):
        try:
            result = call(path)
        except ValueError as err:  # UnsafeWeightsFileError included
            assert str(path) in str(err)
            continue
        if result:
            for arrays in result.values():
                assert all(SECRET not in a.tobytes() for a in arrays)


# --------------------------------------------------------------------------------------------- downloads


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _serve_as(monkeypatch, urls):
    entry = weights_info(TAG)
    patched = dataclasses.replace(entry, files=(dataclasses.replace(entry.files[0], urls=tuple(urls)),))
    monkeypatch.setattr(files_mod, "weights_info", lambda t: patched if t == TAG else weights_info(t))
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)


def _put(root: Path, folder: str, data: bytes) -> str:
    (root / folder).mkdir(exist_ok=True)
    name = weights_info(TAG).files[0].filename
    (root / folder / name).write_bytes(data)
    return f"{folder}/{name}"


@pytest.mark.loopback
def test_a_corrupt_body_falls_through_to_the_next_url(shared_weights, server, tmp_path, monkeypatch):
    root, base = server
    good = (shared_weights / weights_info(TAG).files[0].filename).read_bytes()
    bad = bytearray(good)
    bad[100] ^= 1
    _serve_as(monkeypatch, [f"{base}/{_put(root, 'bad', bytes(bad))}", f"{base}/{_put(root, 'good', good)}"])
    path = get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert file_hash(path, "sha256") == weights_info(TAG).files[0].sha256


@pytest.mark.loopback
def test_a_body_longer_than_the_manifest_size_is_not_read(shared_weights, server, tmp_path, monkeypatch):
    root, base = server
    good = (shared_weights / weights_info(TAG).files[0].filename).read_bytes()
    _serve_as(monkeypatch, [f"{base}/{_put(root, 'long', good + bytes(10 * 2**20))}"])
    with pytest.raises(WeightsDownloadError, match="more than the published 525,928"):
        get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert not any((tmp_path / "cache").rglob("*.part"))


def test_the_size_cap_holds_without_a_content_length(tmp_path, monkeypatch):
    class Endless:
        length = None
        sent = 0

        def read(self, n):
            Endless.sent += n
            return b"\0" * n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    _serve_as(monkeypatch, ["http://example.invalid/w.h5"])
    monkeypatch.setattr(files_mod.urllib.request, "urlopen", lambda url, timeout: Endless())
    with pytest.raises(WeightsDownloadError, match="more than the published"):
        get_weights_file(TAG, cache_dir=tmp_path, offline=False, progress=False)
    assert Endless.sent <= weights_info(TAG).files[0].size + 2**20


def test_stale_partial_downloads_are_removed_at_the_next_resolve(shared_weights, tmp_path):
    folder = tmp_path / "weights" / TAG
    folder.mkdir(parents=True)
    name = weights_info(TAG).files[0].filename
    stale = folder / f".{name}.k1ll3d.part"
    stale.write_bytes(b"half a file")
    busy = folder / f".{name}.busy.part"
    busy.write_bytes(b"being written")
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # a download in progress in another process holds this lock
        get_weights_file(TAG, cache_dir=tmp_path)
    assert not stale.exists()
    assert busy.exists()


# ------------------------------------------------------------------------------------- verify and permissions


def test_verify_all_passes_on_the_complete_mirror(shared_weights, capsys):
    assert main(["weights", "verify", "--all"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    for tag in ("covid_cxnet.chexnet_init", "covid_cxnet_lung_unet.montgomery_shenzhen"):
        assert "unobtainable by design" in lines[tag]
    assert sum("ok:" in line for line in lines.values()) == len(lines) - 2
    print(out)


def test_an_unreadable_mirror_file_is_reported_not_raised(shared_weights, monkeypatch, capsys):
    real = files_mod.file_hash

    def denied(path, algorithm):
        if Path(path).name == weights_info(TAG).files[0].filename:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, algorithm)

    monkeypatch.setattr(files_mod, "file_hash", denied)
    results = {r.tag: r for r in verify_weights()}
    assert results[TAG].status == "unreadable" and "Permission denied" in results[TAG].detail
    assert results["res_cr_net.v7_lungs"].status == "ok"
    assert main(["weights", "verify", TAG]) == 1
    assert "UNREADABLE" in capsys.readouterr().out


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_mirror_and_cache_files_follow_the_umask(shared_weights, tmp_path, umask_022, monkeypatch):
    (path,) = fetch_weights(TAG, tmp_path / "mirror")
    assert path.stat().st_mode & 0o777 == 0o644
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH")
    monkeypatch.setattr(
        files_mod.urllib.request,
        "urlopen",
        lambda url, timeout: open(shared_weights / weights_info(TAG).files[0].filename, "rb"),  # noqa: SIM115
    )
    cached = get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert cached.parent == tmp_path / "cache" / "weights" / TAG
    assert cached.stat().st_mode & 0o777 == 0o644


def _python_for_nobody() -> tuple[list[str], dict[str, str]]:
    """An interpreter user nobody can run with cxrzoo importable: this one, else the system Python 3 on this
    venv's packages (a venv made from a Python under /root, mode 0700, is not executable by others); or a skip."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    repo = Path(__file__).resolve().parents[2]
    site = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
    candidates = [([sys.executable], {})]
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system and site:
        candidates.append(([system], {"PYTHONPATH": os.pathsep.join([str(repo), *site])}))
    reasons = []
    for command, extra in candidates:
        try:
            probe = subprocess.run(
                [*command, "-c", "import cxrzoo.cli"],
                preexec_fn=_become_nobody,
                env={**os.environ, **extra},
                capture_output=True,
                text=True,
                timeout=120,
            )
        except OSError as exc:
            reasons.append(f"{command[0]}: {exc}")
            continue
        if probe.returncode == 0:
            return command, extra
        reasons.append(f"{command[0]}: {probe.stderr.strip()[-200:]}")
    pytest.skip("user nobody cannot run Python with cxrzoo here: " + "; ".join(reasons))


def _become_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_a_second_user_can_verify_a_shared_mirror(shared_weights, umask_022):
    command, extra = _python_for_nobody()
    top = Path(tempfile.mkdtemp(prefix="cxrzoo-shared-"))
    try:
        top.chmod(0o755)
        fetch_weights(TAG, top / "mirror")
        home = top / "home"
        home.mkdir()
        env = {
            **os.environ,
            "CXRZOO_WEIGHTS_PATH": str(top / "mirror"),
            "CXRZOO_HOME": str(home),
            "CXRZOO_OFFLINE": "1",
            "HOME": str(home),
            **extra,
        }
        result = subprocess.run(
            [*command, "-m", "cxrzoo", "weights", "verify", TAG],
            env=env,
            preexec_fn=_become_nobody,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"ok: {top / 'mirror'}" in result.stdout
    finally:
        shutil.rmtree(top)


def test_a_closed_pipe_ends_the_command_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: `cxrzoo weights list | head -0`
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cxrzoo", "weights", "info", TAG],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert result.stderr == ""


def test_weights_info_json_is_unchanged(capsys):
    assert main(["weights", "info", TAG]) == 0
    assert json.loads(capsys.readouterr().out)["tag"] == TAG
