"""Every failed SMS alerted once: through retries, partial PublishBatch answers, an SNS outage longer than the
stream's retries (the records then expire), and the overdue sweep that publishes from the table.

The stream mapping is played as Lambda plays it (a batch retried from its first failed record, at most
MaximumRetryAttempts times, then given up to the OnFailure destination); the TDRs come through the real
webhook, the alerts through moto's SNS to a queue subscribed to the topic.

AWS rules relied on:
- Lambda Developer Guide, "Using AWS Lambda with Amazon DynamoDB" (error handling, ReportBatchItemFailures):
  a batch is retried from the first record reported failed, with every record after it; after
  MaximumRetryAttempts the batch goes to the OnFailure destination as a pointer, not the records, and
  "DynamoDB Streams": stream records are kept 24 hours.
- SNS API Reference, PublishBatch: each entry is answered in Successful or Failed; a standard topic has no
  deduplication.
- DynamoDB Developer Guide, "Using Global Secondary Indexes": a sparse index holds only the items that
  have its key; index queries are eventually consistent.
- DynamoDB API Reference, UpdateItem: a ConditionExpression that fails writes nothing (one claimant wins).
- CloudWatch User Guide, "Using Amazon CloudWatch alarms": the alarm's state from its periods.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from cinnox_sms.alert_ledger import ALERT_DUE, ALERTED_AT, DUE_INDEX, STREAM_MARGIN, AlertLedger
from cinnox_sms.alerts import AlertPublisher
from cinnox_sms.overdue import CLAIM_LEASE, OverdueAlerts, Swept
from local_stack.logs import evaluate_alarm
from local_stack.template import Template, load_function_module, matches_filter, stream_filters
from support import LambdaContext, Post, Stack, emf, stream_records, tdr

Inbox = Callable[[], list[dict[str, Any]]]
# A port nothing listens on: SNS unreachable, a transport error before SNS got anything.
UNREACHABLE = "http://127.0.0.1:9"


def failed_sms(post: Post, count: int) -> list[str]:
    ids = [f"tx-{i}" for i in range(count)]
    for tid in ids:
        assert post(tdr(TransactionID=tid, Status="Undelivered", RecipientCountry="VE")).status == 200
    return ids


def alerted_ids(messages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.loads(m["Message"])["transactionId"] for m in messages)


def new_failure_records(template: Template, stack: Stack) -> list[dict[str, Any]]:
    """The stream's records the alert mapping's filter passes on."""
    filters = stream_filters(template, "AlertFunction", "TdrStream")
    return [r for r in stream_records(stack) if any(matches_filter(f, r) for f in filters)]


def lambda_retries(template: Template) -> int:
    return int(
        template.resource("AlertFunction")["Properties"]["Events"]["TdrStream"]["Properties"]["MaximumRetryAttempts"]
    )


def play_mapping(alert: ModuleType, records: list[dict[str, Any]], context: LambdaContext, retries: int) -> bool:
    """The alert mapping: the batch, then retries from its first failed record; False when given up."""
    batch = records
    for _ in range(retries + 1):
        try:
            answer = alert.lambda_handler({"Records": batch}, context)
        except BatchProcessingError:  # every record failed: Powertools raises, a function error (retried whole)
            continue
        failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
        if not failed:
            return True
        first = [r["dynamodb"]["SequenceNumber"] for r in batch].index(failed[0])
        batch = batch[first:]
    return False


class RefuseEntries:
    """SNS refusing some transaction IDs' entries for good (the rest published by moto), as PublishBatch
    answers a lasting per-entry failure: in Failed, with SenderFault false."""

    def __init__(self, client: Any, refused: set[str]) -> None:
        self.refused = refused
        self._ids: list[str] = []
        client.meta.events.register("provide-client-params.sns.PublishBatch", self._drop)
        client.meta.events.register("after-call.sns.PublishBatch", self._answer)

    def _drop(self, params: dict[str, Any], **_: Any) -> None:
        entries = params["PublishBatchRequestEntries"]
        self._ids = [
            e["Id"] for e in entries if json.loads(json.loads(e["Message"])["sqs"])["transactionId"] in self.refused
        ]
        params["PublishBatchRequestEntries"] = [e for e in entries if e["Id"] not in self._ids] or entries[:0]

    def _answer(self, parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Failed", []).extend(
            {"Id": i, "Code": "KMSAccessDenied", "Message": "key policy", "SenderFault": False} for i in self._ids
        )


@pytest.fixture
def sweep_module(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, alert: ModuleType) -> ModuleType:
    """The sweep function's environment (from the template), after the alert function's."""
    for name, value in stack.environment("OverdueAlertFunction").items():
        monkeypatch.setenv(name, value)
    module = load_function_module(template, "OverdueAlertFunction")
    module.sweep.cache_clear()
    return module


class Sweeps:
    """The sweep function run as its schedule runs it, with its clock at a chosen moment (and its SNS client
    chosen), each run's AlertsOverdue datapoint kept at that moment for the alarm."""

    def __init__(self, module: ModuleType, context: LambdaContext, capsys: pytest.CaptureFixture[str]) -> None:
        self._module, self._context, self._capsys = module, context, capsys
        self.overdue: list[tuple[datetime, float]] = []

    def run(self, at: datetime, sns: Any = None) -> Swept:
        settings = self._module.OverdueAlertSettings.from_env()
        sweep = OverdueAlerts.from_settings(
            settings, boto3.client("dynamodb"), sns or boto3.client("sns"), now=lambda: at
        )
        setattr(self._module, "sweep", lambda: sweep)  # noqa: B010 - the handler reads the module global
        self._capsys.readouterr()
        swept = Swept(**self._module.lambda_handler({}, self._context))
        blobs = emf(self._capsys.readouterr().out)
        assert len(blobs) == (1 if swept.overdue or swept.published else 0)  # nothing to say: no billed datapoint
        self.overdue += [(at, float(blob["AlertsOverdue"][0])) for blob in blobs if "AlertsOverdue" in blob]
        return swept

    def alarm(self, template: Template, at: datetime) -> str:
        properties = template.resource("AlertsOverdueAlarm")["Properties"]

        def statistic(start: datetime, end: datetime) -> float | None:
            values = [value for moment, value in self.overdue if start <= moment < end]
            return max(values) if values else None

        return evaluate_alarm("AlertsOverdueAlarm", properties, statistic, at).state


