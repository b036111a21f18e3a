"""Reads template.yaml: the tests and the local stack take names and shapes from it."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "cinnox-sms",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt, ...)."""


def _short_form(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _short_form)


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE) -> Template:
        loader = _CfnLoader(path.read_text())  # a SafeLoader: what yaml.load does, with the short forms
        try:
            return cls(loader.get_single_data())
        finally:
            loader.dispose()

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.body["Resources"][logical_id]
        return resource

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.body["Resources"].items() if r["Type"] == resource_type}

    def parameter_defaults(self) -> dict[str, str]:
        return {name: str(p["Default"]) for name, p in self.body["Parameters"].items() if "Default" in p}

    def function(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with the template's Globals applied."""
        merged = dict(self.body.get("Globals", {}).get("Function", {}))
        properties = dict(self.resource(logical_id)["Properties"])
        global_env = merged.get("Environment", {}).get("Variables", {})
        own_env = properties.get("Environment", {}).get("Variables", {})
        merged.update(properties)
        merged["Environment"] = {"Variables": {**global_env, **own_env}}
        return merged

    def environment(self, logical_id: str, refs: dict[str, str], attrs: dict[str, str]) -> dict[str, str]:
        variables = self.function(logical_id)["Environment"]["Variables"]
        return {name: str(resolve(value, refs, attrs)) for name, value in variables.items()}

    def properties(self, logical_id: str, refs: dict[str, str], attrs: dict[str, str]) -> dict[str, Any]:
        resolved: dict[str, Any] = resolve(self.resource(logical_id)["Properties"], refs, attrs)
        return resolved

    def table_definition(self, logical_id: str, table_name: str) -> dict[str, Any]:
        """CreateTable arguments from the table's KeySchema, attributes, indexes, billing and stream."""
        properties = self.resource(logical_id)["Properties"]
        definition = {
            "TableName": table_name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties["BillingMode"],
            "StreamSpecification": {"StreamEnabled": True, **properties["StreamSpecification"]},
        }
        if "GlobalSecondaryIndexes" in properties:  # an attribute defined is one a key uses (CreateTable)
            definition["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        return definition

    def conditions(self, refs: dict[str, str]) -> dict[str, bool]:
        """Evaluate the template's Conditions (Fn::Equals, Not, And, Or, Condition)."""
        results: dict[str, bool] = {}

        def evaluate(node: Any) -> Any:
            if isinstance(node, dict) and len(node) == 1:
                [(key, value)] = node.items()
                if key == "Fn::Equals":
                    left, right = (evaluate(v) for v in value)
                    return str(left) == str(right)
                if key == "Fn::Not":
                    return not evaluate(value[0])
                if key == "Fn::And":
                    return all(evaluate(v) for v in value)
                if key == "Fn::Or":
                    return any(evaluate(v) for v in value)
                if key == "Condition":
                    return condition(value)
            return resolve(node, refs, {})

        def condition(name: str) -> bool:
            if name not in results:
                results[name] = bool(evaluate(self.body.get("Conditions", {})[name]))
            return results[name]

        for name in self.body.get("Conditions", {}):
            condition(name)
        return results

    def http_routes(self) -> list[tuple[str, str, str, str]]:
        """(api logical id, method, path, function logical id) of every HttpApi event."""
        routes = []
        for name, resource in self.resources_of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    properties = event.get("Properties", {})
                    api = properties.get("ApiId", {"Ref": "ServerlessHttpApi"})["Ref"]
                    routes.append(
                        (api, properties.get("Method", "ANY").upper(), properties.get("Path", "$default"), name)
                    )
        return routes


def resolve(value: Any, refs: dict[str, str], attrs: dict[str, str]) -> Any:
    """Resolve Ref, GetAtt and Sub against known values (parameters, resources, pseudo)."""
    known = {**PSEUDO, **refs}
    if isinstance(value, list):
        return [resolve(v, refs, attrs) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return known[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        return attrs[".".join(value["Fn::GetAtt"])]
    if set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            return known[name] if name in known else attrs[name]

        return re.sub(r"\$\{([^}]+)\}", substitute, text)
    return {k: resolve(v, refs, attrs) for k, v in value.items()}


def load_function_module(template: Template, logical_id: str) -> ModuleType:
    """Import a function's handler module from its CodeUri, as Lambda would, under a unique name."""
    function = template.function(logical_id)
    module_name, _, _ = function["Handler"].rpartition(".")
    path = ROOT / function["CodeUri"] / f"{module_name.replace('.', '/')}.py"
    name = f"{logical_id}_{module_name}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- Lambda event filtering ----------------------------------------------------------
# The rule syntax is the Lambda Developer Guide's "Control which events Lambda sends to
# your function" (Filter rule syntax); what a DynamoDB mapping may filter on is its
# "Using event filtering with a DynamoDB event source". Lambda refuses a bad pattern when
# the mapping is created, so the local stack refuses it there too.

MAX_FILTERS = 5  # per event source mapping: Lambda's default quota
MAX_PATTERN_LENGTH = 4096  # Filter.Pattern, in the Lambda API reference
DYNAMODB_DATA_KEY = "dynamodb"  # "DynamoDB event source mappings only support filtering on the dynamodb key"
_OPERAND_SHAPES = {
    "exists": "true or false",
    "prefix": "a string",
    "suffix": "a string",
    "equals-ignore-case": "a string",
    "anything-but": "a string, a number, or a non-empty array of strings or of numbers",
}
_NOT_EVALUATED_LOCALLY = {"numeric"}  # Lambda syntax; no pattern of ours needs it
_ABSENT = object()


class FilterPatternError(ValueError):
    """A filter pattern Lambda would refuse at CreateEventSourceMapping (or the local stack cannot evaluate)."""


def check_filter_pattern(pattern: Any, where: str = "pattern") -> None:
    """Refuse a pattern that is not Lambda's filter rule syntax, naming the place that is wrong."""
    if not isinstance(pattern, dict) or not pattern:
        raise FilterPatternError(f"{where}: a filter pattern is a non-empty JSON object")
    for key, value in pattern.items():
        path = f"{where}.{key}"
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise FilterPatternError(f"{path}: $or takes an array of at least two objects")
            for index, branch in enumerate(value):
                check_filter_pattern(branch, f"{path}[{index}]")
        elif isinstance(value, dict):
            check_filter_pattern(value, path)
        elif isinstance(value, list) and value:
            for rule in value:
                _check_rule(rule, path)
        elif isinstance(value, list):
            raise FilterPatternError(f"{path}: an empty array matches nothing; Lambda refuses it")
        else:
            raise FilterPatternError(f"{path}: must be an object or an array of rules, not {json.dumps(value)}")


def _check_rule(rule: Any, path: str) -> None:
    if rule is None or isinstance(rule, str | int | float):  # null, "", a value to equal (bool is an int)
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        raise FilterPatternError(f"{path}: a rule is a value or an object with one operator, not {json.dumps(rule)}")
    [(operator, operand)] = rule.items()
    if operator in _NOT_EVALUATED_LOCALLY:
        raise FilterPatternError(f"{path}: {operator!r} is Lambda syntax, but the local stack does not evaluate it")
    if operator not in _OPERAND_SHAPES:
        raise FilterPatternError(f"{path}: {operator!r} is not an operator of Lambda's filter rule syntax")
    if not _operand_fits(operator, operand):
        raise FilterPatternError(f"{path}: {operator} takes {_OPERAND_SHAPES[operator]}, not {json.dumps(operand)}")


def _operand_fits(operator: str, operand: Any) -> bool:
    if operator == "exists":
        return isinstance(operand, bool)
    if operator != "anything-but":
        return isinstance(operand, str)
    values = operand if isinstance(operand, list) else [operand]
    return bool(values) and (all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values))


def check_dynamodb_filter(pattern: Any, where: str = "pattern") -> None:
    """Refuse a pattern a DynamoDB event source mapping refuses: the syntax, and any key but `dynamodb`."""
    check_filter_pattern(pattern, where)
    for key, value in pattern.items():
        if key == "$or":
            for index, branch in enumerate(value):
                check_dynamodb_filter(branch, f"{where}.$or[{index}]")
        elif key != DYNAMODB_DATA_KEY:
            raise FilterPatternError(
                f"{where}: a DynamoDB event source mapping filters on the {DYNAMODB_DATA_KEY!r} key only, "
                f"not {key!r} (Lambda Developer Guide: Using event filtering with a DynamoDB event source)"
            )
        elif not isinstance(value, dict):
            raise FilterPatternError(f"{where}.{key}: filter on the fields inside the record's dynamodb object")


def dynamodb_filters(filter_criteria: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
    """The patterns of a DynamoDB mapping's FilterCriteria, refused where Lambda would refuse them."""
    filters = (filter_criteria or {}).get("Filters") or []
    if len(filters) > MAX_FILTERS:
        raise FilterPatternError(f"{len(filters)} filters: a mapping takes {MAX_FILTERS} unless the quota is raised")
    patterns = []
    for index, entry in enumerate(filters):
        where = f"FilterCriteria.Filters[{index}].Pattern"
        text = entry.get("Pattern", "") if isinstance(entry, dict) else ""
        if len(text) > MAX_PATTERN_LENGTH:
            raise FilterPatternError(f"{where}: {len(text)} characters, over Lambda's {MAX_PATTERN_LENGTH}")
        try:
            pattern = json.loads(text)
        except json.JSONDecodeError as error:
            raise FilterPatternError(f"{where}: not JSON ({error})") from None
        check_dynamodb_filter(pattern, where)
        patterns.append(pattern)
    return tuple(patterns)


def matches_filter(pattern: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether an event source mapping filter pattern keeps a record.

    Evaluates Lambda's filter rule syntax but ``numeric``: equals (strings, numbers,
    true/false, null, ""), ``exists``, ``prefix``, ``suffix``, ``equals-ignore-case``,
    ``anything-but`` and ``$or``, nested to any depth. Rules apply to leaves only, as in
    Lambda: ``exists`` on a field that holds an object is false, and an array matches
    when one of its elements does.
    """
    check_filter_pattern(pattern)
    return _matches(pattern, record)


def _matches(pattern: dict[str, Any], node: Any) -> bool:
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_matches(branch, node) for branch in expected):
                return False
            continue
        value = node.get(key, _ABSENT) if isinstance(node, dict) else _ABSENT
        if isinstance(expected, dict):
            # A pattern is a set of leaf paths: under a field that is absent (or holds no object), each path is
            # absent, which only `exists: false` accepts (the pattern is matched against an empty object).
            objects = [obj for obj in _flatten(value) if isinstance(obj, dict)] or [{}]
            if not any(_matches(expected, obj) for obj in objects):
                return False
        else:
            leaves = [leaf for leaf in _flatten(value) if not isinstance(leaf, dict)]
            if not any(_rule_matches(rule, leaves) for rule in expected):
                return False
    return True


def _flatten(value: Any) -> list[Any]:
    if value is _ABSENT:
        return []
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    return [value]


def _rule_matches(rule: Any, leaves: list[Any]) -> bool:
    if not isinstance(rule, dict):
        return any(_equals(rule, leaf) for leaf in leaves)
    [(operator, operand)] = rule.items()
    if operator == "exists":
        return bool(leaves) is operand
    return any(_operator_matches(operator, operand, leaf) for leaf in leaves)


def _operator_matches(operator: str, operand: Any, leaf: Any) -> bool:
    if operator == "anything-but":
        return not any(_equals(excluded, leaf) for excluded in (operand if isinstance(operand, list) else [operand]))
    if not isinstance(leaf, str):
        return False
    if operator == "prefix":
        return leaf.startswith(operand)
    if operator == "suffix":
        return leaf.endswith(operand)
    return leaf.casefold() == str(operand).casefold()  # equals-ignore-case


def _equals(rule: Any, leaf: Any) -> bool:
    """Lambda matches values by type: the string "1" is not the number 1, and true is not 1."""
    if rule is None or isinstance(rule, bool) or leaf is None or isinstance(leaf, bool):
        return rule is leaf
    if _is_number(rule):
        return _is_number(leaf) and rule == leaf
    return isinstance(leaf, str) and rule == leaf


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def stream_filters(template: Template, function: str, event: str) -> list[dict[str, Any]]:
    """A function's stream FilterCriteria patterns, checked as Lambda checks them for a DynamoDB source."""
    properties = template.resource(function)["Properties"]["Events"][event]["Properties"]
    return list(dynamodb_filters(properties["FilterCriteria"]))


# --- DynamoDB stream event source mappings ---------------------------------------------
# The ranges are the Lambda API reference's, CreateEventSourceMapping: Lambda refuses a mapping
# outside them, so the local stack refuses the template when it reads it.

MAX_TUMBLING_WINDOW = 900  # TumblingWindowInSeconds: 0 (none) to 900
PARALLELIZATION_FACTORS = range(1, 11)  # ParallelizationFactor: 1 to 10
MAX_RETRY_ATTEMPTS = 10_000  # MaximumRetryAttempts: -1 (until the record expires) to 10,000
RECORD_AGES = range(60, 604_801)  # MaximumRecordAgeInSeconds: -1 (infinite) or 60 to 604,800


class StreamMappingError(ValueError):
    """A DynamoDB stream event source mapping Lambda would refuse at CreateEventSourceMapping."""


def check_stream_mapping(properties: dict[str, Any], where: str = "DynamoDB event") -> None:
    """Refuse the ranges Lambda refuses: tumbling window, parallelization, retries, record age."""
    window = int(properties.get("TumblingWindowInSeconds", 0))
    if not 0 <= window <= MAX_TUMBLING_WINDOW:
        raise StreamMappingError(f"{where}: TumblingWindowInSeconds {window} is outside 0-{MAX_TUMBLING_WINDOW}")
    factor = int(properties.get("ParallelizationFactor", 1))
    if factor not in PARALLELIZATION_FACTORS:
        raise StreamMappingError(f"{where}: ParallelizationFactor {factor} is outside 1-10")
    retries = int(properties.get("MaximumRetryAttempts", -1))
    if not -1 <= retries <= MAX_RETRY_ATTEMPTS:
        raise StreamMappingError(f"{where}: MaximumRetryAttempts {retries} is outside -1-{MAX_RETRY_ATTEMPTS}")
    age = int(properties.get("MaximumRecordAgeInSeconds", -1))
    if age != -1 and age not in RECORD_AGES:
        raise StreamMappingError(f"{where}: MaximumRecordAgeInSeconds {age} is neither -1 nor within 60-604800")


# --- SNS to SQS ----------------------------------------------------------------------
# SNS delivers to a queue only if the queue's policy lets sns.amazonaws.com SendMessage for that topic
# (SNS Developer Guide, "Subscribing an Amazon SQS queue to an Amazon SNS topic", step 2). AWS accepts
# the subscription either way and drops every delivery, seen only in NumberOfNotificationsFailed;
# moto delivers regardless. So the local stack refuses such a template when it reads it.


class SubscriptionPolicyError(ValueError):
    """An SQS subscription of the template whose queue policy does not let its topic send."""


def check_sqs_subscriptions(template: Template) -> None:
    """Every SNS-to-SQS subscription between the template's own resources is allowed by a queue policy:
    Principal sns.amazonaws.com, Action sqs:SendMessage on the queue, aws:SourceArn the topic."""
    policies = template.resources_of_type("AWS::SQS::QueuePolicy").values()
    for name, subscription in template.resources_of_type("AWS::SNS::Subscription").items():
        properties = subscription["Properties"]
        endpoint = properties.get("Endpoint")
        if properties.get("Protocol") != "sqs" or not (isinstance(endpoint, dict) and "Fn::GetAtt" in endpoint):
            continue
        queue = endpoint["Fn::GetAtt"][0]
        if not any(_lets_topic_send(policy["Properties"], queue, properties["TopicArn"]) for policy in policies):
            raise SubscriptionPolicyError(
                f"{name}: no AWS::SQS::QueuePolicy on {queue} lets sns.amazonaws.com sqs:SendMessage with "
                f"aws:SourceArn {json.dumps(properties['TopicArn'])}: SNS would drop every message"
            )


def _lets_topic_send(policy: dict[str, Any], queue: str, topic: Any) -> bool:
    if {"Ref": queue} not in policy.get("Queues", []):
        return False
    for statement in policy.get("PolicyDocument", {}).get("Statement", []):
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        source = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
        if (
            statement.get("Effect") == "Allow"
            and statement.get("Principal") == {"Service": "sns.amazonaws.com"}
            and any(a in ("sqs:SendMessage", "sqs:*") for a in actions)
            and statement.get("Resource") == {"Fn::GetAtt": [queue, "Arn"]}
            and source == topic
        ):
            return True
    return False
