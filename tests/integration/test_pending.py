"""`cinnox-sms pending` against moto: the SMS sent with no final status, read from the rollup table only, with
Queries only (one per UTC day, then one per hour and country with SMS pending), never a Scan."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from cinnox_sms.rollup import COHORT_ATTRIBUTES, RollupKey, SmsList, iso, list_put, rollup_update
from cinnox_sms.status import Status
from cinnox_sms_cli.main import main
from support import LambdaContext, Post, Stack, StubbedCloudFormation, described_stack, stream_records, tdr

if TYPE_CHECKING:
    from types import ModuleType

DAY_ONE = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = ["--since", "2026-11-01T07:00:00", "--until", "2026-11-02T07:00:00"]
SINCE_UNTIL = {"since": "2026-11-01T07:00:00Z", "until": "2026-11-02T07:00:00Z"}


def _cohort(table: str, hour: datetime, country: str, submitted: dict[str, datetime], **finals: str) -> None:
    """One hour and country's cohort as MetricsFunction writes it, in one TransactWriteItems: the rollup item's
    Submitted and cohort counts (rollup.rollup_update), an SMS list item of the SMS submitted and another of
    their final statuses (rollup.list_put), so an SMS is submitted in one list and final in the other."""
    key = RollupKey.of(hour, country)
    counts = {"Submitted": len(submitted)}
    for status in finals.values():
        counts[COHORT_ATTRIBUTES[Status(status)]] = counts.get(COHORT_ATTRIBUTES[Status(status)], 0) + 1
    actions: list[Any] = [
        {"Update": rollup_update(table, key, counts, 400)},
        {"Put": list_put(table, key, "1-sent", SmsList(submitted={t: iso(at) for t, at in submitted.items()}), 400)},
    ]
    if finals:
        actions.append({"Put": list_put(table, key, "2-final", SmsList(finals=finals), 400)})
    boto3.client("dynamodb").transact_write_items(TransactItems=actions)


def _dynamodb_calls(session: boto3.Session) -> list[str]:
    """The DynamoDB operations the session's clients make, in order (botocore's before-call event)."""
    calls: list[str] = []
    session.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def _pending(capsys: pytest.CaptureFixture[str], *argv: str, session: boto3.Session | None = None) -> Any:
    assert main(["pending", *argv, "--format", "json"], session=session) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def cohorts(rollup_table: str) -> None:
    """Four cohorts in the period over two UTC days, and one before it."""
    at = DAY_ONE.replace
    # 07:00 HK: h1 delivered, h2 and h3 pending
    _cohort(
        rollup_table,
        at(hour=7),
        "HK",
        {"h1": at(hour=7, minute=10), "h2": at(hour=7, minute=5), "h3": at(hour=7, minute=30)},
        h1="Delivered",
    )
    # 08:00 HK: both final (its lists are never read)
    _cohort(
        rollup_table, at(hour=8), "HK", {"h4": at(hour=8), "h5": at(hour=8, minute=1)}, h4="Delivered", h5="Rejected"
    )
    # 23:00 VE: v3 rejected, v2 pending; 01:00 the next day VE: v1 pending
    _cohort(rollup_table, at(hour=23), "VE", {"v2": at(hour=23), "v3": at(hour=23, minute=30)}, v3="Rejected")
    _cohort(rollup_table, DAY_ONE + timedelta(days=1, hours=1, minutes=59), "VE", {"v1": at(day=2, hour=1, minute=59)})
    # 06:00 SG, before the period: pending, left out
    _cohort(rollup_table, at(hour=6), "SG", {"s1": at(hour=6)})


def test_pending_lists_the_sms_sent_in_the_period_with_no_final_status_oldest_first(
    cohorts: None, rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the SMS pending in the period are asked for, as JSON
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = _pending(capsys, "--table", rollup_table, *PERIOD, session=session)
    # Then each SMS submitted in the period and final in no list is listed, oldest first, with the period
    assert rows == [
        {"transaction_id": "h2", "country": "HK", "submitted_at": "2026-11-01T07:05:00.000+00:00"} | SINCE_UNTIL,
        {"transaction_id": "h3", "country": "HK", "submitted_at": "2026-11-01T07:30:00.000+00:00"} | SINCE_UNTIL,
        {"transaction_id": "v2", "country": "VE", "submitted_at": "2026-11-01T23:00:00.000+00:00"} | SINCE_UNTIL,
        {"transaction_id": "v1", "country": "VE", "submitted_at": "2026-11-02T01:59:00.000+00:00"} | SINCE_UNTIL,
    ]
    # And it made Queries only: one per UTC day of the rollups, then one per hour and country with SMS
    # pending (HK 07:00, VE 23:00, VE 01:00), not HK 08:00's, whose SMS are all final
    assert calls == ["Query"] * 5


def test_pending_as_a_table_and_as_csv_and_for_one_country(
    cohorts: None, rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When it is asked as a table
    assert main(["pending", "--table", rollup_table, *PERIOD]) == 0
    table = capsys.readouterr().out.splitlines()
    # Then the period, what is listed and the columns come first, then one SMS a line, oldest first
    assert table[:3] == [
        "period 2026-11-01T07:00Z to 2026-11-02T07:00Z (24 h, UTC, end excluded)",
        "4 SMS sent in the period with no final status, oldest first",
        "transaction_id country  submitted_at",
    ]
    assert [line.split() for line in table[3:]] == [
        ["h2", "HK", "2026-11-01T07:05:00.000+00:00"],
        ["h3", "HK", "2026-11-01T07:30:00.000+00:00"],
        ["v2", "VE", "2026-11-01T23:00:00.000+00:00"],
        ["v1", "VE", "2026-11-02T01:59:00.000+00:00"],
    ]
    # And as CSV, only VE's (the country upper-cased), with fewer Queries: VE's hours only
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    assert main(["pending", "--table", rollup_table, *PERIOD, "--country", "ve", "--format", "csv"], session) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(row["transaction_id"], row["country"], row["since"], row["until"]) for row in rows] == [
        ("v2", "VE", "2026-11-01T07:00:00Z", "2026-11-02T07:00:00Z"),
        ("v1", "VE", "2026-11-01T07:00:00Z", "2026-11-02T07:00:00Z"),
    ]
    assert calls == ["Query"] * 4


def test_older_than_leaves_out_the_sms_sent_recently(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an SMS submitted 3 hours ago and one 20 minutes ago, neither final
    now = datetime.now(UTC)
    _cohort(rollup_table, now - timedelta(hours=3), "HK", {"old": now - timedelta(hours=3)})
    _cohort(rollup_table, now - timedelta(minutes=20), "HK", {"new": now - timedelta(minutes=20)})
    # When those older than an hour are asked for (the default period: the last 24 hours)
    rows = _pending(capsys, "--table", rollup_table, "--older-than", "1h")
    # Then only the older is listed; without --older-than, both
    assert [row["transaction_id"] for row in rows] == ["old"]
    assert [row["transaction_id"] for row in _pending(capsys, "--table", rollup_table)] == ["old", "new"]
    # And the table says how old they are
    assert main(["pending", "--table", rollup_table, "--older-than", "1h", "--country", "hk"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "1 SMS sent in the period to HK, at least 1h ago, with no final status, oldest first"
    )


def test_nothing_pending_is_the_header_alone_and_exit_0(
    cohorts: None, rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a period whose SMS all have a final status (HK 08:00 only)
    period = ["--since", "2026-11-01T08:00:00", "--until", "2026-11-01T09:00:00"]
    # Then the table is its header, CSV its header row, JSON an empty list, each exit 0
    assert main(["pending", "--table", rollup_table, *period]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "period 2026-11-01T08:00Z to 2026-11-01T09:00Z (1 h, UTC, end excluded)",
        "0 SMS sent in the period with no final status, oldest first",
        "transaction_id country  submitted_at",
    ]
    assert main(["pending", "--table", rollup_table, *period, "--format", "csv"]) == 0
    assert capsys.readouterr().out == "transaction_id,country,submitted_at,since,until\n"
    assert _pending(capsys, "--table", rollup_table, *period) == []
    # And a country with no SMS at all is the same
    assert _pending(capsys, "--table", rollup_table, *PERIOD, "--country", "GB") == []


def test_pending_reads_the_rollup_table_from_the_stack(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a deployed stack whose RollupTableName output names the rollup table
    now = datetime.now(UTC)
    _cohort(rollup_table, now, "VE", {"w1": now})
    session = StubbedCloudFormation([described_stack({"RollupTableName": rollup_table}), described_stack({})])
    # When the pending SMS are asked of the stack
    rows = _pending(capsys, "--stack", "cinnox-sms", session=session)
    # Then it found the rollups through the output
    assert [row["transaction_id"] for row in rows] == ["w1"]
    # And a stack without the output is one clear line, exit 3
    assert main(["pending", "--stack", "cinnox-sms"], session=session) == 3
    assert "stack cinnox-sms has no output RollupTableName" in capsys.readouterr().err


def test_the_tdr_table_given_as_the_rollup_table_is_one_clear_line(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When pending is pointed at the TDR table (its keys are not day and slot)
    assert main(["pending", "--table", stack.table_name]) == 3
    # Then one line says which table is expected, and the exit is 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"cinnox-sms: error: {stack.table_name} is not a rollup table (keys day and slot)")
    assert "dynamodb Query: ValidationException" in line


def test_pending_from_what_metrics_function_counted(
    post: Post,
    stack: Stack,
    metrics_function: ModuleType,
    context: LambdaContext,
    rollup_table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given SMS through the webhook, counted by MetricsFunction from the stream: p1 delivered, p2 only
    # submitted, p3 rejected (its final TDR first), p4 only submitted
    for txn, country, statuses in (
        ("p1", "HK", ["Submitted", "Delivered"]),
        ("p2", "VE", ["Submitted"]),
        ("p3", "VE", ["Rejected", "Submitted"]),
        ("p4", "SG", ["Submitted"]),
    ):
        for status in statuses:
            post(tdr(TransactionID=txn, RecipientCountry=country, Status=status))
    metrics_function.lambda_handler({"Records": stream_records(stack), "shardId": "shard-1", "state": {}}, context)
    capsys.readouterr()  # MetricsFunction's metric blob, printed
    # When the SMS pending in the last hour are asked for
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = _pending(capsys, "--table", rollup_table, "--since", "1h", session=session)
    # Then the two with no final status are listed, oldest first, read with Queries only
    assert [(row["transaction_id"], row["country"]) for row in rows] == [("p2", "VE"), ("p4", "SG")]
    assert set(calls) == {"Query"}
