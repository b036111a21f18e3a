"""Capacity at the edge: the local gateway throttles as API Gateway does, and every refusal is counted.

AWS rules checked here:
- "Throttling requests to your HTTP API" (API Gateway Developer Guide): a token bucket per route,
  ThrottlingRateLimit tokens a second up to a bucket of ThrottlingBurstLimit; over it, 429.
- "Monitoring HTTP APIs": HTTP APIs publish no throttle metric, so the 429s are counted from the
  access log ("Customizing HTTP API access logs": the Format's $context variables).
- CloudWatch Logs "Filter pattern syntax for metric filters, subscription filters, filter log events,
  and Live Tail" (JSON patterns), and "Creating metrics from log events using filters" (MetricValue,
  DefaultValue).
- CloudWatch "Using Amazon CloudWatch alarms" (Statistic over Period against Threshold) and
  "Configuring how CloudWatch alarms treat missing data".
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local_stack.cli import _saturation, _step_figures
from local_stack.emulator import choose
from local_stack.gateway import AccessLogFormat, Throttle, TokenBucket
from local_stack.logs import (
    AlarmError,
    FilterPattern,
    FilterPatternError,
    LogEvent,
    MetricFilter,
    evaluate_alarm,
)
from local_stack.traffic import Delivery, Outcome, Sender, Step, StepRun, plan_day, send_stepped
from support import access_log_line, template_access_log_format

if TYPE_CHECKING:
    from local_stack.template import Template

RATE, BURST = 20, 10  # low limits, set through the stack's parameters as a deployer would


# --- the filter pattern evaluator, on lines in the template's Format --------------------------


def test_the_templates_metric_filter_counts_429_lines_and_nothing_else(template: Template) -> None:
    """Monitoring HTTP APIs: the 429s are counted from the access log, whose status is a string."""
    # Given the template's metric filter and a line per status the webhook's API answers
    pattern = FilterPattern(template.resource("ThrottledRequestsMetricFilter")["Properties"]["FilterPattern"])
    statuses = ["200", "400", "403", "404", "413", "429", "500"]
    lines = {status: access_log_line(template, status=status) for status in statuses}
    # Then only the 429 line matches
    assert [status for status, line in lines.items() if pattern.matches(line)] == ["429"]
    # and each line is JSON with the Format's fields
    assert json.loads(lines["429"])["status"] == "429"


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        ('{ $.status != "429" }', ["200", "404", "500"]),
        ('{ $.status = "4*" }', ["404", "429"]),
        ('{ $.status = "*9" }', ["429"]),
        ("{ $.status = 404 }", []),  # a number compares with JSON numbers only; status is a string
        ("{ $.status = 4* }", ["404", "429"]),  # a bare word that is not a number is a string
        ('{ $.status = "5*" || $.status = "429" }', ["429", "500"]),
        ('{ $.status = "4*" && $.method = "POST" }', ["404", "429"]),
        ('{ ($.status = "404" || $.status = "500") && $.routeKey = "POST /tdr/{secret}" }', ["500"]),
        ('{ $.status = "200" || $.status = "404" && $.method = "GET" }', ["200"]),  # && binds tighter
        ('{ $.nothing = "429" }', []),
        ("", ["200", "404", "429", "500"]),  # the empty pattern matches every event
    ],
)
def test_json_filter_patterns_on_the_templates_access_log_lines(
    template: Template, pattern: str, matched: list[str]
) -> None:
    """CloudWatch Logs Filter pattern syntax: =, !=, * in strings, &&, || and parentheses."""
    # Given lines for four statuses (the 404 is an unmatched route: no routeKey)
    lines = {
        "200": access_log_line(template, status="200"),
        "404": access_log_line(template, status="404", routeKey=""),
        "429": access_log_line(template, status="429", integrationLatency=""),
        "500": access_log_line(template, status="500"),
    }
    # Then the pattern matches exactly these
    assert [status for status, line in lines.items() if FilterPattern(pattern).matches(line)] == matched


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        ("{ $.latency > 100 }", [250]),
        ("{ $.latency >= 100 }", [100, 250]),
        ("{ $.latency < 100 }", [5]),
        ("{ $.latency <= 100 }", [5, 100]),
        ("{ $.latency = 1e2 }", [100]),
        ("{ $.latency != 100 }", [5, 250]),
        ('{ $.latency = "100" }', []),  # a string compares with JSON strings only
        ("{ $.items[1].latency > 1 }", [250]),
    ],
)
def test_numeric_comparisons_apply_to_json_numbers(pattern: str, matched: list[int]) -> None:
    """CloudWatch Logs Filter pattern syntax: numeric comparisons = != < > <= >=, array indexes."""
    events = {
        latency: json.dumps({"latency": latency, "items": [{}, {"latency": latency}] if latency > 200 else []})
        for latency in (5, 100, 250)
    }
    assert [latency for latency, line in events.items() if FilterPattern(pattern).matches(line)] == matched


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{ $.status IS NULL }", "IS NULL / IS TRUE / IS FALSE"),
        ("{ $.status NOT EXISTS }", "NOT EXISTS"),
        ("{ $.status = %4[0-9]+% }", "regular expressions"),
        ('"429"', "only JSON patterns"),
        ("[ip, user, status = 429]", "only JSON patterns"),
        ('{ $.status > "429" }', "a string takes = or != only"),
        ('{ $.status = "429" ', "ends where"),
        ('{ $.status = "429" } extra', "text after the closing }"),
        ('{ $.status "429" }', "where op was expected"),
        ('{ ($.status = "429" }', "where ) was expected"),
    ],
)
def test_syntax_the_evaluator_does_not_support_is_refused_clearly(pattern: str, message: str) -> None:
    """A pattern the local stack cannot evaluate fails at provisioning, never silently matches nothing."""
    with pytest.raises(FilterPatternError, match="filter pattern") as refused:
        FilterPattern(pattern)
    assert message in str(refused.value)


def test_a_lines_match_does_not_depend_on_json_key_order_or_spacing(template: Template) -> None:
    pattern = FilterPattern('{ $.status = "429" }')
    assert pattern.matches('{"method": "POST",   "status": "429"}')
    assert not pattern.matches("not json at all 429")


# --- the access log's Format ---------------------------------------------------------------


def test_the_templates_format_renders_json_with_every_field_and_never_the_path(template: Template) -> None:
    """Customizing HTTP API access logs: the $context variables of the Format; a missing value is "-"."""
    access_format = template_access_log_format(template)
    # Given the Format's variables
    assert "path" not in access_format.variables
    # When a 429 is rendered (no integration ran)
    record = json.loads(access_log_line(template, status="429", integrationLatency="", responseLength="31"))
    # Then every field is there, and those without a value are "-"
    assert record["status"] == "429"
    assert record["integrationLatency"] == "-"
    assert record["integrationError"] == "-"
    assert record["routeKey"] == "POST /tdr/{secret}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"path":"$context.path"}', "carries its secret"),
        ('{"p":"$context.http.path"}', "carries its secret"),
        ('{"x":"$context.authorizer.claims"}', "not a variable the local gateway writes"),
    ],
)
def test_a_format_the_gateway_cannot_write_safely_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccessLogFormat(text)


def test_values_are_json_escaped() -> None:
    line = AccessLogFormat('{"e":"$context.integrationErrorMessage"}').render({"integrationErrorMessage": 'a "b"\n'})
    assert json.loads(line) == {"e": 'a "b"\n'}


# --- the token bucket -------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    """Throttling requests to your HTTP API: burst = bucket size, rate = tokens added per second."""
    clock = _Clock()
    bucket = TokenBucket(Throttle(rate=20, burst=10), clock)
    # Given a full bucket: the burst passes at once, the next request is refused
    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]
    # When half a second passes: ten tokens came back, no more
    clock.now += 0.5
    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]
    # When a long time passes: the bucket holds no more than the burst
    clock.now += 60
    assert sum(bucket.take() for _ in range(50)) == 10
    # and a token given back (another bucket refused the request) is not lost
    bucket.give_back()
    assert bucket.take()


def test_throttle_settings_come_from_the_route_settings() -> None:
    assert Throttle.from_settings({"ThrottlingRateLimit": "20", "ThrottlingBurstLimit": "10"}) == Throttle(20, 10)
    assert Throttle.from_settings({}) is None
    assert Throttle.from_settings({"ThrottlingBurstLimit": 5}) == Throttle(10_000, 5)  # the account's rate
    with pytest.raises(ValueError, match="numbers"):
        Throttle.from_settings({"ThrottlingRateLimit": "fast"})
    with pytest.raises(ValueError, match="negative"):
        Throttle.from_settings({"ThrottlingRateLimit": -1, "ThrottlingBurstLimit": 1})


def test_a_route_with_zero_limits_refuses_everything() -> None:
    bucket = TokenBucket(Throttle(rate=0, burst=0), _Clock())
    assert not any(bucket.take() for _ in range(3))


# --- metric filters and alarms ---------------------------------------------------------------


def _metric_filter(template: Template) -> MetricFilter:
    properties = dict(template.resource("ThrottledRequestsMetricFilter")["Properties"])
    properties["LogGroupName"] = "access-log"
    [transformation] = properties["MetricTransformations"]
    properties["MetricTransformations"] = [{**transformation, "MetricNamespace": "CinnoxSms"}]
    return MetricFilter.from_properties("ThrottledRequestsMetricFilter", properties)


def test_the_metric_filter_emits_one_per_429_and_its_default_when_none(template: Template) -> None:
    """Creating metrics from log events using filters: MetricValue per match, DefaultValue otherwise."""
    metric_filter = _metric_filter(template)
    statuses = ["200", "429", "429", "404"]
    events = [LogEvent(1_000 + i, access_log_line(template, status=s)) for i, s in enumerate(statuses)]
    # A batch with two 429s: Sum 2 over two samples
    datum = metric_filter.datum(events)
    assert datum is not None
    assert datum["MetricName"] == "WebhookThrottled"
    assert datum["StatisticValues"] == {"SampleCount": 2.0, "Sum": 2.0, "Minimum": 1.0, "Maximum": 1.0}
    # A batch without: the DefaultValue 0, once
    quiet = metric_filter.datum(events[:1])
    assert quiet is not None
    assert quiet["StatisticValues"]["Sum"] == 0.0
    assert metric_filter.datum([]) is None


def test_a_metric_value_can_be_taken_from_the_event() -> None:
    metric_filter = MetricFilter.from_properties(
        "Latency",
        {
            "LogGroupName": "g",
            "FilterPattern": '{ $.status = "200" }',
            "MetricTransformations": [{"MetricNamespace": "N", "MetricName": "L", "MetricValue": "$.latency"}],
        },
    )
    lines = [json.dumps({"status": "200", "latency": v}) for v in ("41", "59", "-")]
    datum = metric_filter.datum([LogEvent(i, line) for i, line in enumerate(lines)])
    assert datum is not None
    assert datum["StatisticValues"] == {"SampleCount": 2.0, "Sum": 100.0, "Minimum": 41.0, "Maximum": 59.0}


@pytest.mark.parametrize(
    "change",
    [
        {"MetricTransformations": []},
        {"MetricTransformations": [{"MetricNamespace": "N", "MetricName": "M", "MetricValue": "one"}]},
        {
            "MetricTransformations": [
                {"MetricNamespace": "N", "MetricName": "M", "MetricValue": "1", "Dimensions": [{"Key": "k"}]}
            ]
        },
        {"FilterPattern": "{ $.status IS NULL }"},
    ],
)
def test_a_metric_filter_the_local_stack_cannot_apply_is_refused(change: dict[str, Any]) -> None:
    properties = {
        "LogGroupName": "g",
        "FilterPattern": '{ $.status = "429" }',
        "MetricTransformations": [{"MetricNamespace": "N", "MetricName": "M", "MetricValue": "1"}],
        **change,
    }
    with pytest.raises(FilterPatternError):
        MetricFilter.from_properties("F", properties)


def _alarm(template: Template, **changes: Any) -> dict[str, Any]:
    properties = dict(template.resource("WebhookThrottledAlarm")["Properties"])
    properties["Namespace"] = "CinnoxSms"
    return {**properties, **changes}


NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "sums", "state"),
    [
        ({}, [None], "OK"),  # TreatMissingData notBreaching: no data is good news
        ({}, [0.0], "OK"),  # the DefaultValue 0: logs came, no 429
        ({}, [1.0], "ALARM"),
        ({"TreatMissingData": "missing"}, [None], "INSUFFICIENT_DATA"),
        ({"TreatMissingData": "breaching"}, [None], "ALARM"),
        ({"TreatMissingData": "ignore"}, [None], "INSUFFICIENT_DATA"),  # keeps the state it had
        ({"EvaluationPeriods": 3, "DatapointsToAlarm": 2}, [1.0, 0.0, 2.0], "ALARM"),
        ({"EvaluationPeriods": 3, "DatapointsToAlarm": 2}, [None, 0.0, 2.0], "OK"),
        ({"EvaluationPeriods": 3}, [1.0, 1.0, 0.0], "OK"),
        ({"ComparisonOperator": "LessThanOrEqualToThreshold", "Threshold": 5}, [5.0], "ALARM"),
    ],
)
def test_the_throttle_alarm_evaluates_as_cloudwatch_would(
    template: Template, changes: dict[str, Any], sums: list[float | None], state: str
) -> None:
    """Using Amazon CloudWatch alarms; Configuring how CloudWatch alarms treat missing data."""
    properties = _alarm(template, **changes)
    windows: list[tuple[datetime, datetime]] = []
    values = iter(sums)

    def statistic(start: datetime, end: datetime) -> float | None:
        windows.append((start, end))
        return next(values)

    evaluation = evaluate_alarm("WebhookThrottledAlarm", properties, statistic, NOW)
    assert evaluation.state == state
    # The periods evaluated are the last ones before now, oldest first, each one Period long
    period = timedelta(seconds=int(properties["Period"]))
    assert windows[-1] == (NOW - period, NOW)
    assert all(end - start == period for start, end in windows)


def test_alarms_the_local_stack_cannot_evaluate_are_refused(template: Template) -> None:
    math = dict(template.resource("WebhookErrorsAlarm")["Properties"])
    with pytest.raises(AlarmError, match="metric math"):
        evaluate_alarm("WebhookErrorsAlarm", math, lambda start, end: None, NOW)
    with pytest.raises(AlarmError, match="Statistic"):
        evaluate_alarm("A", _alarm(template, Statistic="p99"), lambda start, end: None, NOW)
    with pytest.raises(AlarmError, match="ComparisonOperator"):
        evaluate_alarm("A", _alarm(template, ComparisonOperator="LessThanLowerThreshold"), lambda start, end: None, NOW)


def test_conditional_properties_are_chosen_before_provisioning() -> None:
    """A conditional WarmThroughput (Fn::If with AWS::NoValue) reaches the emulator chosen, or not at all."""
    properties = {
        "BillingMode": "PAY_PER_REQUEST",
        "WarmThroughput": {"Fn::If": ["IsWarm", {"WriteUnitsPerSecond": {"Ref": "W"}}, {"Ref": "AWS::NoValue"}]},
        "Tags": [{"Fn::If": ["IsWarm", {"Key": "warm"}, {"Ref": "AWS::NoValue"}]}],
    }
    assert choose(properties, {"IsWarm": False}) == {"BillingMode": "PAY_PER_REQUEST", "Tags": []}
    assert choose(properties, {"IsWarm": True})["WarmThroughput"] == {"WriteUnitsPerSecond": {"Ref": "W"}}


# --- make load: the stepped load's pacing and figures ---------------------------------------------


class _InstantSender(Sender):
    """Answers 200 at once, 429 for deliveries whose label asks for it: the pacing alone is under test."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/tdr/x")
        self.sent_at: list[float] = []

    def send(self, delivery: Delivery, scheduled: float | None = None) -> Outcome:
        self.sent_at.append(time.monotonic())
        status = 429 if delivery.label == "refuse" else 200
        return Outcome(delivery, status, None, 1, time.monotonic() - (scheduled or time.monotonic()))


