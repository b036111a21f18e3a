"""Plain helpers the tests import: TDR bodies, API Gateway events, a Lambda context, log and stream readers.

Fixtures live in the conftest.py of the level that needs them (tests/, tests/integration/).
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.stub import Stubber

from local_stack.gateway import AccessLogFormat
from local_stack.template import ROOT, Template

if TYPE_CHECKING:
    from local_stack.emulator import Provisioned

APP_ID = "app-0f3c9d"

# The local stack as `make local` starts it, in a process of its own.
LOCAL_STACK = [sys.executable, "-m", "local_stack"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "devrig"), str(ROOT / "layers" / "common")])}


@dataclass
class Stack:
    """The template's resources, created in moto; values for Ref / GetAtt."""

    template: Template
    provisioned: Provisioned
    app_token: str

    @property
    def refs(self) -> dict[str, str]:
        return self.provisioned.refs

    @property
    def attrs(self) -> dict[str, str]:
        return self.provisioned.attrs

    @property
    def webhook_secret(self) -> str:
        return self.provisioned.secret_values["WebhookSecret"]

    @property
    def table_name(self) -> str:
        return self.refs["TdrTable"]

    def environment(self, function: str) -> dict[str, str]:
        return self.template.environment(function, self.refs, self.attrs)


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 10_000
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.remaining_ms - (time.monotonic() - self.started) * 1000))


def emf(printed: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format blobs among printed lines."""
    blobs = []
    for line in printed.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


class LogLines(io.StringIO):
    """What the functions' Loggers print, as Lambda would send it to CloudWatch."""

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.startswith("{")]


# --- API Gateway HTTP API (payload 2.0) events ----------------------------------------


def http_event(
    path: str,
    body: str | bytes | None,
    *,
    base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    path_parameters: bool = True,
) -> dict[str, Any]:
    if isinstance(body, bytes):
        body, base64_encoded = base64.b64encode(body).decode(), True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /tdr/{secret}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "localapi.execute-api.us-east-1.amazonaws.com", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "localapi",
            "domainName": "localapi.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "cinnox",
            },
            "requestId": "req-" + secrets.token_hex(4),
            "routeKey": "POST /tdr/{secret}",
            "stage": "$default",
            "time": "27/Nov/2026:13:00:00 +0000",
            "timeEpoch": 1795784400000,
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }
    if path_parameters:
        event["pathParameters"] = {"secret": path.rsplit("/", 1)[-1]}
    return event


def tdr(**fields: Any) -> dict[str, Any]:
    """A TDR body as CINNOX documents it; keyword arguments override or add fields."""
    body: dict[str, Any] = {
        "Type": "tdr",
        "AppID": APP_ID,
        "ServiceID": "svc-sms-01",
        "TransactionID": "txn-" + secrets.token_hex(6),
        "RecipientNumber": 85298765432,
        "RecipientCountry": "HK",
        "ResponseCode": "",
        "Status": "Submitted",
        "Exception": "",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


Post = Callable[..., Answer]


# --- what moto holds ---------------------------------------------------------------------


def table_items(stack: Stack) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=stack.table_name)["Items"])


def stream_records(stack: Stack) -> list[dict[str, Any]]:
    """Every record on the table's stream so far, as Lambda would receive them."""
    streams = boto3.client("dynamodbstreams")
    arn = stack.attrs["TdrTable.StreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            record = dict(record)
            record["eventSourceARN"] = arn
            record["dynamodb"] = dict(record["dynamodb"])
            record["dynamodb"].pop("ApproximateCreationDateTime", None)
            records.append(record)
    return records


# --- a deployed stack, as CloudFormation describes it ----------------------------------


class StubbedCloudFormation(boto3.Session):
    """A session whose CloudFormation client answers from a botocore Stubber."""

    def __init__(self, answers: list[dict[str, Any] | str]) -> None:
        super().__init__()
        self.cloudformation = boto3.client("cloudformation")
        self.stubber = Stubber(self.cloudformation)
        for answer in answers:
            if isinstance(answer, str):
                self.stubber.add_client_error("describe_stacks", "ValidationError", answer)
            else:
                self.stubber.add_response("describe_stacks", answer)
        self.stubber.activate()

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name == "cloudformation":
            return self.cloudformation
        return super().client(service_name, *args, **kwargs)  # type: ignore[call-overload]


def described_stack(outputs: dict[str, str]) -> dict[str, Any]:
    """A DescribeStacks answer for stack cinnox-sms with these outputs."""
    return {
        "Stacks": [
            {
                "StackName": "cinnox-sms",
                "CreationTime": "2026-11-27T00:00:00Z",
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


# --- rollups, for the report's tests -------------------------------------------------------


def put_rollups(table: str, counts: dict[tuple[datetime, str], dict[str, int]]) -> None:
    """Rollup items as cinnox_sms.rollup lays them out: (hour, country) -> {status: TDRs}."""
    from cinnox_sms.rollup import RollupKey

    requests: list[Any] = [
        {
            "PutRequest": {
                "Item": RollupKey.of(hour, country).item_key()
                | {status: {"N": str(n)} for status, n in by_status.items()}
            }
        }
        for (hour, country), by_status in counts.items()
    ]
    client = boto3.client("dynamodb")
    for start in range(0, len(requests), 25):  # BatchWriteItem takes at most 25 requests
        client.batch_write_item(RequestItems={table: requests[start : start + 25]})


def report_from_items(items: list[dict[str, Any]], since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """The test oracle: per country, the stored TDRs received in [since, until) by status, as the report
    names its columns (sent = Submitted)."""
    from cinnox_sms.item import StoredTdr

    columns = {"Submitted": "sent", "Delivered": "delivered", "Undelivered": "undelivered", "Rejected": "rejected"}
    lines: dict[str, dict[str, int]] = {}
    for stored in map(StoredTdr.from_item, items):
        received = datetime.fromisoformat(stored.received_at or "")
        if since <= received < until:
            line = lines.setdefault((stored.recipient_country or "??").upper(), dict.fromkeys(columns.values(), 0))
            line[columns[stored.status]] += 1
    return lines


def template_access_log_format(template: Template) -> AccessLogFormat:
    """The template's own access log Format, as the local gateway renders it."""
    return AccessLogFormat(template.resource("TdrApi")["Properties"]["AccessLogSettings"]["Format"])


def access_log_line(template: Template, **values: str) -> str:
    """An access log line as the gateway writes it, in the template's own Format."""
    context = {
        "requestId": "a1b2c3d4e5f60718",
        "identity.sourceIp": "203.0.113.9",
        "requestTime": "29/Nov/2026:10:00:00 +0000",
        "httpMethod": "POST",
        "routeKey": "POST /tdr/{secret}",
        "status": "200",
        "responseLength": "58",
        "integrationLatency": "41",
        **values,
    }
    return template_access_log_format(template).render(context)