@pytest.fixture
def sweeps(sweep_module: ModuleType, context: LambdaContext, capsys: pytest.CaptureFixture[str]) -> Sweeps:
    return Sweeps(sweep_module, context, capsys)


@pytest.fixture
def grace(stack: Stack) -> timedelta:
    return timedelta(minutes=int(stack.environment("OverdueAlertFunction")["ALERT_GRACE_MINUTES"]))


@pytest.fixture
def unreachable_sns(alert: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Any:
    """SNS out of reach of the alert function: every PublishBatch a transport error before it is sent."""
    dead = boto3.client("sns", endpoint_url=UNREACHABLE, config=_no_retries())
    monkeypatch.setattr(alert, "alert_publisher", cache(lambda: AlertPublisher(dead, alert.settings().topic_arn)))
    return dead


def _no_retries() -> Any:
    from botocore.config import Config

    return Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1)


def test_one_entry_refused_for_good_sends_each_other_alert_once_and_the_sweep_sends_it_later(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    alert_inbox: Inbox,
    context: LambdaContext,
    sweeps: Sweeps,
    grace: timedelta,
) -> None:
    # Given 10 failed SMS, and SNS refusing tx-3's entry on every attempt (its key policy, say)
    ids = failed_sms(post, 10)
    refusal = RefuseEntries(alert.alert_publisher()._client, {"tx-3"})
    # When the mapping plays the batch and all its retries (bisecting aside: no function error)
    given_up = not play_mapping(alert, new_failure_records(template, stack), context, lambda_retries(template))
    # Then it gave up on tx-3's record, and each of the 9 others went out exactly once (was 16 publishes:
    # every retry re-sent the entries after tx-3 that SNS had accepted)
    assert given_up
    first = alerted_ids(alert_inbox())
    assert first == Counter({tid: 1 for tid in ids if tid != "tx-3"})
    # When the key is mended, the stream's records are gone, and the sweep runs past the grace period
    refusal.refused.clear()
    swept = sweeps.run(datetime.now(UTC) + grace + timedelta(minutes=1))
    # Then tx-3 goes out once, from the table, and nothing else again; its record is the TDR as stored,
    # without the bookkeeping of its alert (index key, claim)
    assert (swept.found, swept.published, swept.overdue) == (1, 1, 0)
    [message] = alert_inbox()
    assert alerted_ids([message]) == Counter({"tx-3": 1})
    record = json.loads(message["Message"])
    assert {ALERT_DUE, ALERTED_AT, "alertClaim"}.isdisjoint(record)
    assert record["status"] == "Undelivered"


