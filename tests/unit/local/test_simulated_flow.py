"""The simulated contact flow is configured as the README tells users to configure theirs."""

from __future__ import annotations

from callrec.flow_block import BlockTimeout
from callrec_local.simulator import CallScript
from tests.support import REPO


def test_the_simulated_lambda_block_passes_its_timeout_as_the_readme_says() -> None:
    # Given a call scripted without parameters
    script = CallScript()

    # When the contact-flow function reads the block's timeout from what the flow passes
    timeout = BlockTimeout.from_event({"Details": {"Parameters": script.parameters}})

    # Then it is the README's 8 s, not Connect's default the function assumes without it
    assert timeout == BlockTimeout(seconds=8, from_flow=True)
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "`InvocationTimeLimitSeconds` = `8`" in readme


def test_a_script_with_its_own_parameters_passes_only_those() -> None:
    script = CallScript(parameters={"campaign": "support-line"})

    assert BlockTimeout.from_event({"Details": {"Parameters": script.parameters}}) == BlockTimeout()
