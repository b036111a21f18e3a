"""The webhook's wiring and its parked-message format: built once from settings, one session, one format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from cinnox_sms import wiring
from cinnox_sms.errors import BadRequest
from cinnox_sms.parking import ParkedTdr, pack, unpack
from cinnox_sms.settings import WebhookSettings
from cinnox_sms.store import TdrStore
from cinnox_sms.webhook import ParkingDrain
from local_stack.streams import sqs_record
from local_stack.template import ROOT
from support import LambdaContext, Stack, http_event, table_items, tdr

RECEIVED = datetime(2026, 11, 27, 13, 0, 0, 123000, tzinfo=UTC)


class CountingSession(boto3.Session):
    """A boto3 session that notes each client it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[str] = []

    def client(self, *args: Any, **kwargs: Any) -> Any:
        self.made.append(args[0] if args else kwargs["service_name"])
        return super().client(*args, **kwargs)


def _settings(stack: Stack) -> WebhookSettings:
    return WebhookSettings.model_validate(stack.environment("WebhookFunction"))


def test_one_session_builds_every_client_and_sqs_waits_for_the_first_parked_tdr(stack: Stack) -> None:
    # Given the webhook's settings and one session
    session = CountingSession()
    # When the service is built, and then parks a TDR
    service = wiring.build_webhook_service(_settings(stack), session)
    made_at_build = list(session.made)
    assert service._parking is not None
    service._parking.park(json.dumps(tdr()), RECEIVED)
    # Then Secrets Manager's and DynamoDB's clients came from that session at once, SQS's only when needed
    assert sorted(made_at_build) == ["dynamodb", "secretsmanager"]
    assert session.made[2:] == ["sqs"]


def test_the_webhook_imports_no_boto3(stack: Stack) -> None:
    # Given the webhook's handler, as Lambda imports it, in a fresh interpreter with the function's environment
    code = (
        "import importlib.util as u, sys; s = u.spec_from_file_location('app', sys.argv[1]); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); "
        "from cinnox_sms import wiring; wiring.webhook_service(); print(sorted({n.split('.')[0] for n in sys.modules}))"
    )
    env = {**os.environ, **stack.environment("WebhookFunction"), "PYTHONPATH": str(ROOT / "layers" / "common")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "functions" / "webhook" / "app.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # When it is imported and builds its service; Then boto3 (and S3's transfer manager) never loaded: its clients
    # are botocore's, and boto3's import was 15 ms of each cold start (make bench)
    loaded = done.stdout
    assert "'botocore'" in loaded
    assert "'boto3'" not in loaded
    assert "'s3transfer'" not in loaded


def test_each_function_builds_its_own_once_from_the_default_session(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the webhook's and the parked-TDR function's environments, and the functions' default session watched
    for name, value in {**stack.environment("WebhookFunction"), **stack.environment("ParkedTdrFunction")}.items():
        monkeypatch.setenv(name, value)
    session = CountingSession()
    monkeypatch.setattr(wiring, "_default_clients", lambda: session)
    wiring.webhook_service.cache_clear()
    wiring.parking_drain.cache_clear()
    try:
        # When the service and the drain are asked for, twice
        first, second = wiring.webhook_service(), wiring.webhook_service()
        drain = wiring.parking_drain()
        # Then there is one service and one drain, their clients came from the default session once each,
        # and the drain writes to the service's table through a table client of its own (its own function)
        assert first is second
        assert drain is wiring.parking_drain()
        assert sorted(session.made) == ["dynamodb", "dynamodb", "secretsmanager"]
        assert drain._store._table_name == first.store._table_name
    finally:
        wiring.webhook_service.cache_clear()
        wiring.parking_drain.cache_clear()


def test_parked_message_reads_back_the_same_from_the_queue_and_from_lambdas_event(stack: Stack) -> None:
    """SQS message attributes as ReceiveMessage gives them, and as Lambda's SQS event does
    ("Using Lambda with Amazon SQS": messageAttributes, stringValue)."""
    # Given a TDR packed into the parking queue
    sqs = boto3.client("sqs")
    parked = ParkedTdr(raw_body=json.dumps(tdr(Status="Rejected")), received_at=RECEIVED)
    body, attributes = pack(parked)
    sqs.send_message(QueueUrl=stack.refs["ParkingQueue"], MessageBody=body, MessageAttributes=attributes)
    # When it is received by a client, and laid out as Lambda's event source would
    [message] = sqs.receive_message(QueueUrl=stack.refs["ParkingQueue"], MessageAttributeNames=["All"])["Messages"]
    record = sqs_record(message, stack.attrs["ParkingQueue.Arn"])
    # Then both read back the raw body and the time received, exactly
    assert unpack(message) == parked
    assert unpack(record) == parked


def test_drain_refuses_a_message_that_holds_no_tdr(stack: Stack) -> None:
    # Given the drain over the stack's table
    drain = ParkingDrain(TdrStore(boto3.client("dynamodb"), stack.table_name, 400))
    # When a message without a TDR is landed, Then it is refused and nothing is written
    with pytest.raises(BadRequest, match="no TDR in the message"):
        drain.land(ParkedTdr(raw_body='{"challenge": "x"}', received_at=RECEIVED))
    assert table_items(stack) == []
    # And a TDR lands once, with the time it was first received
    body = json.dumps(tdr())
    assert drain.land(ParkedTdr(raw_body=body, received_at=RECEIVED)) is True
    assert drain.land(ParkedTdr(raw_body=body, received_at=RECEIVED)) is False
    [item] = table_items(stack)
    assert item["receivedAt"] == {"S": "2026-11-27T13:00:00.123+00:00"}


def test_http_answer_has_the_payload_2_0_shape(webhook: ModuleType, stack: Stack, context: LambdaContext) -> None:
    """Payload format 2.0 answer: "Create AWS Lambda proxy integrations for HTTP APIs in API Gateway"."""
    # Given requests that are answered 200, 404 and 400
    cases = [
        (http_event(f"/tdr/{stack.webhook_secret}", '{"challenge": "c"}'), 200),
        (http_event("/tdr/wrong", '{"challenge": "c"}'), 404),
        (http_event(f"/tdr/{stack.webhook_secret}", "{"), 400),
        (http_event(f"/tdr/{stack.webhook_secret}", "{}", method="GET"), 404),
    ]
    for event, status in cases:
        # When each is answered
        response = webhook.lambda_handler(event, context)
        # Then the answer is a JSON body with its Content-Type, not base64, no cookies: nothing else
        assert response == {
            "statusCode": status,
            "body": response["body"],
            "isBase64Encoded": False,
            "headers": {"Content-Type": "application/json"},
            "cookies": [],
        }
        assert json.loads(response["body"])["code"] in (0, status)
