"""The webhook's wiring and its parked-message format: built once from settings, one session, one format."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cinnox_sms.parking import RECEIVED_AT, unpack
from cinnox_sms.webhook import CachedSecret
from local_stack.template import ROOT


@pytest.mark.parametrize(
    "attributes",
    [None, {}, {RECEIVED_AT: {"DataType": "String"}}, {RECEIVED_AT: {"StringValue": "yesterday"}}],
    ids=["no attributes", "empty", "no value", "unreadable"],
)
def test_parked_message_without_a_readable_time_is_taken_as_received_now(attributes: dict[str, Any] | None) -> None:
    # Given a parked message whose receivedAt is missing or not a time
    message: dict[str, Any] = {"Body": "{}", "MessageAttributes": attributes}
    before = datetime.now(UTC)
    # When it is unpacked
    parked = unpack(message)
    # Then its body is kept and the time is now, in UTC
    assert parked.raw_body == "{}"
    assert before <= parked.received_at <= datetime.now(UTC)
    assert parked.received_at.utcoffset() == timedelta(0)


def test_handler_imports_no_http_router_and_nothing_only_a_rare_path_uses() -> None:
    # Given the webhook's handler, imported as Lambda imports it (the layer on the path)
    code = (
        "import sys, app; loaded = sorted(sys.modules)\n"
        "print(sorted(m for m in loaded if m.startswith('aws_lambda_powertools.event_handler')))\n"
        "print(sorted(m for m in loaded if m.startswith(('aws_lambda_powertools.utilities.batch',"
        " 'aws_lambda_powertools.utilities.parameters', 'asyncio'))))"
    )
    path = os.pathsep.join([str(ROOT / "functions" / "webhook"), str(ROOT / "layers" / "common")])
    # When it is imported in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True
    )
    routers, rare = done.stdout.splitlines()
    # Then no Powertools event handler (router) module was loaded: a single route needs none
    assert routers == "[]"
    # And neither the batch processor (parked TDRs land in a function of their own) nor the parameter providers
    assert rare == "[]"


class ReadCounter:
    """Stands in for GetSecretValue: each read returns the next value."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.values.pop(0)


def test_cached_secret_is_read_once_per_max_age_unless_asked_afresh() -> None:
    # Given a secret kept for 300 s, on a clock the test moves
    now = [1000.0]
    read = ReadCounter("first", "second", "third")
    secret = CachedSecret(read, 300, monotonic=lambda: now[0])
    # When it is asked for twice within its max age, Then it is read once, and its age is the clock's
    assert (secret(False), secret(False)) == ("first", "first")
    assert read.reads == 1
    now[0] += 0.5
    assert secret.age() == 0.5
    # When asked afresh, Then it is read again at once, and that value is kept
    assert secret(True) == "second"
    now[0] += 299
    assert secret(False) == "second"
    # When its max age has passed, Then it is read again
    now[0] += 1
    assert secret(False) == "third"
    assert read.reads == 3


def test_cached_secret_with_no_max_age_reads_every_time_and_keeps_no_failed_read() -> None:
    # Given a secret kept for 0 s whose second read fails
    values = iter(["one"])
    secret = CachedSecret(lambda: next(values), 0, monotonic=lambda: 5.0)
    # When it is asked for twice, Then the second ask reads again, and its failure reaches the caller
    assert secret(False) == "one"
    with pytest.raises(StopIteration):
        secret(False)
