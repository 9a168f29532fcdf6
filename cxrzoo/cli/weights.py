"""``cxrzoo weights``: list, inspect, fetch and verify published weights (no TensorFlow import)."""

from __future__ import annotations

import argparse
import json
import sys

from cxrzoo import weights as W


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("weights", help="published weights: list, info, fetch, verify")
    wsub = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")

    p = wsub.add_parser("list", help="list the published weights")
    p.add_argument("--arch", help="only this architecture")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_list)

    p = wsub.add_parser("info", help="print one manifest entry as JSON")
    p.add_argument("tag")
    p.set_defaults(func=_info)

    p = wsub.add_parser("fetch", help="make a verified local copy (mirror → cache → download)")
    p.add_argument("tag", nargs="+")
    p.add_argument("--dest", help="also copy the files here (usable as a CXRZOO_WEIGHTS_PATH folder)")
    p.add_argument("--cache-dir", help="cache root (default: $CXRZOO_HOME or ~/.cache/cxrzoo)")
    p.set_defaults(func=_fetch)

    p = wsub.add_parser("verify", help="check local copies against the manifest hashes (never downloads)")
    p.add_argument("tag", nargs="*")
    p.add_argument(
        "--all",
        action="store_true",
        help="every tag must be present and valid (tags unobtainable by design are reported, not failed)",
    )
    p.add_argument("--cache-dir")
    p.set_defaults(func=_verify)


def _size(entry) -> str:
    sizes = [f.size for f in entry.files]
    if any(s is None for s in sizes):
        return "unknown"
    return f"{sum(sizes) / 1e6:.2f} MB"


def _list(args) -> int:
    for tag in W.list_weights(args.arch):
        entry = W.weights_info(tag)
        if args.json:
            print(
                json.dumps(
                    {
                        "tag": tag,
                        "arch": entry.arch,
                        "role": entry.role,
                        "format": entry.format,
                        "files": [f.filename for f in entry.files],
                        "title": entry.title,
                    }
                )
            )
        else:
            hash_kind = "sha256" if entry.hash_verified_by_sha256 else "git-blob-sha1 only"
            print(f"{tag:44s} {entry.arch:24s} {_size(entry):>10s}  {hash_kind:18s} {entry.title}")
    return 0


def _info(args) -> int:
    print(json.dumps(W.weights_info(args.tag).to_dict(), indent=2, ensure_ascii=False))
    return 0


def _fetch(args) -> int:
    for tag in args.tag:
        for path in W.fetch_weights(tag, args.dest, cache_dir=args.cache_dir):
            print(f"{tag}\t{path}")
    return 0


def _verify(args) -> int:
    """One line per tag: ok, unobtainable by design, missing, UNREADABLE or HASH MISMATCH. Fails (exit 1) on a
    mismatch or an unreadable file, and on a missing file when tags were named or ``--all`` was given; a tag that
    is unobtainable by design is reported but never fails, so ``verify --all`` can pass on a complete mirror."""
    results = W.verify_weights(args.tag or None, cache_dir=args.cache_dir)
    failed = False
    for result in results:
        print(f"{result.tag:44s} {result}")
        if result.status in ("hash mismatch", "unreadable") or (result.status == "missing" and (args.all or args.tag)):
            failed = True
    if failed:
        print("cxrzoo: verification failed", file=sys.stderr)
    return 1 if failed else 0
