"""Rotation without a dead URL, against moto: the subscription function's real handler moves the webhook secret's
CINNOXSUBSCRIBED label only once CINNOX accepted the PATCH, and the webhook's real handler accepts that version's
URL and the current one.

Secrets Manager's rules relied on (moto is patched to keep them where it departs: local_stack/moto_server.py):
- API reference, "PutSecretValue": a new value takes AWSCURRENT, and AWSPREVIOUS moves to the version that had it;
  no other label moves, so the label stays on the version CINNOX was subscribed with.
- API reference, "UpdateSecretVersionStage": a label is on one version at a time; moving it from another version
  needs RemoveFromVersionId naming that version, or the call fails.
- API reference, "GetSecretValue": VersionStage names the version to read; the answer carries its VersionId and
  VersionStages (AWSCURRENT when none is given).
- "AWS Secrets Manager quotas": 20 staging labels; the secret carries three (AWSCURRENT, AWSPREVIOUS, ours).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cinnox_sms.secret_label import SUBSCRIBED_LABEL, WebhookSecrets, read_webhook_secrets
from support import LambdaContext, LogLines, Post, Stack, table_items, tdr

if TYPE_CHECKING:
    from local_stack.cinnox import CinnoxSimulator
    from local_stack.cloudformation import ResponseEndpoint
    from local_stack.template import Template

Event = Callable[..., dict[str, Any]]
NEW = "Rotated0123456789abcdefghijklmnopqrstuvwxyzABCD"
NEWER = "Rotated9876543210abcdefghijklmnopqrstuvwxyzABCD"
SUBSCRIBED_MAX_AGE = 1.0  # WEBHOOK_SUBSCRIBED_MAX_AGE's default: the window after the label moves


@pytest.fixture(autouse=True)
def quick_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short CloudFormation responder worst case and verification retry pause (as test_subscription.py's)."""
    monkeypatch.setenv("CFN_RESPONSE_TIMEOUT", "0.5")
    monkeypatch.setenv("CFN_RESPONSE_BACKOFF", "0.05")
    monkeypatch.setenv("CFN_RESPONSE_SLACK", "0.25")
    monkeypatch.setenv("CINNOX_VERIFY_RETRY_PAUSE", "0.05")


def invoke(subscription: ModuleType, event: dict[str, Any]) -> None:
    subscription.lambda_handler(event, LambdaContext(remaining_ms=30_000))


def labels(stack: Stack) -> dict[str, list[str]]:
    """Each version's staging labels, keyed by its value (DescribeSecret's VersionIdsToStages)."""
    client = boto3.client("secretsmanager")
    secret_id = stack.refs["WebhookSecret"]
    stages = client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    return {
        client.get_secret_value(SecretId=secret_id, VersionId=version)["SecretString"]: sorted(names)
        for version, names in stages.items()
    }


def rotate(stack: Stack, value: str) -> None:
    """An operator's rotation: a new value in the WebhookSecret secret (the deploy then follows)."""
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.refs["WebhookSecret"], SecretString=value)


def stored(stack: Stack, transaction_id: str) -> bool:
    return any(item["transactionId"]["S"] == transaction_id for item in table_items(stack))


def test_a_refused_rotation_leaves_the_url_cinnox_has_working(
    subscription: ModuleType,
    post: Post,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    webhook_server: str,
) -> None:
    # Given a subscribed stack (its Create marked the version CINNOX accepted)
    old = stack.webhook_secret
    invoke(subscription, custom_resource_event("Create"))
    assert labels(stack)[old] == ["AWSCURRENT", SUBSCRIBED_LABEL]
    # When the operator puts a new value and deploys, and CINNOX refuses the new URL (after the custom
    # resource's probe made the warm webhook read the secret afresh)
    rotate(stack, NEW)
    cinnox.refuse_verification = True
    invoke(subscription, custom_resource_event("Update", properties={"WebhookSecretGeneration": "2"}))
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS", "FAILED"]
    # Then CINNOX still posts to the old URL, whose version keeps the label
    assert cinnox.subscription is not None
    assert cinnox.subscription["url"] == f"{webhook_server}/tdr/{old}"
    assert labels(stack) == {old: ["AWSPREVIOUS", SUBSCRIBED_LABEL], NEW: ["AWSCURRENT"]}
    # and a TDR CINNOX posts there is stored (on today's main: 404, and the TDR lost), now and a second later
    for transaction_id in ("refused-1", "refused-2"):
        answer = post(tdr(TransactionID=transaction_id), path=f"/tdr/{old}")
        assert (answer.status, answer.body["result"]["transactionId"]) == (200, transaction_id)
        assert stored(stack, transaction_id)
        time.sleep(SUBSCRIBED_MAX_AGE)  # past the window: the second is taken on a read afresh
    # and the new URL answers too (the next deploy's probe and CINNOX's challenge need it)
    assert post({"challenge": "c"}, path=f"/tdr/{NEW}").status == 200


