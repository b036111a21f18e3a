"""The floors: minimal handlers that make the same AWS calls with plain boto3 and json.

Each is what a function with no framework, no validation and no logging would cost;
the benchmark measures the product's functions against them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
from typing import Any

import boto3

_secret: str | None = None
_dynamodb: Any = None
_sns: Any = None


def webhook(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A secret read (cached), one PutItem: the least a webhook that stores a TDR can do."""
    global _secret, _dynamodb
    if _secret is None:
        _secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["WEBHOOK_SECRET_ARN"])[
            "SecretString"
        ]
        _dynamodb = boto3.client("dynamodb")
    if not event["rawPath"].endswith("/" + str(_secret)):
        return {"statusCode": 404, "body": "{}"}
    body = json.loads(event["body"])
    _dynamodb.put_item(
        TableName=os.environ["TDR_TABLE_NAME"],
        Item={
            "transactionId": {"S": body["TransactionID"]},
            "status": {"S": body["Status"]},
            "raw": {"S": event["body"]},
        },
    )
    return {"statusCode": 200, "body": json.dumps({"code": 0})}


def alert(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The record read, PublishBatch of ten for every ten records, each alert recorded: the least an alerter
    that sends each alert once can do (the product's calls: cinnox_sms.alert_ledger)."""
    global _sns
    if _sns is None:
        _sns = boto3.client("sns")
    records = event["Records"]
    read_alert_records(records)
    for start in range(0, len(records), 10):
        _sns.publish_batch(
            TopicArn=os.environ["ALERT_TOPIC_ARN"],
            PublishBatchRequestEntries=[
                {"Id": str(i), "Message": json.dumps(r["dynamodb"]["NewImage"])}
                for i, r in enumerate(records[start : start + 10])
            ],
        )
    write_alert_records(records)
    return {"batchItemFailures": []}


def _alert_table() -> Any:
    global _dynamodb
    if _dynamodb is None:
        _dynamodb = boto3.client("dynamodb")
    return _dynamodb


def read_alert_records(records: list[dict[str, Any]]) -> Any:
    """One strongly consistent BatchGetItem of the records' keys (up to 100, a stream batch's most)."""
    table = os.environ["TDR_TABLE_NAME"]
    keys = list({json.dumps(r["dynamodb"]["Keys"], sort_keys=True): r["dynamodb"]["Keys"] for r in records}.values())
    return _alert_table().batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})


def write_alert_records(records: list[dict[str, Any]]) -> None:
    """One UpdateItem per alert, ten at a time."""
    from concurrent.futures import ThreadPoolExecutor

    table, client = os.environ["TDR_TABLE_NAME"], _alert_table()

    def record(keys: dict[str, Any]) -> None:
        # As the product writes it: never an item that is not there.
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.update_item(
                TableName=table,
                Key=keys,
                UpdateExpression="SET alertedAt = :now REMOVE alertDue",
                ConditionExpression="attribute_exists(transactionId)",
                ExpressionAttributeValues={":now": {"S": str(time.time())}},
            )

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(record, [r["dynamodb"]["Keys"] for r in records]))


def subscription(event: dict[str, Any], context: Any) -> None:
    """Two secret reads, the PATCH to CINNOX, the answer to CloudFormation."""
    secrets = boto3.client("secretsmanager")
    properties = event["ResourceProperties"]
    token = secrets.get_secret_value(SecretId=properties["CinnoxAppTokenSecret"])["SecretString"]
    path_secret = secrets.get_secret_value(SecretId=properties["WebhookSecretId"])["SecretString"]
    body = json.dumps({"enabled": True, "url": f"{properties['WebhookUrl']}/{path_secret}"}).encode()
    request = urllib.request.Request(
        f"{properties['CinnoxBaseUrl']}/v1/api/apps/{properties['CinnoxAppId']}/outbound-sms-event-sub",
        data=body,
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    # nosemgrep: credentials-through-redirects  # a cost floor's copy of the function, against the simulator on loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310  # loopback in the benchmark
        response.read()
    answer = json.dumps(
        {
            "Status": "SUCCESS",
            "PhysicalResourceId": "floor",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Reason": "floor",
            "Data": {},
            "_at": time.time(),
        }
    ).encode()
    put = urllib.request.Request(event["ResponseURL"], data=answer, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(put, timeout=10) as response:  # nosec B310  # loopback in the benchmark
        response.read()
