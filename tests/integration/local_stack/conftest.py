"""Local stacks whose functions all run the stand-in handler in handlers/app.py, time scaled down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Until tests/conftest.py registers callrec_local.pytest_plugin:
from callrec_local.pytest_plugin import (  # noqa: F401
    LocalStackFactory,
    local_stack,
    local_stack_environment,
    local_stack_factory,
)
from callrec_local.stack import FunctionOverride, LocalStack
from callrec_local.template import TEMPLATE_PATH, load_template

HANDLERS = Path(__file__).parent / "handlers"
# The recorder's 900 s become 9 s, the spectrum's 300 s become 3 s, Lambda's retry delays 0.6 and
# 1.2 s, the Kinesis batching window 10 ms.
TIME_SCALE = 0.01
# Scaled, the contact-flow function's 8 s would leave 80 ms: too little to start a process.
SEND_EVENT_TIMEOUT_S = 3.0

StackMaker = Callable[..., LocalStack]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "handler-state"
    path.mkdir()
    return path


@pytest.fixture
def make_stack(local_stack_factory: LocalStackFactory, state_dir: Path) -> StackMaker:  # noqa: F811
    """A stack with every template function running handlers/app.py; `timeouts` by logical id."""

    def make(
        *,
        timeouts: dict[str, float] | None = None,
        template: Path = TEMPLATE_PATH,
        real_functions: frozenset[str] | set[str] = frozenset(),
        **kwargs: Any,
    ) -> LocalStack:
        """`real_functions` keep their code from the template; the others run handlers/app.py."""
        timeouts = {"SendEventFunction": SEND_EVENT_TIMEOUT_S, **(timeouts or {})}
        functions = [
            logical_id
            for logical_id, resource in load_template(template)["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        ]
        overrides = {
            logical_id: FunctionOverride(
                code_uri=None if logical_id in real_functions else HANDLERS,
                timeout_s=timeouts.get(logical_id),
                environment={"STATE_DIR": str(state_dir)},
            )
            for logical_id in functions
        }
        kwargs.setdefault("time_scale", TIME_SCALE)
        kwargs.setdefault("schedules", False)
        kwargs.setdefault("kvs", None)
        return local_stack_factory(template_path=template, overrides=overrides, **kwargs)

    return make


@pytest.fixture
def stack(make_stack: StackMaker) -> LocalStack:
    return make_stack()
