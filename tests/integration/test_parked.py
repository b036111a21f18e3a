"""The parked-TDR function, through its real handler, against moto: what the webhook parked lands once it can."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
from botocore.stub import Stubber

from cinnox_sms.parking import ParkedTdr, pack
from local_stack.streams import sqs_record
from support import LambdaContext, LogLines, Post, Stack, http_event, stream_records, table_items, tdr

RECEIVED = datetime(2026, 11, 27, 13, 0, 0, 123000, tzinfo=UTC)


def parked_messages(stack: Stack) -> list[Any]:
    sqs = boto3.client("sqs")
    return list(
        sqs.receive_message(
            QueueUrl=stack.refs["ParkingQueue"],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
        ).get("Messages", [])
    )


def drain(parked: ModuleType, stack: Stack, context: LambdaContext) -> dict[str, Any]:
    """Run the parked-TDR function on what the parking queue holds, as its SQS event source would."""
    messages = parked_messages(stack)
    event = {"Records": [sqs_record(m, stack.attrs["ParkingQueue.Arn"]) for m in messages]}
    answer: dict[str, Any] = parked.lambda_handler(event, context)
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        boto3.client("sqs").delete_message_batch(
            QueueUrl=stack.refs["ParkingQueue"],
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
    return answer


def test_parked_tdr_lands_when_the_table_is_back(
    webhook: ModuleType, parked: ModuleType, stack: Stack, context: LambdaContext, logs: LogLines
) -> None:
    # Given a TDR parked during an outage
    client = webhook.webhook_service()._store._client
    body = tdr(Status="Undelivered")
    with Stubber(client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", json.dumps(body)), context)
    received = parked_messages(stack)[0]["MessageAttributes"]["receivedAt"]["StringValue"]
    # When the queue is drained with the table back
    assert drain(parked, stack, context) == {"batchItemFailures": []}
    # Then the TDR is stored once, with the time it first arrived, and the queue is empty
    [item] = table_items(stack)
    assert (item["transactionId"]["S"], item["status"]["S"]) == (body["TransactionID"], "Undelivered")
    assert item["receivedAt"]["S"] == datetime.fromisoformat(received).isoformat(timespec="milliseconds")
    assert parked_messages(stack) == []
    assert len(stream_records(stack)) == 1
    # And the landing is logged with the message's id
    [landed] = [r for r in logs.records() if r["message"] == "parked TDR landed"]
    assert landed["duplicate"] is False


def test_parked_tdr_stays_parked_while_the_table_is_still_down(
    webhook: ModuleType, parked: ModuleType, stack: Stack, context: LambdaContext
) -> None:
    # Given a TDR parked during an outage, and the drain's own table client still refused
    with Stubber(webhook.webhook_service()._store._client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", json.dumps(tdr())), context)
    [message] = parked_messages(stack)
    with Stubber(parked.parking_drain()._store._client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        # When the queue is drained
        answer = drain(parked, stack, context)
    # Then the message is reported failed and stays in its queue; nothing is written
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert len(parked_messages(stack)) == 1
    assert table_items(stack) == []


def test_parked_tdr_stored_meanwhile_lands_as_a_duplicate(
    webhook: ModuleType, parked: ModuleType, post: Post, stack: Stack, context: LambdaContext
) -> None:
    # Given a TDR parked, then sent again by CINNOX and stored directly
    body = tdr()
    client = webhook.webhook_service()._store._client
    with Stubber(client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        post(body)
    assert post(body).body["result"]["duplicate"] is False
    # When the parked copy lands, Then nothing new is written
    assert drain(parked, stack, context) == {"batchItemFailures": []}
    assert len(table_items(stack)) == 1
    assert len(stream_records(stack)) == 1


def test_handler_leaves_a_parked_message_without_a_tdr_in_the_queue(
    parked: ModuleType, stack: Stack, context: LambdaContext
) -> None:
    """Partial batch answers: "Using Lambda with Amazon SQS" (ReportBatchItemFailures)."""
    # Given a message in the parking queue that holds no TDR, beside a parked TDR
    sqs = boto3.client("sqs")
    for raw in ('{"challenge": "x"}', json.dumps(tdr())):
        body, attributes = pack(ParkedTdr(raw_body=raw, received_at=RECEIVED))
        sqs.send_message(QueueUrl=stack.refs["ParkingQueue"], MessageBody=body, MessageAttributes=attributes)
    messages = sqs.receive_message(
        QueueUrl=stack.refs["ParkingQueue"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    # When the parked-TDR function drains them
    event = {"Records": [sqs_record(m, stack.attrs["ParkingQueue.Arn"]) for m in messages]}
    answer = parked.lambda_handler(event, context)
    # Then the TDR is written, and only the other is reported failed (it stays for an operator, as redrive leaves it)
    not_a_tdr = next(m["MessageId"] for m in messages if "challenge" in m["Body"])
    assert answer == {"batchItemFailures": [{"itemIdentifier": not_a_tdr}]}
    assert len(table_items(stack)) == 1


def test_the_drain_is_built_once_over_its_own_table_client(parked: ModuleType, stack: Stack) -> None:
    # Given the parked-TDR function loaded with its own environment: no secret, no queue URL
    assert not {"WEBHOOK_SECRET_ARN", "PARKING_QUEUE_URL"} & set(stack.environment("ParkedTdrFunction"))
    # When its drain is asked for twice
    first, second = parked.parking_drain(), parked.parking_drain()
    # Then there is one drain, over a DynamoDB client, writing to the stack's table with the webhook's retention
    assert first is second
    assert first._store._client.meta.service_model.service_name == "dynamodb"
    assert first._store._table_name == stack.table_name
    assert first._store._retention.days == int(stack.environment("WebhookFunction")["TDR_RETENTION_DAYS"])
