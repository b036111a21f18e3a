"""The subscription custom resource: a stand-in CINNOX over HTTP, and CloudFormation's response URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local_stack.template import ROOT
from support import APP_ID, LambdaContext, LogLines, Stack

if TYPE_CHECKING:
    from local_stack.cinnox import CinnoxSimulator
    from local_stack.cloudformation import ResponseEndpoint

Event = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def quick_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A responder worst case of about 1.7 s (so about 2 s kept back), a short verification retry pause."""
    monkeypatch.setenv("CFN_RESPONSE_TIMEOUT", "0.5")
    monkeypatch.setenv("CFN_RESPONSE_BACKOFF", "0.05")
    monkeypatch.setenv("CFN_RESPONSE_SLACK", "0.25")
    monkeypatch.setenv("CINNOX_VERIFY_RETRY_PAUSE", "0.05")


def invoke(subscription: ModuleType, event: dict[str, Any], remaining_ms: int = 30_000) -> None:
    subscription.lambda_handler(event, LambdaContext(remaining_ms=remaining_ms))


def assert_no_secret(stack: Stack, *texts: str) -> None:
    for text in texts:
        assert stack.app_token not in text
        assert stack.webhook_secret not in text


def test_create_subscribes_the_secret_url_after_cinnox_verifies_it(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    webhook_server: str,
    logs: LogLines,
) -> None:
    # Given a stack being created
    event = custom_resource_event("Create")
    # When CloudFormation sends the Create
    invoke(subscription, event)
    # Then CINNOX got one PATCH with the Bearer token and the URL ending in the secret,
    [call] = cinnox.calls
    assert call.path == f"/v1/api/apps/{APP_ID}/outbound-sms-event-sub"
    assert call.authorization == f"Bearer {stack.app_token}"
    assert call.body == {"enabled": True, "url": f"{webhook_server}/tdr/{stack.webhook_secret}"}
    # it verified the URL through the real webhook (its challenge was echoed),
    assert cinnox.subscription is not None
    assert cinnox.subscription["enabled"] is True
    # and CloudFormation got exactly one SUCCESS, with a stable id and no secret in it
    [response] = cloudformation.responses
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == f"cinnox-outbound-sms-sub-{APP_ID}"
    assert response["RequestId"] == event["RequestId"]
    assert response["StackId"] == event["StackId"]
    assert response["LogicalResourceId"] == "CinnoxSubscription"
    assert response["Data"]["Enabled"] == "true"
    assert cloudformation.headers[0].get("Content-Type", "") == ""
    assert_no_secret(stack, json.dumps(response), logs.getvalue())


def test_json_app_token_secret_is_read(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
) -> None:
    # Given the AppToken stored as JSON {"appToken": ...}
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["CinnoxAppTokenSecret"], SecretString=json.dumps({"appToken": stack.app_token})
    )
    invoke(subscription, custom_resource_event("Create"))
    assert cinnox.calls[0].authorization == f"Bearer {stack.app_token}"
    assert cloudformation.responses[0]["Status"] == "SUCCESS"


def test_update_with_a_new_url_keeps_the_physical_id(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    webhook_server: str,
    stack: Stack,
) -> None:
    # Given the API moved (a new URL), same AppID
    event = custom_resource_event("Update", properties={"WebhookUrl": f"{webhook_server}/tdr"})
    event["OldResourceProperties"] = {**event["ResourceProperties"], "WebhookUrl": "https://old.example/tdr"}
    invoke(subscription, event)
    # Then the subscription moves to the new URL and the resource is not replaced
    assert cinnox.calls[0].body["url"] == f"{webhook_server}/tdr/{stack.webhook_secret}"
    [response] = cloudformation.responses
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == event["PhysicalResourceId"]


def test_delete_unsubscribes(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    webhook_server: str,
    stack: Stack,
) -> None:
    event = custom_resource_event("Delete")
    invoke(subscription, event)
    [call] = cinnox.calls
    assert call.body == {"enabled": False, "url": f"{webhook_server}/tdr/{stack.webhook_secret}"}
    [response] = cloudformation.responses
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", event["PhysicalResourceId"])


def test_cinnox_400_fails_after_one_more_try_quoting_its_code_and_message(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    logs: LogLines,
) -> None:
    # Given a wrong AppToken
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["CinnoxAppTokenSecret"], SecretString="not-the-token"
    )
    invoke(subscription, custom_resource_event("Create"))
    # Then it is tried once more only (CINNOX answers a bad token as it answers a failed
    # verification, 400 code 6451000, which is worth one retry), and the Reason quotes CINNOX
    assert len(cinnox.calls) == 2
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "HTTP 400" in response["Reason"]
    assert "code 6451000" in response["Reason"]
    assert "invalid AppToken" in response["Reason"]
    assert "not-the-token" not in response["Reason"] + logs.getvalue()


