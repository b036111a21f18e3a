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

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cinnox_sms.cinnox import CinnoxClient, outbound_sms_hook
from cinnox_sms.custom_resource import (
    NOT_CREATED_PREFIX,
    PHYSICAL_ID_LIMIT_BYTES,
    RESPONSE_LIMIT_BYTES,
    CloudFormationResponder,
    SubscriptionResource,
    capped_id,
)
from cinnox_sms.errors import CinnoxError
from cinnox_sms.settings import SubscriptionSettings
from local_stack.cloudformation import ResponseEndpoint, StackRecord
from local_stack.gateway import HttpApi, Route
from local_stack.httpserver import JsonHandler, Server
from support import APP_ID, LambdaContext, LogLines, Stack

if TYPE_CHECKING:
    from local_stack.cinnox import CinnoxSimulator

Event = Callable[..., dict[str, Any]]
REFUSED = "wrong request parameter: the webhook URL failed verification"


@pytest.fixture(autouse=True)
def quick_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A responder worst case of about 1.7 s (about 2 s kept back), a short verification retry pause."""
    monkeypatch.setenv("CFN_RESPONSE_TIMEOUT", "0.5")
    monkeypatch.setenv("CFN_RESPONSE_BACKOFF", "0.05")
    monkeypatch.setenv("CFN_RESPONSE_SLACK", "0.25")
    monkeypatch.setenv("CINNOX_VERIFY_RETRY_PAUSE", "0.05")


class ResponseCapture:
    """CloudFormation's pre-signed response URL, keeping the raw bytes of every PUT; ``fail_next`` answers 503."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.fail_next = 0
        capture = self

        class Handler(JsonHandler):
            def do_PUT(self) -> None:
                body = self.read_body()
                if capture.fail_next:
                    capture.fail_next -= 1
                    return self.reply(503)
                capture.bodies.append(body)
                return self.reply(200)

        self._server = Server(Handler, what="response capture")

    @property
    def url(self) -> str:
        return f"{self._server.url}/cloudformation-response?X-Amz-Signature={secrets.token_hex(8)}"

    def answers(self) -> list[dict[str, Any]]:
        return [json.loads(body.decode("utf-8")) for body in self.bodies]

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def capture() -> Iterator[ResponseCapture]:
    endpoint = ResponseCapture()
    yield endpoint
    endpoint.close()


class EchoWebhook:
    """Another stack's webhook: answers CINNOX's challenge at any path."""

    def __init__(self) -> None:
        class Handler(JsonHandler):
            def do_POST(self) -> None:
                challenge = json.loads(self.read_body() or b"{}").get("challenge")
                self.reply(200, json.dumps({"code": 0, "result": {"challenge": challenge}}).encode())

        self._server = Server(Handler, what="another stack's webhook")
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def other_webhook() -> Iterator[EchoWebhook]:
    webhook = EchoWebhook()
    yield webhook
    webhook.close()


def invoke(subscription: ModuleType, event: dict[str, Any], remaining_ms: int = 30_000) -> None:
    subscription.lambda_handler(event, LambdaContext(remaining_ms=remaining_ms))


def patches(cinnox: CinnoxSimulator) -> list[Any]:
    """The subscription PATCHes CINNOX received (not the event hook list reads)."""
    return [call for call in cinnox.calls if call.path.endswith("/outbound-sms-event-sub")]


def listed_hook(cinnox: CinnoxSimulator, stack: Stack) -> Any:
    """What CINNOX's "Get Event Hook list" shows for the outbound-SMS subscription."""
    return outbound_sms_hook(CinnoxClient(cinnox.base_url, stack.app_token).event_hooks(APP_ID))


def resource(stack: Stack, stack_status: Callable[[str], str | None]) -> SubscriptionResource:
    """The custom resource with the function's settings, secrets from moto, and a given stack status."""

    def get_secret(secret_id: str) -> str:
        return str(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])

    return SubscriptionResource(
        SubscriptionSettings.from_env(), get_secret, lambda _: None, lambda _: None, stack_status=stack_status
    )


# --- 1. the 4,096-byte response --------------------------------------------------------

MESSAGES = {  # the message, and whether it fits whole
    "cjk-1000": ("訂閱失敗網址驗證未通過" * 91, True),  # 1,001 characters: 3,003 bytes raw, 6,006 as \\uXXXX
    "emoji": ("📵🚫💥 CINNOX refused 🙅‍♀️" * 150, False),
    "20kb": ("x" * 20_000, False),
}


