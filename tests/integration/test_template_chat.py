"""template.yaml with the chat parameters given: the digest and ops topics in a Slack and/or a Teams channel
(AWS::Chatbot::SlackChannelConfiguration, AWS::Chatbot::MicrosoftTeamsChannelConfiguration); none without them.

cfn-lint and `sam validate --lint` (`make validate`) run on template.yaml as it is, with the parameters empty;
here they run on a copy whose Defaults are sample IDs, so that the resources behind the conditions are checked
too. The SAM translator (tests/iam_rehearsal.py) shows what CloudFormation would create either way.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from iam_rehearsal import SAM_PYTHON, transformed_template_with
from local_stack.template import REGION, ROOT, Template

if TYPE_CHECKING:
    from pathlib import Path

SLACK = {"SlackWorkspaceId": "T0123ABCDE", "SlackChannelId": "C0123ABCDE"}
TEAMS = {
    "TeamsTeamId": "5f0d6f5e-2d4b-4a51-9a3e-0c1b2d3e4f50",
    "TeamsChannelId": "19%3a0123456789abcdef0123456789abcdef%40thread.tacv2",
    "TeamsTenantId": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
}
CHANNEL_TYPES = {
    "AWS::Chatbot::SlackChannelConfiguration": "SlackChannel",
    "AWS::Chatbot::MicrosoftTeamsChannelConfiguration": "TeamsChannel",
}
READ_ONLY = "arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess"


def with_defaults(values: dict[str, str]) -> str:
    """template.yaml's text with these parameters' Defaults set (each parameter's Default line, nothing else)."""
    text = (ROOT / "template.yaml").read_text()
    for name, value in values.items():
        text, found = re.subn(rf'(\n  {name}:\n(?:    .*\n)*?    Default: )""', rf'\g<1>"{value}"', text)
        assert found == 1, name
    return text


def sam_tool(tool: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = SAM_PYTHON.parent / tool
    if not path.exists():
        pytest.fail(f"{path} is missing: make .venv-sam/.installed (as make validate does)")
    environment = {**os.environ, "AWS_DEFAULT_REGION": REGION, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [str(path), *arguments], cwd=cwd, capture_output=True, text=True, check=False, timeout=300, env=environment
    )


@pytest.mark.parametrize("tool", ["cfn-lint", "sam"])
def test_the_template_with_slack_and_teams_passes_cfn_lint_and_sam_validate(tmp_path: Path, tool: str) -> None:
    # Given a copy of template.yaml whose chat parameters default to sample IDs (its code paths beside it)
    (tmp_path / "template.yaml").write_text(with_defaults({**SLACK, **TEAMS}))
    for folder in ("functions", "layers"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    # When cfn-lint, then `sam validate --lint`, read it as `make validate` reads template.yaml
    if tool == "cfn-lint":
        done = sam_tool("cfn-lint", "template.yaml", cwd=tmp_path)
    else:
        done = sam_tool("sam", "validate", "--lint", "--template-file", "template.yaml", cwd=tmp_path)
    # Then neither finds anything
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def created(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation would create from the translated template, given these parameters."""
    translated = transformed_template_with(tuple(sorted(parameters.items())))
    template = Template(translated)
    conditions = template.conditions({**Template.load().parameter_defaults(), **parameters})
    return {
        name: resource
        for name, resource in translated["Resources"].items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }


@pytest.mark.parametrize(
    ("parameters", "channels"),
    [
        ({}, set()),
        (SLACK, {"SlackChannel"}),
        (TEAMS, {"TeamsChannel"}),
        ({**SLACK, **TEAMS}, {"SlackChannel", "TeamsChannel"}),
    ],
)
def test_the_translated_template_has_a_channel_for_each_chat_given_subscribed_to_both_topics(
    parameters: dict[str, str], channels: set[str]
) -> None:
    # Given the template as SAM transforms it, with these chat parameters
    resources = created(parameters)
    # Then a channel configuration exists for each chat given, and the channels' role only with one
    found = {name for name, r in resources.items() if r["Type"] in CHANNEL_TYPES}
    assert found == channels
    assert ("ChatChannelRole" in resources) is bool(channels)
    for name in found:
        properties = resources[name]["Properties"]
        # And it is subscribed to the digest topic and the ops topic (the alarms'), as the role it is given
        assert properties["SnsTopicArns"] == [{"Ref": "DigestTopic"}, {"Ref": "OpsTopic"}]
        assert properties["IamRoleArn"] == {"Fn::GetAtt": ["ChatChannelRole", "Arn"]}
        # And the guardrail lets it, and any user role, read only; commands need a user role of their own
        assert properties["GuardrailPolicies"] == [{"Fn::Sub": READ_ONLY}]
        assert properties["UserRoleRequired"] is True
        # And it names the chat's own parameters, as given
        named = {value["Ref"] for value in properties.values() if isinstance(value, dict) and "Ref" in value}
        assert named - {"DigestTopic", "OpsTopic"} == set(SLACK if name == "SlackChannel" else TEAMS)
    if channels:
        role = resources["ChatChannelRole"]["Properties"]
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "chatbot.amazonaws.com"}
        assert "ManagedPolicyArns" not in role
        [policy] = role["Policies"]
        [statement] = policy["PolicyDocument"]["Statement"]
        # The service's "Notification permissions" template: CloudWatch reads, to render the alarms
        assert statement["Action"] == ["cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*"]


@pytest.mark.parametrize(
    ("parameters", "valid"),
    [
        ({}, True),
        (SLACK, True),
        ({**SLACK, **TEAMS}, True),
        ({"SlackWorkspaceId": SLACK["SlackWorkspaceId"]}, False),
        ({"SlackChannelId": SLACK["SlackChannelId"]}, False),
        ({"TeamsTeamId": TEAMS["TeamsTeamId"], "TeamsTenantId": TEAMS["TeamsTenantId"]}, False),
    ],
)
def test_a_chat_half_given_is_refused_by_the_rules(template: Template, parameters: dict[str, str], valid: bool) -> None:
    """CloudFormation "Rules": an assertion that fails refuses the stack before any change (here, a Slack or Teams
    channel half given, which would create nothing)."""
    refs = {**template.parameter_defaults(), **parameters}
    assertions = {
        f"{rule}.{index}": assertion["Assert"]
        for rule, body in template.body["Rules"].items()
        for index, assertion in enumerate(body["Assertions"])
    }
    assert all(Template({"Conditions": assertions}).conditions(refs).values()) is valid


@pytest.mark.parametrize(("name", "value"), [*SLACK.items(), *TEAMS.items()])
def test_the_sample_ids_fit_the_parameters_patterns(template: Template, name: str, value: str) -> None:
    pattern = template.body["Parameters"][name]["AllowedPattern"]
    assert re.fullmatch(pattern, value)
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "x y")
