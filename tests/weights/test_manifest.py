"""The weights manifest: schema, completeness against the mirror, pinned URLs, and the packaged copy."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
import pytest

from cxrzoo.weights import list_weights, weights_info
from cxrzoo.weights.manifest import read_manifest_text, read_schema

REPO = Path(__file__).resolve().parents[2]

ISSUE_TAGS = {
    "res_cr_net.v7_lungs",
    "res_cr_net.jms_lungs",
    "cxrnet_classifier.hfhs_ensemble6",
    *{f"cxrnet_member.hfhs_fold{k}" for k in range(6)},
    "covid_cxnet_base.v1_0",
    "covid_cxnet_base.v_free",
    "bone_suppression.jsrt_v2",
    "covid_cxnet.chexnet_init",
    "covid_cxnet_lung_unet.montgomery_shenzhen",
}
PINNED_COMMITS = {
    "dgattiwsu/CXR-Net": "8f3e749615d48b16897676ac7ddc28b9e0df578d",
    "armiro/COVID-CXNet": "3ade488b3828705706fc5f58c0667421d8b04a01",
    "hmchuong/ML-BoneSuppression": "0f9de5ff4cc1f793e27f9db52af35e631614a4c1",
}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(read_manifest_text())


def test_manifest_validates_against_its_schema(manifest):
    schema = read_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(manifest)


def test_schema_rejects_an_entry_without_hash(manifest):
    broken = json.loads(json.dumps(manifest))
    del broken["weights"][0]["files"][0]["sha256"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(read_schema()).validate(broken)


def test_top_level_manifest_is_the_packaged_one():
    assert (REPO / "weights_manifest.json").read_text(encoding="utf-8") == read_manifest_text()


def test_tags_are_exactly_the_published_ones():
    assert set(list_weights()) == ISSUE_TAGS


def test_urls_are_pinned_to_commits_and_name_the_file(manifest):
    for entry in manifest["weights"]:
        repo = entry["provenance"]["repository"]
        assert entry["provenance"]["commit"] == PINNED_COMMITS[repo]
        for wfile in entry["files"]:
            for url in wfile["urls"]:
                path = unquote(urlparse(url).path)
                assert f"/{PINNED_COMMITS[repo]}/" in path, url
                assert repo in url, url
                assert path.rsplit("/", 1)[1] == wfile["filename"], url


def test_unobtainable_files_carry_only_their_git_blob_hash():
    for tag, blob in [
        ("covid_cxnet.chexnet_init", "4b43966d072ba751da5ba3921dd728ab4964a7bb"),
        ("covid_cxnet_lung_unet.montgomery_shenzhen", "ec9193c45ed4b6377f75a6bbdcb792d9ce711b03"),
    ]:
        (wfile,) = weights_info(tag).files
        assert wfile.sha256 is None and wfile.git_blob_sha1 == blob
        assert "only" in wfile.describe_hash()


def test_every_mirror_file_has_an_entry_with_its_size_and_sha256(shared):
    folder = shared("weights")
    by_name = {f.filename: f for tag in list_weights() for f in weights_info(tag).files}
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert files
    for path in files:
        assert path.name in by_name, f"{path.name} has no manifest entry"
        wfile = by_name[path.name]
        assert wfile.size == path.stat().st_size
        assert wfile.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_entries_describe_contracts_and_limits(manifest):
    for entry in manifest["weights"]:
        assert entry["output"]["labels"] == entry["labels"]
        assert entry["limitations"] and entry["intended_use"]
        assert re.match(r"^[a-z0-9_]+$", entry["arch"])
        assert entry["tag"].split(".")[0] == entry["arch"]


def test_every_arch_is_a_registered_model():
    from cxrzoo.registry import list_models

    registered = set(list_models())
    for tag in list_weights():
        assert weights_info(tag).arch in registered, tag
