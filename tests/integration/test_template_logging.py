"""The functions' LoggingConfig as SAM translates it, for each value of LambdaSystemLogs and LogLevel.

LambdaSystemLogs=all (the default) sets no format and no level: Lambda's text format, its START, END and
REPORT lines kept (the only record of each invocation's Init Duration and Max Memory Used). warn sets the JSON
log format with system logs at WARN, which drops them (Lambda Developer Guide, "Configuring advanced logging
controls for Lambda functions" and "Log-level filtering": START and REPORT are INFO-level system logs). SAM merges
Globals' LoggingConfig with each function's own (its LogGroup): the translator, not a reading of the YAML, shows
what CloudFormation gets.

Never an application level above INFO. Powertools' metric lines (EMF, printed by Metrics) carry no "level"; the
"Log-level filtering" page: "If the "level" value field is invalid or missing, Lambda will assign the log output
the level INFO". A filter at WARN or above would drop every one of them: every Tdr* metric, and every alarm on
them, would go blind without an error anywhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from iam_rehearsal import transformed_template_with
from local_stack.emulator import choose  # Fn::If and AWS::NoValue, as CloudFormation applies them
from local_stack.template import Template

# Lambda's application levels ("LoggingConfig", Lambda API reference), most detailed first; what may be set.
AT_MOST_INFO = {"TRACE", "DEBUG", "INFO"}


def logging_configs(**parameters: str) -> dict[str, dict[str, Any]]:
    """Each AWS::Lambda::Function's LoggingConfig in the translated template, its conditions resolved."""
    translated = transformed_template_with(tuple(sorted(parameters.items())))
    conditions = Template(translated).conditions({**Template.load().parameter_defaults(), **parameters})
    return {
        name: choose(resource["Properties"].get("LoggingConfig", {}), conditions)
        for name, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


@pytest.mark.parametrize("system_logs", ["all", "warn"])
@pytest.mark.parametrize("log_level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_no_function_lets_lambda_filter_its_application_logs_above_info(system_logs: str, log_level: str) -> None:
    # Given the template as SAM translates it, with LambdaSystemLogs and LogLevel at these values
    configs = logging_configs(LambdaSystemLogs=system_logs, LogLevel=log_level)
    assert len(configs) >= 10
    for name, config in configs.items():
        # Then no function's application logs are filtered above INFO: Powertools' metric lines carry no level,
        # Lambda takes them as INFO, and above it every Tdr* metric and alarm would go blind
        assert config.get("ApplicationLogLevel", "INFO") in AT_MOST_INFO, name
        # And each still writes to its own log group (SAM merged Globals' LoggingConfig with the function's)
        assert config["LogGroup"] == {"Ref": name.removesuffix("Function") + "LogGroup"}, name
        if system_logs == "all":
            # And by default nothing else: the text format, Lambda's START/END/REPORT lines kept
            assert set(config) == {"LogGroup"}, name
        else:
            # And warn: JSON, system logs at WARN (START/END/REPORT dropped), the application level INFO, or
            # DEBUG when LogLevel asks for Powertools' DEBUG lines (Lambda's level takes precedence in Logger)
            assert config["LogFormat"] == "JSON", name
            assert config["SystemLogLevel"] == "WARN", name
            assert config["ApplicationLogLevel"] == ("DEBUG" if log_level == "DEBUG" else "INFO"), name


def test_the_parameter_keeps_lambdas_lines_by_default(template: Template) -> None:
    parameter = template.body["Parameters"]["LambdaSystemLogs"]
    assert parameter["Default"] == "all"
    assert parameter["AllowedValues"] == ["all", "warn"]


def test_the_metric_filters_read_no_log_group_the_functions_write(template: Template) -> None:
    """The log format LambdaSystemLogs sets applies to the functions' log groups only: the metric filters (429s
    and wrong secrets, counted from the HTTP API's access log) match the same lines whatever its value."""
    # Given the log groups the functions write to, and those the metric filters read
    functions = {
        json.dumps(properties["LoggingConfig"]["LogGroup"], sort_keys=True)
        for properties in (template.function(name) for name in template.resources_of_type("AWS::Serverless::Function"))
    }
    filters = template.resources_of_type("AWS::Logs::MetricFilter")
    read = {json.dumps(f["Properties"]["LogGroupName"], sort_keys=True) for f in filters.values()}
    # Then there are metric filters, and none reads a function's log group
    assert filters
    assert read == {json.dumps({"Ref": "ApiAccessLogGroup"})}
    assert not read & functions


def test_powertools_metric_lines_carry_no_level(capsys: pytest.CaptureFixture[str]) -> None:
    """Why the application level stays at INFO or below: Lambda gives a line without "level" the level INFO."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    # Given Powertools' Metrics, as the functions use it
    metrics = Metrics(namespace="CinnoxSms", service="cinnox-sms-webhook")
    metrics.add_metric(name="TdrStored", unit=MetricUnit.Count, value=1)
    # When it flushes
    metrics.flush_metrics()
    [line] = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    blob = json.loads(line)
    # Then its line is a JSON object with no level: Lambda would file it under INFO
    assert "_aws" in blob
    assert "level" not in {key.lower() for key in blob}