@pytest.mark.parametrize(("message", "whole"), MESSAGES.values(), ids=MESSAGES.keys())
@pytest.mark.parametrize(
    ("request_type", "status"), [("Create", "FAILED"), ("Update", "FAILED"), ("Delete", "SUCCESS")]
)
def test_response_body_fits_cloudformations_4096_bytes(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    request_type: str,
    status: str,
    message: str,
    whole: bool,
) -> None:
    """CloudFormation User Guide, "Custom resource response objects": at most 4,096 bytes."""
    # Given CINNOX refusing with a long message (a code that is not worth a retry)
    cinnox.script.append((400, {"code": 6451001, "message": message}))
    event = custom_resource_event(request_type, ResponseURL=capture.url)
    # When CloudFormation sends the event
    invoke(subscription, event)
    # Then one answer came, at most 4,096 bytes of valid UTF-8 JSON,
    [body] = capture.bodies
    assert len(body) <= RESPONSE_LIMIT_BYTES
    [answer] = capture.answers()
    # with the status intact, and the Reason whole when it fits (as raw UTF-8), else cut, never dropped
    assert answer["Status"] == status
    if whole:
        assert answer["Reason"].endswith(message)
    else:
        assert message[:20] in answer["Reason"]
        assert answer["Reason"].endswith(" [...]")
    if request_type == "Create":
        assert answer["PhysicalResourceId"] == f"{NOT_CREATED_PREFIX}{event['RequestId']}"
    else:
        assert answer["PhysicalResourceId"] == event["PhysicalResourceId"]


any_character = st.characters(exclude_categories=())  # lone surrogates too
# Short arbitrary text, and long text made by repeating it (so long astral or CJK runs come up often)
unicode_text = st.one_of(
    st.text(alphabet=any_character, max_size=2000),
    st.builds(
        lambda part, times: part * times, st.text(alphabet=any_character, min_size=1, max_size=40), st.integers(1, 500)
    ),
)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reason=unicode_text,
    app_id=st.text(alphabet=any_character, min_size=1, max_size=256),
    status=st.sampled_from(["SUCCESS", "FAILED"]),
    updated_at=st.text(max_size=300),
)
def test_any_unicode_reason_and_app_id_give_a_body_within_4096_bytes_of_valid_json(
    capture: ResponseCapture, reason: str, app_id: str, status: Any, updated_at: str
) -> None:
    """CloudFormation User Guide, "Custom resource response objects": 4,096 bytes, an id up to 1 KB."""
    # Given any message and any AppID (256 characters of any Unicode)
    capture.bodies.clear()
    event = {
        "ResponseURL": capture.url,
        "StackId": "arn:aws:cloudformation:ap-southeast-1:123456789012:stack/" + "s" * 128 + "/" + "0" * 36,
        "RequestId": "5f0a1c2e-0000-4000-8000-" + "0" * 12,
        "LogicalResourceId": "C" * 255,
    }
    # When the responder sends it (the id made as SubscriptionProperties.physical_id makes it)
    CloudFormationResponder(event, attempts=1, timeout_seconds=2).send(
        status, capped_id(f"cinnox-outbound-sms-sub-{app_id}"), reason, {"Enabled": "true", "UpdatedAt": updated_at}
    )
    # Then the body is at most 4,096 bytes of valid JSON in UTF-8, with the status unchanged
    [body] = capture.bodies
    assert len(body) <= RESPONSE_LIMIT_BYTES
    answer = json.loads(body.decode("utf-8"))
    assert answer["Status"] == status
    assert 0 < len(answer["PhysicalResourceId"].encode("utf-8")) <= PHYSICAL_ID_LIMIT_BYTES


