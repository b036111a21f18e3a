"""`cinnox-sms report` against moto: it reads the rollup table only, with one Query per UTC day, never a Scan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from cinnox_sms_cli.main import main
from support import (
    LambdaContext,
    Post,
    Stack,
    StubbedCloudFormation,
    described_stack,
    put_rollups,
    report_from_items,
    stream_records,
    table_items,
    tdr,
)

if TYPE_CHECKING:
    from types import ModuleType

DAY_ONE = datetime(2026, 11, 1, tzinfo=UTC)


def _dynamodb_calls(session: boto3.Session) -> list[str]:
    """The DynamoDB operations the session's clients make, in order (botocore's before-call event)."""
    calls: list[str] = []
    session.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def _report(capsys: pytest.CaptureFixture[str], *argv: str, session: boto3.Session | None = None) -> Any:
    assert main(["report", *argv, "--format", "json"], session=session) == 0
    return json.loads(capsys.readouterr().out)


def test_report_sums_the_rollups_of_the_period_hour_by_hour(
    rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given rollups around a period from 22:00 on 1 Nov to 02:00 (excluded) on 2 Nov
    put_rollups(
        rollup_table,
        {
            (DAY_ONE.replace(hour=21), "HK"): {"Submitted": 100},  # the hour before: left out
            (DAY_ONE.replace(hour=22), "HK"): {"Submitted": 3, "Delivered": 1, "Rejected": 1},
            (DAY_ONE.replace(hour=23), "HK"): {"Delivered": 1},  # a late terminal TDR, in its own hour
            (DAY_ONE.replace(hour=23), "VE"): {"Submitted": 1},
            (DAY_ONE + timedelta(days=1, hours=1), "SG"): {"Submitted": 1, "Undelivered": 1},
            (DAY_ONE + timedelta(days=1, hours=2), "SG"): {"Submitted": 100},  # the end hour: excluded
        },
    )
    # When the report is asked for the period (since inside its hour, until on the hour)
    rows = _report(capsys, "--table", rollup_table, "--since", "2026-11-01T22:59:59", "--until", "2026-11-02T02:00:00")
    # Then each country's line sums its hours, pending is what has no terminal TDR, and "all" adds up
    period = {"since": "2026-11-01T22:00:00Z", "until": "2026-11-02T02:00:00Z"}
    assert rows == [
        {"country": "HK", "sent": 3, "delivered": 2, "undelivered": 0, "rejected": 1, "pending": 0}
        | {"delivery_rate": 0.6667}
        | period,
        {"country": "SG", "sent": 1, "delivered": 0, "undelivered": 1, "rejected": 0, "pending": 0}
        | {"delivery_rate": 0.0}
        | period,
        {"country": "VE", "sent": 1, "delivered": 0, "undelivered": 0, "rejected": 0, "pending": 1}
        | {"delivery_rate": None}
        | period,
        {"country": "all", "sent": 5, "delivered": 2, "undelivered": 1, "rejected": 1, "pending": 1}
        | {"delivery_rate": 0.5}
        | period,
    ]


def test_report_by_day_and_hour_as_table_and_csv(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given two hours of HK on two days
    put_rollups(
        rollup_table,
        {
            (DAY_ONE.replace(hour=23), "HK"): {"Submitted": 2, "Delivered": 2},
            (DAY_ONE + timedelta(days=1, hours=7), "HK"): {"Submitted": 1},
        },
    )
    period = ["--table", rollup_table, "--since", "2026-11-01T00:00:00", "--until", "2026-11-03T00:00:00"]
    # When it is asked by day, as a table
    assert main(["report", *period, "--by", "day"]) == 0
    table = capsys.readouterr().out.splitlines()
    # Then the period comes first, and each day has its lines and its "all" line, the day first
    assert table[0] == "period 2026-11-01T00:00Z to 2026-11-03T00:00Z (48 h, UTC, end excluded)"
    assert [line.split()[:3] for line in table[2:]] == [
        ["2026-11-01", "HK", "2"],
        ["2026-11-01", "all", "2"],
        ["2026-11-02", "HK", "1"],
        ["2026-11-02", "all", "1"],
    ]
    # And by hour, as CSV, the bucket is the hour's first column
    assert main(["report", *period, "--by", "hour", "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == ("bucket,country,sent,delivered,undelivered,rejected,pending,delivery_rate,since,until")
    assert csv_lines[1] == "2026-11-01T23:00Z,HK,2,2,0,0,0,1.0,2026-11-01T00:00:00Z,2026-11-03T00:00:00Z"


def test_a_30_day_report_makes_30_queries_and_no_scan(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given 30 days of rollups, twelve countries at two hours a day
    countries = ["HK", "SG", "GB", "US", "IN", "BR", "VE", "PH", "ID", "NG", "DE", "AU"]
    put_rollups(
        rollup_table,
        {
            (DAY_ONE + timedelta(days=day, hours=hour), country): {"Submitted": 2, "Delivered": 1}
            for day in range(30)
            for hour in (3, 17)
            for country in countries
        },
    )
    # When a report covers exactly those 30 UTC days
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = _report(
        capsys,
        "--table",
        rollup_table,
        "--since",
        "2026-11-01T00:00:00",
        "--until",
        "2026-12-01T00:00:00",
        session=session,
    )
    # Then it made one Query per day and nothing else (AWS: DynamoDB Developer Guide, "Querying tables
    # in DynamoDB": a Query reads one partition key value, so its reads grow with days x countries)
    assert calls == ["Query"] * 30
    # And counted every hour of every country
    assert {row["country"]: row["sent"] for row in rows} == {country: 120 for country in countries} | {"all": 1440}


def test_report_reads_the_rollup_table_from_the_stack(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a deployed stack whose RollupTableName output names the rollup table
    put_rollups(rollup_table, {(datetime.now(UTC), "HK"): {"Submitted": 1}})
    session = StubbedCloudFormation([described_stack({"RollupTableName": rollup_table}), described_stack({})])
    # When the report is asked of the stack
    rows = _report(capsys, "--stack", "cinnox-sms", session=session)
    # Then it found the rollups through the output
    assert rows[0]["country"] == "HK"
    assert rows[0]["sent"] == 1
    # And a stack without the output is one clear line, exit 3
    assert main(["report", "--stack", "cinnox-sms"], session=session) == 3
    assert "stack cinnox-sms has no output RollupTableName" in capsys.readouterr().err


def test_the_tdr_table_given_as_the_rollup_table_is_one_clear_line(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the report is pointed at the TDR table (its keys are not day and slot)
    assert main(["report", "--table", stack.table_name]) == 3
    # Then one line says which table is expected, and the exit is 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"cinnox-sms: error: {stack.table_name} is not a rollup table (keys day and slot)")
    assert "RollupTableName" in line
    assert "dynamodb Query: ValidationException" in line


def test_an_empty_period_says_so(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--table", rollup_table, "--since", "2999-01-01T00:00:00", "--until", "2999-01-02"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"no SMS in {rollup_table} for 2999-01-01T00:00Z to 2999-01-02T00:00Z (24 h, UTC, end excluded)"
    )


@pytest.fixture
def counted_day(post: Post, stack: Stack, metrics_function: ModuleType, context: LambdaContext) -> None:
    """Five SMS through the webhook (HK delivered twice, HK rejected with the terminal TDR first, SG
    undelivered, VE only submitted; one Submitted repeated), counted by MetricsFunction from the stream."""
    for txn, country, statuses in (
        ("r1", "HK", ["Submitted", "Delivered"]),
        ("r2", "HK", ["Delivered", "Submitted", "Submitted"]),
        ("r3", "HK", ["Rejected", "Submitted"]),
        ("r4", "SG", ["Submitted", "Undelivered"]),
        ("r5", "VE", ["Submitted"]),
    ):
        for status in statuses:
            post(tdr(TransactionID=txn, RecipientCountry=country, Status=status))
    metrics_function.lambda_handler({"Records": stream_records(stack), "shardId": "shard-1", "state": {}}, context)


def test_report_from_the_rollups_matches_the_stored_items(
    counted_day: None, stack: Stack, rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()  # MetricsFunction's metric blob, printed
    # When the report covers the last hour
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = {row["country"]: row for row in _report(capsys, "--since", "1h", "--table", rollup_table, session=session)}
    # Then each SMS counts once by country, and its numbers are those of the items, read without a Scan
    now = datetime.now(UTC)
    period = {"since": rows["HK"]["since"], "until": rows["HK"]["until"]}
    assert (
        rows["HK"]
        == {
            "country": "HK",
            "sent": 3,
            "delivered": 2,
            "undelivered": 0,
            "rejected": 1,
            "pending": 0,
            "delivery_rate": 0.6667,
        }
        | period
    )
    assert rows["SG"]["undelivered"] == 1
    assert (
        rows["VE"]
        == {
            "country": "VE",
            "sent": 1,
            "delivered": 0,
            "undelivered": 0,
            "rejected": 0,
            "pending": 1,
            "delivery_rate": None,
        }
        | period
    )
    assert rows["all"]["sent"] == 5
    expected = report_from_items(table_items(stack), now - timedelta(hours=2), now + timedelta(hours=1))
    assert {
        country: {k: row[k] for k in ("sent", "delivered", "undelivered", "rejected")}
        for country, row in rows.items()
        if country != "all"
    } == expected
    assert set(calls) == {"Query"}


def test_report_as_a_table_and_as_csv(counted_day: None, rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["report", "--table", rollup_table]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("period ")
    assert table[1].split() == ["country", "sent", "delivered", "undelivered", "rejected", "pending", "rate"]
    assert table[2].split() == ["HK", "3", "2", "0", "1", "0", "66.7%"]
    assert table[-1].split()[:2] == ["all", "5"]
    assert main(["report", "--table", rollup_table, "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == "country,sent,delivered,undelivered,rejected,pending,delivery_rate,since,until"
    assert csv_lines[1].startswith("HK,3,2,0,1,0,0.6667,")


def test_report_leaves_out_what_came_before_the_period(
    counted_day: None, rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["report", "--table", rollup_table, "--since", "2999-01-01T00:00:00", "--until", "2999-01-02"]) == 0
    assert "no SMS in" in capsys.readouterr().out
