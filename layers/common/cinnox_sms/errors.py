"""Typed errors of the domain; the handlers map each to one answer."""

from __future__ import annotations


class WebhookError(Exception):
    """A request the webhook refuses; ``status`` is the HTTP answer, 4xx only."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(WebhookError):
    status = 400


class Forbidden(WebhookError):
    status = 403


class NotFound(WebhookError):
    status = 404


class PayloadTooLarge(WebhookError):
    status = 413


class StorageUnavailable(Exception):
    """The TDR could not be written after the SDK's retries; the sender should retry."""

    def __init__(self, transaction_id: str, parking: str | None = None) -> None:
        super().__init__(f"could not store TDR {transaction_id}")
        self.transaction_id = transaction_id
        self.parking = parking  # why parking failed too, when it was tried


class ParkingUnavailable(Exception):
    """The TDR could not be parked in the queue either."""


class CinnoxError(Exception):
    """CINNOX refused or failed a subscription call (after any retries)."""

    def __init__(self, message: str, *, code: int | str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status

    def __str__(self) -> str:
        parts = []
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
