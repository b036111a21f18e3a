"""Delivery by country, read from the rollups: the reading and the per-country lines that `cinnox-sms report`
(cli/cinnox_sms_cli/report.py) prints and the dashboard's delivery widget (functions/widget) draws.

It lives in the layer so that both share one reading and one aggregation: the CLI cannot be imported by a
Lambda. Reading is one Query per UTC day of the period (the day is the rollup table's partition key, the
hours a range of its sort key), paginated, eventually consistent: reads grow with days x countries,
never with the TDR table, and never Scan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from cinnox_sms.rollup import (
    COHORT_ATTRIBUTES,
    COUNT_ATTRIBUTES,
    DAY,
    SLOT,
    TTF_ATTRIBUTES,
    TTF_BUCKETS,
    RollupKey,
    slot_range,
)
from cinnox_sms.status import Status

HOUR = timedelta(hours=1)
Bucketing = Literal["day", "hour"] | None
View = Literal["cohort", "arrival"]
VIEWS: tuple[View, ...] = ("cohort", "arrival")
# The Python functions default to the arrival view (what they did before the cohort view existed);
# `cinnox-sms report` and the widget show the cohort view.
DEFAULT_VIEW: View = "arrival"
# The open last bucket: a percentile that falls in it is only known to be above the last bound.
BEYOND_LAST_BOUND = f">{TTF_BUCKETS[-2][1]}"


def iso_hour(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:%MZ")


class Days(Protocol):
    """A period as read: each UTC day it touches, with its first and last hour in it (report.Period, Hours)."""

    def days(self) -> Iterator[tuple[str, int, int]]: ...


@dataclass(frozen=True)
class Hours:
    """Whole UTC hours, start included, end excluded: the widget's period (the CLI has report.Period)."""

    start: datetime
    end: datetime

    @classmethod
    def covering(cls, since: datetime, until: datetime) -> Hours:
        """since floored to its hour, until rounded up to the next one (at least one hour)."""
        start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        end = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        end = end if end == until.astimezone(UTC) else end + HOUR
        return cls(start, max(end, start + HOUR))

    def days(self) -> Iterator[tuple[str, int, int]]:
        day = self.start.replace(hour=0)
        while day < self.end:
            first = max(self.start, day)
            last = min(self.end, day + timedelta(days=1)) - HOUR
            yield day.strftime("%Y-%m-%d"), first.hour, last.hour
            day += timedelta(days=1)

    def __str__(self) -> str:
        hours = int((self.end - self.start) / HOUR)
        return f"{iso_hour(self.start)} to {iso_hour(self.end)} ({hours} h, UTC, end excluded)"


@dataclass(frozen=True)
class HourCount:
    """One rollup item: one hour and one country, in both views."""

    hour: datetime
    country: str
    counts: dict[Status, int]  # arrival view: the TDRs of each status received in the hour
    cohort: dict[Status, int] = field(default_factory=dict)  # final status -> SMS submitted in the hour
    ttf: dict[Status, dict[str, int]] = field(default_factory=dict)  # final status -> bucket label -> SMS

    @property
    def pending(self) -> int:
        """The hour's SMS sent with no final status counted yet (never below 0)."""
        return max(0, self.counts.get(Status.SUBMITTED, 0) - sum(self.cohort.values()))


# What the lines use: both views' counts and the time to Delivered (the only percentile shown). The times to
# Undelivered and Rejected (20 more attributes) stay in the table for other reads: not reading them here cuts a
# 30-day read's parsing (botocore walks every attribute of every item) by half.
_COUNTS = tuple(COUNT_ATTRIBUTES.items())
_COHORT = tuple(COHORT_ATTRIBUTES.items())
_TIMES = tuple(
    (attribute, label) for attribute, (_, label) in zip(TTF_ATTRIBUTES[Status.DELIVERED], TTF_BUCKETS, strict=True)
)
_READ = [name for _, name in _COUNTS] + [name for _, name in _COHORT] + [attribute for attribute, _ in _TIMES]


def hour_count(day: str, item: Mapping[str, Any]) -> HourCount:
    """A rollup item as read (the day is its partition): a loop per item of a month's read, kept lean."""
    key = RollupKey.from_item(day, item[SLOT]["S"])
    counts = {status: int(value["N"]) for status, name in _COUNTS if (value := item.get(name)) is not None}
    cohort = {status: int(value["N"]) for status, name in _COHORT if (value := item.get(name)) is not None}
    times = {label: n for attribute, label in _TIMES if (value := item.get(attribute)) and (n := int(value["N"]))}
    return HourCount(key.hour, key.country, counts, cohort, {Status.DELIVERED: times} if times else {})


ITEMS_AS_SENT = "before-parse.dynamodb.Query"


