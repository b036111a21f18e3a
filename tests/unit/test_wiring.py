"""The webhook's wiring and its parked-message format: built once from settings, one session, one format."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cinnox_sms.parking import RECEIVED_AT, unpack
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


def test_handler_imports_no_http_router() -> None:
    # Given the webhook's handler, imported as Lambda imports it (the layer on the path)
    code = (
        "import sys, app; print(sorted(m for m in sys.modules if m.startswith('aws_lambda_powertools.event_handler')))"
    )
    path = os.pathsep.join([str(ROOT / "functions" / "webhook"), str(ROOT / "layers" / "common")])
    # When it is imported in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True
    )
    # Then no Powertools event handler (router) module was loaded: a single route needs none
    assert done.stdout.strip() == "[]"
