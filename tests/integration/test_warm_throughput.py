"""The warm-throughput custom resource, through its real handler, against moto's DynamoDB.

The rule it keeps is AWS's: "Once increased, warm throughput values can't be decreased."
(Amazon DynamoDB Developer Guide, "Understanding DynamoDB warm throughput",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html). moto does not
enforce it; the local stack's patch does (local_stack/moto_server.py), checked here too, so that a call
AWS would refuse is refused in every test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cinnox_sms.warm_throughput import AWS_PAGE, AWS_RULE
from local_stack.cloudformation import StackRecord
from local_stack.cloudformation import custom_resource_event as cloudformation_event
from local_stack.moto_server import WARM_THROUGHPUT_DECREASE
from support import LambdaContext, Stack

if TYPE_CHECKING:
    from types import ModuleType

    from local_stack.cloudformation import ResponseEndpoint
    from local_stack.template import Template

LOGICAL_ID = "TdrTableWarmThroughput"
Event = Callable[..., dict[str, Any]]


@pytest.fixture
def event(stack: Stack, template: Template, cloudformation: ResponseEndpoint, monkeypatch: pytest.MonkeyPatch) -> Event:
    """An event for the template's own resource, with TdrTableWarmWriteUnits at ``units`` (``old``: the
    deployed value, for an Update); DescribeStacks answered by the local stack's CloudFormation."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", cloudformation.base_url)

    def build(request_type: str, units: str, old: str | None = None) -> dict[str, Any]:
        refs = {**stack.refs, "TdrTableWarmWriteUnits": units}
        properties = template.properties(LOGICAL_ID, refs, stack.attrs)
        old_properties = None
        if old is not None:
            old_properties = template.properties(LOGICAL_ID, {**stack.refs, "TdrTableWarmWriteUnits": old}, stack.attrs)
        physical_id = None if request_type == "Create" else f"{stack.table_name}/warm-throughput"
        return cloudformation_event(
            request_type,
            LOGICAL_ID,
            template.resource(LOGICAL_ID)["Type"],
            properties,
            cloudformation.url,
            physical_id,
            old_properties,
        )

    return build


