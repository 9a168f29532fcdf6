"""get_weights_file: mirror → cache → verified download, and every failure mode named clearly."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

import cxrzoo
from cxrzoo.weights import (
    UnknownWeightsError,
    WeightsDownloadError,
    WeightsHashError,
    WeightsNotFoundError,
    file_hash,
    get_weights_file,
    get_weights_files,
    weights_info,
)
from cxrzoo.weights import files as files_mod

TAG = "cxrnet_member.hfhs_fold3"


def _mirror_copy(shared_weights: Path, dest: Path, tag: str = TAG) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for wfile in weights_info(tag).files:
        shutil.copyfile(shared_weights / wfile.filename, dest / wfile.filename)
    return dest / weights_info(tag).files[0].filename


def _flip_one_byte(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resolves_from_the_mirror_offline(shared_weights, monkeypatch):
    monkeypatch.setenv("CXRZOO_OFFLINE", "1")
    path = cxrzoo.get_weights_file("res_cr_net.v7_lungs")
    assert path.parent == shared_weights
    assert path.name == "model_16F_5R1_0R2_2020-10-16_21_26_weights.h5"


def test_mirror_path_is_a_pathsep_list_searched_in_order(shared_weights, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    second = tmp_path / "second"
    expected = _mirror_copy(shared_weights, second)
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", os.pathsep.join(["", str(empty), str(second), str(shared_weights)]))
    assert get_weights_file(TAG) == expected


def test_checkpoint_tags_resolve_all_their_files(shared_weights):
    paths = get_weights_files("bone_suppression.jsrt_v2")
    assert [p.name for p in paths] == ["model.index", "model.data-00000-of-00001"]


def test_tampered_mirror_file_raises_with_both_hashes_and_path(shared_weights, tmp_path, monkeypatch):
    copy = _mirror_copy(shared_weights, tmp_path / "mirror")
    _flip_one_byte(copy)
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(tmp_path / "mirror"))
    with pytest.raises(WeightsHashError) as info:
        get_weights_file(TAG)
    err = info.value
    expected = weights_info(TAG).files[0].sha256
    assert err.expected == expected and err.actual == file_hash(copy, "sha256") and err.actual != expected
    assert Path(err.path) == copy
    assert expected in str(err) and err.actual in str(err) and str(copy) in str(err)


def test_tampered_cache_file_raises_instead_of_redownloading(shared_weights, tmp_path, monkeypatch):
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    cached = _mirror_copy(shared_weights, tmp_path / "cache" / "weights" / TAG)
    _flip_one_byte(cached, offset=10)
    with pytest.raises(WeightsHashError):
        get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False)


def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRZOO_HOME", str(tmp_path / "home_env"))
    assert files_mod.cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert files_mod.cache_root() == tmp_path / "home_env"
    monkeypatch.delenv("CXRZOO_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert files_mod.cache_root() == tmp_path / "user" / ".cache" / "cxrzoo"


def test_cache_hit_is_used_after_the_mirror(shared_weights, tmp_path, monkeypatch):
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    monkeypatch.setenv("CXRZOO_HOME", str(tmp_path / "home"))
    cached = _mirror_copy(shared_weights, tmp_path / "home" / "weights" / TAG)
    assert get_weights_file(TAG) == cached


def test_unknown_tag_lists_valid_tags():
    with pytest.raises(ValueError) as info:
        get_weights_file("res_cr_net.nonexistent")
    assert isinstance(info.value, UnknownWeightsError)
    assert "res_cr_net.v7_lungs" in str(info.value) and "cxrnet_member.hfhs_fold0" in str(info.value)


def test_offline_miss_is_actionable(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CXRZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        get_weights_file(TAG)
    text = str(info.value)
    wfile = weights_info(TAG).files[0]
    for needle in (
        TAG,
        wfile.filename,
        wfile.sha256,
        wfile.urls[0],
        str(tmp_path / "nowhere"),
        f"cxrzoo weights fetch {TAG}",
        "CXRZOO_WEIGHTS_PATH",
    ):
        assert needle in text


def test_offline_miss_of_a_blob_only_file_names_its_git_hash(monkeypatch):
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    with pytest.raises(WeightsNotFoundError, match="git blob SHA-1 4b43966d072ba751da5ba3921dd728ab4964a7bb"):
        get_weights_file("covid_cxnet.chexnet_init")


def test_git_blob_hash_matches_git(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(5000))
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert file_hash(path, "git-blob-sha1") == expected


# --- downloads, against a local HTTP server standing in for GitHub -------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = False

    def log_message(self, *args):  # keep the test log clean
        pass

    def do_GET(self):
        if not self.truncate:
            return super().do_GET()
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])  # the connection drops half-way


@pytest.fixture
def http_mirror(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handlers = {}

    def serve(truncate=False):
        handler = type("H", (_Handler,), {"truncate": truncate})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        handlers[server] = thread
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield root, serve
    for server in handlers:
        server.shutdown()
        server.server_close()


def _point_entry_at(monkeypatch, tag: str, base_url: str) -> None:
    entry = weights_info(tag)
    new_files = tuple(dataclasses.replace(f, urls=(f"{base_url}/{f.filename}",)) for f in entry.files)
    patched = dataclasses.replace(entry, files=new_files)
    monkeypatch.setattr(files_mod, "weights_info", lambda t: patched if t == tag else weights_info(t))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.loopback
def test_download_verifies_and_lands_atomically_in_the_cache(shared_weights, http_mirror, tmp_path, monkeypatch):
    root, serve = http_mirror
    _mirror_copy(shared_weights, root)
    _point_entry_at(monkeypatch, TAG, serve())
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH")
    path = get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert path == tmp_path / "cache" / "weights" / TAG / weights_info(TAG).files[0].filename
    assert file_hash(path, "sha256") == weights_info(TAG).files[0].sha256
    assert _leftovers(tmp_path / "cache") == [path.name]


@pytest.mark.loopback
def test_tampered_download_raises_and_leaves_nothing(shared_weights, http_mirror, tmp_path, monkeypatch):
    root, serve = http_mirror
    _flip_one_byte(_mirror_copy(shared_weights, root))
    _point_entry_at(monkeypatch, TAG, serve())
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH")
    with pytest.raises(WeightsHashError):
        get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert _leftovers(tmp_path / "cache") == []


@pytest.mark.loopback
def test_interrupted_download_leaves_no_partial_file(shared_weights, http_mirror, tmp_path, monkeypatch):
    root, serve = http_mirror
    _mirror_copy(shared_weights, root)
    _point_entry_at(monkeypatch, TAG, serve(truncate=True))
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH")
    with pytest.raises(WeightsDownloadError, match="could not download"):
        get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert _leftovers(tmp_path / "cache") == []


def test_keyboard_interrupt_mid_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class Stream(io.RawIOBase):
        calls = 0

        def read(self, n=-1):
            Stream.calls += 1
            if Stream.calls > 2:
                raise KeyboardInterrupt
            return b"x" * 1024

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(files_mod.urllib.request, "urlopen", lambda url, timeout: Stream())
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    with pytest.raises(KeyboardInterrupt):
        get_weights_file(TAG, cache_dir=tmp_path / "cache", offline=False, progress=False)
    assert Stream.calls == 3
    assert _leftovers(tmp_path / "cache") == []


def test_network_is_not_touched_offline(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("urlopen called while offline")

    monkeypatch.setattr(files_mod.urllib.request, "urlopen", refuse)
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    with pytest.raises(WeightsNotFoundError):
        get_weights_file(TAG, cache_dir=tmp_path, offline=True)


def test_fetch_copies_into_a_mirror_folder(shared_weights, tmp_path):
    dest = tmp_path / "usb"
    (path,) = cxrzoo.weights.fetch_weights(TAG, dest)
    assert path.parent == dest and file_hash(path, "sha256") == weights_info(TAG).files[0].sha256
    assert _leftovers(dest) == [path.name]
