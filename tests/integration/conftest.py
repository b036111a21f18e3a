"""moto for AWS, the template's resources in it, the real handlers, a stand-in CINNOX, CloudFormation's response URL.

The template is provisioned in moto once per session (per xdist worker) and moto's state is put back to that
moment before each test: a test gets a fresh stack for a few milliseconds, not the 1-2 s provisioning takes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict

from local_stack.cinnox import CinnoxSimulator
from local_stack.cloudformation import ResponseEndpoint
from local_stack.cloudformation import custom_resource_event as cloudformation_event
from local_stack.emulator import Provisioned, provision
from local_stack.httpserver import JsonHandler, Server
from local_stack.moto_server import patch_moto
from local_stack.template import REGION, Template, load_function_module
from support import APP_ID, Answer, LambdaContext, LogLines, Post, Stack, http_event

# moto's backends hold locks, which deepcopy refuses: a copy shares the original's (one test
# runs at a time). A fresh lock would not do: a copied Condition keeps the old lock's bound methods.
for _lock in (type(threading.Lock()), type(threading.RLock())):
    copy._deepcopy_dispatch[_lock] = lambda lock, memo: lock  # type: ignore[attr-defined]


# moto's SQS receive is quadratic in the queue's length; the local stack's server is patched the same way.
patch_moto()


def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # moto knows DynamoDB Streams by its regional host, not the account-based one.
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")


# --- AWS, in moto ------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty moto account, for tests that provision something of their own."""
    _aws_environment(monkeypatch)
    with mock_aws():
        yield


@dataclass
class MotoSnapshot:
    """Every moto backend as it was at one moment: (backends, account, region, backend object, its state)."""

    saved: list[tuple[BackendDict[Any], str, str, object, dict[str, Any]]]

    @classmethod
    def take(cls) -> MotoSnapshot:
        saved = []
        for backends in BackendDict._instances:  # type: ignore[misc]
            for account, regional in dict.items(backends):
                for region, backend in dict.items(regional):
                    state = copy.deepcopy(backend.__dict__, {id(backend): backend})
                    saved.append((backends, account, region, backend, state))
        return cls(saved)

    def restore(self) -> None:
        """Put every backend back; services first used after the snapshot (CloudWatch, ...) are emptied."""
        kept = [backends for backends, *_ in self.saved]
        for backends in list(BackendDict._instances):  # type: ignore[misc]
            if not any(backends is k for k in kept):
                for regional in backends.values():
                    regional.reset()
        for backends, account, region, original, state in self.saved:
            backend = backends[account][region]
            # References to the backend itself point at the live one, whichever object moto holds now.
            backend.__dict__.clear()
            backend.__dict__.update(copy.deepcopy(state, {id(original): backend}))


@dataclass
class Baseline:
    """The template provisioned in moto, once per session, and moto's state right after."""

    provisioned: Provisioned
    app_token: str
    snapshot: MotoSnapshot


@pytest.fixture(scope="session")
def moto_baseline(template: Template) -> Baseline:
    """Every resource of the template, created in moto as the local stack creates them (tables from the
    template's own key schema)."""
    parameters = {
        "CinnoxAppId": APP_ID,
        "CinnoxBaseUrl": "http://127.0.0.1:9",
        "CinnoxAppTokenSecret": "cinnox/app-token",
    }
    app_token = "tok-" + secrets.token_hex(24)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _aws_environment(monkeypatch)
        with mock_aws():
            boto3.client("secretsmanager").create_secret(
                Name=parameters["CinnoxAppTokenSecret"], SecretString=app_token
            )
            provisioned = provision(template, parameters, boto3.Session(), "cinnox-sms")
            snapshot = MotoSnapshot.take()
    return Baseline(provisioned, app_token, snapshot)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, template: Template, moto_baseline: Baseline) -> Iterator[Stack]:
    """The template's resources in moto, as the session provisioned them: items, messages, secrets and
    any table, queue or subscription a test deleted or added are put back before each test."""
    _aws_environment(monkeypatch)
    moto = mock_aws()
    moto.start(reset=False)
    try:
        moto_baseline.snapshot.restore()
        provisioned = moto_baseline.provisioned
        # A test may point a Ref elsewhere (the stand-in CINNOX's URL): its own copy of the values.
        mine = dataclasses.replace(
            provisioned,
            refs=dict(provisioned.refs),
            attrs=dict(provisioned.attrs),
            secret_values=dict(provisioned.secret_values),
        )
        yield Stack(template, mine, moto_baseline.app_token)
    finally:
        moto.stop(remove_data=False)


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


