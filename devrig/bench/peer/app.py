"""The peer: the webhook's job as a Powertools user would write it from Powertools' docs (issue 22).

`make bench` lays it out and measures it as it does the product's webhook (functions/webhook/app.py): the
same layer (Powertools, pydantic), the runtime's boto3, the same events and in-memory transport. It does
the same job: answers CINNOX's challenge, takes only the secret path, validates the TDR, stores it once
with a conditional PutItem, refuses what is no TDR with a 4xx; and writes what the product writes (no log
line or metric for a stored TDR; a metric and a line for a refusal, a metric for a repeat). It is written
the way the docs show each utility, nothing made slow on purpose: an event handler route, a Parser model,
Logger and Metrics with their decorators, a boto3 Table resource, the secret from the parameters utility
(cached, re-read after 60 s as the product's is).

No ``from __future__ import annotations``: the bench loads this file outside sys.modules, where pydantic
could not resolve string annotations.
"""

import hmac
import os
from datetime import UTC, datetime, timedelta
from json import JSONDecodeError
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ForbiddenError, NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parser import BaseModel, Field, ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Attr

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
table = boto3.resource("dynamodb").Table(os.environ["TDR_TABLE_NAME"])

APP_ID = os.environ["CINNOX_APP_ID"]
SECRET_ARN = os.environ["WEBHOOK_SECRET_ARN"]
RETENTION = timedelta(days=int(os.environ.get("TDR_RETENTION_DAYS", "400")))


class Tdr(BaseModel):
    """A TDR as CINNOX documents it."""

    type: Literal["tdr"] | None = Field(None, alias="Type")
    app_id: str = Field(alias="AppID", min_length=1, max_length=256)
    service_id: str | None = Field(None, alias="ServiceID", max_length=256)
    transaction_id: str = Field(alias="TransactionID", min_length=1, max_length=256)
    recipient_number: int | str | None = Field(None, alias="RecipientNumber")
    recipient_country: str | None = Field(None, alias="RecipientCountry", max_length=2)
    response_code: str | None = Field(None, alias="ResponseCode", max_length=64)
    status: Literal["Submitted", "Delivered", "Undelivered", "Rejected"] = Field(alias="Status")
    exception: str | None = Field(None, alias="Exception", max_length=1024)


@app.post("/tdr/<secret>")
def receive_tdr(secret: str) -> dict[str, Any]:
    if not hmac.compare_digest(secret.encode(), parameters.get_secret(SECRET_ARN, max_age=60).strip().encode()):
        raise NotFoundError("not found")
    body = app.current_event.json_body
    if isinstance(body, dict) and "challenge" in body and "TransactionID" not in body:
        logger.info("challenge answered")
        return {"code": 0, "result": {"challenge": body["challenge"]}}
    tdr = parse(event=body, model=Tdr)
    if tdr.app_id != APP_ID:
        raise ForbiddenError("AppID does not match the app this webhook was subscribed for")
    received_at = datetime.now(UTC)
    item = {
        "transactionId": tdr.transaction_id,
        "status": tdr.status,
        "appId": tdr.app_id,
        "type": tdr.type,
        "serviceId": tdr.service_id,
        "recipientNumber": None if tdr.recipient_number is None else str(tdr.recipient_number),
        "recipientCountry": tdr.recipient_country,
        "responseCode": tdr.response_code,
        "exception": tdr.exception,
        "raw": app.current_event.body,
        "receivedAt": received_at.isoformat(timespec="milliseconds"),
        "expiresAt": int((received_at + RETENTION).timestamp()),
    }
    duplicate = False
    try:
        table.put_item(
            Item={name: value for name, value in item.items() if value not in (None, "")},
            ConditionExpression=Attr("transactionId").not_exists(),
        )
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        duplicate = True
        metrics.add_metric(name="TdrRepeated", unit=MetricUnit.Count, value=1)
    logger.debug("TDR received", transaction_id=tdr.transaction_id, status=tdr.status, duplicate=duplicate)
    return {"code": 0, "result": {"transactionId": tdr.transaction_id, "status": tdr.status, "duplicate": duplicate}}


@app.exception_handler([ValidationError, JSONDecodeError])
def refuse(error: Exception) -> Response[dict[str, Any]]:
    logger.info("request refused", reason=type(error).__name__)
    metrics.add_dimension(name="Reason", value=type(error).__name__)
    metrics.add_metric(name="TdrRefused", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=400,
        content_type=content_types.APPLICATION_JSON,
        body={"code": 400, "message": "the body is not a TDR"},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
