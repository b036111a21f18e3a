"""Issue 19, item 4: a TDR is refused only when it cannot be a TDR.

What identifies it (TransactionID, Status, AppID) is strict; any other field that does not fit is stored
as received and flagged (the item's ``outOfShape``, the ``TdrOutOfShape`` metric); a Status none of the
four documented is stored, counted (``TdrUnknownStatus``), never alerted, and shown by `cinnox-sms
status`; a ``message`` envelope is opened whenever it holds a TDR. Each reproduced case of the issue was
answered 400 (which tells CINNOX not to send it again: the TDR was lost) before this.
"""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.stub import Stubber

from cinnox_sms import metrics as names
from cinnox_sms.alerts import Alert
from cinnox_sms.digest import Failure
from cinnox_sms.model import MAX_OUT_OF_SHAPE_BYTES
from cinnox_sms_cli.main import main
from integration.test_alert import filtered_batch
from integration.test_metrics import values
from integration.test_parked import drain
from support import APP_ID, LambdaContext, LogLines, Post, Stack, emf, http_event, stream_records, table_items, tdr

if TYPE_CHECKING:
    from collections.abc import Callable

    from local_stack.template import Template

    Inbox = Callable[[], list[dict[str, Any]]]

# The reproduced cases, each refused whole (400) before: (id, fields posted, attribute, as stored).
REPRODUCED = [
    ("RecipientCountry HKG", {"RecipientCountry": "HKG"}, "recipientCountry", "HKG"),
    ("RecipientNumber with spaces", {"RecipientNumber": "+852 9876 5432"}, "recipientNumber", "+852 9876 5432"),
    ("RecipientNumber a float", {"RecipientNumber": 85298765432.0}, "recipientNumber", "85298765432.0"),
    ("Exception of 1,025 characters", {"Exception": "e" * 1025}, "exception", "e" * 1025),
    ("ResponseCode of 65 characters", {"ResponseCode": "4" * 65}, "responseCode", "4" * 65),
]
# Refused before as well (tests/integration/test_webhook.py's BAD_REQUESTS had them): optional fields all.
FORMERLY_REFUSED = [
    ("Type not tdr", {"Type": "cdr"}, "type", "cdr"),
    ("Type a number", {"Type": 1}, "type", "1"),
    ("ServiceID a list", {"ServiceID": ["a"]}, "serviceId", '["a"]'),
    ("ServiceID too long", {"ServiceID": "s" * 257}, "serviceId", "s" * 257),
    ("RecipientNumber letters", {"RecipientNumber": "85a"}, "recipientNumber", "85a"),
    ("RecipientNumber negative", {"RecipientNumber": -5}, "recipientNumber", "-5"),
    ("RecipientNumber a boolean", {"RecipientNumber": True}, "recipientNumber", "true"),
    ("RecipientNumber 40 digits", {"RecipientNumber": "1" * 40}, "recipientNumber", "1" * 40),
    ("RecipientCountry a number", {"RecipientCountry": 44}, "recipientCountry", "44"),
    ("ResponseCode an object", {"ResponseCode": {"a": 1}}, "responseCode", '{"a":1}'),
    ("Exception a number", {"Exception": 5}, "exception", "5"),
]


def _image(record: dict[str, Any]) -> dict[str, Any]:
    """A stream record's NewImage as Powertools gives it to the functions (numbers as Decimal)."""
    deserialize = TypeDeserializer().deserialize
    return {name: deserialize(value) for name, value in record["dynamodb"]["NewImage"].items()}