def test_handler_answers_with_the_responder_settings(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given five answer attempts configured, and a response URL failing four times
    monkeypatch.setenv("CFN_RESPONSE_ATTEMPTS", "5")
    monkeypatch.setenv("CFN_RESPONSE_BACKOFF", "0.02")
    capture.fail_next = 4
    # When the Create runs
    invoke(subscription, custom_resource_event("Create", ResponseURL=capture.url))
    # Then the fifth attempt delivered the one answer
    assert [a["Status"] for a in capture.answers()] == ["SUCCESS"]


def test_watchdog_keeps_back_the_margin_the_responder_settings_imply(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a responder that may need 3 x 2 s (+ pauses), and only 6 s left of the Lambda's time
    monkeypatch.setenv("CFN_RESPONSE_TIMEOUT", "2")
    event = custom_resource_event("Create", ResponseURL=capture.url)
    invoke(subscription, event, remaining_ms=6000)
    # Then nothing was started at CINNOX: all the time left belongs to the answer
    assert patches(cinnox) == []
    [answer] = capture.answers()
    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == f"{NOT_CREATED_PREFIX}{event['RequestId']}"


# --- 3. rollbacks ------------------------------------------------------------------------


def _refused(cinnox: CinnoxSimulator, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    cinnox.script.extend([(400, {"code": 6451000, "message": REFUSED})] * 2)
    return 30_000


def _bad_properties(cinnox: CinnoxSimulator, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    del event["ResourceProperties"]["CinnoxAppId"]
    return 30_000


def _exception(cinnox: CinnoxSimulator, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    event["ResourceProperties"]["CinnoxAppTokenSecret"] = "cinnox/no-such-secret"
    return 30_000


def _watchdog(cinnox: CinnoxSimulator, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("CINNOX_REQUEST_TIMEOUT", "10")
    cinnox.hang_seconds = 4
    cinnox.script.append("hang")
    return 3500


@pytest.mark.parametrize("failure", [_refused, _bad_properties, _exception, _watchdog])
def test_failed_create_marks_its_id_and_its_rollback_delete_leaves_cinnox_alone(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack: Stack,
    other_webhook: EchoWebhook,
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[CinnoxSimulator, dict[str, Any], pytest.MonkeyPatch], int],
) -> None:
    """ "Custom resources": a failed Create is followed by a Delete carrying the id it answered."""
    # Given the AppID subscribed by another stack, and a Create that fails
    CinnoxClient(cinnox.base_url, stack.app_token).set_outbound_sms_subscription(
        APP_ID, enabled=True, url=f"{other_webhook.url}/tdr/other-secret"
    )
    create = custom_resource_event("Create", ResponseURL=capture.url)
    remaining_ms = failure(cinnox, create, monkeypatch)
    invoke(subscription, create, remaining_ms)
    [created] = capture.answers()
    # Then the Create answered FAILED with an id marking it as not subscribed
    assert created["Status"] == "FAILED"
    assert created["PhysicalResourceId"] == f"cinnox-outbound-sms-sub-not-created-{create['RequestId']}"
    # When CloudFormation rolls back with a Delete carrying that id
    cinnox.script.clear()
    before = len(patches(cinnox))
    delete = custom_resource_event("Delete", ResponseURL=capture.url, PhysicalResourceId=created["PhysicalResourceId"])
    delete["ResourceProperties"] = create["ResourceProperties"]
    invoke(subscription, delete)
    # Then the Delete succeeds without a word to CINNOX, and the other stack stays subscribed
    deleted = capture.answers()[1]
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", created["PhysicalResourceId"])
    assert len(patches(cinnox)) == before
    hook = listed_hook(cinnox, stack)
    assert hook is not None
    assert (hook.enabled, hook.url) == (True, f"{other_webhook.url}/tdr/other-secret")


def test_an_app_id_that_looks_like_the_mark_is_still_unsubscribed(
    subscription: ModuleType, custom_resource_event: Event, cinnox: CinnoxSimulator, capture: ResponseCapture
) -> None:
    # Given a resource whose AppID itself starts with "not-created-" (its ordinary id)
    app_id = "not-created-app"
    event = custom_resource_event("Delete", ResponseURL=capture.url, properties={"CinnoxAppId": app_id})
    assert event["PhysicalResourceId"] == f"cinnox-outbound-sms-sub-{app_id}"
    # When it is deleted
    invoke(subscription, event)
    # Then the unsubscription was sent (this simulator knows another app, so it is not found)
    assert [call.path for call in patches(cinnox)] == [f"/v1/api/apps/{app_id}/outbound-sms-event-sub"]
    assert capture.answers()[0]["Status"] == "SUCCESS"


def test_failed_update_answers_with_the_id_cloudformation_holds(
    subscription: ModuleType, custom_resource_event: Event, cinnox: CinnoxSimulator, capture: ResponseCapture
) -> None:
    """ "Custom resource response objects": a different id on Update is a replacement."""
    # Given an Update moving from another AppID's resource, refused by CINNOX
    cinnox.script.extend([(400, {"code": 6451000, "message": REFUSED})] * 2)
    event = custom_resource_event(
        "Update", ResponseURL=capture.url, PhysicalResourceId="cinnox-outbound-sms-sub-app-before"
    )
    invoke(subscription, event)
    # Then it fails with the id CloudFormation holds (no replacement, no Delete of the old one)
    [answer] = capture.answers()
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("FAILED", "cinnox-outbound-sms-sub-app-before")


@pytest.mark.parametrize(
    ("stack_status", "status"),
    [
        pytest.param(lambda _: "UPDATE_ROLLBACK_IN_PROGRESS", "SUCCESS", id="rollback"),
        pytest.param(lambda _: "UPDATE_IN_PROGRESS", "FAILED", id="ordinary-update"),
        pytest.param(lambda _: None, "FAILED", id="no-stack"),
        pytest.param(lambda _: 1 / 0, "FAILED", id="status-unreadable"),
    ],
)
def test_a_refused_update_fails_unless_it_is_the_rollback(
    stack: Stack,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack_status: Callable[[str], str | None],
    status: str,
) -> None:
    """ "Custom resources": a failed Update is rolled back by an Update with the old properties."""
    # Given an Update refused by CINNOX, and what the stack's status says about it
    cinnox.script.extend([(400, {"code": 6451000, "message": REFUSED})] * 2)
    event = custom_resource_event("Update", ResponseURL=capture.url)
    responder = CloudFormationResponder.from_settings(event, SubscriptionSettings.from_env())
    # When it is handled
    outcome = resource(stack, stack_status).handle(event, 30_000, responder)
    # Then CINNOX was still asked, and only a rollback answers SUCCESS, leaving CINNOX as it was
    assert len(patches(cinnox)) == 2
    [answer] = capture.answers()
    assert (answer["Status"], answer["PhysicalResourceId"]) == (status, event["PhysicalResourceId"])
    if status == "SUCCESS":
        assert "CINNOX left as it was" in outcome.reason
        assert REFUSED in answer["Reason"]


def test_a_rollback_update_that_cinnox_accepts_resubscribes_the_old_url(
    stack: Stack, custom_resource_event: Event, cinnox: CinnoxSimulator, capture: ResponseCapture, webhook_server: str
) -> None:
    # Given the rollback Update (old properties) of a refused rotation, with CINNOX willing
    event = custom_resource_event("Update", ResponseURL=capture.url)
    responder = CloudFormationResponder.from_settings(event, SubscriptionSettings.from_env())
    resource(stack, lambda _: "UPDATE_ROLLBACK_IN_PROGRESS").handle(event, 30_000, responder)
    # Then the old URL is subscribed again
    assert capture.answers()[0]["Status"] == "SUCCESS"
    hook = listed_hook(cinnox, stack)
    assert hook is not None
    assert (hook.enabled, hook.url) == (True, f"{webhook_server}/tdr/{stack.webhook_secret}")


@pytest.fixture
def describe_stacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponseEndpoint]:
    """The local stack's CloudFormation for the function's boto3 client (moto's own needs a package not installed)."""
    endpoint = ResponseEndpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", endpoint.base_url)
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize(
    ("stack_status", "status"), [("UPDATE_ROLLBACK_IN_PROGRESS", "SUCCESS"), ("UPDATE_IN_PROGRESS", "FAILED")]
)
def test_the_function_asks_cloudformation_for_the_stack_status_with_boto3(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    describe_stacks: ResponseEndpoint,
    stack_status: str,
    status: str,
) -> None:
    # Given the stack in a given status, and CINNOX refusing the Update
    event = custom_resource_event("Update", ResponseURL=capture.url)
    describe_stacks.stacks[event["StackId"]] = StackRecord("cinnox-sms", event["StackId"], stack_status)
    cinnox.script.extend([(400, {"code": 6451000, "message": REFUSED})] * 2)
    # When the function handles it
    invoke(subscription, event)
    # Then it asked DescribeStacks for its own stack (the StackId of the event), and answered accordingly
    assert describe_stacks.described == [event["StackId"]]
    assert capture.answers()[0]["Status"] == status


def test_a_stack_status_moto_cannot_give_is_taken_as_no_rollback(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    logs: LogLines,
) -> None:
    # Given DescribeStacks through boto3 against moto (which knows no such stack, or no CloudFormation)
    cinnox.script.extend([(400, {"code": 6451000, "message": REFUSED})] * 2)
    invoke(subscription, custom_resource_event("Update", ResponseURL=capture.url))
    # Then the refused Update fails as an ordinary one, with a warning saying why
    assert capture.answers()[0]["Status"] == "FAILED"
    assert any("could not read the stack's status" in r["message"] for r in logs.records())


def test_delete_leaves_a_subscription_moved_to_another_stack_alone(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack: Stack,
    other_webhook: EchoWebhook,
) -> None:
    # Given this stack subscribed, then another stack with the same AppID moving the subscription
    invoke(subscription, custom_resource_event("Create", ResponseURL=capture.url))
    other_url = f"{other_webhook.url}/tdr/other-secret"
    CinnoxClient(cinnox.base_url, stack.app_token).set_outbound_sms_subscription(APP_ID, enabled=True, url=other_url)
    before = len(patches(cinnox))
    # When this stack is deleted
    invoke(subscription, custom_resource_event("Delete", ResponseURL=capture.url))
    # Then CINNOX is left alone: the other stack keeps its events
    assert len(patches(cinnox)) == before
    answer = capture.answers()[1]
    assert answer["Status"] == "SUCCESS"
    assert "another webhook" in answer["Reason"]
    hook = listed_hook(cinnox, stack)
    assert hook is not None
    assert (hook.enabled, hook.url) == (True, other_url)


def test_delete_leaves_an_app_already_unsubscribed_alone(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack: Stack,
    webhook_server: str,
) -> None:
    # Given the subscription already turned off at CINNOX
    CinnoxClient(cinnox.base_url, stack.app_token).set_outbound_sms_subscription(
        APP_ID, enabled=False, url=f"{webhook_server}/tdr/{stack.webhook_secret}"
    )
    before = len(patches(cinnox))
    # When the stack is deleted
    invoke(subscription, custom_resource_event("Delete", ResponseURL=capture.url))
    # Then nothing more is sent, and the answer says why
    assert len(patches(cinnox)) == before
    [answer] = capture.answers()
    assert answer["Status"] == "SUCCESS"
    assert "already" in answer["Reason"]


def test_delete_unsubscribes_its_own_webhook_even_after_a_secret_rotation(
    subscription: ModuleType,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack: Stack,
) -> None:
    # Given this stack subscribed, and its secret given a new value since (no Update yet)
    invoke(subscription, custom_resource_event("Create", ResponseURL=capture.url))
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["WebhookSecret"], SecretString="Rotated0123456789abcdefghijklmnopqrstuvwxyz"
    )
    # When the stack is deleted
    invoke(subscription, custom_resource_event("Delete", ResponseURL=capture.url))
    # Then the listed URL is recognised as this API's, and unsubscribed
    assert patches(cinnox)[-1].body["enabled"] is False
    assert capture.answers()[1]["Status"] == "SUCCESS"
    hook = listed_hook(cinnox, stack)
    assert hook is not None
    assert hook.enabled is False


class UnlistingCinnox:
    """A CINNOX whose event hook list cannot be read (500), and which accepts PATCHes."""

    def __init__(self) -> None:
        self.patched: list[Any] = []
        cinnox = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self.reply(500, b'{"code": 6451001, "message": "bad response from an internal service"}')

            def do_PATCH(self) -> None:
                body = json.loads(self.read_body())
                cinnox.patched.append(body)
                self.reply(200, json.dumps({"code": 0, "result": {**body, "updatedAt": "t"}}).encode())

        self._server = Server(Handler, what="CINNOX without a list")
        self.base_url = self._server.url

    def close(self) -> None:
        self._server.close()


def test_delete_unsubscribes_when_the_hook_list_cannot_be_read(
    subscription: ModuleType, custom_resource_event: Event, capture: ResponseCapture
) -> None:
    # Given a CINNOX whose event hook list answers 500
    cinnox = UnlistingCinnox()
    try:
        event = custom_resource_event("Delete", ResponseURL=capture.url, properties={"CinnoxBaseUrl": cinnox.base_url})
        # When the stack is deleted
        invoke(subscription, event)
    finally:
        cinnox.close()
    # Then it unsubscribes as before: one PATCH with enabled false
    assert [body["enabled"] for body in cinnox.patched] == [False]
    assert capture.answers()[0]["Status"] == "SUCCESS"


# --- 4. the first deploy does not race the API -------------------------------------------


@pytest.fixture
def http_api(webhook: ModuleType, context: LambdaContext) -> Iterator[Callable[[float], HttpApi]]:
    """The local HTTP API hosting the real webhook handler, with a chosen deployment delay."""
    apis: list[HttpApi] = []

    def start(deploy_delay: float) -> HttpApi:
        api = HttpApi(
            [Route("POST", "/tdr/{secret}", "WebhookFunction")],
            lambda _function, event: webhook.lambda_handler(event, context),
            api_id="localapi",
            deploy_delay=deploy_delay,
        )
        apis.append(api)
        return api

    yield start
    for api in apis:
        api.close()


def test_the_gateway_answers_404_until_its_deployment_lands(http_api: Callable[[float], HttpApi], stack: Stack) -> None:
    """API Gateway V2 "Stage": AutoDeploy deploys asynchronously; until then the route is not served."""
    # Given one API still deploying and one deployed
    pending, deployed = http_api(60), http_api(0)
    challenge = json.dumps({"challenge": "c-1"}).encode()

    def post(api: HttpApi) -> tuple[int, Any]:
        request = urllib.request.Request(f"{api.url}/tdr/{stack.webhook_secret}", data=challenge, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # nosec B310  # loopback
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    # When the same challenge is posted to both, Then only the deployed one answers it
    assert post(pending) == (404, {"message": "Not Found"})
    assert post(deployed) == (200, {"code": 0, "result": {"challenge": "c-1"}})


def test_cinnox_verification_fails_while_the_route_is_not_deployed(
    subscription: ModuleType,
    custom_resource_event: Event,
    http_api: Callable[[float], HttpApi],
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack: Stack,
    logs: LogLines,
) -> None:
    # Given an API whose deployment has not landed
    api = http_api(60)
    url = f"{api.url}/tdr/{stack.webhook_secret}"
    # When CINNOX is asked to subscribe it straight away (what the function did before the probe)
    with pytest.raises(CinnoxError, match="failed verification"):
        CinnoxClient(cinnox.base_url, stack.app_token).set_outbound_sms_subscription(APP_ID, enabled=True, url=url)
    # And when the function is asked, with 4 s left: it probes, never reaches CINNOX, and says why
    before = len(patches(cinnox))
    invoke(
        subscription,
        custom_resource_event("Create", ResponseURL=capture.url, properties={"WebhookUrl": f"{api.url}/tdr"}),
        4000,
    )
    assert len(patches(cinnox)) == before
    [answer] = capture.answers()
    assert answer["Status"] == "FAILED"
    assert "did not answer its own challenge in time (HTTP 404)" in answer["Reason"]
    assert stack.webhook_secret not in answer["Reason"] + logs.getvalue()


def test_create_waits_for_the_api_deployment_before_cinnox_verifies(
    subscription: ModuleType,
    custom_resource_event: Event,
    http_api: Callable[[float], HttpApi],
    cinnox: CinnoxSimulator,
    capture: ResponseCapture,
    stack: Stack,
) -> None:
    """API Gateway V2 "Stage" / "Deployment": the stage being created does not mean the route serves."""
    # Given an API whose deployment lands 1.5 s after it is created
    api = http_api(1.5)
    # When the Create runs at once
    invoke(
        subscription,
        custom_resource_event("Create", ResponseURL=capture.url, properties={"WebhookUrl": f"{api.url}/tdr"}),
    )
    # Then it probed until the route answered, and CINNOX verified and subscribed on the first PATCH
    assert api.requests >= 3  # probes answered 404, the echoed probe, CINNOX's own challenge
    assert len(patches(cinnox)) == 1
    assert capture.answers()[0]["Status"] == "SUCCESS"
    hook = listed_hook(cinnox, stack)
    assert hook is not None
    assert (hook.enabled, hook.url) == (True, f"{api.url}/tdr/{stack.webhook_secret}")


def test_a_verification_refusal_right_after_the_probe_is_tried_once_more(
    subscription: ModuleType, custom_resource_event: Event, cinnox: CinnoxSimulator, capture: ResponseCapture
) -> None:
    # Given CINNOX refusing the URL's verification once (an edge the deployment had not reached)
    cinnox.script.append((400, {"code": 6451000, "message": REFUSED}))
    # When the Create runs
    invoke(subscription, custom_resource_event("Create", ResponseURL=capture.url))
    # Then the second PATCH subscribed it
    assert len(patches(cinnox)) == 2
    assert capture.answers()[0]["Status"] == "SUCCESS"
