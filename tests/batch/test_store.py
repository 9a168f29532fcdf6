"""ResultStore: the output folder's checks, atomic artifacts, the journal, clean-up after a kill, the final tables."""

from __future__ import annotations

import json
import os

import pytest

from cxrzoo.batch.inputs import InputFile
from cxrzoo.batch.store import OutputError, ResultStore, check_output_folder
from cxrzoo.batch.tasks import Layout

LAYOUT = Layout(
    columns=(("p_covid", "float"), ("positive", "bool"), ("warnings", "str")), artifacts=(("mask.png", "mask_path"),)
)


def _result(key, sha, p, artifact=b"png"):
    return {
        "index": 0,
        "path": f"in/{key}",
        "key": key,
        "sha256": sha,
        "error": "",
        "values": {"p_covid": p, "positive": p >= 0.5, "warnings": ""},
        "artifacts": {"mask.png": artifact},
    }


def _store(folder, **kw):
    return ResultStore(folder, model="m.tag", layout=LAYOUT, options=kw.pop("options", {}), **kw)


def test_an_unusable_output_folder_is_refused_with_the_fix(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder; choose another -o"):
        check_output_folder(blocker)
    with pytest.raises(OutputError, match="cannot create the output folder"):
        check_output_folder(blocker / "out")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError, match="not writable"):
            check_output_folder(locked)
    made = check_output_folder(tmp_path / "new" / "deep")
    assert made.is_dir() and list(made.iterdir()) == []  # the probe file is gone


def test_rows_artifacts_and_the_final_tables_in_input_order(tmp_path):
    items = [InputFile(f"in/{k}", k, f"in/{k}") for k in ("b.png", "a.png", "bad.png", "a.png~2")]
    with _store(tmp_path / "out") as store:
        store.add(_result("a.png", "s1", 0.25))
        store.add(_result("b.png", "s2", 0.9))
        store.error("bad.png", "in/bad.png", "in/bad.png: truncated")
        store.add(_result("a.png~2", "s1", 0.25))
        assert store.finish(items) == {"results": 3, "errors": 1}
    out = tmp_path / "out"
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0] == "path,sha256,tag,cxrzoo_version,p_covid,positive,warnings,mask_path"
    assert [line.split(",")[0] for line in lines[1:]] == ["in/b.png", "in/a.png", "in/a.png~2"]
    assert lines[2].split(",")[4:6] == ["0.25", "false"]
    assert lines[3].endswith("artifacts/a.png~2.mask.png")
    assert (out / "artifacts" / "a.png~2.mask.png").read_bytes() == b"png"
    assert (out / "errors.csv").read_text() == "path,reason\nin/bad.png,in/bad.png: truncated\n"
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]


def test_a_rerun_skips_completed_rows_and_writes_the_same_bytes(tmp_path):
    items = [InputFile(f"in/{k}", k, f"in/{k}") for k in ("a.png", "b.png")]
    with _store(tmp_path / "full") as store:
        for key, sha, p in (("a.png", "s1", 0.1), ("b.png", "s2", 0.7)):
            store.add(_result(key, sha, p))
        store.finish(items)
    with _store(tmp_path / "split") as store:
        store.add(_result("a.png", "s1", 0.1))  # then the process dies
    with _store(tmp_path / "split") as store:
        assert store.done_keys() == {"a.png\0s1"}
        store.skipped("a.png", "s1")
        store.add(_result("b.png", "s2", 0.7))
        store.finish(items)
    for name in ("results.csv", "errors.csv"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()


def test_a_changed_file_is_not_taken_as_done(tmp_path):
    with _store(tmp_path) as store:
        store.add(_result("a.png", "old", 0.1))
    with _store(tmp_path) as store:
        assert "a.png\0new" not in store.done_keys()


def test_what_a_kill_leaves_behind_is_cleaned_when_the_folder_is_opened(tmp_path):
    with _store(tmp_path) as store:
        store.add(_result("a.png", "s1", 0.1))
    journal = tmp_path / ".cxrzoo-predict" / "journal.jsonl"
    good = journal.read_bytes()
    journal.write_bytes(good + b'{"key": "b.png", "sha2')  # torn last line
    orphan = tmp_path / "artifacts" / "sub" / "b.png.mask.png"  # written, but its row never was
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a set")
    temp = tmp_path / "artifacts" / ".tmp-abc123"
    temp.write_bytes(b"partial")
    with _store(tmp_path) as store:
        assert store.done_keys() == {"a.png\0s1"}
    assert journal.read_bytes() == good
    assert not orphan.exists() and not temp.exists()
    assert (tmp_path / "artifacts" / "a.png.mask.png").exists()


def test_another_model_or_options_cannot_write_into_the_same_folder(tmp_path):
    with _store(tmp_path, options={"heatmaps": False}):
        pass
    with pytest.raises(OutputError, match="holds results of 'm.tag'.*use another -o"):
        _store(tmp_path, options={"heatmaps": True}).open()
    with pytest.raises(OutputError, match="holds results"):
        ResultStore(tmp_path, model="other.tag", layout=LAYOUT, options={"heatmaps": False}).open()


def test_two_runs_cannot_write_one_folder_at_once(tmp_path):
    with _store(tmp_path), pytest.raises(OutputError, match="another cxrzoo predict is writing"):
        _store(tmp_path).open()


def test_parquet_holds_the_same_table(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow (the ray extra)")
    items = [InputFile("in/a.png", "a.png", "in/a.png")]
    with _store(tmp_path, fmt="parquet") as store:
        store.add(_result("a.png", "s1", 0.123456789))
        store.finish(items)
    table = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert table[0]["p_covid"] == 0.123456789 and table[0]["positive"] is False
    assert table[0]["mask_path"] == "artifacts/a.png.mask.png"
    run = json.loads((tmp_path / ".cxrzoo-predict" / "run.json").read_text())
    assert run["model"] == "m.tag" and run["columns"][-1] == "mask_path"
