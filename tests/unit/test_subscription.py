"""The events/ folder's custom resource files, as sam local invoke reads them."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def quick_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A responder worst case of about 1.7 s (so about 2 s kept back), a short verification retry pause."""
    monkeypatch.setenv("CFN_RESPONSE_TIMEOUT", "0.5")
    monkeypatch.setenv("CFN_RESPONSE_BACKOFF", "0.05")
    monkeypatch.setenv("CFN_RESPONSE_SLACK", "0.25")
    monkeypatch.setenv("CINNOX_VERIFY_RETRY_PAUSE", "0.05")


def test_events_folder_custom_resource_files_are_valid(template_events: dict[str, dict[str, Any]]) -> None:
    # Given the custom resource events in events/, When read, Then they carry what CloudFormation sends
    for name in ("subscription-create.json", "subscription-update.json", "subscription-delete.json"):
        event = template_events[name]
        assert event["RequestType"] in ("Create", "Update", "Delete")
        assert set(event["ResourceProperties"]) >= {
            "CinnoxBaseUrl",
            "CinnoxAppId",
            "CinnoxAppTokenSecret",
            "WebhookUrl",
            "WebhookSecretId",
            "ServiceToken",
        }
