"""Delivery by country over a period: what `cinnox-sms report` prints."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cinnox_sms.item import StoredTdr, projection
from cinnox_sms.model import Status
from cinnox_sms.query import current_status

_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since(text: str, now: datetime | None = None) -> datetime:
    """'24h', '7d', '90m', or an ISO 8601 time; a ValueError says what is accepted."""
    now = now or datetime.now(UTC)
    found = _DURATION.fullmatch(text.strip())
    if found:
        return now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a period like 24h, 7d or 90m, nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class CountryLine:
    country: str
    sent: int = 0
    delivered: int = 0
    undelivered: int = 0
    rejected: int = 0
    pending: int = 0  # only Submitted so far

    @property
    def delivery_rate(self) -> float | None:
        final = self.delivered + self.undelivered + self.rejected
        return self.delivered / final if final else None


def scan_since(client: Any, table: str, start: datetime) -> Iterable[dict[str, Any]]:
    """Items received since start (a Scan: its cost grows with the table)."""
    paginator = client.get_paginator("scan")
    projected, names = projection("transaction_id", "status", "recipient_country", "received_at")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="#received_at >= :since",  # receivedAt sorts as text
        ProjectionExpression=projected,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":since": {"S": start.astimezone(UTC).isoformat(timespec="milliseconds")}},
    ):
        yield from page["Items"]


def by_country(items: Iterable[dict[str, Any]]) -> list[CountryLine]:
    """One line per country, each SMS counted once under its current status."""
    messages: dict[str, dict[str, Any]] = {}
    for stored in map(StoredTdr.from_item, items):
        entry = messages.setdefault(stored.transaction_id, {"reports": [], "country": None})
        entry["reports"].append((Status(stored.status), stored.received_at or ""))
        entry["country"] = entry["country"] or stored.recipient_country
    lines: dict[str, CountryLine] = {}
    for entry in messages.values():
        line = lines.setdefault(entry["country"] or "??", CountryLine(entry["country"] or "??"))
        line.sent += 1
        status = current_status(entry["reports"])
        setattr(
            line,
            "pending" if status is Status.SUBMITTED else status.value.lower(),
            getattr(line, "pending" if status is Status.SUBMITTED else status.value.lower()) + 1,
        )
    ordered = sorted(lines.values(), key=lambda line: (-line.sent, line.country))
    if ordered:
        total = CountryLine("all")
        for line in ordered:
            for field in ("sent", "delivered", "undelivered", "rejected", "pending"):
                setattr(total, field, getattr(total, field) + getattr(line, field))
        ordered.append(total)
    return ordered


def render(lines: list[CountryLine], output: str) -> str:
    rows = [
        {**asdict(line), "delivery_rate": None if line.delivery_rate is None else round(line.delivery_rate, 4)}
        for line in lines
    ]
    if output == "json":
        return json.dumps(rows, indent=2)
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["country"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    header = (
        f"{'country':<8} {'sent':>7} {'delivered':>10} {'undelivered':>12} {'rejected':>9} {'pending':>8} {'rate':>7}"
    )
    text = [header]
    for line in lines:
        rate = "-" if line.delivery_rate is None else f"{line.delivery_rate:.1%}"
        text.append(
            f"{line.country:<8} {line.sent:>7} {line.delivered:>10} {line.undelivered:>12} "
            f"{line.rejected:>9} {line.pending:>8} {rate:>7}"
        )
    return "\n".join(text)
