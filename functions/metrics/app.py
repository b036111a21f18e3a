"""Counts the TDRs stored, by status, from the table's stream: one metric blob per batch, and the
rollups (counts by hour x country x status) the report reads, each record counted once."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from cinnox_sms.metrics import STORED, stored_tdr
from cinnox_sms.rollup import CountedRecord, NoShardId, RollupWriter, counted_record
from cinnox_sms.settings import RollupSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@cache
def rollup_writer() -> RollupWriter:
    settings = RollupSettings.from_env()
    return RollupWriter(
        boto3.client("dynamodb"), settings.table_name, settings.retention_days, tdr_table_name=settings.tdr_table_name
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The shard is the watermark's key: without it (no tumbling window) nothing can be counted once.
    shard_id = event.get("shardId")
    if not shard_id:
        raise NoShardId
    counted: list[CountedRecord] = []
    for record in DynamoDBStreamEvent({"Records": event.get("Records") or []}).records:
        stream = record.dynamodb
        # The eventName raw: Powertools' enum raises on a name it does not know.
        found = stored_tdr(record.get("eventName"), stream.new_image if stream else None)
        if found is None or stream is None or not stream.sequence_number:
            continue
        tdr, status = found
        counted.append(
            counted_record(
                stream.sequence_number,
                tdr.received_at,
                tdr.recipient_country,
                status,
                stream.approximate_creation_date_time,
                tdr.transaction_id,
            )
        )
    # Rollups first: if they fail, Lambda retries the batch before any metric of it is emitted.
    applied = rollup_writer().apply(shard_id, counted)
    if applied.skipped:
        logger.info("records counted before were skipped", extra={"skipped": applied.skipped, "shard": shard_id})
    if applied.early:
        # Final statuses whose Submitted TDR is not stored (yet): the no-final-status check pairs them later.
        logger.info("final statuses kept until their Submitted TDR", extra={"early": applied.early, "shard": shard_id})
    # What this invocation committed, not what it was given: a replayed record was counted before.
    for status, name in STORED.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=applied.statuses.get(status, 0))
    metrics.flush_metrics()
    # With a tumbling window, an answer without "state" counts as a failed invocation (Lambda Developer
    # Guide, "Using AWS Lambda with Amazon DynamoDB", tumbling windows); the window's state is not used.
    return {"state": {}}
