"""`cinnox-sms report` without AWS: periods in whole hours, the days they Query, buckets and the three formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cinnox_sms.status import Status
from cinnox_sms_cli.main import main
from cinnox_sms_cli.report import HourCount, Period, by_country, moment, render

NOW = datetime(2026, 11, 29, 7, 23, 45, tzinfo=UTC)


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def _count(day: int, hour: int, country: str, **counts: int) -> HourCount:
    return HourCount(_at(day, hour), country, {Status(name): n for name, n in counts.items()})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2026-11-01T05:30:00", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-01T13:30:00+08:00", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
)
def test_a_moment_is_a_duration_before_now_or_an_iso_time(text: str, expected: datetime) -> None:
    assert moment(text, NOW) == expected


def test_the_period_is_whole_hours_since_floored_and_until_rounded_up() -> None:
    # Given a since and an until inside their hours (one in another zone)
    period = Period.covering(
        NOW - timedelta(hours=24), datetime(2026, 11, 29, 15, 0, 1, tzinfo=timezone(timedelta(hours=8)))
    )
    # Then since is floored to its hour, until (exclusive) rounded up to the next one, in UTC
    assert period == Period(_at(28, 7), _at(29, 8))
    assert str(period) == "2026-11-28T07:00Z to 2026-11-29T08:00Z (25 h, UTC, end excluded)"
    # And an until already on the hour stays there
    assert Period.covering(_at(28, 7), _at(28, 9)).end == _at(28, 9)


def test_an_until_not_after_since_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="must come after --since"):
        Period.covering(_at(28, 9), _at(28, 9))


def test_the_period_queries_each_utc_day_it_touches_with_its_hours() -> None:
    # Given a period from 22:00 on the 27th to 03:00 (excluded) on the 29th
    period = Period(datetime(2026, 11, 27, 22, tzinfo=UTC), _at(29, 3))
    # Then three days are read: the last two hours of the first, all of the second, three of the last
    assert list(period.days()) == [("2026-11-27", 22, 23), ("2026-11-28", 0, 23), ("2026-11-29", 0, 2)]
    # And 30 whole days are 30 days
    assert len(list(Period(_at(1, 0), _at(1, 0) + timedelta(days=30)).days())) == 30


def test_lines_per_country_count_tdrs_and_pending_is_what_has_no_terminal_status() -> None:
    # Given hours of two countries, a late Delivered counted in its own hour
    counts = [
        _count(29, 6, "HK", Submitted=3, Delivered=1, Rejected=1),
        _count(29, 7, "HK", Delivered=1),
        _count(29, 6, "VE", Submitted=2),
        _count(29, 7, "SG", Delivered=1),  # a terminal TDR whose Submitted came before the period
    ]
    # When they are summed over the whole period
    lines = by_country(counts)
    # Then most sent first, pending never below zero, and the "all" line adds up the columns
    assert [(ln.country, ln.sent, ln.delivered, ln.rejected, ln.pending) for ln in lines] == [
        ("HK", 3, 2, 1, 0),
        ("VE", 2, 0, 0, 2),
        ("SG", 0, 1, 0, 0),
        ("all", 5, 3, 1, 2),
    ]
    assert lines[0].delivery_rate == pytest.approx(2 / 3)
    assert lines[1].delivery_rate is None


@pytest.mark.parametrize(
    ("by", "buckets"),
    [
        ("day", ["2026-11-28", "2026-11-28", "2026-11-29", "2026-11-29", "2026-11-29"]),
        (
            "hour",
            ["2026-11-28T23:00Z", "2026-11-28T23:00Z", "2026-11-29T06:00Z", "2026-11-29T06:00Z", "2026-11-29T06:00Z"],
        ),
    ],
)
def test_with_by_each_bucket_has_its_countries_then_its_all_line(by: str, buckets: list[str]) -> None:
    counts = [
        _count(29, 6, "HK", Submitted=2),
        _count(28, 23, "HK", Submitted=1),
        _count(29, 6, "SG", Submitted=5),
    ]
    lines = by_country(counts, by)  # type: ignore[arg-type]
    assert [ln.bucket for ln in lines] == buckets
    assert [(ln.country, ln.sent) for ln in lines] == [("HK", 1), ("all", 1), ("SG", 5), ("HK", 2), ("all", 7)]


_PERIOD = Period(_at(28, 7), _at(29, 8))
_LINES = by_country([_count(29, 6, "HK", Submitted=3, Delivered=2, Undelivered=1)], "day")


def test_table_names_the_period_first_and_the_bucket_first_column() -> None:
    text = render(_LINES, "table", _PERIOD, "day").splitlines()
    assert text[0] == "period 2026-11-28T07:00Z to 2026-11-29T08:00Z (25 h, UTC, end excluded)"
    assert text[1].split() == ["day", "country", "sent", "delivered", "undelivered", "rejected", "pending", "rate"]
    assert text[2].split() == ["2026-11-29", "HK", "3", "2", "1", "0", "0", "66.7%"]
    # Without --by the columns are today's
    plain = render(by_country([_count(29, 6, "HK", Submitted=1)]), "table", _PERIOD).splitlines()
    assert plain[1].split() == ["country", "sent", "delivered", "undelivered", "rejected", "pending", "rate"]
    assert plain[2].split() == ["HK", "1", "0", "0", "0", "1", "-"]


def test_csv_and_json_carry_the_bucket_first_and_the_period_on_every_row() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_LINES, "csv", _PERIOD, "day"))))
    assert list(rows[0]) == [
        "bucket",
        "country",
        "sent",
        "delivered",
        "undelivered",
        "rejected",
        "pending",
        "delivery_rate",
        "since",
        "until",
    ]
    assert dict(rows[0]) == {
        "bucket": "2026-11-29",
        "country": "HK",
        "sent": "3",
        "delivered": "2",
        "undelivered": "1",
        "rejected": "0",
        "pending": "0",
        "delivery_rate": "0.6667",
        "since": "2026-11-28T07:00:00Z",
        "until": "2026-11-29T08:00:00Z",
    }
    parsed = json.loads(render(_LINES, "json", _PERIOD, "day"))
    assert parsed[-1] == {
        "bucket": "2026-11-29",
        "country": "all",
        "sent": 3,
        "delivered": 2,
        "undelivered": 1,
        "rejected": 0,
        "pending": 0,
        "delivery_rate": 0.6667,
        "since": "2026-11-28T07:00:00Z",
        "until": "2026-11-29T08:00:00Z",
    }
    # Without --by there is no bucket column, and an empty report is still parseable
    assert "bucket" not in json.loads(render(_LINES, "json", _PERIOD))[0]
    assert json.loads(render([], "json", _PERIOD)) == []
    assert render([], "csv", _PERIOD) == "country,sent,delivered,undelivered,rejected,pending,delivery_rate,since,until"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--table", "r", "--until", "tomorrow"], "'tomorrow' is not a period like 24h"),
        (["--table", "r", "--since", "1h", "--until", "2h"], "must come after --since"),
        (["--table", "r", "--since", "2026-11-29T08:00:00", "--until", "2026-11-29T07:00:00"], "must come after"),
        (["--table", "r", "--by", "week"], "invalid choice: 'week'"),
        (["--since", "1h"], "one of the arguments --stack --table is required"),
    ],
)
def test_report_bad_options_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_report_help_says_table_is_the_rollup_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--help"])
    assert exited.value.code == 0
    assert "the rollup table's name" in " ".join(capsys.readouterr().out.split())
