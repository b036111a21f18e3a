"""`cinnox-sms report` without AWS: periods in whole hours, the days they Query, the cohort and arrival views,
percentiles estimated from buckets, buckets and the three formats."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cinnox_sms.status import Status
from cinnox_sms_cli.main import main
from cinnox_sms_cli.report import HourCount, Period, by_country, human, moment, percentile_from_buckets, render

NOW = datetime(2026, 11, 29, 7, 23, 45, tzinfo=UTC)


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def _count(day: int, hour: int, country: str, **counts: int) -> HourCount:
    """An hour's rollup item: arrival counts by status name, cohort counts as cohortDelivered=..., and the
    Delivered histogram as ttf_10s=... (the bucket's label after ttf_)."""
    arrival = {Status(name): n for name, n in counts.items() if name in {s.value for s in Status}}
    cohort = {Status(name.removeprefix("cohort")): n for name, n in counts.items() if name.startswith("cohort")}
    delivered = {name.removeprefix("ttf_"): n for name, n in counts.items() if name.startswith("ttf_")}
    return HourCount(_at(day, hour), country, arrival, cohort, {Status.DELIVERED: delivered} if delivered else {})


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


def test_in_the_cohort_view_late_failures_of_sms_sent_before_the_period_are_not_its_failures() -> None:
    # Given an hour in the period with 20 Undelivered TDRs of SMS sent before it, and nothing sent
    counts = [_count(29, 6, "VE", Undelivered=20)]
    # When it is read in the arrival view, it is what was received: 20 undelivered, rate 0
    [arrival, _] = by_country(counts, view="arrival")
    assert (arrival.sent, arrival.undelivered, arrival.delivery_rate) == (0, 20, 0.0)
    # Then in the cohort view nothing was sent in the period, so there is no line (those 20 count in the
    # cohort of the hour their SMS were sent)
    assert by_country(counts, view="cohort") == []


def test_in_the_cohort_view_pending_is_what_the_period_sent_with_no_final_status() -> None:
    # Given 10 SMS sent in the period with no final status yet, and 10 Delivered TDRs received in it of
    # SMS sent before it
    counts = [_count(29, 6, "HK", Submitted=10), _count(29, 7, "HK", Delivered=10)]
    # When it is read in both views
    [cohort, cohort_all] = by_country(counts, view="cohort")
    [arrival, _] = by_country(counts, view="arrival")
    # Then the cohort view says the 10 sent are pending and none delivered
    assert (cohort.sent, cohort.delivered, cohort.pending, cohort.delivery_rate) == (10, 0, 10, None)
    assert (cohort_all.country, cohort_all.pending) == ("all", 10)
    # And the arrival view, as before, takes the late receipts for the sent ones
    assert (arrival.sent, arrival.delivered, arrival.pending) == (10, 10, 0)


def test_the_cohort_view_counts_what_became_of_each_hours_sms_in_that_hour() -> None:
    # Given two hours of HK: the first's SMS finally delivered, undelivered and rejected (some late, in the
    # second hour's arrival counts), the second's partly pending
    counts = [
        _count(29, 6, "HK", Submitted=5, Delivered=2, cohortDelivered=3, cohortUndelivered=1, cohortRejected=1),
        _count(29, 7, "HK", Submitted=4, Delivered=3, Undelivered=1, cohortDelivered=2),
    ]
    # When it is read by hour in the cohort view
    lines = by_country(counts, "hour", "cohort")
    # Then each hour's line is its own SMS: sent, what they became, and pending the rest
    assert [
        (ln.bucket, ln.country, ln.sent, ln.delivered, ln.undelivered, ln.rejected, ln.pending) for ln in lines
    ] == [
        ("2026-11-29T06:00Z", "HK", 5, 3, 1, 1, 0),
        ("2026-11-29T06:00Z", "all", 5, 3, 1, 1, 0),
        ("2026-11-29T07:00Z", "HK", 4, 2, 0, 0, 2),
        ("2026-11-29T07:00Z", "all", 4, 2, 0, 0, 2),
    ]
    # And over the whole period the hours add up; more final statuses than sent never makes pending negative
    [whole, _] = by_country(counts, view="cohort")
    assert (whole.sent, whole.delivered, whole.pending) == (9, 5, 2)
    [more, _] = by_country([_count(29, 6, "HK", Submitted=1, cohortDelivered=1, cohortUndelivered=1)], view="cohort")
    assert more.pending == 0


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ({"2s": 1}, 0.5, 1.0),  # halfway into the first bucket, from 0 s
        ({"2s": 10}, 0.9, 1.8),
        ({"10s": 1}, 0.5, 7.5),  # halfway into 5-10 s: a bucket starts at the bound before it
        ({"10s": 5, "30s": 5}, 0.5, 10.0),  # the fifth of ten: the first bucket's top
        ({"10s": 5, "30s": 5}, 0.9, 26.0),  # the ninth: 4 of 5 into 10-30 s
        ({"1m": 2, "5m": 2}, 0.5, 60.0),
        ({"5m": 4}, 0.25, 60 + 240 * 0.25),  # the bucket starts at the bound before it (1m), empty or not
        ({"2h": 1, "12h": 1}, 1.0, 43200.0),
        ({"10s": 1, "more": 9}, 0.5, math.inf),  # in the open bucket: only known to be above 12h
        ({"10s": 9, "more": 1}, 0.9, 10.0),
        ({"10s": 3, "unknown": 100}, 0.5, 7.5),  # a label not in TTF_BUCKETS is not counted
        ({}, 0.5, None),  # no delivered SMS: no estimate
        ({"10s": 0, "more": 0}, 0.9, None),
    ],
)
def test_a_percentile_is_interpolated_linearly_inside_its_bucket(
    buckets: dict[str, int], q: float, expected: float | None
) -> None:
    assert percentile_from_buckets(buckets, q) == (pytest.approx(expected) if expected else expected)


