"""The parking queue: where an accepted TDR waits while the table cannot be written.

This module owns the parked message's format: ``park()`` packs it, ``unpack()`` reads it back
for whoever drains the queue (the webhook's SQS event source, ``cinnox-sms redrive``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.errors import ParkingUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

RECEIVED_AT = "receivedAt"


@dataclass(frozen=True)
class ParkedTdr:
    """A TDR as it was received: the raw body, and when it reached the webhook."""

    raw_body: str
    received_at: datetime


def pack(parked: ParkedTdr) -> tuple[str, dict[str, MessageAttributeValueTypeDef]]:
    """The message body and attributes that carry a parked TDR."""
    attribute: MessageAttributeValueTypeDef = {"DataType": "String", "StringValue": parked.received_at.isoformat()}
    return parked.raw_body, {RECEIVED_AT: attribute}


def unpack(message: Mapping[str, Any]) -> ParkedTdr:
    """A parked TDR from a queue message, as Lambda's SQS event gives it (``body``, ``messageAttributes``,
    ``stringValue``) or as ReceiveMessage does (``Body``, ``MessageAttributes``, ``StringValue``)."""
    if "body" in message:
        body, attributes, value = message["body"], message.get("messageAttributes"), "stringValue"
    else:
        body, attributes, value = message["Body"], message.get("MessageAttributes"), "StringValue"
    attribute = (attributes or {}).get(RECEIVED_AT) or {}
    return ParkedTdr(raw_body=body, received_at=_received_at(attribute.get(value)))


def _received_at(attribute: object) -> datetime:
    """When a parked TDR reached the webhook (now, if the attribute is missing or unreadable)."""
    if isinstance(attribute, str) and attribute:
        try:
            return datetime.fromisoformat(attribute)
        except ValueError:
            pass
    return datetime.now(UTC)


class ParkingQueue:
    def __init__(self, client: Callable[[], SQSClient], queue_url: str) -> None:
        self._client_factory = client
        self._queue_url = queue_url

    @functools.cached_property
    def _client(self) -> SQSClient:
        return self._client_factory()

    def park(self, raw_body: str, received_at: datetime) -> None:
        """Keep the raw body, as received, with the time it was received."""
        body, attributes = pack(ParkedTdr(raw_body, received_at))
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=body, MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as error:
            raise ParkingUnavailable(type(error).__name__) from error
