"""Metrics: what each function emits (EMF), and that the alarms and dashboard watch only those."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from cinnox_sms import metrics as names
from support import LambdaContext, Post, Stack, emf, stream_records, tdr

if TYPE_CHECKING:
    from local_stack.template import Template


def values(blobs: list[dict[str, Any]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]  # Powertools writes a list of values
                found[metric["Name"]] = found.get(metric["Name"], 0) + sum(
                    value if isinstance(value, list) else [value]
                )
    return found


def test_stored_tdrs_are_counted_by_status_once_per_batch(
    metrics_function: ModuleType, post: Post, stack: Stack, context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a day's TDRs on the stream
    for status in ("Submitted", "Submitted", "Delivered", "Rejected"):
        post(tdr(Status=status))
    capsys.readouterr()
    # When the metrics function gets the batch
    metrics_function.lambda_handler({"Records": stream_records(stack), "shardId": "shard-1"}, context)
    # Then one metric blob carries the count of each status
    blobs = emf(capsys.readouterr().out)
    assert len(blobs) == 1
    assert values(blobs) == {"TdrSubmitted": 2, "TdrDelivered": 1, "TdrUndelivered": 0, "TdrRejected": 1}
    assert (
        blobs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        == stack.environment("MetricsFunction")["POWERTOOLS_METRICS_NAMESPACE"]
    )


def test_a_replayed_batch_emits_no_count_again(
    metrics_function: ModuleType, post: Post, stack: Stack, context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19: metrics are emitted for what was committed, not for what was seen."""
    # Given a batch counted
    for status in ("Submitted", "Delivered"):
        post(tdr(Status=status))
    event = {"Records": stream_records(stack), "shardId": "shard-1"}
    metrics_function.lambda_handler(event, context)
    capsys.readouterr()
    # When Lambda delivers it again (a retry after a timeout, a replay)
    metrics_function.lambda_handler(event, context)
    # Then the rollups skip it, and so do the metrics: nothing is counted twice in CloudWatch either
    assert values(emf(capsys.readouterr().out)) == dict.fromkeys(names.STORED.values(), 0)