def answer(function: ModuleType, cloudformation: ResponseEndpoint, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the handler with the event; CloudFormation's judgement of its one answer."""
    function.lambda_handler(event, LambdaContext(remaining_ms=30_000))
    judged = cloudformation.answer(event, timeout=5)
    assert judged is not None
    assert [r["RequestId"] for r in cloudformation.responses].count(event["RequestId"]) == 1
    return judged


def warm(stack: Stack) -> dict[str, Any]:
    described = boto3.client("dynamodb").describe_table(TableName=stack.table_name)["Table"]
    return {k: v for k, v in dict(described["WarmThroughput"]).items() if k != "Status"}


def raise_by_traffic(stack: Stack, units: int) -> None:
    """DynamoDB raising the table's warm throughput by itself, as traffic grows."""
    boto3.client("dynamodb").update_table(TableName=stack.table_name, WarmThroughput={"WriteUnitsPerSecond": units})


def test_create_raises_the_write_units_and_leaves_the_reads_alone(
    warm_throughput: ModuleType, event: Event, cloudformation: ResponseEndpoint, stack: Stack
) -> None:
    """Source: "Understanding DynamoDB warm throughput" (a new on-demand table starts at 12,000 reads and
    4,000 writes); DynamoDB API reference, UpdateTable / WarmThroughput (ReadUnitsPerSecond optional)."""
    # Given a new on-demand table, at DynamoDB's defaults
    assert warm(stack) == {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000}
    # When the stack is created with TdrTableWarmWriteUnits 8000
    created = answer(warm_throughput, cloudformation, event("Create", "8000"))
    # Then CloudFormation got SUCCESS, and the table takes 8,000 writes at once, its reads as they were
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["PhysicalResourceId"] == f"{stack.table_name}/warm-throughput"
    assert created["Data"] == {"WriteUnitsPerSecond": "8000"}
    assert warm(stack) == {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 8000}


def test_an_update_to_a_lower_value_is_refused_before_the_table_changes(
    warm_throughput: ModuleType, event: Event, cloudformation: ResponseEndpoint, stack: Stack
) -> None:
    """Source: "Understanding DynamoDB warm throughput": "Once increased, warm throughput values can't be
    decreased." CloudFormation "Custom resource response objects": a FAILED answer's Reason is what the
    stack's events show (the body at most 4,096 bytes)."""
    # Given a table pre-warmed to 20,000 write units by the deployed stack
    assert answer(warm_throughput, cloudformation, event("Create", "20000"))["Status"] == "SUCCESS"
    cloudformation.described.clear()
    # When an update lowers the parameter to 8,000
    refused = answer(warm_throughput, cloudformation, event("Update", "8000", old="20000"))
    # Then the update is refused, with a Reason that says why in AWS's words and what to deploy instead
    assert refused["Status"] == "FAILED"
    assert "TdrTableWarmWriteUnits cannot go down, from 20000 to 8000" in refused["Reason"]
    assert AWS_RULE in refused["Reason"]
    assert AWS_PAGE in refused["Reason"]
    assert "at 20000 or more, or 0" in refused["Reason"]
    assert refused["PhysicalResourceId"] == f"{stack.table_name}/warm-throughput"  # the id CloudFormation holds
    # and it asked the stack's status (an update rollback would be let through), and left the table as it was
    assert cloudformation.described == [refused["StackId"]]
    assert warm(stack)["WriteUnitsPerSecond"] == 20000


def test_the_rollback_of_a_raise_is_accepted_and_changes_nothing(
    warm_throughput: ModuleType, event: Event, cloudformation: ResponseEndpoint, stack: Stack
) -> None:
    """CloudFormation "Custom resources": a failed update is rolled back by an Update whose ResourceProperties
    are the old ones; failing it would leave the stack in UPDATE_ROLLBACK_FAILED."""
    # Given an update that raised the table from 8,000 to 20,000, then failed elsewhere
    assert answer(warm_throughput, cloudformation, event("Create", "8000"))["Status"] == "SUCCESS"
    assert answer(warm_throughput, cloudformation, event("Update", "20000", old="8000"))["Status"] == "SUCCESS"
    rollback = event("Update", "8000", old="20000")
    cloudformation.register(StackRecord("cinnox-sms", rollback["StackId"], "UPDATE_ROLLBACK_IN_PROGRESS"))
    # When CloudFormation rolls it back to 8,000
    rolled_back = answer(warm_throughput, cloudformation, rollback)
    # Then the rollback succeeds, and the table keeps its 20,000 (it cannot go down)
    assert rolled_back["Status"] == "SUCCESS", rolled_back["Reason"]
    assert warm(stack)["WriteUnitsPerSecond"] == 20000


def test_a_table_already_warmer_from_traffic_is_left_as_it_is(
    warm_throughput: ModuleType, event: Event, cloudformation: ResponseEndpoint, stack: Stack
) -> None:
    """Source: "Understanding DynamoDB warm throughput": "DynamoDB will automatically adjust warm throughput
    values as your usage increases." A declared value below the table's own would fail the deploy."""
    # Given a stack deployed at 8,000, and traffic that took the table to 30,000
    assert answer(warm_throughput, cloudformation, event("Create", "8000"))["Status"] == "SUCCESS"
    raise_by_traffic(stack, 30000)
    # When the parameter is raised to 10,000
    raised = answer(warm_throughput, cloudformation, event("Update", "10000", old="8000"))
    # Then the deploy succeeds without asking DynamoDB to lower anything: the table keeps its 30,000
    assert raised["Status"] == "SUCCESS", raised["Reason"]
    assert "already takes 30000" in raised["Reason"]
    assert raised["Data"] == {"WriteUnitsPerSecond": "30000"}
    assert warm(stack)["WriteUnitsPerSecond"] == 30000


def test_delete_leaves_the_table_as_it_is(
    warm_throughput: ModuleType, event: Event, cloudformation: ResponseEndpoint, stack: Stack
) -> None:
    # Given a pre-warmed table
    assert answer(warm_throughput, cloudformation, event("Create", "8000"))["Status"] == "SUCCESS"
    # When the parameter is set back to 0 (the resource's condition turns false) or the stack is deleted
    deleted = answer(warm_throughput, cloudformation, event("Delete", "8000"))
    # Then the Delete succeeds and the table stays as warm as it is
    assert deleted["Status"] == "SUCCESS"
    assert warm(stack)["WriteUnitsPerSecond"] == 8000


def test_a_dynamodb_refusal_fails_the_create_with_its_words(
    warm_throughput: ModuleType, event: Event, cloudformation: ResponseEndpoint, stack: Stack
) -> None:
    # Given the stack's table deleted outside CloudFormation
    boto3.client("dynamodb").delete_table(TableName=stack.table_name)
    # When CloudFormation sends the Create
    failed = answer(warm_throughput, cloudformation, event("Create", "8000"))
    # Then it fails with DynamoDB's error, and a Delete of the id it answered changes nothing
    assert failed["Status"] == "FAILED"
    assert "ResourceNotFoundException" in failed["Reason"]
    delete = event("Delete", "8000")
    delete["PhysicalResourceId"] = failed["PhysicalResourceId"]
    assert answer(warm_throughput, cloudformation, delete)["Status"] == "SUCCESS"


def test_moto_refuses_a_lower_warm_throughput_with_dynamodbs_error(stack: Stack) -> None:
    """Source: "Understanding DynamoDB warm throughput" ("Once increased, warm throughput values can't be
    decreased."); DynamoDB answers ValidationException, "... lower than current WarmThroughput, decreasing
    WarmThroughput is not supported" (hashicorp/terraform-provider-aws, go-to-k/cdkd#1857). moto takes any
    value: local_stack/moto_server.py enforces the rule here and in the local stack."""
    # Given a table at 8,000 write units
    raise_by_traffic(stack, 8000)
    # When anything asks DynamoDB for fewer
    with pytest.raises(ClientError) as refused:
        boto3.client("dynamodb").update_table(TableName=stack.table_name, WarmThroughput={"WriteUnitsPerSecond": 6000})
    # Then it is refused with DynamoDB's error, and the table keeps its value (and the reads it left out)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == WARM_THROUGHPUT_DECREASE.format(unit="WriteUnitsPerSecond")
    assert warm(stack) == {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 8000}
