"""Capacity: the webhook's throttle, the table's warm throughput and the 429 alarm, against the docs.

docs/performance.md's "Capacity" section states the defaults and what they absorb, and
docs/deploy.md's parameter table repeats the defaults; these tests read both tables so that the
docs and the template cannot drift apart.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from local_stack.emulator import choose  # Fn::If and AWS::NoValue, as CloudFormation applies them
from local_stack.template import ROOT, resolve

if TYPE_CHECKING:
    from local_stack.template import Template

BENCH = json.loads((ROOT / "devrig" / "bench" / "results.json").read_text())

# "Amazon API Gateway quotas": throttle quota per account and Region, most Regions.
ACCOUNT_RATE = 10_000
ACCOUNT_BURST = 5_000
# "Lambda quotas": concurrent executions per account and Region, by default.
LAMBDA_CONCURRENCY = 1_000
# "Configuring reserved concurrency for a function" (Lambda Developer Guide): "You can reserve up to the
# Unreserved account concurrency value that is shown, minus 100 for functions that don't have reserved
# concurrency."
UNRESERVED_MINIMUM = 100
# "Pre-warming a table for on-demand capacity mode": what a new on-demand table sustains.
NEW_TABLE_WRITE_UNITS = 4_000
NEW_TABLE_READ_UNITS = 12_000
# "Quotas in Amazon DynamoDB": on-demand table-level write throughput quota.
TABLE_WRITE_QUOTA = 40_000
# The docs' assumption: billed duration of one TDR on AWS (one PutItem round trip dominates).
SECONDS_PER_TDR = 0.020

CAPACITY_PARAMETERS = (
    "ApiThrottlingRateLimit",
    "ApiThrottlingBurstLimit",
    "WebhookReservedConcurrency",
    "TdrTableWarmWriteUnits",
)


def _section(doc: str, title: str) -> str:
    text = (ROOT / "docs" / doc).read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/{doc} has no '## {title}' section"
    return match.group(1)


def _parameter_defaults(section: str, column: int) -> dict[str, str]:
    """`Name` -> its `default` from a docs table whose first column is the parameter."""
    found = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0])
        if name and name.group(1) in CAPACITY_PARAMETERS:
            default = re.match(r"`([^`]*)`", cells[column])
            assert default, line
            found[name.group(1)] = default.group(1)
    return found


def _absorbed() -> dict[str, int]:
    rows = re.findall(
        r"^\| (sustained|burst)[^|]*\| ([\d,]+) \|$", _section("performance.md", "Capacity"), re.MULTILINE
    )
    return {kind: int(value.replace(",", "")) for kind, value in rows}


def _table(template: Template, **parameters: str) -> dict[str, Any]:
    refs = {**template.parameter_defaults(), **parameters}
    chosen = choose(template.resource("TdrTable")["Properties"], template.conditions(refs))
    rendered: dict[str, Any] = resolve(chosen, refs, {})
    return rendered


def test_readme_states_the_template_defaults(template: Template) -> None:
    # Given the template's parameters and the docs' Capacity and Deploy tables
    defaults = {name: template.parameter_defaults()[name] for name in CAPACITY_PARAMETERS}
    # When the defaults are read from both tables
    capacity = _parameter_defaults(_section("performance.md", "Capacity"), column=1)
    deploy = _parameter_defaults(_section("deploy.md", "Deploy"), column=2)
    # Then both state exactly the template's defaults
    assert capacity == defaults
    assert deploy == defaults
    assert defaults == {
        "ApiThrottlingRateLimit": "4000",
        "ApiThrottlingBurstLimit": "400",
        "WebhookReservedConcurrency": "400",
        "TdrTableWarmWriteUnits": "0",
    }


def test_the_throttle_sits_at_or_above_what_the_path_absorbs_and_within_the_account_quota(
    template: Template,
) -> None:
    """Sources: "Amazon API Gateway quotas" (10,000 rps, 5,000 burst per account and Region), "Throttling
    requests to your HTTP API" (a route's throttle cannot exceed the account's), "Lambda quotas" and
    "Lambda scaling behavior" (1,000 concurrent executions; 1,000 environments per 10 s per function),
    "Pre-warming a table for on-demand capacity mode" (a new on-demand table sustains 4,000 writes/s)."""
    # Given the docs' absorbed rate and burst, and the template's throttle defaults
    absorbed = _absorbed()
    defaults = template.parameter_defaults()
    rate, burst = int(defaults["ApiThrottlingRateLimit"]), int(defaults["ApiThrottlingBurstLimit"])
    reserved = int(defaults["WebhookReservedConcurrency"])
    # When the stated figures are derived from the path: the table's writes at the benchmark's write units
    # per typical TDR, and one of the webhook's reserved Lambda environments per request in flight
    table_rate = NEW_TABLE_WRITE_UNITS // BENCH["write_units"]["typical_write_units"]
    # Then the docs state what the path takes, and the webhook's environments have room for that rate
    assert absorbed == {"sustained": table_rate, "burst": reserved}
    assert absorbed["sustained"] * SECONDS_PER_TDR <= reserved <= LAMBDA_CONCURRENCY
    # And the edge is not the first to refuse, nor above what the account allows
    assert absorbed["sustained"] <= rate <= ACCOUNT_RATE
    assert absorbed["burst"] <= burst <= ACCOUNT_BURST
    # And the campaign (100,000 SMS in ten minutes, two TDRs each) passes with room to spare
    campaign_peak = 350
    assert campaign_peak * 10 <= rate


def test_a_flood_cannot_take_the_accounts_lambda_concurrency(template: Template) -> None:
    """Issue 20, item 3. Sources: "Configuring reserved concurrency for a function" (Lambda Developer Guide:
    reserved concurrency is both the most a function runs at once and what no other function may use; "You
    can reserve up to the Unreserved account concurrency value that is shown, minus 100 for functions that
    don't have reserved concurrency"), "Lambda quotas" (1,000 concurrent executions by default),
    "AWS::Lambda::Function ReservedConcurrentExecutions" (0 stops the function: left out instead)."""
    # Given the template's defaults and the webhook function
    defaults = template.parameter_defaults()
    function = template.resource("WebhookFunction")["Properties"]
    reserved = int(defaults["WebhookReservedConcurrency"])
    rate, burst = int(defaults["ApiThrottlingRateLimit"]), int(defaults["ApiThrottlingBurstLimit"])
    # When it is rendered with the defaults, and with the parameter at 0
    bounded = choose(function, template.conditions(defaults))
    unbounded = choose(function, template.conditions({**defaults, "WebhookReservedConcurrency": "0"}))
    # Then its concurrency is reserved, so bounded: a flood to a leaked URL runs at most that many at once
    assert resolve(bounded["ReservedConcurrentExecutions"], defaults, {}) == str(reserved)
    assert "ReservedConcurrentExecutions" not in unbounded
    # and it leaves the account more than Lambda's 100 unreserved, with room for the stack's other functions
    # and the account's own (the default 1,000 minus the reservation)
    others = LAMBDA_CONCURRENCY - reserved
    assert reserved <= LAMBDA_CONCURRENCY - UNRESERVED_MINIMUM
    assert others >= LAMBDA_CONCURRENCY // 2
    # And it takes the throttle's rate warm (20 ms a TDR), the campaign peak while it starts cold
    # (350 TDR/s, each environment held ~1 s by a cold start), and every request the edge admits at once
    assert rate * SECONDS_PER_TDR <= reserved
    assert reserved >= 350
    assert burst <= reserved
    # And the docs give that arithmetic
    capacity = _section("performance.md", "Capacity")
    assert f"{rate:,} \N{MULTIPLICATION SIGN} 0.020 s = {int(rate * SECONDS_PER_TDR)}" in capacity
    assert f"{LAMBDA_CONCURRENCY:,} \N{MINUS SIGN} {reserved} = {others}" in capacity


def test_warm_throughput_is_off_by_default(template: Template) -> None:
    """Source: CloudFormation "AWS::DynamoDB::Table WarmThroughput" (optional property)."""
    # Given the template's defaults
    defaults = template.parameter_defaults()
    # When the table is rendered with them
    table = _table(template)
    # Then it is not pre-warmed (pre-warming is charged: "Understanding DynamoDB warm throughput")
    assert template.conditions(defaults)["HasTdrTableWarmThroughput"] is False
    assert "WarmThroughput" not in table
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_warm_throughput_is_raised_by_a_custom_resource_that_only_goes_up(template: Template) -> None:
    """Sources: "Understanding DynamoDB warm throughput" ("Once increased, warm throughput values can't be
    decreased."; DynamoDB raises them by itself as usage grows); CloudFormation "AWS::DynamoDB::Table
    WarmThroughput" (ReadUnitsPerSecond and WriteUnitsPerSecond are both optional)."""
    # Given a campaign that needs twice a new table's writes
    refs = {**template.parameter_defaults(), "TdrTableWarmWriteUnits": "8000"}
    # When the table and the custom resource are rendered with the parameter set
    table = _table(template, TdrTableWarmWriteUnits="8000")
    resource = template.resource("TdrTableWarmThroughput")
    # Then the table declares no warm throughput (a declared value goes stale, and below the table's own it
    # fails the deploy), and no read units anywhere: only the command line reads
    assert "WarmThroughput" not in table
    assert "ReadUnitsPerSecond" not in (ROOT / "template.yaml").read_text()
    # and the custom resource, there only while the parameter is not 0, raises the table's write units to it
    assert resource["Condition"] == "HasTdrTableWarmThroughput"
    assert template.conditions(refs)["HasTdrTableWarmThroughput"] is True
    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["WarmThroughputFunction", "Arn"]}
    assert resource["Properties"]["TableName"] == {"Ref": "TdrTable"}
    assert resource["Properties"]["WriteUnitsPerSecond"] == {"Ref": "TdrTableWarmWriteUnits"}
    assert int(resource["Properties"]["ServiceTimeout"]) > int(template.function("WarmThroughputFunction")["Timeout"])


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0", True),
        ("4000", True),
        ("8000", True),
        ("12345", True),
        ("40000", True),
        ("1", False),
        ("3999", False),
        ("40001", False),
        ("100000", False),
        ("04000", False),
        ("-4000", False),
        ("8000.5", False),
        ("", False),
    ],
)
def test_a_bad_warm_throughput_fails_at_parameter_validation(template: Template, value: str, valid: bool) -> None:
    """Sources: "Understanding DynamoDB warm throughput" (an on-demand table's warm throughput starts at 4,000
    writes and cannot be decreased); "Quotas in Amazon DynamoDB" (40,000 write units per on-demand table)."""
    # Given the parameter's constraint, which CloudFormation checks before changing anything
    parameter = template.body["Parameters"]["TdrTableWarmWriteUnits"]
    # When a value is checked against it
    accepted = re.fullmatch(parameter["AllowedPattern"], value) is not None
    # Then only 0 (off) and whole numbers from a new table's 4,000 to the table quota pass
    assert accepted is valid
    if accepted and value != "0":
        assert NEW_TABLE_WRITE_UNITS <= int(value) <= TABLE_WRITE_QUOTA


