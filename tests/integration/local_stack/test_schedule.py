"""The ResumeStalled schedule invokes the recorder with its Input, at its rate scaled down."""

from __future__ import annotations

import json
from collections.abc import Callable

from callrec_local.stack import LocalStack
from callrec_local.template import TEMPLATE_PATH, load_template

StackMaker = Callable[..., LocalStack]


def test_schedule_invokes_the_recorder_with_its_input(make_stack: StackMaker) -> None:
    # Given the template's schedule, rate(1 minute) made 0.6 s
    (schedule,) = [
        event["Properties"]
        for event in load_template(TEMPLATE_PATH)["Resources"]["RecorderFunction"]["Properties"][
            "Events"
        ].values()
        if event["Type"] == "ScheduleV2"
    ]
    stack = make_stack(schedules=True, time_scale=0.01)

    # When two periods have passed
    invocations = stack.wait_for(
        lambda invs: len([i for i in invs if i.source == "schedule"]) >= 2, timeout_s=20
    )

    # Then the recorder got the schedule's Input, asynchronously
    scheduled = [i for i in invocations if i.source == "schedule"]
    assert {i.function_name for i in scheduled} == {stack.function_name("RecorderFunction")}
    assert all(i.event == json.loads(schedule["Input"]) for i in scheduled)
    assert {i.invocation_type for i in scheduled} == {"Event"}
