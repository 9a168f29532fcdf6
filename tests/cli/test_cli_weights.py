"""The ``cxrzoo`` command line: models and weights subcommands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from cxrzoo.cli import main
from cxrzoo.weights import weights_info


def test_weights_list(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "res_cr_net.v7_lungs" in out and "git-blob-sha1 only" in out


def test_weights_list_json_filtered(capsys):
    assert main(["weights", "list", "--arch", "res_cr_net", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["tag"] for r in rows] == ["res_cr_net.jms_lungs", "res_cr_net.v7_lungs"]


def test_weights_info_prints_the_entry(capsys):
    assert main(["weights", "info", "cxrnet_classifier.hfhs_ensemble6"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["paper_metrics"]["roc_auc"] == 0.852


def test_unknown_tag_is_an_error(capsys):
    assert main(["weights", "info", "nope.nope"]) == 1
    assert "unknown weights tag 'nope.nope'" in capsys.readouterr().err


def test_fetch_to_dest_and_verify(shared_weights, tmp_path, capsys):
    assert main(["weights", "fetch", "res_cr_net.jms_lungs", "--dest", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / weights_info("res_cr_net.jms_lungs").files[0].filename).is_file()
    assert main(["weights", "verify", "res_cr_net.jms_lungs"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_verify_fails_on_a_tampered_mirror(shared_weights, tmp_path, monkeypatch, capsys):
    name = weights_info("res_cr_net.jms_lungs").files[0].filename
    shutil.copyfile(shared_weights / name, tmp_path / name)
    data = bytearray((tmp_path / name).read_bytes())
    data[-5] ^= 1
    (tmp_path / name).write_bytes(bytes(data))
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(tmp_path))
    assert main(["weights", "verify", "res_cr_net.jms_lungs"]) == 1
    assert "HASH MISMATCH" in capsys.readouterr().out


def test_verify_all_reports_missing_files(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(tmp_path))
    assert main(["weights", "verify", "--all"]) == 1
    assert "missing" in capsys.readouterr().out


def test_fetch_offline_miss_exits_nonzero(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(tmp_path))
    assert main(["weights", "fetch", "covid_cxnet.chexnet_init"]) == 1
    assert "cxrzoo weights fetch covid_cxnet.chexnet_init" in capsys.readouterr().err


def test_models_lists_registered_architectures(capsys):
    assert main(["models", "res_cr_net"]) == 0
    assert "res_cr_net.v7_lungs" in capsys.readouterr().out


def test_console_script_and_module_entry_points():
    # the venv's scripts folder need not be on PATH (.ci/run calls .venv/bin/python directly)
    exe = shutil.which("cxrzoo", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if exe is None:
        pytest.skip("console script not installed (package not pip-installed)")
    for cmd in ([exe, "weights", "list"], [sys.executable, "-m", "cxrzoo", "weights", "list"]):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "bone_suppression.jsrt_v2" in result.stdout
