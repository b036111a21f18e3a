"""Capacity: the table's conditional warm throughput (Fn::If / AWS::NoValue) provisions in moto both ways."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest

from local_stack.emulator import provision

if TYPE_CHECKING:
    from local_stack.template import Template

RATE, BURST = 20, 10  # low limits, set through the stack's parameters as a deployer would
APP = "capacity-app-0001"


@pytest.mark.parametrize("warm_write_units", ["0", "4000"])
def test_the_template_provisions_with_warm_throughput_on_or_off(
    aws: None, template: Template, warm_write_units: str
) -> None:
    """AWS::DynamoDB::Table WarmThroughput is conditional (Fn::If / AWS::NoValue): both ways provision, and the
    access log group and its metric filter are created in the emulator."""
    parameters = {
        "CinnoxAppId": APP,
        "CinnoxBaseUrl": "http://127.0.0.1:9",
        "CinnoxAppTokenSecret": "cinnox/app-token",
        "TdrTableWarmWriteUnits": warm_write_units,
    }
    done = provision(template, parameters, boto3.Session(), "capacity")
    assert "AWS::DynamoDB::Table TdrTable" in done.created
    logs = boto3.client("logs")
    metric_filters = logs.describe_metric_filters(logGroupName=done.refs["ApiAccessLogGroup"])["metricFilters"]
    by_metric = {f["metricTransformations"][0]["metricName"]: f["filterPattern"] for f in metric_filters}
    assert by_metric["WebhookThrottled"] == '{ $.status = "429" }'
    assert set(by_metric) == {"WebhookThrottled", "WebhookWrongSecret"}  # issue 20: the wrong secrets too