@pytest.mark.parametrize(
    ("name", "fields", "attribute", "stored"),
    REPRODUCED + FORMERLY_REFUSED,
    ids=[c[0] for c in REPRODUCED + FORMERLY_REFUSED],
)
def test_an_optional_field_out_of_shape_is_stored_as_received_and_flagged(
    post: Post,
    stack: Stack,
    logs: LogLines,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fields: dict[str, Any],
    attribute: str,
    stored: str,
) -> None:
    # Given a TDR one of whose optional fields does not fit what CINNOX documents
    body = tdr(Status="Delivered", **fields)
    capsys.readouterr()
    # When CINNOX posts it
    answer = post(body)
    # Then it is accepted, and the answer names the field
    assert answer.status == 200, answer.body
    assert answer.body["result"] == {
        "transactionId": body["TransactionID"],
        "status": "Delivered",
        "duplicate": False,
        "outOfShape": [attribute],
    }
    # And it is stored once: that field as received (as text), named in outOfShape, the others as ever
    [item] = table_items(stack)
    assert item[attribute] == {"S": stored}
    assert item["outOfShape"] == {"S": attribute}
    assert (item["status"], item["appId"]) == ({"S": "Delivered"}, {"S": APP_ID})
    assert json.loads(item["raw"]["S"]) == body
    # And one metric counts it, and one log line names the field, not its value
    assert values(emf(capsys.readouterr().out)) == {names.OUT_OF_SHAPE: 1}
    [line] = [r for r in logs.records() if r.get("message") == "TDR stored with fields out of shape"]
    assert (line["transaction_id"], line["fields"], line["level"]) == (body["TransactionID"], [attribute], "INFO")
    assert stored not in line.values()
    if len(stored) > 3:  # a short one may be found in the timestamp or the request ID
        assert json.dumps(stored)[1:-1] not in json.dumps(line)


def test_several_fields_out_of_shape_are_all_named_and_the_rest_kept(post: Post, stack: Stack) -> None:
    # Given a failed SMS's TDR with two fields out of shape and the others as documented
    body = tdr(Status="Undelivered", RecipientCountry="HKG", RecipientNumber="+852 9876 5432", Exception="failed")
    # When it is posted
    answer = post(body)
    # Then both are named, in the order of the TDR's fields, and the fields that fit are stored as ever
    assert answer.body["result"]["outOfShape"] == ["recipientNumber", "recipientCountry"]
    [item] = table_items(stack)
    assert item["outOfShape"] == {"S": "recipientNumber,recipientCountry"}
    assert (item["recipientNumber"], item["recipientCountry"]) == ({"S": "+852 9876 5432"}, {"S": "HKG"})
    assert (item["exception"], item["serviceId"]) == ({"S": "failed"}, {"S": "svc-sms-01"})


