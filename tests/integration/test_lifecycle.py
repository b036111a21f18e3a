"""The local stack's CloudFormation response endpoint (on loopback): the rules CloudFormation enforces on a
custom resource's answer and its ServiceTimeout, which moto does not."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_stack.cloudformation import (
    MAX_RESPONSE_BYTES,
    TOO_LONG,
    ResponseEndpoint,
    StackRecord,
    custom_resource_event,
    run_custom_resource,
    service_timeout,
    stack_id,
)
from local_stack.template import REGION


def _cloudformation(endpoint_url: str) -> Any:
    return boto3.client(
        "cloudformation",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # nosec B106  # the emulator takes any
    )


# --- the rules the emulator enforces (CloudFormation's; moto enforces none) ------------


@pytest.fixture
def endpoint() -> Iterator[ResponseEndpoint]:
    served = ResponseEndpoint()
    yield served
    served.close()


def _event(endpoint: ResponseEndpoint, **properties: Any) -> dict[str, Any]:
    request_id = secrets.token_hex(8)
    return custom_resource_event(
        "Create",
        "Thing",
        "Custom::Thing",
        {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", **properties},
        endpoint.response_url(request_id),
        stack=stack_id("rules"),
        request_id=request_id,
    )


def _put(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=5) as response:  # nosec B310  # loopback
        response.read()


def _body_of_size(event: dict[str, Any], size: int) -> bytes:
    body = {
        "Status": "SUCCESS",
        "Reason": "",
        "PhysicalResourceId": "thing-1",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    body["Reason"] = "x" * (size - len(json.dumps(body).encode()))
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


@pytest.mark.parametrize(("size", "status"), [(MAX_RESPONSE_BYTES, "SUCCESS"), (MAX_RESPONSE_BYTES + 1, "FAILED")])
def test_a_response_over_4096_bytes_fails_the_resource(endpoint: ResponseEndpoint, size: int, status: str) -> None:
    """ "Custom resource response objects": the total size of the response body can't exceed 4096 bytes."""
    # Given a Create, When its function answers SUCCESS in a body of `size` bytes
    event = _event(endpoint)
    _put(event["ResponseURL"], _body_of_size(event, size))
    # Then CloudFormation takes it up to 4,096 bytes and fails the resource beyond
    answer = endpoint.answer(event, timeout=5)
    assert answer is not None
    assert answer["Status"] == status
    if status == "FAILED":
        assert answer["Reason"] == TOO_LONG


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Status": "OK"}, "Status must be SUCCESS or FAILED"),
        ({"PhysicalResourceId": ""}, "PhysicalResourceId must be a non-empty string"),
        ({"PhysicalResourceId": None}, "PhysicalResourceId must be a non-empty string"),
        ({"PhysicalResourceId": "é" * 513}, "longer than 1 KB"),
        ({"RequestId": "another"}, "RequestId is not the request's"),
        ({"StackId": "arn:aws:cloudformation:us-east-1:1:stack/other/1"}, "StackId is not the request's"),
        ({"LogicalResourceId": "Other"}, "LogicalResourceId is not the request's"),
    ],
)
def test_a_response_that_breaks_the_response_rules_fails_the_resource(
    endpoint: ResponseEndpoint, change: dict[str, Any], reason: str
) -> None:
    """ "Custom resource response objects": Status SUCCESS or FAILED, a non-empty PhysicalResourceId of
    at most 1 KB, and StackId, RequestId, LogicalResourceId copied verbatim from the request."""
    event = _event(endpoint)
    body = {**json.loads(_body_of_size(event, 300)), **change}
    _put(event["ResponseURL"], json.dumps(body).encode())
    answer = endpoint.answer(event, timeout=5)
    assert answer is not None
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]


def test_a_response_that_is_not_json_fails_the_resource(endpoint: ResponseEndpoint) -> None:
    """ "Custom resource response objects": the provider sends a JSON file to the pre-signed URL."""
    event = _event(endpoint)
    _put(event["ResponseURL"], b"SUCCESS")
    answer = endpoint.answer(event, timeout=5)
    assert answer is not None
    assert (answer["Status"], answer["Reason"]) == ("FAILED", "Invalid response object: the body is not JSON")


def test_service_timeout_bounds_the_wait_for_an_answer(endpoint: ResponseEndpoint) -> None:
    """AWS::CloudFormation::CustomResource: ServiceTimeout, 1 to 3,600 s (default 3,600), is how long
    CloudFormation waits for an answer, whatever the function's own timeout."""
    # Given a resource with ServiceTimeout 1 whose function never answers
    event = _event(endpoint, ServiceTimeout=1)
    sent: list[dict[str, Any]] = []
    # When CloudFormation sends the event
    answer = run_custom_resource(sent.append, endpoint, event, service_timeout(event["ResourceProperties"]))
    # Then the resource fails for want of an answer within the ServiceTimeout
    assert sent == [event]
    assert answer["Status"] == "FAILED"
    assert "ServiceTimeout (1 s)" in answer["Reason"]


def test_describe_stacks_refuses_a_stack_it_does_not_have(endpoint: ResponseEndpoint) -> None:
    record = StackRecord("known", stack_id("known"), "UPDATE_ROLLBACK_IN_PROGRESS")
    endpoint.register(record)
    client = _cloudformation(endpoint.base_url)
    [described] = client.describe_stacks(StackName="known")["Stacks"]
    assert described["StackStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
    with pytest.raises(ClientError) as refused:
        client.describe_stacks(StackName="unknown")
    assert refused.value.response["Error"]["Code"] == "ValidationError"
