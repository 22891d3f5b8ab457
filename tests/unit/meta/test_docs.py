"""The README and the operations guide say what the template and the code do."""

from __future__ import annotations

import re

from callrec.flow_block import MAX_TIMEOUT_S, TIMEOUT_PARAMETER
from callrec_local.template import TEMPLATE_PATH, load_template
from tests.support import REPO

README = (REPO / "README.md").read_text()
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def flat(document: str) -> str:
    """The text without emphasis and line breaks, for phrases a paragraph may wrap."""
    return " ".join(document.replace("**", "").split())


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_every_template_parameter_is_in_both_parameter_tables() -> None:
    parameters = load_template(TEMPLATE_PATH)["Parameters"]

    for document in (README, OPERATIONS):
        tables = "\n".join(line for line in document.splitlines() if line.startswith("| `"))
        missing = [name for name in parameters if f"`{name}`" not in tables]
        assert missing == []


def test_the_flow_is_told_to_send_the_parameter_the_function_reads() -> None:
    # The function assumes the block's default timeout unless the flow passes this parameter.
    for document in (flat(README), flat(OPERATIONS)):
        assert f"`{TIMEOUT_PARAMETER}` = `{MAX_TIMEOUT_S}`" in document
        assert re.search(rf"Timeout\*? (to )?{MAX_TIMEOUT_S} seconds", document)


def test_the_error_branch_continues_the_call() -> None:
    for document in (flat(README), flat(OPERATIONS)):
        assert "Error branch to the same next block as Success" in document
    assert "Error branch goes to the end of the flow" not in flat(README)


def test_the_stated_minimum_sam_cli_is_not_above_the_one_make_installs() -> None:
    stated = {
        m.group(1)
        for document in (README, OPERATIONS)
        for m in re.finditer(r"SAM CLI (\d+\.\d+\.\d+) or later", flat(document))
    }
    pinned = re.search(r"^SAM_VERSION := (\S+)$", MAKEFILE, re.MULTILINE)

    assert len(stated) == 1, stated
    assert pinned is not None
    assert version(stated.pop()) <= version(pinned.group(1))
