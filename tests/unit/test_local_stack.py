"""The local stack (devrig/local_stack): its gateway, runtime, stream mapping, and the demo end to end."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import Post, Stack, tdr
from local_stack.demo import Account, check
from local_stack.gateway import HttpApi, Route, to_http
from local_stack.httpserver import free_port
from local_stack.runtime import FunctionError, FunctionHost, FunctionSpec
from local_stack.streams import MappingConfig, StreamMapping
from local_stack.template import ROOT, Template, matches_filter, resolve, stream_filters
from local_stack.traffic import Outcome, http_post, plan_day

LOCAL_STACK = [sys.executable, "-m", "local_stack"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "devrig"), str(ROOT / "layers" / "common")])}


# --- the demo, end to end ------------------------------------------------------


def test_demo_accounts_for_every_tdr_and_alerts_each_failure_once() -> None:
    # Given a small day of traffic through the whole local stack (real processes, real HTTP)
    done = subprocess.run(
        [*LOCAL_STACK, "demo", "--sms", "60", "--senders", "4"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    # Then it exits 0, every check holds, and CINNOX saw the unsubscribe
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All accounted for." in done.stdout
    assert "FAIL" not in done.stdout
    assert "stored in DynamoDB  120" in done.stdout  # 60 SMS x (Submitted + terminal)
    # and it ends with the operators' report: every SMS counted once
    report = done.stdout.split("Report (cinnox-sms report")[1]
    assert [line.split()[:2] for line in report.splitlines() if line.startswith("all ")] == [["all", "60"]]


def _account(**changes: Any) -> Account:
    messages, deliveries = plan_day(10, app_id="app", seed=3, malformed=2)
    outcomes = [Outcome(d, d.expect, {"result": {"duplicate": d.kind == "repeat"}}, 1, 0.01) for d in deliveries]
    stored = {d.key for d in deliveries if d.key}
    failures = {key for key in stored if key[1] in ("Undelivered", "Rejected")}
    values: dict[str, Any] = {
        "messages": messages,
        "outcomes": outcomes,
        "stored": stored,
        "alerts": Counter(failures),
        "stream": {"read": len(stored), "filtered out": len(stored) - len(failures), "invocations": 1},
        "subscription": [True, False],
        "seconds": 1.0,
    }
    values.update(changes)
    return Account(**values)


def test_accounting_passes_when_everything_adds_up() -> None:
    account = _account()
    check(account, unsubscribed=True)
    assert account.ok, [c.text for c in account.checks if not c.ok]


@pytest.mark.parametrize("fault", ["lost", "extra alert", "alert twice", "no unsubscribe", "repeat stored"])
def test_accounting_catches_what_is_wrong(fault: str) -> None:
    # Given an account with one thing wrong
    account = _account()
    failure = next(iter(account.alerts))
    if fault == "lost":
        account.stored.discard(next(iter(account.stored)))
    elif fault == "extra alert":
        account.alerts[("txn-none", "Delivered")] = 1
    elif fault == "alert twice":
        account.alerts[failure] = 2
    elif fault == "repeat stored":
        account.outcomes[0].answer = {"result": {"duplicate": True}}
    # When it is checked, Then the check fails
    check(account, unsubscribed=fault != "no unsubscribe")
    assert not account.ok


def test_day_of_traffic_is_realistic() -> None:
    messages, deliveries = plan_day(300, app_id="app", seed=7)
    kinds = Counter(d.kind for d in deliveries)
    assert len({m.country.code for m in messages}) == 12
    assert kinds["tdr"] == 600
    assert 0 < kinds["repeat"] < 60
    assert kinds["malformed"] >= 6
    outcomes = Counter(m.outcome.value for m in messages)
    assert outcomes["Delivered"] > 0.8 * len(messages)
    assert outcomes["Undelivered"] > 0
    assert outcomes["Rejected"] > 0
    # some terminal TDRs are sent before their Submitted
    first: dict[str, str] = {}
    for d in deliveries:
        if d.key and d.kind == "tdr":
            first.setdefault(d.key[0], d.key[1])
    assert any(status != "Submitted" for status in first.values())
    assert any(b'"message"' in d.body for d in deliveries)


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


def test_non_proxy_result_becomes_a_json_200() -> None:
    assert to_http({"ok": True}) == (200, {"Content-Type": "application/json"}, b'{"ok": true}')
    assert to_http(
        {"statusCode": 204, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True, "cookies": ["c=1"]}
    ) == (204, {"Set-Cookie": "c=1"}, b"\x00")


# --- the runtime: functions in their own processes, through awslambdaric ----------


@pytest.fixture
def toy_function(tmp_path: Path) -> Iterator[FunctionHost]:
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""
        import os, time
        def handler(event, context):
            if event.get("raise"):
                raise ValueError("bad event")
            if event.get("sleep"):
                time.sleep(event["sleep"])
            if event.get("exit"):
                os._exit(3)
            return {"event": event, "name": context.function_name, "left_ms": context.get_remaining_time_in_millis(),
                    "greeting": os.environ["GREETING"]}
    """)
    )
    lines: list[str] = []
    spec = FunctionSpec("Toy", tmp_path, "app.handler", (), {"GREETING": "hello"}, timeout_seconds=1.5)
    host = FunctionHost(spec, log=lambda name, line: lines.append(line))
    host.start()
    yield host
    host.close()


def test_function_runs_in_its_own_process_with_its_environment(toy_function: FunctionHost) -> None:
    result = toy_function.invoke({"n": 1})
    assert result["event"] == {"n": 1}
    assert (result["name"], result["greeting"]) == ("Toy", "hello")
    assert 0 < result["left_ms"] <= 1500