def test_throttled_requests_are_counted_from_the_access_log_and_alarmed_to_the_ops_topic(template: Template) -> None:
    """Sources: "Monitoring HTTP APIs" (no throttle metric: count 429s from the access log); CloudWatch Logs
    "Using filter patterns to match terms in JSON log events" (a string value is quoted:
    { $.eventType = "UpdateTrail" })."""
    # Given the API's access log, its metric filter and the alarm
    api = template.resource("TdrApi")["Properties"]
    metric_filter = template.resource("ThrottledRequestsMetricFilter")["Properties"]
    alarm = template.resource("WebhookThrottledAlarm")["Properties"]
    # When an access-log line is written for a throttled request, in the API's own format
    line = json.loads(re.sub(r"\$context\.[\w.]+", "-", api["AccessLogSettings"]["Format"]).replace('"-"', '"x"'))
    line["status"] = "429"
    pattern = re.fullmatch(r'\{ \$\.(\w+) = "(\d+)" \}', metric_filter["FilterPattern"])
    # Then the filter reads that log, and its field is the log's status, a string it compares as one
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert metric_filter["LogGroupName"] == {"Ref": "ApiAccessLogGroup"}
    assert pattern, metric_filter["FilterPattern"]
    assert '"status":"$context.status"' in api["AccessLogSettings"]["Format"]
    assert line[pattern.group(1)] == pattern.group(2) == "429"
    # And the alarm watches exactly the metric the filter emits, and tells the ops topic of any 429
    [transformation] = metric_filter["MetricTransformations"]
    assert transformation["MetricNamespace"] == alarm["Namespace"] == {"Ref": "MetricsNamespace"}
    assert transformation["MetricName"] == alarm["MetricName"] == "WebhookThrottled"
    assert transformation["MetricValue"] == "1"
    assert "Dimensions" not in transformation
    assert "Dimensions" not in alarm
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]
    assert alarm["OKActions"] == [{"Ref": "OpsTopic"}]


