"""Publishes an SNS alert for each new Undelivered or Rejected TDR on the table's stream."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from cinnox_sms.alerts import AlertNotPublished, AlertPublisher, StreamRecord, dispatch_records
from cinnox_sms.metrics import ALERT_RECORDS_SKIPPED, ALERTS_FAILED, ALERTS_PUBLISHED
from cinnox_sms.settings import AlertSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
_SKIPPED_KEYS_LOGGED = 10


@cache
def alert_publisher() -> AlertPublisher:
    return AlertPublisher(boto3.client("sns"), AlertSettings.from_env().topic_arn)


def stream_record(record: DynamoDBRecord) -> StreamRecord:
    """The record as the alerts see it; a NewImage that cannot be deserialized is marked, not raised."""
    stream = record.dynamodb
    key = (stream.sequence_number if stream else None) or ""
    event_name = record.get("eventName")  # raw: Powertools' enum raises on an unknown name
    if stream is None or stream.get("NewImage") is None:
        return StreamRecord(key, event_name, None)
    try:
        return StreamRecord(key, event_name, stream.new_image)
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError):
        return StreamRecord(key, event_name, None, readable=False)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Alerts go out ten to a PublishBatch call, so publishing happens for the whole
    # batch first; the processor then reports each record that did not make it.
    records = [DynamoDBRecord(raw) for raw in event.get("Records", [])]
    outcome = dispatch_records([stream_record(r) for r in records], alert_publisher())
    if outcome.skipped:
        # Records that can never be alerts: retrying them would only hold back those behind.
        logger.warning(
            "stream records skipped: they cannot be alerts",
            count=len(outcome.skipped),
            reasons=outcome.skip_reasons(),
            records=[key for key, _ in outcome.skipped[:_SKIPPED_KEYS_LOGGED]],
        )
    if outcome.failed:
        logger.warning("alerts not published", count=len(outcome.failed), first=next(iter(outcome.failed.values())))
    metrics.add_metric(name=ALERTS_PUBLISHED, unit=MetricUnit.Count, value=outcome.published)
    metrics.add_metric(name=ALERTS_FAILED, unit=MetricUnit.Count, value=len(outcome.failed))
    metrics.add_metric(name=ALERT_RECORDS_SKIPPED, unit=MetricUnit.Count, value=len(outcome.skipped))
    metrics.flush_metrics()

    def record_handler(record: DynamoDBRecord) -> None:
        why = outcome.failed.get(record.dynamodb.sequence_number or "") if record.dynamodb else None
        if why is not None:
            raise AlertNotPublished(why)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
