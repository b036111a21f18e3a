"""The CloudFormation lifecycle, rehearsed through the real local stack.

Each step sends the events CloudFormation really sends ("Custom resource request objects",
"Custom resources" overview: PhysicalResourceId from the previous answer, OldResourceProperties,
rollback Updates and Deletes) to the real subscription function, and CINNOX's state (one
subscription per AppID, as CINNOX keeps them) is checked after every step. The emulator's own
rules (CloudFormation's, which moto does not enforce) are checked on their own in tests/integration/test_lifecycle.py
and tests/unit/test_lifecycle.py.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cinnox_sms_cli.report import Period
from local_stack.cinnox import CinnoxSimulator
from local_stack.cli import REPORT_WAIT_SECONDS, operator_command, rollups_covering
from local_stack.emulator import MotoServer
from local_stack.stack import LocalStack, ResourceEvent, StackError, StackOptions
from local_stack.template import REGION, Template

APP = "lifecycle-app-0001"
PHYSICAL_ID = f"cinnox-outbound-sms-sub-{APP}"
OTHER_APP = "lifecycle-app-0002"
NOT_CREATED = "cinnox-outbound-sms-sub-not-created-"
PRODUCTION = "https://production.example.com/tdr/the-production-secret"
SUBSCRIBED_MAX_AGE = 1.0  # WEBHOOK_SUBSCRIBED_MAX_AGE's default: how long the old URL outlives CINNOX's acceptance


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server for the module's stacks; the process environment is restored after."""
    saved = dict(os.environ)
    moto = MotoServer(log_file=tmp_path_factory.mktemp("moto") / "moto.log")
    moto.start()
    yield moto.endpoint
    moto.close()
    os.environ.clear()
    os.environ.update(saved)


def _stack(emulator: str, name: str, tmp_path: Path, cinnox: CinnoxSimulator | None = None) -> LocalStack:
    options = StackOptions(endpoint_url=emulator, app_id=APP, stack_name=name, log_dir=tmp_path / name, cinnox=cinnox)
    return LocalStack(Template.load(), options)


def _state(cinnox: CinnoxSimulator) -> dict[str, tuple[bool, str]]:
    return {app: (s["enabled"], s["url"]) for app, s in cinnox.subscriptions.items()}


def _rotate(stack: LocalStack) -> str:
    """An operator's rotation: a new value in the WebhookSecret secret (the deploy then follows)."""
    assert stack.aws is not None
    value = secrets.token_hex(20)
    stack.aws.client("secretsmanager").put_secret_value(
        SecretId=stack.provisioned.refs["WebhookSecret"], SecretString=value
    )
    return value


def _seen(event: ResourceEvent) -> tuple[str, str, str]:
    """The event's type, the stack's status while it ran, and the answer as CloudFormation took it."""
    return event.request_type, event.stack_status, event.status


def _cloudformation(endpoint_url: str) -> Any:
    return boto3.client(
        "cloudformation",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # nosec B106  # the emulator takes any
    )


def _webhook(stack: LocalStack, secret: str) -> str:
    return f"{stack.output('WebhookBaseUrl')}/{secret}"


# --- the rehearsal -----------------------------------------------------------------


