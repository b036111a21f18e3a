"""The local stack's parts that need no server: the demo's accounting (no-final-status account included), a day
of traffic (carriers' delays, withheld final statuses), filter patterns, each stream record delivered once, and
ScheduleV2 schedules."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cinnox_sms.settings import NoFinalStatusSettings
from cinnox_sms_cli.report import CountryLine
from local_stack.cli import delay_ranking_check, report_check
from local_stack.demo import CLOCK_OFFSET_VARIABLE, Account, NoFinalAccount, check, no_final_checks, no_final_lines
from local_stack.emulator import choose
from local_stack.gateway import to_http
from local_stack.runtime import FunctionError
from local_stack.schedules import Schedule, ScheduleError, ScheduleRun, rate_seconds, schedule_event
from local_stack.stack import LocalStack, StackOptions, fresh_log_dir
from local_stack.streams import MappingConfig, StreamMapping
from local_stack.template import ROOT, Template, matches_filter
from local_stack.traffic import (
    COUNTRIES,
    DEMO_SECONDS,
    FAST_COUNTRY,
    SLOW_COUNTRY,
    Delivery,
    Outcome,
    Sender,
    plan_day,
)


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


# --- ScheduleV2: EventBridge Scheduler User Guide, Schedule types: rate-based schedules --------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
    ],
)
def test_rate_expressions_run_at_their_period(expression: str, seconds: int) -> None:
    """EventBridge Scheduler User Guide, Schedule types: rate-based schedules (`rate(value unit)`, a positive whole
    value; the units as the API Reference's CreateSchedule lists them: minute | minutes | hour | hours | day | days)."""
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression",
    ["cron(0 * * * ? *)", "at(2026-11-29T07:00:00)", "rate(0 hours)", "rate(5 weeks)", "rate(1.5 hours)", "hourly", ""],
)
def test_what_the_local_stack_cannot_run_is_refused_naming_the_aws_page(expression: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        rate_seconds(expression)
    assert "EventBridge Scheduler User Guide, Schedule types: rate-based schedules" in str(refused.value)


def test_the_event_is_the_input_or_an_empty_object_for_schedulers_default_notification() -> None:
    """EventBridge Scheduler API Reference, Target: Input is well-formed JSON for a templated Lambda target; without
    it Scheduler "delivers a default notification" (its shape unspecified: `{}` here)."""
    assert schedule_event({}) == {}
    assert schedule_event({"Input": '{"check": "now"}'}) == {"check": "now"}
    with pytest.raises(ScheduleError, match="well-formed JSON"):
        schedule_event({"Input": "not json"})


@pytest.mark.parametrize(("hours", "enabled"), [("24", True), ("0", False)])
def test_the_templates_schedule_is_enabled_unless_no_final_status_hours_is_0(
    template: Template, hours: str, enabled: bool
) -> None:
    """AWS::Scheduler::Schedule State: ENABLED or DISABLED, chosen here by the template's !If on NoFinalStatusHours."""
    conditions = template.conditions({**template.parameter_defaults(), "NoFinalStatusHours": hours})
    event = template.resource("NoFinalStatusFunction")["Properties"]["Events"]["Hourly"]
    assert event["Type"] == "ScheduleV2"
    properties = choose(event["Properties"], conditions)
    schedule = Schedule.from_properties("NoFinalStatusFunction", "Hourly", properties, lambda f, e: None)
    assert (schedule is not None) is enabled
    if schedule is not None:
        assert (schedule.period, schedule.event) == (3600, {})
        compressed = Schedule.from_properties("F", "Hourly", properties, lambda f, e: None, every=30)
        assert compressed is not None
        assert compressed.period == 30


def test_start_and_end_dates_are_refused_rather_than_ignored() -> None:
    with pytest.raises(ScheduleError, match="StartDate"):
        Schedule.from_properties("F", "E", {"ScheduleExpression": "rate(1 hour)", "StartDate": "x"}, lambda f, e: None)


def test_a_schedule_runs_at_once_then_every_period_and_stops_cleanly() -> None:
    """Schedule types: a rate-based schedule without a StartDate starts invoking its target immediately."""
    calls: list[tuple[str, dict[str, Any], float]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, int]:
        calls.append((function, event, time.monotonic()))
        return {"found": 0}

    schedule = Schedule("F", "Hourly", "rate(1 hour)", 0.2, {}, invoke)
    started = time.monotonic()
    schedule.start()
    deadline = started + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    schedule.close(timeout=2)
    count = len(calls)
    time.sleep(0.3)
    assert len(calls) == count >= 3  # stopped: no run after close
    first, second, third = (at for _, _, at in calls[:3])
    assert first - started < 0.1  # the first run at once
    assert second - first >= 0.19
    assert third - first >= 0.39  # then every period
    assert all(function == "F" and event == {} for function, event, _ in calls)
    assert [run.result for run in schedule.runs] == [{"found": 0}] * count


def test_a_failed_run_is_logged_and_the_schedule_goes_on() -> None:
    lines: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> None:
        raise FunctionError({"errorType": "ValueError", "errorMessage": "boom"})

    schedule = Schedule("F", "Hourly", "rate(1 hour)", 3600, {}, invoke, log=lines.append)
    run = schedule.fire()
    assert (run.ok, run.error) == (False, "ValueError: boom")
    assert "failed: ValueError: boom" in lines[0]


def test_without_event_sources_no_schedule_starts(template: Template) -> None:
    """`make bench` turns the event sources off: no poller, no scheduler thread."""
    stack = LocalStack(template, StackOptions(event_sources=False))
    stack._start_mappings()
    assert (stack.schedules, stack.mappings, stack.queue_mappings) == ([], [], [])


# --- the demo's clock hook: local only ------------------------------------------------------------------------------


def test_the_clock_offset_is_local_only_and_never_set_by_the_template(template: Template) -> None:
    environment = {
        "ROLLUP_TABLE_NAME": "r",
        "TDR_TABLE_NAME": "t",
        "ALERT_TOPIC_ARN": "a",
        "DIGEST_TOPIC_ARN": "d",
        "STACK_NAME": "s",
    }
    assert NoFinalStatusSettings.model_validate(environment).clock_offset_seconds == 0
    shifted = {**environment, CLOCK_OFFSET_VARIABLE: "90000"}
    assert NoFinalStatusSettings.model_validate(shifted).clock_offset_seconds == 90000
    # No function of the template, Globals included, sets it: deployed, the check's clock is the real one.
    for name in template.resources_of_type("AWS::Serverless::Function"):
        assert CLOCK_OFFSET_VARIABLE not in template.function(name)["Environment"]["Variables"]
    assert CLOCK_OFFSET_VARIABLE not in (ROOT / "template.yaml").read_text()


# --- the demo's day: carriers' delays, and SMS left without a final status -------------------------------------------


def test_withheld_sms_lose_their_final_tdr_in_one_country_and_the_others_keep_their_outcomes() -> None:
    full, _ = plan_day(300, app_id="app", seed=7, burst=50)
    messages, deliveries = plan_day(300, app_id="app", seed=7, burst=50, withhold=8, withhold_country="ID")
    withheld = {m.transaction_id for m in messages if m.withheld}
    assert len(withheld) == 8
    assert {m.country.code for m in messages if m.withheld} == {"ID"}
    assert [(m.transaction_id, m.outcome) for m in messages] == [(m.transaction_id, m.outcome) for m in full]
    sent = {d.key for d in deliveries if d.key}
    assert all((tid, "Submitted") in sent for tid in withheld)
    assert not [key for key in sent if key[0] in withheld and key[1] != "Submitted"]


@pytest.mark.parametrize("seconds", [20.0, 40.0])
def test_each_country_gets_its_carriers_delay_within_the_replay(seconds: float) -> None:
    messages, deliveries = plan_day(300, app_id="app", seed=7, burst=20, seconds=seconds)
    due: dict[tuple[str, str], float] = {d.key: d.due for d in deliveries if d.key and d.kind == "tdr"}
    country = {m.transaction_id: m.country for m in messages}
    scale = seconds / DEMO_SECONDS
    overtaken = 0
    for m in messages:
        delay = due[(m.transaction_id, m.outcome.value)] - due[(m.transaction_id, "Submitted")]
        if delay < 0:
            overtaken += 1  # a final status before its Submitted TDR, by under a second
            assert delay > -1
            continue
        low, high = country[m.transaction_id].delay
        assert low * scale <= delay <= high * scale
    assert 0 < overtaken < len(messages) / 10
    assert max(d.due for d in deliveries if d.kind == "tdr") <= seconds
    slow = next(c for c in COUNTRIES if c.code == SLOW_COUNTRY)
    fast = next(c for c in COUNTRIES if c.code == FAST_COUNTRY)
    assert fast.delay[1] < 10 <= 20 <= slow.delay[0]  # in different buckets of the report's histogram


def test_scheduled_sending_posts_each_delivery_when_it_is_due() -> None:
    _, deliveries = plan_day(5, app_id="app", seed=1, malformed=0, seconds=10)
    deliveries = [dataclasses.replace(d, due=i * 0.05) for i, d in enumerate(reversed(deliveries))]
    sender = _InstantSender()
    started = time.monotonic()
    outcomes = sender.send_scheduled(deliveries)
    assert [o.delivery for o in outcomes] == deliveries  # in the order given
    offsets = sorted(at - started for at in sender.sent_at)
    assert all(offset >= d.due - 0.01 for offset, d in zip(offsets, deliveries, strict=True))
    assert offsets[-1] >= deliveries[-1].due


class _InstantSender(Sender):
    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/tdr/x", senders=2)
        self.sent_at: list[float] = []

    def send(self, delivery: Delivery, scheduled: float | None = None) -> Outcome:
        self.sent_at.append(time.monotonic())
        return Outcome(delivery, 200, None, 1, 0.0)


# --- the demo's no-final-status account ----------------------------------------------------------------------------


def _run(result: dict[str, Any]) -> ScheduleRun:
    return ScheduleRun(0.0, 0.1, result)


def _no_final(**changes: Any) -> NoFinalAccount:
    withheld = {"id-1": "ID", "id-2": "ID", "ng-1": "NG"}
    digest = {
        "type": "cinnox-sms-no-final-status",
        "total": 3,
        "byCountryAndHour": [
            {"hour": "2026-11-29T07", "country": "ID", "sms": 2},
            {"hour": "x", "country": "NG", "sms": 1},
        ],
    }
    values: dict[str, Any] = {
        "withheld": withheld,
        "deadline_hours": 24,
        "offset_hours": 25,
        "expression": "rate(1 hour)",
        "at_start": _run({"hours_checked": 48, "found": 0}),
        "runs": [_run({"found": 3, "digests": 1}), _run({"found": 0, "digests": 0})],
        "alerts": [Counter(list(withheld)), Counter()],
        "alert_countries": Counter(withheld.values()),
        "digests": [[digest], []],
    }
    values.update(changes)
    return NoFinalAccount(**values)


def test_the_no_final_status_account_passes_when_it_adds_up() -> None:
    checks = no_final_checks(_no_final())
    assert all(c.ok for c in checks), [c.text for c in checks if not c.ok]
    assert "\n".join(no_final_lines(_no_final())).count("ID") >= 1


@pytest.mark.parametrize(
    "fault",
    ["one missed", "one extra", "twice", "two digests", "second run found", "leaked", "no run at start", "failed"],
)
def test_the_no_final_status_account_catches_what_is_wrong(fault: str) -> None:
    account = _no_final()
    if fault == "one missed":
        account.alerts[0] = Counter({"id-1": 1, "ng-1": 1})
    elif fault == "one extra":
        account.alerts[0]["hk-9"] = 1
    elif fault == "twice":
        account.alerts[0]["id-1"] = 2
    elif fault == "two digests":
        account.digests[0] = account.digests[0] * 2
    elif fault == "second run found":
        account.runs[1] = _run({"found": 1})
        account.alerts[1] = Counter({"id-1": 1})
    elif fault == "leaked":
        account.leaked = {"id-1"}
        account.digest_batches_after = 1
    elif fault == "no run at start":
        account.at_start = None
    elif fault == "failed":
        account.runs[0] = ScheduleRun(0.0, 0.1, error="Sandbox.Timedout: late")
    assert not all(c.ok for c in no_final_checks(account))


def test_the_report_check_counts_withheld_sms_as_pending() -> None:
    account = _account()
    account.messages[0] = dataclasses.replace(account.messages[0], withheld=True)
    truth: dict[str, CountryLine] = {}
    for sms in account.messages:
        line = truth.setdefault(sms.country.code, CountryLine(sms.country.code))
        line.sent += 1
        if sms.withheld:
            line.pending += 1
        else:
            setattr(line, sms.outcome.value.lower(), getattr(line, sms.outcome.value.lower()) + 1)
    assert report_check(account, list(truth.values())).ok
    truth[account.messages[0].country.code].pending = 0
    assert not report_check(account, list(truth.values())).ok


@pytest.mark.parametrize(
    ("p50", "ok"),
    [
        ({"SG": 5.0, "HK": 5.0, "BR": 22.0}, True),
        ({"SG": 5.0, "HK": 4.0, "BR": 22.0}, False),  # another country quicker than the fastest
        ({"SG": 5.0, "HK": 30.0, "BR": 22.0}, False),  # another slower than the slowest
        ({"SG": 22.0, "HK": 5.0, "BR": 5.0}, False),
        ({"SG": 5.0, "HK": 5.0}, False),  # the slow country has no estimate
    ],
)
def test_the_report_must_rank_countries_by_their_carriers_delays(p50: dict[str, float], ok: bool) -> None:
    rows = [{"country": country, "p50_delivered_est": value} for country, value in p50.items()]
    rows.append({"country": "all", "p50_delivered_est": 1.0})
    assert delay_ranking_check(rows).ok is ok


def test_each_run_starts_with_an_empty_log_folder(tmp_path: Path) -> None:
    # Given an earlier run's function logs (named after physical names, new each run) and a file of someone else's
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "cinnox-sms-local-AlertFunction-1I8Q11O7KWQQ.log").write_text("old run\n")
    (logs / "moto.log").write_text("old run\n")
    (logs / "notes.txt").write_text("mine\n")
    # When a run prepares its folder
    fresh_log_dir(logs)
    # Then only this run's logs will be in it: the earlier logs are gone, nothing else is touched
    assert sorted(p.name for p in logs.iterdir()) == ["notes.txt"]
    # And a folder that does not exist yet is made
    fresh_log_dir(tmp_path / "new" / "logs")
    assert (tmp_path / "new" / "logs").is_dir()
