"""`callrec convert` starts without the AWS SDK: building the command line's parser imports every
subcommand's module, and boto3 alone costs about 0.15 s and 20 MB (issue 3's benchmark)."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_parser_imports_no_aws_sdk() -> None:
    # Given a fresh interpreter (this process has long imported boto3 for other tests)
    script = (
        "import sys\n"
        "from callrec import cli\n"
        "cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    # When the `callrec` parser is built with every subcommand
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # Then neither boto3 nor botocore has been imported
    assert run.stdout.strip() == "[]"