def test_create_rotate_refused_update_rollback_replace_delete(emulator: str, tmp_path: Path) -> None:
    """A stack's life: every event as CloudFormation sends it, CINNOX checked after each."""
    stack = _stack(emulator, "lifecycle-one", tmp_path)
    try:
        # Given a new stack: CloudFormation sends a Create (no PhysicalResourceId yet)
        stack.start()
        assert stack.cinnox is not None
        cinnox = stack.cinnox
        first_secret = stack.secret("WebhookSecret")
        assert stack.stack_status == "CREATE_COMPLETE"
        [create] = stack.events
        assert _seen(create) == ("Create", "CREATE_IN_PROGRESS", "SUCCESS")
        assert "PhysicalResourceId" not in create.event
        assert "OldResourceProperties" not in create.event
        assert create.answered_physical_id == PHYSICAL_ID
        # Then CINNOX sends the app's events to the webhook, secret and all
        assert _state(cinnox) == {APP: (True, _webhook(stack, first_secret))}
        # and the functions' DescribeStacks (their AWS_ENDPOINT_URL_CLOUDFORMATION) tells the stack's status
        assert stack.cloudformation is not None
        client = _cloudformation(stack.cloudformation.base_url)
        [described] = client.describe_stacks(StackName=stack.record.stack_id)["Stacks"]
        assert (described["StackName"], described["StackStatus"]) == ("lifecycle-one", "CREATE_COMPLETE")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        assert outputs["WebhookBaseUrl"] == stack.output("WebhookBaseUrl")
        assert {h.spec.environment["AWS_ENDPOINT_URL_CLOUDFORMATION"] for h in stack.hosts.values()} == {
            stack.cloudformation.base_url
        }

        # When the operator rotates the secret and deploys with WebhookSecretGeneration changed
        second_secret = _rotate(stack)
        assert stack.update({"WebhookSecretGeneration": "2"}) == "UPDATE_COMPLETE"
        # Then CloudFormation sent one Update, for the id the Create answered, with the old properties
        [update] = stack.events[1:]
        assert _seen(update) == ("Update", "UPDATE_IN_PROGRESS", "SUCCESS")
        assert update.event["PhysicalResourceId"] == PHYSICAL_ID
        assert update.event["ResourceProperties"]["WebhookSecretGeneration"] == "2"
        assert update.event["OldResourceProperties"]["WebhookSecretGeneration"] == "1"
        # and the same id came back: an update in place, no cleanup Delete
        assert update.answered_physical_id == PHYSICAL_ID
        # and CINNOX moved to the new URL
        assert _state(cinnox) == {APP: (True, _webhook(stack, second_secret))}

        # When the next deploy (generation 3) is refused by CINNOX: its challenge fails, retry included
        cinnox.refuse_verification = True
        accepted = len(cinnox.history)
        # Then the stack rolls back, and the rollback completes ("Custom resources": a failed
        # Update is rolled back by an Update whose ResourceProperties are the old ones)
        assert stack.update({"WebhookSecretGeneration": "3"}) == "UPDATE_ROLLBACK_COMPLETE"
        refused, rollback = stack.events[2:]
        assert _seen(refused) == (
            "Update",
            "UPDATE_IN_PROGRESS",
            "FAILED",
        )
        assert refused.answered_physical_id == PHYSICAL_ID  # a failed Update keeps the id it was sent
        assert "CINNOX did not accept" in refused.reason
        assert _seen(rollback) == (
            "Update",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "SUCCESS",
        )
        assert rollback.event["PhysicalResourceId"] == PHYSICAL_ID
        assert rollback.event["ResourceProperties"]["WebhookSecretGeneration"] == "2"
        assert rollback.event["OldResourceProperties"]["WebhookSecretGeneration"] == "3"
        # and CINNOX still sends to the URL it verified last (it accepted no PATCH since)
        assert len(cinnox.history) == accepted
        assert _state(cinnox) == {APP: (True, _webhook(stack, second_secret))}

        # When the stack moves to another AppID (the same account's token serves both here)
        cinnox.refuse_verification = False
        cinnox.add_app(OTHER_APP, cinnox.token)
        assert stack.update({"CinnoxAppId": OTHER_APP}) == "UPDATE_COMPLETE"
        # Then the Update answers a new id: a replacement, so CloudFormation's cleanup deletes
        # the old id, with the old properties ("Custom resource response objects")
        moved, cleanup = stack.events[4:]
        assert _seen(moved) == ("Update", "UPDATE_IN_PROGRESS", "SUCCESS")
        assert moved.answered_physical_id == f"cinnox-outbound-sms-sub-{OTHER_APP}"
        assert _seen(cleanup) == ("Delete", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "SUCCESS")
        assert cleanup.event["PhysicalResourceId"] == PHYSICAL_ID
        assert cleanup.event["ResourceProperties"]["CinnoxAppId"] == APP
        # and CINNOX sends the new app's events to the webhook, the old app's no more
        assert _state(cinnox) == {
            APP: (False, _webhook(stack, second_secret)),
            OTHER_APP: (True, _webhook(stack, second_secret)),
        }

        # When the stack is deleted
        reads = len(cinnox.reads)
        [answer] = stack.delete()
        # Then one Delete, for the id it holds now, unsubscribes after a look at CINNOX's list
        assert stack.stack_status == "DELETE_COMPLETE"
        delete = stack.events[-1]
        assert _seen(delete) == ("Delete", "DELETE_IN_PROGRESS", "SUCCESS")
        assert delete.event["PhysicalResourceId"] == f"cinnox-outbound-sms-sub-{OTHER_APP}"
        assert answer["Status"] == "SUCCESS"
        assert len(cinnox.reads) == reads + 1
        assert _state(cinnox) == {
            APP: (False, _webhook(stack, second_secret)),
            OTHER_APP: (False, _webhook(stack, second_secret)),
        }
        assert len(stack.events) == 7
        # and DescribeStacks knows the deleted stack by its id only, as CloudFormation does
        [gone] = client.describe_stacks(StackName=stack.record.stack_id)["Stacks"]
        assert gone["StackStatus"] == "DELETE_COMPLETE"
        with pytest.raises(ClientError, match="does not exist"):
            client.describe_stacks(StackName="lifecycle-one")
    finally:
        stack.stop()


