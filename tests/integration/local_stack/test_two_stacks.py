"""Two stacks from the template side by side in one account and region, as two deployments are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callrec_local.lambda_runtime import Invocation
from callrec_local.stack import AtomicMotoServer, LocalStack, stop_moto
from callrec_local.template import LocalPlan
from tests.integration.local_stack.conftest import StackMaker

ONE_ACCOUNT = "210987654321"


@pytest.fixture
def shared_moto() -> Iterator[AtomicMotoServer]:
    """One moto for both stacks; requested before the stacks, so stopped after them."""
    server = AtomicMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server
    stop_moto(server)


def physical_names(plan: LocalPlan) -> set[str]:
    return {
        *(stream.name for stream in plan.streams.values()),
        *(table.name for table in plan.tables.values()),
        *(bucket.name for bucket in plan.buckets.values()),
        *(queue.name for queue in plan.queues.values()),
        *(function.name for function in plan.functions.values()),
        *(function.log_group_name for function in plan.functions.values()),
    }


def notified_buckets(invocations: list[Invocation]) -> set[str]:
    return {
        record["s3"]["bucket"]["name"]
        for invocation in invocations
        if invocation.source == "s3"
        for record in invocation.event["Records"]
    }


def test_two_stacks_live_side_by_side_in_one_account_and_region(
    shared_moto: AtomicMotoServer, make_stack: StackMaker
) -> None:
    # Given two stacks of the template in one moto, one account, one region, the same parameters
    first: LocalStack = make_stack(stack_name="callrec", account_id=ONE_ACCOUNT, moto=shared_moto)

    # When a second one is created beside it
    second: LocalStack = make_stack(
        stack_name="callrec-test", account_id=ONE_ACCOUNT, moto=shared_moto
    )

    # Then nothing either created has the other's name (moto, like S3 in us-east-1, lets an
    # account create a bucket it already owns again: a shared name would not fail here, the
    # second stack would quietly use the first one's bucket), and each store exists once
    assert first.moto_endpoint == second.moto_endpoint
    shared = physical_names(first.plan) & physical_names(second.plan)
    assert not shared, sorted(shared)
    buckets = {b["Name"] for b in first.s3().list_buckets()["Buckets"]}
    assert {
        b.name for b in (*first.plan.buckets.values(), *second.plan.buckets.values())
    } <= buckets
    tables = set(first.dynamodb().list_tables()["TableNames"])
    assert {first.table_name, second.table_name} <= tables

    # And a recording landing in the first stack's bucket reaches the first stack's function only
    first.s3().put_object(Bucket=first.bucket_name, Key="recordings/call-1/a.wav", Body=b"RIFF")
    invocations = first.wait_for(lambda invs: bool(notified_buckets(invs)), timeout_s=20)
    assert notified_buckets(invocations) == {first.bucket_name}
    assert notified_buckets(second.invocations()) == set()
