"""The alert function, fed the table's real stream records through the template's filter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.stub import Stubber

from cinnox_sms import metrics as names
from cinnox_sms.alerts import SKIP_NOT_INSERT, SKIP_NOT_TDR
from local_stack.template import ROOT, Template, matches_filter, stream_filters
from support import APP_ID, LambdaContext, LogLines, Post, Stack, emf, stream_records, tdr

Inbox = Any


def filtered_batch(template: Template, stack: Stack) -> dict[str, Any]:
    """What Lambda hands the alert function: stream records its FilterCriteria keeps."""
    filters = stream_filters(template, "AlertFunction", "TdrStream")
    records = [r for r in stream_records(stack) if any(matches_filter(f, r) for f in filters)]
    return {"Records": records}


def failed_sms(post: Post, count: int, status: str = "Undelivered") -> list[dict[str, Any]]:
    bodies = [
        tdr(
            Status=status,
            ResponseCode="400",
            Exception="sms deliver failed",
            RecipientCountry="VE",
            RecipientNumber=5812345000 + i,
        )
        for i in range(count)
    ]
    for body in bodies:
        assert post(body).status == 200
    return bodies


def test_only_new_failures_pass_the_filter_and_each_alerts_once(
    alert: ModuleType, post: Post, stack: Stack, template: Template, alert_inbox: Inbox, context: LambdaContext
) -> None:
    # Given a day's TDRs: every status, a repeat, and the terminal before Submitted
    undelivered = tdr(Status="Undelivered", ResponseCode="400", Exception="sms deliver failed")
    rejected = tdr(Status="Rejected", ResponseCode=400, Exception="sms send failed", RecipientCountry="VE")
    for body in (
        tdr(),
        tdr(Status="Delivered"),
        undelivered,
        undelivered,
        rejected,
        {**rejected, "Status": "Submitted", "ResponseCode": ""},
    ):
        assert post(body).status == 200
    # When the stream's filtered batch reaches the alert function
    batch = filtered_batch(template, stack)
    assert len(batch["Records"]) == 2
    answer = alert.lambda_handler(batch, context)
    # Then each failure produced exactly one SNS message, and nothing is reported failed
    assert answer == {"batchItemFailures": []}
    messages = alert_inbox()
    assert sorted(m["MessageAttributes"]["status"]["Value"] for m in messages) == ["Rejected", "Undelivered"]
    by_status = {m["MessageAttributes"]["status"]["Value"]: m for m in messages}
    message = by_status["Rejected"]
    assert message["Subject"] == f"SMS Rejected to +85298765432 (VE): {rejected['TransactionID']}"
    record = json.loads(message["Message"])  # SQS gets the JSON form of the alert
    assert record["transactionId"] == rejected["TransactionID"]
    assert record["exception"] == "sms send failed"
    assert json.loads(record["raw"]) == rejected
    assert {k: v["Value"] for k, v in message["MessageAttributes"].items()} == {
        "status": "Rejected",
        "transactionId": rejected["TransactionID"],  # with status: what a subscriber deduplicates on
        "country": "VE",
        "appId": APP_ID,
        "serviceId": "svc-sms-01",
    }


def test_email_body_is_readable(
    alert: ModuleType, post: Post, stack: Stack, template: Template, context: LambdaContext
) -> None:
    [body] = failed_sms(post, 1)
    captured: list[dict[str, Any]] = []
    client = alert.alert_publisher()._client
    client.meta.events.register("provide-client-params.sns.PublishBatch", lambda params, **_: captured.append(params))
    alert.lambda_handler(filtered_batch(template, stack), context)
    [entry] = captured[0]["PublishBatchRequestEntries"]
    assert entry["MessageStructure"] == "json"
    email = json.loads(entry["Message"])["email"]
    assert "was undelivered" in email
    assert f"Transaction ID:  {body['TransactionID']}" in email
    assert "Recipient:       +5812345000" in email
    assert "Country:         VE" in email
    assert "Exception:       sms deliver failed" in email
    assert "Received:        20" in email


def test_alerts_go_out_ten_to_a_publish_batch(
    alert: ModuleType, post: Post, stack: Stack, template: Template, alert_inbox: Inbox, context: LambdaContext
) -> None:
    # Given 25 failed SMS in one batch
    failed_sms(post, 25)
    calls: list[int] = []
    client = alert.alert_publisher()._client
    client.meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: calls.append(len(params["PublishBatchRequestEntries"])),
    )
    # When the batch is processed
    assert alert.lambda_handler(filtered_batch(template, stack), context) == {"batchItemFailures": []}
    # Then three calls carried 10, 10 and 5 alerts, and 25 messages arrived
    assert calls == [10, 10, 5]
    assert len(alert_inbox()) == 25


def _entries_failed(ids: list[str]) -> dict[str, Any]:
    return {
        "Successful": [],
        "Failed": [{"Id": i, "Code": "InternalError", "Message": "try again", "SenderFault": False} for i in ids],
    }


def test_lasting_partial_failure_reports_that_record_and_those_after_it(
    alert: ModuleType, post: Post, stack: Stack, template: Template, context: LambdaContext
) -> None:
    # Given SNS failing the 4th entry of the first batch on every attempt
    failed_sms(post, 12)
    batch = filtered_batch(template, stack)
    keys = [r["dynamodb"]["SequenceNumber"] for r in batch["Records"]]
    client = alert.alert_publisher()._client
    with Stubber(client) as stub:
        stub.add_response(
            "publish_batch",
            {
                "Successful": [{"Id": str(i), "MessageId": f"m{i}"} for i in range(10) if i != 3],
                **_entries_failed(["3"]),
            },
        )
        stub.add_response("publish_batch", _entries_failed(["3"]))
        stub.add_response("publish_batch", _entries_failed(["3"]))
        answer = alert.lambda_handler(batch, context)
        stub.assert_no_pending_responses()
    # Then the stream will retry from that record; the three before it are done
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == keys[3:]


def test_entry_failing_once_is_sent_again_and_nothing_is_reported(
    alert: ModuleType, post: Post, stack: Stack, template: Template, context: LambdaContext
) -> None:
    # Given SNS failing one entry once
    failed_sms(post, 3)
    client = alert.alert_publisher()._client
    sent: list[list[str]] = []
    client.meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: sent.append([e["Id"] for e in params["PublishBatchRequestEntries"]]),
    )
    with Stubber(client) as stub:
        stub.add_response(
            "publish_batch",
            {"Successful": [{"Id": "0", "MessageId": "m0"}, {"Id": "2", "MessageId": "m2"}], **_entries_failed(["1"])},
        )
        stub.add_response("publish_batch", {"Successful": [{"Id": "1", "MessageId": "m1"}], "Failed": []})
        answer = alert.lambda_handler(filtered_batch(template, stack), context)
    # Then only that entry is sent again, and the batch succeeds
    assert sent == [["0", "1", "2"], ["1"]]
    assert answer == {"batchItemFailures": []}


def test_whole_call_error_fails_the_batch_so_lambda_retries_it(
    alert: ModuleType, post: Post, stack: Stack, template: Template, context: LambdaContext
) -> None:
    failed_sms(post, 2)
    client = alert.alert_publisher()._client
    with Stubber(client) as stub:
        stub.add_client_error("publish_batch", "KMSThrottlingException", http_status_code=400)
        with pytest.raises(BatchProcessingError):
            alert.lambda_handler(filtered_batch(template, stack), context)


def test_record_without_an_image_is_skipped_not_retried(
    alert: ModuleType, post: Post, stack: Stack, template: Template, alert_inbox: Inbox, context: LambdaContext
) -> None:
    # Given a batch whose second record has no NewImage (it used to fail the batch from there on)
    failed_sms(post, 3)
    batch = filtered_batch(template, stack)
    del batch["Records"][1]["dynamodb"]["NewImage"]
    # When it is processed
    answer = alert.lambda_handler(batch, context)
    # Then no retry can mend it: it is skipped, and the two alerts around it went out
    assert answer == {"batchItemFailures": []}
    assert len(alert_inbox()) == 2


def test_a_non_failure_record_is_skipped_without_alert(
    alert: ModuleType, post: Post, stack: Stack, alert_inbox: Inbox, context: LambdaContext
) -> None:
    # Given a record the filter should have kept away
    post(tdr(Status="Delivered"))
    answer = alert.lambda_handler({"Records": stream_records(stack)}, context)
    assert answer == {"batchItemFailures": []}
    assert alert_inbox() == []


def test_events_folder_stream_batch_is_processed(
    alert: ModuleType, template_events: dict[str, dict[str, Any]], alert_inbox: Inbox, context: LambdaContext
) -> None:
    answer = alert.lambda_handler(template_events["alert-stream-batch.json"], context)
    assert answer == {"batchItemFailures": []}
    assert len(alert_inbox()) == len(template_events["alert-stream-batch.json"]["Records"])


def test_alerts_of_huge_tdrs_fit_sns_limits(
    alert: ModuleType, post: Post, stack: Stack, template: Template, alert_inbox: Inbox, context: LambdaContext
) -> None:
    """SNS API Reference, PublishBatch: 256 KiB per message and per call, all entries together."""
    # Given 12 failed SMS at the largest body the webhook takes (16 KiB; its raw body kept to its first 4 KiB),
    # and 12 more whose items were written by hand with 60 KB raw bodies (the webhook could not store these)
    for i in range(12):
        assert post(tdr(Status="Rejected", TransactionID=f"big-{i:02d}", Padding="p" * 15_000)).status == 200
    dynamodb = boto3.client("dynamodb")
    for i in range(12):
        item = {
            "transactionId": {"S": f"hand-{i:02d}"},
            "status": {"S": "Rejected"},
            "raw": {"S": "r" * 60_000},
            "receivedAt": {"S": "2026-12-06T03:00:00.000+00:00"},
        }
        dynamodb.put_item(TableName=stack.table_name, Item=item)
    sizes: list[list[int]] = []
    client = alert.alert_publisher()._client
    client.meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: sizes.append([len(e["Message"].encode()) for e in params["PublishBatchRequestEntries"]]),
    )
    # When they are alerted
    assert alert.lambda_handler(filtered_batch(template, stack), context) == {"batchItemFailures": []}
    # Then every message and every PublishBatch call stays under SNS's 256 KiB, and all 24 arrived
    assert all(size <= 256 * 1024 for call in sizes for size in call)
    assert all(sum(call) <= 256 * 1024 for call in sizes)
    records = {r["transactionId"]: r for r in (json.loads(m["Message"]) for m in alert_inbox())}
    assert len(records) == 24
    # the webhook's: the raw body as kept (its first 4 KiB); the hand-written: the raw body left to the table
    assert records["big-00"]["raw"].startswith("{")
    assert records["hand-00"]["raw"] is None
    assert "too large" in records["hand-00"]["rawOmitted"]


# --- records that can never be alerts: skipped with a warning and a metric, never retried ---------


def _metric_values(printed: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for blob in emf(printed):
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found[metric["Name"]] = found.get(metric["Name"], 0) + sum(
                    value if isinstance(value, list) else [value]
                )
    return found


def _skip_warnings(logs: LogLines) -> list[dict[str, Any]]:
    return [r for r in logs.records() if r["level"] == "WARNING" and "skipped" in r["message"]]


def test_sam_generated_batch_of_an_unrelated_item_is_skipped_not_retried(
    alert: ModuleType,
    template_events: dict[str, dict[str, Any]],
    alert_inbox: Inbox,
    context: LambdaContext,
    logs: LogLines,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the batch `sam local generate-event dynamodb update` makes: INSERT, MODIFY and
    # REMOVE of an item that is no TDR (it used to fail every record: BatchProcessingError)
    event = template_events["alert-stream-unrelated.json"]
    assert [r["eventName"] for r in event["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    capsys.readouterr()
    # When the alert function gets it
    answer = alert.lambda_handler(event, context)
    # Then nothing is retried or published; one warning and the skip metric say why
    assert answer == {"batchItemFailures": []}
    assert alert_inbox() == []
    [warning] = _skip_warnings(logs)
    assert warning["count"] == 3
    assert warning["reasons"] == {SKIP_NOT_TDR: 1, SKIP_NOT_INSERT: 2}
    assert warning["records"] == [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    assert _metric_values(capsys.readouterr().out) == {
        names.ALERTS_PUBLISHED: 0,
        names.ALERTS_FAILED: 0,
        names.ALERT_RECORDS_SKIPPED: 3,
    }


def test_unrelated_records_among_failures_leave_each_failure_one_alert(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    template_events: dict[str, dict[str, Any]],
    alert_inbox: Inbox,
    context: LambdaContext,
) -> None:
    # Given three failed SMS with the unrelated item's INSERT, MODIFY and REMOVE between them
    bodies = failed_sms(post, 3, status="Rejected")
    failures = filtered_batch(template, stack)["Records"]
    unrelated = template_events["alert-stream-unrelated.json"]["Records"]
    mixed = [record for pair in zip(unrelated, failures, strict=True) for record in pair]
    # When the mixed batch is processed
    answer = alert.lambda_handler({"Records": mixed}, context)
    # Then every failure was alerted exactly once, and no record is retried
    assert answer == {"batchItemFailures": []}
    alerted = [json.loads(m["Message"])["transactionId"] for m in alert_inbox()]
    assert sorted(alerted) == sorted(b["TransactionID"] for b in bodies)


def test_a_hand_edit_of_a_failed_item_passes_the_filter_but_publishes_nothing(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    alert_inbox: Inbox,
    context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source": no filter on eventName."""
    # Given a failed SMS, stored, and edited by hand before its alert went out (a MODIFY whose NewImage
    # still says Undelivered and has no alertedAt)
    failed_sms(post, 1)
    [insert] = stream_records(stack)
    boto3.client("dynamodb").update_item(
        TableName=stack.table_name,
        Key=insert["dynamodb"]["Keys"],
        UpdateExpression="SET note = :note",
        ExpressionAttributeValues={":note": {"S": "checked with the carrier"}},
    )
    modify = filtered_batch(template, stack)["Records"][1:]
    assert [r["eventName"] for r in modify] == ["MODIFY"]  # the NewImage filter lets it through
    capsys.readouterr()
    answer = alert.lambda_handler({"Records": modify}, context)
    # Then no alert goes out for the edit, nothing is retried, and the skip is counted
    assert answer == {"batchItemFailures": []}
    assert alert_inbox() == []
    assert _metric_values(capsys.readouterr().out)[names.ALERT_RECORDS_SKIPPED] == 1
    # And the INSERT's own alert goes out once; the MODIFY that records it (alertedAt) is filtered out
    assert alert.lambda_handler({"Records": [insert]}, context) == {"batchItemFailures": []}
    assert len(alert_inbox()) == 1
    assert [r["eventName"] for r in filtered_batch(template, stack)["Records"]] == ["INSERT", "MODIFY"]


