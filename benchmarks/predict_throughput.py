"""``cxrzoo predict`` with CXR-Net (scores only) against the model alone, cold start, memory, Ray vs local.

Measured in one run, on 200 real CXRs (``../shared/data/v7_covid_lungs/train``; copies of them if fewer), 2 cores:

* **throughput**: images/s of :func:`cxrzoo.batch.predict_files` (what ``cxrzoo predict -o`` runs: read, hash,
  prepare in threads, the model, the journal, the final table) against the **model-only bound** measured in the
  same process: the fastest in-process path to the same scores, :func:`cxrzoo.models.cxrnet.cxrnet_scores` (Module
  1 as its folded, polyphase inference copy, no backward pass) on the prepared tensors already in memory, at the
  same batch size. Both warm (model built, graph traced); the passes alternate, medians compared. Target ≥ 0.9.
* **cold start**: a fresh ``cxrzoo predict -o DIR IMAGE`` process on one image, from spawn to exit (the row is
  written just before). Target ≤ 8 s.
* **peak RSS** of a fresh ``cxrzoo predict`` process at the default batch size (16 images: four full batches).
  Target ≤ 1.2 GB.
* **Ray**: the same 200 images with ``--engine ray`` on a local Ray (``num_cpus=2``): steady-state images/s (first
  row to last row) against the local engine's steady state; the Ray run's wall time including Ray's start and the
  actor's model build is printed too. Target ≥ 0.85.

    python benchmarks/predict_throughput.py             # full run (about 5 minutes on an idle 2-core machine)
    python benchmarks/predict_throughput.py --quick     # 24 images, one pass: a smoke test
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
TARGETS = {"ratio": 0.9, "cold": 8.0, "rss_gb": 1.2, "ray": 0.85}


def _images(count: int) -> list[Path]:
    folders = [SHARED / "data" / "v7_covid_lungs" / split / "images" for split in ("train", "val")]
    paths = [p for f in folders if f.is_dir() for p in sorted(f.glob("*.png"))]
    if not paths:
        raise SystemExit(f"no images found under {SHARED} (set CXRZOO_SHARED)")
    return [paths[i % len(paths)] for i in range(count)]


def _manifest(paths: list[Path], folder: Path) -> Path:
    """A CSV of the images; repeated files (fewer images than asked for) become distinct copies."""
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[Path] = set()
    rows = []
    for i, path in enumerate(paths):
        if path in seen:
            copy = folder / f"copy{i}_{path.name}"
            shutil.copy(path, copy)
            path = copy
        seen.add(path)
        rows.append(str(path))
    manifest = folder / "images.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path"])
        writer.writerows([r] for r in rows)
    return manifest


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if "CXRZOO_WEIGHTS_PATH" not in env and (SHARED / "weights").is_dir():
        env["CXRZOO_WEIGHTS_PATH"] = str(SHARED / "weights")
    env.setdefault("CXRZOO_OFFLINE", "1")
    return env


def _child(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of ``python -m cxrzoo ARGS`` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cxrzoo", *args], env=_env(), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"cxrzoo {' '.join(args)} failed with status {proc.returncode}")
    return seconds, usage.ru_maxrss / 1e6  # ru_maxrss is in KB on Linux


class _Clock:
    """Timestamps of the rows as they are written (for steady-state rates)."""

    def __init__(self):
        self.times: list[float] = []

    def __call__(self, row) -> None:
        self.times.append(time.perf_counter())

    def rate(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="alternating passes of bound and predict")
    parser.add_argument("--quick", action="store_true", help="24 images, one pass, no Ray")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats, args.no_ray = 24, 1, True
    os.environ.update(_env())

    import numpy as np

    from cxrzoo.batch import DEFAULT_BATCH_SIZE, predict_files
    from cxrzoo.batch.tasks import build_model
    from cxrzoo.models.cxrnet import cxrnet_scores
    from cxrzoo.preprocessing import read_image
    from cxrzoo.preprocessing.recipes import recipe

    work = Path(tempfile.mkdtemp(prefix="cxrzoo-bench-"))
    try:
        paths = _images(args.images)
        manifest = _manifest(paths, work / "inputs")
        with open(manifest, newline="") as handle:
            sources = [row["path"] for row in csv.DictReader(handle)]
        batch = DEFAULT_BATCH_SIZE
        print(
            f"{len(sources)} images, batch size {batch}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )

        # cold start and memory first, while this process holds no model
        cold = [_child(["predict", "--quiet", "-o", str(work / f"cold{i}"), sources[0]]) for i in range(2)]
        rss_seconds, rss = _child(["predict", "--quiet", "-o", str(work / "rss"), *sources[:16]])

        model = build_model("cxrnet.hfhs_v7")
        prep = recipe(weights="cxrnet.hfhs_v7")
        x = np.stack([prep.prepare(read_image(s, native_depth=True))[0][..., 0] for s in sources])
        cxrnet_scores(model, x[:batch])  # trace once

        def bound() -> float:
            start = time.perf_counter()
            for i in range(0, len(x), batch):
                cxrnet_scores(model, x[i : i + batch])
            return len(x) / (time.perf_counter() - start)

        def predict(k: int) -> tuple[float, float, np.ndarray]:
            clock = _Clock()
            start = time.perf_counter()
            summary = predict_files(manifest=manifest, output=work / f"local{k}", model="cxrnet", on_row=clock)
            assert summary.results == len(sources), summary
            return len(sources) / (time.perf_counter() - start), clock.rate(), work / f"local{k}" / "results.csv"

        bounds, rates, steady = [], [], []
        for k in range(args.repeats):
            bounds.append(bound())
            rate, steady_rate, table = predict(k)
            rates.append(rate)
            steady.append(steady_rate)
            print(f"pass {k + 1}: model only {bounds[-1]:.2f} images/s, cxrzoo predict {rates[-1]:.2f} images/s")
        with open(table, newline="") as handle:
            got = np.array([float(r["p_covid"]) for r in csv.DictReader(handle)])
        want = np.concatenate(
            [cxrnet_scores(model, x[i : i + batch])["probabilities"][:, 0] for i in range(0, len(x), batch)]
        )
        assert np.abs(got - want).max() < 1e-8, "predict and the bound disagree"

        ray_line = "Ray: not run"
        ray_ratio = None
        if not args.no_ray:
            try:
                import ray  # noqa: F401
            except ImportError:
                ray_line = 'Ray: not installed (pip install "cxrzoo[ray]")'
            else:
                clock = _Clock()
                start = time.perf_counter()
                summary = predict_files(
                    manifest=manifest,
                    output=work / "ray",
                    model="cxrnet",
                    engine="ray",
                    on_row=clock,
                    ray_options={"num_cpus": os.cpu_count()},
                )
                wall = time.perf_counter() - start
                assert summary.results == len(sources), summary
                same = (work / "ray" / "results.csv").read_bytes() == table.read_bytes()
                ray_ratio = clock.rate() / statistics.median(steady)
                ray_line = (
                    f"Ray: {clock.rate():.2f} images/s steady (local engine {statistics.median(steady):.2f}): "
                    f"{ray_ratio:.2f}x; {wall:.1f} s for the whole run incl. Ray's start and the actor's model build "
                    f"(first row after {clock.times[0] - start:.1f} s); table identical to the local engine's: {same}"
                )

        ratio = statistics.median(rates) / statistics.median(bounds)
        print()
        print("| measure | value | target |")
        print("|---|---|---|")
        print(f"| model-only bound (cxrnet_scores, batch {batch}) | {statistics.median(bounds):.2f} images/s | |")
        print(f"| cxrzoo predict -o (end to end) | {statistics.median(rates):.2f} images/s | |")
        print(f"| predict / bound | {ratio:.2f} | >= {TARGETS['ratio']} |")
        cold_text = " / ".join(f"{c[0]:.1f} s" for c in cold)
        print(f"| cold start, one image (fresh process, {len(cold)} runs) | {cold_text} | <= {TARGETS['cold']:.0f} s |")
        rss_text = f"{max(c[1] for c in cold):.2f} GB / {rss:.2f} GB"
        print(f"| peak RSS, 1 image / 16 images at batch {batch} | {rss_text} | <= {TARGETS['rss_gb']} GB |")
        if ray_ratio is not None:
            print(f"| Ray engine / local engine (steady state) | {ray_ratio:.2f} | >= {TARGETS['ray']} |")
        print()
        print(ray_line)
        print(f"(16-image run: {rss_seconds:.1f} s; load average now {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
