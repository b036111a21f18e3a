"""The digest people get instead of one e-mail per failed SMS: its text, its machine message, and the template's
rules that make one digest per window (AWS's pages named by each test)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cinnox_sms.digest import (
    IDS_SHOWN,
    MACHINE_PROTOCOLS,
    MAX_MESSAGE_BYTES,
    SUBJECT_LIMIT,
    Digest,
    DigestNotPublished,
    DigestPublisher,
    Failure,
    digests,
)
from cinnox_sms.status import Status
from local_stack.demo import Account, digest_checks
from local_stack.streams import QueueConfig, QueueMapping, QueueMappingError, sqs_record
from local_stack.template import SubscriptionPolicyError, Template, check_sqs_subscriptions
from local_stack.traffic import plan_day

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def alert_record(
    transaction_id: str,
    *,
    status: str = "Undelivered",
    country: str | None = "VE",
    exception: str = "sms deliver failed",
    seconds: float = 0,
) -> dict[str, Any]:
    """An SQS record of the digest queue: the alert's machine message (the stored record) as its raw body."""
    item = {
        "transactionId": transaction_id,
        "status": status,
        "exception": exception,
        "receivedAt": (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds"),
        "recipientNumber": "584121234567",
        "appId": "app-0f3c9d",
    }
    if country:
        item["recipientCountry"] = country
    return {
        "messageId": f"m-{transaction_id}",
        "body": json.dumps(item, sort_keys=True),
        "attributes": {"SentTimestamp": str(int((START.timestamp() + seconds) * 1000) + 50)},
    }


def burst(count: int, *, id_length: int = 20) -> list[dict[str, Any]]:
    return [alert_record(f"txn-{i:06d}".ljust(id_length, "x"), seconds=i * 0.1) for i in range(count)]


# --- the text for people ---------------------------------------------------------------------------


def test_the_digest_counts_by_country_and_exception_most_first() -> None:
    # Given a window's alerts: 3 from VE, 2 from HK, 2 from SG (a tie), one Rejected
    records = [
        *(alert_record(f"ve-{i}", seconds=i) for i in range(3)),
        *(alert_record(f"hk-{i}", country="HK", seconds=10 + i) for i in range(2)),
        *(alert_record(f"sg-{i}", country="SG", seconds=20 + i) for i in range(2)),
        alert_record("rej-1", status="Rejected", country="HK", exception="sms send failed", seconds=30),
    ]
    # When the digest is built
    [digest] = digests(records, "prod-sms")
    # Then it counts every failure, countries and exceptions most first (ties by name)
    assert digest.failed == 8
    assert digest.by_country() == [("HK", 3), ("VE", 3), ("SG", 2)]
    assert digest.by_exception() == [("sms deliver failed", 7), ("sms send failed", 1)]
    assert digest.by_status() == [("Undelivered", 7), ("Rejected", 1)]
    # And the text says so, in that order
    text = digest.text()
    assert text.startswith(
        "8 outbound SMS sent through CINNOX failed between 2026-11-30 08:00:00 and 2026-11-30 08:00:30"
    )
    assert text.index("  HK") < text.index("  VE") < text.index("  SG")
    assert "  sms deliver failed       7" in text


def test_the_text_lists_the_first_ids_and_the_commands_to_see_the_rest() -> None:
    # Given more failures than the text lists
    records = burst(IDS_SHOWN + 5)
    # When the digest is built
    [digest] = digests(records, "prod-sms")
    text = digest.text()
    # Then the first IDs, in the order received, are listed, and how many more there are
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("  txn-")]
    assert listed == [f"txn-{i:06d}".ljust(20, "x") for i in range(IDS_SHOWN)]
    assert f"The first {IDS_SHOWN} transaction IDs:" in text
    assert "  ... and 5 more" in text
    # And the cinnox-sms commands name the stack and the window (whole minutes around it)
    assert (
        "  cinnox-sms report --stack prod-sms --since 2026-11-30T08:00:00Z --until 2026-11-30T08:01:00Z"
        " --by hour --view arrival" in text
    )
    assert "  cinnox-sms status <TransactionID> --stack prod-sms" in text


