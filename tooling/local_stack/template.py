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
        """CreateTable arguments from the table's KeySchema, attributes, billing and stream."""
        properties = self.resource(logical_id)["Properties"]
        return {
            "TableName": table_name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties["BillingMode"],
            "StreamSpecification": {"StreamEnabled": True, **properties["StreamSpecification"]},
        }

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


def matches_filter(pattern: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether an event source mapping filter pattern keeps a record.

    Supports what Lambda's filter syntax offers for string data: exact values,
    ``exists``, ``prefix`` and ``anything-but``, nested to any depth.
    """
    for key, expected in pattern.items():
        present = key in record
        actual = record.get(key)
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not matches_filter(expected, actual):
                return False
        elif not any(_matches_one(rule, present, actual) for rule in expected):
            return False
    return True


def _matches_one(rule: Any, present: bool, actual: Any) -> bool:
    if isinstance(rule, dict):
        [(operator, operand)] = rule.items()
        if operator == "exists":
            return present is bool(operand)
        if operator == "prefix":
            return present and isinstance(actual, str) and actual.startswith(operand)
        if operator == "anything-but":
            excluded = operand if isinstance(operand, list) else [operand]
            return present and actual not in excluded
        raise ValueError(f"filter operator {operator!r} is not supported locally")
    return present and actual == rule


def stream_filters(template: Template, function: str, event: str) -> list[dict[str, Any]]:
    properties = template.resource(function)["Properties"]["Events"][event]["Properties"]
    return [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