def _post(url: str, body: dict[str, Any]) -> int:
    """POST to our own webhook on loopback; the HTTP status."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # nosec B310  # loopback
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def _tdr(transaction_id: str) -> dict[str, Any]:
    return {"Type": "tdr", "AppID": APP, "TransactionID": transaction_id, "Status": "Delivered"}


def _labelled(stack: LocalStack) -> dict[str, list[str]]:
    """The webhook secret's staging labels, by value ("UpdateSecretVersionStage": one version per label)."""
    assert stack.aws is not None
    client = stack.aws.client("secretsmanager")
    secret_id = stack.provisioned.refs["WebhookSecret"]
    stages = client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    return {
        client.get_secret_value(SecretId=secret_id, VersionId=version)["SecretString"]: sorted(labels)
        for version, labels in stages.items()
    }


def test_rotation_refused_keeps_cinnoxs_url_and_accepted_stops_the_old_one_at_once(
    emulator: str, tmp_path: Path
) -> None:
    """Issue 19, item 7: the webhook accepts the URL CINNOX has (the version the CINNOXSUBSCRIBED label marks,
    moved only once CINNOX accepted the PATCH) and the current one. On today's main the refused rotation's
    old URL answered 404 from the custom resource's probe on, and every TDR CINNOX sent there was lost."""
    stack = _stack(emulator, "lifecycle-rotation", tmp_path)
    try:
        # Given a stack created and subscribed, its webhook warm
        stack.start()
        assert stack.cinnox is not None
        cinnox = stack.cinnox
        first = stack.secret("WebhookSecret")
        assert _state(cinnox) == {APP: (True, _webhook(stack, first))}
        assert _post(_webhook(stack, first), _tdr("rot-0")) == 200
        # When the operator puts a new value and deploys, and CINNOX refuses the new URL (its challenge fails)
        second = _rotate(stack)
        cinnox.refuse_verification = True
        assert stack.update({"WebhookSecretGeneration": "2"}) == "UPDATE_ROLLBACK_COMPLETE"
        # Then CINNOX keeps the old URL, whose version keeps the label
        assert _state(cinnox) == {APP: (True, _webhook(stack, first))}
        assert _labelled(stack) == {first: ["AWSPREVIOUS", "CINNOXSUBSCRIBED"], second: ["AWSCURRENT"]}
        # and CINNOX's TDRs to it are taken, as soon as the deploy is over and after the re-read window (1 s)
        assert _post(_webhook(stack, first), _tdr("rot-1")) == 200
        time.sleep(SUBSCRIBED_MAX_AGE)
        assert _post(_webhook(stack, first), _tdr("rot-2")) == 200

        # When CINNOX accepts again and the operator deploys once more
        cinnox.refuse_verification = False
        assert stack.update({"WebhookSecretGeneration": "3"}) == "UPDATE_COMPLETE"
        accepted = time.monotonic()
        # Then CINNOX has the new URL, and the label moved with it
        assert _state(cinnox) == {APP: (True, _webhook(stack, second))}
        assert _labelled(stack) == {first: ["AWSPREVIOUS"], second: ["AWSCURRENT", "CINNOXSUBSCRIBED"]}
        # and the old URL answers 404 at once: by the end of the window (WEBHOOK_SUBSCRIBED_MAX_AGE, 1 s) since
        # CINNOX accepted, on this warm instance, which had read the old URL's version as CINNOX's before
        time.sleep(max(0.0, accepted + SUBSCRIBED_MAX_AGE - time.monotonic()))
        assert _post(_webhook(stack, first), _tdr("rot-3")) == 404
        assert _post(_webhook(stack, second), _tdr("rot-4")) == 200
    finally:
        stack.stop()