@pytest.mark.parametrize("stack_name", ["s", "a-very-long-stack-name-" * 6])
@pytest.mark.parametrize("parts", [1, 3])
def test_the_subject_keeps_to_sns_rules(stack_name: str, parts: int) -> None:
    """SNS API reference, Publish: Subject is printable ASCII, no line breaks, at most 100 characters."""
    # Given a digest, whole or a part, for a stack of any name
    failure = Failure("t-1", "Undelivered", "VE", "sms deliver failed", START)
    digest = Digest((failure,) * 12_345, 0, START, START + timedelta(minutes=5), stack_name, parts, parts)
    # When its subject is made
    subject = digest.subject()
    # Then SNS accepts it
    assert len(subject) <= SUBJECT_LIMIT
    assert subject.isascii()
    assert subject.isprintable()
    assert subject.startswith("CINNOX SMS digest: 12345 SMS failed in 1 country, 2026-11-30 08:00-08:05 UTC")


def test_a_single_failure_gets_a_digest_of_its_own() -> None:
    # Given one failure in a quiet hour
    # When its window's digest is built
    [digest] = digests([alert_record("only-one")], "prod-sms")
    # Then it names it, without "first N" or "more"
    assert digest.failed == 1
    assert "Transaction IDs:\n  only-one  Undelivered  VE  sms deliver failed" in digest.text()
    assert "more" not in digest.text()


# --- the machine message ------------------------------------------------------------------------------


def test_a_burst_of_1000_failures_is_one_message_with_every_id() -> None:
    # Given a batch of 1,000 alerts (the burst), with IDs as long as a UUID
    records = burst(1000, id_length=36)
    # When the batch is digested
    batch = digests(records, "prod-sms")
    # Then it is one digest, under SNS's message size limit
    assert len(batch) == 1
    message = json.loads(batch[0].message())
    assert len(batch[0].message().encode()) <= MAX_MESSAGE_BYTES
    # And people get the text, machines the JSON with every transaction ID once
    assert message["email"] == message["default"] == batch[0].text()
    for protocol in MACHINE_PROTOCOLS:
        machine = json.loads(message[protocol])
        assert machine["failed"] == 1000
        assert machine["transactionIds"]["Undelivered"] == [f"txn-{i:06d}".ljust(36, "x") for i in range(1000)]
        assert machine["byCountry"] == {"VE": 1000}
        assert (machine["part"], machine["parts"], machine["unreadable"]) == (1, 1, 0)


def test_a_batch_too_large_for_one_message_is_split_each_failure_in_one_part() -> None:
    """SNS API reference, Publish: a message is at most 256 KiB (every protocol's text together)."""
    # Given a batch at SQS's BatchSize maximum whose IDs cannot fit one SNS message
    records = burst(10_000, id_length=36)
    # When it is digested
    batch = digests(records, "prod-sms")
    # Then it is split into parts that each fit, and every failure is in exactly one part
    assert len(batch) > 1
    assert all(len(d.message().encode()) <= MAX_MESSAGE_BYTES for d in batch)
    ids = [i for d in batch for i in json.loads(json.loads(d.message())["sqs"])["transactionIds"]["Undelivered"]]
    assert sorted(ids) == sorted(json.loads(r["body"])["transactionId"] for r in records)
    assert [(d.part, d.parts) for d in batch] == [(n, len(batch)) for n in range(1, len(batch) + 1)]


