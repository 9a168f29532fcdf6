"""The Ray engine on a local Ray: the local engine's table, byte for byte, and the same resumability."""

from __future__ import annotations

import shutil

import pytest

from cxrzoo.batch import predict_files, tasks

VAL = ("data", "v7_covid_lungs", "val", "images")


@pytest.mark.loopback
def test_the_ray_engine_writes_the_local_engines_table_and_resumes(shared, shared_weights, published_cxrnet, tmp_path):
    pytest.importorskip("ray", reason='the Ray engine needs the ray extra: pip install "cxrzoo[ray]"')
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted(shared(*VAL).glob("*.png"))[:20]:
        shutil.copy(path, folder / path.name)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    tasks._MODELS["cxrnet.hfhs_v7"] = published_cxrnet  # the local run reuses the session's model
    try:
        summary = predict_files([folder], local, model="cxrnet")
    finally:
        tasks._MODELS.pop("cxrnet.hfhs_v7", None)
    assert summary.results == 20 and summary.errors == 0

    # the Ray run takes over a folder where an interrupted run completed 8 rows
    (on_ray / ".cxrzoo-predict").mkdir(parents=True)
    journal = (local / ".cxrzoo-predict" / "journal.jsonl").read_bytes().splitlines(keepends=True)
    (on_ray / ".cxrzoo-predict" / "journal.jsonl").write_bytes(b"".join(journal[:8]))
    summary = predict_files([folder], on_ray, model="cxrnet", engine="ray", ray_options={"num_cpus": 2})
    assert (summary.results, summary.skipped, summary.errors) == (20, 8, 0)
    for name in ("results.csv", "errors.csv"):
        assert (on_ray / name).read_bytes() == (local / name).read_bytes()
