"""The hourly check for SMS with no final status: each found once, told to machines (one alert per SMS) and
to people (one digest per check that found any), and counted in a metric with an alarm on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cinnox_sms.metrics import NO_FINAL_STATUS, NO_FINAL_STATUS_NOT_PUBLISHED
from cinnox_sms.nofinal import NoFinalStatusCheck
from cinnox_sms.settings import NoFinalStatusSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@cache
def check() -> NoFinalStatusCheck:
    settings = NoFinalStatusSettings.from_env()
    offset = timedelta(seconds=settings.clock_offset_seconds)  # 0 deployed: a local-only setting (make demo)
    return NoFinalStatusCheck.from_settings(
        settings, boto3.client("dynamodb"), boto3.client("sns"), now=lambda: datetime.now(UTC) + offset
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    result = check().run()
    # One datapoint per check, zero included: the alarm tells a quiet check from a missing one.
    metrics.add_metric(name=NO_FINAL_STATUS, unit=MetricUnit.Count, value=result.found)
    if result.not_published:
        metrics.add_metric(name=NO_FINAL_STATUS_NOT_PUBLISHED, unit=MetricUnit.Count, value=result.not_published)
        logger.error("alerts for SMS with no final status were refused by SNS", extra={"refused": result.not_published})
    logger.info("no-final-status check done", extra=vars(result))
    return vars(result)