@pytest.mark.parametrize("q", [0, -0.5, 1.5])
def test_a_percentile_outside_0_to_1_is_a_value_error(q: float) -> None:
    with pytest.raises(ValueError, match="a quantile is above 0 and at most 1"):
        percentile_from_buckets({"10s": 1}, q)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (4.5, "4.5s"),
        (5.0, "5s"),
        (42.3, "42s"),
        (210.0, "3.5m"),
        (300.0, "5m"),
        (4320.0, "1.2h"),
        (math.inf, ">12h"),
    ],
)
def test_a_percentile_reads_as_seconds_minutes_or_hours(seconds: float | None, text: str) -> None:
    assert human(seconds) == text


def test_the_p50_and_p90_of_a_line_and_of_all_come_from_the_summed_delivered_buckets() -> None:
    # Given two countries' Delivered histograms (one hour each) and one country with no delivered SMS
    counts = [
        _count(29, 6, "HK", Submitted=10, cohortDelivered=10, ttf_10s=5, ttf_30s=5),
        _count(29, 6, "SG", Submitted=10, cohortDelivered=10, ttf_30s=10),
        _count(29, 6, "VE", Submitted=1),
    ]
    # When they are summed per country
    lines = {line.country: line for line in by_country(counts, view="cohort")}
    # Then each line estimates from its own buckets, "all" from the sum of them, VE has none
    assert lines["HK"].p50_delivered_est == 10.0
    assert lines["HK"].p90_delivered_est == pytest.approx(26.0)
    assert lines["SG"].p50_delivered_est == 20.0
    assert lines["SG"].p90_delivered_est == pytest.approx(28.0)
    assert lines["all"].delivered_times == {"10s": 5, "30s": 15}
    assert lines["all"].p50_delivered_est == pytest.approx(10 + 20 * 5 / 15)
    assert lines["VE"].p50_delivered_est is None


_PERIOD = Period(_at(28, 7), _at(29, 8))
_HK = _count(
    29, 6, "HK", Submitted=3, Delivered=2, Undelivered=1, cohortDelivered=2, cohortUndelivered=1, ttf_10s=1, ttf_1m=1
)
_LINES = by_country([_HK], "day", "cohort")
_HEADER = ["country", "sent", "delivered", "undelivered", "rejected", "pending", "rate", "p50_est", "p90_est"]
_ESTIMATES = "p50_est, p90_est: time from Submitted to Delivered of the SMS sent in the period, estimated from buckets"