def test_the_dashboards_api_widget_shows_429s_beside_5xx(template: Template) -> None:
    # Given the dashboard
    body = template.resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    # When its HTTP API widget is read
    [api] = [w["properties"] for w in widgets if w["properties"]["title"].startswith("HTTP API")]
    names = [metric[1] for metric in api["metrics"]]
    # Then the throttled requests sit next to the 5xx, summed like them
    throttled = names.index("WebhookThrottled")
    assert api["metrics"][throttled][0] == "${MetricsNamespace}"
    assert api["metrics"][throttled][-1]["stat"] == "Sum"
    assert abs(throttled - names.index("5xx")) == 1
    assert "429" in api["title"]


def test_the_parking_drain_leaves_the_concurrency_to_the_webhook(template: Template) -> None:
    """ "Configuring scaling behavior for SQS event source mappings": MaximumConcurrency is 2 to 1,000.

    Parked TDRs pile up when the table throttles; an unbounded drain would then take the
    account's 1,000 environments from the webhook's own requests.
    """
    # Given the parked-TDR function's SQS event source on the parking queue
    parked = template.resource("ParkedTdrFunction")["Properties"]["Events"]["Parked"]["Properties"]
    # Then its concurrency is bounded, within AWS's range, to a tenth of the account's 1,000 at most
    maximum = parked["ScalingConfig"]["MaximumConcurrency"]
    assert 2 <= maximum <= 1000 // 10
