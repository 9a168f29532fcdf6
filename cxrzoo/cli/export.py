"""``cxrzoo export``: write a published model as a ``.keras`` file, a SavedModel, a LiteRT or an ONNX file.

    cxrzoo export NAME_OR_TAG --format {keras,saved_model,litert,onnx} -o PATH [--allow-tf-ops] [--opset N]
                  [--overwrite]

NAME_OR_TAG is an architecture (its default published weights) or a published model (``cxrnet.hfhs_v7``). The
SavedModel's ``serving_default`` takes encoded PNG/JPEG files and prepares them in the graph as the paper did;
LiteRT and ONNX take prepared tensors. Every export carries the model's spec (``cxrzoo.exporting.read_metadata``).
See docs/export.md. Prints the path written and the signatures (or inputs and outputs).
"""

from __future__ import annotations

import argparse

FORMATS = ("keras", "saved_model", "litert", "onnx")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a model to .keras, SavedModel (preparation inside), LiteRT or ONNX",
        description="Export a published model, carrying its spec, to another format (docs/export.md).",
    )
    parser.add_argument("model", metavar="NAME_OR_TAG", help="architecture or published model, e.g. cxrnet.hfhs_v7")
    parser.add_argument("--format", "-f", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--output", "-o", required=True, metavar="PATH", help="file (folder for saved_model)")
    parser.add_argument(
        "--allow-tf-ops",
        action="store_true",
        help="litert: include TensorFlow ops LiteRT has no built-in kernel for (CXR-Net's FFTs); the file then "
        "runs only in a LiteRT runtime linked with the Flex delegate",
    )
    parser.add_argument("--opset", type=int, default=None, metavar="N", help="onnx: the opset (17)")
    parser.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from cxrzoo.cli.predict import _quiet_native_stderr, _quiet_python_warnings

    _quiet_native_stderr()
    _quiet_python_warnings()
    from cxrzoo.exporting import export, read_metadata

    if args.allow_tf_ops and args.format != "litert":
        raise ValueError("--allow-tf-ops applies to --format litert only")
    if args.opset is not None and args.format != "onnx":
        raise ValueError("--opset applies to --format onnx only")
    options = {}
    if args.allow_tf_ops:
        options["allow_tf_ops"] = True
    if args.opset is not None:
        options["opset"] = args.opset
    try:
        path = export(args.model, args.format, args.output, overwrite=args.overwrite, **options)
    except ImportError as err:  # e.g. ONNX without the 'export' extra: an error line, not a traceback
        raise ValueError(str(err)) from None
    record = read_metadata(path)
    print(f"{path}\t{record['name']}\t{args.format}\tlabels: {', '.join(record['labels'])}")
    for name, note in sorted(record.get("signatures", {}).items()):
        print(f"  signature {name}: {note}")
    if record.get("tf_ops"):
        print(f"  TensorFlow ops (Flex delegate needed): {', '.join(record['tf_ops'])}")
    return 0
