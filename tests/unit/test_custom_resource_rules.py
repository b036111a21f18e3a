"""Issue 9, items 1-4: what CloudFormation and API Gateway enforce on the subscription custom resource.

AWS documentation quoted here:
- CloudFormation User Guide, "Custom resource response objects": the response body may be at
  most 4,096 bytes; the PhysicalResourceId up to 1 KB; a changed id on Update is a replacement
  (CloudFormation then deletes the old one).
- CloudFormation Template Reference, "AWS::CloudFormation::CustomResource": ServiceTimeout,
  an integer from 1 to 3,600 seconds, default 3,600.
- CloudFormation User Guide, "Custom resources" / "Custom resource request objects": a failed
  Create is followed by a Delete carrying the id it answered; a failed Update is rolled back by
  an Update with the old properties (and no rollback flag).
- API Gateway V2 API reference, "Stage" / "Deployment": with AutoDeploy the stage deploys
  asynchronously (DeploymentStatus PENDING before DEPLOYED).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from cinnox_sms.custom_resource import (
    PHYSICAL_ID_LIMIT_BYTES,
    CloudFormationResponder,
    SubscriptionProperties,
    SubscriptionResource,
)
from cinnox_sms.settings import SubscriptionSettings
from support import APP_ID

if TYPE_CHECKING:
    from local_stack.template import Template


@pytest.mark.parametrize(
    ("app_id", "kept"),
    [
        pytest.param(APP_ID, True, id="ordinary"),
        pytest.param("a" * 256, True, id="256-ascii"),
        pytest.param("應" * 256, True, id="256-cjk-792-bytes"),
        pytest.param("😀" * 256, False, id="256-emoji-over-1KB"),
    ],
)
def test_physical_id_keeps_its_deployed_format_and_caps_overlong_ones(app_id: str, kept: bool) -> None:
    """CloudFormation User Guide, "Custom resource response objects": PhysicalResourceId up to 1 KB;
    a changed id on Update is a replacement, so an id already deployed must never change."""

    def physical_id(app: str) -> str:
        return SubscriptionProperties.model_validate(
            {
                "CinnoxBaseUrl": "https://c.example",
                "CinnoxAppId": app,
                "CinnoxAppTokenSecret": "t",
                "WebhookUrl": "https://a.example/tdr",
                "WebhookSecretId": "w",
            }
        ).physical_id

    # Given an AppID, When its id is made, Then an id of at most 1 KB keeps the deployed format
    found = physical_id(app_id)
    if kept:
        assert found == f"cinnox-outbound-sms-sub-{app_id}"
    else:  # and a longer one becomes a short, stable digest, distinct per AppID
        assert found.startswith("cinnox-outbound-sms-sub-sha256-")
        assert len(found.encode()) < 128
        assert found == physical_id(app_id)
        assert found != physical_id(app_id[:-1] + "😁")
    assert len(found.encode()) <= PHYSICAL_ID_LIMIT_BYTES


# --- 2. ServiceTimeout, and a margin that follows the responder ------------------------


def test_service_timeout_is_set_above_the_function_timeout(template: Template) -> None:
    """CloudFormation Template Reference, "AWS::CloudFormation::CustomResource": ServiceTimeout is
    an integer from 1 to 3,600 seconds; without it a silent function holds the stack an hour."""
    # Given the template, When its custom resource and function are read
    service_timeout = template.resource("CinnoxSubscription")["Properties"].get("ServiceTimeout")
    function_timeout = template.function("SubscriptionFunction")["Timeout"]
    # Then ServiceTimeout is set, valid, above the function's timeout and well below the default hour
    assert isinstance(service_timeout, int)
    assert 1 <= service_timeout <= 3600
    assert service_timeout > function_timeout
    assert service_timeout <= 600


def test_default_margin_leaves_the_function_time_to_work(template: Template) -> None:
    # Given the defaults, When the margin is computed from the responder they build
    settings = SubscriptionSettings()
    responder = CloudFormationResponder.from_settings({}, settings)
    margin = SubscriptionResource(settings, str, print, print).response_margin_seconds(responder)
    # Then it is the responder's worst case (3 x 5 s + 0.5 s + 1 s) and 2 s of slack,
    assert responder.worst_case_seconds == pytest.approx(16.5)
    assert margin == pytest.approx(18.5)
    # and the function's timeout leaves room for CINNOX (a PATCH, its retry) after it
    assert template.function("SubscriptionFunction")["Timeout"] - margin >= 4 * settings.request_timeout_seconds


@dataclass
class FakeClock:
    now: float = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"CFN_RESPONSE_ATTEMPTS": "6", "CFN_RESPONSE_TIMEOUT": "30"}, id="more-and-longer"),
        pytest.param({"CFN_RESPONSE_ATTEMPTS": "1", "CFN_RESPONSE_TIMEOUT": "60"}, id="one-long"),
        pytest.param({"CFN_RESPONSE_ATTEMPTS": "4", "CFN_RESPONSE_BACKOFF": "10"}, id="long-back-off"),
    ],
)
def test_margin_covers_the_responders_worst_case(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given responder settings, and a response URL that never answers (each attempt takes its full timeout)
    settings = SubscriptionSettings.model_validate(environment)
    clock = FakeClock()

    def never_answers(request: Any, timeout: float) -> Any:
        clock.now += timeout
        raise TimeoutError

    monkeypatch.setattr(urllib.request, "urlopen", never_answers)
    responder = CloudFormationResponder.from_settings(
        {"ResponseURL": "https://s3.example/r"}, settings, sleep=clock.sleep
    )
    # When the responder tries everything it will try
    with pytest.raises(TimeoutError):
        responder.send("FAILED", "id", "reason")
    # Then the time the watchdog keeps back covers it all, and the slack on top
    margin = SubscriptionResource(settings, str, print, print).response_margin_seconds(responder)
    assert clock.now > 0
    assert margin >= clock.now + settings.response_slack_seconds