def test_a_tdr_that_fits_carries_no_flag_and_emits_no_metric(
    post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a TDR as CINNOX documents it
    capsys.readouterr()
    # When it is posted
    answer = post(tdr(Status="Delivered"))
    # Then nothing is flagged: no outOfShape in the answer or the item, no metric line (the hot path's cost)
    assert "outOfShape" not in answer.body["result"]
    [item] = table_items(stack)
    assert "outOfShape" not in item
    assert emf(capsys.readouterr().out) == []


def test_a_repeated_tdr_out_of_shape_is_counted_once(
    post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a TDR out of shape, stored
    body = tdr(RecipientCountry="HKG")
    post(body)
    capsys.readouterr()
    # When CINNOX sends it again
    answer = post(body)
    # Then it is a duplicate: counted as a repeat, not as out of shape a second time
    assert answer.body["result"]["duplicate"] is True
    assert values(emf(capsys.readouterr().out)) == {names.REPEATED: 1}
    assert len(table_items(stack)) == 1


def test_an_optional_field_given_twice_is_flagged_with_both_values(post: Post, stack: Stack) -> None:
    # Given a TDR that gives Exception twice, in two cases
    body = {**tdr(Status="Rejected", Exception="sms send failed"), "exception": "sms deliver failed"}
    # When it is posted
    answer = post(body)
    # Then it is stored, the field flagged, its values as received (a JSON array, in the body's order)
    assert answer.status == 200
    [item] = table_items(stack)
    assert item["outOfShape"] == {"S": "exception"}
    assert json.loads(item["exception"]["S"]) == ["sms send failed", "sms deliver failed"]


def test_a_status_we_do_not_know_is_stored_counted_and_never_alerted(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    alert_inbox: Inbox,
    context: LambdaContext,
    logs: LogLines,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an SMS whose Submitted TDR is stored
    body = tdr(TransactionID="txn-queued")
    post(body)
    capsys.readouterr()
    # When a TDR with a status CINNOX does not document comes for it
    answer = post({**body, "Status": " Queued "})
    # Then it is stored under that status as sent (trimmed), beside the Submitted one
    assert answer.status == 200
    assert answer.body["result"] == {"transactionId": "txn-queued", "status": "Queued", "duplicate": False}
    assert sorted(i["status"]["S"] for i in table_items(stack)) == ["Queued", "Submitted"]
    # And it is counted and logged
    assert values(emf(capsys.readouterr().out)) == {names.UNKNOWN_STATUS: 1}
    [line] = [r for r in logs.records() if r.get("message") == "TDR stored with a status we do not know"]
    assert (line["transaction_id"], line["status"]) == ("txn-queued", "Queued")
    # And the alert mapping's FilterCriteria keep it from the alert function (Lambda Developer Guide, "Using
    # event filtering with a DynamoDB event source"), which, handed it all the same, publishes nothing
    assert filtered_batch(template, stack)["Records"] == []
    records = stream_records(stack)
    assert alert.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    assert alert_inbox() == []
    assert Alert.from_image("1", _image(records[-1])) is None
    # And a digest reading such a record (it never gets one) takes it for no failure
    assert Failure.from_body(json.dumps(_image(records[-1]), default=str)) is None


def test_the_metrics_function_counts_around_a_status_we_do_not_know(
    metrics_function: ModuleType,
    post: Post,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a Delivered TDR and one with a status we do not know, on the stream
    assert post(tdr(Status="Delivered")).status == 200
    assert post(tdr(Status="Queued")).status == 200
    assert len(stream_records(stack)) == 2
    capsys.readouterr()
    # When the metrics function gets the batch
    answer = metrics_function.lambda_handler({"Records": stream_records(stack), "shardId": "shard-1"}, context)
    # Then it succeeds (no retry of the shard), and counts the Delivered one only: the rollups keep the four
    # documented statuses (a sender's status name as an attribute would let it grow the item without bound);
    # the webhook's TdrUnknownStatus counts the other
    assert answer == {"state": {}}
    counted = values(emf(capsys.readouterr().out))
    assert {name: counted.get(name, 0) for name in names.STORED.values()} == {
        "TdrSubmitted": 0,
        "TdrDelivered": 1,
        "TdrUndelivered": 0,
        "TdrRejected": 0,
    }
    rollups = boto3.client("dynamodb").scan(TableName=rollup_table)["Items"]
    assert rollups
    assert not any("Queued" in json.dumps(item) for item in rollups)


def test_status_shows_a_status_we_do_not_know_and_the_fields_out_of_shape(
    post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SMS with a Submitted TDR out of shape and then a TDR with a status we do not know
    body = tdr(TransactionID="txn-odd", RecipientCountry="HKG")
    post(body)
    post({**body, "Status": "Queued", "RecipientCountry": "HK"})
    capsys.readouterr()
    # When its status is asked for
    assert main(["status", "txn-odd", "--table", stack.table_name]) == 0
    printed = capsys.readouterr().out
    # Then the documented status stays the current one, and the history shows both, each with its note
    assert printed.splitlines()[0] == "SMS txn-odd: Submitted"
    [submitted] = [line for line in printed.splitlines() if line.strip().startswith("Submitted")]
    [queued] = [line for line in printed.splitlines() if line.strip().startswith("Queued")]
    assert submitted.endswith("out of shape: recipientCountry")
    assert queued.endswith("a status we do not know")
    # And as JSON, each report says whether its status is known and what was out of shape
    assert main(["status", "txn-odd", "--table", stack.table_name, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["currentStatus"], answer["failed"]) == ("Submitted", False)
    by_status = {h["status"]: h for h in answer["history"]}
    assert by_status["Queued"]["knownStatus"] is False
    assert "knownStatus" not in by_status["Submitted"]
    assert by_status["Submitted"]["outOfShape"] == "recipientCountry"


def test_status_of_an_sms_with_only_a_status_we_do_not_know(
    post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SMS whose only TDR has a status we do not know
    post(tdr(TransactionID="txn-only", Status="Expired"))
    capsys.readouterr()
    # When its status is asked for
    assert main(["status", "txn-only", "--table", stack.table_name]) == 0
    # Then that status is its current one, said to be one we do not know, and not a failure
    assert capsys.readouterr().out.splitlines()[0] == "SMS txn-only: Expired (a status we do not know)"


@pytest.mark.parametrize("app_id_in_the_message", [True, False], ids=["AppID in both", "AppID in the envelope"])
def test_a_tdr_in_a_message_envelope_with_a_key_of_its_own_is_stored(
    post: Post, stack: Stack, app_id_in_the_message: bool
) -> None:
    # Given the shape CINNOX's other events use, {"appId": ..., "message": {TDR}}, with a key beside "message"
    inner = {
        "type": "tdr",
        "transactionId": "txn-envelope",
        "status": "Undelivered",
        "responseCode": "400",
        "exception": "sms deliver failed",
        "recipientCountry": "HK",
    } | ({"appId": APP_ID} if app_id_in_the_message else {})
    body = {"appId": APP_ID, "message": inner}
    # When it is posted
    answer = post(body)
    # Then the message is opened and its TDR stored, nothing out of shape
    assert answer.status == 200, answer.body
    [item] = table_items(stack)
    assert (item["transactionId"], item["status"], item["appId"]) == (
        {"S": "txn-envelope"},
        {"S": "Undelivered"},
        {"S": APP_ID},
    )
    assert item["exception"] == {"S": "sms deliver failed"}
    assert "outOfShape" not in item
    assert json.loads(item["raw"]["S"]) == body


def test_an_envelope_for_another_app_is_still_forbidden(post: Post, stack: Stack) -> None:
    # Given an envelope whose appId is another app's, around a message without one
    body = {"appId": "someone-else", "message": {"transactionId": "txn-other", "status": "Delivered"}}
    # When it is posted
    answer = post(body)
    # Then what identifies the TDR is not ours: 403, nothing stored
    assert answer.status == 403
    assert table_items(stack) == []


def test_a_parked_tdr_keeps_its_flags_when_it_lands(
    webhook: ModuleType, parked: ModuleType, stack: Stack, context: LambdaContext
) -> None:
    # Given a TDR out of shape, parked while the table could not be written
    body = tdr(RecipientCountry="HKG")
    table = boto3.client("dynamodb")
    with Stubber(webhook.webhook_service()._store._client) as stub:
        stub.add_client_error("put_item", "ThrottlingException")
        response = webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", json.dumps(body)), context)
    assert json.loads(response["body"])["result"]["parked"] is True
    assert table.scan(TableName=stack.table_name)["Items"] == []
    # When the parking queue drains
    drain(parked, stack, context)
    # Then it lands flagged as the webhook would have stored it
    [item] = table_items(stack)
    assert (item["recipientCountry"], item["outOfShape"]) == ({"S": "HKG"}, {"S": "recipientCountry"})


def test_the_largest_tdrs_out_of_shape_fit_dynamodb_and_their_alerts_fit_sns(
    alert: ModuleType, post: Post, stack: Stack, alert_inbox: Inbox, context: LambdaContext
) -> None:
    """AWS rules: DynamoDB Developer Guide, "Service, account, and table quotas in Amazon DynamoDB" (an item
    is at most 400 KB; a sort key value at most 1,024 bytes, a partition key value at most 2,048); SNS API
    Reference, "Publish" / "PublishBatch" (a message is at most 256 KiB, 262,144 bytes). Moto checks the
    key and item sizes but counts an SNS message in characters, so its bytes are checked here."""
    # Given failed SMS whose six optional fields are each out of shape, as long as a 16 KiB body allows (the
    # webhook's limit: each field passes its 2 KiB cut), in the characters that grow most when stored and
    # alerted: ASCII, 4-byte UTF-8, and JSON-escaped controls
    optional = ("Type", "ServiceID", "RecipientNumber", "RecipientCountry", "ResponseCode", "Exception")
    fillers = {"ascii": "e" * 2_600, "emoji": "\U0001f622" * 650, "controls": "\x00" * 430}
    for kind, filler in fillers.items():
        body = tdr(TransactionID="t" * 200 + kind, Status="Undelivered", **dict.fromkeys(optional, filler))
        raw = json.dumps(body, ensure_ascii=False)
        assert 15_000 < len(raw.encode()) <= 16_384, kind
        # When each is posted
        answer = post(raw, raw=True)
        # Then it is stored, every optional field flagged and cut to its share (but an Exception of 650 emoji
        # or 430 controls, which is in shape: up to 1,024 characters are, stored whole)
        assert answer.status == 200, (kind, answer.body)
        assert len(answer.body["result"]["outOfShape"]) == len(optional) - (kind != "ascii")
    items = table_items(stack)
    assert len(items) == len(fillers)
    for item in items:
        for attribute in item["outOfShape"]["S"].split(","):
            assert len(json.dumps(item[attribute]["S"], ensure_ascii=False).encode()) - 2 <= MAX_OUT_OF_SHAPE_BYTES
    # And the alert of each is a message SNS takes, and the alert function publishes them all
    records = stream_records(stack)
    for record in records:
        alert_of_it = Alert.from_image(record["dynamodb"]["SequenceNumber"], _image(record))
        assert alert_of_it is not None
        assert len(alert_of_it.message.encode()) <= 262_144
    assert alert.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    assert len(alert_inbox()) == len(fillers)


@pytest.mark.parametrize(
    ("status", "answer"),
    [("\U0001f4e8" * 64, 200), ("\U0001f4e8" * 65, 400)],
    ids=["64 characters of 4 bytes: stored", "65: refused"],
)
def test_a_status_we_do_not_know_is_a_sort_key_dynamodb_takes(
    post: Post, stack: Stack, status: str, answer: int
) -> None:
    """AWS rule: DynamoDB Developer Guide, "Service, account, and table quotas in Amazon DynamoDB": a sort key
    value is at most 1,024 bytes. A status is the item's sort key: at most 64 characters, 256 bytes."""
    # Given a TDR whose status is none we know, of 4-byte characters
    body = tdr(Status=status)
    # When it is posted
    got = post(body)
    # Then up to 64 characters it is stored under that status, beyond it is refused, and moto agrees
    assert got.status == answer, got.body
    assert [i["status"]["S"] for i in table_items(stack)] == ([status] if answer == 200 else [])
    if answer == 400:
        assert "or another name of 1 to 64 printable characters" in got.body["message"]


def _rate(expression: str, values: dict[str, float]) -> float:
    """A metric math expression of sums and FILL(x, 0), evaluated as CloudWatch does on these values."""
    text = re.sub(r"FILL\((\w+), 0\)", r"\1", " ".join(expression.split()))
    assert re.fullmatch(r"[\w\s+*/().]+", text), text
    return float(eval(text, {"__builtins__": {}}, dict(values)))  # noqa: S307 - the template's own text, checked above


def test_an_alarm_watches_the_rate_of_refusals_and_the_dashboard_the_flags(template: Template) -> None:
    """AWS rule: CloudWatch User Guide, "Limits that apply to alarms based on metric math expressions": an
    alarm's math references at most 10 metrics."""
    # Given the template's refusal-rate alarm and its dashboard
    alarm = template.resource("TdrRefusalRateAlarm")["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    expressions = {m["Id"]: m["Expression"] for m in alarm["Metrics"] if "Expression" in m}
    [watched] = [m["Id"] for m in alarm["Metrics"] if m["ReturnData"]]
    # Then it reads at most 10 metrics: the refusals a sender at the right URL gets, and every TDR stored
    assert len(stats) <= 10
    reasons = {
        d["Value"]
        for m in stats.values()
        if m["MetricName"] == names.REFUSED
        for d in m["Dimensions"]
        if d["Name"] == "Reason"
    }
    assert reasons == {"BadRequest", "Forbidden", "PayloadTooLarge"}
    assert {m["MetricName"] for m in stats.values()} == {names.REFUSED, names.UNKNOWN_STATUS, *names.STORED.values()}
    # each under the service that emits it
    services = {
        name: template.function(function)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for name, function in [(names.REFUSED, "WebhookFunction"), (names.UNKNOWN_STATUS, "WebhookFunction")]
        + [(stored, "MetricsFunction") for stored in names.STORED.values()]
    }
    for metric in stats.values():
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions["service"] == services[metric["MetricName"]], metric
    # And its expression is the share of TDRs refused, in percent: 3 refused of 200 offered alarms, 2 do not
    counts = dict.fromkeys(stats, 0.0) | {"badrequest": 2.0, "forbidden": 1.0, "submitted": 100.0, "delivered": 97.0}
    values_by_id = counts | {"refused": _rate(expressions["refused"], counts)}
    assert _rate(expressions[watched], values_by_id) == pytest.approx(1.5)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]
    # And the dashboard shows the TDRs stored out of shape or with a status we do not know
    body = template.resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    graphs = [w for w in json.loads(body)["widgets"] if w["type"] == "metric"]  # not the custom delivery table
    shown = {m[1] for w in graphs for m in w["properties"]["metrics"] if len(m) > 1}
    assert {names.OUT_OF_SHAPE, names.UNKNOWN_STATUS} <= shown