def test_sns_unreachable_past_the_retries_and_the_stream_every_failure_reaches_a_subscriber_once(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    alert_inbox: Inbox,
    context: LambdaContext,
    sweeps: Sweeps,
    grace: timedelta,
    unreachable_sns: Any,
) -> None:
    # Given 25 failed SMS while SNS is out of reach of the product (alert function and sweep alike)
    ids = failed_sms(post, 25)
    start = datetime.now(UTC)
    # When the mapping retries until it gives up (the OnFailure pointer is all that is left of them)
    assert not play_mapping(alert, new_failure_records(template, stack), context, lambda_retries(template))
    assert alert_inbox() == []
    # And the sweeps run on their schedule through the outage: the last one a day and more later, when the
    # stream's records (24 hours) have expired and nobody ran a redrive
    outage = [start + grace + timedelta(minutes=m) for m in (5, 15, 25)] + [start + timedelta(hours=25)]
    during = [sweeps.run(at, sns=unreachable_sns) for at in outage]
    # Then each sweep found all 25 overdue and published none, and the alarm fired
    assert [(s.found, s.published, s.overdue) for s in during] == [(25, 0, 25)] * len(outage)
    assert sweeps.alarm(template, outage[-1] + timedelta(seconds=1)) == "ALARM"
    # When SNS is back, with only the schedule running
    back = start + timedelta(hours=25, minutes=10)
    after = [sweeps.run(back), sweeps.run(back + timedelta(minutes=10))]
    # Then every failure reached the subscriber exactly once, the next sweep found nothing, and the alarm cleared
    assert alerted_ids(alert_inbox()) == Counter(dict.fromkeys(ids, 1))
    assert [(s.found, s.published, s.overdue) for s in after] == [(25, 25, 0), (0, 0, 0)]
    assert sweeps.alarm(template, back + timedelta(seconds=1)) == "OK"
    # And nothing is left on the index
    index = boto3.client("dynamodb").scan(TableName=stack.table_name, IndexName=DUE_INDEX)
    assert index["Items"] == []


