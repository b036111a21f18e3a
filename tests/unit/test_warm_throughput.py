"""The warm-throughput custom resource's decisions and answers, with DynamoDB and CloudFormation stood in.

AWS's rule: "Once increased, warm throughput values can't be decreased." (Amazon DynamoDB Developer
Guide, "Understanding DynamoDB warm throughput"). Against moto and the real handler:
tests/integration/test_warm_throughput.py; through the local stack's deploys: tests/e2e/test_warm_throughput.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from cinnox_sms.custom_resource import RESPONSE_LIMIT_BYTES, CloudFormationResponder
from cinnox_sms.warm_throughput import AWS_PAGE, AWS_RULE, WarmThroughputResource, refusal
from local_stack.template import ROOT


class Tables:
    """DynamoDB's DescribeTable and UpdateTable for one table at ``units`` warm write units."""

    def __init__(self, units: int = 4000, *, delay: float = 0.0, fail: bool = False) -> None:
        self.units = units
        self.updates: list[dict[str, int]] = []
        self._delay = delay
        self._fail = fail

    def describe_table(self, *, TableName: str) -> Any:
        time.sleep(self._delay)
        if self._fail:
            raise ConnectionError("DynamoDB unreachable")
        return {"Table": {"TableName": TableName, "WarmThroughput": {"WriteUnitsPerSecond": self.units}}}

    def update_table(self, *, TableName: str, WarmThroughput: dict[str, int]) -> Any:
        self.updates.append(WarmThroughput)
        self.units = WarmThroughput["WriteUnitsPerSecond"]
        return {}


class Responder(CloudFormationResponder):
    """The real responder, its PUT kept here instead of sent."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(event, attempts=1, timeout_seconds=0.1, backoff_seconds=0)
        self.payloads: list[bytes] = []

    def _put(self, payload: bytes) -> None:
        self.payloads.append(payload)


def event(request_type: str, units: int, old: int | None = None) -> dict[str, Any]:
    built: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/signed",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "TdrTableWarmThroughput",
        "ResourceProperties": {"TableName": "tdr", "WriteUnitsPerSecond": str(units)},
    }
    if request_type != "Create":
        built["PhysicalResourceId"] = "tdr/warm-throughput"
    if old is not None:
        built["OldResourceProperties"] = {"TableName": "tdr", "WriteUnitsPerSecond": str(old)}
    return built


def handle(tables: Tables, sent: dict[str, Any], *, status: str | None = None, remaining_ms: int = 30_000) -> Any:
    warnings: list[str] = []
    resource = WarmThroughputResource(lambda: tables, warnings.append, lambda _: None, stack_status=lambda _: status)
    responder = Responder(sent)
    outcome = resource.handle(sent, remaining_ms, responder)
    assert len(responder.payloads) == 1  # exactly one answer
    return outcome


def test_a_raise_sends_only_the_write_units() -> None:
    """DynamoDB API reference, UpdateTable / WarmThroughput: ReadUnitsPerSecond is optional; we never set it."""
    # Given a table at 8,000 write units
    tables = Tables(8000)
    # When the parameter goes from 8,000 to 12,000
    outcome = handle(tables, event("Update", 12000, old=8000))
    # Then one UpdateTable asks for the write units alone
    assert outcome.status == "SUCCESS"
    assert tables.updates == [{"WriteUnitsPerSecond": 12000}]


def test_a_lower_value_is_refused_without_any_call_that_changes_the_table() -> None:
    # Given a table at 20,000 write units, deployed with 20,000
    tables = Tables(20000)
    # When an Update asks for 8,000 (not a rollback)
    outcome = handle(tables, event("Update", 8000, old=20000), status="UPDATE_IN_PROGRESS")
    # Then it fails, says why with AWS's words, and changes nothing
    assert outcome.status == "FAILED"
    assert AWS_RULE in outcome.reason
    assert tables.updates == []


def test_an_update_rollback_to_a_lower_value_succeeds_and_changes_nothing() -> None:
    """CloudFormation "Custom resources": a rollback Update that fails leaves the stack UPDATE_ROLLBACK_FAILED."""
    tables = Tables(20000)
    outcome = handle(tables, event("Update", 8000, old=20000), status="UPDATE_ROLLBACK_IN_PROGRESS")
    assert outcome.status == "SUCCESS"
    assert tables.updates == []


def test_dynamodb_unreachable_fails_an_update_but_never_a_rollback_or_a_delete() -> None:
    # Given DynamoDB unreachable
    # When an Update, a rollback Update and a Delete come
    update = handle(Tables(fail=True), event("Update", 12000, old=8000), status="UPDATE_IN_PROGRESS")
    rollback = handle(Tables(fail=True), event("Update", 8000, old=12000), status="UPDATE_ROLLBACK_IN_PROGRESS")
    delete = handle(Tables(fail=True), event("Delete", 8000))
    # Then only the Update fails, naming the error; the stack can always roll back and be deleted
    assert (update.status, rollback.status, delete.status) == ("FAILED", "SUCCESS", "SUCCESS")
    assert "ConnectionError: DynamoDB unreachable" in update.reason


def test_the_watchdog_answers_before_the_function_times_out() -> None:
    # Given DynamoDB that answers only after 2 s, and 1.5 s left: the responder's worst case (0.1 s) and
    # 1 s are kept back, so the watchdog answers at 0.4 s
    tables = Tables(delay=2.0)
    # When a Create comes
    outcome = handle(tables, event("Create", 8000), remaining_ms=1500, status=None)
    # Then CloudFormation got FAILED (the watchdog's answer, the only one), and the outcome reports it;
    # the late DynamoDB answer raised nothing afterwards
    assert outcome.status == "FAILED"
    assert "timed out" in outcome.reason
    assert tables.updates == []


@pytest.mark.parametrize("units", [4000, 40000])
def test_the_refusal_fits_cloudformations_response_limit(units: int) -> None:
    """CloudFormation "Custom resource response objects": the body may be at most 4,096 bytes."""
    # Given the refusal with the largest figures the parameter allows, and a long stack id
    reason = refusal(units, 40000, 10**12)
    sent = event("Update", units, old=40000)
    sent["StackId"] = "arn:aws:cloudformation:us-east-1:123456789012:stack/" + "s" * 128 + "/" + "0" * 36
    # When it is rendered as the answer
    body, payload = Responder(sent).render("FAILED", "tdr/warm-throughput", reason, {})
    # Then it fits whole, AWS's words and page included
    assert len(payload) <= RESPONSE_LIMIT_BYTES
    assert body["Reason"] == reason
    assert AWS_PAGE in reason


def test_the_docs_say_increase_only_with_aws_words_and_the_refusal_as_it_reads() -> None:
    """docs/performance.md quotes AWS's rule with its page, and the refusal exactly as the stack's events show it."""
    # Given the Capacity section of docs/performance.md, its line breaks taken as spaces
    docs = " ".join((ROOT / "docs" / "performance.md").read_text().split())
    # When the refusal of 20000 -> 8000 is rendered
    reason = refusal(8000, 20000, 20000)
    # Then the docs say "increase only" in AWS's words, with the page, and show the refusal word for word
    assert "**Increase only.**" in docs
    assert f'AWS: "{AWS_RULE}"' in docs
    assert "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html" in docs
    assert reason in docs
