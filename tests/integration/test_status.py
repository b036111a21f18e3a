"""An SMS's history and current status: the query function and `cinnox-sms status`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.stub import Stubber

from cinnox_sms.alert_ledger import AlertLedger
from cinnox_sms.alerts import AlertPublisher
from cinnox_sms.model import Status
from cinnox_sms.overdue import OverdueAlerts
from cinnox_sms.query import sms_status
from cinnox_sms.secret_label import SUBSCRIBED_LABEL
from cinnox_sms_cli.main import main
from cinnox_sms_cli.redrive import Redriven, redrive_alerts
from support import Post, Stack, stream_records, tdr
from support import StubbedCloudFormation as _StubbedCloudFormation
from support import described_stack as _described

if TYPE_CHECKING:
    import pytest

    from local_stack.cinnox import CinnoxSimulator


def test_terminal_status_wins_whatever_arrived_first(post: Post, stack: Stack) -> None:
    # Given an SMS whose Undelivered TDR arrived before its Submitted one
    body = tdr(TransactionID="txn-order")
    post({**body, "Status": "Undelivered", "ResponseCode": "400", "Exception": "sms deliver failed"})
    post(body)
    post(body)  # and a repeat
    # When its status is asked for
    client = boto3.client("dynamodb")
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    found = sms_status(client, stack.table_name, "txn-order")
    # Then one Query returns each status once, and the current one is Undelivered
    assert calls == ["Query"]
    assert found is not None
    assert [r.status for r in found.history] == [Status.SUBMITTED, Status.UNDELIVERED]
    assert found.current is Status.UNDELIVERED
    assert found.failed is True


def test_unknown_transaction_is_none(stack: Stack) -> None:
    assert sms_status(boto3.client("dynamodb"), stack.table_name, "txn-unknown") is None


def test_cli_prints_history_and_current_status(post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    body = tdr(TransactionID="txn-cli", RecipientNumber=6581234567, RecipientCountry="SG")
    post({**body, "Status": "Rejected", "ResponseCode": 400, "Exception": "sms send failed"})
    post(body)
    assert main(["status", "txn-cli", "--table", stack.table_name]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "SMS txn-cli: Rejected (not delivered)"
    assert "recipient  +6581234567 (SG)" in printed
    history = printed.split("history")[1]
    assert history.index("Submitted") < history.index("Rejected")
    assert "sms send failed, response code 400" in printed


def test_cli_json(post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    post(tdr(TransactionID="txn-json", Status="Delivered"))
    assert main(["status", "txn-json", "--table", stack.table_name, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["currentStatus"] == "Delivered"
    assert answer["failed"] is False
    assert [h["status"] for h in answer["history"]] == ["Delivered"]
    assert "raw" not in answer["history"][0]


def test_cli_reads_the_table_from_a_stack(post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a deployed stack whose TdrTableName output names the table
    session = _StubbedCloudFormation([_described({"TdrTableName": stack.table_name})])
    post(tdr(TransactionID="txn-stack"))
    assert main(["status", "txn-stack", "--stack", "cinnox-sms"], session=session) == 0
    assert capsys.readouterr().out.startswith("SMS txn-stack: Submitted")


def test_cli_stack_without_the_output_or_unknown_is_a_clear_error(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    session = _StubbedCloudFormation([_described({}), "Stack with id no-such-stack does not exist"])
    assert main(["status", "txn", "--stack", "cinnox-sms"], session=session) == 3
    assert "stack cinnox-sms has no output TdrTableName" in capsys.readouterr().err
    assert main(["status", "txn", "--stack", "no-such-stack"], session=session) == 3
    assert "Stack with id no-such-stack does not exist" in capsys.readouterr().err


def test_cli_unknown_transaction_is_exit_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "txn-nope", "--table", stack.table_name]) == 1
    assert "no TDR stored for TransactionID 'txn-nope'" in capsys.readouterr().err


def test_cli_missing_table_is_a_clear_error(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "txn", "--table", "no-such-table"]) == 3
    assert "ResourceNotFoundException" in capsys.readouterr().err


def _queues(stack: Stack) -> list[str]:
    return [
        "--table",
        stack.table_name,
        "--parking-queue-url",
        stack.refs["ParkingQueue"],
        "--failure-queue-url",
        stack.refs["AlertFailureQueue"],
        "--topic-arn",
        stack.refs["AlertTopic"],
    ]


def test_redrive_writes_parked_tdrs_once(
    webhook: ModuleType, post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two TDRs parked during an outage (one also stored later, when CINNOX sent it again)
    client = webhook.webhook_service()._store._client
    first, second = tdr(TransactionID="park-1"), tdr(TransactionID="park-2")
    with Stubber(client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        stub.add_client_error("put_item", "ThrottlingException")
        post(first)
        post(second)
    post(second)
    # When redrive runs, twice
    assert main(["redrive", *_queues(stack)]) == 0
    printed = capsys.readouterr().out
    assert main(["redrive", *_queues(stack)]) == 0
    again = capsys.readouterr().out
    # Then the first is written, the second was there already, and the second run finds nothing
    assert "parked TDRs written: 1 (already stored: 1)" in printed
    assert "parked TDRs written: 0 (already stored: 0)" in again
    assert sms_status(boto3.client("dynamodb"), stack.table_name, "park-1") is not None


def queue_failure_record(stack: Stack) -> None:
    """Every record on the stream so far as one failed alert batch in the failure queue, as Lambda records it
    (Lambda Developer Guide, "Retaining discarded batches for a DynamoDB event source")."""
    records = stream_records(stack)
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stack.attrs["TdrTable.StreamArn"])["StreamDescription"]["Shards"][0]
    failure = {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "DDBStreamBatchInfo": {
            "shardId": shard["ShardId"],
            "streamArn": stack.attrs["TdrTable.StreamArn"],
            "batchSize": len(records),
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
        },
    }
    boto3.client("sqs").send_message(QueueUrl=stack.refs["AlertFailureQueue"], MessageBody=json.dumps(failure))


def test_redrive_with_a_stack_writes_parked_tdrs_with_the_stacks_retention(
    webhook: ModuleType, post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19: a redriven TDR keeps the stack's TdrRetentionDays, as the webhook would have written it."""
    # Given a TDR parked during an outage, and a stack deployed with TdrRetentionDays 30
    client = webhook.webhook_service()._store._client
    with Stubber(client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        post(tdr(TransactionID="park-30"))
    described = _described(
        {
            "TdrTableName": stack.table_name,
            "ParkingQueueUrl": stack.refs["ParkingQueue"],
            "AlertFailureQueueUrl": stack.refs["AlertFailureQueue"],
            "AlertTopicArn": stack.refs["AlertTopic"],
        }
    )
    described["Stacks"][0]["Parameters"] = [
        {"ParameterKey": "TdrRetentionDays", "ParameterValue": "30"},
        {"ParameterKey": "AlertGraceMinutes", "ParameterValue": "30"},
    ]
    session = _StubbedCloudFormation([described] * 6)
    # When redrive runs with --stack
    assert main(["redrive", "--stack", "cinnox-sms"], session=session) == 0
    # Then the TDR is written to expire 30 days from now, not 400
    found = sms_status(boto3.client("dynamodb"), stack.table_name, "park-30")
    assert found is not None
    expires_at = found.history[0].stored.expires_at
    assert expires_at is not None
    assert abs(expires_at - (time.time() + 30 * 86400)) < 3600


def received_ago(stack: Stack, minutes: int) -> None:
    """Every stored TDR as if received that long ago (receivedAt, the AlertsDue index's sort key)."""
    dynamodb = boto3.client("dynamodb")
    at = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    for item in dynamodb.scan(TableName=stack.table_name)["Items"]:
        dynamodb.update_item(
            TableName=stack.table_name,
            Key={"transactionId": item["transactionId"], "status": item["status"]},
            UpdateExpression="SET receivedAt = :at",
            ExpressionAttributeValues={":at": {"S": at}},
        )


def test_redrive_publishes_overdue_alerts_from_the_table_at_any_age(
    post: Post, stack: Stack, alert_inbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19: alerts survive the stream: redrive reads the table, not the stream (whose records are gone)."""
    # Given two failed SMS received two days ago, never alerted, and their failure record in the queue
    post(tdr(TransactionID="fail-1", Status="Rejected"))
    post(tdr(TransactionID="fail-2", Status="Undelivered"))
    queue_failure_record(stack)
    received_ago(stack, 2 * 24 * 60)
    # When redrive runs, twice
    assert main(["redrive", *_queues(stack)]) == 0
    first = capsys.readouterr().out
    assert main(["redrive", *_queues(stack)]) == 0
    # Then each alert was published once, and the failure record, covered, was cleared
    assert sorted(m["MessageAttributes"]["status"]["Value"] for m in alert_inbox()) == ["Rejected", "Undelivered"]
    assert "overdue alerts published: 2 (still not alerted: 0;" in first
    assert "alert failure records cleared: 1" in first
    assert "overdue alerts published: 0" in capsys.readouterr().out


def test_redrive_leaves_failures_younger_than_the_grace_to_the_stream(
    post: Post, stack: Stack, alert_inbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failure received 5 minutes ago (the stream's, until the grace period is over) and its record
    post(tdr(TransactionID="fail-1", Status="Rejected"))
    queue_failure_record(stack)
    received_ago(stack, 5)
    # When redrive runs with the template's grace
    assert main(["redrive", *_queues(stack)]) == 0
    # Then it publishes nothing yet, says one is owed, and clears the failure record: the index keeps the failure
    assert alert_inbox() == []
    printed = capsys.readouterr().out
    assert "overdue alerts published: 0 (still not alerted: 0; younger than the grace period, left" in printed
    assert "the sweep: 1)" in printed
    assert "alert failure records cleared: 1" in printed


class RefusingSns:
    """An SNS client that refuses the PublishBatch entries of chosen SMS (as a lasting fault would)."""

    def __init__(self, refused: set[str]) -> None:
        self._client = boto3.client("sns")
        self.refused = refused

    def publish_batch(self, **arguments: Any) -> Any:
        entries = arguments["PublishBatchRequestEntries"]
        bad = [e for e in entries if any(tid in e["Subject"] for tid in self.refused)]
        good = [e for e in entries if e not in bad]
        answer = dict(self._client.publish_batch(**{**arguments, "PublishBatchRequestEntries": good})) if good else {}
        failed = [{"Id": e["Id"], "Code": "KMSDisabled", "Message": "injected", "SenderFault": True} for e in bad]
        return {"Successful": answer.get("Successful", []), "Failed": failed}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_redrive_publishes_each_alert_once_while_one_keeps_failing(post: Post, stack: Stack, alert_inbox: Any) -> None:
    """Issue 19: a run while one alert keeps failing does not publish the others again (was: the whole range)."""
    # Given ten overdue failed SMS, and SNS refusing the fourth's alert
    for index in range(10):
        post(tdr(TransactionID=f"tx-{index}", Status="Undelivered"))
    queue_failure_record(stack)
    received_ago(stack, 60)
    sqs, queue = boto3.client("sqs"), stack.refs["AlertFailureQueue"]
    refusing = RefusingSns({"tx-3"})
    grace = timedelta(minutes=30)
    sweep = OverdueAlerts(
        AlertLedger(boto3.client("dynamodb"), stack.table_name),
        AlertPublisher(refusing, stack.refs["AlertTopic"]),  # type: ignore[arg-type]
        grace,
    )
    # When redrive runs twice while it keeps failing, then once after SNS takes it again
    runs = []
    for refused in ({"tx-3"}, {"tx-3"}, set()):
        refusing.refused = refused
        done = Redriven()
        redrive_alerts(sqs, queue, sweep, done)
        runs.append(done)
    # Then every alert reached the subscriber exactly once, and each run said what it published
    published = [
        json.loads(json.loads(m["Message"])["sqs"] if "sqs" in m["Message"] else m["Message"]) for m in alert_inbox()
    ]
    ids = sorted(p["transactionId"] for p in published)
    assert ids == sorted(f"tx-{i}" for i in range(10))
    assert [run.alerts_published for run in runs] == [9, 0, 1]
    assert [run.alerts_overdue for run in runs] == [1, 1, 0]
    assert [run.failure_records_cleared for run in runs] == [0, 0, 1]


def test_redrive_leaves_what_it_cannot_read(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("sqs").send_message(QueueUrl=stack.refs["AlertFailureQueue"], MessageBody="not json")
    boto3.client("sqs").send_message(QueueUrl=stack.refs["ParkingQueue"], MessageBody='{"challenge": "x"}')
    assert main(["redrive", *_queues(stack)]) == 1
    printed = capsys.readouterr().out
    assert "messages left in their queue: 2" in printed
    assert "cannot be read" in printed
    assert "is not a TDR" in printed


def _cinnox_flags(cinnox: CinnoxSimulator, stack: Stack) -> list[str]:
    return [
        "--base-url",
        cinnox.base_url,
        "--app-id",
        cinnox.app_id,
        "--token-secret",
        stack.refs["CinnoxAppTokenSecret"],
        "--webhook-secret-id",
        stack.refs["WebhookSecret"],
    ]


def test_subscription_lists_and_resends_without_showing_secrets(
    cinnox: CinnoxSimulator, stack: Stack, webhook_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given CINNOX with nothing subscribed yet
    assert main(["subscription", *_cinnox_flags(cinnox, stack)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    # When the subscription is sent again (CINNOX verifies the URL with its challenge)
    resend = ["--resend", "--webhook-url", f"{webhook_server}/tdr"]
    assert main(["subscription", *_cinnox_flags(cinnox, stack), *resend]) == 0
    printed = capsys.readouterr().out
    # Then CINNOX lists it, with the URL's secret hidden
    assert printed.startswith("subscribed again (updatedAt 20")
    [hook] = json.loads(printed.split("\n", 1)[1])
    assert hook["enabled"] is True
    assert hook["url"] == f"{webhook_server}/tdr/***"
    assert cinnox.subscription is not None
    assert cinnox.subscription["url"].endswith(stack.webhook_secret)
    assert stack.webhook_secret not in printed
    assert stack.app_token not in printed
    # And the version CINNOX now has carries the label the webhook reads (the URL before it stops being taken)
    secrets = boto3.client("secretsmanager")
    labelled = secrets.get_secret_value(SecretId=stack.refs["WebhookSecret"], VersionStage=SUBSCRIBED_LABEL)
    assert labelled["VersionId"] == secrets.get_secret_value(SecretId=stack.refs["WebhookSecret"])["VersionId"]


def test_subscription_wrong_token_is_a_clear_error(
    cinnox: CinnoxSimulator, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["CinnoxAppTokenSecret"], SecretString="wrong-token"
    )
    assert main(["subscription", *_cinnox_flags(cinnox, stack)]) == 3
    error = capsys.readouterr().err
    assert "HTTP 400, code 6451000: invalid AppToken" in error
    assert "wrong-token" not in error


def test_subscription_reads_cinnox_settings_from_the_stack(
    cinnox: CinnoxSimulator, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    described = _described({"WebhookBaseUrl": "http://x/tdr", "WebhookSecretArn": stack.refs["WebhookSecret"]})
    described["Stacks"][0]["Parameters"] = [
        {"ParameterKey": "CinnoxBaseUrl", "ParameterValue": cinnox.base_url},
        {"ParameterKey": "CinnoxAppId", "ParameterValue": cinnox.app_id},
        {"ParameterKey": "CinnoxAppTokenSecret", "ParameterValue": stack.refs["CinnoxAppTokenSecret"]},
    ]
    session = _StubbedCloudFormation([described, _described({})])
    assert main(["subscription", "--stack", "cinnox-sms"], session=session) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["subscription", "--stack", "cinnox-sms"], session=session) == 3
    assert "has no CinnoxBaseUrl" in capsys.readouterr().err
