"""Warm throughput only goes up: TdrTableWarmWriteUnits through the real local stack's deploys.

The rule is AWS's: "Once increased, warm throughput values can't be decreased." (Amazon DynamoDB
Developer Guide, "Understanding DynamoDB warm throughput",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html). The local stack
sends the events CloudFormation sends ("Custom resources" overview: Update, rollback Update, Create when a
resource's Condition turns true, cleanup Delete when it turns false) to the real function, in its own
runtime process, against moto's server with the rule enforced (local_stack/moto_server.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinnox_sms.warm_throughput import AWS_PAGE, AWS_RULE
from local_stack.emulator import MotoServer
from local_stack.stack import LocalStack, ResourceEvent, StackOptions
from local_stack.template import Template

RESOURCE = "TdrTableWarmThroughput"


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[LocalStack]:
    """A local stack deployed with TdrTableWarmWriteUnits 8000; the process environment is restored after."""
    saved = dict(os.environ)
    moto = MotoServer(log_file=tmp_path / "moto.log")
    moto.start()
    options = StackOptions(
        endpoint_url=moto.endpoint,
        stack_name="warm-throughput",
        log_dir=tmp_path / "logs",
        parameters={"TdrTableWarmWriteUnits": "8000"},
        event_sources=False,
    )
    local = LocalStack(Template.load(), options)
    try:
        local.start()
        yield local
    finally:
        local.stop()
        moto.close()
        os.environ.clear()
        os.environ.update(saved)


def _warm_write_units(stack: LocalStack) -> int:
    assert stack.aws is not None
    described = stack.aws.client("dynamodb").describe_table(TableName=stack.provisioned.refs["TdrTable"])
    return int(described["Table"]["WarmThroughput"]["WriteUnitsPerSecond"])


def _ours(stack: LocalStack, since: int) -> list[tuple[str, str, str]]:
    """This resource's events from ``since`` on: (type, the stack's status while it ran, the answer)."""
    events: list[ResourceEvent] = stack.events[since:]
    return [(e.request_type, e.stack_status, e.status) for e in events if e.logical_id == RESOURCE]


def test_the_parameter_only_goes_up_and_a_lower_value_is_refused_with_why(deployed: LocalStack) -> None:
    stack = deployed
    # Given a stack created with TdrTableWarmWriteUnits 8000: the table was raised from a new table's 4,000
    assert stack.stack_status == "CREATE_COMPLETE"
    assert _ours(stack, 0) == [("Create", "CREATE_IN_PROGRESS", "SUCCESS")]
    assert _warm_write_units(stack) == 8000

    # When it is raised to 20000 for a campaign
    seen = len(stack.events)
    assert stack.update({"TdrTableWarmWriteUnits": "20000"}) == "UPDATE_COMPLETE"
    # Then the table takes 20,000 writes at once
    assert _ours(stack, seen) == [("Update", "UPDATE_IN_PROGRESS", "SUCCESS")]
    assert _warm_write_units(stack) == 20000

    # When the operator lowers it back to 8000 after the campaign
    seen = len(stack.events)
    assert stack.update({"TdrTableWarmWriteUnits": "8000"}) == "UPDATE_ROLLBACK_COMPLETE"
    # Then the update is refused, with a Reason that says why in AWS's words; its rollback completes
    assert _ours(stack, seen) == [
        ("Update", "UPDATE_IN_PROGRESS", "FAILED"),
        ("Update", "UPDATE_ROLLBACK_IN_PROGRESS", "SUCCESS"),
    ]
    refused = stack.events[seen]
    assert "TdrTableWarmWriteUnits cannot go down, from 20000 to 8000" in refused.reason
    assert AWS_RULE in refused.reason
    assert AWS_PAGE in refused.reason
    # and the table and the stack's parameter are as they were
    assert _warm_write_units(stack) == 20000
    assert stack.options.parameters["TdrTableWarmWriteUnits"] == "20000"

    # When it is set to 0 (off)
    seen = len(stack.events)
    assert stack.update({"TdrTableWarmWriteUnits": "0"}) == "UPDATE_COMPLETE"
    # Then the resource is deleted in the update's cleanup, and the table stays as warm as it is
    assert _ours(stack, seen) == [("Delete", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "SUCCESS")]
    assert RESOURCE not in stack.resources
    assert _warm_write_units(stack) == 20000

    # When it is turned on again, below what the table takes
    seen = len(stack.events)
    assert stack.update({"TdrTableWarmWriteUnits": "10000"}) == "UPDATE_COMPLETE"
    # Then the resource is created and changes nothing: the table already takes more
    assert _ours(stack, seen) == [("Create", "UPDATE_IN_PROGRESS", "SUCCESS")]
    assert "already takes 20000" in stack.events[seen].reason
    assert _warm_write_units(stack) == 20000
