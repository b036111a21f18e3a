"""The dashboard's delivery widget (DeliveryWidgetFunction, a CloudWatch custom widget) against moto: delivery by
country over the dashboard's time range, from the rollups only (one Query per UTC day, never a Scan), worst
first, escaped, no script; and within its time for 30 days x 200 countries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from cinnox_sms_cli.main import main
from support import LambdaContext

if TYPE_CHECKING:
    from types import ModuleType

DAY_ONE = datetime(2026, 11, 1, tzinfo=UTC)


def _calls(module: ModuleType) -> list[str]:
    """The DynamoDB operations the widget's client makes (botocore's before-call event)."""
    calls: list[str] = []
    module.dynamodb().meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def _event(start: datetime, end: datetime, **context: Any) -> dict[str, Any]:
    """What CloudWatch sends ("Details about custom widgets in CloudWatch"): widgetContext, times in ms."""
    time_range = {"mode": "absolute", "start": int(start.timestamp() * 1000), "end": int(end.timestamp() * 1000)}
    return {
        "widgetContext": {
            "dashboardName": "cinnox-sms",
            "widgetId": "widget-7",
            "accountId": "123456789012",
            "locale": "en",
            "timezone": {"label": "UTC", "offsetISO": "+00:00", "offsetInMinutes": 0},
            "period": 300,
            "isAutoPeriod": True,
            "timeRange": time_range | context.pop("time_range", {}),
            "theme": "light",
            "linkCharts": True,
            "title": "SMS delivery by country",
            "forms": {"all": {}},
            "params": {"view": "cohort"},
            "width": 1200,
            "height": 400,
        }
        | context
    }


def _put(table: str, items: dict[tuple[datetime, str], dict[str, int]]) -> None:
    from cinnox_sms.rollup import RollupKey

    requests: list[Any] = [
        {"PutRequest": {"Item": RollupKey.of(hour, c).item_key() | {k: {"N": str(n)} for k, n in counts.items()}}}
        for (hour, c), counts in items.items()
    ]
    client = boto3.client("dynamodb")
    for start in range(0, len(requests), 25):  # BatchWriteItem takes at most 25 requests
        client.batch_write_item(RequestItems={table: requests[start : start + 25]})


def _countries(page: str) -> list[str]:
    return re.findall(r"<tr(?: class=\"cx-all\")?><td>([^<]*)</td>", page)


def test_widget_draws_the_dashboards_range_worst_first_from_one_query_per_day(
    widget: ModuleType, rollup_table: str
) -> None:
    # Given rollups on 1 Nov: HK delivers all, VE fails most, SG half; and US on 3 Nov (outside the range)
    hour = DAY_ONE + timedelta(hours=9)
    cohort = {"Submitted": 10, "cohortDelivered": 10, "ttfDelivered#2s": 5, "ttfDelivered#5s": 5}
    _put(
        rollup_table,
        {
            (hour, "HK"): cohort,
            (hour, "VE"): {"Submitted": 10, "cohortDelivered": 1, "cohortUndelivered": 8, "ttfDelivered#30s": 1},
            (hour + timedelta(hours=13), "SG"): {"Submitted": 4, "cohortDelivered": 2, "cohortRejected": 2},
            (DAY_ONE + timedelta(days=2), "US"): cohort,
        },
    )
    calls = _calls(widget)

    # When CloudWatch draws the widget for the dashboard's range, 1 Nov 00:00 to 2 Nov 00:00 (24 hours)
    page = widget.lambda_handler(_event(DAY_ONE, DAY_ONE + timedelta(days=1)), LambdaContext())

    # Then one row per country sent to in the range, the failing one first, the 'all' line last
    assert _countries(page) == ["VE", "SG", "HK", "all"]
    assert "<td>VE</td><td>10</td><td>1</td><td>8</td><td>0</td><td>1</td><td>11.1%</td>" in page
    assert 'class="cx-fill cx-poor" style="width:11.1%"' in page  # its bar
    assert "<td>HK</td><td>10</td><td>10</td><td>0</td><td>0</td><td>0</td><td>100.0%</td>" in page
    assert "<td>2s</td><td>4.4s</td>" in page  # HK's p50, p90 to Delivered (estimated from the buckets)
    assert "2026-11-01T00:00Z to 2026-11-02T00:00Z (24 h" in page
    # And it read the rollups with one Query for the one UTC day, no Scan; and printed no script
    assert calls == ["Query"]
    assert "<script" not in page.lower()
    assert "http" not in page.lower()


def test_widget_follows_the_zoom_and_says_when_nothing_was_sent(widget: ModuleType, rollup_table: str) -> None:
    # Given SMS sent to HK at 09:00 on 1 Nov only
    _put(rollup_table, {(DAY_ONE + timedelta(hours=9), "HK"): {"Submitted": 3, "cohortDelivered": 3}})

    # When the dashboard's range holds that hour but its zoom is 12:00 to 14:00, across the day boundary too
    zoom = {"zoom": {"start": int((DAY_ONE + timedelta(hours=12)).timestamp() * 1000)}}
    zoom["zoom"]["end"] = int((DAY_ONE + timedelta(hours=14)).timestamp() * 1000)
    zoomed = widget.lambda_handler(_event(DAY_ONE, DAY_ONE + timedelta(days=2), time_range=zoom), LambdaContext())
    whole = widget.lambda_handler(_event(DAY_ONE, DAY_ONE + timedelta(days=2)), LambdaContext())

    # Then the zoomed widget shows the zoom's hours, with no SMS; the whole range shows HK
    assert "No SMS sent in this period." in zoomed
    assert "(2 h," in zoomed
    assert _countries(whole) == ["HK", "all"]


def test_widget_describes_itself(widget: ModuleType, rollup_table: str) -> None:
    # Given the widget, When CloudWatch asks for its documentation ("describe")
    calls = _calls(widget)
    described = widget.lambda_handler({"describe": True}, LambdaContext())

    # Then it answers markdown saying what it shows, and reads nothing
    assert described.startswith("## SMS delivery by country")
    assert "Params" in described
    assert calls == []


def test_widget_cuts_a_long_range_to_its_last_days(widget: ModuleType, rollup_table: str) -> None:
    # Given a dashboard range of a year (ending on 1 Nov)
    calls = _calls(widget)
    end = DAY_ONE + timedelta(days=1)

    # When the widget draws it
    page = widget.lambda_handler(_event(end - timedelta(days=365), end), LambdaContext())

    # Then it reads its last MAX_DAYS days only, one Query each, and says so
    assert calls == ["Query"] * widget.MAX_DAYS
    assert f"(the last {widget.MAX_DAYS} days of the range)" in page


def test_a_range_that_does_not_fit_in_the_time_limit_shows_its_latest_days_and_says_so(
    widget: ModuleType, rollup_table: str
) -> None:
    # Given rollups on each of the last 10 days, and a function whose time runs out after 3 days' Queries
    end = DAY_ONE + timedelta(days=10)
    _put(rollup_table, {(DAY_ONE + timedelta(days=d, hours=9), "HK"): {"Submitted": 1} for d in range(10)})
    calls = _calls(widget)
    context = LambdaContext()
    context.get_remaining_time_in_millis = lambda: widget.TIME_LEFT_MS + (1 if len(calls) < 3 else -1)  # type: ignore[method-assign]

    # When the widget draws the 10 days
    page = widget.lambda_handler(_event(end - timedelta(days=10), end), context)

    # Then it read the newest 3 days, newest first, drew them, and says from which day the page counts
    assert calls == ["Query"] * 3
    assert "(from 2026-11-08 on: the days before did not fit in the function&#x27;s time limit)" in page
    assert re.search(r"<td>HK</td><td[^>]*>3</td>", page), page  # HK's sent: the 3 days read


@pytest.mark.parametrize(("days", "queries"), [(1, 2), (30, 31)])
def test_widget_renders_30_days_of_200_countries_with_a_query_a_day(
    widget: ModuleType, rollup_table: str, days: int, queries: int
) -> None:
    # Given 30 days x 200 countries of rollups: each country sent to in 4 hours of every day
    countries = [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(200)]
    counts = {"Submitted": 50, "cohortDelivered": 45, "cohortUndelivered": 3, "ttfDelivered#5s": 40}
    counts |= {"ttfDelivered#30s": 5, "Delivered": 45, "Undelivered": 3}
    _put(
        rollup_table,
        {
            (DAY_ONE + timedelta(days=d, hours=h), country): counts
            for d in range(30)
            for h in (3, 9, 15, 21)
            for country in countries
        },
    )
    calls = _calls(widget)
    # a dashboard's relative range of `days` days, ending at 12:30 on the last day (so it touches days + 1 UTC days)
    end = DAY_ONE + timedelta(days=29, hours=12, minutes=30)

    # When the widget draws that range (time enough: moto in-process is slower than DynamoDB, and the widget's own
    # time is make bench's to measure, not a test's)
    page = widget.lambda_handler(_event(end - timedelta(days=days), end), LambdaContext(remaining_ms=900_000))

    # Then it shows all 200 countries with one Query per UTC day the range touches and no Scan. (Its CPU: make
    # bench, "widget" rows: 0.5 s for 30 days here, 3.8 s with every country in every hour.)
    assert len(_countries(page)) == 201
    assert calls == ["Query"] * queries


def test_report_html_is_the_widgets_table_as_a_page_that_stands_alone(
    widget: ModuleType, rollup_table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given rollups on 1 Nov for HK and VE
    hour = DAY_ONE + timedelta(hours=9)
    _put(
        rollup_table,
        {
            (hour, "HK"): {"Submitted": 5, "cohortDelivered": 5, "ttfDelivered#2s": 5},
            (hour, "VE"): {"Submitted": 5, "cohortDelivered": 1, "cohortRejected": 4},
        },
    )
    page = tmp_path / "delivery.html"

    # When `cinnox-sms report --html FILE` covers the same day as the widget (with --by: the page is per country)
    argv = ["report", "--table", rollup_table, "--since", "2026-11-01T00:00Z", "--until", "2026-11-02T00:00Z"]
    assert main([*argv, "--by", "hour", "--html", str(page)]) == 0
    drawn = widget.lambda_handler(_event(DAY_ONE, DAY_ONE + timedelta(days=1)), LambdaContext())

    # Then the page holds exactly the widget's table, in a document with no script, link or anything fetched
    written = page.read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>")
    assert drawn in written
    assert _countries(written) == ["VE", "HK", "all"]
    assert not re.search(r"<script|<link|<img|<iframe|src=|href=|url\(|@import|https?:", written, re.IGNORECASE)
    assert f"wrote {page}" in capsys.readouterr().err