def test_function_that_raises_reports_the_error_and_keeps_serving(toy_function: FunctionHost) -> None:
    with pytest.raises(FunctionError) as raised:
        toy_function.invoke({"raise": True})
    assert raised.value.payload["errorType"] == "ValueError"
    assert raised.value.payload["errorMessage"] == "bad event"
    assert toy_function.invoke({"n": 2})["event"] == {"n": 2}


def test_function_that_times_out_or_exits_is_replaced(toy_function: FunctionHost) -> None:
    with pytest.raises(FunctionError) as timed_out:
        toy_function.invoke({"sleep": 5})
    assert timed_out.value.payload["errorType"] == "Sandbox.Timedout"
    with pytest.raises(FunctionError) as exited:
        toy_function.invoke({"exit": True})
    assert exited.value.payload["errorType"] == "Runtime.ExitError"
    assert toy_function.invoke({"n": 3})["event"] == {"n": 3}


# --- the stream mapping --------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "record", "kept"),
    [
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": ["x"]}, {}, False),
        ({"a": {"b": ["x", "y"]}}, {"a": {"b": "y"}}, True),
        ({"a": [{"exists": True}]}, {"a": "any"}, True),
        ({"a": [{"exists": False}]}, {"a": "any"}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"prefix": "Un"}]}, {"a": "Undelivered"}, True),
        ({"a": [{"anything-but": ["Delivered"]}]}, {"a": "Rejected"}, True),
        ({"a": [{"anything-but": "Delivered"}]}, {"a": "Delivered"}, False),
    ],
)
def test_filter_patterns(pattern: dict[str, Any], record: dict[str, Any], kept: bool) -> None:
    assert matches_filter(pattern, record) is kept


def test_unsupported_filter_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="numeric"):
        matches_filter({"a": [{"numeric": [">", 1]}]}, {"a": 2})


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


# --- ports -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--api-port", "--cinnox-port", "--emulator-port"])
def test_a_port_already_taken_gives_a_clear_message(flag: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {"--api-port": "0", "--cinnox-port": "0", "--emulator-port": "0", flag: str(port)}
        done = subprocess.run(
            [*LOCAL_STACK, "local", *(x for kv in ports.items() for x in kv)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
            check=False,
            cwd=ROOT,
        )
    assert done.returncode == 2
    assert f"port {port}" in done.stderr
    assert "already in use" in done.stderr


def _processes_using(marker: str) -> list[int]:
    """Processes whose environment mentions marker (the stack gives its children the emulator's URL)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_local_serves_alerts_live_and_stops_cleanly_on_ctrl_c() -> None:
    # Given `make local` running, with its emulator on a port of our choosing
    port = free_port()
    command = [*LOCAL_STACK, "local", "--api-port", "0", "--cinnox-port", "0", "--emulator-port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    assert process.stdout is not None
    printed_lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or []:
            printed_lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    lines: list[str] = []
    rest = ""
    try:
        while not lines or not lines[-1].startswith("Alerts, as they are published"):
            lines.append(printed_lines.get(timeout=60))
        printed = "".join(lines)
        url = next(line.split()[-1] for line in lines if line.strip().startswith("webhook URL"))
        app_id = next(line.split()[-1] for line in lines if line.strip().startswith("AppID"))
        assert "curl -s -X POST" in printed
        # When a Rejected TDR and a challenge are posted to the printed URL
        body = json.dumps(tdr(AppID=app_id, TransactionID="live-0001", Status="Rejected", ResponseCode="400"))
        status, answer = http_post(url, body.encode(), {"Content-Type": "application/json"})
        assert status == 200
        assert json.loads(answer)["result"]["duplicate"] is False
        assert http_post(url, b'{"challenge": "c-live"}', {})[1] == b'{"code":0,"result":{"challenge":"c-live"}}'
        # Then its alert is printed within seconds
        alert = printed_lines.get(timeout=10)
        assert "Rejected" in alert
        assert "live-0001" in alert
    finally:
        # And Ctrl-C unsubscribes and leaves no process behind
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        while not printed_lines.empty():
            rest += printed_lines.get()
    assert process.returncode == 0
    assert "CinnoxSubscription: SUCCESS" in rest
    assert _processes_using(f"127.0.0.1:{port}") == []


class _RepeatingStream:
    """A dynamodbstreams client that, like moto after two concurrent writes shared a sequence
    number, returns one record a second time on the next read."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self._pages = pages

    def client(self, service: str) -> _RepeatingStream:
        return self

    def describe_stream(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-0"}]}}

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        return {"ShardIterator": "iterator"}

    def get_records(self, **_: Any) -> dict[str, Any]:
        return {"Records": self._pages.pop(0) if self._pages else [], "NextShardIterator": "iterator"}


def test_stream_mapping_delivers_each_record_once_even_when_moto_repeats_one() -> None:
    """DynamoDB Developer Guide, "Change data capture for DynamoDB Streams": each stream record appears exactly once."""

    # Given a stream that returns record b twice (same eventID, as moto's race does)
    def record(event_id: str, sequence: str) -> dict[str, Any]:
        return {"eventID": event_id, "eventName": "INSERT", "dynamodb": {"SequenceNumber": sequence}}

    stream = _RepeatingStream([[record("a", "1"), record("b", "2")], [record("b", "2"), record("c", "3")]])
    mapping = StreamMapping(MappingConfig(stream_arn="arn:stream"), lambda event: None, stream)  # type: ignore[arg-type]
    # When the mapping polls twice
    first, second = mapping._poll(), mapping._poll()
    # Then b is delivered once
    assert [r["eventID"] for r in first + second] == ["a", "b", "c"]