def test_refused_create_rolls_back_without_touching_cinnox(emulator: str, tmp_path: Path) -> None:
    """A failed Create is followed by a Delete for the id it returned ("Custom resources" overview):
    that Delete must not unsubscribe what the stack never subscribed (here: production's webhook)."""
    # Given CINNOX already sending the app's events to production, and refusing the new stack's URL
    cinnox = CinnoxSimulator(APP, "local-" + secrets.token_urlsafe(24))
    cinnox.subscribe(APP, PRODUCTION)
    cinnox.refuse_verification = True
    stack = _stack(emulator, "lifecycle-refused", tmp_path, cinnox)
    try:
        # When the stack is created
        with pytest.raises(StackError, match="CinnoxSubscription failed"):
            stack.start()
        # Then the Create failed with an id that says so, and the rollback's Delete carried that id
        assert stack.stack_status == "ROLLBACK_COMPLETE"
        create, delete = stack.events
        assert (create.request_type, create.status) == ("Create", "FAILED")
        assert create.answered_physical_id is not None
        assert create.answered_physical_id.startswith(NOT_CREATED)
        assert _seen(delete) == (
            "Delete",
            "ROLLBACK_IN_PROGRESS",
            "SUCCESS",
        )
        assert delete.event["PhysicalResourceId"] == create.answered_physical_id
        # and CINNOX was left alone: no read, no unsubscribe, production still subscribed
        assert cinnox.reads == []
        assert all(call.body["enabled"] is True for call in cinnox.calls)  # only the refused subscribes
        assert _state(cinnox) == {APP: (True, PRODUCTION)}
        # and a stack in ROLLBACK_COMPLETE deletes without a further event
        assert stack.delete() == []
        assert len(stack.events) == 2
        assert _state(cinnox) == {APP: (True, PRODUCTION)}
    finally:
        stack.stop()
        cinnox.close()


def test_two_stacks_one_app_id_deleting_the_older_leaves_the_newer_subscribed(emulator: str, tmp_path: Path) -> None:
    """Two stacks deployed for one AppID: CINNOX keeps one subscription, the newest."""
    cinnox = CinnoxSimulator(APP, "local-" + secrets.token_urlsafe(24))
    older = _stack(emulator, "lifecycle-older", tmp_path, cinnox)
    newer = _stack(emulator, "lifecycle-newer", tmp_path, cinnox)
    try:
        # Given a stack subscribed for the app
        older.start()
        assert _state(cinnox) == {APP: (True, _webhook(older, older.secret("WebhookSecret")))}
        # When a second stack is deployed for the same AppID
        newer.start()
        # Then CINNOX sends to the newer stack only
        assert _state(cinnox) == {APP: (True, _webhook(newer, newer.secret("WebhookSecret")))}
        # When the older stack is deleted
        patches = len(cinnox.calls)
        [answer] = older.delete()
        # Then its Delete succeeds without a PATCH: CINNOX no longer points at it
        assert answer["Status"] == "SUCCESS"
        assert "not unsubscribed" in answer["Reason"]
        assert len(cinnox.calls) == patches
        assert _state(cinnox) == {APP: (True, _webhook(newer, newer.secret("WebhookSecret")))}
        # When the newer stack is deleted, Then the app is unsubscribed
        [answer] = newer.delete()
        assert answer["Status"] == "SUCCESS"
        assert _state(cinnox)[APP][0] is False
    finally:
        older.stop()
        newer.stop()
        cinnox.close()


def test_the_operator_tool_works_against_the_local_stack_as_make_local_prints(emulator: str, tmp_path: Path) -> None:
    """`cinnox-sms --stack` reads the stack's outputs through DescribeStacks, which the local stack answers."""
    stack = _stack(emulator, "lifecycle-operator", tmp_path)
    try:
        # Given a running local stack with a TDR stored
        stack.start()
        answer = urllib.request.urlopen(  # our own gateway on loopback
            urllib.request.Request(
                _webhook(stack, stack.secret("WebhookSecret")),
                data=json.dumps(
                    {"Type": "tdr", "AppID": APP, "TransactionID": "op-1", "Status": "Rejected"}
                    | {"RecipientCountry": "HK"}
                ).encode(),
                method="POST",
            ),
            timeout=10,
        )
        assert answer.status == 200
        # And counted into the rollups by MetricsFunction (its stream mapping batches for up to 15 s)
        now = datetime.now(UTC)
        counted = rollups_covering(stack, Period.covering(now - timedelta(hours=1), now), 1, REPORT_WAIT_SECONDS)
        assert sum(sum(count.counts.values()) for count in counted) == 1
        # When the command `make local` prints is run from a shell with nothing else set up
        command = operator_command(stack, "report", "--since", "1h", "--view", "arrival", "--format", "json")
        result = subprocess.run(  # our own command line
            ["/bin/bash", "-c", command],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # a bare shell: not the venv's PATH
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # Then it found the table through the stack and reported the TDR
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert any(row.get("country") == "HK" and row.get("rejected") == 1 for row in rows), rows
    finally:
        stack.stop()
