"""The local stack's parts that need no server: the demo's accounting, a day of traffic, filter patterns, each
stream record delivered once."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest

from local_stack.demo import Account, check
from local_stack.gateway import to_http
from local_stack.streams import MappingConfig, StreamMapping
from local_stack.template import matches_filter
from local_stack.traffic import Outcome, plan_day


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


def test_non_proxy_result_becomes_a_json_200() -> None:
    assert to_http({"ok": True}) == (200, {"Content-Type": "application/json"}, b'{"ok": true}')
    assert to_http(
        {"statusCode": 204, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True, "cookies": ["c=1"]}
    ) == (204, {"Set-Cookie": "c=1"}, b"\x00")


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


# --- tumbling windows: Lambda Developer Guide, "Using AWS Lambda with Amazon DynamoDB" (services-ddb-windows) ---


class _WindowedFunction:
    """A stand-in function for a mapping with a tumbling window: counts the records in its state."""

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._answers = answers or []

    def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if self._answers:
            return self._answers.pop(0)
        return {"state": {"seen": event["state"].get("seen", 0) + len(event["Records"])}}


def _windowed_mapping(function: _WindowedFunction, *, max_retries: int = -1) -> StreamMapping:
    config = MappingConfig(stream_arn="arn:stream", tumbling_window=900, max_retries=max_retries)
    stream = _RepeatingStream([])
    mapping = StreamMapping(config, function, stream, retry_pause=0.0)  # type: ignore[arg-type]
    return mapping


def _windowed_record(event_id: str, sequence: str, created: int) -> dict[str, Any]:
    return {"eventID": event_id, "dynamodb": {"SequenceNumber": sequence, "ApproximateCreationDateTime": created}}


WINDOW_START = 1_795_996_800  # 2026-11-30T00:00:00Z, a multiple of 900


def test_a_windowed_mapping_sends_the_shard_window_and_state_and_passes_the_state_back() -> None:
    # Given a mapping with a 900 s tumbling window, whose stream's shard is "shard-0"
    function = _WindowedFunction()
    mapping = _windowed_mapping(function)
    mapping._first_sight(_windowed_record("a", "1", WINDOW_START), "shard-0")
    mapping._first_sight(_windowed_record("b", "2", WINDOW_START + 10), "shard-0")
    # When two batches of the same window are delivered
    mapping._deliver([_windowed_record("a", "1", WINDOW_START)])
    mapping._deliver([_windowed_record("b", "2", WINDOW_START + 10)])
    # Then each event carries the shard, the window, the stream's ARN and the state the last answer returned
    first, second = function.events
    assert first["shardId"] == "shard-0"
    assert first["window"] == {"start": "2026-11-30T00:00:00Z", "end": "2026-11-30T00:15:00Z"}
    assert first["eventSourceARN"] == "arn:stream"
    assert (first["isFinalInvokeForWindow"], first["isWindowTerminatedEarly"]) == (False, False)
    assert (first["state"], second["state"]) == ({}, {"seen": 1})


def test_a_window_closes_with_a_final_invoke_without_records() -> None:
    # Given a window with a record in it
    function = _WindowedFunction()
    mapping = _windowed_mapping(function)
    mapping._deliver([_windowed_record("a", "1", WINDOW_START)])
    # When a record of the next window comes, then the clock passes that window's end
    mapping._deliver([_windowed_record("b", "2", WINDOW_START + 900)])
    mapping._close_windows(WINDOW_START + 1800)
    # Then each window got a final invoke with its state and no records, the next window a fresh state
    assert [(len(e["Records"]), e["isFinalInvokeForWindow"], e["state"]) for e in function.events] == [
        (1, False, {}),
        (0, True, {"seen": 1}),
        (1, False, {}),
        (0, True, {"seen": 1}),
    ]
    assert mapping.stats.final_invokes == 2


def test_an_answer_without_state_is_a_failed_invocation() -> None:
    """ "If the response does not contain a state property, Lambda considers this a failed invocation." """
    # Given a function that first answers without state (as a handler returning None would)
    function = _WindowedFunction([None, {"batchItemFailures": []}])
    mapping = _windowed_mapping(function)
    # When a batch is delivered
    mapping._deliver([_windowed_record("a", "1", WINDOW_START)])
    # Then both state-less answers failed the batch, and it was retried until an answer carried state
    assert [len(e["Records"]) for e in function.events] == [1, 1, 1]
    assert mapping.stats.function_errors == 2


def test_the_template_metrics_mapping_reads_its_window_and_parallelization(template: Any) -> None:
    properties = template.resource("MetricsFunction")["Properties"]["Events"]["Stored"]["Properties"]
    config = MappingConfig.from_properties({**properties, "Stream": "arn:stream", "FilterCriteria": None}, {})
    assert (config.tumbling_window, config.parallelization_factor) == (900, 1)
