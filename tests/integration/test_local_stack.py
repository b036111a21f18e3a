"""The local stack's gateway (on loopback, with the template's routes), its stream mappings against moto, and the
demo's clock hook for the no-final-status check."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from local_stack.demo import CLOCK_OFFSET_VARIABLE
from local_stack.gateway import HttpApi, Route
from local_stack.runtime import FunctionError
from local_stack.streams import MappingConfig, StreamMapping
from local_stack.template import Template, load_function_module, resolve, stream_filters
from local_stack.traffic import http_post
from support import Post, Stack, stream_records, tdr

# --- the gateway: routes of the template, payload format 2.0 ------------------------


@pytest.fixture
def gateway(template: Template) -> Iterator[tuple[HttpApi, list[tuple[str, dict[str, Any]]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        calls.append((function, event))
        if event["rawPath"].endswith("/boom"):
            raise FunctionError({"errorType": "ValueError", "errorMessage": "boom"})
        return {"statusCode": 201, "headers": {"X-Answer": "yes"}, "body": "made"}

    routes = [Route(method, path, function) for _, method, path, function in template.http_routes()]
    routes += [Route("ANY", "/files/{proxy+}", "Files"), Route("ANY", "$default", "Fallback")]
    api = HttpApi(routes, invoke, api_id="api123")
    yield api, calls
    api.close()


def _request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers.items())


def test_template_route_gets_its_path_parameter_and_a_2_0_event(gateway: Any) -> None:
    api, calls = gateway
    status, body, headers = _request(
        f"{api.url}/tdr/s3cret?x=1", b'{"a": 1}', {"Content-Type": "application/json", "Cookie": "a=1; b=2"}
    )
    assert (status, body, headers["X-Answer"]) == (201, b"made", "yes")
    [(function, event)] = calls
    assert function == "WebhookFunction"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /tdr/{secret}"
    assert event["rawPath"] == "/tdr/s3cret"
    assert event["pathParameters"] == {"secret": "s3cret"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["content-type"] == "application/json"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)


def test_body_without_a_text_content_type_is_base64_encoded(gateway: Any) -> None:
    api, calls = gateway
    http_post(f"{api.url}/tdr/s3cret", b'{"a": 1}', {})
    event = calls[0][1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b'{"a": 1}'


@pytest.mark.parametrize(
    ("method", "path", "function", "parameters"),
    [
        ("GET", "/files/a/b.txt", "Files", {"proxy": "a/b.txt"}),
        ("GET", "/tdr/s3cret", "Fallback", None),  # the template's route is POST only
        ("POST", "/tdr/a/b", "Fallback", None),  # one segment only
    ],
)
def test_route_precedence(
    gateway: Any, method: str, path: str, function: str, parameters: dict[str, str] | None
) -> None:
    api, calls = gateway
    _request(f"{api.url}{path}", method=method)
    assert calls[0][0] == function
    assert calls[0][1].get("pathParameters") == parameters


def test_unknown_route_is_404_and_function_error_is_500(template: Template) -> None:
    def invoke(function: str, event: dict[str, Any]) -> Any:
        raise FunctionError({"errorType": "ValueError", "errorMessage": "boom"})

    api = HttpApi([Route("POST", "/tdr/{secret}", "WebhookFunction")], invoke, api_id="a")
    try:
        assert _request(f"{api.url}/nothing/here")[:2] == (404, b'{"message":"Not Found"}')
        assert _request(f"{api.url}/tdr/x", b"{}")[:2] == (500, b'{"message":"Internal Server Error"}')
    finally:
        api.close()


class _Alerts:
    """A stand-in alert function: answers from a script, records what it got."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.batches: list[list[str]] = []

    def __call__(self, event: dict[str, Any]) -> Any:
        self.batches.append([r["dynamodb"]["NewImage"]["transactionId"]["S"] for r in event["Records"]])
        action = self.script.pop(0) if self.script else {"batchItemFailures": []}
        if isinstance(action, Exception):
            raise action
        if action == "fail-third":
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["dynamodb"]["SequenceNumber"]}]}
        return action


