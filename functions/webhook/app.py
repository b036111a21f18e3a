"""Webhook for CINNOX: answers the URL challenge and stores each outbound-SMS TDR.

Its cold start imports only what a request needs: parked TDRs land in functions/parked, and the SQS
client for parking is made the first time a TDR is parked.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cinnox_sms.errors import NotFound, StorageUnavailable, WebhookError
from cinnox_sms.item import StoredTdr
from cinnox_sms.metrics import NOT_STORED, OUT_OF_SHAPE, PARKED, REFUSED, REPEATED, UNKNOWN_STATUS
from cinnox_sms.webhook import SecretUnavailable
from cinnox_sms.wiring import webhook_service

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from cinnox_sms.model import Tdr

logger = Logger()
metrics = Metrics()  # flushed only when something unusual happened: see lambda_handler


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one, not one per answer


def receive(event: dict[str, Any]) -> dict[str, Any]:
    """One request, answered in JSON, laid out for payload 2.0 as Powertools' ResponseBuilder does."""
    status, body = answer(event)
    return {
        "statusCode": int(status),
        "body": _encode(body),
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "cookies": [],
    }


def answer(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The secret is the last path segment, and WebhookService checks it.

    The four fields of the HTTP API's payload 2.0 it needs are read from the event itself, not through Powertools'
    APIGatewayProxyEventV2: importing that data class imports its package's every event class, 15-20 ms of each
    cold start (make bench, "against peer"), for four dictionary reads."""
    if ((event.get("requestContext") or {}).get("http") or {}).get("method") != "POST":
        return HTTPStatus.NOT_FOUND, {"code": 404, "message": "not found"}
    try:
        receipt = webhook_service().receive(
            event.get("rawPath") or "", event.get("body"), bool(event.get("isBase64Encoded"))
        )
    except (WebhookError, StorageUnavailable, SecretUnavailable) as error:
        return refused(error)
    if receipt.tdr is None:
        logger.info("challenge answered")
        return HTTPStatus.OK, {"code": 0, "result": receipt.result()}
    if receipt.parked:
        logger.warning("table unavailable; TDR parked", transaction_id=receipt.tdr.transaction_id)
        metrics.add_metric(name=PARKED, unit=MetricUnit.Count, value=1)
    if receipt.duplicate:
        metrics.add_metric(name=REPEATED, unit=MetricUnit.Count, value=1)
    elif receipt.tdr.out_of_shape or not receipt.tdr.known_status:
        unusual(receipt.tdr)
    # The table holds every TDR already: a line per TDR at INFO would add CloudWatch
    # ingestion to the cost of every TDR for nothing new. Refusals and faults log at INFO+.
    logger.debug(
        "TDR received",
        transaction_id=receipt.tdr.transaction_id,
        status=str(receipt.tdr.status),
        duplicate=receipt.duplicate,
    )
    return HTTPStatus.OK, {"code": 0, "result": receipt.result()}


def unusual(tdr: Tdr) -> None:
    """A TDR stored (or parked) the first time with fields out of shape or a status we do not know: counted
    and logged once, with the names of the fields and never their values (the table has them)."""
    if tdr.out_of_shape:
        metrics.add_metric(name=OUT_OF_SHAPE, unit=MetricUnit.Count, value=1)
        fields = [StoredTdr.attribute(field) for field in tdr.out_of_shape_fields]
        logger.info("TDR stored with fields out of shape", transaction_id=tdr.transaction_id, fields=fields)
    if not tdr.known_status:
        metrics.add_metric(name=UNKNOWN_STATUS, unit=MetricUnit.Count, value=1)
        logger.info("TDR stored with a status we do not know", transaction_id=tdr.transaction_id, status=tdr.status)


def refused(error: Exception) -> tuple[int, dict[str, Any]]:
    """Each error a request can meet, and its answer: 4xx for what the sender sent, 503 when it should retry."""
    if isinstance(error, NotFound):
        # A wrong URL, which anyone can send: no line of ours (a log line and a metric blob were ~0.6 KB each
        # time). The API's access log has the request's one line, and WebhookWrongSecretAlarm counts those.
        return error.status, {"code": error.status, "message": error.message}
    if isinstance(error, WebhookError):
        logger.info("request refused", status=error.status, reason=error.message)
        metrics.add_dimension(name="Reason", value=type(error).__name__)
        metrics.add_metric(name=REFUSED, unit=MetricUnit.Count, value=1)
        return error.status, {"code": error.status, "message": error.message}
    cause = type(error.__cause__).__name__
    if isinstance(error, StorageUnavailable):
        metrics.add_metric(name=NOT_STORED, unit=MetricUnit.Count, value=1)
        logger.error(
            "TDR not stored; sender told to retry",
            transaction_id=error.transaction_id,
            cause=cause,
            parking=error.parking,
        )
        return HTTPStatus.SERVICE_UNAVAILABLE, {"code": 503, "message": "the TDR could not be stored; retry later"}
    logger.error("webhook secret unavailable", cause=cause)
    return HTTPStatus.SERVICE_UNAVAILABLE, {"code": 503, "message": "temporarily unavailable; retry later"}


# The request path carries the webhook secret: never log the event. Only refusals and faults log, and
# what they need from the context is the request ID (the function's name is the log group's): one key,
# measured at 1.3 us a TDR against 6.2 us for inject_lambda_context's whole context model.
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    logger.append_keys(function_request_id=context.aws_request_id)
    try:
        return receive(event)
    finally:
        # A stored TDR emits no metric (the stream counts it): no EMF line on the happy path.
        if metrics.metric_set:
            metrics.flush_metrics()
