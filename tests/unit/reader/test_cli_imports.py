"""`callrec convert` starts without the AWS SDK or the local stack: the command line imports
only the modules up to the one defining the command run, and boto3 alone costs about 0.15 s
and 20 MB (issue 3's benchmark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from callrec import cli


def imported_modules(*args: str) -> tuple[int, set[str]]:
    """Exit status and top-level modules imported by `python -m callrec.cli ARGS`."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "callrec.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return run.returncode, modules


def test_convert_imports_no_aws_sdk_nor_local_stack(tmp_path: Path) -> None:
    # Given a fresh interpreter running `callrec convert` (on a missing file: status 2)
    status, modules = imported_modules("convert", str(tmp_path / "absent.mkv"), "--out", "out")
    # Then the command ran, and neither boto3, botocore nor callrec_local was imported
    assert status == 2
    assert "callrec" in modules
    assert not modules & {"boto3", "botocore", "callrec_local"}


def test_help_still_lists_every_command() -> None:
    # When the parser is built for no command in particular
    choices = cli.build_parser().format_help()
    # Then every subcommand is offered
    for command in ("convert", "inspect", "urls", "view", "rerecord"):
        assert command in choices


def test_parser_for_one_command_parses_it() -> None:
    # Given the parser built for `inspect` only
    parser = cli.build_parser("inspect")
    # When its arguments are parsed
    args = parser.parse_args(["inspect", "capture.mkv", "--json"])
    # Then they reach the inspect command
    assert (args.command, args.json) == ("inspect", True)
