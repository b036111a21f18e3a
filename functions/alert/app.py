"""Publishes an SNS alert for each new Undelivered or Rejected TDR on the table's stream."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# Powertools' own DynamoDB deserializer, the one its stream data classes use, without them:
# importing any data class loads all of them (~40 modules, compiled from source on a cold start).
from aws_lambda_powertools.shared.dynamodb_deserializer import TypeDeserializer

from cinnox_sms.alert_ledger import AlertLedger
from cinnox_sms.alerts import AlertNotPublished, AlertPublisher, Dispatched, StreamRecord, dispatch_records
from cinnox_sms.metrics import ALERT_RECORDS_SKIPPED, ALERTS_FAILED, ALERTS_PUBLISHED
from cinnox_sms.settings import AlertSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
_SKIPPED_KEYS_LOGGED = 10
_deserializer = TypeDeserializer()


@cache
def settings() -> AlertSettings:
    return AlertSettings.from_env()


@cache
def alert_publisher() -> AlertPublisher:
    return AlertPublisher(boto3.client("sns"), settings().topic_arn)


@cache
def alert_ledger() -> AlertLedger:
    return AlertLedger(boto3.client("dynamodb"), settings().tdr_table_name)


@cache
def batch_processor() -> BatchProcessor:
    # Only a batch with a record to retry needs the processor: its package (asyncio, every
    # event data class) is loaded then, not on the cold start of a batch that all went out.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.DynamoDBStreams)


def stream_record(record: dict[str, Any]) -> StreamRecord:
    """The record as the alerts see it; a NewImage that cannot be deserialized is marked, not raised."""
    stream = record.get("dynamodb")
    key = (stream.get("SequenceNumber") if stream is not None else None) or ""
    event_name = record.get("eventName")
    image = stream.get("NewImage") if stream is not None else None
    if image is None:
        return StreamRecord(key, event_name, None)
    try:
        # As Powertools' DynamoDBRecord deserializes a NewImage (numbers as Decimal, binaries as bytes).
        return StreamRecord(key, event_name, {name: _deserializer.deserialize(value) for name, value in image.items()})
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError):
        return StreamRecord(key, event_name, None, readable=False)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Alerts go out ten to a PublishBatch call, so publishing happens for the whole
    # batch first; the processor then reports each record that did not make it.
    outcome = dispatch_records(
        [stream_record(raw) for raw in event.get("Records", [])],
        alert_publisher(),
        alert_ledger(),
        grace=timedelta(minutes=settings().grace_minutes),
    )
    if outcome.skipped:
        # Records that can never be alerts: retrying them would only hold back those behind.
        logger.warning(
            "stream records skipped: they cannot be alerts",
            count=len(outcome.skipped),
            reasons=outcome.skip_reasons(),
            records=[key for key, _ in outcome.skipped[:_SKIPPED_KEYS_LOGGED]],
        )
    if outcome.already or outcome.deferred:
        # Already published (a retry's records), or old enough to be the overdue sweep's.
        logger.info("alerts not sent from the stream", already_alerted=outcome.already, left_to_sweep=outcome.deferred)
    if outcome.unrecorded:
        # Published, but the record of it was not written: these may go out again (docs/alerts.md).
        logger.error("alerts published but not recorded", count=len(outcome.unrecorded), first=outcome.unrecorded[0])
    if outcome.failed:
        logger.warning("alerts not published", count=len(outcome.failed), first=next(iter(outcome.failed.values())))
    metrics.add_metric(name=ALERTS_PUBLISHED, unit=MetricUnit.Count, value=outcome.published)
    metrics.add_metric(name=ALERTS_FAILED, unit=MetricUnit.Count, value=len(outcome.failed))
    metrics.add_metric(name=ALERT_RECORDS_SKIPPED, unit=MetricUnit.Count, value=len(outcome.skipped))
    metrics.flush_metrics()
    if not outcome.failed:
        # What process_partial_response answers when every record succeeds.
        return {"batchItemFailures": []}
    return _partial_response(event, context, outcome)


def _partial_response(event: dict[str, Any], context: LambdaContext, outcome: Dispatched) -> PartialItemFailureResponse:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    def record_handler(record: DynamoDBRecord) -> None:
        why = outcome.failed.get(record.dynamodb.sequence_number or "") if record.dynamodb else None
        if why is not None:
            raise AlertNotPublished(why)

    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch_processor(), context=context
    )