def test_a_webhook_that_never_answers_fails_the_create_before_cinnox_is_asked(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    logs: LogLines,
) -> None:
    # Given a webhook URL that does not answer the challenge, and 4 s left of the Lambda's time
    event = custom_resource_event("Create", properties={"WebhookUrl": "http://127.0.0.1:9/tdr"})
    invoke(subscription, event, remaining_ms=4000)
    # Then the function's own probe gave up, CINNOX was never asked, and the Reason names the problem
    assert cinnox.calls == []
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "did not answer its own challenge" in response["Reason"]
    assert "could not connect" in response["Reason"]
    assert_no_secret(stack, json.dumps(response), logs.getvalue())


def test_failed_url_verification_fails_the_create_after_one_more_try(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
) -> None:
    # Given CINNOX refusing the URL's verification twice (the webhook answers our own probe)
    refusal = (400, {"code": 6451000, "message": "wrong request parameter: the webhook URL failed verification"})
    cinnox.script.extend([refusal, refusal])
    invoke(subscription, custom_resource_event("Create"))
    # Then the PATCH was tried twice, and the Create failed quoting CINNOX
    assert len(cinnox.calls) == 2
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "failed verification" in response["Reason"]


@pytest.mark.parametrize(
    "trouble",
    [
        pytest.param((500, {"code": 6451001, "message": "bad response from an internal service"}), id="500"),
        pytest.param((503, {}), id="503"),
        pytest.param((429, {"code": 6451010, "message": "too many requests"}), id="429"),
        pytest.param((400, {"code": 6451010, "message": "too many requests"}), id="rate-limit-code"),
        pytest.param("reset", id="connection-reset"),
        pytest.param("garbage", id="garbage"),
        pytest.param("hang", id="timeout"),
    ],
)
def test_transient_trouble_is_retried_then_succeeds(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    trouble: Any,
) -> None:
    # Given CINNOX failing once in a way worth retrying
    # (the timeout leaves the good attempt ample time for CINNOX's challenge call-back)
    monkeypatch.setenv("CINNOX_REQUEST_TIMEOUT", "1.5")
    cinnox.hang_seconds = 3
    cinnox.script.append(trouble)
    # When the Create runs
    invoke(subscription, custom_resource_event("Create"))
    # Then the second attempt goes through
    assert len(cinnox.calls) == 2
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS"]


def test_lasting_trouble_fails_after_bounded_attempts(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CINNOX_MAX_ATTEMPTS", "3")
    cinnox.script.extend([(503, {"code": 6451001, "message": "bad response from an internal service"})] * 5)
    invoke(subscription, custom_resource_event("Create"))
    assert len(cinnox.calls) == 3
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "gave up after 3 attempt(s)" in response["Reason"]
    assert "code 6451001" in response["Reason"]


def test_unreachable_cinnox_fails_the_create(
    subscription: ModuleType,
    custom_resource_event: Event,
    cloudformation: ResponseEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CINNOX_MAX_ATTEMPTS", "2")
    invoke(subscription, custom_resource_event("Create", properties={"CinnoxBaseUrl": "http://127.0.0.1:9"}))
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "could not connect" in response["Reason"]


def test_delete_that_cannot_unsubscribe_still_succeeds_with_a_warning(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    logs: LogLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given CINNOX down for good
    monkeypatch.setenv("CINNOX_MAX_ATTEMPTS", "2")
    cinnox.script.extend([(500, {"code": 6451001, "message": "down"})] * 2)
    invoke(subscription, custom_resource_event("Delete"))
    # Then stack deletion is not blocked, and the reason is logged as a warning
    [response] = cloudformation.responses
    assert response["Status"] == "SUCCESS"
    assert any(r["level"] == "WARNING" and "could not unsubscribe" in r["message"] for r in logs.records())


def test_missing_app_token_secret_fails_create_but_not_delete(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
) -> None:
    properties = {"CinnoxAppTokenSecret": "cinnox/no-such-secret"}
    invoke(subscription, custom_resource_event("Create", properties=properties))
    invoke(subscription, custom_resource_event("Delete", properties=properties))
    assert [r["Status"] for r in cloudformation.responses] == ["FAILED", "SUCCESS"]
    assert "ResourceNotFoundException" in cloudformation.responses[0]["Reason"]
    assert cinnox.calls == []


def test_invalid_properties_fail_the_create(
    subscription: ModuleType,
    custom_resource_event: Event,
    cloudformation: ResponseEndpoint,
) -> None:
    event = custom_resource_event("Create")
    del event["ResourceProperties"]["CinnoxAppId"]
    invoke(subscription, event)
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "CinnoxAppId" in response["Reason"]


def test_json_secret_without_app_token_key_fails_clearly(
    subscription: ModuleType,
    custom_resource_event: Event,
    cloudformation: ResponseEndpoint,
    stack: Stack,
) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["CinnoxAppTokenSecret"], SecretString='{"token": "x"}'
    )
    invoke(subscription, custom_resource_event("Create"))
    assert 'no non-empty "appToken" key' in cloudformation.responses[0]["Reason"]


@pytest.mark.parametrize(("request_type", "status"), [("Create", "FAILED"), ("Delete", "SUCCESS")])
def test_answer_is_sent_before_the_lambda_times_out(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    request_type: str,
    status: str,
) -> None:
    # Given CINNOX that never answers in time, and 3 s left of the Lambda's time (about 2 s kept back)
    monkeypatch.setenv("CINNOX_REQUEST_TIMEOUT", "10")
    cinnox.hang_seconds = 4
    cinnox.script.extend(["hang"] * 3)
    started = time.monotonic()
    invoke(subscription, custom_resource_event(request_type), remaining_ms=3000)
    # Then CloudFormation got its one answer before the time ran out
    assert time.monotonic() - started < 3.0
    [response] = cloudformation.responses
    assert response["Status"] == status
    assert "timed out" in response["Reason"] or "no answer" in response["Reason"]


def test_cinnox_echoing_the_url_or_token_is_redacted(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    webhook_server: str,
    logs: LogLines,
) -> None:
    # Given CINNOX quoting our URL and token back in its error message
    url = f"{webhook_server}/tdr/{stack.webhook_secret}"
    # (twice: a 400 with code 6451000 may be a verification refusal, tried once more)
    cinnox.script.extend([(400, {"code": 6451000, "message": f"bad url {url} for token {stack.app_token}"})] * 2)
    invoke(subscription, custom_resource_event("Create"))
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "code 6451000" in response["Reason"]
    assert "***" in response["Reason"]
    assert_no_secret(stack, json.dumps(response), logs.getvalue())


def test_response_url_failing_once_is_retried_and_answered_once(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
) -> None:
    cloudformation.fail_next = 1
    invoke(subscription, custom_resource_event("Create"))
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS"]
    assert len(cinnox.calls) == 1


def test_unknown_request_type_fails(
    subscription: ModuleType,
    custom_resource_event: Event,
    cloudformation: ResponseEndpoint,
) -> None:
    invoke(subscription, custom_resource_event("Rename"))
    assert cloudformation.responses[0]["Status"] == "FAILED"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            (200, {"code": 0, "result": {"enabled": False, "url": "x", "updatedAt": "t"}}),
            "CINNOX answered enabled=false to a request for true",
            id="200-enabled-false",
        ),
        pytest.param((200, "<html>maintenance</html>"), "unexpected answer", id="200-not-json"),
        pytest.param(
            (200, {"code": 6451000, "message": "wrong request parameter"}),
            "wrong request parameter",
            id="200-error-code",
        ),
    ],
)
def test_a_200_that_is_not_a_subscription_fails_the_create(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    answer: tuple[int, Any],
    reason: str,
) -> None:
    # Given CINNOX answering 200 with something that is not a subscription
    cinnox.script.append(answer)
    invoke(subscription, custom_resource_event("Create"))
    # Then the deploy fails at once (no retry), quoting what came back
    assert len(cinnox.calls) == 1
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert reason in response["Reason"]


