"""``cxrzoo predict -o`` on real images: every model kind, input order, resumption after SIGKILL, edge cases."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cxrzoo.batch import tasks
from cxrzoo.cli import main

VAL = ("data", "v7_covid_lungs", "val")


@pytest.fixture
def cxrnet_model(published_cxrnet, shared_weights, monkeypatch):
    """In-process runs use the session's CXR-Net instead of building their own."""
    monkeypatch.setitem(tasks._MODELS, "cxrnet.hfhs_v7", published_cxrnet)
    return published_cxrnet


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _images(shared, n: int | None = None) -> list[Path]:
    return sorted((shared(*VAL) / "images").glob("*.png"))[:n]


def _copy(paths, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copy(p, folder / p.name)
    return folder


def _complete_sets(out: Path, rows, columns) -> None:
    """Every artifact belongs to a row and every row's artifacts exist; no temporary file is left."""
    named = {r[c] for r in rows for c in columns if r[c]}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "artifacts").rglob("*") if p.is_file()}
    assert on_disk == named
    assert not list(out.rglob(".tmp-*"))


def test_cxrnet_over_the_val_folder_gives_60_rows_in_input_order(shared, cxrnet_model, tmp_path):
    import cxrzoo

    val = shared(*VAL)
    out = tmp_path / "out"
    status = main(["predict", "--quiet", "-o", str(out), str(val)])
    rows = _rows(out / "results.csv")
    images = _images(shared)
    assert len(images) == 60
    assert [r["path"] for r in rows] == [os.path.join(str(val), "images", p.name) for p in images]
    # the folder also holds the 60 human lung masks (lungs/*.png): refused as masks, each with its reason
    errors = _rows(out / "errors.csv")
    assert status == 1 and len(errors) == 60
    assert all("lungs" in e["path"] and "two grey levels" in e["reason"] for e in errors)
    p = np.array([[float(r["p_covid"]), float(r["p_non_covid"])] for r in rows])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    members = np.array([[float(r[f"p_covid_member{k}"]) for k in range(6)] for r in rows])
    np.testing.assert_allclose(members.std(axis=1), [float(r["p_covid_member_std"]) for r in rows], atol=1e-6)
    assert {r["tag"] for r in rows} == {"cxrnet.hfhs_v7"} and {r["cxrzoo_version"] for r in rows} == {
        cxrzoo.__version__
    }
    assert [r["positive"] == "true" for r in rows] == list(p[:, 0] >= 0.5)
    # the same scores as the Python API (the unfolded model through Keras' predict) on a few of them
    pipe = cxrzoo.pipeline("cxrnet", model=cxrnet_model)
    expected = [r["probabilities"]["covid"] for r in pipe.predict([str(x) for x in images[:4]])]
    np.testing.assert_allclose(p[:4, 0], expected, atol=2e-5)
    print(f"CXR-Net on the 60 public COVID-19 images: {np.mean(p[:, 0] >= 0.5):.0%} called positive")


def test_res_cr_net_masks_equal_segment_lungs_at_each_images_size(shared, shared_weights, tmp_path):
    import cxrzoo
    from cxrzoo.preprocessing import read_image

    val = shared(*VAL)
    out = tmp_path / "out"
    main(["predict", "--quiet", "--model", "res_cr_net", "-o", str(out), str(val / "images")])
    rows = _rows(out / "results.csv")
    images = _images(shared)
    assert [Path(r["path"]).name for r in rows] == [p.name for p in images]
    expected = cxrzoo.segment_lungs([str(p) for p in images])
    for row, image, ref in zip(rows, images, expected):
        mask = read_image(out / row["mask_path"]) > 0
        assert mask.shape == read_image(image).shape
        np.testing.assert_array_equal(mask, ref["mask"], err_msg=row["path"])
        assert float(row["left_fraction"]) == pytest.approx(ref["areas"]["left"]["fraction"], abs=1e-9)
        assert float(row["lung_fraction"]) == pytest.approx(ref["areas"]["total"]["fraction"], abs=1e-9)
    _complete_sets(out, rows, ["mask_path"])


def test_a_run_killed_halfway_resumes_to_the_same_table(shared, cxrnet_model, tmp_path):
    folder = _copy(_images(shared, 12), tmp_path / "in")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(["predict", "--quiet", "--heatmaps", "-o", str(reference), str(folder)]) == 0

    env = {**os.environ, "CXRZOO_WEIGHTS_PATH": os.environ["CXRZOO_WEIGHTS_PATH"], "CXRZOO_OFFLINE": "1"}
    command = [sys.executable, "-m", "cxrzoo", "predict", "--quiet", "--heatmaps", "--batch-size", "2"]
    child = subprocess.Popen([*command, "-o", str(resumed), str(folder)], env=env, stderr=subprocess.PIPE)
    journal = resumed / ".cxrzoo-predict" / "journal.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and child.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 6:
            break
        time.sleep(0.05)
    assert child.poll() is None, child.stderr.read().decode()
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    done = journal.read_bytes().count(b"\n")
    assert 6 <= done < 12 and not (resumed / "results.csv").exists()

    assert main(["predict", "--quiet", "--heatmaps", "-o", str(resumed), str(folder)]) == 0
    for name in ("results.csv", "errors.csv"):
        assert (resumed / name).read_bytes() == (reference / name).read_bytes()
    rows = _rows(resumed / "results.csv")
    assert len(rows) == 12
    _complete_sets(resumed, rows, ["heatmap_path", "heatmap_maps_path"])
    worst = 0.0
    for row in rows:  # the maps are the uninterrupted run's (to float rounding across processes)
        got, want = np.load(resumed / row["heatmap_maps_path"]), np.load(reference / row["heatmap_maps_path"])
        np.testing.assert_array_equal(got["mask"], want["mask"])
        for key in ("positive", "negative", "difference"):
            worst = max(worst, float(np.abs(got[key] - want[key]).max()))
    assert worst < 1e-5
    print(f"largest heat-map difference from the uninterrupted run: {worst:.2g}")
    print(f"killed after {done} of 12 rows; the rerun computed {12 - done}")


