"""Issue 20, item 7: a slow probe of the webhook's URL is counted and alarmed on, and costs no line of ours.

AWS rules relied on:
- API Gateway, "Monitoring HTTP APIs": HTTP APIs publish 4xx as one metric, nothing by route or reason, so the
  wrong secrets (404 on the webhook's route) are counted from the access log ("Customizing HTTP API access logs":
  $context.status and $context.routeKey; a request no route matches has routeKey "-").
- CloudWatch Logs, "Filter pattern syntax for metric filters, subscription filters, filter log events, and Live
  Tail" (JSON patterns, && and a * wildcard in a quoted string) and "Creating metrics from log events using
  filters" (MetricValue per match, DefaultValue otherwise).
- CloudWatch, "Using Amazon CloudWatch alarms" (Statistic over Period against Threshold).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from local_stack.logs import FilterPattern, LogEvent, MetricFilter, evaluate_alarm
from local_stack.template import ROOT
from support import access_log_line, tdr

if TYPE_CHECKING:
    import pytest

    from local_stack.template import Template
    from support import LogLines, Post

SHORT = 160  # bytes: what "one short line" means here


def test_a_wrong_secret_writes_at_most_one_short_line(
    post: Post, logs: LogLines, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a 'request refused' JSON line and an EMF blob (TdrRefused, Reason NotFound), ~0.6 KB, per probe."""
    # Given the webhook, its log buffer and stdout read so far
    logs.seek(0)
    logs.truncate()
    capsys.readouterr()
    # When a TDR is posted to a wrong URL
    answer = post(tdr(), path="/tdr/not-the-secret")
    # Then it is answered 404, as always
    assert (answer.status, answer.body) == (404, {"code": 404, "message": "not found"})
    # And the function wrote at most one short line of its own (the access log has the request's line)
    lines = [line for line in (logs.getvalue() + capsys.readouterr().out).splitlines() if line.strip()]
    assert len(lines) <= 1, lines
    assert all(len(line.encode()) <= SHORT for line in lines), lines


def test_wrong_secrets_are_counted_from_the_access_log(template: Template) -> None:
    """Monitoring HTTP APIs: no metric by route or status; the access log has both."""
    # Given the template's filter on the API's access log
    properties = template.resource("WrongSecretRequestsMetricFilter")["Properties"]
    pattern = FilterPattern(properties["FilterPattern"])
    assert properties["LogGroupName"] == {"Ref": "ApiAccessLogGroup"}
    # When lines in the API's own Format are read: every status on the route, and a 404 no route matched
    statuses = ["200", "400", "403", "404", "413", "429", "500", "503"]
    on_route = {status: access_log_line(template, status=status) for status in statuses}
    no_route = access_log_line(template, status="404", routeKey="-", integrationLatency="-")
    # Then only the webhook's 404 (a wrong secret) is counted: API Gateway's own 404 invokes nothing
    assert [status for status, line in on_route.items() if pattern.matches(line)] == ["404"]
    assert not pattern.matches(no_route)
    [transformation] = properties["MetricTransformations"]
    assert (transformation["MetricName"], transformation["MetricValue"]) == ("WebhookWrongSecret", "1")
    assert transformation["MetricNamespace"] == {"Ref": "MetricsNamespace"}


def test_a_slow_probe_raises_the_alarm_the_local_stack_evaluates(template: Template) -> None:
    """Using Amazon CloudWatch alarms: Sum of WebhookWrongSecret over 15 minutes above 50, to the ops topic."""
    # Given the filter and the alarm as the local stack applies and evaluates them
    properties = {**template.resource("WrongSecretRequestsMetricFilter")["Properties"], "LogGroupName": "access"}
    [transformation] = properties["MetricTransformations"]
    properties["MetricTransformations"] = [{**transformation, "MetricNamespace": "CinnoxSms"}]
    metric_filter = MetricFilter.from_properties("WrongSecretRequestsMetricFilter", properties)
    alarm = {**template.resource("WebhookWrongSecretAlarm")["Properties"], "Namespace": "CinnoxSms"}
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("WebhookWrongSecret", "Sum", 900)
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "OpsTopic"}]
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def state(probes: int) -> str:
        # When a probe far below the throttle (one request every ~17 s) sends this many wrong secrets in 15
        # minutes, among genuine TDRs
        lines = [access_log_line(template, status="404") for _ in range(probes)]
        lines += [access_log_line(template, status="200") for _ in range(100)]
        datum = metric_filter.datum([LogEvent(i, line) for i, line in enumerate(lines)])
        assert datum is not None
        counted = datum["StatisticValues"]["Sum"]
        assert counted == probes
        return evaluate_alarm("WebhookWrongSecretAlarm", alarm, lambda start, end: counted, now).state

    # Then the threshold's 50 leave it OK, and one more raises it
    assert state(0) == "OK"
    assert state(50) == "OK"
    assert state(51) == "ALARM"


def test_the_alarm_has_its_runbook_line() -> None:
    """docs/operations.md: the alarm table's row and what to do when it fires."""
    operations = Path(ROOT, "docs", "operations.md").read_text()
    assert "| `WebhookWrongSecretAlarm` |" in operations
    assert "### When `WebhookWrongSecretAlarm` fires" in operations