def test_a_stepped_load_offers_each_step_at_its_rate_and_stops_when_the_deliveries_run_out() -> None:
    _, deliveries = plan_day(40, app_id="app", seed=1, malformed=0)
    sender = _InstantSender()
    # Given steps of 40/s then 80/s for half a second each, and more deliveries than they take
    runs = send_stepped(sender, deliveries, [Step(40, 0.5), Step(80, 0.5), Step(80, 30)], workers=4)
    # Then each step sent its share (the last one only what was left), in order, none twice
    assert [len(r.outcomes) for r in runs] == [20, 40, len(deliveries) - 60]
    assert [o.delivery for r in runs for o in r.outcomes] == deliveries
    # and the first two steps were paced, not sent at once: their last send was due after 0.475 s
    assert all(r.seconds >= (len(r.outcomes) - 1) / r.step.rate for r in runs[:2])


def test_load_figures_count_429s_apart_and_call_lost_only_what_is_neither_stored_nor_refused() -> None:
    _, deliveries = plan_day(3, app_id="app", seed=1, malformed=0)
    tdrs = [d for d in deliveries if d.key][:4]
    outcomes = [
        Outcome(tdrs[0], 200, None, 1, 0.01),
        Outcome(tdrs[1], 429, None, 1, 0.001),
        Outcome(tdrs[2], 200, None, 1, 0.02),  # answered 200, yet not in the table: lost
        Outcome(tdrs[3], 503, None, 5, 0.5),  # never accepted after every retry: lost
    ]
    stored = {key for key in (tdrs[0].key,) if key}
    figures = _step_figures(StepRun(Step(4, 1), outcomes, 1.0), stored)
    assert figures["throttled_429"] == 1
    assert figures["lost"] == 2
    assert figures["achieved_per_second"] == 2.0
    # A step that keeps up (answers, 429s included, within 10 % of the offered rate) is not saturation
    kept_up = {**figures, "achieved_per_second": 3.0, "throttled_429": 1}
    assert _saturation([kept_up]) is None
    # one far below its offered rate is: the path saturates at the best rate any step achieved
    assert _saturation([kept_up, {**figures, "offered_per_second": 40.0}]) == 3.0
