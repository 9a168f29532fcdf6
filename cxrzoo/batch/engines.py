"""The engines that run the batch function: ``local`` (threads) and ``ray`` (Ray Data).

Both take the same :class:`~cxrzoo.batch.tasks.Preparer` and :class:`~cxrzoo.batch.tasks.BatchFunction` and
hand every outcome to one ``sink`` in the driving process, which writes the output folder; so the tables are the
same whichever engine made them.

* ``local``: a thread pool reads, hashes and prepares the next images (a bounded window ahead, in input order)
  while the model runs on the current batch; NumPy, OpenCV and TensorFlow release the GIL, so decoding is hidden
  behind the model. Outcomes are reported in input order.
* ``ray``: the inputs become a Ray dataset; ``map`` prepares rows in Ray tasks, ``map_batches`` runs the batch
  function in actors (one model per actor, built once); the driver writes the rows as they arrive (in completion
  order; the final tables are in input order anyway). Needs ``pip install "cxrzoo[ray]"``.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cxrzoo.batch.tasks import BatchFunction, Preparer, flatten, unflatten

ENGINES = ("local", "ray")
#: Images per model call. Per-image time is flat from 1 to 8 on 2 cores (docs/performance.md), and memory grows
#: with the batch, so the default is small.
DEFAULT_BATCH_SIZE = 4
#: Threads reading and preparing images ahead of the model. One keeps well ahead of CXR-Net (preparing an image takes
#: a tenth of the model's time); on 2 cores a second one slowed the model more than it helped (docs/performance.md).
DEFAULT_THREADS = 1

Sink = Callable[[dict[str, Any]], None]


def run_local(
    items: Sequence,
    preparer: Preparer,
    function: BatchFunction,
    sink: Sink,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int = DEFAULT_THREADS,
) -> None:
    """Runs ``function`` over ``items`` in this process; ``sink`` gets every prepared-and-skipped row and every
    result row, in input order.

    A batch whose function call raises is retried image by image, so one bad input costs its own row only.
    """
    if batch_size < 1 or threads < 1:
        raise ValueError(f"batch_size and threads must be >= 1, got {batch_size} and {threads}")
    rows = ({"index": i, "path": it.path, "key": it.key, "source": it.source} for i, it in enumerate(items))
    ahead = 2 * batch_size + threads
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cxrzoo-prepare") as pool:
        pending: deque = deque()

        def fill() -> None:
            while len(pending) < ahead:
                row = next(rows, None)
                if row is None:
                    return
                pending.append(pool.submit(preparer, row))

        fill()
        function.build()  # the first images are read and prepared meanwhile
        window: list[dict[str, Any]] = []
        ready = 0
        while pending:
            prepared = pending.popleft().result()
            fill()
            window.append(prepared)
            ready += not (prepared["skipped"] or prepared["error"])
            if ready == batch_size:
                _flush(window, function, sink)
                window, ready = [], 0
        if window:
            _flush(window, function, sink)


def _flush(window: list[dict[str, Any]], function: BatchFunction, sink: Sink) -> None:
    try:
        results = function(window)
    except Exception:
        results = []
        for row in window:
            try:
                results += function([row])
            except Exception as exc:
                results.append({**_error_of(row), "error": f"{type(exc).__name__}: {exc}"})
    by_index = {r["index"]: r for r in results}
    for row in window:
        sink(row if row["skipped"] else by_index[row["index"]])


def _error_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("index", "path", "key", "sha256")} | {"values": {}, "artifacts": {}}


# ------------------------------------------------------------------------------------------------------ Ray


class _RayBatch:
    """The Ray actor: builds the model once, then calls the batch function on each batch of prepared rows."""

    def __init__(self, model: str, heatmaps: bool, jit_compile: bool, kinds: tuple[str, ...]):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self.function = BatchFunction(model, heatmaps=heatmaps, jit_compile=jit_compile)
        self.kinds = kinds
        self.function.build()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        n = len(batch["index"])
        rows = [{k: _plain(v[i]) for k, v in batch.items()} for i in range(n)]
        try:
            results = self.function(rows)
        except Exception:
            results = []
            for row in rows:
                try:
                    results += self.function([row])
                except Exception as exc:
                    results.append({**_error_of(row), "error": f"{type(exc).__name__}: {exc}"})
        by_index = {r["index"]: r for r in results}
        flat = []
        for row in rows:
            if row["skipped"]:
                out = flatten({**_error_of(row), "error": ""}, self.kinds)
                out["skipped"] = True
            else:
                out = flatten(by_index[row["index"]], self.kinds)
                out["skipped"] = False
            flat.append(out)
        return {k: [f[k] for f in flat] for k in flat[0]}


def _plain(value):
    """NumPy scalars from Ray's batches as plain Python values."""
    if hasattr(value, "item") and not isinstance(value, (bytes, str)):
        return value.item()
    if isinstance(value, str):
        return str(value)
    return value


def run_ray(
    items: Sequence,
    preparer: Preparer,
    function: BatchFunction,
    sink: Sink,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    kinds: tuple[str, ...] = (),
    address: str | None = None,
    num_cpus: int | None = None,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
) -> None:
    """Runs ``function`` over ``items`` with Ray Data; ``sink`` gets every outcome, in completion order.

    Args:
        address: a Ray cluster (``"auto"``, ``"ray://host:10001"``); None starts or joins a local Ray.
        num_cpus: CPUs of a local Ray started here (None: all).
        actors: model replicas (one per worker; each builds the model once).
        cpus_per_actor: CPUs Ray reserves for each actor (its TensorFlow uses what the machine has).
        kinds: the artifact kinds of the rows (:func:`~cxrzoo.batch.tasks.layout`).
    """
    try:
        import ray
    except ImportError:
        raise ImportError('--engine ray needs Ray: pip install "cxrzoo[ray]"') from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
        if address is None:
            # a Ray started here serves this process only: it listens on the loopback interface
            options["_node_ip_address"] = "127.0.0.1"
            if num_cpus is not None:
                options["num_cpus"] = num_cpus
        ray.init(address=address, **options)
        started = True
    try:
        context = ray.data.DataContext.get_current()  # imports ray.data, which sets up its loggers: quiet them after
        for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
            logging.getLogger(name).setLevel(logging.WARNING)
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        rows = [{"index": i, "path": it.path, "key": it.key, "source": it.source} for i, it in enumerate(items)]
        ds = ray.data.from_items(rows)
        # Ray Data fuses a map into the next actor stage when their resources match; preparation then runs inside
        # the actor, one image after the other with the model. A different CPU share keeps them apart, so Ray
        # tasks prepare the next batches while the actors run the model.
        ds = ds.map(preparer, num_cpus=0.5 if cpus_per_actor != 0.5 else 0.25)
        ds = ds.map_batches(
            _RayBatch,
            fn_constructor_args=(function.model, function.heatmaps, function.jit_compile, tuple(kinds)),
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),  # a fixed pool (`concurrency=` is deprecated)
            num_cpus=cpus_per_actor,
            batch_format="numpy",
        )
        for flat in ds.iter_rows():
            flat = {k: _plain(v) for k, v in flat.items()}
            if flat["skipped"]:
                sink({"index": flat["index"], "path": flat["path"], "key": flat["key"], "sha256": flat["sha256"],
                      "skipped": True, "error": ""})  # fmt: skip
            else:
                sink(unflatten(flat, kinds))
    finally:
        if started:
            ray.shutdown()


__all__ = ["ENGINES", "run_local", "run_ray"]
