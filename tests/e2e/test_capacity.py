"""Capacity at the edge, end to end: the real local stack, its throttle at 20/s, driven below then above it.

AWS rules checked here (the evaluators themselves: tests/unit/test_capacity.py):
- "Throttling requests to your HTTP API" (API Gateway Developer Guide): a token bucket per route,
  ThrottlingRateLimit tokens a second up to a bucket of ThrottlingBurstLimit; over it, 429.
- "Monitoring HTTP APIs": HTTP APIs publish no throttle metric, so the 429s are counted from the
  access log ("Customizing HTTP API access logs": the Format's $context variables).
- CloudWatch "Using Amazon CloudWatch alarms" (Statistic over Period against Threshold).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_stack.gateway import TOO_MANY_REQUESTS
from local_stack.stack import LocalStack, StackOptions
from local_stack.template import Template
from local_stack.traffic import http_post
from support import access_log_line

RATE, BURST = 20, 10  # low limits, set through the stack's parameters as a deployer would
APP = "capacity-app-0001"


# --- through the real local stack, past the limit ------------------------------------------------


@dataclass
class Sent:
    transaction_id: str
    status: int
    body: bytes


@dataclass
class Run:
    """What the scenario sent and what the stack made of it, phase by phase."""

    stack: LocalStack
    secret: str
    below: list[Sent] = field(default_factory=list)
    below_metric: float | None = None
    below_alarm: str = ""
    above: list[Sent] = field(default_factory=list)
    above_seconds: float = 0.0
    above_metric: float | None = None
    above_alarm: str = ""
    stored: set[str] = field(default_factory=set)
    log_lines: list[str] = field(default_factory=list)


def _tdr(transaction_id: str) -> bytes:
    return json.dumps(
        {
            "Type": "tdr",
            "AppID": APP,
            "ServiceID": "svc-capacity",
            "TransactionID": transaction_id,
            "RecipientNumber": 85291234567,
            "RecipientCountry": "HK",
            "Status": "Submitted",
        }
    ).encode()


def _post(url: str, transaction_id: str) -> Sent:
    status, body = http_post(url, _tdr(transaction_id), {"Content-Type": "application/json"})
    return Sent(transaction_id, status, body)


def _throttled_sum(stack: LocalStack, since: datetime) -> float | None:
    """WebhookThrottled's Sum since ``since``, from the emulator's CloudWatch."""
    assert stack.aws is not None
    alarm = stack.properties("WebhookThrottledAlarm")
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    answer = stack.aws.client("cloudwatch").get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        StartTime=since,
        EndTime=end,
        Period=3600,
        Statistics=["Sum"],
    )
    points = answer["Datapoints"]
    return sum(float(p["Sum"]) for p in points) if points else None


def _wave(url: str, prefix: str, senders: int) -> list[Sent]:
    """``senders`` TDRs posted at once: each sender waits at a barrier, then posts one."""
    barrier = threading.Barrier(senders)
    sent: list[Sent] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        barrier.wait(timeout=30)
        outcome = _post(url, f"{prefix}-{index:03d}")
        with lock:
            sent.append(outcome)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sent


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The real local stack with the throttle at 20 requests/s and a burst of 10, driven below then above it."""
    saved = dict(os.environ)
    options = StackOptions(
        app_id=APP,
        stack_name="capacity",
        log_dir=Path(tmp_path_factory.mktemp("capacity")),
        parameters={"ApiThrottlingRateLimit": str(RATE), "ApiThrottlingBurstLimit": str(BURST)},
        api_deploy_delay=0,
        concurrency={"WebhookFunction": 2},
    )
    stack = LocalStack(Template.load(), options)
    try:
        stack.start()
        assert stack.aws is not None
        secret = stack.secret("WebhookSecret")
        url = f"{stack.output('WebhookBaseUrl')}/{secret}"
        result = Run(stack, secret)
        since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)

        # Below: one sender, paced at half the rate; however slow this machine, it never outruns the bucket.
        for index in range(30):
            paced = time.monotonic() + 1 / (RATE / 2)
            result.below.append(_post(url, f"below-{index:03d}"))
            time.sleep(max(0.0, paced - time.monotonic()))
        stack.flush_logs()
        result.below_metric = _throttled_sum(stack, since)
        result.below_alarm = stack.alarm_state("WebhookThrottledAlarm").state

        # Above: waves of 40 senders released together, far more than the bucket holds.
        started = time.monotonic()
        for wave in range(3):
            result.above += _wave(url, f"above-{wave}", 40)
        result.above_seconds = time.monotonic() - started
        stack.flush_logs()
        result.above_metric = _throttled_sum(stack, since)
        result.above_alarm = stack.alarm_state("WebhookThrottledAlarm").state

        table = stack.output("TdrTableName")
        for page in stack.aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
            result.stored |= {item["transactionId"]["S"] for item in page["Items"]}
        [group] = stack.log_shippers
        logs = stack.aws.client("logs")
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            result.log_lines += [event["message"] for event in page["events"]]
        yield result
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_below_the_throttle_nothing_is_refused_and_nothing_is_lost(run: Run) -> None:
    """Throttling requests to your HTTP API: requests within the rate and burst are served."""
    # Given 30 TDRs at half the configured rate
    # Then every one was answered 200 and is in the table
    assert [sent.status for sent in run.below] == [200] * 30
    assert {sent.transaction_id for sent in run.below} <= run.stored
    # and the throttle metric counted no refusal, so the alarm is not in ALARM
    assert run.below_metric in (None, 0.0)
    assert run.below_alarm in ("OK", "INSUFFICIENT_DATA")


