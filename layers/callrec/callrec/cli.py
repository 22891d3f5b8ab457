"""The `callrec` command line: one subcommand per job (convert, inspect, replay, demo, urls, view,
rerecord).

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
# The commands that must start fastest come first (each module imported costs start-up time).
COMMAND_MODULES: tuple[str, ...] = (
    "callrec.convert",
    "callrec.inspect",
    "callrec.viewing",
    "callrec.rerecord",
)
# Dev-only modules (devtools/callrec_local) that contribute subcommands when installed.
LOCAL_COMMAND_MODULES: tuple[str, ...] = ("callrec_local.cli",)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand.

    Given the `command` about to run, modules are imported in order only until one of them
    defines it: `callrec convert` does not pay for boto3 or the local stack (about 0.2 s and
    20 MB, more than a 45-minute conversion's parsing). Help and unknown commands get them all.
    """
    parser = argparse.ArgumentParser(
        prog="callrec",
        description="Serverless call recorder for Amazon Connect: recordings and captures.",
    )
    parser.add_argument("--version", action="version", version=f"callrec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
        if command is not None and command in subparsers.choices:
            return parser
    for name in LOCAL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith("callrec_local"):
                continue
            raise
        module.register(subparsers)
        if command is not None and command in subparsers.choices:
            return parser
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `callrec` console script; returns the process exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    # The top-level options take no value: the first other argument names the command.
    command = next((arg for arg in args_list if not arg.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