def test_sns_fault_is_retried_from_the_first_unpublished_alert_only(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    template_events: dict[str, dict[str, Any]],
    context: LambdaContext,
) -> None:
    # Given an unrelated record, two failed SMS and an unrelated MODIFY between them, and SNS down
    failed_sms(post, 2)
    first, second = filtered_batch(template, stack)["Records"]
    insert, modify, _ = template_events["alert-stream-unrelated.json"]["Records"]
    batch = {"Records": [insert, first, modify, second]}
    keys = [r["dynamodb"]["SequenceNumber"] for r in batch["Records"]]
    client = alert.alert_publisher()._client
    with Stubber(client) as stub:
        stub.add_client_error("publish_batch", "KMSThrottlingException", http_status_code=400)
        answer = alert.lambda_handler(batch, context)
    # Then the stream retries from the first failed SMS (the MODIFY after it rides along,
    # to keep the stream's order); the unrelated record before it is done with
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == keys[1:]


def test_cold_start_loads_the_batch_processor_only_for_a_batch_with_a_record_to_retry() -> None:
    # Given the function's handler, imported as Lambda imports it (the layer on the path)
    rare = "('aws_lambda_powertools.utilities.batch', 'aws_lambda_powertools.utilities.data_classes', 'asyncio')"
    code = f"import sys, app\nprint(sorted(m for m in sys.modules if m.startswith({rare}) or m == 'cinnox_sms.model'))"
    path = os.pathsep.join([str(ROOT / "functions" / "alert"), str(ROOT / "layers" / "common")])
    # When it is imported in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True
    )
    # Then neither the batch processor nor any event data class (nor asyncio, which the processor
    # loads) was: a batch that all went out answers without them; nor the webhook's TDR model
    assert done.stdout.strip() == "[]"


def test_a_field_stored_out_of_shape_stays_in_the_record_not_in_the_attributes(
    alert: ModuleType, post: Post, stack: Stack, template: Template, alert_inbox: Inbox, context: LambdaContext
) -> None:
    """SNS Developer Guide, "Amazon SNS message attributes": a value SNS may refuse stays out of them."""
    # Given a failed SMS whose RecipientCountry is stored as received, flagged out of shape
    assert post(tdr(Status="Undelivered", RecipientCountry="HKG")).status == 200
    # When it is alerted
    assert alert.lambda_handler(filtered_batch(template, stack), context) == {"batchItemFailures": []}
    # Then the record carries the country as received, and the attributes leave it out
    [message] = alert_inbox()
    assert json.loads(message["Message"])["recipientCountry"] == "HKG"
    assert "country" not in message["MessageAttributes"]
    assert message["MessageAttributes"]["status"]["Value"] == "Undelivered"
