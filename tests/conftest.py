"""Shared fixtures: moto for AWS, the real template, the real handlers, a stand-in CINNOX."""

from __future__ import annotations

import base64
import io
import json
import secrets
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from local_stack.template import REGION, ROOT, Template, load_function_module

APP_ID = "app-0f3c9d"


# --- the template ------------------------------------------------------------------


@pytest.fixture(scope="session")
def template() -> Template:
    return Template.load()


@pytest.fixture(scope="session")
def template_events() -> dict[str, dict[str, Any]]:
    """The events/ files, as sam local invoke -e reads them."""
    return {path.name: json.loads(path.read_text()) for path in sorted((ROOT / "events").glob("*.json"))}


# --- AWS, in moto ------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # moto knows DynamoDB Streams by its regional host, not the account-based one.
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    parameters.clear_caches()
    with mock_aws():
        yield
    parameters.clear_caches()


@dataclass
class Stack:
    """The template's resources, created in moto; values for Ref / GetAtt."""

    template: Template
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    webhook_secret: str = ""
    app_token: str = ""

    @property
    def table_name(self) -> str:
        return self.refs["TdrTable"]

    def environment(self, function: str) -> dict[str, str]:
        return self.template.environment(function, self.refs, self.attrs)


@pytest.fixture
def stack(aws: None, template: Template) -> Stack:
    """TdrTable, AlertTopic, AlertFailureQueue and WebhookSecret, shaped as the template declares."""
    stack = Stack(template)
    stack.refs.update(CinnoxAppId=APP_ID, CinnoxBaseUrl="http://127.0.0.1:9", CinnoxAppTokenSecret="cinnox/app-token")
    for name, value in template.parameter_defaults().items():
        stack.refs.setdefault(name, value)

    dynamodb = boto3.client("dynamodb")
    table = template.table_definition("TdrTable", "cinnox-sms-TdrTable")
    described = dynamodb.create_table(**table)["TableDescription"]
    ttl = template.resource("TdrTable")["Properties"]["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=table["TableName"], TimeToLiveSpecification=ttl)
    stack.refs["TdrTable"] = table["TableName"]
    stack.attrs["TdrTable.Arn"] = described["TableArn"]
    stack.attrs["TdrTable.StreamArn"] = described["LatestStreamArn"]

    sns = boto3.client("sns")
    topic_arn = sns.create_topic(Name="cinnox-sms-AlertTopic", Attributes=template.topic_attributes("AlertTopic"))[
        "TopicArn"
    ]
    stack.refs["AlertTopic"] = topic_arn
    stack.attrs["AlertTopic.TopicName"] = topic_arn.rsplit(":", 1)[-1]

    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="cinnox-sms-AlertFailureQueue")["QueueUrl"]
    stack.refs["AlertFailureQueue"] = queue_url

    secretsmanager = boto3.client("secretsmanager")
    stack.webhook_secret = secrets.token_urlsafe(36).replace("-", "a").replace("_", "b")
    stack.refs["WebhookSecret"] = secretsmanager.create_secret(
        Name="cinnox-sms-WebhookSecret", SecretString=stack.webhook_secret
    )["ARN"]
    stack.app_token = "tok-" + secrets.token_hex(24)
    secretsmanager.create_secret(Name=stack.refs["CinnoxAppTokenSecret"], SecretString=stack.app_token)
    stack.refs["TdrApi"] = "localapi"
    return stack


@pytest.fixture
def alert_inbox(stack: Stack) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to the alert topic (raw delivery off, as a system would see it)."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=stack.refs["AlertTopic"], Protocol="sqs", Endpoint=queue_arn)

    def receive() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            messages += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return messages

    return receive


# --- the functions, loaded from the template's CodeUri and Handler --------------------


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


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


class LogLines(io.StringIO):
    """What the functions' Loggers print, as Lambda would send it to CloudWatch."""

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def logs() -> LogLines:
    return LogLines()


