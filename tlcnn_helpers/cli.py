"""The course's command line: ``python -m tlcnn_helpers <command> ...``.

Each command lives in ``tlcnn_helpers/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code.

>>> try:
...     main(["--help"])
... except SystemExit as done:
...     print("exit code", done.code)  # doctest: +ELLIPSIS
usage: python -m tlcnn_helpers ...
exit code 0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .errors import TLCNNError

COMMANDS = ("course", "train", "tune", "transfer")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="python -m tlcnn_helpers",
        description="TLCNN course helpers: run the course, train, tune and transfer models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tlcnn_helpers.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors (and OSErrors) print one clear line to stderr, exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TLCNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # last resort: a full disk or a read-only folder, named in one line
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}; free some space, fix the permissions or "
              f"choose another path", file=sys.stderr)
        return 2
