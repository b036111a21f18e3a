"""Webhook for CINNOX: answers the URL challenge and stores each outbound-SMS TDR."""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from botocore.config import Config

from cinnox_sms.errors import StorageUnavailable, WebhookError
from cinnox_sms.metrics import LANDED, NOT_STORED, PARKED, REFUSED, REPEATED
from cinnox_sms.parking import RECEIVED_AT, ParkingQueue, received_at
from cinnox_sms.settings import WebhookSettings
from cinnox_sms.store import TdrStore
from cinnox_sms.webhook import WebhookService

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()  # flushed only when something unusual happened: see lambda_handler
app = APIGatewayHttpResolver()
# A batch that fails whole is reported message by message: they wait in the queue, no retry storm.
parked = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Fail fast and let the sender retry, rather than hold its request past API Gateway's 30 s.
_AWS_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})


@cache
def webhook_service() -> WebhookService:
    settings = WebhookSettings.from_env()
    # One boto3 session for every client: a second one would load botocore's data again.
    secrets = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager", config=_AWS_CONFIG))

    def webhook_secret(fresh: bool) -> str:
        value = secrets.get(settings.webhook_secret_arn, max_age=settings.secret_max_age_seconds, force_fetch=fresh)
        return str(value).strip()

    store = TdrStore(boto3.client("dynamodb", config=_AWS_CONFIG), settings.table_name, settings.retention_days)
    parking = None
    if settings.parking_queue_url:
        # The SQS client is made the first time a TDR is parked, not on every cold start.
        parking = ParkingQueue(lambda: boto3.client("sqs", config=_AWS_CONFIG), settings.parking_queue_url)
    return WebhookService(app_id=settings.app_id, webhook_secret=webhook_secret, store=store, parking=parking)


@app.post(".+")  # the secret is the last path segment; WebhookService checks it
def receive() -> Response[str]:
    event = app.current_event
    receipt = webhook_service().receive(event.raw_path, event.body, bool(event.is_base64_encoded))
    if receipt.tdr is None:
        logger.info("challenge answered")
    else:
        if receipt.parked:
            logger.warning("table unavailable; TDR parked", transaction_id=receipt.tdr.transactionid)
            metrics.add_metric(name=PARKED, unit=MetricUnit.Count, value=1)
        if receipt.duplicate:
            metrics.add_metric(name=REPEATED, unit=MetricUnit.Count, value=1)
        # The table holds every TDR already: a line per TDR at INFO would add CloudWatch
        # ingestion to the cost of every TDR for nothing new. Refusals and faults log at INFO+.
        logger.debug(
            "TDR received",
            transaction_id=receipt.tdr.transactionid,
            status=receipt.tdr.status.value,
            duplicate=receipt.duplicate,
        )
    return _answer(HTTPStatus.OK, {"code": 0, "result": receipt.result()})


@app.exception_handler(WebhookError)
def refuse(error: WebhookError) -> Response[str]:
    logger.info("request refused", status=error.status, reason=error.message)
    metrics.add_dimension(name="Reason", value=type(error).__name__)
    metrics.add_metric(name=REFUSED, unit=MetricUnit.Count, value=1)
    return _answer(error.status, {"code": error.status, "message": error.message})


@app.exception_handler(StorageUnavailable)
def storage_unavailable(error: StorageUnavailable) -> Response[str]:
    metrics.add_metric(name=NOT_STORED, unit=MetricUnit.Count, value=1)
    logger.error(
        "TDR not stored; sender told to retry",
        transaction_id=error.transaction_id,
        cause=type(error.__cause__).__name__,
        parking=error.parking,
    )
    return _answer(HTTPStatus.SERVICE_UNAVAILABLE, {"code": 503, "message": "the TDR could not be stored; retry later"})


@app.exception_handler(parameters.exceptions.GetParameterError)
def secret_unavailable(error: Exception) -> Response[str]:
    logger.error("webhook secret unavailable", cause=type(error.__cause__).__name__)
    return _answer(HTTPStatus.SERVICE_UNAVAILABLE, {"code": 503, "message": "temporarily unavailable; retry later"})


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return _answer(HTTPStatus.NOT_FOUND, {"code": 404, "message": "not found"})


def _answer(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


def land_parked(record: SQSRecord) -> None:
    """Write one parked TDR; a StorageUnavailable leaves it in the queue for a later try."""
    attribute = record.message_attributes[RECEIVED_AT]  # None when absent (and .get would skip the wrapper)
    when = attribute.string_value if attribute is not None else None
    stored = webhook_service().land(record.body, received_at(when))
    logger.info("parked TDR landed", message_id=record.message_id, duplicate=not stored)
    metrics.add_metric(name=LANDED, unit=MetricUnit.Count, value=1)


# The request path carries the webhook secret: never log the event.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    try:
        records = event.get("Records")
        if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
            return process_partial_response(event=event, record_handler=land_parked, processor=parked, context=context)
        return app.resolve(event, context)
    finally:
        # A stored TDR emits no metric (the stream counts it): no EMF line on the happy path.
        if metrics.metric_set:
            metrics.flush_metrics()
