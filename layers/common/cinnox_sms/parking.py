"""The parking queue: where an accepted TDR waits while the table cannot be written."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.errors import ParkingUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

RECEIVED_AT = "receivedAt"


class ParkingQueue:
    def __init__(self, client: Callable[[], SQSClient], queue_url: str) -> None:
        self._client_factory = client
        self._queue_url = queue_url

    @functools.cached_property
    def _client(self) -> SQSClient:
        return self._client_factory()

    def park(self, raw_body: str, received_at: datetime) -> None:
        """Keep the raw body, as received, with the time it was received."""
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=raw_body,
                MessageAttributes={RECEIVED_AT: {"DataType": "String", "StringValue": received_at.isoformat()}},
            )
        except (ClientError, BotoCoreError) as error:
            raise ParkingUnavailable(type(error).__name__) from error


def received_at(attribute: str | None) -> datetime:
    """When a parked TDR reached the webhook (now, if the attribute is missing or unreadable)."""
    try:
        return datetime.fromisoformat(attribute) if attribute else datetime.now(UTC)
    except ValueError:
        return datetime.now(UTC)