def test_table_names_the_period_the_view_and_the_estimates_first_and_the_bucket_first_column() -> None:
    text = render(_LINES, "table", _PERIOD, "day", "cohort").splitlines()
    assert text[0] == "period 2026-11-28T07:00Z to 2026-11-29T08:00Z (25 h, UTC, end excluded)"
    assert text[1] == "view cohort: the SMS sent in the period, each under its final status so far"
    assert text[2] == f"{_ESTIMATES} (bounds 2s 5s 10s 30s 1m 5m 30m 2h 12h)"
    assert text[3].split() == ["day", *_HEADER]
    # p50: the first of two, at the top of 5-10 s; p90: 1.8 of two, 80 % into 30 s-1 m
    assert text[4].split() == ["2026-11-29", "HK", "3", "2", "1", "0", "0", "66.7%", "10s", "54s"]
    # Without --by the columns are the same but the bucket; the arrival view says so
    plain = render(by_country([_count(29, 6, "HK", Submitted=1)]), "table", _PERIOD, view="arrival").splitlines()
    assert plain[1] == "view arrival: the TDRs received in the period, each in the hour it was received"
    assert plain[3].split() == _HEADER
    assert plain[4].split() == ["HK", "1", "0", "0", "0", "1", "-", "-", "-"]


def test_csv_and_json_carry_the_bucket_first_and_the_view_and_period_on_every_row() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_LINES, "csv", _PERIOD, "day", "cohort"))))
    assert list(rows[0]) == [
        "bucket",
        "country",
        "sent",
        "delivered",
        "undelivered",
        "rejected",
        "pending",
        "delivery_rate",
        "p50_delivered_est",
        "p90_delivered_est",
        "view",
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
        "p50_delivered_est": "10.0",
        "p90_delivered_est": "54.0",
        "view": "cohort",
        "since": "2026-11-28T07:00:00Z",
        "until": "2026-11-29T08:00:00Z",
    }
    parsed = json.loads(render(_LINES, "json", _PERIOD, "day", "cohort"))
    assert parsed[-1] == {
        "bucket": "2026-11-29",
        "country": "all",
        "sent": 3,
        "delivered": 2,
        "undelivered": 1,
        "rejected": 0,
        "pending": 0,
        "delivery_rate": 0.6667,
        "p50_delivered_est": 10.0,
        "p90_delivered_est": 54.0,
        "view": "cohort",
        "since": "2026-11-28T07:00:00Z",
        "until": "2026-11-29T08:00:00Z",
    }
    # Without --by there is no bucket column, and an empty report is still parseable
    assert "bucket" not in json.loads(render(_LINES, "json", _PERIOD))[0]
    assert json.loads(render([], "json", _PERIOD)) == []
    assert render([], "csv", _PERIOD) == (
        "country,sent,delivered,undelivered,rejected,pending,delivery_rate,p50_delivered_est,p90_delivered_est,"
        "view,since,until"
    )


def test_an_estimate_in_the_open_bucket_is_above_12h_in_every_format() -> None:
    # Given a country whose delivered SMS mostly took more than 12 hours, and one with none delivered
    lines = by_country(
        [_count(29, 6, "VE", Submitted=4, cohortDelivered=4, ttf_5m=1, ttf_more=3), _count(29, 6, "GB", Submitted=1)],
        view="cohort",
    )
    # Then the table, CSV and JSON say ">12h" (no number is known), and nothing for no delivered SMS
    table = render(lines, "table", _PERIOD, view="cohort").splitlines()
    assert table[4].split()[-2:] == [">12h", ">12h"]
    assert table[5].split()[-2:] == ["-", "-"]
    [ve, gb, _] = json.loads(render(lines, "json", _PERIOD, view="cohort"))
    assert (ve["p50_delivered_est"], ve["p90_delivered_est"], gb["p50_delivered_est"]) == (">12h", ">12h", None)
    [ve_csv, gb_csv, _] = csv.DictReader(io.StringIO(render(lines, "csv", _PERIOD, view="cohort")))
    assert (ve_csv["p90_delivered_est"], gb_csv["p90_delivered_est"]) == (">12h", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--table", "r", "--until", "tomorrow"], "'tomorrow' is not a period like 24h"),
        (["--table", "r", "--since", "1h", "--until", "2h"], "must come after --since"),
        (["--table", "r", "--since", "2026-11-29T08:00:00", "--until", "2026-11-29T07:00:00"], "must come after"),
        (["--table", "r", "--by", "week"], "invalid choice: 'week'"),
        (["--table", "r", "--view", "sent"], "invalid choice: 'sent'"),
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


def test_report_help_names_both_views_and_the_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--view {cohort,arrival}" in text
    assert "The cohort view (default)" in text
    assert "estimated from time buckets (2s 5s 10s 30s 1m 5m 30m 2h 12h; above the last: >12h)" in text