def test_an_accepted_rotation_stops_the_old_url_at_once(
    subscription: ModuleType,
    post: Post,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    webhook_server: str,
) -> None:
    # Given a subscribed stack whose warm webhook takes TDRs at the old URL while a rotation is deployed
    old = stack.webhook_secret
    invoke(subscription, custom_resource_event("Create"))
    rotate(stack, NEW)
    assert post(tdr(TransactionID="before"), path=f"/tdr/{old}").status == 200
    # When CINNOX accepts the new URL
    invoke(subscription, custom_resource_event("Update", properties={"WebhookSecretGeneration": "2"}))
    accepted_at = time.monotonic()
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS", "SUCCESS"]
    assert cinnox.subscription is not None
    assert cinnox.subscription["url"] == f"{webhook_server}/tdr/{NEW}"
    # Then the label is on the new version only
    assert labels(stack) == {old: ["AWSPREVIOUS"], NEW: ["AWSCURRENT", SUBSCRIBED_LABEL]}
    # and once the window (WEBHOOK_SUBSCRIBED_MAX_AGE) has passed since CINNOX accepted, the old URL is a 404
    # that stores nothing, on this warm instance as on any
    time.sleep(max(0.0, accepted_at + SUBSCRIBED_MAX_AGE - time.monotonic()))
    answer = post(tdr(TransactionID="after"), path=f"/tdr/{old}")
    assert answer.status == 404
    assert not stored(stack, "after")
    # and the new URL takes TDRs
    assert post(tdr(TransactionID="new"), path=f"/tdr/{NEW}").status == 200
    assert stored(stack, "new")


