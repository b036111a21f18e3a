"""SMS sent with no final status yet, read from the rollup table: what `cinnox-sms pending` prints.

Two reads, both Queries, never a Scan and never the TDR table: the period's rollup items (one Query
per UTC day, as `cinnox-sms report` makes), whose Submitted less cohort counts say which hours and
countries still wait for a final status; then, for each of those only, its SMS list items (partition
``<day>#sms``, slots of that hour and country). An SMS is pending when some list of its hour and
country has it submitted and none has a final status for it (layout in cinnox_sms.rollup).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cinnox_sms.moments import received_moment
from cinnox_sms.neutral import csv_cell, line
from cinnox_sms.rollup import FINALS_LIST, SUBMITTED_LIST, RollupKey, list_query, unfinished
from cinnox_sms_cli.report import HourCount, Period, read_rollups

if TYPE_CHECKING:
    from cinnox_sms.delivery import Days

COLUMNS = ("transaction_id", "country", "submitted_at")


@dataclass(frozen=True, order=True)
class PendingSms:
    """One SMS with no final status: ordered oldest first (then by transaction ID)."""

    submitted: datetime  # its Submitted TDR's receivedAt (its hour's start if that does not parse)
    transaction_id: str
    country: str
    submitted_at: str  # that receivedAt as the rollups keep it


def cohorts_with_pending(counts: Iterable[HourCount], country: str | None = None) -> list[RollupKey]:
    """The hours and countries (only country's, when given) with SMS sent and no final status counted."""
    return sorted(
        RollupKey(count.hour, count.country)
        for count in counts
        if count.pending > 0 and (country is None or count.country == country)
    )


def pending_in(key: RollupKey, items: Iterable[Mapping[str, Any]]) -> list[PendingSms]:
    """One hour and country's pending SMS from its list items, oldest first (a time that does not read
    sorts as its hour)."""
    return sorted(
        PendingSms(received_moment(at) or key.hour, tid, key.country, at) for tid, at in unfinished(items).items()
    )


def older_than(pending: Iterable[PendingSms], age: timedelta, now: datetime) -> list[PendingSms]:
    """Those submitted at least age before now, oldest first."""
    return sorted(sms for sms in pending if now - sms.submitted >= age)


def read_lists(client: Any, table: str, key: RollupKey) -> Iterator[dict[str, Any]]:
    """One hour and country's SMS list items: one Query (paginated, eventually consistent)."""
    query = list_query(key)
    query["ExpressionAttributeNames"] |= {"#submitted": SUBMITTED_LIST, "#finals": FINALS_LIST}
    for page in client.get_paginator("query").paginate(
        TableName=table, ProjectionExpression="#submitted, #finals", ConsistentRead=False, **query
    ):
        yield from page["Items"]


def read_pending(
    client: Any,
    table: str,
    period: Days,
    *,
    country: str | None = None,
    age: timedelta = timedelta(0),
    now: datetime,
) -> list[PendingSms]:
    """The SMS submitted in the period (to country, when given) at least age before now with no final
    status, oldest first: a Query per UTC day, then one per hour and country with any pending."""
    found: list[PendingSms] = []
    for key in cohorts_with_pending(read_rollups(client, table, period), country):
        found += pending_in(key, read_lists(client, table, key))
    return older_than(found, age, now)


def rows(pending: list[PendingSms], period: Period) -> list[dict[str, Any]]:
    """Machine output: the columns, then the period (since, until) on every row."""
    return [
        {"transaction_id": sms.transaction_id, "country": sms.country, "submitted_at": sms.submitted_at}
        | period.edges()
        for sms in pending
    ]


def render(
    pending: list[PendingSms], output: str, period: Period, *, age: timedelta = timedelta(0), country: str | None = None
) -> str:
    """table, csv or json; an empty list is the header alone (table, csv) or [] (json)."""
    if output == "json":
        return json.dumps(rows(pending, period), indent=2)
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, "since", "until"], lineterminator="\n")
        writer.writeheader()
        # For a spreadsheet: what came from the table (a sender's TransactionID above all) is never a formula.
        writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows(pending, period))
        return buffer.getvalue().rstrip("\n")
    which = "".join(
        [
            f" to {country}" if country else "",
            f", at least {_age(age)} ago," if age else "",
        ]
    )
    shown = [(line(sms.transaction_id), line(sms.country), line(sms.submitted_at)) for sms in pending]
    width = max([len(COLUMNS[0]), *(len(transaction_id) for transaction_id, _, _ in shown)])
    text = [
        f"period {period}",
        f"{len(pending)} SMS sent in the period{which} with no final status, oldest first",
        f"{'transaction_id':<{width}} {'country':<8} submitted_at",
    ]
    text += [f"{transaction_id:<{width}} {country:<8} {at}" for transaction_id, country, at in shown]
    return "\n".join(text)


def _age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
