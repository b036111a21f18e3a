"""Delivery by country over a period, read from the rollup table: what `cinnox-sms report` prints.

The rollup table (layout in cinnox_sms.rollup) counts TDRs by status per UTC hour and recipient
country, by the hour each TDR was received. A report makes one Query per UTC day of its period
(the day is the partition key, the hours a range of its sort key), so its reads grow with days x
countries, never with the TDR table.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cinnox_sms.rollup import COUNT_ATTRIBUTES, DAY, SLOT, RollupKey, slot_range
from cinnox_sms.status import Status

_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
HOUR = timedelta(hours=1)
Bucketing = Literal["day", "hour"] | None
COLUMNS = ("country", "sent", "delivered", "undelivered", "rejected", "pending", "delivery_rate")


def moment(text: str, now: datetime | None = None) -> datetime:
    """'24h', '7d', '90m' (that long before now), or an ISO 8601 time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    found = _DURATION.fullmatch(text.strip())
    if found:
        return now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a period like 24h, 7d or 90m, nor an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_hour(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True)
class Period:
    """Whole UTC hours: start included, end excluded (the rollups' unit is the hour)."""

    start: datetime
    end: datetime

    @classmethod
    def covering(cls, since: datetime, until: datetime) -> Period:
        """since floored to its hour, until rounded up to the next one; a ValueError if until is not after since."""
        if until <= since:
            raise ValueError(f"--until ({until.isoformat()}) must come after --since ({since.isoformat()})")
        start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        end = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(start, end if end == until else end + HOUR)

    def days(self) -> Iterator[tuple[str, int, int]]:
        """Each UTC day the period touches, with its first and last hour in the period."""
        day = self.start.replace(hour=0)
        while day < self.end:
            first = max(self.start, day)
            last = min(self.end, day + timedelta(days=1)) - HOUR
            yield day.strftime("%Y-%m-%d"), first.hour, last.hour
            day += timedelta(days=1)

    def __str__(self) -> str:
        hours = int((self.end - self.start) / HOUR)
        return f"{_iso_hour(self.start)} to {_iso_hour(self.end)} ({hours} h, UTC, end excluded)"


@dataclass(frozen=True)
class HourCount:
    """One rollup item: the TDRs of each status received in one hour for one country."""

    hour: datetime
    country: str
    counts: dict[Status, int]


def read_rollups(client: Any, table: str, period: Period) -> Iterator[HourCount]:
    """The rollup items of the period: one Query per UTC day (paginated, eventually consistent)."""
    names = {"#day": DAY, "#slot": SLOT} | {f"#{status.name}": name for status, name in COUNT_ATTRIBUTES.items()}
    projected = ", ".join(["#slot", *(f"#{status.name}" for status in COUNT_ATTRIBUTES)])
    paginator = client.get_paginator("query")
    for day, first_hour, last_hour in period.days():
        low, high = slot_range(first_hour, last_hour)
        for page in paginator.paginate(
            TableName=table,
            KeyConditionExpression="#day = :day AND #slot BETWEEN :low AND :high",
            ProjectionExpression=projected,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":day": {"S": day}, ":low": {"S": low}, ":high": {"S": high}},
            ConsistentRead=False,  # half the read units; a report may lag the stream by seconds anyway
        ):
            for item in page["Items"]:
                key = RollupKey.from_item(day, item[SLOT]["S"])
                counts = {status: int(item[name]["N"]) for status, name in COUNT_ATTRIBUTES.items() if name in item}
                yield HourCount(key.hour, key.country, counts)


@dataclass
class CountryLine:
    country: str
    sent: int = 0  # Submitted TDRs received in the period
    delivered: int = 0
    undelivered: int = 0
    rejected: int = 0
    bucket: str | None = None  # with --by: the day or hour the line counts
    pending: int = field(init=False, default=0)

    def add(self, counts: dict[Status, int]) -> None:
        self.sent += counts.get(Status.SUBMITTED, 0)
        self.delivered += counts.get(Status.DELIVERED, 0)
        self.undelivered += counts.get(Status.UNDELIVERED, 0)
        self.rejected += counts.get(Status.REJECTED, 0)
        # Sent but no terminal TDR counted in the period (yet, or it came in another period)
        self.pending = max(0, self.sent - self.delivered - self.undelivered - self.rejected)

    @property
    def delivery_rate(self) -> float | None:
        final = self.delivered + self.undelivered + self.rejected
        return self.delivered / final if final else None


def bucket_of(hour: datetime, by: Bucketing) -> str | None:
    if by == "day":
        return hour.strftime("%Y-%m-%d")
    return _iso_hour(hour) if by == "hour" else None


def by_country(counts: Iterable[HourCount], by: Bucketing = None) -> list[CountryLine]:
    """One line per country (per bucket with --by), most sent first, each group closed by its 'all' line."""
    buckets: dict[str | None, dict[str, CountryLine]] = {}
    for count in counts:
        bucket = bucket_of(count.hour, by)
        countries = buckets.setdefault(bucket, {})
        countries.setdefault(count.country, CountryLine(count.country, bucket=bucket)).add(count.counts)
    ordered: list[CountryLine] = []
    for bucket in sorted(buckets, key=lambda b: b or ""):
        group = sorted(buckets[bucket].values(), key=lambda line: (-line.sent, line.country))
        total = CountryLine("all", bucket=bucket)
        for line in group:
            total.sent += line.sent
            total.delivered += line.delivered
            total.undelivered += line.undelivered
            total.rejected += line.rejected
            total.pending += line.pending  # the column adds up
        ordered.extend([*group, total])
    return ordered


def rows(lines: list[CountryLine], period: Period, by: Bucketing) -> list[dict[str, Any]]:
    """Machine output: [bucket,] the columns, then the period (since, until) on every row."""
    since, until = (edge.strftime("%Y-%m-%dT%H:%M:%SZ") for edge in (period.start, period.end))
    return [
        ({"bucket": line.bucket} if by else {})
        | {name: getattr(line, name) for name in COLUMNS[:-1]}
        | {"delivery_rate": None if line.delivery_rate is None else round(line.delivery_rate, 4)}
        | {"since": since, "until": until}
        for line in lines
    ]


def render(lines: list[CountryLine], output: str, period: Period, by: Bucketing = None) -> str:
    if output == "json":
        return json.dumps(rows(lines, period, by), indent=2)
    if output == "csv":
        fields = [*(["bucket"] if by else []), *COLUMNS, "since", "until"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows(lines, period, by))
        return buffer.getvalue().rstrip("\n")
    width = {None: 0, "day": 11, "hour": 18}[by]
    first = f"{'day' if by == 'day' else 'hour':<{width}}" if by else ""
    text = [
        f"period {period}",
        f"{first}{'country':<8} {'sent':>7} {'delivered':>10} {'undelivered':>12} {'rejected':>9} {'pending':>8} "
        f"{'rate':>7}",
    ]
    for line in lines:
        rate = "-" if line.delivery_rate is None else f"{line.delivery_rate:.1%}"
        text.append(
            f"{line.bucket or '':<{width}}{line.country:<8} {line.sent:>7} {line.delivered:>10} "
            f"{line.undelivered:>12} {line.rejected:>9} {line.pending:>8} {rate:>7}"
        )
    return "\n".join(text)