def _function(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines, logical_id: str
) -> Iterator[ModuleType]:
    for name, value in stack.environment(logical_id).items():
        monkeypatch.setenv(name, value)
    module = load_function_module(template, logical_id)
    # Powertools reuses one handler per service across imports: point it at this test's buffer.
    module.logger.registered_handler.stream = logs
    for cached in ("webhook_service", "alert_publisher"):
        if hasattr(module, cached):
            getattr(module, cached).cache_clear()
    yield module
    for cached in ("webhook_service", "alert_publisher"):
        if hasattr(module, cached):
            getattr(module, cached).cache_clear()


@pytest.fixture
def webhook(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    yield from _function(template, stack, monkeypatch, logs, "WebhookFunction")


@pytest.fixture
def alert(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    yield from _function(template, stack, monkeypatch, logs, "AlertFunction")


@pytest.fixture
def subscription(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> Iterator[ModuleType]:
    # Quick back-off so retry tests take milliseconds, not seconds.
    monkeypatch.setenv("CINNOX_BACKOFF_BASE", "0.01")
    monkeypatch.setenv("CINNOX_BACKOFF_CAP", "0.05")
    monkeypatch.setenv("CINNOX_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("CFN_RESPONSE_MARGIN", "1")
    yield from _function(template, stack, monkeypatch, logs, "SubscriptionFunction")


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


@pytest.fixture
def post(webhook: ModuleType, stack: Stack, context: LambdaContext) -> Post:
    """POST a body to the webhook handler, at the secret path unless told otherwise."""

    def send(body: Any, *, path: str | None = None, raw: bool = False, **options: Any) -> Answer:
        payload = body if raw else json.dumps(body)
        response = webhook.lambda_handler(
            http_event(path or f"/tdr/{stack.webhook_secret}", payload, **options), context
        )
        return Answer(response["statusCode"], json.loads(response["body"]))

    return send


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


# --- real HTTP on loopback: the webhook, a stand-in CINNOX, CloudFormation's response URL ---


class _Handler(BaseHTTPRequestHandler):
    """A quiet request handler with JSON helpers."""

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, payload: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_server(webhook: ModuleType, context: LambdaContext) -> Iterator[str]:
    """The real webhook handler behind a local HTTP server (base URL, no path)."""

    class Handler(_Handler):
        def do_POST(self) -> None:
            event = http_event(self.path, self.read_body(), headers=dict(self.headers.items()), path_parameters=False)
            response = webhook.lambda_handler(event, context)
            self.reply(response["statusCode"], response["body"].encode())

    server = _Server(Handler)
    yield server.url
    server.close()


@dataclass
class CinnoxCall:
    path: str
    authorization: str
    body: Any


class FakeCinnox:
    """Stands in for CINNOX's Open API: the outbound-SMS subscription PATCH.

    Like CINNOX, it checks the Bearer token and, before accepting a URL, posts a
    challenge to it and expects the challenge echoed. ``script`` queues one-off
    misbehaviours: an (HTTP status, JSON body) pair, or "hang", "reset", "garbage".
    """

    def __init__(self, app_id: str, token: str) -> None:
        self.app_id = app_id
        self.token = token
        self.calls: list[CinnoxCall] = []
        self.script: list[Any] = []
        self.subscription: dict[str, Any] | None = None
        self.hang_seconds = 3.0
        self._closing = threading.Event()
        fake = self

        class Handler(_Handler):
            protocol_version = "HTTP/1.1"

            def do_PATCH(self) -> None:
                raw = self.read_body()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                fake.calls.append(CinnoxCall(self.path, self.headers.get("Authorization", ""), body))
                action = fake.script.pop(0) if fake.script else None
                if action == "hang":
                    fake._closing.wait(fake.hang_seconds)
                    return self.reply(200, b'{"code": 0, "result": {}}')
                if action == "reset":
                    # An RST instead of an answer: SO_LINGER with a zero timeout.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if action == "garbage":
                    self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                    self.close_connection = True
                    return
                status, answer = action or fake.answer(self.path, self.headers.get("Authorization", ""), body)
                self.reply(status, json.dumps(answer).encode())

        self._server = _Server(Handler)

    @property
    def base_url(self) -> str:
        return self._server.url

    def answer(self, path: str, authorization: str, body: Any) -> tuple[int, dict[str, Any]]:
        if path != f"/v1/api/apps/{self.app_id}/outbound-sms-event-sub":
            return 404, {"code": 6450001, "message": "method or URL not found"}
        if authorization != f"Bearer {self.token}":
            return 400, {"code": 6451000, "message": "wrong request parameter: invalid AppToken"}
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("enabled"), bool)
            or not isinstance(body.get("url"), str)
        ):
            return 400, {"code": 6451000, "message": "wrong request parameter: enabled and url are required"}
        if body["enabled"] and not self.verify(body["url"]):
            return 400, {"code": 6451000, "message": "wrong request parameter: the webhook URL failed verification"}
        updated = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.subscription = {"enabled": body["enabled"], "url": body["url"], "updatedAt": updated}
        return 200, {"code": 0, "result": self.subscription}

    @staticmethod
    def verify(url: str) -> bool:
        challenge = secrets.token_urlsafe(16)
        request = urllib.request.Request(url, data=json.dumps({"challenge": challenge}).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                answer = json.loads(response.read())
        except (OSError, ValueError):
            return False
        return bool(answer.get("code") == 0 and answer.get("result", {}).get("challenge") == challenge)

    def close(self) -> None:
        self._closing.set()  # ends a "hang" at once
        self._server.close()


@pytest.fixture
def cinnox(stack: Stack) -> Iterator[FakeCinnox]:
    fake = FakeCinnox(APP_ID, stack.app_token)
    stack.refs["CinnoxBaseUrl"] = fake.base_url
    yield fake
    fake.close()


class CloudFormationEndpoint:
    """Collects what the custom resource PUTs to its pre-signed ResponseURL."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next = 0
        endpoint = self

        class Handler(_Handler):
            def do_PUT(self) -> None:
                body = self.read_body()
                if endpoint.fail_next:
                    endpoint.fail_next -= 1
                    return self.reply(503)
                endpoint.responses.append(json.loads(body))
                endpoint.headers.append(dict(self.headers.items()))
                self.reply(200)

        self._server = _Server(Handler)
        self.url = f"{self._server.url}/cloudformation-response?X-Amz-Signature=abc123"

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def cloudformation() -> Iterator[CloudFormationEndpoint]:
    endpoint = CloudFormationEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def custom_resource_event(
    stack: Stack, template: Template, cloudformation: CloudFormationEndpoint, webhook_server: str
) -> Callable[..., dict[str, Any]]:
    """A CloudFormation custom resource event built from the template's own Properties."""

    def build(request_type: str = "Create", **overrides: Any) -> dict[str, Any]:
        stack.refs.setdefault("SubscriptionFunction", "arn:aws:lambda:us-east-1:123456789012:function:sub")
        stack.attrs["SubscriptionFunction.Arn"] = stack.refs["SubscriptionFunction"]
        properties = template.properties("CinnoxSubscription", stack.refs, stack.attrs)
        # The webhook is served locally rather than by API Gateway.
        properties["WebhookUrl"] = f"{webhook_server}/tdr"
        properties.update(overrides.pop("properties", {}))
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": cloudformation.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/cinnox-sms/0a1b2c3d",
            "RequestId": "req-" + secrets.token_hex(4),
            "LogicalResourceId": "CinnoxSubscription",
            "ResourceType": template.resource("CinnoxSubscription")["Type"],
            "ResourceProperties": properties,
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = f"cinnox-outbound-sms-sub-{properties['CinnoxAppId']}"
        event.update(overrides)
        return event

    return build
