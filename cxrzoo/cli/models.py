"""``cxrzoo models``: the registered architectures with their paper, task and published weights."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list the registered architectures")
    parser.add_argument("pattern", nargs="?", default="*", help="glob on the model name")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cxrzoo.registry import list_models, model_info

    for name in list_models(args.pattern):
        info = model_info(name)
        if args.json:
            print(
                json.dumps(
                    {
                        "name": name,
                        "paper": info.paper,
                        "task": info.task,
                        "weights": info.weights,
                        "summary": info.summary,
                    }
                )
            )
        else:
            print(f"{name:32s} {info.paper:20s} {info.task:15s} {', '.join(info.weights) or '-'}")
    return 0
