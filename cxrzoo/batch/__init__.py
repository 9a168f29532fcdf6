"""Batch prediction: a published model over folders of PNG/JPEG/DICOM, resumable, locally or on Ray.

The layer above :mod:`cxrzoo.pipelines` (below the CLI) behind ``cxrzoo predict``:

| module | what |
|---|---|
| :mod:`~cxrzoo.batch.inputs` | :func:`collect_inputs`: files, folders, globs, a CSV manifest → ordered inputs with unique keys |
| :mod:`~cxrzoo.batch.tasks` | the engine-agnostic batch function: :class:`Preparer` (input → prepared row) and :class:`BatchFunction` (prepared rows → result rows), from the spec |
| :mod:`~cxrzoo.batch.store` | :class:`ResultStore`: the output folder (artifacts, journal, the final tables) |
| :mod:`~cxrzoo.batch.engines` | :func:`run_local` (a thread pool overlapping decoding with the model) and :func:`run_ray` (Ray Data) |
| :mod:`~cxrzoo.batch.run` | :func:`predict_files`: all of it in one call |

Importing this package does not import TensorFlow (the CLI checks the output folder before that).

Example::

    from cxrzoo.batch import predict_files
    summary = predict_files(["scans/"], "out", model="cxrnet")    # out/results.csv, one row per image
"""

from cxrzoo.batch.engines import ENGINES, run_local, run_ray
from cxrzoo.batch.inputs import IMAGE_SUFFIXES, InputError, InputFile, collect_inputs
from cxrzoo.batch.run import DEFAULT_BATCH_SIZE, DEFAULT_THREADS, Summary, predict_files
from cxrzoo.batch.store import FORMATS, OutputError, ResultStore, check_output_folder
from cxrzoo.batch.tasks import (
    BatchFunction,
    Layout,
    ModelChoiceError,
    Preparer,
    layout,
    resolve_model,
    supported_models,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_THREADS",
    "ENGINES",
    "FORMATS",
    "IMAGE_SUFFIXES",
    "BatchFunction",
    "InputError",
    "InputFile",
    "Layout",
    "ModelChoiceError",
    "OutputError",
    "Preparer",
    "ResultStore",
    "Summary",
    "check_output_folder",
    "collect_inputs",
    "layout",
    "predict_files",
    "resolve_model",
    "run_local",
    "run_ray",
    "supported_models",
]
