"""Delivery by country over a period, read from the rollup table: what `cinnox-sms report` prints.

The rollup table (layout in cinnox_sms.rollup) keeps per UTC hour and recipient country two views:

- arrival: the TDRs of each status *received* in that hour (a late final status counts in its own hour);
- cohort: of the SMS *submitted* in that hour (their Submitted TDR received then), how many have each
  final status so far, and a histogram of their time from Submitted to that final status.

`cinnox-sms report` shows the cohort view by default (what became of the SMS sent in the period);
`--view arrival` shows the TDRs received in the period. Either way it makes one Query per UTC day of
its period (the day is the partition key, the hours a range of its sort key), so its reads grow with
days x countries, never with the TDR table.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# The reading and the per-country lines live in the layer, shared with the dashboard's widget (issue 21);
# re-exported here under their old names, which the CLI, its tests and devrig use.
from cinnox_sms.delivery import (
    BEYOND_LAST_BOUND,
    DEFAULT_VIEW,
    HOUR,
    VIEWS,
    Bucketing,
    CountryLine,
    HourCount,
    Hours,
    View,
    bucket_of,
    by_country,
    estimate,
    hour_count,
    human,
    percentile_from_buckets,
    read_rollups,
)
from cinnox_sms.delivery_page import caption, document
from cinnox_sms.neutral import csv_cell
from cinnox_sms.neutral import line as printed  # "line" names a report line here
from cinnox_sms.rollup import TTF_BUCKETS

# Re-exported: the names the layer now defines (this module's own names are public as ever).
__all__ = [
    "BEYOND_LAST_BOUND",
    "DEFAULT_VIEW",
    "HOUR",
    "VIEWS",
    "Bucketing",
    "CountryLine",
    "HourCount",
    "View",
    "bucket_of",
    "by_country",
    "estimate",
    "hour_count",
    "human",
    "percentile_from_buckets",
    "read_rollups",
]
_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# The longest period report and pending read: one Query per UTC day, and the stack's rollups are kept
# as long as its TDRs (TdrRetentionDays, 400 by default); a longer one is refused, to be split.
LONGEST_DAYS = 400
COLUMNS = (
    "country",
    "sent",
    "delivered",
    "undelivered",
    "rejected",
    "pending",
    "delivery_rate",
    "p50_delivered_est",
    "p90_delivered_est",
)
_VIEW_LINES = {
    "cohort": "view cohort: the SMS sent in the period, each under its final status so far",
    "arrival": "view arrival: the TDRs received in the period, each in the hour it was received",
}


def moment(text: str, now: datetime | None = None) -> datetime:
    """'24h', '7d', '90m' (that long before now), or an ISO 8601 time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    found = _DURATION.fullmatch(text.strip())
    if found:
        try:
            return now - duration(text)
        except OverflowError:
            raise ValueError(f"{text!r} reaches before year 1: give a shorter period") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a period like 24h, 7d or 90m, nor an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration(text: str) -> timedelta:
    """'90m', '6h', '7d', or '0': a ValueError for anything else."""
    if text.strip() == "0":
        return timedelta(0)
    found = _DURATION.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 0, 90m, 6h or 7d")
    try:
        return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any period a date can span") from None


@dataclass(frozen=True)
class Period(Hours):
    """The widget's whole UTC hours (start included, end excluded), given on the command line: an until that is
    not after since is refused, and machine output carries the edges."""

    @classmethod
    def covering(cls, since: datetime, until: datetime) -> Period:
        """since floored to its hour, until rounded up to the next one; a ValueError if until is not after since."""
        if until <= since:
            raise ValueError(
                f"--until ({until.isoformat(timespec='seconds')}) must come after --since "
                f"({since.isoformat(timespec='seconds')})"
            )
        hours = Hours.covering(since, until)
        return cls(hours.start, hours.end)

    def edges(self) -> dict[str, str]:
        """since and until as machine output carries them on every row."""
        return {"since": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"), "until": self.end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def rows(lines: list[CountryLine], period: Period, by: Bucketing, view: View = DEFAULT_VIEW) -> list[dict[str, Any]]:
    """Machine output: [bucket,] the columns, then the view and the period (since, until) on every row."""
    return [
        ({"bucket": line.bucket} if by else {})
        | {name: getattr(line, name) for name in COLUMNS[:6]}
        | {"delivery_rate": None if line.delivery_rate is None else round(line.delivery_rate, 4)}
        | {"p50_delivered_est": estimate(line.p50_delivered_est), "p90_delivered_est": estimate(line.p90_delivered_est)}
        | {"view": view}
        | period.edges()
        for line in lines
    ]


def estimates_note() -> str:
    bounds = " ".join(label for bound, label in TTF_BUCKETS if not math.isinf(bound))
    return (
        "p50_est, p90_est: time from Submitted to Delivered of the SMS sent in the period, "
        f"estimated from buckets (bounds {bounds})"
    )


def page(lines: list[CountryLine], period: Period, view: View = DEFAULT_VIEW) -> str:
    """`--html FILE`: the dashboard widget's table (cinnox_sms.delivery_page, the same renderer) as a page that
    stands alone: per country over the whole period, worst first."""
    return document(lines, caption(str(period), view))


def render(
    lines: list[CountryLine], output: str, period: Period, by: Bucketing = None, view: View = DEFAULT_VIEW
) -> str:
    if output == "json":
        return json.dumps(rows(lines, period, by, view), indent=2)
    if output == "csv":
        fields = [*(["bucket"] if by else []), *COLUMNS, "view", "since", "until"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        # For a spreadsheet: the country (a rollup key, text at heart) can never be read as a formula.
        writer.writerows(row | {"country": csv_cell(row["country"])} for row in rows(lines, period, by, view))
        return buffer.getvalue().rstrip("\n")
    width = {None: 0, "day": 11, "hour": 18}[by]
    first = f"{'day' if by == 'day' else 'hour':<{width}}" if by else ""
    text = [
        f"period {period}",
        _VIEW_LINES[view],
        estimates_note(),
        f"{first}{'country':<8} {'sent':>7} {'delivered':>10} {'undelivered':>12} {'rejected':>9} {'pending':>8} "
        f"{'rate':>7} {'p50_est':>8} {'p90_est':>8}",
    ]
    for line in lines:
        rate = "-" if line.delivery_rate is None else f"{line.delivery_rate:.1%}"
        text.append(
            f"{line.bucket or '':<{width}}{printed(line.country):<8} {line.sent:>7} {line.delivered:>10} "
            f"{line.undelivered:>12} {line.rejected:>9} {line.pending:>8} {rate:>7} "
            f"{human(line.p50_delivered_est):>8} {human(line.p90_delivered_est):>8}"
        )
    return "\n".join(text)
