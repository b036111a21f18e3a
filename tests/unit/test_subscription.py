"""The events/ folder's custom resource files, as sam local invoke reads them."""

from __future__ import annotations

from typing import Any


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
