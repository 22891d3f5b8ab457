"""The template as CloudFormation receives it: after SAM's transform (see sam_translate.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from callrec_local.template import TEMPLATE_PATH
from tests.support import REPO

# The aws-sam-cli tool environment `make tools` installs (uv tool, UV_TOOL_DIR=.tools/envs).
SAM_PYTHON = REPO / ".tools" / "envs" / "aws-sam-cli" / "bin" / "python"
TRANSLATE = Path(__file__).with_name("sam_translate.py")


def translate(template: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """`template` translated by SAM CLI's own translator, offline, reading no AWS configuration."""
    if not SAM_PYTHON.exists():
        pytest.fail(
            f"{SAM_PYTHON} is missing: `make tools` installs aws-sam-cli there "
            "(`make test` and `make unit` run it first)"
        )
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment |= {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
    }
    done = subprocess.run(
        [str(SAM_PYTHON), str(TRANSLATE), str(template)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"SAM's translator refused {template}:\n{done.stderr}")
    translated: dict[str, Any] = json.loads(done.stdout)
    return translated


@pytest.fixture(scope="session")
def translated_template() -> dict[str, Any]:
    return translate()