def test_colliding_names_a_duplicate_a_long_name_and_a_corrupt_file(shared, shared_weights, tmp_path, capsys):
    from cxrzoo.preprocessing import read_image

    a, b, c, d = _images(shared, 4)
    folder = tmp_path / "in"
    folder.mkdir()
    long_name = "p" * 235 + ".png"
    for source, name in ((a, "x.png"), (b, "x.jpg"), (c, "x-2.png"), (d, long_name)):
        shutil.copy(source, folder / name)
    (folder / "m_corrupt.png").write_bytes(a.read_bytes()[:300])  # in the middle of the sorted order
    out = tmp_path / "out"
    duplicate = str(folder / "x.png")
    status = main(["predict", "--model", "res_cr_net.v7_lungs", "-o", str(out), str(folder), duplicate])
    captured = capsys.readouterr()
    assert status == 1 and "m_corrupt.png" in captured.err
    rows = _rows(out / "results.csv")
    names = [Path(r["path"]).name for r in rows]
    assert names == [long_name, "x-2.png", "x.jpg", "x.png", "x.png"]  # sorted; the corrupt one is missing
    assert [Path(r["path"]).name for r in _rows(out / "errors.csv")] == ["m_corrupt.png"]
    paths = [r["mask_path"] for r in rows]
    assert len(set(paths)) == 5 and all(len(Path(p).name.encode()) < 255 for p in paths)
    assert paths[3:] == ["artifacts/x.png.mask.png", "artifacts/x.png~2.mask.png"]
    # each mask is its own image's (nothing was overwritten by a namesake)
    for row in rows:
        assert read_image(out / row["mask_path"]).shape == read_image(row["path"]).shape
    assert (out / paths[3]).read_bytes() == (out / paths[4]).read_bytes()
    _complete_sets(out, rows, ["mask_path"])
    assert len(captured.out.splitlines()) == 5  # one line per row, on stdout


def test_an_unusable_output_folder_fails_before_any_model_is_built(tmp_path, monkeypatch, capsys):
    def no_model(name):
        raise AssertionError("a model was built")

    monkeypatch.setattr(tasks, "build_model", no_model)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    image = tmp_path / "x.png"
    image.write_bytes(b"x")
    assert main(["predict", "-o", str(blocker / "out"), str(image)]) == 1
    assert "cannot create the output folder" in capsys.readouterr().err


def test_the_batch_size_and_threads_do_not_change_the_table(shared, shared_weights, tmp_path):
    folder = _copy(_images(shared, 5), tmp_path / "in")
    for n, threads in ((1, 1), (3, 1), (3, 3)):
        out = str(tmp_path / f"b{n}t{threads}")
        options = ["--batch-size", str(n), "--threads", str(threads)]
        main(["predict", "--quiet", "--model", "res_cr_net", *options, "-o", out, str(folder)])
    tables = {(tmp_path / f"{name}" / "results.csv").read_bytes() for name in ("b1t1", "b3t1", "b3t3")}
    assert len(tables) == 1


def test_covid_cxnet_base_scores_equal_the_pipeline(shared, shared_weights, tmp_path):
    import cxrzoo

    images = [str(p) for p in _images(shared, 3)]
    out = tmp_path / "out"
    command = ["predict", "--quiet", "--model", "covid_cxnet_base.v_free", "--format", "parquet", "-o", str(out)]
    assert main([*command, *images]) == 0
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow (the ray extra)")
    rows = pq.read_table(out / "results.parquet").to_pylist()
    expected = cxrzoo.pipeline("covid_cxnet_base.v_free").predict(images)
    assert [r["path"] for r in rows] == images
    np.testing.assert_allclose([r["p_covid"] for r in rows], [e["probabilities"]["covid"] for e in expected], atol=1e-6)


def test_bone_suppression_writes_the_suppressed_image(shared, shared_weights, tmp_path):
    from cxrzoo.models.covid_xnet import suppress_bones
    from cxrzoo.preprocessing import read_image

    image = _images(shared, 1)[0]
    out = tmp_path / "out"
    assert main(["predict", "--quiet", "--model", "bone_suppression", "-o", str(out), str(image)]) == 0
    row = _rows(out / "results.csv")[0]
    np.testing.assert_array_equal(read_image(out / row["bone_suppressed_path"]), suppress_bones(read_image(image)))


def test_a_model_without_an_image_input_is_refused_with_the_choices(capsys, tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(b"x")
    assert main(["predict", "--model", "cxrnet_classifier", str(image)]) == 2
    err = capsys.readouterr().err
    assert "takes [X, M]" in err and "cxrnet.hfhs_v7" in err and "res_cr_net.jms_lungs" in err
    assert main(["predict", "--model", "nope", str(image)]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