def _items_as_sent(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """A Query answer's Items as DynamoDB sent them, unparsed: botocore walks every attribute of every item against
    the service model, 70 % of a 30-day read's CPU. For the types a rollup item holds (S and N: a number stays a
    string, as botocore gives it) DynamoDB's JSON already is what the client returns, so the Items go around the
    parser (botocore's before-parse event, which lets a handler supply parts of the answer) and it parses the
    rest (Count, LastEvaluatedKey); an error answer is left to it."""
    if response_dict.get("status_code") != 200:
        return
    body = json.loads(response_dict["body"])
    if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
        return
    customized_response_dict["Items"] = body.pop("Items")
    response_dict["body"] = json.dumps(body).encode()


def read_rollups(client: Any, table: str, period: Days) -> Iterator[HourCount]:
    """The rollup items of the period: one Query per UTC day (paginated, eventually consistent)."""
    names = {"#day": DAY, "#slot": SLOT} | {f"#a{i}": name for i, name in enumerate(_READ)}
    projected = ", ".join(["#slot", *(f"#a{i}" for i in range(len(_READ)))])
    paginator = client.get_paginator("query")
    events = getattr(getattr(client, "meta", None), "events", None)  # a botocore client's (a stand-in may have none)
    if events is not None:  # these Queries only: the handler goes when the read ends
        events.register(ITEMS_AS_SENT, _items_as_sent, unique_id=ITEMS_AS_SENT)
    try:
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
                    yield hour_count(day, item)
    finally:
        if events is not None:
            events.unregister(ITEMS_AS_SENT, unique_id=ITEMS_AS_SENT)


def percentile_from_buckets(counts_by_label: Mapping[str, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of times to a final status, in seconds, estimated from one histogram
    (bucket label -> SMS, labels of TTF_BUCKETS): linear inside the bucket it falls in, from the bucket
    before's bound (0 for the first) to its own. math.inf when it falls in the open last bucket (all
    that is known is: above the last bound); None when the histogram counts no SMS."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is above 0 and at most 1, not {q}")
    total = sum(max(0, counts_by_label.get(label, 0)) for _, label in TTF_BUCKETS)
    if not total:
        return None
    rank = q * total
    below, lower = 0, 0.0
    for bound, label in TTF_BUCKETS:
        n = max(0, counts_by_label.get(label, 0))
        if n and below + n >= rank:
            return math.inf if math.isinf(bound) else lower + (bound - lower) * (rank - below) / n
        below, lower = below + n, bound
    raise AssertionError("unreachable: the ranks add up to the total")  # pragma: no cover


def estimate(seconds: float | None) -> float | str | None:
    """A percentile as machine output gives it: seconds to 0.1 s, BEYOND_LAST_BOUND, or None."""
    if seconds is None:
        return None
    return BEYOND_LAST_BOUND if math.isinf(seconds) else round(seconds, 1)


def human(seconds: float | None) -> str:
    """A percentile for people: '4.5s', '42s', '3.5m', '1.2h', '>12h', or '-' when there is none."""
    if seconds is None:
        return "-"
    if math.isinf(seconds):
        return BEYOND_LAST_BOUND

    def short(value: float, unit: str) -> str:
        return f"{value:.1f}".removesuffix(".0") + unit

    if seconds < 10:
        return short(seconds, "s")
    if seconds < 60:
        return f"{seconds:.0f}s"
    return short(seconds / 60, "m") if seconds < 3600 else short(seconds / 3600, "h")


@dataclass
class CountryLine:
    country: str
    sent: int = 0  # Submitted TDRs received in the period (the SMS sent in it)
    delivered: int = 0  # cohort view: SMS sent in the period now Delivered; arrival: Delivered TDRs received
    undelivered: int = 0
    rejected: int = 0
    bucket: str | None = None  # with --by: the day or hour the line counts
    pending: int = field(init=False, default=0)
    # Time from Submitted to Delivered of the SMS sent in the period (bucket label -> SMS), in either view
    delivered_times: dict[str, int] = field(default_factory=dict)

    def add(self, count: HourCount, view: View = DEFAULT_VIEW) -> None:
        finals = count.cohort if view == "cohort" else count.counts
        self.sent += count.counts.get(Status.SUBMITTED, 0)
        self.delivered += finals.get(Status.DELIVERED, 0)
        self.undelivered += finals.get(Status.UNDELIVERED, 0)
        self.rejected += finals.get(Status.REJECTED, 0)
        for label, n in count.ttf.get(Status.DELIVERED, {}).items():
            self.delivered_times[label] = self.delivered_times.get(label, 0) + n
        # Sent with no final status counted: arrival view, in the period (yet, or it came in another
        # period); cohort view, yet
        self.pending = max(0, self.sent - self.final)

    @property
    def final(self) -> int:
        return self.delivered + self.undelivered + self.rejected

    @property
    def delivery_rate(self) -> float | None:
        return self.delivered / self.final if self.final else None

    @property
    def p50_delivered_est(self) -> float | None:
        return percentile_from_buckets(self.delivered_times, 0.5)

    @property
    def p90_delivered_est(self) -> float | None:
        return percentile_from_buckets(self.delivered_times, 0.9)


def bucket_of(hour: datetime, by: Bucketing) -> str | None:
    if by == "day":
        return hour.strftime("%Y-%m-%d")
    return iso_hour(hour) if by == "hour" else None


def by_country(counts: Iterable[HourCount], by: Bucketing = None, view: View = DEFAULT_VIEW) -> list[CountryLine]:
    """One line per country (per bucket with --by), most sent first, each group closed by its 'all' line.

    In the cohort view a country with nothing sent in the period (only final statuses of SMS sent
    before it) has no line: those count in the cohort of the hour their SMS was sent."""
    buckets: dict[str | None, dict[str, CountryLine]] = {}
    for count in counts:
        bucket = bucket_of(count.hour, by)
        countries = buckets.setdefault(bucket, {})
        countries.setdefault(count.country, CountryLine(count.country, bucket=bucket)).add(count, view)
    ordered: list[CountryLine] = []
    for bucket in sorted(buckets, key=lambda b: b or ""):
        group = sorted(buckets[bucket].values(), key=lambda line: (-line.sent, line.country))
        if view == "cohort":
            group = [line for line in group if line.sent or line.final]
        if not group:
            continue
        total = CountryLine("all", bucket=bucket)
        for line in group:
            total.sent += line.sent
            total.delivered += line.delivered
            total.undelivered += line.undelivered
            total.rejected += line.rejected
            total.pending += line.pending  # the column adds up
            for label, n in line.delivered_times.items():
                total.delivered_times[label] = total.delivered_times.get(label, 0) + n
        ordered.extend([*group, total])
    return ordered
