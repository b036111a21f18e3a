"""`cinnox-sms pending` without AWS: which cohorts to read, the SMS lists' submitted less finals, age and formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cinnox_sms.rollup import RollupKey, SmsList, list_put
from cinnox_sms.status import Status
from cinnox_sms_cli.main import main
from cinnox_sms_cli.pending import PendingSms, cohorts_with_pending, older_than, pending_in, render
from cinnox_sms_cli.report import HourCount, Period, duration

HK_07 = RollupKey(datetime(2026, 11, 29, 7, tzinfo=UTC), "HK")
PERIOD = Period(datetime(2026, 11, 29, 0, tzinfo=UTC), datetime(2026, 11, 29, 8, tzinfo=UTC))


def _list_item(key: RollupKey, suffix: str, submitted: dict[str, str] | None = None, **finals: str) -> dict[str, Any]:
    """One SMS list item as the metrics function Puts it (rollup.list_put), as a Query returns it."""
    item: dict[str, Any] = list_put("rollups", key, suffix, SmsList(submitted or {}, finals), 400)["Item"]
    return item


def _hour(hour: int, country: str, submitted: int, **cohort: int) -> HourCount:
    return HourCount(
        datetime(2026, 11, 29, hour, tzinfo=UTC),
        country,
        {Status.SUBMITTED: submitted},
        {Status(status): n for status, n in cohort.items()},
    )


def test_only_hours_and_countries_with_sms_sent_and_no_final_status_are_read() -> None:
    # Given three cohorts: one all final, one with 2 of 3 final, one with nothing final, and an hour of
    # late finals only (sent 0)
    counts = [
        _hour(5, "HK", 2, Delivered=1, Rejected=1),
        _hour(6, "VE", 3, Delivered=1, Undelivered=1),
        _hour(5, "SG", 1),
        _hour(7, "GB", 0),
    ]
    # Then the two with SMS pending are read, in hour then country order
    assert cohorts_with_pending(counts) == [
        RollupKey(datetime(2026, 11, 29, 5, tzinfo=UTC), "SG"),
        RollupKey(datetime(2026, 11, 29, 6, tzinfo=UTC), "VE"),
    ]
    # And with a country, only its own
    assert cohorts_with_pending(counts, "VE") == [RollupKey(datetime(2026, 11, 29, 6, tzinfo=UTC), "VE")]
    assert cohorts_with_pending(counts, "HK") == []


def test_pending_sms_are_those_submitted_in_some_list_and_final_in_none() -> None:
    # Given an hour's lists: SMS submitted in one item, their finals in others, one final kept early
    items = [
        _list_item(HK_07, "1", {"a": "2026-11-29T07:10:00.000+00:00", "b": "2026-11-29T07:05:00.000+00:00"}),
        _list_item(HK_07, "2", {"c": "2026-11-29T07:20:00.000+00:00", "d": "2026-11-29T07:01:00.000+00:00"}),
        _list_item(HK_07, "3", a="Delivered"),
        _list_item(HK_07, "early-x", d="Rejected,Undelivered"),
    ]
    # When the hour's pending SMS are worked out
    found = pending_in(HK_07, items)
    # Then b and c are pending (submitted, no final anywhere), oldest first, with their submitted time
    assert [(sms.transaction_id, sms.country, sms.submitted_at) for sms in found] == [
        ("b", "HK", "2026-11-29T07:05:00.000+00:00"),
        ("c", "HK", "2026-11-29T07:20:00.000+00:00"),
    ]
    # And no list, or only finals, is nothing pending
    assert pending_in(HK_07, []) == []
    assert pending_in(HK_07, [_list_item(HK_07, "4", e="Delivered")]) == []


def test_a_submitted_time_that_does_not_parse_sorts_as_its_hour() -> None:
    [sms] = pending_in(HK_07, [_list_item(HK_07, "1", {"z": "not a time"})])
    assert (sms.submitted, sms.submitted_at) == (HK_07.hour, "not a time")


def _sms(tid: str, minute: int, country: str = "HK") -> PendingSms:
    at = datetime(2026, 11, 29, 7, minute, tzinfo=UTC)
    return PendingSms(at, tid, country, at.isoformat(timespec="milliseconds"))


def test_older_than_keeps_those_submitted_at_least_that_long_ago_oldest_first() -> None:
    # Given three SMS submitted at 07:00, 07:30 and 07:50, and now 08:00
    pending = [_sms("late", 50), _sms("first", 0), _sms("mid", 30)]
    now = datetime(2026, 11, 29, 8, tzinfo=UTC)
    # Then 30 minutes keeps those submitted 30 minutes ago or more, and 0 keeps all, oldest first
    assert [sms.transaction_id for sms in older_than(pending, timedelta(minutes=30), now)] == ["first", "mid"]
    assert [sms.transaction_id for sms in older_than(pending, timedelta(0), now)] == ["first", "mid", "late"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", timedelta(0)), ("6h", timedelta(hours=6)), ("90m", timedelta(minutes=90)), ("2d", timedelta(days=2))],
)
def test_an_age_is_0_or_minutes_hours_days(text: str, expected: timedelta) -> None:
    assert duration(text) == expected


def test_pending_in_every_format_names_the_period() -> None:
    pending = [_sms("txn-000000000000000000001", 0, "VE"), _sms("b", 30)]
    # The table: the period, what is listed, the columns, one SMS a line
    table = render(pending, "table", PERIOD, age=timedelta(hours=6), country="VE").splitlines()
    assert table[0] == "period 2026-11-29T00:00Z to 2026-11-29T08:00Z (8 h, UTC, end excluded)"
    assert table[1] == "2 SMS sent in the period to VE, at least 6h ago, with no final status, oldest first"
    assert table[2].split() == ["transaction_id", "country", "submitted_at"]
    assert table[3].split() == ["txn-000000000000000000001", "VE", "2026-11-29T07:00:00.000+00:00"]
    assert table[4].split() == ["b", "HK", "2026-11-29T07:30:00.000+00:00"]
    # CSV and JSON: the columns, the period on every row
    period = {"since": "2026-11-29T00:00:00Z", "until": "2026-11-29T08:00:00Z"}
    first = {"transaction_id": "txn-000000000000000000001", "country": "VE"}
    first |= {"submitted_at": "2026-11-29T07:00:00.000+00:00"} | period
    assert next(csv.DictReader(io.StringIO(render(pending, "csv", PERIOD)))) == first
    assert json.loads(render(pending, "json", PERIOD))[0] == first


def test_nothing_pending_is_the_header_alone_or_an_empty_list() -> None:
    assert render([], "table", PERIOD).splitlines()[1:] == [
        "0 SMS sent in the period with no final status, oldest first",
        "transaction_id country  submitted_at",
    ]
    assert render([], "csv", PERIOD) == "transaction_id,country,submitted_at,since,until"
    assert json.loads(render([], "json", PERIOD)) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--table", "r", "--older-than", "six hours"], "'six hours' is not a duration like 0, 90m, 6h or 7d"),
        (["--table", "r", "--since", "1h", "--until", "2h"], "must come after --since"),
        (["--table", "r", "--format", "xml"], "invalid choice: 'xml'"),
        (["--older-than", "1h"], "one of the arguments --stack --table is required"),
    ],
)
def test_pending_bad_options_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["pending", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
