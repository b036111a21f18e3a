"""Issue 20, item 6: no wildcard wider than docs/security.md says, and our queues and topics refuse plaintext.

What SAM generates is read from its own translator (tests/iam_rehearsal.py) and judged with the rehearsal's IAM
evaluator. AWS pages relied on, each named where it is used:
- Lambda Developer Guide, "Lambda execution role" permissions for SQS and DynamoDB Streams event sources (what
  the event source mapping calls with the function's role); AWS Managed Policy Reference,
  AWSLambdaSQSQueueExecutionRole and AWSLambdaDynamoDBExecutionRole (their reads name "*").
- IAM User Guide, "Policy evaluation logic" (an explicit Deny wins over any Allow) and "IAM JSON policy elements:
  NotResource".
- AWS SAM, AWS::Serverless::Function `Tracing` (AWSXrayWriteOnlyAccess for any value but Disabled; checked here
  against the translator itself).
- CloudWatch Logs, "Encrypt log data in CloudWatch Logs using AWS KMS" (kms:EncryptionContext:aws:logs:arn).
- SQS, "Amazon SQS security best practices" and SNS, "Amazon SNS security best practices": "Enforce encryption of
  data in transit" (aws:SecureTransport); SNS, "Example cases for Amazon SNS access control", "Limit
  subscriptions to HTTPS" (sns:Protocol); SNS, "Amazon SNS API permissions: Actions and resources reference"
  (one topic per policy, its Resource the topic's ARN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from iam_rehearsal import MANAGED_POLICIES, Call, evaluate, role_statements, transformed_template_with, wildcard
from local_stack.template import ACCOUNT, PSEUDO, REGION, Template

if TYPE_CHECKING:
    from support import Stack

ELSEWHERE_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:someone-elses-queue"
ELSEWHERE_STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/someone-elses-table/stream/2026-01-01T00:00:00.000"
MAPPINGS = {  # the function, the managed policy SAM attaches for its event, and the ARN it must read alone
    "ParkedTdrFunction": ("service-role/AWSLambdaSQSQueueExecutionRole", "ParkingQueue.Arn", ELSEWHERE_QUEUE),
    "DigestFunction": ("service-role/AWSLambdaSQSQueueExecutionRole", "DigestQueue.Arn", ELSEWHERE_QUEUE),
    "AlertFunction": ("service-role/AWSLambdaDynamoDBExecutionRole", "TdrTable.StreamArn", ELSEWHERE_STREAM),
    "MetricsFunction": ("service-role/AWSLambdaDynamoDBExecutionRole", "TdrTable.StreamArn", ELSEWHERE_STREAM),
}
XRAY = "AWSXrayWriteOnlyAccess"


def _resource_actions(policy: str) -> list[str]:
    """The managed policy's queue and stream actions (ListStreams takes no resource: it cannot be scoped)."""
    prefix = "sqs:" if "SQS" in policy else "dynamodb:"
    actions = [a for statement in MANAGED_POLICIES[policy] for a in statement["Action"]]
    return [a for a in actions if a.startswith(prefix) and a != "dynamodb:ListStreams"]


@pytest.mark.parametrize("function", sorted(MAPPINGS))
def test_queue_and_stream_readers_read_their_own_arn_alone(stack: Stack, function: str) -> None:
    """Lambda "Lambda execution role"; IAM "Policy evaluation logic": SAM's SQS and DynamoDB events attach AWS's
    managed execution policies, whose reads name "*"; a Deny with NotResource leaves the function's own ARN."""
    # Given the function's role as SAM makes it (the managed policy is still attached)
    statements = role_statements(transformed_template_with(()), stack.provisioned)
    policy, own_attr, elsewhere = MAPPINGS[function]
    assert any(s.function == function and s.policy == policy for s in statements)
    own = stack.attrs[own_attr]
    others = [elsewhere] + [arn for name, arn in stack.attrs.items() if arn != own and _same_kind(name, own_attr)]
    for action in _resource_actions(policy):
        # Then what the mapping does on its own queue or stream is allowed
        assert evaluate(Call(function, action, own, "mapping"), statements).allowed, (function, action)
        # and on any other queue or stream of the account (the stack's own included) refused
        for other in others:
            verdict = evaluate(Call(function, action, other, "mapping"), statements)
            assert not verdict.allowed, (function, action, other)
            assert verdict.denied_by, (function, action, other)


def _same_kind(name: str, own_attr: str) -> bool:
    """Another queue of the stack, for a queue reader; another stream, for a stream reader."""
    if own_attr.endswith("Queue.Arn"):
        return name.endswith("Queue.Arn")
    return name.endswith(".StreamArn")


