"""The overdue sweep, every 10 minutes: the failed SMS not alerted within AlertGraceMinutes, published from
the table (cinnox_sms.overdue), whatever became of the stream; what stays overdue is a metric with an alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cinnox_sms.metrics import ALERTS_OVERDUE, ALERTS_PUBLISHED
from cinnox_sms.overdue import OverdueAlerts
from cinnox_sms.settings import OverdueAlertSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@cache
def sweep() -> OverdueAlerts:
    settings = OverdueAlertSettings.from_env()
    offset = timedelta(seconds=settings.clock_offset_seconds)  # 0 deployed: a local-only setting
    return OverdueAlerts.from_settings(
        settings, boto3.client("dynamodb"), boto3.client("sns"), now=lambda: datetime.now(UTC) + offset
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    swept = sweep().run()
    # Only what is not zero: a custom metric is billed for each hour it gets data, and in the common case a
    # sweep finds nothing. The alarm treats no data as not breaching: it clears on the first sweep that leaves
    # none overdue (a sweep that does not run shows in the function's own Errors).
    if swept.overdue:
        metrics.add_metric(name=ALERTS_OVERDUE, unit=MetricUnit.Count, value=swept.overdue)
    if swept.published:
        metrics.add_metric(name=ALERTS_PUBLISHED, unit=MetricUnit.Count, value=swept.published)
    if swept.overdue or swept.published:
        metrics.flush_metrics()  # by hand, not log_metrics: that one warns on every empty flush
    if swept.overdue:
        logger.error("failed SMS still not alerted after the grace period: SNS refused them", extra=vars(swept))
    elif swept.found:
        logger.info("overdue alerts published", extra=vars(swept))
    if swept.unrecorded:
        logger.error("alerts published but not recorded: they may go out again", extra={"count": swept.unrecorded})
    return vars(swept)
