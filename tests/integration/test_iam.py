"""IAM rehearsal: the roles SAM makes allow every AWS call the functions make, and grant nothing unused.

The recorder (tests/iam_rehearsal.py, a plugin loaded by conftest.py) sees every call the suite's handlers
make; the final check below runs after every other test. The rest checks the real template's roles as SAM
transforms them (the evaluator's own tests: tests/unit/test_iam.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from iam_rehearsal import (
    DELIBERATE_REFUSALS,
    FINAL_CHECK,
    REHEARSAL,
    Call,
    event_source_calls,
    implied_calls,
    role_statements,
    transformed_template,
    xdist_worker,
)
from local_stack.template import ACCOUNT, REGION, Template
from support import Post, Stack, tdr

if TYPE_CHECKING:
    from types import ModuleType

    import pytest


# --- the real template, as SAM transforms it ---------------------------------------------------


def test_policy_templates_expand_as_sam_expands_them(stack: Stack) -> None:
    """AWS SAM Developer Guide, "AWS SAM policy templates": SNSPublishMessagePolicy, SQSSendMessagePolicy,
    AWSSecretsManagerGetSecretValuePolicy; and the statement SAM adds for an OnFailure SQS destination."""
    statements = role_statements(transformed_template(), stack.provisioned)
    granted = {(s.function, a, r) for s in statements if s.ours for a in s.actions for r in s.resources}
    assert ("AlertFunction", "sns:Publish", stack.refs["AlertTopic"]) in granted
    assert ("AlertFunction", "sqs:SendMessage", stack.attrs["AlertFailureQueue.Arn"]) in granted
    assert ("WebhookFunction", "sqs:SendMessage*", stack.attrs["ParkingQueue.Arn"]) in granted
    assert ("WebhookFunction", "secretsmanager:GetSecretValue", stack.refs["WebhookSecret"]) in granted
    app_token = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cinnox/app-token-??????"
    assert ("SubscriptionFunction", "secretsmanager:GetSecretValue", app_token) in granted
    # The stream and queue readers get AWS's managed execution policies (exempt from the unused check).
    managed = {(s.function, s.policy) for s in statements if not s.ours}
    assert ("AlertFunction", "service-role/AWSLambdaDynamoDBExecutionRole") in managed
    assert ("ParkedTdrFunction", "service-role/AWSLambdaSQSQueueExecutionRole") in managed
    # The webhook only sends to the parking queue: no queue reads in its role
    assert ("WebhookFunction", "service-role/AWSLambdaSQSQueueExecutionRole") not in managed


def test_encrypted_queues_topics_and_secrets_imply_kms_calls(stack: Stack, template: Template) -> None:
    """SQS Developer Guide "Key management" (a producer needs kms:GenerateDataKey and kms:Decrypt);
    SNS Developer Guide "Key management"; Secrets Manager "Secret encryption and decryption"."""
    key = stack.attrs["EncryptionKey.Arn"]
    send = Call("WebhookFunction", "sqs:SendMessage", stack.attrs["ParkingQueue.Arn"], "code")
    assert {(c.action, c.resource) for c in implied_calls(send, template, stack.provisioned)} == {
        ("kms:GenerateDataKey", key),
        ("kms:Decrypt", key),
    }
    read = Call("SubscriptionFunction", "secretsmanager:GetSecretValue", stack.refs["WebhookSecret"], "code")
    assert [c.action for c in implied_calls(read, template, stack.provisioned)] == ["kms:Decrypt"]
    # The AppToken secret is the operator's, under the AWS managed key here: no IAM grant is implied.
    outside = Call("SubscriptionFunction", "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:x", "code")
    assert implied_calls(outside, template, stack.provisioned) == []


def test_event_source_mappings_use_the_function_role(stack: Stack, template: Template) -> None:
    """Lambda Developer Guide, "Lambda execution role" for SQS and DynamoDB Streams event sources, and
    "Capturing discarded batches" (an OnFailure destination is sent to with the function's role)."""
    calls = {(c.function, c.action, c.resource) for c in event_source_calls(template, stack.provisioned)}
    assert ("ParkedTdrFunction", "sqs:ReceiveMessage", stack.attrs["ParkingQueue.Arn"]) in calls
    assert not any(function == "WebhookFunction" for function, _, _ in calls)
    assert ("AlertFunction", "dynamodb:GetRecords", stack.attrs["TdrTable.StreamArn"]) in calls
    assert ("AlertFunction", "sqs:SendMessage", stack.attrs["AlertFailureQueue.Arn"]) in calls
    assert not any(function == "SubscriptionFunction" for function, _, _ in calls)


def test_a_handler_call_is_recorded_for_its_function(webhook: ModuleType, post: Post, stack: Stack) -> None:
    # Given the webhook's handler, loaded from its CodeUri
    put = Call("WebhookFunction", "dynamodb:PutItem", stack.attrs["TdrTable.Arn"], "code: dynamodb.PutItem")
    before = REHEARSAL.calls.get(put, 0)
    # When it stores a TDR
    assert post(tdr()).status == 200
    # Then the PutItem is recorded for WebhookFunction, on the stack's table, and allowed
    assert REHEARSAL.calls[put] == before + 1
    assert not any(call == put for call, _ in REHEARSAL.refused.values())
    # And a call made by the test itself is nobody's
    assert REHEARSAL.running_function(REHEARSAL.app_files()) is None


# --- the final check: after every other test ---------------------------------------------------


def test_every_call_is_allowed_and_every_grant_is_used(request: pytest.FixtureRequest) -> None:
    """IAM User Guide, "Policy evaluation logic" and "Grant least privilege": every call the suite's functions
    made (and the KMS and event-source calls AWS makes with their roles) is allowed by the role SAM generates,
    and, when the whole suite ran, every action and resource of our statements was needed by some call."""
    # Given every call recorded across the suite (this test is moved after all others)
    assert request.session.items[-1].nodeid.endswith(FINAL_CHECK)
    REHEARSAL.final_check_ran = True
    # (under pytest-xdist this worker saw only its share of the calls: the controller judges the whole run
    # when every worker is down, iam_rehearsal.pytest_runtestloop; here, this worker's calls as a partial run)
    whole = REHEARSAL.whole_suite and not xdist_worker(request.config)
    # (run alone, it has nothing to judge; over the whole suite, nothing recorded means no recorder)
    assert REHEARSAL.calls or not whole, "no function made any AWS call: is the recorder installed?"
    # When they are judged against the roles
    refused, unused = REHEARSAL.findings(DELIBERATE_REFUSALS, complete=whole)
    # Then none is refused, and no grant of ours is left unused
    report = ["calls the deployed roles would refuse (AccessDenied):", *refused, "grants no call needs:", *unused]
    assert not refused, "\n".join(report)
    assert not unused, "\n".join(report)
