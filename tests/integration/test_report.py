"""`cinnox-sms report` against moto: it reads the rollup table only, with one Query per UTC day, never a Scan; the
cohort view (default) and the arrival view, and the p50/p90 time to Delivered estimated from the rollups' buckets."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from cinnox_sms.delivery import _READ, Hours, _items_as_sent, hour_count, read_rollups
from cinnox_sms.rollup import TTF_ATTRIBUTES, TTF_BUCKETS, RollupKey, rollup_update
from cinnox_sms.status import Status
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


def _write_rollups(table: str, counts: dict[tuple[datetime, str], dict[str, int]]) -> None:
    """Rollup items written as MetricsFunction writes them (rollup.rollup_update's Update): (hour, country) ->
    {attribute: added}, arrival (Submitted...), cohort (cohortDelivered...) and histogram (ttfDelivered#10s...)."""
    client = boto3.client("dynamodb")
    for (hour, country), attributes in counts.items():
        client.update_item(**rollup_update(table, RollupKey.of(hour, country), attributes, 400))


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
    # When the report is asked for the period in the arrival view (since inside its hour, until on the hour)
    rows = _report(
        capsys,
        "--table",
        rollup_table,
        "--since",
        "2026-11-01T22:59:59",
        "--until",
        "2026-11-02T02:00:00",
        "--view",
        "arrival",
    )
    # Then each country's line sums its hours, pending is what has no terminal TDR, and "all" adds up
    period = {"p50_delivered_est": None, "p90_delivered_est": None, "view": "arrival"}
    period |= {"since": "2026-11-01T22:00:00Z", "until": "2026-11-02T02:00:00Z"}
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
    period += ["--view", "arrival"]
    # When it is asked by day, as a table
    assert main(["report", *period, "--by", "day"]) == 0
    table = capsys.readouterr().out.splitlines()
    # Then the period comes first, then the view, and each day has its lines and its "all" line, the day first
    assert table[0] == "period 2026-11-01T00:00Z to 2026-11-03T00:00Z (48 h, UTC, end excluded)"
    assert table[1].startswith("view arrival: ")
    assert [line.split()[:3] for line in table[4:]] == [
        ["2026-11-01", "HK", "2"],
        ["2026-11-01", "all", "2"],
        ["2026-11-02", "HK", "1"],
        ["2026-11-02", "all", "1"],
    ]
    # And by hour, as CSV, the bucket is the hour's first column
    assert main(["report", *period, "--by", "hour", "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == (
        "bucket,country,sent,delivered,undelivered,rejected,pending,delivery_rate,p50_delivered_est,"
        "p90_delivered_est,view,since,until"
    )
    assert csv_lines[1] == "2026-11-01T23:00Z,HK,2,2,0,0,0,1.0,,,arrival,2026-11-01T00:00:00Z,2026-11-03T00:00:00Z"


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
    # When the report covers the last hour, in the cohort view (the default)
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = {row["country"]: row for row in _report(capsys, "--since", "1h", "--table", rollup_table, session=session)}
    # Then each SMS counts once by country under its final status (a final TDR received before its Submitted
    # one included), read without a Scan, and its time to Delivered (well under 10 s) is in the first bucket
    now = datetime.now(UTC)
    period = {"view": "cohort", "since": rows["HK"]["since"], "until": rows["HK"]["until"]}
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
            "p50_delivered_est": 1.0,
            "p90_delivered_est": 1.8,
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
            "p50_delivered_est": None,
            "p90_delivered_est": None,
        }
        | period
    )
    assert rows["all"]["sent"] == 5
    assert set(calls) == {"Query"}
    # And in the arrival view the numbers are those of the stored TDRs received in the period
    arrival = _report(capsys, "--since", "1h", "--table", rollup_table, "--view", "arrival")
    expected = report_from_items(table_items(stack), now - timedelta(hours=2), now + timedelta(hours=1))
    assert {
        row["country"]: {k: row[k] for k in ("sent", "delivered", "undelivered", "rejected")}
        for row in arrival
        if row["country"] != "all"
    } == expected
    assert {row["view"] for row in arrival} == {"arrival"}


def test_report_as_a_table_and_as_csv(counted_day: None, rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["report", "--table", rollup_table]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("period ")
    assert table[1] == "view cohort: the SMS sent in the period, each under its final status so far"
    assert table[2].startswith("p50_est, p90_est: time from Submitted to Delivered of the SMS sent in the period")
    assert table[3].split() == [
        *("country", "sent", "delivered", "undelivered", "rejected", "pending", "rate", "p50_est", "p90_est")
    ]
    assert table[4].split() == ["HK", "3", "2", "0", "1", "0", "66.7%", "1s", "1.8s"]
    assert table[-1].split()[:2] == ["all", "5"]
    assert main(["report", "--table", rollup_table, "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == (
        "country,sent,delivered,undelivered,rejected,pending,delivery_rate,p50_delivered_est,p90_delivered_est,"
        "view,since,until"
    )
    assert csv_lines[1].startswith("HK,3,2,0,1,0,0.6667,1.0,1.8,cohort,")


def test_report_leaves_out_what_came_before_the_period(
    counted_day: None, rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["report", "--table", rollup_table, "--since", "2999-01-01T00:00:00", "--until", "2999-01-02"]) == 0
    assert "no SMS in" in capsys.readouterr().out


# --- the cohort view against the arrival view (issue 18) ---------------------------------------------------

_COHORTS = {
    # 07:00 HK: 10 sent, 6 delivered (4 within 10 s, 2 in 30 s-1 m), 1 undelivered, 1 rejected, 2 pending
    (DAY_ONE.replace(hour=7), "HK"): {"Submitted": 10, "Delivered": 4, "Undelivered": 1}
    | {"cohortDelivered": 6, "cohortUndelivered": 1, "cohortRejected": 1}
    | {"ttfDelivered#10s": 4, "ttfDelivered#1m": 2, "ttfUndelivered#5m": 1, "ttfRejected#10s": 1},
    # 08:00 HK: 10 sent, all pending; 07:00's last 2 Delivered and its Rejected received, and 10 Delivered of
    # SMS sent at 06:00, before the period
    (DAY_ONE.replace(hour=8), "HK"): {"Submitted": 10, "Delivered": 12, "Rejected": 1},
    (DAY_ONE.replace(hour=6), "HK"): {"Submitted": 10, "cohortDelivered": 10, "ttfDelivered#5m": 10},
    # 07:00 VE: 4 sent, 4 delivered, 3 of them after more than 12 hours (in the next day's arrival counts)
    (DAY_ONE.replace(hour=7), "VE"): {"Submitted": 4, "Delivered": 1, "cohortDelivered": 4}
    | {"ttfDelivered#5m": 1, "ttfDelivered#more": 3},
    (DAY_ONE + timedelta(days=1, hours=3), "VE"): {"Delivered": 3},
    # 06:00 SG, before the period: 20 sent, all undelivered, received in the period
    (DAY_ONE.replace(hour=6), "SG"): {"Submitted": 20, "cohortUndelivered": 20, "ttfUndelivered#2h": 20},
    (DAY_ONE.replace(hour=8), "SG"): {"Undelivered": 20},
}
_PERIOD = ["--since", "2026-11-01T07:00:00", "--until", "2026-11-02T07:00:00"]
_SINCE_UNTIL = {"since": "2026-11-01T07:00:00Z", "until": "2026-11-02T07:00:00Z"}


def _numbers(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("country", "sent", "delivered", "undelivered", "rejected", "pending"))


def test_the_cohort_view_tells_what_became_of_the_sms_sent_in_the_period(
    rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given rollup items written as MetricsFunction writes them: arrival and cohort counts, and time buckets
    _write_rollups(rollup_table, _COHORTS)
    # When the report is asked for the period, as JSON, in the default view
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = _report(capsys, "--table", rollup_table, *_PERIOD, session=session)
    # Then it is the cohort view: the SMS sent in the period and what became of them. SG's 20 failures of SMS
    # sent before the period are not this period's (no SG line, not "sent 0, undelivered 20, rate 0.0"), HK's
    # 10 late receipts do not hide its 10 SMS still pending, and the p50/p90 come from the Delivered buckets
    assert rows == [
        {"country": "HK", "sent": 20, "delivered": 6, "undelivered": 1, "rejected": 1, "pending": 12}
        | {"delivery_rate": 0.75, "p50_delivered_est": 8.8, "p90_delivered_est": 51.0, "view": "cohort"}
        | _SINCE_UNTIL,
        {"country": "VE", "sent": 4, "delivered": 4, "undelivered": 0, "rejected": 0, "pending": 0}
        | {"delivery_rate": 1.0, "p50_delivered_est": ">12h", "p90_delivered_est": ">12h", "view": "cohort"}
        | _SINCE_UNTIL,
        {"country": "all", "sent": 24, "delivered": 10, "undelivered": 1, "rejected": 1, "pending": 12}
        | {"delivery_rate": 0.8333, "p50_delivered_est": 45.0, "p90_delivered_est": ">12h", "view": "cohort"}
        | _SINCE_UNTIL,
    ]
    # And it read the period's two UTC days with two Queries, nothing else
    assert calls == ["Query", "Query"]


def test_the_arrival_view_is_the_tdrs_received_in_the_period(
    rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the same rollups
    _write_rollups(rollup_table, _COHORTS)
    # When the report is asked in the arrival view
    session = boto3.Session()
    calls = _dynamodb_calls(session)
    rows = _report(capsys, "--table", rollup_table, *_PERIOD, "--view", "arrival", session=session)
    # Then each line is the TDRs received in the period, as before the cohort view: SG's late failures as
    # sent 0, undelivered 20, and HK's late receipts in place of its pending SMS
    assert [_numbers(row) for row in rows] == [
        ("HK", 20, 16, 1, 1, 2),
        ("VE", 4, 4, 0, 0, 0),
        ("SG", 0, 0, 20, 0, 0),
        ("all", 24, 20, 21, 1, 2),
    ]
    assert [row["delivery_rate"] for row in rows] == [0.8889, 1.0, 0.0, 0.4762]
    # And the estimates are still those of the SMS sent in the period, the view is named on every row
    assert [(row["p50_delivered_est"], row["p90_delivered_est"]) for row in rows] == [
        (8.8, 51.0),
        (">12h", ">12h"),
        (None, None),
        (45.0, ">12h"),
    ]
    assert {row["view"] for row in rows} == {"arrival"}
    assert calls == ["Query", "Query"]


def test_both_views_as_a_table_and_as_csv_by_hour(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    _write_rollups(rollup_table, _COHORTS)
    # When the cohort view is asked as a table
    assert main(["report", "--table", rollup_table, *_PERIOD]) == 0
    table = capsys.readouterr().out.splitlines()
    # Then it says which view it is, that the p50/p90 are estimates from buckets, and reads them as durations
    assert table[1] == "view cohort: the SMS sent in the period, each under its final status so far"
    assert table[2] == (
        "p50_est, p90_est: time from Submitted to Delivered of the SMS sent in the period, estimated from buckets "
        "(bounds 2s 5s 10s 30s 1m 5m 30m 2h 12h)"
    )
    assert [line.split() for line in table[4:]] == [
        ["HK", "20", "6", "1", "1", "12", "75.0%", "8.8s", "51s"],
        ["VE", "4", "4", "0", "0", "0", "100.0%", ">12h", ">12h"],
        ["all", "24", "10", "1", "1", "12", "83.3%", "45s", ">12h"],
    ]
    # And the arrival view's table says it is the arrival view
    assert main(["report", "--table", rollup_table, *_PERIOD, "--view", "arrival"]) == 0
    arrival = capsys.readouterr().out.splitlines()
    assert arrival[1] == "view arrival: the TDRs received in the period, each in the hour it was received"
    assert arrival[6].split() == ["SG", "0", "0", "20", "0", "0", "0.0%", "-", "-"]
    # And by hour, as CSV, each cohort is its own hour's line (HK's 08:00 SMS all pending)
    assert main(["report", "--table", rollup_table, *_PERIOD, "--by", "hour", "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == (
        "bucket,country,sent,delivered,undelivered,rejected,pending,delivery_rate,p50_delivered_est,"
        "p90_delivered_est,view,since,until"
    )
    edges = "2026-11-01T07:00:00Z,2026-11-02T07:00:00Z"
    assert csv_lines[1:] == [
        f"2026-11-01T07:00Z,HK,10,6,1,1,2,0.75,8.8,51.0,cohort,{edges}",
        f"2026-11-01T07:00Z,VE,4,4,0,0,0,1.0,>12h,>12h,cohort,{edges}",
        f"2026-11-01T07:00Z,all,14,10,1,1,2,0.8333,45.0,>12h,cohort,{edges}",
        f"2026-11-01T08:00Z,HK,10,0,0,0,10,,,,cohort,{edges}",
        f"2026-11-01T08:00Z,all,10,0,0,0,10,,,,cohort,{edges}",
    ]


def test_a_long_read_shows_its_progress_and_a_short_one_does_not(
    rollup_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given rollups on the first day of a 100-day period
    put_rollups(rollup_table, {(DAY_ONE + timedelta(hours=3), "HK"): {"Submitted": 2, "Delivered": 2}})
    long_period = ["--since", "2026-11-01T00:00:00", "--until", "2027-02-09T00:00:00"]  # 100 UTC days
    # When a report reads the 100 days, its stderr not a terminal (a pipe, a log)
    assert main(["report", "--table", rollup_table, *long_period, "--format", "json"]) == 0
    printed = capsys.readouterr()
    # Then stderr says what it read when done, in one line, and stdout is the report alone (still JSON)
    assert printed.err == "read: 100 of 100 days of rollups\n"
    assert {row["country"]: row["sent"] for row in json.loads(printed.out)} == {"HK": 2, "all": 2}
    # And a 30-day read says nothing on stderr
    assert main(["report", "--table", rollup_table, "--since", "2026-11-01T00:00:00", "--until", "2026-12-01"]) == 0
    assert capsys.readouterr().err == ""


def test_the_long_read_line_and_the_bar_on_a_terminal(rollup_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given rollups on the first day, and stderr that is a terminal
    put_rollups(rollup_table, {(DAY_ONE + timedelta(hours=3), "HK"): {"Submitted": 2, "Delivered": 2}})

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    # When a 100-day report runs, and a 30-day one
    with contextlib.redirect_stderr(terminal):
        assert main(["report", "--table", rollup_table, "--since", "2026-11-01T00:00:00", "--until", "2027-02-09"]) == 0
        long_read = terminal.getvalue()
        assert main(["report", "--table", rollup_table, "--since", "2026-11-01T00:00:00", "--until", "2026-12-01"]) == 0
    # Then the long one drew its bar in place up to all 100 days, the short one nothing
    assert long_read.startswith("\rread     [")
    assert long_read.endswith("100% 100/100 days of rollups\n")
    assert terminal.getvalue() == long_read
    assert "HK" in capsys.readouterr().out


def test_items_read_around_botocore_s_parser_are_what_botocore_gives(rollup_table: str) -> None:
    # Given rollup items with every attribute the rollups keep (counts, cohorts, each histogram bucket): two hours
    # of two countries, written as MetricsFunction writes them

    every = {"Submitted": 9, "Delivered": 5, "Undelivered": 2, "Rejected": 1}
    every |= {"cohortDelivered": 5, "cohortUndelivered": 2, "cohortRejected": 1}
    every |= {attribute: 1 + i for attributes in TTF_ATTRIBUTES.values() for i, attribute in enumerate(attributes)}
    hours = [DAY_ONE + timedelta(hours=3), DAY_ONE + timedelta(hours=4)]
    _write_rollups(rollup_table, {(hour, country): every for hour in hours for country in ("HK", "VE")})
    client = boto3.client("dynamodb")

    # When read_rollups reads them (their Items taken as DynamoDB sent them), and a plain Query parsed by botocore
    fast = list(read_rollups(client, rollup_table, Hours(DAY_ONE, DAY_ONE + timedelta(days=1))))
    names = {f"#a{i}": name for i, name in enumerate(["slot", *_READ])}
    parsed = client.query(
        TableName=rollup_table,
        KeyConditionExpression="#d = :d",
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names | {"#d": "day"},
        ExpressionAttributeValues={":d": {"S": "2026-11-01"}},
    )["Items"]

    # Then both give the same counts, every time-to-Delivered bucket included
    assert fast == [hour_count("2026-11-01", item) for item in parsed]
    assert len(fast) == 4
    assert fast[0].ttf[Status.DELIVERED] == {label: 1 + i for i, (_, label) in enumerate(TTF_BUCKETS)}


def test_an_error_answer_is_left_to_botocore() -> None:
    # Given a Query's error answer (DynamoDB's JSON error body), as botocore hands it to the before-parse handler
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}'
    answer = {"status_code": 400, "body": body, "headers": {}}
    customized: dict[str, Any] = {}
    # When the handler sees it
    _items_as_sent(answer, customized)
    # Then it changes nothing: botocore parses the error as always
    assert answer["body"] == body
    assert customized == {}