def test_a_retry_after_a_transport_error_sends_what_sns_never_got_once(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    alert_inbox: Inbox,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 12 failed SMS and SNS unreachable for the first attempt only (nothing sent: every record failed,
    # which Powertools raises as a function error, and the mapping retries the batch)
    ids = failed_sms(post, 12)
    records = new_failure_records(template, stack)
    live = alert.alert_publisher()
    dead = boto3.client("sns", endpoint_url=UNREACHABLE, config=_no_retries())
    monkeypatch.setattr(alert, "alert_publisher", cache(lambda: AlertPublisher(dead, alert.settings().topic_arn)))
    with pytest.raises(BatchProcessingError):
        alert.lambda_handler({"Records": records}, context)
    # When the mapping retries with SNS back
    monkeypatch.setattr(alert, "alert_publisher", cache(lambda: live))
    retry = alert.lambda_handler({"Records": records}, context)
    # Then each alert went out once, and a replay of the batch (a bisect, a duplicate delivery) sends nothing
    assert retry == {"batchItemFailures": []}
    assert alerted_ids(alert_inbox()) == Counter(dict.fromkeys(ids, 1))
    assert alert.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    assert alert_inbox() == []


def test_the_stream_leaves_an_old_failure_to_the_sweep_and_the_sweep_leaves_a_young_one_to_the_stream(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    alert_inbox: Inbox,
    context: LambdaContext,
    sweeps: Sweeps,
    grace: timedelta,
) -> None:
    # Given a failure stored now, its record not yet handled
    failed_sms(post, 1)
    records = new_failure_records(template, stack)
    received = datetime.fromisoformat(records[0]["dynamodb"]["NewImage"]["receivedAt"]["S"])
    # When the sweep runs just before the grace period is over, Then it does not touch it
    assert sweeps.run(received + grace - timedelta(seconds=1)).found == 0
    # When the stream's record is handled once its TDR is older than grace - STREAM_MARGIN (a backlog)
    alert.settings.cache_clear()
    late = alert.dispatch_records
    outcome = late(
        [alert.stream_record(r) for r in records],
        alert.alert_publisher(),
        alert.alert_ledger(),
        grace=grace,
        now=received + grace - STREAM_MARGIN + timedelta(seconds=1),
    )
    # Then the stream leaves it (the two never publish one item at once), and the sweep publishes it once
    assert (outcome.published, outcome.deferred, outcome.failed) == (0, 1, {})
    assert sweeps.run(received + grace + timedelta(seconds=1)).published == 1
    assert len(alert_inbox()) == 1


def test_two_sweeps_at_once_publish_each_failure_once(
    alert: ModuleType, post: Post, stack: Stack, alert_inbox: Inbox, sweeps: Sweeps, grace: timedelta
) -> None:
    # Given 3 overdue failures, and a first sweep that claimed them and died before publishing
    ids = failed_sms(post, 3)
    at = datetime.now(UTC) + grace + timedelta(minutes=1)
    ledger = AlertLedger(boto3.client("dynamodb"), stack.table_name)
    for due in list(ledger.due(at - grace)):
        assert ledger.claim(due, at, CLAIM_LEASE) is not None
    # When another sweep runs while the claims are live, Then it leaves them
    assert (sweeps.run(at + timedelta(minutes=1)).published, alert_inbox()) == (0, [])
    # When the claims have lapsed, Then the next sweep publishes each once
    assert sweeps.run(at + CLAIM_LEASE + timedelta(seconds=1)).published == 3
    assert alerted_ids(alert_inbox()) == Counter(dict.fromkeys(ids, 1))


def test_the_record_is_on_the_item_and_only_failures_are_owed_an_alert(
    alert: ModuleType, post: Post, stack: Stack, template: Template, context: LambdaContext
) -> None:
    # Given a Submitted, a Delivered and a Rejected TDR of one SMS
    for status in ("Submitted", "Delivered", "Rejected"):
        assert post(tdr(TransactionID="tx-r", Status=status)).status == 200
    dynamodb = boto3.client("dynamodb")
    items = {i["status"]["S"]: i for i in dynamodb.scan(TableName=stack.table_name)["Items"]}
    # Then only the failure is written owed an alert (on the sparse index)
    assert [status for status, item in items.items() if ALERT_DUE in item] == ["Rejected"]
    # When its alert is published
    assert alert.lambda_handler({"Records": new_failure_records(template, stack)}, context) == {"batchItemFailures": []}
    # Then the item records it, and is off the index
    item = dynamodb.get_item(
        TableName=stack.table_name, Key={"transactionId": {"S": "tx-r"}, "status": {"S": "Rejected"}}
    )
    assert ALERTED_AT in item["Item"]
    assert ALERT_DUE not in item["Item"]
    assert dynamodb.scan(TableName=stack.table_name, IndexName=DUE_INDEX)["Items"] == []


def test_the_margins_outlast_the_functions_timeouts(template: Template) -> None:
    """Lambda Developer Guide, "Configure Lambda function timeout": an invocation runs at most its Timeout. The
    stream path decides STREAM_MARGIN before the sweep may see an item, a claim outlasts a sweep."""
    alert_timeout = int(template.resource("AlertFunction")["Properties"]["Timeout"])
    sweep_timeout = int(template.resource("OverdueAlertFunction")["Properties"]["Timeout"])
    assert timedelta(seconds=2 * alert_timeout) < STREAM_MARGIN
    assert timedelta(seconds=sweep_timeout) < CLAIM_LEASE
