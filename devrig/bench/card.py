"""The card floors: the plain floors plus what the card's stack asks of every handler.

The product is specified with pydantic, so each function that reads a TDR pays for a pydantic v2
model validating it: the webhook validates the body it stores, the alert validates the stored item
and builds its message with the standard library, the custom resource validates its
ResourceProperties. No Powertools, no framework: what any pydantic handler would cost. The
benchmark gives this module the layer's site-packages (the same pydantic, laid out the same way).
"""

# No `from __future__ import annotations`: the benchmark loads this file outside sys.modules,
# where pydantic could not resolve the annotations later.
import json
import os
import time
import urllib.request
from typing import Any, Literal

import boto3
from pydantic import BaseModel, ConfigDict, Field

try:  # the plain floors' record of alerts: the same calls, the card asks nothing more of them
    from floors import read_alert_records, write_alert_records  # type: ignore[import-not-found]  # cold start
except ImportError:
    from bench.floors import read_alert_records, write_alert_records  # the benchmark's own process

_secret: str | None = None
_dynamodb: Any = None
_sns: Any = None

Status = Literal["Submitted", "Delivered", "Undelivered", "Rejected"]
# The item's attribute names, as the product's table holds them.
_ITEM_NAMES = {
    "transaction_id": "transactionId",
    "status": "status",
    "app_id": "appId",
    "type": "type",
    "service_id": "serviceId",
    "recipient_number": "recipientNumber",
    "recipient_country": "recipientCountry",
    "response_code": "responseCode",
    "exception": "exception",
}
_RETENTION_SECONDS = 400 * 86400
# The protocols that get the stored record as JSON; people (default, e-mail) get the text.
_MACHINE_PROTOCOLS = ("sqs", "lambda", "http", "https", "firehose")


class Tdr(BaseModel):
    """The TDR as CINNOX documents it: the fields, their types and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transaction_id: str = Field(alias="TransactionID", min_length=1, max_length=256)
    status: Status = Field(alias="Status")
    app_id: str = Field(alias="AppID", min_length=1, max_length=256)
    type: Literal["tdr"] | None = Field(None, alias="Type")
    service_id: str | None = Field(None, alias="ServiceID", max_length=256)
    recipient_number: int | str | None = Field(None, alias="RecipientNumber")
    recipient_country: str | None = Field(None, alias="RecipientCountry", max_length=2)
    response_code: str | None = Field(None, alias="ResponseCode", max_length=64)
    exception: str | None = Field(None, alias="Exception", max_length=1024)


class StoredTdr(BaseModel):
    """The stored item, as the stream's NewImage carries it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    transaction_id: str = Field(alias="transactionId")
    status: Status
    app_id: str | None = Field(None, alias="appId")
    service_id: str | None = Field(None, alias="serviceId")
    recipient_number: str | None = Field(None, alias="recipientNumber")
    recipient_country: str | None = Field(None, alias="recipientCountry")
    response_code: str | None = Field(None, alias="responseCode")
    exception: str | None = None
    received_at: str | None = Field(None, alias="receivedAt")


class SubscriptionProperties(BaseModel):
    """The custom resource's ResourceProperties the subscription reads."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    cinnox_app_id: str = Field(alias="CinnoxAppId", min_length=1)
    cinnox_base_url: str = Field(alias="CinnoxBaseUrl", min_length=1)
    cinnox_app_token_secret: str = Field(alias="CinnoxAppTokenSecret", min_length=1)
    webhook_secret_id: str = Field(alias="WebhookSecretId", min_length=1)
    webhook_url: str = Field(alias="WebhookUrl", min_length=1)


def webhook(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The plain webhook, with the body validated as a TDR before it is stored."""
    global _secret, _dynamodb
    if _secret is None:
        _secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["WEBHOOK_SECRET_ARN"])[
            "SecretString"
        ]
        _dynamodb = boto3.client("dynamodb")
    if not event["rawPath"].endswith("/" + str(_secret)):
        return {"statusCode": 404, "body": "{}"}
    body = {k: v for k, v in json.loads(event["body"]).items() if v != ""}  # blank means none
    tdr = Tdr.model_validate(body)
    # The same PutItem as the product's: every field the TDR carries, the raw body, when it was
    # received and its TTL, written once (a conditional put), so both pay for the same request.
    now = time.time()
    item = {_ITEM_NAMES[name]: {"S": str(value)} for name, value in tdr.model_dump(exclude_none=True).items()}
    item["raw"] = {"S": event["body"]}
    item["receivedAt"] = {"S": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(now))}
    item["expiresAt"] = {"N": str(int(now) + _RETENTION_SECONDS)}
    try:
        _dynamodb.put_item(
            TableName=os.environ["TDR_TABLE_NAME"], Item=item, ConditionExpression="attribute_not_exists(transactionId)"
        )
    except _dynamodb.exceptions.ConditionalCheckFailedException:
        return {"statusCode": 200, "body": json.dumps({"code": 0, "duplicate": True})}
    return {"statusCode": 200, "body": json.dumps({"code": 0})}


