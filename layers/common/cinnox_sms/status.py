"""The statuses a TDR reports: apart from the wire model, so that what only needs the names loads no pydantic model."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SUBMITTED = "Submitted"
    DELIVERED = "Delivered"
    UNDELIVERED = "Undelivered"
    REJECTED = "Rejected"

    @property
    def is_failure(self) -> bool:
        return self in FAILURE_STATUSES


FAILURE_STATUSES = frozenset({Status.UNDELIVERED, Status.REJECTED})
