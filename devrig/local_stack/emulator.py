"""The AWS side: moto's server on loopback, and the template's resources created in it."""

from __future__ import annotations

import json
import secrets
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_stack.httpserver import check_port, free_port
from local_stack.logs import MetricFilter
from local_stack.processes import stop
from local_stack.template import ACCOUNT, REGION, Template, check_sqs_subscriptions, resolve

CREDENTIALS = dict.fromkeys(
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "local"
)  # the emulator takes any


class MotoServer:
    """moto's server as a child process, so it has a core of its own."""

    def __init__(self, port: int = 0, log_file: Path | None = None, python: str = sys.executable) -> None:
        if port:
            check_port(port, "AWS emulator")
        self.port = port or free_port()
        self._log_file = log_file
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        output = self._log_file.open("ab") if self._log_file else subprocess.DEVNULL
        self._process = subprocess.Popen(
            # moto's server, patched where it would slow the demo down (local_stack/moto_server.py)
            [self._python, "-m", "local_stack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, in order
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto's server exited ({self._process.returncode}); see {self._log_file}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):  # nosec B310  # loopback
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto's server did not answer on port {self.port} within {timeout:.0f} s")

    def close(self) -> None:
        stop(self._process)


def session(endpoint: str) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )


@dataclass
class Provisioned:
    """Physical names and attributes of what was created, for Ref and Fn::GetAtt."""

    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    secret_values: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _physical_name(stack: str, logical_id: str, limit: int = 80) -> str:
    suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    return f"{stack}-{logical_id}"[: limit - 13] + f"-{suffix}"


def generate_secret(spec: dict[str, Any]) -> str:
    """A value as Secrets Manager's GenerateSecretString would make it."""
    alphabet = ""
    if not spec.get("ExcludeLowercase"):
        alphabet += string.ascii_lowercase
    if not spec.get("ExcludeUppercase"):
        alphabet += string.ascii_uppercase
    if not spec.get("ExcludeNumbers"):
        alphabet += string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    if spec.get("IncludeSpace"):
        alphabet += " "
    alphabet = "".join(c for c in alphabet if c not in spec.get("ExcludeCharacters", ""))
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def provision(template: Template, parameters: dict[str, str], aws: boto3.Session, stack: str) -> Provisioned:
    """Create in the emulator every table, queue, topic, subscription and secret the template declares."""
    check_sqs_subscriptions(template)  # AWS would take them and drop every message; moto would deliver
    done = Provisioned()
    done.refs.update({**template.parameter_defaults(), **parameters, "AWS::StackName": stack})
    conditions = template.conditions(done.refs)
    resources = template.body["Resources"]
    order = [
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
        "AWS::Logs::MetricFilter",
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::Serverless::Function",
        "AWS::Serverless::HttpApi",
    ]
    for resource_type in order:
        for logical_id, resource in resources.items():
            if resource["Type"] != resource_type:
                continue
            if "Condition" in resource and not conditions[resource["Condition"]]:
                done.skipped.append(f"{logical_id} (condition {resource['Condition']} is false)")
                continue
            properties = choose(resource.get("Properties", {}), conditions)
            if not resource_type.startswith("AWS::Serverless::"):
                properties = resolve(properties, done.refs, done.attrs)
            _CREATORS[resource_type](aws, stack, logical_id, properties, done)
            done.created.append(f"{resource_type} {logical_id}")
    handled = {*order, "AWS::Serverless::LayerVersion"}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            done.skipped.append(f"{logical_id} (evaluated by the local stack on demand, not created)")
        elif resource["Type"] not in handled and not resource["Type"].startswith("Custom::"):
            done.skipped.append(f"{logical_id} ({resource['Type']}: not needed locally)")
    return done


_NO_VALUE = {"Ref": "AWS::NoValue"}


def choose(value: Any, conditions: dict[str, bool]) -> Any:
    """Apply Fn::If with the template's conditions and drop AWS::NoValue, as CloudFormation does
    before a resource sees its properties (e.g. a WarmThroughput set only when a parameter asks)."""
    if isinstance(value, list):
        return [chosen for chosen in (choose(v, conditions) for v in value) if chosen != _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        return choose(when_true if conditions[name] else when_false, conditions)
    chosen = {k: choose(v, conditions) for k, v in value.items()}
    return {k: v for k, v in chosen.items() if v != _NO_VALUE}


def _key(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    kms = aws.client("kms")
    metadata = kms.create_key(Description=properties.get("Description", logical_id))["KeyMetadata"]
    if properties.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    done.refs[logical_id] = metadata["KeyId"]
    done.attrs[f"{logical_id}.Arn"] = metadata["Arn"]
    done.attrs[f"{logical_id}.KeyId"] = metadata["KeyId"]


def _secret(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    value = properties.get("SecretString") or generate_secret(properties.get("GenerateSecretString", {}))
    name = properties.get("Name") or _physical_name(stack, logical_id, 256)
    arn = aws.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
    done.refs[logical_id] = arn
    done.secret_values[logical_id] = value


def _log_group(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    logs = aws.client("logs")
    name = properties.get("LogGroupName") or _physical_name(stack, logical_id, 512)
    arguments: dict[str, Any] = {"logGroupName": name}
    if "KmsKeyId" in properties:
        arguments["kmsKeyId"] = properties["KmsKeyId"]
    logs.create_log_group(**arguments)
    if "RetentionInDays" in properties:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
    done.refs[logical_id] = name
    done.attrs[f"{logical_id}.Arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"  # as GetAtt gives it


def _metric_filter(
    aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned
) -> None:
    checked = MetricFilter.from_properties(logical_id, properties)  # refuses what the local stack cannot apply
    name = properties.get("FilterName") or _physical_name(stack, logical_id, 512)
    transformation: dict[str, Any] = {
        "metricName": checked.metric,
        "metricNamespace": checked.namespace,
        "metricValue": checked.value,
    }
    if checked.default is not None:
        transformation["defaultValue"] = checked.default
    aws.client("logs").put_metric_filter(
        logGroupName=checked.log_group,
        filterName=name,
        filterPattern=checked.pattern.text,
        metricTransformations=[transformation],
    )
    done.refs[logical_id] = name


def _table(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    dynamodb = aws.client("dynamodb")
    name = properties.get("TableName") or _physical_name(stack, logical_id, 255)
    arguments: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if arguments["BillingMode"] == "PROVISIONED":
        arguments["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    if "GlobalSecondaryIndexes" in properties:
        # As the template has them (an on-demand table's indexes take no throughput of their own).
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    if "SSESpecification" in properties:
        arguments["SSESpecification"] = {"Enabled": properties["SSESpecification"]["SSEEnabled"]}
    described = dynamodb.create_table(**arguments)["TableDescription"]
    if "TimeToLiveSpecification" in properties:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in properties:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification=properties["PointInTimeRecoverySpecification"]
        )
    done.refs[logical_id] = name
    done.attrs[f"{logical_id}.Arn"] = described["TableArn"]
    if "LatestStreamArn" in described:
        done.attrs[f"{logical_id}.StreamArn"] = described["LatestStreamArn"]


def _attribute_text(value: Any) -> str:
    """A property as CloudFormation passes it to SQS or SNS: an object (RedrivePolicy) as JSON, booleans as "true"."""
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _queue(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    sqs = aws.client("sqs")
    name = properties.get("QueueName") or _physical_name(stack, logical_id)
    attributes = {key: _attribute_text(value) for key, value in properties.items() if key not in ("QueueName", "Tags")}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    done.refs[logical_id] = url
    done.attrs[f"{logical_id}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    done.attrs[f"{logical_id}.QueueName"] = name
    done.attrs[f"{logical_id}.QueueUrl"] = url


def _topic(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    name = properties.get("TopicName") or _physical_name(stack, logical_id, 256)
    attributes = {
        key: str(value)
        for key, value in properties.items()
        if key in ("DisplayName", "KmsMasterKeyId", "DeliveryPolicy", "Policy")
    }
    arn = aws.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    done.refs[logical_id] = arn
    done.attrs[f"{logical_id}.TopicArn"] = arn
    done.attrs[f"{logical_id}.TopicName"] = name


def _subscription(
    aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned
) -> None:
    resolved = resolve(properties, done.refs, done.attrs)
    # The subscription attributes CloudFormation sets (RawMessageDelivery, FilterPolicy, ...).
    attributes = {
        key: _attribute_text(value)
        for key, value in resolved.items()
        if key in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy", "DeliveryPolicy")
    }
    answer = aws.client("sns").subscribe(
        TopicArn=resolved["TopicArn"],
        Protocol=resolved["Protocol"],
        Endpoint=resolved["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    done.refs[logical_id] = answer["SubscriptionArn"]


def _function(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    name = properties.get("FunctionName") or _physical_name(stack, logical_id, 64)
    done.refs[logical_id] = name
    done.attrs[f"{logical_id}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _http_api(aws: boto3.Session, stack: str, logical_id: str, properties: dict[str, Any], done: Provisioned) -> None:
    done.refs[logical_id] = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))


_CREATORS = {
    "AWS::KMS::Key": _key,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Logs::MetricFilter": _metric_filter,
    "AWS::DynamoDB::Table": _table,
    "AWS::SQS::Queue": _queue,
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::Subscription": _subscription,
    "AWS::Serverless::Function": _function,
    "AWS::Serverless::HttpApi": _http_api,
}