def test_a_stored_tdr_emits_no_metric_line(post: Post, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert post(tdr()).status == 200
    assert emf(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("path_ok", "body", "reason"),
    [(True, "{", "BadRequest"), (True, tdr(AppID="x"), "Forbidden")],
)
def test_refusals_are_counted_by_reason(
    post: Post, stack: Stack, capsys: pytest.CaptureFixture[str], path_ok: bool, body: Any, reason: str
) -> None:
    capsys.readouterr()
    post(body, raw=isinstance(body, str), path=None if path_ok else "/tdr/wrong")
    [blob] = emf(capsys.readouterr().out)
    assert values([blob]) == {names.REFUSED: 1}
    assert blob["Reason"] == reason


def test_repeats_and_parked_tdrs_are_counted(
    webhook: ModuleType, post: Post, stack: Stack, context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tdr()
    post(body)
    capsys.readouterr()
    post(body)
    assert values(emf(capsys.readouterr().out)) == {names.REPEATED: 1}
    with Stubber(webhook.webhook_service()._store._client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        post(tdr())
    assert values(emf(capsys.readouterr().out)) == {names.PARKED: 1}


def test_alerts_are_counted(
    alert: ModuleType, post: Post, stack: Stack, context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    post(tdr(Status="Rejected"))
    capsys.readouterr()
    alert.lambda_handler({"Records": stream_records(stack)}, context)
    assert values(emf(capsys.readouterr().out)) == {
        names.ALERTS_PUBLISHED: 1,
        names.ALERTS_FAILED: 0,
        names.ALERT_RECORDS_SKIPPED: 0,
    }


def test_skipped_records_are_not_counted_as_published(
    alert: ModuleType, post: Post, stack: Stack, context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed SMS and a Delivered one, unfiltered, and the failure's REMOVE
    post(tdr(Status="Rejected"))
    post(tdr(Status="Delivered"))
    [rejected, delivered] = stream_records(stack)
    removed = {**rejected, "eventName": "REMOVE", "dynamodb": {**rejected["dynamodb"]}}
    del removed["dynamodb"]["NewImage"]
    removed["dynamodb"]["SequenceNumber"] = str(int(delivered["dynamodb"]["SequenceNumber"]) + 1)
    capsys.readouterr()
    # When the alert function gets them
    alert.lambda_handler({"Records": [rejected, delivered, removed]}, context)
    # Then one alert is counted published, and the two others skipped
    assert values(emf(capsys.readouterr().out)) == {
        names.ALERTS_PUBLISHED: 1,
        names.ALERTS_FAILED: 0,
        names.ALERT_RECORDS_SKIPPED: 2,
    }


def test_edits_and_removals_are_not_counted_as_stored_tdrs(
    metrics_function: ModuleType, post: Post, stack: Stack, context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source": no filter on eventName."""
    # Given a stored Rejected TDR, then edited by hand (MODIFY) and deleted (REMOVE)
    post(tdr(Status="Rejected"))
    [insert] = stream_records(stack)
    client = boto3.client("dynamodb")
    key = insert["dynamodb"]["Keys"]
    client.update_item(
        TableName=stack.table_name,
        Key=key,
        UpdateExpression="SET note = :note",
        ExpressionAttributeValues={":note": {"S": "checked"}},
    )
    client.delete_item(TableName=stack.table_name, Key=key)
    records = stream_records(stack)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    capsys.readouterr()
    # When the metrics function gets all three
    metrics_function.lambda_handler({"Records": records, "shardId": "shard-1"}, context)
    # Then one TDR was stored, not two
    assert values(emf(capsys.readouterr().out)) == {
        "TdrSubmitted": 0,
        "TdrDelivered": 0,
        "TdrUndelivered": 0,
        "TdrRejected": 1,
    }


def _alarm_metrics(template: Template) -> list[tuple[str, Any]]:
    found = []
    for name, alarm in template.resources_of_type("AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        if "MetricName" in properties:
            found.append((name, properties))
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                found.append((name, query["MetricStat"]["Metric"]))
    return found


def _filter_metrics(template: Template) -> set[str]:
    """Metrics the template's log metric filters emit in the product's namespace (e.g. 429s from the access log)."""
    return {
        transformation["MetricName"]
        for metric_filter in template.resources_of_type("AWS::Logs::MetricFilter").values()
        for transformation in metric_filter["Properties"]["MetricTransformations"]
        if transformation["MetricNamespace"] == {"Ref": "MetricsNamespace"}
    }


def test_every_alarm_watches_a_metric_the_code_emits_or_aws_publishes(template: Template) -> None:
    namespaces = set()
    emitted = names.ALL | _filter_metrics(template)
    for alarm, metric in _alarm_metrics(template):
        namespace = metric["Namespace"]
        namespaces.add(json.dumps(namespace))
        if namespace == {"Ref": "MetricsNamespace"}:
            assert metric["MetricName"] in emitted, (alarm, metric["MetricName"])
        else:
            assert namespace in ("AWS/SQS", "AWS/Lambda", "AWS/ApiGateway"), alarm
    assert json.dumps({"Ref": "MetricsNamespace"}) in namespaces


def test_every_alarm_tells_the_ops_topic(template: Template) -> None:
    alarms = template.resources_of_type("AWS::CloudWatch::Alarm")
    assert {
        "WebhookErrorsAlarm",
        "AlertFailureQueueAlarm",
        "ParkingQueueAgeAlarm",
        "FailureRateAlarm",
        "NoTdrAlarm",
    } <= set(alarms)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "OpsTopic"}]
    assert alarms["NoTdrAlarm"]["Condition"] == "HasNoTdrAlarm"
    defaults = template.parameter_defaults()
    assert template.conditions(defaults)["HasNoTdrAlarm"] is False  # off by default
    assert alarms["FailureRateAlarm"]["Properties"]["Threshold"] == {"Ref": "FailureRateThreshold"}


def test_dashboard_shows_only_metrics_that_exist(template: Template) -> None:
    body = template.resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    for wanted in ("TDRs stored, by status", "Failure rate", "Alerts", "Refused", "Queues", "HTTP API"):
        assert any(wanted in title for title in titles), wanted
    # Metric widgets only: a custom widget (the delivery table) draws from the rollups, not from metrics.
    graphs = [w for w in widgets if w["type"] == "metric"]
    ours = {m[1] for w in graphs for m in w["properties"]["metrics"] if m and m[0] == "${MetricsNamespace}"}
    ours |= set(re.findall(r'MetricName=\\\\?"(\w+)', body))
    assert ours <= names.ALL | _filter_metrics(template)
    assert {"TdrSubmitted", "TdrDelivered", "TdrUndelivered", "TdrRejected", "TdrRefused"} <= ours