def _mapping(template: Template, stack: Stack, alerts: _Alerts, **overrides: Any) -> StreamMapping:
    properties = template.resource("AlertFunction")["Properties"]["Events"]["TdrStream"]["Properties"]
    resolved = {**resolve(properties, stack.refs, stack.attrs), **overrides}
    queue_urls = {stack.attrs["AlertFailureQueue.Arn"]: stack.refs["AlertFailureQueue"]}
    config = MappingConfig.from_properties(resolved, queue_urls)
    return StreamMapping(config, alerts, boto3.Session(), poll_interval=0.02, retry_pause=0.001)


def _fail(post: Post, count: int) -> list[str]:
    ids = []
    for i in range(count):
        body = tdr(TransactionID=f"txn-{i:03d}", Status="Rejected", ResponseCode="400")
        post(body)
        post({**body, "Status": "Submitted", "ResponseCode": ""})
        ids.append(body["TransactionID"])
    return ids


def test_mapping_honours_the_template_filter_and_batch_size(template: Template, stack: Stack, post: Post) -> None:
    # Given 5 failed SMS (and their 5 Submitted TDRs), and the template's mapping with BatchSize 2
    ids = _fail(post, 5)
    alerts = _Alerts([])
    mapping = _mapping(template, stack, alerts, BatchSize=2)
    mapping.start()
    assert mapping.wait_idle(10)
    mapping.close()
    # Then only the failures reached the function, in order, two at a time
    assert alerts.batches == [ids[0:2], ids[2:4], ids[4:5]]
    assert mapping.stats.records_filtered_out == 5
    assert stream_filters(template, "AlertFunction", "TdrStream") == list(mapping.config.filters)


def test_partial_failure_retries_from_the_failed_record(template: Template, stack: Stack, post: Post) -> None:
    ids = _fail(post, 4)
    alerts = _Alerts(["fail-third"])
    mapping = _mapping(template, stack, alerts)
    mapping.start()
    assert mapping.wait_idle(10)
    mapping.close()
    assert alerts.batches == [ids, ids[2:]]


