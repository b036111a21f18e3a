"""template.yaml against rules only AWS enforces: the KMS key policy and the metric-math alarms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local_stack.template import ACCOUNT, REGION, Template, resolve

# The condition keys each service principal puts in its KMS requests, as its own page documents.
# A key the service does not send makes every request fail the condition: encryption breaks on AWS
# while every emulator still passes, so a principal not listed here must be looked up first.
DOCUMENTED_CONDITION_KEYS = {
    # SNS "Key management" (Enable compatibility between event sources from AWS services and
    # encrypted topics, step 3) and KMS "Confused deputy prevention": alarms publishing to a topic.
    "cloudwatch.amazonaws.com": {"aws:SourceAccount", "aws:SourceArn"},
    # SNS "Key management" (an SNS topic sending to a queue under a customer managed key) and SQS "Key
    # management": SNS encrypting what the alert topic delivers to the digest queue, for that topic only.
    "sns.amazonaws.com": {"aws:SourceAccount", "aws:SourceArn"},
    # CloudWatch Logs "Encrypt log data in CloudWatch Logs using AWS KMS": the log group's ARN
    # as encryption context is what scopes the regional Logs principal.
    f"logs.{REGION}.amazonaws.com": {"kms:EncryptionContext:aws:logs:arn"},
}
SCOPING_KEYS = {"aws:SourceAccount", "aws:SourceArn", "kms:EncryptionContext:aws:logs:arn"}


def _service_statements(template: Template) -> list[dict[str, Any]]:
    statements = template.resource("EncryptionKey")["Properties"]["KeyPolicy"]["Statement"]
    return [resolve(s, {}, {}) for s in statements if "Service" in s.get("Principal", {})]


def _conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Condition key -> (operator, values)."""
    found = {}
    for operator, pairs in statement.get("Condition", {}).items():
        for key, values in pairs.items():
            found[key] = (operator, values if isinstance(values, list) else [values])
    return found


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else ""


def test_the_key_policy_grants_service_principals_something_to_scope(template: Template) -> None:
    # Given the key that encrypts the topics, queues, secret and log groups
    statements = _service_statements(template)
    # Then it has service-principal statements (alarms to the ops topic, SNS to the digest queue, Logs), each one named
    services = {s["Principal"]["Service"] for s in statements}
    assert services == set(DOCUMENTED_CONDITION_KEYS)


def test_every_service_principal_is_scoped_to_this_account(template: Template) -> None:
    """KMS "Confused deputy prevention"; SNS "Key management"; CloudWatch Logs "Encrypt log data"."""
    for statement in _service_statements(template):
        # Given a statement that lets an AWS service use the key
        service = statement["Principal"]["Service"]
        conditions = _conditions(statement)
        # Then it is conditioned on this account's own resources
        scoping = SCOPING_KEYS & set(conditions)
        assert scoping, f"{statement['Sid']}: {service} may use the key for any account (confused deputy)"
        for key in scoping:
            operator, values = conditions[key]
            if key == "aws:SourceAccount":
                assert (operator, values) == ("StringEquals", [ACCOUNT]), statement["Sid"]
            else:
                assert operator in ("ArnLike", "ArnEquals"), statement["Sid"]
                assert all(_arn_account(value) == ACCOUNT for value in values), (statement["Sid"], values)


def test_alarms_may_use_the_key_only_for_this_accounts_alarms(template: Template) -> None:
    """SNS "Key management" step 3, in the form CloudWatch alarms send: alarm ARNs of this account."""
    [statement] = [s for s in _service_statements(template) if s["Principal"]["Service"] == "cloudwatch.amazonaws.com"]
    conditions = _conditions(statement)
    assert conditions["aws:SourceAccount"] == ("StringEquals", [ACCOUNT])
    assert conditions["aws:SourceArn"] == ("ArnLike", [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"])


def test_conditions_use_only_keys_the_service_sends(template: Template) -> None:
    # Given each service-principal statement
    for statement in _service_statements(template):
        service = statement["Principal"]["Service"]
        # Then its principal's documentation has been checked, and it conditions on nothing else:
        # e.g. aws:SourceArn on the Logs principal, or on EventBridge's (SNS "Key management":
        # not supported for EventBridge-to-encrypted topics), would refuse every request on AWS.
        assert service in DOCUMENTED_CONDITION_KEYS, f"look up which condition keys {service} sends"
        assert set(_conditions(statement)) <= DOCUMENTED_CONDITION_KEYS[service], statement["Sid"]


# --- metric math --------------------------------------------------------------------


def _unfilled(expression: str, metric_ids: set[str]) -> set[str]:
    """Metric ids the expression uses outside FILL(id, ...)."""
    rest = re.sub(r"FILL\(\s*(\w+)\s*,[^()]*\)", " ", expression)
    return {word for word in re.findall(r"[A-Za-z_]\w*", rest) if word in metric_ids}


def _alarm_expressions(template: Template) -> list[tuple[str, str, set[str]]]:
    found = []
    for name, alarm in template.resources_of_type("AWS::CloudWatch::Alarm").items():
        metrics = alarm["Properties"].get("Metrics", [])
        ids = {m["Id"] for m in metrics if "MetricStat" in m}
        found += [(name, m["Expression"], ids) for m in metrics if "Expression" in m]
    return found


def _dashboard_expressions(template: Template) -> list[tuple[str, str, set[str]]]:
    body = template.resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    found = []
    for widget in json.loads(re.sub(r"\$\{[^}]+\}", "placeholder", body))["widgets"]:  # names, not metric ids
        lines = widget.get("properties", {}).get("metrics", [])
        options = [line[-1] for line in lines if line and isinstance(line[-1], dict)]
        ids = {o["id"] for o in options if "id" in o and "expression" not in o}
        found += [(widget["properties"]["title"], o["expression"], ids) for o in options if "expression" in o]
    return found


def test_alarms_and_the_dashboard_have_metric_math(template: Template) -> None:
    alarms = {name for name, _, ids in _alarm_expressions(template) if ids}
    assert {"WebhookErrorsAlarm", "FailureRateAlarm"} <= alarms
    assert any(ids for _, _, ids in _dashboard_expressions(template))


@pytest.mark.parametrize("source", ["alarms", "dashboard"])
def test_metric_math_fills_every_metric_so_one_empty_series_cannot_blank_it(template: Template, source: str) -> None:
    """CloudWatch "Using metric math": a missing data point makes `a + b` missing; FILL(a, 0) fills it."""
    # Given every metric-math expression of the alarms (or the dashboard) and the metrics it uses
    expressions = _alarm_expressions(template) if source == "alarms" else _dashboard_expressions(template)
    for where, expression, metric_ids in expressions:
        # Then each metric appears only inside FILL(...): a period with Rejected TDRs but no
        # Delivered one is a 100% failure rate, not a blank that never alarms
        assert _unfilled(expression, metric_ids) == set(), f"{where}: {expression}"


@pytest.mark.parametrize(
    ("expression", "unfilled"),
    [
        ("api5xx + errors", {"api5xx", "errors"}),
        ("FILL(api5xx, 0) + errors", {"errors"}),
        ("FILL(api5xx, 0) + FILL(errors, 0)", set()),
        ("100*(FILL(u,0)+FILL(r,0))/(FILL(d,0)+u+FILL(r,0))", {"u"}),
    ],
)
def test_the_fill_check_finds_bare_metric_ids(expression: str, unfilled: set[str]) -> None:
    assert _unfilled(expression, {"api5xx", "errors", "d", "u", "r"}) == unfilled