def alert(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The plain alerter, with each image validated and the documented message built from it.

    The message is the one docs/alerts.md documents (a text for people, the stored record as
    JSON for machines, message attributes to filter on), built with the standard library: the
    product's SNS requests carry the same bytes, so both pay botocore for the same work.
    """
    global _sns
    if _sns is None:
        _sns = boto3.client("sns")
    read_alert_records(event["Records"])
    entries = []
    for index, record in enumerate(event["Records"]):
        image = {name: next(iter(value.values())) for name, value in record["dynamodb"]["NewImage"].items()}
        tdr = StoredTdr.model_validate(image)
        recipient = "+" + tdr.recipient_number.lstrip("+") if tdr.recipient_number else None
        record_json = json.dumps(image, sort_keys=True, ensure_ascii=False)
        text = "\n".join(
            (
                f"An outbound SMS sent through CINNOX was {tdr.status.lower()}.",
                "",
                f"Status:          {tdr.status}",
                f"Transaction ID:  {tdr.transaction_id}",
                f"Recipient:       {recipient or 'unknown'}",
                f"Country:         {tdr.recipient_country or 'unknown'}",
                f"Exception:       {tdr.exception or 'none given'}",
                f"Response code:   {tdr.response_code or 'none given'}",
                f"Service ID:      {tdr.service_id or 'unknown'}",
                f"App ID:          {tdr.app_id or 'unknown'}",
                f"Received:        {tdr.received_at or 'unknown'}",
                "",
                "The full record, as stored:",
                json.dumps(image, indent=2, sort_keys=True, ensure_ascii=False),
            )
        )
        message = {"default": text, "email": text} | dict.fromkeys(_MACHINE_PROTOCOLS, record_json)
        attributes = {"status": tdr.status, "country": tdr.recipient_country, "appId": tdr.app_id}
        attributes["serviceId"] = tdr.service_id
        entries.append(
            {
                "Id": str(index),
                "Subject": f"SMS {tdr.status} to {recipient} ({tdr.recipient_country}): {tdr.transaction_id}"[:100],
                "Message": json.dumps(message, ensure_ascii=False),
                "MessageStructure": "json",
                "MessageAttributes": {
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
                },
            }
        )
    for start in range(0, len(entries), 10):
        _sns.publish_batch(
            TopicArn=os.environ["ALERT_TOPIC_ARN"], PublishBatchRequestEntries=entries[start : start + 10]
        )
    write_alert_records(event["Records"])
    return {"batchItemFailures": []}


def subscription(event: dict[str, Any], context: Any) -> None:
    """The plain custom resource, with its ResourceProperties validated first."""
    secrets = boto3.client("secretsmanager")
    properties = SubscriptionProperties.model_validate(event["ResourceProperties"])
    token = secrets.get_secret_value(SecretId=properties.cinnox_app_token_secret)["SecretString"]
    path_secret = secrets.get_secret_value(SecretId=properties.webhook_secret_id)["SecretString"]
    body = json.dumps({"enabled": True, "url": f"{properties.webhook_url}/{path_secret}"}).encode()
    request = urllib.request.Request(
        f"{properties.cinnox_base_url}/v1/api/apps/{properties.cinnox_app_id}/outbound-sms-event-sub",
        data=body,
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    # nosemgrep: credentials-through-redirects  # the benchmark's copy of the function, the simulator on loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310  # loopback in the benchmark
        response.read()
    answer = json.dumps(
        {
            "Status": "SUCCESS",
            "PhysicalResourceId": "card",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Reason": "card",
            "Data": {},
            "_at": time.time(),
        }
    ).encode()
    put = urllib.request.Request(event["ResponseURL"], data=answer, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(put, timeout=10) as response:  # nosec B310  # loopback in the benchmark
        response.read()
