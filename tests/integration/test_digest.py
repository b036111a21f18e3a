"""Digests in moto: alerts published by the real AlertPublisher reach the digest queue through the template's
subscription, the local stack's SQS mapping gathers them as Lambda would, and the digest function publishes
one digest per batch; a failed publish leaves the batch for a retry, and the dead-letter queue keeps what never
goes out."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from cinnox_sms.alerts import Alert, AlertPublisher
from local_stack.runtime import FunctionError
from local_stack.streams import QueueConfig, QueueMapping

if TYPE_CHECKING:
    from types import ModuleType

    from local_stack.template import Template
    from support import LambdaContext, Stack

BURST = 1000  # the carrier outage


def publish_burst(stack: Stack, count: int, country: str = "VE") -> list[str]:
    """Publish failed-SMS alerts to the alert topic as the alert function does; their transaction IDs."""
    alerts = []
    for index in range(count):
        image = {
            "transactionId": f"outage-{index:05d}-3f1c2a9e-4b7d-4e8a-9c61-5d2e7f0b8a14",
            "status": "Undelivered" if index % 5 else "Rejected",
            "recipientCountry": country,
            "recipientNumber": f"58412{index:07d}",
            "exception": "sms deliver failed" if index % 5 else "sms send failed",
            "responseCode": "400",
            "receivedAt": f"2026-11-30T08:{index // 60 % 60:02d}:{index % 60:02d}.000+00:00",
            "appId": "app-0f3c9d",
            "serviceId": "svc-sms-01",
            "type": "tdr",
        }
        alert = Alert.from_image(str(index), image)
        assert alert is not None
        alerts.append(alert)
    assert AlertPublisher(boto3.client("sns"), stack.refs["AlertTopic"]).publish(alerts) == {}
    return [alert.tdr.transaction_id for alert in alerts]


def digest_mapping(template: Template, stack: Stack, handler: Callable[[dict[str, Any]], Any]) -> QueueMapping:
    """The template's SQS event as the local stack runs it (the window at DigestWindowSeconds' default, 300 s:
    the tests gather with until_empty, the burst being all in the queue before the window would close)."""
    properties = template.resource("DigestFunction")["Properties"]["Events"]["Alerts"]["Properties"]
    config = QueueConfig.from_properties(
        {**properties, "Queue": stack.attrs["DigestQueue.Arn"], "MaximumBatchingWindowInSeconds": 300}
    )

    def invoke(event: dict[str, Any]) -> Any:
        try:
            return handler(event)
        except Exception as error:  # what Lambda reports as a function error
            raise FunctionError({"errorType": type(error).__name__, "errorMessage": str(error)}) from error

    return QueueMapping(stack.refs["DigestQueue"], config, invoke, boto3.Session())


def queue_counts(url: str) -> tuple[int, int]:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_alert_topic_delivers_each_alert_raw_to_the_digest_queue(stack: Stack) -> None:
    """SNS Developer Guide, "Amazon SNS raw message delivery": the body is the message for the sqs protocol
    (MessageStructure json), and message attributes arrive as SQS message attributes."""
    # Given one alert published to the alert topic
    [transaction_id] = publish_burst(stack, 1)
    # When the digest queue is read
    sqs = boto3.client("sqs")
    [message] = sqs.receive_message(QueueUrl=stack.refs["DigestQueue"], MessageAttributeNames=["All"])["Messages"]
    # Then its body is the stored record itself, not SNS's envelope, with the alert's filter attributes
    record = json.loads(message["Body"])
    assert (record["transactionId"], record["status"]) == (transaction_id, "Rejected")
    assert "Type" not in record
    assert {name: value["StringValue"] for name, value in message["MessageAttributes"].items()} == {
        "status": "Rejected",
        "transactionId": transaction_id,
        "country": "VE",
        "appId": "app-0f3c9d",
        "serviceId": "svc-sms-01",
    }


def test_a_burst_of_1000_failures_is_1000_alerts_and_one_digest_each_failure_once(
    digest: ModuleType,
    stack: Stack,
    template: Template,
    context: LambdaContext,
    digest_inbox: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a carrier outage: 1,000 failures from one country published to the alert topic, one message each
    # (the digest queue, subscribed to it, stands for every machine subscriber: moto's SQS is slow to fill two)
    sent = publish_burst(stack, BURST)
    assert queue_counts(stack.refs["DigestQueue"]) == (BURST, 0)
    # When the digest queue's mapping gathers its window and invokes the digest function until the queue is empty
    mapping = digest_mapping(template, stack, lambda event: digest.lambda_handler(event, context))
    while batch := mapping.gather(wait_seconds=0, until_empty=True):
        mapping.deliver(batch)
    # Then people got one digest (at most two per window, as two pollers may split it), under one invocation
    digests = digest_inbox()
    assert 1 <= len(digests) <= 2
    assert mapping.stats.batch_sizes == [BURST]
    # And every failure is in exactly one digest, with the counts it adds up to
    listed = Counter(i for d in digests for ids in d["transactionIds"].values() for i in ids)
    assert listed == Counter(sent)
    assert sum(d["failed"] for d in digests) == BURST
    assert digests[0]["byCountry"] == {"VE": BURST}
    assert digests[0]["byStatus"] == {"Undelivered": 800, "Rejected": 200}
    # And the queue is empty: the mapping deleted what the function processed
    assert queue_counts(stack.refs["DigestQueue"]) == (0, 0)


def test_a_failed_publish_leaves_the_batch_in_the_queue_for_a_retry(
    digest: ModuleType,
    stack: Stack,
    template: Template,
    context: LambdaContext,
    digest_inbox: Callable[[], list[dict[str, Any]]],
) -> None:
    """Lambda Developer Guide, "Using Lambda with Amazon SQS": a batch whose invocation fails returns to the queue
    after its visibility timeout; nothing of it is deleted."""
    # Given alerts in the digest queue, and SNS refusing the digest once
    sent = publish_burst(stack, 25)
    stubbed = Stubber(digest.digest_publisher().client)
    stubbed.add_client_error("publish", service_error_code="KMSThrottling", http_status_code=400)
    mapping = digest_mapping(template, stack, lambda event: digest.lambda_handler(event, context))
    # When the mapping invokes the function with the batch
    batch = mapping.gather(wait_seconds=0, until_empty=True)
    with stubbed:
        mapping.deliver(batch)
    # Then the invocation failed and every message is still in the queue (in flight), none deleted
    assert mapping.stats.function_errors == 1
    assert queue_counts(stack.refs["DigestQueue"]) == (0, 25)
    assert digest_inbox() == []
    # When their visibility timeout passes (made 0 here) and the mapping tries again
    sqs = boto3.client("sqs")
    for message in sqs.receive_message(QueueUrl=stack.refs["DigestQueue"], MaxNumberOfMessages=1).get("Messages", []):
        pytest.fail(f"a message in flight was received again: {message['MessageId']}")
    sqs.change_message_visibility_batch(
        QueueUrl=stack.refs["DigestQueue"],
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(batch)
        ],
    )
    mapping.deliver(mapping.gather(wait_seconds=0, until_empty=True))
    # Then the retry publishes the digest with every failure
    [retried] = digest_inbox()
    assert sorted(i for ids in retried["transactionIds"].values() for i in ids) == sorted(sent)


def test_a_batch_that_never_goes_out_waits_in_the_dead_letter_queue(stack: Stack) -> None:
    """SQS Developer Guide, "Using dead-letter queues in Amazon SQS": a message received more than maxReceiveCount
    times (5 here) is moved to the dead-letter queue, where DigestDeadLetterQueueAlarm sees it."""
    # Given an alert in the digest queue
    publish_burst(stack, 1)
    sqs = boto3.client("sqs")
    url = stack.refs["DigestQueue"]
    # When five receives each end without a delete (the function failed five times)
    for _ in range(5):
        [message] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    # Then the next receive finds nothing: the message went to the dead-letter queue, kept there
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    [kept] = sqs.receive_message(QueueUrl=stack.refs["DigestDeadLetterQueue"])["Messages"]
    assert kept["Body"] == message["Body"]


def test_the_sample_event_makes_one_digest_and_counts_what_is_not_an_alert(
    digest: ModuleType,
    template_events: dict[str, dict[str, Any]],
    context: LambdaContext,
    digest_inbox: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given events/digest-sqs-batch.json (what `sam local invoke DigestFunction -e` sends): three alerts, one junk
    event = template_events["digest-sqs-batch.json"]
    # When the digest function handles it
    digest.lambda_handler(event, context)
    # Then one digest went out: two countries, the junk counted as unreadable, the batch not failed
    [published] = digest_inbox()
    assert (published["failed"], published["unreadable"]) == (3, 1)
    assert published["byCountry"] == {"HK": 2, "VE": 1}
    assert published["transactionIds"] == {
        "Undelivered": ["txn-20261127-0101", "txn-20261127-0102"],
        "Rejected": ["txn-20261127-0103"],
    }


def test_one_publish_reaches_email_queues_and_chat_each_in_its_own_form(
    digest: ModuleType,
    stack: Stack,
    context: LambdaContext,
    digest_inbox: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    template_events: dict[str, dict[str, Any]],
) -> None:
    """SNS Developer Guide, "Amazon SNS message formatting for different protocols" (MessageStructure json: each
    protocol its entry, "default" for the rest); the chat service receives SNS over HTTPS, its endpoint
    https://global.sns-api.chatbot.amazonaws.com, and renders the custom notification (tests/unit/test_chat.py)."""
    # Given the digest topic with a queue (raw) and the chat service's HTTPS endpoint subscribed; moto posts to it
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr("moto.sns.models.requests.post", lambda url, json, **_: posted.append({"url": url, **json}))
    boto3.client("sns").subscribe(
        TopicArn=stack.refs["DigestTopic"], Protocol="https", Endpoint="https://global.sns-api.chatbot.amazonaws.com"
    )
    publishes: list[dict[str, Any]] = []
    client = digest.digest_publisher().client
    client.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: publishes.append(params))
    # When the digest function handles the sample batch
    digest.lambda_handler(template_events["digest-sqs-batch.json"], context)
    # Then it published once, MessageStructure json: e-mail's entry is the text people read
    [request] = publishes
    assert request["MessageStructure"] == "json"
    entries = json.loads(request["Message"])
    assert entries["email"] == entries["default"]
    assert entries["email"].startswith("3 outbound SMS sent through CINNOX failed between ")
    # And that one message reached the queue as the machine JSON and the chat endpoint as the custom notification
    [machine] = digest_inbox()
    assert machine["failed"] == 3
    [delivery] = [p for p in posted if p.get("Type") == "Notification"]
    assert delivery["url"] == "https://global.sns-api.chatbot.amazonaws.com"
    assert delivery["Subject"] == request["Subject"]
    notification = json.loads(delivery["Message"])
    assert (notification["version"], notification["source"]) == ("1.0", "custom")
    assert notification["content"]["textType"] == "client-markdown"
    assert notification["content"]["title"] == request["Subject"]
    assert "*3 SMS failed*" in notification["content"]["description"]
