"""Counts the TDRs stored, by status, from the table's stream: one metric blob per batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from cinnox_sms.metrics import STORED, count_stored

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    records = DynamoDBStreamEvent(event).records
    # The eventName raw: Powertools' enum raises on a name it does not know.
    counts = count_stored(
        (record.get("eventName"), record.dynamodb.new_image if record.dynamodb else None) for record in records
    )
    for status, name in STORED.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[status])
    metrics.flush_metrics()