def test_rotating_the_secret_then_changing_the_generation_resubscribes_the_new_url(
    subscription: ModuleType,
    webhook: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    webhook_server: str,
) -> None:
    # Given a subscribed stack, whose webhook secret is then given a new value
    invoke(subscription, custom_resource_event("Create"))
    new_secret = "Rotated0123456789abcdefghijklmnopqrstuvwxyz"
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.refs["WebhookSecret"], SecretString=new_secret)
    # When the stack is deployed with WebhookSecretGeneration changed (an Update of the custom resource)
    event = custom_resource_event("Update", properties={"WebhookSecretGeneration": "2"})
    invoke(subscription, event)
    # Then CINNOX verified and subscribed the new URL, and the resource was not replaced
    assert cinnox.subscription is not None
    assert cinnox.subscription["url"] == f"{webhook_server}/tdr/{new_secret}"
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS", "SUCCESS"]
    assert cloudformation.responses[1]["PhysicalResourceId"] == cloudformation.responses[0]["PhysicalResourceId"]
    assert new_secret not in json.dumps(cloudformation.responses)


def test_both_secrets_are_read_fresh_over_one_client_per_event(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    webhook_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the function making its AWS clients through boto3, watched
    made: list[str] = []
    make = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service)
        return make(service, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(boto3, "client", client)
    # When two Creates arrive (each reads the AppToken and the webhook secret)
    invoke(subscription, custom_resource_event("Create"))
    invoke(subscription, custom_resource_event("Create"))
    # Then each event made one Secrets Manager client for its two reads (a client costs a cold start
    # tens of ms), and no client is kept between events: a rotated secret is read on the next deploy
    assert made == ["secretsmanager", "secretsmanager"]
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS", "SUCCESS"]


def test_cold_start_loads_no_tdr_model_for_a_metric_name() -> None:
    # Given the function's handler, imported as Lambda imports it (the layer on the path)
    code = "import sys, app; print(sorted(m for m in sys.modules if m in ('cinnox_sms.model', 'cinnox_sms.item')))"
    path = os.pathsep.join([str(ROOT / "functions" / "subscription"), str(ROOT / "layers" / "common")])
    # When it is imported in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True
    )
    # Then neither the wire model nor the stored item was built: the metric's name needs neither
    assert done.stdout.strip() == "[]"
