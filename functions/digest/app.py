"""Publishes one digest of the alerts the digest queue gathered over a batching window (people's e-mail)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

from cinnox_sms.digest import DigestPublisher, digests
from cinnox_sms.settings import DigestSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


@cache
def digest_publisher() -> DigestPublisher:
    return DigestPublisher(boto3.client("sns"), DigestSettings.from_env().topic_arn)


# The messages are alert records (recipients' numbers): never log the event.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    # No partial batch answer: the batch is one digest. A failed publish raises, so the whole batch
    # returns to the queue and is retried; after maxReceiveCount it waits in the dead-letter queue.
    records = event.get("Records", [])
    batch = digests(records, DigestSettings.from_env().stack_name)
    publisher = digest_publisher()
    for digest in batch:
        message_id = publisher.publish(digest)
        logger.info(
            "digest published",
            message_id=message_id,
            failed=digest.failed,
            unreadable=digest.unreadable,
            part=digest.part,
            parts=digest.parts,
            records=len(records),
        )
