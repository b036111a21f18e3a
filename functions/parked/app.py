"""Lands the TDRs the webhook parked while the table could not be written: the parking queue's SQS event source.

A function of its own, so that the webhook's cold start carries no batch processor and its role no
queue reads; it writes through the webhook's store code and conditional put (cinnox_sms.wiring).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from cinnox_sms.metrics import LANDED
from cinnox_sms.parking import unpack
from cinnox_sms.wiring import parking_drain

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
# A batch that fails whole is reported message by message: they wait in the queue, no retry storm.
parked = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def land(record: SQSRecord) -> None:
    """Write one parked TDR; an error leaves it in the queue for a later try."""
    stored = parking_drain().land(unpack(record.raw_event))
    logger.info("parked TDR landed", message_id=record.message_id, duplicate=not stored)
    metrics.add_metric(name=LANDED, unit=MetricUnit.Count, value=1)


# A parked message's body is the TDR as received: never log the event.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    try:
        return process_partial_response(event=event, record_handler=land, processor=parked, context=context)
    finally:
        # Only landed TDRs count: a batch whose every message failed emits no EMF line.
        if metrics.metric_set:
            metrics.flush_metrics()
