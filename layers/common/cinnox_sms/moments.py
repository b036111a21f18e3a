"""A TDR's receivedAt as read back: written by the webhook's clock, but an item can be edited by hand.

A time far out of range would overflow what is computed from it (an hour's TTL is the hour plus up to
100 years; a digest's window plus a minute), and a record that raises is retried until it expires, holding
back every record after it. So one out of range reads as no time at all, and the caller falls back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)  # clocks disagree; a day ahead of this one is no clock's error


def received_moment(text: object, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone) from 2000 to a day after now; None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    latest = (now or datetime.now(UTC)) + AHEAD
    return moment if EARLIEST <= moment <= latest else None