def test_above_the_throttle_every_refusal_is_api_gateways_429_and_nothing_refused_is_stored(run: Run) -> None:
    """Throttling requests to your HTTP API: over the limits, 429 Too Many Requests, the function not invoked."""
    refused = [sent for sent in run.above if sent.status != 200]
    accepted = [sent for sent in run.above if sent.status == 200]
    # Given 120 TDRs in waves of 40 at once, against a bucket of 10
    assert len(run.above) == 120
    # Then some were refused, every refusal being API Gateway's 429 and its body
    assert refused
    assert all(sent.status == 429 and sent.body == TOO_MANY_REQUESTS for sent in refused)
    # and nothing refused reached the table, and everything accepted did
    assert not {sent.transaction_id for sent in refused} & run.stored
    assert {sent.transaction_id for sent in accepted} <= run.stored


def test_the_bucket_admits_no_more_than_its_burst_and_rate(run: Run) -> None:
    """Throttling requests to your HTTP API: over any span, at most burst + rate x seconds are served."""
    accepted = sum(1 for sent in run.above if sent.status == 200)
    # A bound, not a timing: the span measured encloses every admission of the phase
    assert 1 <= accepted <= BURST + RATE * run.above_seconds + 1


def test_every_429_is_counted_by_the_metric_filter_and_the_alarm_fires(run: Run) -> None:
    """Monitoring HTTP APIs: no throttle metric, so WebhookThrottled is counted from the access log."""
    throttled = sum(1 for sent in run.above if sent.status == 429)
    # Then the metric's Sum is the number of 429s, and WebhookThrottledAlarm is in ALARM
    assert run.above_metric == throttled
    assert run.above_alarm == "ALARM"
    assert run.stack.apis["TdrApi"].throttled == throttled
    assert all(not shipper.stats.errors and not shipper.stats.dropped for shipper in run.stack.log_shippers.values())


def test_the_access_log_has_a_line_per_request_in_the_templates_format_and_never_the_secret(
    run: Run, template: Template
) -> None:
    """Customizing HTTP API access logs: the template's Format; the path (the secret) is not logged."""
    records = [json.loads(line) for line in run.log_lines]
    keys = set(json.loads(access_log_line(template)))
    # Every request of the scenario has its line (CINNOX's verification challenge too), in the Format
    assert len(records) >= len(run.below) + len(run.above)
    assert all(set(record) == keys for record in records)
    statuses = [record["status"] for record in records]
    assert statuses.count("429") == sum(1 for sent in run.above if sent.status == 429)
    # A throttled request never reached the integration
    assert {record["integrationLatency"] for record in records if record["status"] == "429"} == {"-"}
    # and the webhook's secret is in no line
    assert not [line for line in run.log_lines if run.secret in line]
