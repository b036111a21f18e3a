"""The dashboard's delivery widget (a CloudWatch custom widget): delivery by recipient country over the
dashboard's time range, read from the rollups only, drawn as HTML by cinnox_sms.delivery_page.

CloudWatch calls it with ``widgetContext`` (the dashboard's ``timeRange``, its ``zoom`` when one is set, the
widget's ``params``), on each refresh and time-range change, and with ``describe`` for its documentation.
It reads one Query per UTC day of the range (paginated), never a Scan, and answers within the custom
widget's time limit: a range is cut to its last MAX_DAYS days, and the page says so.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

from cinnox_sms.delivery import Hours, View, by_country, read_rollups
from cinnox_sms.delivery_page import caption, fragment

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

MAX_DAYS = 93  # a quarter: 93 or 94 Queries at most (more pages only past ~1 MB of rollups a day)
# Time kept to read one more day and draw the page (a day of 200 countries x 24 hours: ~0.15 s of CPU at one
# vCPU, make bench; the page: milliseconds)
TIME_LEFT_MS = 3_000
DEFAULT_RANGE = timedelta(days=1)  # no widgetContext (a test invoke from the console): the last day
DESCRIPTION = """## SMS delivery by country

Per recipient country over the dashboard's time range (its zoom when one is set): SMS sent, delivered,
undelivered, rejected, still pending, the delivery rate (delivered of the final statuses) and the median
and 90th percentile time from Submitted to Delivered, worst first. Read from the stack's hourly rollups
(one DynamoDB Query per UTC day, whole UTC hours), the cohort view of `cinnox-sms report`.

Params (optional): `{"view": "arrival"}` counts the TDRs received in the range instead.
"""


@cache
def dynamodb() -> Any:
    return boto3.client("dynamodb")


def table_name() -> str:
    return os.environ["ROLLUP_TABLE_NAME"]


def period_of(event: dict[str, Any], now: datetime) -> tuple[Hours, bool]:
    """The whole UTC hours of the dashboard's range (its zoom first), and whether it was cut to MAX_DAYS."""
    context = event.get("widgetContext") or {}
    time_range = context.get("timeRange") or {}
    chosen = time_range.get("zoom") or time_range
    try:
        start = datetime.fromtimestamp(int(chosen["start"]) / 1000, UTC)
        end = datetime.fromtimestamp(int(chosen["end"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        start, end = now - DEFAULT_RANGE, now
    end = min(max(end, start), now)
    cut = end - start > timedelta(days=MAX_DAYS)
    if cut:
        start = end - timedelta(days=MAX_DAYS)
    return Hours.covering(start, end), cut


class NewestFirst:
    """The period's days newest first, each read only while time is left to draw the page: a range too big to read
    within the function's Timeout shows its most recent days and says from which day, rather than timing out."""

    def __init__(self, period: Hours, remaining_ms: Callable[[], int]) -> None:
        self._period = period
        self._remaining_ms = remaining_ms
        self.first_read: str | None = None
        self.cut = False

    def days(self) -> Iterator[tuple[str, int, int]]:
        for day in reversed(list(self._period.days())):
            if self._remaining_ms() < TIME_LEFT_MS:
                self.cut = True
                return
            self.first_read = day[0]
            yield day


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> str:
    if event.get("describe"):
        return DESCRIPTION
    params = (event.get("widgetContext") or {}).get("params") or {}
    view: View = "arrival" if params.get("view") == "arrival" else "cohort"
    period, cut = period_of(event, datetime.now(UTC))
    days = NewestFirst(period, context.get_remaining_time_in_millis)
    lines = by_country(read_rollups(dynamodb(), table_name(), days), None, view)
    text = caption(str(period), view) + (f" (the last {MAX_DAYS} days of the range)" if cut else "")
    if days.cut:
        text += f" (from {days.first_read or 'no day'} on: the days before did not fit in the function's time limit)"
        logger.warning("range cut to the days read in time", extra={"from": days.first_read})
    logger.info("delivery widget drawn", extra={"period": str(period), "countries": len(lines) - 1 if lines else 0})
    return fragment(lines, text)