def test_what_is_not_an_alert_record_is_counted_unreadable_never_raised() -> None:
    # Given a batch with a good alert, junk, a record without a status and a Delivered TDR
    records = [
        alert_record("good"),
        {"messageId": "x", "body": "not json"},
        {"messageId": "y", "body": json.dumps({"transactionId": "t"})},
        {"messageId": "z", "body": json.dumps({"transactionId": "d", "status": "Delivered"})},
    ]
    # When it is digested
    [digest] = digests(records, "prod-sms")
    # Then the alert is in it and the other three are counted, not failed
    assert (digest.failed, digest.unreadable) == (1, 3)
    assert "3 message(s) of the digest queue were not alert records" in digest.text()


def test_an_alert_delivered_twice_in_a_batch_counts_once() -> None:
    # Given SQS's at-least-once delivery: the same alert twice in one batch
    record = alert_record("twice")
    # When it is digested
    [digest] = digests([record, dict(record, messageId="again")], "prod-sms")
    # Then it counts once
    assert digest.failed == 1


def test_a_failed_publish_raises_so_the_queue_retries_the_batch() -> None:
    # Given SNS refusing the publish
    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    [digest] = digests([alert_record("t-1")], "prod-sms")
    with Stubber(sns) as stub:
        stub.add_client_error("publish", service_error_code="KMSThrottling", http_status_code=400)
        # When the digest is published, Then the error is raised (no batch item failures: all is retried)
        with pytest.raises(DigestNotPublished, match="KMSThrottling"):
            DigestPublisher(sns, "arn:aws:sns:us-east-1:123456789012:digest").publish(digest)


# --- the template's rules -----------------------------------------------------------------------------


def _event(template: Template) -> dict[str, Any]:
    properties: dict[str, Any] = template.resource("DigestFunction")["Properties"]["Events"]["Alerts"]["Properties"]
    return properties


def test_the_digest_window_is_within_lambdas_sqs_batching_range(template: Template) -> None:
    """Lambda Developer Guide, "Using Lambda with Amazon SQS" (Batching behavior): MaximumBatchingWindowInSeconds
    0-300; with BatchSize above 10 it must be at least 1; BatchSize at most 10,000 for a standard queue."""
    # Given the digest function's SQS event and the window parameter it uses
    event = _event(template)
    window = template.body["Parameters"]["DigestWindowSeconds"]
    # Then every value the parameter allows is a window Lambda accepts for that batch size
    assert event["MaximumBatchingWindowInSeconds"] == {"Ref": "DigestWindowSeconds"}
    assert event["BatchSize"] == 10_000
    assert (window["MinValue"], window["MaxValue"], window["Default"]) == (1, 300, 300)


def test_the_digest_mapping_runs_at_most_two_at_once(template: Template) -> None:
    """Lambda Developer Guide, "Using Lambda with Amazon SQS" (Configuring maximum concurrency): 2 to 1,000."""
    assert _event(template)["ScalingConfig"] == {"MaximumConcurrency": 2}


