"""Parking end to end: a TDR waiting in the real local stack's parking queue lands in the table through
ParkedTdrFunction, run in its own runtime process behind the SQS mapping the template declares."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cinnox_sms.parking import ParkedTdr, pack
from local_stack.stack import LocalStack, StackOptions
from local_stack.template import Template
from support import tdr

APP = "parking-app-0001"
RECEIVED = datetime(2026, 11, 27, 13, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[LocalStack]:
    """The whole local stack (its own moto server); the process environment is restored after.
    (Not named ``stack``: that is the moto stack of tests/integration, which the secrets check reads.)"""
    saved = dict(os.environ)
    stack = LocalStack(Template.load(), StackOptions(app_id=APP, stack_name="parking", log_dir=tmp_path / "logs"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def _eventually[T](read: Callable[[], T], done: Callable[[T], bool], wait_seconds: float = 30) -> T:
    """What ``read`` gives once ``done`` holds for it, or when the wait is over (the caller asserts)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_parked_tdr_lands_once_through_the_parked_tdr_functions_queue_mapping(running: LocalStack) -> None:
    stack = running
    # Given a TDR parked as the webhook parks it (its body as received, and when)
    assert stack.aws is not None
    sqs = stack.aws.client("sqs")
    body = tdr(AppID=APP, Status="Undelivered")
    message, attributes = pack(ParkedTdr(raw_body=json.dumps(body), received_at=RECEIVED))
    sqs.send_message(QueueUrl=stack.output("ParkingQueueUrl"), MessageBody=message, MessageAttributes=attributes)
    # When the local stack's SQS mapping hands it to ParkedTdrFunction
    dynamodb = stack.aws.client("dynamodb")
    scan = functools.partial(dynamodb.scan, TableName=stack.output("TdrTableName"))
    [item] = _eventually(lambda: scan()["Items"], bool)
    # Then it is stored, with the time it first reached the webhook
    assert (item["transactionId"]["S"], item["status"]["S"]) == (body["TransactionID"], "Undelivered")
    assert item["receivedAt"] == {"S": "2026-11-27T13:00:00.123+00:00"}
    # And it was ParkedTdrFunction that landed it: the parking queue's mapping invokes it
    [mapping] = [m for m in stack.queue_mappings if m.queue_arn == stack.provisioned.attrs["ParkingQueue.Arn"]]
    assert isinstance(mapping._invoke, functools.partial)  # the stack's invoke path, to the function's host now
    assert (mapping._invoke.func, mapping._invoke.args) == (stack.invoke, ("ParkedTdrFunction",))
    assert stack.hosts["ParkedTdrFunction"].invocations >= 1
    # And the queue is empty: the mapping deleted what the function reported done
    counts = functools.partial(
        sqs.get_queue_attributes,
        QueueUrl=stack.output("ParkingQueueUrl"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    empty = {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert _eventually(lambda: counts()["Attributes"], empty.__eq__) == empty
