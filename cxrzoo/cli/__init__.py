"""The ``cxrzoo`` command line (also ``python -m cxrzoo``).

    cxrzoo models [PATTERN]                       registered architectures
    cxrzoo weights list [--arch A] [--json]       published weights
    cxrzoo weights info TAG                       one manifest entry (JSON)
    cxrzoo weights fetch TAG [--dest DIR]         download/verify, optionally copy to a mirror folder
    cxrzoo weights verify [TAG ...] [--all]       check local copies against the manifest hashes
    cxrzoo predict [-o DIR] [--model NAME] [--heatmaps] INPUT...   a published model over files, folders,
                                                  globs or a manifest (resumable; --engine ray)
    cxrzoo evaluate TABLE -o DIR --labels CSV | --masks DIR   AUC, operating points, calibration; Dice/IoU/HD95
    cxrzoo export NAME --format F -o PATH          .keras, SavedModel (preparation inside), LiteRT, ONNX

Each subcommand lives in its own module here and adds itself with ``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import os
import sys

from cxrzoo._version import __version__
from cxrzoo.cli import evaluate as _evaluate
from cxrzoo.cli import export as _export
from cxrzoo.cli import models as _models
from cxrzoo.cli import predict as _predict
from cxrzoo.cli import weights as _weights

_COMMANDS = [_models, _weights, _predict, _evaluate, _export]


class CommandError(Exception):
    """A failure to report as ``cxrzoo: error: ...`` with exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxrzoo", description="Chest X-ray COVID-19 model zoo (Keras 3).")
    parser.add_argument("--version", action="version", version=f"cxrzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def _stdout_closed() -> int:
    """The reader of stdout went away (``cxrzoo weights list | head``): stop quietly with status 0, as the output
    that was wanted has been delivered. Python would otherwise report the broken pipe again when it flushes stdout
    at exit, so stdout is pointed at /dev/null first."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a descriptor (e.g. captured in tests)
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for command in _COMMANDS:
        argv = getattr(command, "rewrite_argv", lambda a: a)(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return _stdout_closed()
    except (CommandError, ValueError, OSError) as exc:
        print(f"cxrzoo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cxrzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