def test_errors_bisect_then_go_to_the_on_failure_queue(template: Template, stack: Stack, post: Post) -> None:
    # Given a function that always fails, and the template's retry limit lowered to 1
    ids = _fail(post, 2)
    alerts = _Alerts([FunctionError({"errorType": "E", "errorMessage": "down"})] * 10)
    mapping = _mapping(template, stack, alerts, MaximumRetryAttempts=1)
    mapping.start()
    assert mapping.wait_idle(10)
    mapping.close()
    # Then the batch was split in two, each half retried once, then recorded on the failure queue
    assert alerts.batches == [ids, [ids[0]], [ids[1]]]
    messages = boto3.client("sqs").receive_message(QueueUrl=stack.refs["AlertFailureQueue"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    infos = [json.loads(m["Body"])["DDBStreamBatchInfo"] for m in messages]
    assert sorted(i["batchSize"] for i in infos) == [1, 1]


# --- the metrics mapping's tumbling window, with the real function and the rollup table -----------


def test_the_windowed_metrics_mapping_keeps_exact_rollups_through_a_failed_batch(
    template: Template,
    stack: Stack,
    post: Post,
    metrics_function: Any,
    context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda Developer Guide, "Using AWS Lambda with Amazon DynamoDB" (tumbling windows): the event names the
    stream's shard; a failed batch is retried whole; the window ends with a final invoke without records."""
    # Given TDRs of several statuses and countries on the stream
    sent: Counter[tuple[str, str]] = Counter()
    for status, country in [("Submitted", "HK"), ("Delivered", "HK"), ("Rejected", "SG"), ("Submitted", "GB")]:
        post(tdr(Status=status, RecipientCountry=country))
        sent[(country, status)] += 1
    # And the template's Stored mapping (batching window off) feeding the real function, whose first try fails
    events: list[dict[str, Any]] = []
    failures = [RuntimeError("injected: the first invocation fails")]

    def invoke(event: dict[str, Any]) -> Any:
        events.append(event)
        if failures:
            error = failures.pop()
            raise FunctionError({"errorType": type(error).__name__, "errorMessage": str(error)})
        return metrics_function.lambda_handler(event, context)

    properties = template.resource("MetricsFunction")["Properties"]["Events"]["Stored"]["Properties"]
    resolved = {**resolve(properties, stack.refs, stack.attrs), "MaximumBatchingWindowInSeconds": 0}
    mapping = StreamMapping(MappingConfig.from_properties(resolved, {}), invoke, boto3.Session(), retry_pause=0.001)
    # When the mapping runs, then the window's end passes
    mapping.start()
    assert mapping.wait_idle(10)
    mapping.close()
    mapping._close_windows(float("inf"))
    # Then every event named the stream's real shard, the retry went through, and the window closed
    arn = stack.attrs["TdrTable.StreamArn"]
    [shard] = boto3.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    assert {e["shardId"] for e in events} == {shard["ShardId"]}
    assert mapping.stats.function_errors == 1
    assert events[-1]["isFinalInvokeForWindow"] is True
    assert events[-1]["Records"] == []
    # And the rollups count each TDR once, by country and status
    counted: Counter[tuple[str, str]] = Counter()
    for item in boto3.client("dynamodb").scan(TableName=stack.refs["RollupTable"])["Items"]:
        if item["day"]["S"] != "#watermark":
            country = item["slot"]["S"].partition("#")[2]
            for status in ("Submitted", "Delivered", "Undelivered", "Rejected"):
                if status in item:
                    counted[(country, status)] += int(item[status]["N"])
    assert counted == sent


# --- the demo's clock hook: NoFinalStatusFunction with its clock moved (local only) --------------------------------


def test_the_local_clock_offset_moves_only_the_checks_clock(
    template: Template,
    stack: Stack,
    post: Post,
    metrics_function: Any,
    context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `make demo` does: an SMS submitted now, without a final status, is found once the check's clock is
    NoFinalStatusHours + 1 h ahead (CINNOX_SMS_LOCAL_CLOCK_OFFSET_SECONDS), and not with the real clock; its alert
    does not reach the digest queue."""
    # Given an SMS submitted now (its Submitted TDR stored and counted), and another delivered
    post(tdr(TransactionID="now-pending", Status="Submitted", RecipientCountry="ID"))
    post(tdr(TransactionID="now-done", Status="Submitted", RecipientCountry="ID"))
    post(tdr(TransactionID="now-done", Status="Delivered", RecipientCountry="ID"))
    arn = stack.attrs["TdrTable.StreamArn"]
    [shard] = boto3.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    event = {"Records": stream_records(stack), "shardId": shard["ShardId"], "state": {}, "window": {}}
    metrics_function.lambda_handler({**event, "isFinalInvokeForWindow": False}, context)
    for name, value in stack.environment("NoFinalStatusFunction").items():
        monkeypatch.setenv(name, value)
    hours = int(stack.environment("NoFinalStatusFunction")["NO_FINAL_STATUS_HOURS"])
    module = load_function_module(template, "NoFinalStatusFunction")
    # When the check runs with the real clock (the template sets no offset), it finds nothing yet
    module.check.cache_clear()
    assert module.lambda_handler({}, context)["found"] == 0
    # When it runs with its clock moved NoFinalStatusHours + 1 h ahead
    monkeypatch.setenv(CLOCK_OFFSET_VARIABLE, str((hours + 1) * 3600))
    module.check.cache_clear()
    moved = module.check()._now() - datetime.now(UTC)
    assert abs(moved - timedelta(hours=hours + 1)) < timedelta(seconds=5)
    first, second = module.lambda_handler({}, context), module.lambda_handler({}, context)
    # Then the SMS with no final status is found once, and not again
    assert (first["found"], first["published"], first["digests"]) == (1, 1, 1)
    assert (second["found"], second["digests"]) == (0, 0)
    # And its NoFinalStatus alert stayed off the failed-SMS digests' queue: the DigestSubscription's FilterPolicy,
    # provisioned as the local stack provisions it, is applied by moto (SNS Developer Guide, "Amazon SNS
    # subscription filter policies")
    waiting = boto3.client("sqs").receive_message(QueueUrl=stack.refs["DigestQueue"], MaxNumberOfMessages=10)
    assert waiting.get("Messages", []) == []
