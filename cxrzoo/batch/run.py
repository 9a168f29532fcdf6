"""``predict_files``: a published model over files, folders, globs or a manifest, into a resumable output folder."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cxrzoo._version import __version__
from cxrzoo.batch.engines import DEFAULT_BATCH_SIZE, DEFAULT_THREADS, ENGINES, run_local, run_ray
from cxrzoo.batch.inputs import collect_inputs
from cxrzoo.batch.store import FORMATS, ResultStore, check_output_folder
from cxrzoo.batch.tasks import BatchFunction, Preparer, layout, resolve_model

if TYPE_CHECKING:
    import keras


@dataclass
class Summary:
    """What a run did: ``total`` inputs; ``results`` rows (``skipped`` of them complete from an earlier run);
    ``errors``; wall time ``seconds``; the spec name ``model``; the ``output`` folder (None: rows only reported)."""

    total: int
    results: int
    skipped: int
    errors: int
    seconds: float
    model: str
    output: str | None


def predict_files(
    sources: Sequence[str | os.PathLike] = (),
    output: str | os.PathLike | None = None,
    *,
    model: str = "cxrnet",
    manifest: str | os.PathLike | None = None,
    path_column: str = "path",
    heatmaps: bool = False,
    fmt: str = "csv",
    engine: str = "local",
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int = DEFAULT_THREADS,
    jit_compile: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_error: Callable[[str, str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    keras_model: keras.Model | None = None,
    ray_options: dict[str, Any] | None = None,
) -> Summary:
    """Runs a published model over images and writes (or reports) one row per image.

    Args:
        sources: image files, folders (recursive) and glob patterns (:func:`~cxrzoo.batch.collect_inputs`).
        output: the output folder (:class:`~cxrzoo.batch.ResultStore`: ``results.csv``, ``errors.csv``,
            ``artifacts/``; resumable). None: rows go to ``on_row`` only.
        model: a published model or an architecture's default (``"cxrnet"``, ``"res_cr_net.jms_lungs"``, …;
            :func:`~cxrzoo.batch.supported_models`).
        manifest, path_column: a CSV of image paths (after ``sources``).
        heatmaps: CXR-Net: the authors' heat maps as artifacts (needs ``output``).
        fmt: "csv" or "parquet" (needs pyarrow) for the results table.
        engine: "local" or "ray".
        batch_size: images per model call; threads: local preparation threads.
        jit_compile: CXR-Net: Module 2 with XLA (pays off from a few hundred images).
        on_row: called with each table row (dict), in input order for the local engine.
        on_error: called with (path, reason) for each failed input.
        on_start: called with the number of inputs once they are known (before the model is built).
        progress: called with the number of inputs finished since the last call.
        keras_model: the spec's model, already built (else :func:`~cxrzoo.batch.tasks.build_model`: built once
            per process and spec).
        ray_options: :func:`~cxrzoo.batch.engines.run_ray` options (``address``, ``num_cpus``, ``actors``,
            ``cpus_per_actor``).

    Returns:
        a :class:`Summary`.

    The output folder is checked before any model is built; a per-file error never stops the run.

    Example::

        from cxrzoo.batch import predict_files
        predict_files(["val/"], "out", model="res_cr_net.v7_lungs")   # out/results.csv, out/artifacts/*.mask.png
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if output is None and (heatmaps or fmt != "csv"):
        raise ValueError("heat maps and --format need an output folder (-o DIR)")
    start = time.perf_counter()
    if output is not None:
        check_output_folder(output)  # before anything slow: a bad -o fails in a second, not after the model
    items = collect_inputs(sources, manifest=manifest, path_column=path_column, exclude=[output] if output else [])
    spec = resolve_model(model)
    if heatmaps and spec.arch != "cxrnet":
        raise ValueError(f"heat maps are CXR-Net's (--model cxrnet); {spec.name!r} has none")
    lay = layout(spec, heatmaps=heatmaps)
    if on_start is not None:
        on_start(len(items))
    store = None
    if output is not None:
        store = ResultStore(output, model=spec.name, layout=lay, options={"heatmaps": bool(heatmaps)}, fmt=fmt)
        store.open()
    counts = {"results": 0, "skipped": 0, "errors": 0}

    def sink(outcome: dict[str, Any]) -> None:
        if outcome.get("skipped"):
            row = store.skipped(outcome["key"], outcome["sha256"]) if store else None
            counts["skipped"] += 1
            counts["results"] += 1
            if row is not None and on_row is not None:
                on_row({**row, "path": outcome["path"]})
        elif outcome.get("error"):
            counts["errors"] += 1
            if store is not None:
                store.error(outcome["key"], outcome["path"], outcome["error"])
            if on_error is not None:
                on_error(outcome["path"], outcome["error"])
        else:
            if store is not None:
                row = store.add(outcome)
            else:
                row = {"path": outcome["path"], "sha256": outcome["sha256"], "tag": spec.name}
                row.update(cxrzoo_version=__version__, **outcome["values"])
            counts["results"] += 1
            if on_row is not None:
                on_row(row)
        if progress is not None:
            progress(1)

    try:
        preparer = Preparer(spec.name, heatmaps=heatmaps, done=store.done_keys() if store else frozenset())
        function = BatchFunction(spec.name, heatmaps=heatmaps, jit_compile=jit_compile, keras_model=keras_model)
        if engine == "local":
            run_local(items, preparer, function, sink, batch_size=batch_size, threads=threads)
        else:
            kinds = tuple(kind for kind, _ in lay.artifacts)
            run_ray(items, preparer, function, sink, batch_size=batch_size, kinds=kinds, **(ray_options or {}))
        if store is not None:
            store.finish(items)
    finally:
        if store is not None:
            store.close()
    return Summary(
        total=len(items),
        results=counts["results"],
        skipped=counts["skipped"],
        errors=counts["errors"],
        seconds=time.perf_counter() - start,
        model=spec.name,
        output=os.fspath(output) if output is not None else None,
    )


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_THREADS", "Summary", "predict_files"]
