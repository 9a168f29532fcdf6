"""Preprocessing throughput: the "cxrnet" and "covid_cxnet" recipes through ``make_dataset`` vs plain Python loops.

For each recipe, on the 300 images of ../shared/data/v7_covid_lungs/train, in one run:

- ``make_dataset(paths, recipe=..., batch_size=16, shuffle=False)`` (parallel map, prefetch), iterated to the end;
- a plain Python loop doing the same steps with scikit-image (``io.imread``, ``transform.resize``,
  ``exposure.equalize_hist`` / ``equalize_adapthist``) and stacking batches of 16;
- the same loop with OpenCV (``cv2.imread``, ``cv2.resize``, ``cv2.convertScaleAbs``, ``cv2.equalizeHist``,
  ``cv2.createCLAHE``).

BEASF has no scikit-image or OpenCV implementation; both loops call cxrzoo's NumPy ``beasf`` for that step. Each
method runs ``--repeats`` times, the methods taking turns, after one warm-up pass over the same images (which also
builds the dataset and traces its graph, once, as for training); the best time counts, and the CPU time of that
run is printed too.
Targets on 2 cores: >= 5x the scikit-image loop and >= 1.5x the OpenCV loop.

``make_dataset`` reads the PNGs with ``read_image``, which uses Wuffs when the optional ``fast-png`` extra is
installed (the header line says which); ``CXRZOO_PNG_DECODER=opencv`` measures it with OpenCV's decoder instead.

    python benchmarks/preprocessing.py            # full run
    python benchmarks/preprocessing.py --quick    # 96 images, 1 repeat: a smoke test
    CXRZOO_PNG_DECODER=opencv python benchmarks/preprocessing.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
BATCH = 16


# ------------------------------------------------------------------------------------------------ baseline loops


def _batches(prepared):
    for start in range(0, len(prepared), BATCH):
        yield np.stack(prepared[start : start + BATCH])


def skimage_cxrnet(paths):
    from skimage import exposure, io, transform

    out = []
    for p in paths:
        img = io.imread(p).astype(np.float64)
        img = (img - img.min()) / (img.max() - img.min()) * 255.0
        small = transform.resize(img, (300, 340), order=1, mode="edge", anti_aliasing=False, preserve_range=True)
        u8 = np.clip(np.rint(small), 0, 255).astype(np.uint8)
        out.append(exposure.equalize_hist(u8).astype(np.float32)[..., None])
    return list(_batches(out))


def opencv_cxrnet(paths):
    import cv2

    out = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED).astype(np.float64)
        img = (img - img.min()) / (img.max() - img.min()) * 255.0
        eq = cv2.equalizeHist(cv2.convertScaleAbs(cv2.resize(img, (340, 300))))
        out.append((eq.astype(np.float32) / 255.0)[..., None])
    return list(_batches(out))


def skimage_covid_cxnet(paths):
    from skimage import exposure, io, transform

    from cxrzoo.preprocessing import beasf

    out = []
    for p in paths:
        img = io.imread(p).astype(np.float32)
        small = transform.resize(img, (320, 320), order=3, anti_aliasing=False, preserve_range=True)
        u8 = np.clip(small, 0, 255).astype(np.uint8)
        enhanced = exposure.equalize_adapthist(u8, kernel_size=(40, 40), clip_limit=0.01)
        out.append(np.dstack([beasf(u8) / 255.0, enhanced, u8 / 255.0]).astype(np.float32))
    return list(_batches(out))


def opencv_covid_cxnet(paths):
    import cv2

    from cxrzoo.preprocessing import beasf

    out = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED).astype(np.float32)
        u8 = np.clip(cv2.resize(img, (320, 320), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
        enhanced = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(u8)
        out.append(np.dstack([beasf(u8), enhanced, u8]).astype(np.float32) / 255.0)
    return list(_batches(out))


class Pipeline:
    """``make_dataset`` over the paths, built once (as for training, where one dataset serves every epoch); each
    call iterates one epoch. Construction and graph tracing happen in the warm-up call, outside the timing."""

    def __init__(self, recipe_name: str):
        self.recipe_name = recipe_name
        self.datasets = {}

    def __call__(self, paths):
        from cxrzoo.data import make_dataset

        key = tuple(paths)
        if key not in self.datasets:
            self.datasets[key] = make_dataset(list(paths), recipe=self.recipe_name, batch_size=BATCH, shuffle=False)
        # The batches stay tensors, which is what model.fit consumes (.numpy() would add a copy per batch).
        return list(self.datasets[key])


# ---------------------------------------------------------------------------------------------------------- main


def best_times(methods: dict, paths, repeats: int) -> dict[str, tuple[float, float]]:
    """Per method, (best wall time, CPU time of that run) in seconds. The methods take turns, repeat by repeat, so
    that a change in the machine's load does not favour whichever ran first. CPU time counts every thread of the
    process: the work done whatever the parallelism (the figure to look at on a busy machine)."""
    for fn in methods.values():
        fn(paths)  # warm-up: imports, dataset construction and tracing, the OS file cache
    runs = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            start, cpu = time.perf_counter(), time.process_time()
            batches = fn(paths)
            runs[name].append((time.perf_counter() - start, time.process_time() - cpu))
            assert sum(len(b) for b in batches) == len(paths)
    return {name: min(r) for name, r in runs.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="96 images (6 batches), 1 repeat: a smoke test; too few batches for representative ratios",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "v7_covid_lungs" / "train" / "images")
    args = parser.parse_args(argv)
    paths = sorted(str(p) for p in args.data.glob("*.png"))
    if not paths:
        print(f"no images in {args.data}; set CXRZOO_SHARED or --data", file=sys.stderr)
        return 2
    repeats = args.repeats
    if args.quick:
        paths, repeats = paths[:96], 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from cxrzoo.preprocessing import png_decoder

    print(
        f"{len(paths)} images from {args.data}, batch {BATCH}, best of {repeats}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the start; make_dataset decodes 8-bit gray PNGs with {png_decoder()}"
    )
    print(f"{'recipe':<12} {'method':<20} {'images/s':>9} {'speed-up':>9} {'CPU ms/image':>13}")
    ok = True
    for name, skimage_loop, opencv_loop in [
        ("cxrnet", skimage_cxrnet, opencv_cxrnet),
        ("covid_cxnet", skimage_covid_cxnet, opencv_covid_cxnet),
    ]:
        methods = {"make_dataset": Pipeline(name), "scikit-image loop": skimage_loop, "OpenCV loop": opencv_loop}
        timed = best_times(methods, paths, repeats)
        rates = {m: len(paths) / wall for m, (wall, _) in timed.items()}
        cpu = {m: 1000 * cpu_time / len(paths) for m, (_, cpu_time) in timed.items()}
        for method, rate in rates.items():
            ratio = "" if method == "make_dataset" else f"{rates['make_dataset'] / rate:8.2f}x"
            print(f"{name:<12} {method:<20} {rate:9.1f} {ratio:>9} {cpu[method]:13.2f}")
        ok &= rates["make_dataset"] >= 5 * rates["scikit-image loop"]
        ok &= rates["make_dataset"] >= 1.5 * rates["OpenCV loop"]
    print("targets (>= 5x scikit-image, >= 1.5x OpenCV):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
