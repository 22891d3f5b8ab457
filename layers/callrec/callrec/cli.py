"""The `callrec` command line: one subcommand per job (convert, inspect, replay, demo, urls, view).

Each subcommand lives with the module it drives, which exposes `register(subparsers)`; modules
are listed here and imported when the parser is built. Dev-only commands (the local stack,
replay, demo) come from `callrec_local`, which is not deployed to Lambda: where it is absent,
those commands are simply not offered.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from callrec import __version__

# Modules of the deployed package that contribute subcommands.
COMMAND_MODULES: tuple[str, ...] = ("callrec.viewing", "callrec.convert", "callrec.inspect")
# Dev-only modules (devtools/callrec_local) that contribute subcommands when installed.
LOCAL_COMMAND_MODULES: tuple[str, ...] = ("callrec_local.cli",)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="callrec",
        description="Serverless call recorder for Amazon Connect: recordings and captures.",
    )
    parser.add_argument("--version", action="version", version=f"callrec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for name in LOCAL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith("callrec_local"):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `callrec` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