def test_the_label_moves_to_the_version_cinnox_accepted_even_if_a_newer_one_came_meanwhile(
    subscription: ModuleType,
    post: Post,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    stack: Stack,
    webhook_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a subscribed stack, a new value put, and another one put while CINNOX verifies the first
    old = stack.webhook_secret
    invoke(subscription, custom_resource_event("Create"))
    rotate(stack, NEW)
    verify = cinnox.verify

    def verify_then_rotate(url: str) -> bool:
        verified = verify(url)
        rotate(stack, NEWER)
        return verified

    monkeypatch.setattr(cinnox, "verify", verify_then_rotate)
    # When the deploy's PATCH (with the first new value's URL) is accepted
    invoke(subscription, custom_resource_event("Update", properties={"WebhookSecretGeneration": "2"}))
    # Then the label marks the version CINNOX has, not the newest one
    assert cinnox.subscription is not None
    assert cinnox.subscription["url"] == f"{webhook_server}/tdr/{NEW}"
    assert labels(stack) == {old: [], NEW: ["AWSPREVIOUS", SUBSCRIBED_LABEL], NEWER: ["AWSCURRENT"]}
    # and the webhook takes CINNOX's URL, and not the old one (once read afresh: the newest is current then,
    # and CINNOX's the labelled one)
    time.sleep(SUBSCRIBED_MAX_AGE)
    assert post({"challenge": "c"}, path=f"/tdr/{old}").status == 404
    assert post({"challenge": "c"}, path=f"/tdr/{NEW}").status == 200


def test_a_label_that_cannot_be_moved_leaves_the_deploy_standing_and_says_so(
    subscription: ModuleType,
    post: Post,
    custom_resource_event: Event,
    cinnox: CinnoxSimulator,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    webhook_server: str,
    logs: LogLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a subscribed stack rotated, and Secrets Manager refusing to move the label
    old = stack.webhook_secret
    invoke(subscription, custom_resource_event("Create"))
    rotate(stack, NEW)

    def refused(*_: Any) -> bool:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateSecretVersionStage")

    monkeypatch.setattr(subscription, "mark_subscribed", refused)
    # When CINNOX accepts the new URL
    invoke(subscription, custom_resource_event("Update", properties={"WebhookSecretGeneration": "2"}))
    # Then the deploy stands (CINNOX has the new URL), and CloudFormation and the log say the old URL still works
    update = cloudformation.responses[1]
    assert update["Status"] == "SUCCESS"
    assert "label was not moved (ClientError)" in update["Reason"]
    assert "label was not moved" in logs.getvalue()
    assert cinnox.subscription is not None
    assert cinnox.subscription["url"] == f"{webhook_server}/tdr/{NEW}"
    # and no TDR is lost on either URL meanwhile, and no secret is in the answer
    assert post({"challenge": "c"}, path=f"/tdr/{old}").status == 200
    assert post({"challenge": "c"}, path=f"/tdr/{NEW}").status == 200
    assert NEW not in json.dumps(cloudformation.responses)
    assert old not in json.dumps(cloudformation.responses)


def test_an_update_of_a_stack_made_before_the_label_marks_the_subscribed_version(
    subscription: ModuleType, custom_resource_event: Event, cinnox: CinnoxSimulator, stack: Stack
) -> None:
    # Given a stack whose secret carries no label (subscribed before this release)
    assert labels(stack) == {stack.webhook_secret: ["AWSCURRENT"]}
    # When the first deploy with WebhookSecretSubscribedLabel in the template sends its Update
    invoke(subscription, custom_resource_event("Update", properties={"WebhookSecretSubscribedLabel": SUBSCRIBED_LABEL}))
    # Then the version CINNOX accepted (the current one) carries the label
    assert labels(stack) == {stack.webhook_secret: ["AWSCURRENT", SUBSCRIBED_LABEL]}


def test_the_webhook_reads_one_get_secret_value_a_day_and_two_during_a_rotation(stack: Stack) -> None:
    # Given a Secrets Manager client whose GetSecretValue calls are counted
    client = boto3.client("secretsmanager")
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-call.secretsmanager.GetSecretValue", lambda params, **_: calls.append(params["body"])
    )
    secret_id = stack.refs["WebhookSecret"]
    old = stack.webhook_secret
    # When no version carries the label yet (the Create's own probe), Then current only, two calls
    assert read_webhook_secrets(client, secret_id) == WebhookSecrets(old)
    assert len(calls) == 2
    # When the label is on the current version (every day but a rotation's), Then one call (the cold start's)
    version = client.get_secret_value(SecretId=secret_id)["VersionId"]
    client.update_secret_version_stage(SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL, MoveToVersionId=version)
    calls.clear()
    assert read_webhook_secrets(client, secret_id) == WebhookSecrets(old)
    assert len(calls) == 1
    # When a new value waits for CINNOX, Then both values, two calls
    rotate(stack, NEW)
    calls.clear()
    assert read_webhook_secrets(client, secret_id) == WebhookSecrets(NEW, old)
    assert len(calls) == 2


def test_moto_keeps_secrets_managers_label_rules(stack: Stack) -> None:
    """API reference, "PutSecretValue" and "UpdateSecretVersionStage" (local_stack/moto_server.py patches moto)."""
    client = boto3.client("secretsmanager")
    secret_id = stack.refs["WebhookSecret"]
    first = client.get_secret_value(SecretId=secret_id)["VersionId"]
    client.update_secret_version_stage(SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL, MoveToVersionId=first)
    # Given a label on the current version, When a new value is put
    second = client.put_secret_value(SecretId=secret_id, SecretString=NEW)["VersionId"]
    # Then AWSCURRENT and AWSPREVIOUS moved, and our label stayed
    assert labels(stack) == {stack.webhook_secret: ["AWSPREVIOUS", SUBSCRIBED_LABEL], NEW: ["AWSCURRENT"]}
    # When the label is moved without naming the version it is on, Then the call fails and nothing moves
    with pytest.raises(ClientError, match="RemoveFromVersionId"):
        client.update_secret_version_stage(SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL, MoveToVersionId=second)
    assert labels(stack)[NEW] == ["AWSCURRENT"]
    # When it names it, Then the label moves
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL, MoveToVersionId=second, RemoveFromVersionId=first
    )
    assert labels(stack) == {stack.webhook_secret: ["AWSPREVIOUS"], NEW: ["AWSCURRENT", SUBSCRIBED_LABEL]}


def test_the_template_names_the_label_the_code_moves_and_reads(template: Template) -> None:
    # Given the custom resource's properties in template.yaml, Then its label is the one the code uses
    properties = template.resource("CinnoxSubscription")["Properties"]
    assert properties["WebhookSecretSubscribedLabel"] == SUBSCRIBED_LABEL