def test_x_ray_rights_only_when_tracing_is_active() -> None:
    """AWS SAM `Tracing`: the translator adds AWSXrayWriteOnlyAccess for any value but Disabled (PassThrough too)."""
    # Given the template as SAM transforms it with the defaults, and with Tracing Active
    default = transformed_template_with(())
    active = transformed_template_with((("Tracing", "Active"),))
    for translated, traced in ((default, False), (active, True)):
        functions = {n: r for n, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
        assert len(functions) >= 9
        for name, function in functions.items():
            role = translated["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
            arns = [str(arn) for arn in role.get("ManagedPolicyArns", [])]
            # Then a role has X-Ray write exactly when its function traces
            assert any(arn.endswith(f":policy/{XRAY}") for arn in arns) is traced, (name, arns)
            assert ("TracingConfig" in function["Properties"]) is traced, name
    assert Template.load().parameter_defaults()["Tracing"] == "Disabled"


def _log_group_arn(logical_id: str, stack_name: str = PSEUDO["AWS::StackName"]) -> str:
    """The ARN CloudFormation gives a log group it names (<stack>-<logical id>-<suffix>), as the encryption
    context carries it."""
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{stack_name}-{logical_id}-AbC123xYz"


def _sub(node: Any) -> str:
    text = node["Fn::Sub"] if isinstance(node, dict) else node
    for name, value in {**PSEUDO, "AWS::Partition": "aws"}.items():
        text = text.replace("${" + name + "}", value)
    return str(text)


def test_the_keys_logs_statement_names_this_stacks_log_groups_alone(template: Template) -> None:
    """CloudWatch Logs "Encrypt log data in CloudWatch Logs using AWS KMS": the logs principal is scoped by
    kms:EncryptionContext:aws:logs:arn; here to each of this stack's log groups, not log-group:*."""
    # Given the key policy's statement for the regional logs principal
    statements = template.resource("EncryptionKey")["Properties"]["KeyPolicy"]["Statement"]
    [logs] = [s for s in statements if s["Sid"] == "LogsEncrypt"]
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    patterns = [_sub(p) for p in (patterns if isinstance(patterns, list) else [patterns])]
    encrypted = [
        name
        for name, group in template.resources_of_type("AWS::Logs::LogGroup").items()
        if group["Properties"].get("KmsKeyId") == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    ]
    assert len(encrypted) >= 10
    # Then every log group of the stack under the key is matched
    for name in encrypted:
        assert any(wildcard(p, _log_group_arn(name)) for p in patterns), name
    # And no other log group of the account: another function's, another stack's, a name made to look alike
    for other in (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/someone-else",
        _log_group_arn("WebhookLogGroup", "another-stack"),
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{PSEUDO['AWS::StackName']}-Mine-AbC123",
    ):
        assert not any(wildcard(p, other) for p in patterns), other


def _policies_of(template: Template, kind: str, key: str) -> dict[str, list[dict[str, Any]]]:
    """Each queue's (or topic's) statements, by its logical id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for policy in template.resources_of_type(kind).values():
        properties = policy["Properties"]
        for target in properties[key]:
            found.setdefault(target["Ref"], []).extend(properties["PolicyDocument"]["Statement"])
    return found


def _denies_plaintext(statements: list[dict[str, Any]], action: str, resource: dict[str, Any]) -> bool:
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if (
            statement["Effect"] == "Deny"
            and statement["Principal"] == "*"
            and any(wildcard(a, action, case_sensitive=False) for a in actions)
            and statement["Resource"] == resource
            and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ):
            return True
    return False


def test_every_queue_refuses_plaintext(template: Template) -> None:
    """SQS "Amazon SQS security best practices", "Enforce encryption of data in transit"."""
    policies = _policies_of(template, "AWS::SQS::QueuePolicy", "Queues")
    queues = template.resources_of_type("AWS::SQS::Queue")
    assert len(queues) >= 4
    for queue in queues:
        for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"):
            assert _denies_plaintext(policies.get(queue, []), action, {"Fn::GetAtt": [queue, "Arn"]}), (queue, action)


def test_every_topic_refuses_plaintext_and_http_subscriptions(template: Template) -> None:
    """SNS "Enforce encryption of data in transit"; "Limit subscriptions to HTTPS" (sns:Protocol); one topic per
    policy, each statement's Resource the topic's ARN ("Amazon SNS API permissions: Actions and resources
    reference")."""
    topics = template.resources_of_type("AWS::SNS::Topic")
    assert len(topics) >= 3
    for policy in template.resources_of_type("AWS::SNS::TopicPolicy").values():
        [topic] = policy["Properties"]["Topics"]
        assert all(s["Resource"] == topic for s in policy["Properties"]["PolicyDocument"]["Statement"])
    policies = _policies_of(template, "AWS::SNS::TopicPolicy", "Topics")
    for topic in topics:
        statements = policies.get(topic, [])
        for action in ("sns:Publish", "sns:Subscribe"):
            assert _denies_plaintext(statements, action, {"Ref": topic}), (topic, action)
        http = [
            s
            for s in statements
            if s["Effect"] == "Deny" and s["Action"] == "sns:Subscribe" and s["Principal"] == "*"
            for operator, keys in s.get("Condition", {}).items()
            if operator.startswith("StringEquals") and keys.get("sns:Protocol") in ("http", ["http"])
        ]
        assert http, topic
    # The policy replaces SNS's default one: the ops topic still takes this account's alarms
    [alarms] = [s for s in policies["OpsTopic"] if s["Effect"] == "Allow"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
