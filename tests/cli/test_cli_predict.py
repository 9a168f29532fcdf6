"""``cxrzoo predict``: the README's command on real images, JSON lines, heat maps, per-file errors, arguments."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cxrzoo.batch import tasks
from cxrzoo.cli import main
from cxrzoo.cli.predict import rewrite_argv

IMAGES = ("fixtures", "covid_cxnet", "images")


@pytest.fixture
def cached_model(published_cxrnet, shared_weights, monkeypatch):
    """In-process runs reuse the session's model instead of building it per command."""
    monkeypatch.setitem(tasks._MODELS, "cxrnet.hfhs_v7", published_cxrnet)
    return published_cxrnet


def test_readme_command_on_four_real_images(shared, shared_weights, tmp_path):
    """The README's command (the 0.1 form ``--heatmaps DIR``), as a user runs it: a fresh process, offline."""
    folder = shared(*IMAGES)
    images = sorted(str(p) for p in folder.glob("*.jpg"))
    assert len(images) == 4
    out = tmp_path / "out"
    env = {**os.environ, "CXRZOO_WEIGHTS_PATH": str(shared_weights), "CXRZOO_OFFLINE": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must silence TensorFlow by itself
    result = subprocess.run(
        [sys.executable, "-m", "cxrzoo", "predict", "--json", "--heatmaps", str(out), *images],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == images
    from cxrzoo.preprocessing import read_image

    for record in records:
        print(f"{os.path.basename(record['path'])}: covid {record['p_covid']:.4f}, lungs {record['lung_fraction']:.3f}")
        assert record["tag"] == "cxrnet.hfhs_v7"
        assert abs(record["p_covid"] + record["p_non_covid"] - 1.0) < 1e-5
        assert 0.05 < record["lung_fraction"] < 0.8
        assert record["positive"] == (record["p_covid"] >= 0.5)
        name = os.path.basename(record["path"])
        assert record["heatmap_path"] == f"artifacts/{name}.heatmaps.png"
        maps = np.load(out / record["heatmap_maps_path"])
        # at the image's own size, not the model's 300×340
        assert maps["difference"].shape == read_image(record["path"]).shape
        difference, positive, inside = maps["difference"], maps["positive"], maps["mask"]
        assert difference.min() >= -1 and difference.max() <= 1 and not difference[~inside].any()
        np.testing.assert_allclose(difference[inside], 2 * positive[inside] - 1, atol=1e-5)
    table = (out / "results.csv").read_text().splitlines()
    assert len(table) == 5 and table[0].startswith("path,sha256,tag,cxrzoo_version,p_covid,p_non_covid")
    # stderr carries only our progress bar and the summary: no TensorFlow start-up noise
    noise = [
        line
        for line in result.stderr.replace("\r", "\n").splitlines()
        if line.strip() and "image" not in line and "%" not in line
    ]
    assert not noise, noise
    assert not list(out.rglob(".tmp-*"))  # no temporary files left behind


def test_unreadable_files_get_an_error_line_and_the_rest_is_scored(shared, cached_model, tmp_path, capsys):
    good = str(shared(*IMAGES, "038.jpg"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    missing = str(tmp_path / "missing.jpg")
    status = main(["predict", "--json", "--batch-size", "2", str(broken), good, missing])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [r["path"] for r in lines] == [str(broken), good, missing]
    assert "error" in lines[0] and "broken.png" in lines[0]["error"]
    assert "error" in lines[2] and "missing.jpg" in lines[2]["error"]
    assert lines[1]["p_covid"] == pytest.approx(_score(shared, cached_model), abs=1e-5)


def _score(shared, model):
    """038.jpg scored through the Python API, for comparison with the command's output."""
    import cxrzoo
    from cxrzoo.preprocessing import read_image

    image = cxrzoo.prepare_cxrnet_input(read_image(shared(*IMAGES, "038.jpg"), native_depth=True))
    out = model(image[None, ..., None].astype("float32"), training=False)  # eager: no extra tracing
    return float(out["probabilities"][0, 0])


def test_text_output_and_a_blank_image(cached_model, tmp_path, capsys):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(blank)
    status = main(["predict", str(blank)])
    captured = capsys.readouterr()
    assert status == 1 and captured.out == ""
    assert "blank.png" in captured.err and "no lung region" in captured.err


def test_text_lines_name_the_scores(shared, cached_model, capsys):
    path = str(shared(*IMAGES, "038.jpg"))
    assert main(["predict", path]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}\tcovid 0.0042\tnon_covid 0.9958\tlungs 57.0%\tnon_covid")


def test_heatmap_names_stay_distinct(shared, cached_model, tmp_path, capsys):
    import shutil

    source = shared(*IMAGES, "218.jpg")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = shutil.copy(source, tmp_path / "a" / "x.jpg"), shutil.copy(source, tmp_path / "b" / "x.jpg")
    status = main(["predict", "--heatmaps", "-o", str(tmp_path / "maps"), str(first), str(second)])
    out = capsys.readouterr().out.splitlines()
    assert status == 0 and len(out) == 2 and out[0].split("\t")[1:5] == out[1].split("\t")[1:5]
    figures = sorted(p.name for p in (tmp_path / "maps" / "artifacts").glob("*.png"))
    assert figures == ["x.jpg.heatmaps.png", "x.jpg~2.heatmaps.png"]


def test_jit_flag_reaches_the_compiled_step(shared, cached_model, monkeypatch, capsys):
    import cxrzoo.models.cxrnet.heatmaps as heatmaps

    seen = []
    real = heatmaps.cxrnet_scores
    monkeypatch.setattr(
        heatmaps,
        "cxrnet_scores",
        lambda *a, **k: seen.append(k["jit_compile"]) or real(*a, **{**k, "jit_compile": False}),
    )
    assert main(["predict", "--jit", str(shared(*IMAGES, "038.jpg"))]) == 0
    assert main(["predict", str(shared(*IMAGES, "038.jpg"))]) == 0
    assert seen == [True, False]


def test_arguments_are_checked(capsys):
    for argv in (["predict", "--batch-size", "0", "x.png"], ["predict", "--engine", "spark", "x.png"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err
    assert main(["predict"]) == 2
    assert "give image files, folders" in capsys.readouterr().err
    assert main(["predict", "--format", "parquet", "x.png"]) == 2
    assert "need an output folder" in capsys.readouterr().err


def test_the_legacy_heatmaps_form_means_the_output_folder():
    assert rewrite_argv(["predict", "--heatmaps", "out/", "a.png"]) == ["predict", "--heatmaps", "-o", "out/", "a.png"]
    for argv in (
        ["predict", "--heatmaps", "-o", "out", "a.png"],
        ["predict", "-o", "out", "--heatmaps", "a.png"],
        ["predict", "--output=out", "--heatmaps", "a.png"],
        ["predict", "a.png"],
        ["weights", "--heatmaps", "x"],
    ):
        assert rewrite_argv(argv) == argv


def test_degenerate_images_are_refused_not_scored(cached_model, tmp_path, capsys):
    from PIL import Image

    column = tmp_path / "column.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (5000, 1), dtype=np.uint8)).save(column)
    assert main(["predict", "--json", str(column)]) == 1
    record = json.loads(capsys.readouterr().out)
    assert "probabilities" not in record and "too small for a chest radiograph" in record["error"]


def test_heatmaps_follow_the_umask_and_glyph_warnings_stay_off_stderr(shared, cached_model, tmp_path, capsys):
    import warnings

    source = shared(*IMAGES, "038.jpg")
    named = tmp_path / "患者-038.jpg"  # DejaVu Sans has no CJK glyphs: Matplotlib warns per glyph when drawing
    shutil.copyfile(source, named)
    old = os.umask(0o022)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["predict", "--heatmaps", str(tmp_path / "maps"), str(named)]) == 0
    finally:
        os.umask(old)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    written = sorted(p for p in (tmp_path / "maps").rglob("*") if p.is_file())
    assert {p.name for p in written} >= {"results.csv", "患者-038.jpg.heatmaps.png", "患者-038.jpg.heatmaps.npz"}
    assert {p.stat().st_mode & 0o777 for p in written} == {0o644}
    capsys.readouterr()


def test_a_fresh_cli_process_starts_lean_and_runs_one_op_at_a_time():
    # what keeps `cxrzoo predict` under its memory target (docs/performance.md): Keras imported without
    # scikit-learn and SciPy, and TensorFlow running one operation at a time; both in a fresh process only
    code = (
        "import sys\n"
        "from cxrzoo.cli.predict import _lean_start\n"
        "_lean_start()\n"
        "import tensorflow as tf\n"
        "threads = tf.config.threading.get_inter_op_parallelism_threads()\n"
        "print(threads, 'sklearn' in sys.modules, 'scipy' in sys.modules)\n"
        "import sklearn\n"  # hidden only while Keras was imported
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "False", "False"]
