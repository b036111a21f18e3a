"""template.yaml: the resources the issue asks for, and that code and template agree."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from cinnox_sms.custom_resource import SubscriptionProperties
from cinnox_sms.item import StoredTdr
from cinnox_sms.model import FAILURE_STATUSES, Status
from cinnox_sms.settings import AlertSettings, ParkedTdrSettings, SubscriptionSettings, WebhookSettings
from local_stack.template import ROOT, Template, load_function_module, matches_filter, stream_filters

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

# Every function the template declares: a function added later is checked without a list to update.
FUNCTIONS = sorted(Template.load().resources_of_type("AWS::Serverless::Function"))


def test_parameters_are_named_as_documented_and_only_cinnox_ones_lack_defaults(template: Template) -> None:
    parameters = template.body["Parameters"]
    assert {"CinnoxBaseUrl", "CinnoxAppId", "CinnoxAppTokenSecret", "AlertEmail"} <= set(parameters)
    without_default = {name for name, p in parameters.items() if "Default" not in p}
    assert without_default == {"CinnoxBaseUrl", "CinnoxAppId", "CinnoxAppTokenSecret"}
    assert parameters["AlertEmail"]["Default"] == ""
    assert parameters["TdrRetentionDays"]["Default"] == 400


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://acme.cinnox.com", True),
        ("https://acme.cinnox.com/base", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:9000", True),
        ("http://acme.cinnox.com", False),
        ("ftp://acme.cinnox.com", False),
        ("https://", False),
    ],
)
def test_base_url_parameter_insists_on_https_except_on_loopback(template: Template, url: str, allowed: bool) -> None:
    import re

    pattern = template.body["Parameters"]["CinnoxBaseUrl"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, url)) is allowed


def test_functions_use_python313_on_arm64_with_the_layer(template: Template) -> None:
    for name in FUNCTIONS:
        function = template.function(name)
        assert function["Runtime"] == "python3.13"
        assert function["Architectures"] == ["arm64"]
        assert function["Layers"] == [{"Ref": "CommonLayer"}]
    layer = template.resource("CommonLayer")
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert "build-CommonLayer:" in (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text()
    assert (ROOT / layer["Properties"]["ContentUri"] / "cinnox_sms" / "__init__.py").is_file()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_code_uri_and_handler_resolve(template: Template, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    function = template.function(name)
    module_name, _, attribute = function["Handler"].rpartition(".")
    assert (ROOT / function["CodeUri"] / f"{module_name}.py").is_file()
    module = load_function_module(template, name)
    assert callable(getattr(module, attribute))


def test_environment_variables_are_the_ones_the_settings_read(template: Template) -> None:
    settings: dict[str, dict[str, FieldInfo]] = {
        "WebhookFunction": WebhookSettings.model_fields,
        "ParkedTdrFunction": ParkedTdrSettings.model_fields,
        "AlertFunction": AlertSettings.model_fields,
        "SubscriptionFunction": SubscriptionSettings.model_fields,
    }
    for name, fields in settings.items():
        env = template.function(name)["Environment"]["Variables"]
        required = {f.alias for f in fields.values() if f.is_required()}
        assert required <= set(env), name


def test_table_is_on_demand_with_recovery_stream_and_ttl(template: Template) -> None:
    table = template.resource("TdrTable")
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["StreamSpecification"]["StreamViewType"] in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": StoredTdr.attribute("expires_at"),
        "Enabled": True,
    }
    keys = {k["KeyType"]: k["AttributeName"] for k in properties["KeySchema"]}
    assert keys == {"HASH": StoredTdr.attribute("transaction_id"), "RANGE": StoredTdr.attribute("status")}
    assert table["DeletionPolicy"] == "Retain"


def test_retention_parameter_reaches_the_webhook_and_the_parked_tdr_function(template: Template) -> None:
    for name in ("WebhookFunction", "ParkedTdrFunction"):
        env = template.function(name)["Environment"]["Variables"]
        assert env["TDR_RETENTION_DAYS"] == {"Ref": "TdrRetentionDays"}, name


def test_http_api_posts_to_the_webhook(template: Template) -> None:
    assert "TdrApi" in template.resources_of_type("AWS::Serverless::HttpApi")
    event = template.resource("WebhookFunction")["Properties"]["Events"]["Tdr"]
    assert event["Type"] == "HttpApi"
    assert event["Properties"]["Method"] == "POST"
    assert event["Properties"]["Path"].endswith("/{secret}")


def stream_event(template: Template) -> dict[str, Any]:
    event: dict[str, Any] = template.resource("AlertFunction")["Properties"]["Events"]["TdrStream"]
    return event


def test_alert_stream_mapping_is_bounded_bisected_and_has_a_failure_destination(template: Template) -> None:
    event = stream_event(template)
    assert event["Type"] == "DynamoDB"
    properties = event["Properties"]
    assert properties["Stream"] == {"Fn::GetAtt": ["TdrTable", "StreamArn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 < properties["MaximumRetryAttempts"] <= 10
    destination = properties["DestinationConfig"]["OnFailure"]
    assert destination["Type"] == "SQS"
    assert destination["Destination"] == {"Fn::GetAtt": ["AlertFailureQueue", "Arn"]}


def _stream_record(event_name: str, status: str) -> dict[str, Any]:
    # A NEW_IMAGE stream's REMOVE (TTL expiry included) carries no NewImage.
    image = {} if event_name == "REMOVE" else {"NewImage": {"status": {"S": status}}}
    return {"eventName": event_name, "dynamodb": image}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
def test_filter_keeps_only_failures_with_a_new_image(template: Template, status: Status, event_name: str) -> None:
    # The filter may look at the dynamodb key only: a MODIFY of a failed item passes it,
    # and the alert function itself ignores it (tests/integration/test_alert.py).
    filters = stream_filters(template, "AlertFunction", "TdrStream")
    kept = any(matches_filter(f, _stream_record(event_name, status.value)) for f in filters)
    assert kept is (event_name != "REMOVE" and status in FAILURE_STATUSES)


def test_topics_queues_and_logs_are_encrypted_with_the_stack_key(template: Template) -> None:
    key = {"Ref": "EncryptionKey"}
    for kind in ("AWS::SNS::Topic", "AWS::SQS::Queue"):
        for name, resource in template.resources_of_type(kind).items():
            assert resource["Properties"]["KmsMasterKeyId"] == key, name
    for name, resource in template.resources_of_type("AWS::Logs::LogGroup").items():
        assert resource["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}, name
    assert template.resource("EncryptionKey")["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize(
    ("subscription", "condition"),
    [("AlertEmailSubscription", "HasAlertEmail"), ("OpsEmailSubscription", "HasOpsEmail")],
)
def test_email_subscriptions_are_optional(template: Template, subscription: str, condition: str) -> None:
    resource = template.resource(subscription)
    assert resource["Condition"] == condition
    assert resource["Properties"]["Protocol"] == "email"
    parameter = resource["Properties"]["Endpoint"]["Ref"]
    defaults = template.parameter_defaults()
    assert template.conditions({**defaults, parameter: ""})[condition] is False
    assert template.conditions({**defaults, parameter: "ops@example.com"})[condition] is True


def test_parking_queue_keeps_14_days_is_drained_by_its_own_function_and_alarmed(template: Template) -> None:
    queue = template.resource("ParkingQueue")["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 86400
    assert queue["VisibilityTimeout"] >= 6 * template.function("ParkedTdrFunction")["Timeout"]
    # The webhook only parks: its cold start and role carry nothing of the drain
    assert set(template.resource("WebhookFunction")["Properties"]["Events"]) == {"Tdr"}
    event = template.resource("ParkedTdrFunction")["Properties"]["Events"]["Parked"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["ParkingQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    alarm = template.resource("ParkingQueueAgeAlarm")["Properties"]
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["ParkingQueue", "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]


def test_api_is_throttled_by_parameters_and_its_access_log_leaves_out_the_path(template: Template) -> None:
    api = template.resource("TdrApi")["Properties"]
    assert api["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    log_format = api["AccessLogSettings"]["Format"]
    assert "$context.routeKey" in log_format
    assert "$context.path" not in log_format
    assert "rawPath" not in log_format


def test_webhook_secret_is_generated_url_safe_and_long(template: Template) -> None:
    generated = template.resource("WebhookSecret")["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32
    assert generated["ExcludePunctuation"] is True
    assert generated.get("IncludeSpace") is False


def test_custom_resource_depends_on_the_deployed_api_and_passes_what_the_function_reads(template: Template) -> None:
    resource = template.resource("CinnoxSubscription")
    assert resource["Type"].startswith("Custom::")
    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["SubscriptionFunction", "Arn"]}
    # SAM names the default stage <Api>ApiGatewayDefaultStage and the permission <Function><Event>Permission
    assert set(resource["DependsOn"]) == {"TdrApiApiGatewayDefaultStage", "WebhookFunctionTdrPermission"}
    aliases = {f.alias for f in SubscriptionProperties.model_fields.values()}
    assert aliases <= set(resource["Properties"])
    # rotation: changing the parameter changes a property, so CloudFormation sends an Update
    assert resource["Properties"]["WebhookSecretGeneration"] == {"Ref": "WebhookSecretGeneration"}


def _statements(template: Template, name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.resource(name)["Properties"].get("Policies", []):
        statements += policy.get("Statement", []) if "Statement" in policy else []
    return statements


@pytest.mark.parametrize("name", FUNCTIONS)
def test_iam_is_scoped(template: Template, name: str) -> None:
    policies = template.resource(name)["Properties"].get("Policies", [])
    assert policies or name == "MetricsFunction", name  # it only reads the stream (SAM's own policy)
    for statement in _statements(template, name):
        if statement["Effect"] == "Deny":  # issue 20: a guard, every ARN but the function's own (a GetAtt)
            assert "Resource" not in statement
            assert "Fn::GetAtt" in statement["NotResource"], (name, statement)
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions)
        assert statement["Resource"] != "*"
    serialized = json.dumps(policies)
    assert '"*"' not in serialized


def test_outputs_name_the_topic_table_and_webhook_url(template: Template) -> None:
    outputs = template.body["Outputs"]
    assert {"AlertTopicArn", "TdrTableName", "WebhookBaseUrl"} <= set(outputs)
    # the base URL only: the secret segment never leaves Secrets Manager
    assert "WebhookSecret" not in json.dumps(outputs["WebhookBaseUrl"])
