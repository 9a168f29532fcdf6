"""The ``cxrzoo`` command line (also ``python -m cxrzoo``).

    cxrzoo models [PATTERN]                       registered architectures
    cxrzoo weights list [--arch A] [--json]       published weights
    cxrzoo weights info TAG                       one manifest entry (JSON)
    cxrzoo weights fetch TAG [--dest DIR]         download/verify, optionally copy to a mirror folder
    cxrzoo weights verify [TAG ...] [--all]       check local copies against the manifest hashes
    cxrzoo predict [-o DIR] [--model NAME] [--heatmaps] INPUT...   a published model over files, folders,
                                                  globs or a manifest (resumable; --engine ray)

Each subcommand lives in its own module here and adds itself with ``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys

from cxrzoo._version import __version__
from cxrzoo.cli import models as _models
from cxrzoo.cli import predict as _predict
from cxrzoo.cli import weights as _weights

_COMMANDS = [_models, _weights, _predict]


class CommandError(Exception):
    """A failure to report as ``cxrzoo: error: ...`` with exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxrzoo", description="Chest X-ray COVID-19 model zoo (Keras 3).")
    parser.add_argument("--version", action="version", version=f"cxrzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for command in _COMMANDS:
        argv = getattr(command, "rewrite_argv", lambda a: a)(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, OSError) as exc:
        print(f"cxrzoo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cxrzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