@pytest.fixture
def digest_inbox(stack: Stack) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to the digest topic (raw): each digest's machine message, as a system reads it."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="digest-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(
        TopicArn=stack.refs["DigestTopic"], Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )

    def receive() -> list[dict[str, Any]]:
        digests: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            digests += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            )
        return digests

    return receive


# --- the functions, loaded from the template's CodeUri and Handler --------------------

# What a handler builds once per execution environment: each test starts from its own environment.
CACHED_BUILDERS = (
    "webhook_service",
    "parking_drain",
    "alert_publisher",
    "rollup_writer",
    "digest_publisher",
    "dynamodb",
)


def _function(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines, logical_id: str
) -> Iterator[ModuleType]:
    for name, value in stack.environment(logical_id).items():
        monkeypatch.setenv(name, value)
    module = load_function_module(template, logical_id)
    # Powertools reuses one handler per service across imports: point it at this test's buffer.
    module.logger.registered_handler.stream = logs
    for cached in CACHED_BUILDERS:
        if hasattr(module, cached):
            getattr(module, cached).cache_clear()
    yield module
    for cached in CACHED_BUILDERS:
        if hasattr(module, cached):
            getattr(module, cached).cache_clear()


@pytest.fixture
def webhook(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    yield from _function(template, stack, monkeypatch, logs, "WebhookFunction")


@pytest.fixture
def parked(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    """The parked-TDR function, which lands what the parking queue holds."""
    yield from _function(template, stack, monkeypatch, logs, "ParkedTdrFunction")


@pytest.fixture
def alert(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    yield from _function(template, stack, monkeypatch, logs, "AlertFunction")


@pytest.fixture
def metrics_function(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> Iterator[ModuleType]:
    yield from _function(template, stack, monkeypatch, logs, "MetricsFunction")


@pytest.fixture
def digest(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    """The digest function, which sends people one message per batch of the digest queue."""
    yield from _function(template, stack, monkeypatch, logs, "DigestFunction")


@pytest.fixture
def widget(template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines) -> Iterator[ModuleType]:
    """The dashboard's delivery widget function (a CloudWatch custom widget)."""
    yield from _function(template, stack, monkeypatch, logs, "DeliveryWidgetFunction")


@pytest.fixture
def rollup_table(stack: Stack) -> str:
    """The rollup table's name: provisioned with the template, from its own KeySchema (day, slot)."""
    return stack.refs["RollupTable"]


@pytest.fixture
def subscription(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> Iterator[ModuleType]:
    # Quick back-off so retry tests take milliseconds, not seconds.
    monkeypatch.setenv("CINNOX_BACKOFF_BASE", "0.01")
    monkeypatch.setenv("CINNOX_BACKOFF_CAP", "0.05")
    monkeypatch.setenv("CINNOX_REQUEST_TIMEOUT", "2")
    yield from _function(template, stack, monkeypatch, logs, "SubscriptionFunction")


@pytest.fixture
def warm_throughput(
    template: Template, stack: Stack, monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> Iterator[ModuleType]:
    """The custom resource function that raises the TDR table's warm throughput (and refuses to lower it)."""
    yield from _function(template, stack, monkeypatch, logs, "WarmThroughputFunction")


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
