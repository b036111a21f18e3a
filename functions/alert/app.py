"""Publishes an SNS alert for each new Undelivered or Rejected TDR on the table's stream."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from cinnox_sms.alerts import AlertNotPublished, AlertPublisher, dispatch
from cinnox_sms.metrics import ALERTS_FAILED, ALERTS_PUBLISHED
from cinnox_sms.settings import AlertSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@cache
def alert_publisher() -> AlertPublisher:
    return AlertPublisher(boto3.client("sns"), AlertSettings.from_env().topic_arn)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Alerts go out ten to a PublishBatch call, so publishing happens for the whole
    # batch first; the processor then reports each record that did not make it.
    records = [DynamoDBRecord(raw) for raw in event.get("Records", [])]
    failed = dispatch(
        [(r.dynamodb.sequence_number or "", r.dynamodb.new_image) for r in records if r.dynamodb], alert_publisher()
    )
    if failed:
        logger.warning("alerts not published", count=len(failed), first=next(iter(failed.values())))
    metrics.add_metric(name=ALERTS_PUBLISHED, unit=MetricUnit.Count, value=len(records) - len(failed))
    metrics.add_metric(name=ALERTS_FAILED, unit=MetricUnit.Count, value=len(failed))
    metrics.flush_metrics()

    def record_handler(record: DynamoDBRecord) -> None:
        why = failed.get(record.dynamodb.sequence_number or "") if record.dynamodb else None
        if why is not None:
            raise AlertNotPublished(why)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
