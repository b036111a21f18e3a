"""Shared fixtures: moto for AWS, the real template, the real handlers, a stand-in CINNOX."""

from __future__ import annotations

import base64
import io
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from local_stack.cinnox import CinnoxSimulator
from local_stack.cloudformation import ResponseEndpoint
from local_stack.cloudformation import custom_resource_event as cloudformation_event
from local_stack.emulator import Provisioned, provision
from local_stack.httpserver import JsonHandler, Server
from local_stack.template import REGION, ROOT, Template, load_function_module

APP_ID = "app-0f3c9d"

# Records every AWS call the functions make and judges it against their SAM-made roles (tests/test_iam.py).
pytest_plugins = ["iam_rehearsal"]


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


@pytest.fixture
def stack(aws: None, template: Template) -> Stack:
    """Every resource of the template, created in moto as the local stack creates them."""
    parameters = {
        "CinnoxAppId": APP_ID,
        "CinnoxBaseUrl": "http://127.0.0.1:9",
        "CinnoxAppTokenSecret": "cinnox/app-token",
    }
    app_token = "tok-" + secrets.token_hex(24)
    boto3.client("secretsmanager").create_secret(Name=parameters["CinnoxAppTokenSecret"], SecretString=app_token)
    return Stack(template, provision(template, parameters, boto3.Session(), "cinnox-sms"), app_token)


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


@pytest.fixture
def logs() -> LogLines:
    return LogLines()


SECRET_CHECKS = {"tests": 0, "lines": 0}


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Across the whole suite: no log line, and nothing printed, holds the AppToken or the webhook secret."""
    if "stack" not in request.fixturenames:
        yield
        return
    # Asked for here, so that they are torn down after this check.
    stack: Stack = request.getfixturevalue("stack")
    logs: LogLines | None = request.getfixturevalue("logs") if "logs" in request.fixturenames else None
    yield
    printed = capsys.readouterr()
    text = printed.out + printed.err + (logs.getvalue() if logs is not None else "")
    for secret in (stack.webhook_secret, stack.app_token):
        assert secret not in text, "a secret reached the logs"
    SECRET_CHECKS["tests"] += 1
    SECRET_CHECKS["lines"] += text.count("\n")


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
def metrics_function(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> Iterator[ModuleType]:
    yield from _function(template, stack, monkeypatch, logs, "MetricsFunction")


@pytest.fixture
def subscription(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> Iterator[ModuleType]:
    # Quick back-off so retry tests take milliseconds, not seconds.
    monkeypatch.setenv("CINNOX_BACKOFF_BASE", "0.01")
    monkeypatch.setenv("CINNOX_BACKOFF_CAP", "0.05")
    monkeypatch.setenv("CINNOX_REQUEST_TIMEOUT", "2")
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


@pytest.fixture
def webhook_server(webhook: ModuleType, context: LambdaContext) -> Iterator[str]:
    """The real webhook handler behind a local HTTP server (base URL, no path)."""

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            event = http_event(self.path, self.read_body(), headers=dict(self.headers.items()), path_parameters=False)
            response = webhook.lambda_handler(event, context)
            self.reply(response["statusCode"], response["body"].encode())

    server = Server(Handler)
    yield server.url
    server.close()


@pytest.fixture
def cinnox(stack: Stack) -> Iterator[CinnoxSimulator]:
    fake = CinnoxSimulator(APP_ID, stack.app_token)
    stack.refs["CinnoxBaseUrl"] = fake.base_url
    yield fake
    fake.close()


@pytest.fixture
def cloudformation() -> Iterator[ResponseEndpoint]:
    endpoint = ResponseEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def custom_resource_event(
    stack: Stack, template: Template, cloudformation: ResponseEndpoint, webhook_server: str
) -> Callable[..., dict[str, Any]]:
    """A CloudFormation custom resource event built from the template's own Properties."""

    def build(request_type: str = "Create", **overrides: Any) -> dict[str, Any]:
        properties = template.properties("CinnoxSubscription", stack.refs, stack.attrs)
        # The webhook is served locally rather than by API Gateway.
        properties["WebhookUrl"] = f"{webhook_server}/tdr"
        properties.update(overrides.pop("properties", {}))
        physical_id = None if request_type == "Create" else f"cinnox-outbound-sms-sub-{properties['CinnoxAppId']}"
        event = cloudformation_event(
            request_type,
            "CinnoxSubscription",
            template.resource("CinnoxSubscription")["Type"],
            properties,
            cloudformation.url,
            physical_id,
        )
        event.update(overrides)
        return event

    return build


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"secrets: no AppToken or webhook secret in {SECRET_CHECKS['lines']} log lines of "
        f"{SECRET_CHECKS['tests']} tests"
    )