def test_the_visibility_timeout_covers_six_function_timeouts_and_the_window(template: Template) -> None:
    """Lambda Developer Guide, "Using Lambda with Amazon SQS": the queue's visibility timeout at least six times
    the function's timeout; messages stay in flight while the batching window gathers them."""
    timeout = template.function("DigestFunction")["Timeout"]
    longest_window = template.body["Parameters"]["DigestWindowSeconds"]["MaxValue"]
    queue = template.resource("DigestQueue")["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * timeout + longest_window


def test_the_digest_queue_redrives_to_a_dead_letter_queue_with_an_alarm(template: Template) -> None:
    """SQS Developer Guide, "Using dead-letter queues": maxReceiveCount; 14 days is SQS's longest retention."""
    queue = template.resource("DigestQueue")["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DigestDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert template.resource("DigestDeadLetterQueue")["Properties"]["MessageRetentionPeriod"] == 1_209_600
    alarm = template.resource("DigestDeadLetterQueueAlarm")["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DigestDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]


def test_the_digest_queue_takes_raw_alerts_from_the_alert_topic_only(template: Template) -> None:
    """SNS Developer Guide, "Subscribing an Amazon SQS queue to an Amazon SNS topic" (the queue policy's
    aws:SourceArn) and "Amazon SNS raw message delivery"."""
    subscription = template.resource("DigestSubscription")["Properties"]
    assert subscription["TopicArn"] == {"Ref": "AlertTopic"}
    assert (subscription["Protocol"], subscription["RawMessageDelivery"]) == ("sqs", True)
    policy = template.resource("DigestQueuePolicy")["Properties"]
    assert policy["Queues"] == [{"Ref": "DigestQueue"}]
    [statement] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]  # and TlsOnly
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["DigestQueue", "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "AlertTopic"}}}


def test_the_key_lets_sns_encrypt_for_the_alert_topic_only(template: Template) -> None:
    """SNS Developer Guide, "Key management" (an SNS topic sending to an encrypted queue) and KMS, "Confused
    deputy prevention": kms:Decrypt and kms:GenerateDataKey* for sns.amazonaws.com, scoped by aws:SourceAccount
    and aws:SourceArn."""
    statements = template.resource("EncryptionKey")["Properties"]["KeyPolicy"]["Statement"]
    [sns] = [s for s in statements if s["Principal"] == {"Service": "sns.amazonaws.com"}]
    assert sns["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert sns["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # CloudFormation names a topic without TopicName <stack>-<logical id>-<suffix>: the alert topic's ARN only
    pattern = sns["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert pattern.endswith(":${AWS::StackName}-AlertTopic-*")
    assert "TopicName" not in template.resource("AlertTopic")["Properties"]


def test_people_subscribe_to_the_digest(template: Template) -> None:
    subscription = template.resource("AlertEmailSubscription")
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "DigestTopic"}
    assert "digest" in template.body["Parameters"]["AlertEmail"]["Description"]
    assert template.resource("DigestTopic")["Properties"]["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}
    assert template.body["Outputs"]["DigestTopicArn"]["Value"] == {"Ref": "DigestTopic"}
    function = template.function("DigestFunction")
    assert function["Environment"]["Variables"]["STACK_NAME"] == {"Ref": "AWS::StackName"}


# --- the local stack refuses what Lambda refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "why"),
    [
        ({"BatchSize": 10_001}, "BatchSize 10001 is outside 1-10000"),
        ({"BatchSize": 100}, "needs MaximumBatchingWindowInSeconds of at least 1"),
        ({"BatchSize": 100, "MaximumBatchingWindowInSeconds": 0}, "needs MaximumBatchingWindowInSeconds"),
        ({"MaximumBatchingWindowInSeconds": 301}, "MaximumBatchingWindowInSeconds 301 is outside 0-300"),
        ({"ScalingConfig": {"MaximumConcurrency": 1}}, "MaximumConcurrency 1 is outside 2-1000"),
    ],
)
def test_the_local_stack_refuses_an_sqs_mapping_lambda_refuses(properties: dict[str, Any], why: str) -> None:
    """Lambda Developer Guide, "Using Lambda with Amazon SQS"; Lambda API reference, CreateEventSourceMapping."""
    with pytest.raises(QueueMappingError, match=why):
        QueueConfig.from_properties({"Queue": "arn:aws:sqs:us-east-1:123456789012:q", **properties})


def test_the_local_stack_reads_the_digest_mapping_as_lambda_would(template: Template) -> None:
    # Given the template's digest event, with the window parameter resolved to its default
    properties = {**_event(template), "Queue": "arn:q", "MaximumBatchingWindowInSeconds": 300}
    # When the local stack reads it
    config = QueueConfig.from_properties(properties)
    # Then it batches by 10,000 over 300 s, two at a time at most, and reports no partial batches
    assert (config.batch_size, config.batching_window, config.maximum_concurrency) == (10_000, 300.0, 2)
    assert not config.report_item_failures


# --- the local stack's SQS mapping: gathering as Lambda does -----------------------------------------


class FakeSqs:
    """ReceiveMessage from a list of messages: what the mapping asks for and what it gives back."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [
            {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body, "Attributes": {}}
            for i, body in enumerate(bodies)
        ]
        self.asked: list[int] = []
        self.released: list[str] = []
        self.deleted: list[str] = []

    def client(self, service: str) -> FakeSqs:
        return self

    def receive_message(self, **request: Any) -> dict[str, Any]:
        count = request["MaxNumberOfMessages"]
        self.asked.append(count)
        given, self.waiting = self.waiting[:count], self.waiting[count:]
        return {"Messages": given}

    def change_message_visibility_batch(self, **request: Any) -> None:
        self.released += [entry["ReceiptHandle"] for entry in request["Entries"] if entry["VisibilityTimeout"] == 0]

    def delete_message_batch(self, **request: Any) -> None:
        assert len(request["Entries"]) <= 10  # DeleteMessageBatch's maximum
        self.deleted += [entry["ReceiptHandle"] for entry in request["Entries"]]


def _mapping(sqs: FakeSqs, invoke: Any = None, **config: Any) -> QueueMapping:
    aws: Any = sqs  # stands for the boto3 session: its client("sqs")
    return QueueMapping("url", QueueConfig("arn:q", **config), invoke or (lambda event: None), aws)


def test_the_mapping_gathers_up_to_the_batch_size_ten_messages_a_receive() -> None:
    """Lambda Developer Guide, "Using Lambda with Amazon SQS" (Batching behavior): a batch holds up to BatchSize
    messages, above ReceiveMessage's 10, gathered over the batching window."""
    # Given 45 messages waiting and a batch size of 25
    sqs = FakeSqs([f"alert {i}" for i in range(45)])
    mapping = _mapping(sqs, batch_size=25, batching_window=300)
    # When a batch is gathered
    batch = mapping.gather(wait_seconds=0)
    # Then it holds 25, received ten at a time, without waiting out the window once full
    assert [m["Body"] for m in batch] == [f"alert {i}" for i in range(25)]
    assert sqs.asked == [10, 10, 5]


def test_the_mapping_stops_at_the_invocation_payload_limit_and_gives_the_rest_back() -> None:
    """Lambda quotas: 6 MB per synchronous invocation payload; the batch stops short of it ("Using Lambda with
    Amazon SQS": Lambda invokes when the payload would reach 6 MB)."""
    # Given 30 messages of about 1 KB and a payload limit (scaled down) that holds about 12
    sqs = FakeSqs(["x" * 1000] * 30)
    aws: Any = sqs
    mapping = QueueMapping(
        "url",
        QueueConfig("arn:q", batch_size=10_000, batching_window=300),
        lambda event: None,
        aws,
        payload_limit=15_000,
    )
    # When a batch is gathered
    batch = mapping.gather(wait_seconds=0, until_empty=True)
    # Then the event stays under the limit, and what did not fit is visible again at once, not held
    event = {"Records": [sqs_record(m, "arn:q") for m in batch]}
    assert len(json.dumps(event)) <= 15_000
    assert 0 < len(batch) < 20
    assert sqs.released == [f"r{i}" for i in range(len(batch), 20)]


def test_the_mapping_deletes_what_the_function_processed_ten_at_a_time() -> None:
    # Given a batch of 25 the function processes
    sqs = FakeSqs([f"alert {i}" for i in range(25)])
    invoked: list[int] = []
    mapping = _mapping(sqs, lambda event: invoked.append(len(event["Records"])), batch_size=100, batching_window=1)
    # When it is delivered
    mapping.deliver(mapping.gather(wait_seconds=0, until_empty=True))
    # Then one invocation had them all, and all were deleted
    assert invoked == [25]
    assert sqs.deleted == [f"r{i}" for i in range(25)]


# --- the demo: a carrier outage, and its accounting --------------------------------------------------


def test_the_simulated_day_has_a_carrier_outage_in_one_country() -> None:
    # Given a day planned with a burst of 40 failures in NG
    messages, deliveries = plan_day(50, app_id="app", seed=3, burst=40, burst_country="NG")
    outage = [m for m in messages if m.transaction_id.startswith("outage-")]
    # Then 40 SMS to NG are Undelivered, each with a Submitted and an Undelivered TDR, within 90 seconds
    assert len(outage) == 40
    assert {(m.country.code, m.outcome) for m in outage} == {("NG", Status.UNDELIVERED)}
    times = [d.at for d in deliveries if d.key and d.key[0].startswith("outage-")]
    assert len(times) == 80
    assert max(times) - min(times) <= 90
    # And the rest of the day is as it was without the outage
    assert messages[:50] == plan_day(50, app_id="app", seed=3)[0]


def test_the_demo_checks_each_failure_is_in_exactly_one_digest() -> None:
    # Given two failures and the digests people got
    failures = {("t1", "Undelivered"), ("t2", "Rejected")}
    one = {"transactionIds": {"Undelivered": ["t1"]}}
    two = {"transactionIds": {"Rejected": ["t2"]}}
    messages, _ = plan_day(2, app_id="app", seed=3, malformed=0)

    def account(digests: list[dict[str, Any]], windows: int) -> Account:
        return Account(
            messages,
            [],
            set(),
            Counter(failures),
            {},
            [],
            1.0,
            digests=digests,
            digest_invocations=windows,
            digest_window=3,
        )

    # Then each in exactly one digest, one digest per window, passes
    assert all(c.ok for c in digest_checks(account([one, two], 1), failures))
    # And a failure in two digests, or in none, fails the first check
    assert not digest_checks(account([one, two, one], 2), failures)[0].ok
    assert not digest_checks(account([one], 1), failures)[0].ok
    # And more than two digests for one window fails the second
    assert not digest_checks(account([one, two, {"transactionIds": {}}], 1), failures)[1].ok


def test_the_local_stack_refuses_an_sqs_subscription_its_queue_policy_does_not_allow(template: Template) -> None:
    """SNS Developer Guide, "Subscribing an Amazon SQS queue to an Amazon SNS topic": the queue policy must let
    sns.amazonaws.com send for the topic, or SNS drops every message (moto would deliver them)."""
    # Given the template as it is, Then its digest subscription is allowed
    check_sqs_subscriptions(template)
    # Given the queue policy scoped to another topic
    body = copy.deepcopy(template.body)
    [statement, _tls_only] = body["Resources"]["DigestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statement["Condition"]["ArnEquals"]["aws:SourceArn"] = {"Ref": "OpsTopic"}
    # Then the local stack refuses the template, naming the subscription
    with pytest.raises(SubscriptionPolicyError, match="DigestSubscription: no AWS::SQS::QueuePolicy on DigestQueue"):
        check_sqs_subscriptions(Template(body))
    # And without any queue policy too
    del body["Resources"]["DigestQueuePolicy"]
    with pytest.raises(SubscriptionPolicyError):
        check_sqs_subscriptions(Template(body))


def test_a_time_out_of_range_does_not_fail_the_digest() -> None:
    """Issue 19: one odd item (a hand edit) must not send a whole digest batch to the dead-letter queue."""
    # Given an alert whose receivedAt is in the year 9999, and one as the webhook writes it
    odd = {"transactionId": "odd", "status": "Undelivered", "receivedAt": "9999-12-31T23:59:30.000+00:00"}
    fine = {"transactionId": "ok", "status": "Rejected", "receivedAt": "2026-11-30T08:00:10.000+00:00"}
    records = [{"body": json.dumps(record), "attributes": {"SentTimestamp": "1796025600000"}} for record in (odd, fine)]
    # When the batch becomes a digest
    [digest] = digests(records, "prod-sms")
    # Then both are in it, and its window is the one time that reads
    assert digest.failed == 2
    assert digest.window_end.year == 2026
    assert "9999" not in digest.report_command()
