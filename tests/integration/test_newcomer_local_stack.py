"""Issue 21 item 5: the local stack answers `cinnox-sms subscription --stack cinnox-sms-local` as CloudFormation
would (its DescribeStacks carries the stack's Parameters), and the commands `make local` prints run as pasted."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import boto3

from cinnox_sms_cli.main import subscription_settings
from local_stack.cli import operator_command
from local_stack.cloudformation import ResponseEndpoint
from local_stack.stack import LocalStack, StackOptions
from local_stack.template import REGION

if TYPE_CHECKING:
    from local_stack.template import Template


def _session() -> boto3.Session:
    return boto3.Session(
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # nosec B106  # the emulator takes any
    )


def test_the_local_describe_stacks_gives_what_subscription_reads(template: Template) -> None:
    # Given the local stack as `make local` provisions it (CINNOX's settings as its parameters), its
    # DescribeStacks served by the local CloudFormation stand-in
    stack = LocalStack(template, StackOptions())
    parameters = {
        "CinnoxBaseUrl": "http://127.0.0.1:8443",
        "CinnoxAppId": "demo-app-0001",
        "CinnoxAppTokenSecret": stack.app_token_secret,
    }
    stack.provisioned.refs.update({**template.parameter_defaults(), **parameters, "AWS::StackName": "x"})
    stack.record.outputs = lambda: [
        ("WebhookBaseUrl", "http://127.0.0.1:3000/tdr", ""),
        ("WebhookSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:w", ""),
    ]
    endpoint = ResponseEndpoint()
    try:
        endpoint.register(stack.record)
        args = argparse.Namespace(stack=stack.options.stack_name, endpoint_url=endpoint.base_url)
        # When `cinnox-sms subscription --stack cinnox-sms-local` reads the stack's settings
        settings = subscription_settings(_session(), args)
        # Then it finds CINNOX's base URL, AppID and AppToken secret among the Parameters (not "has no CinnoxBaseUrl")
        assert settings["base_url"] == "http://127.0.0.1:8443"
        assert settings["app_id"] == "demo-app-0001"
        assert settings["token_secret"] == stack.app_token_secret
        # And every parameter is there, as CloudFormation lists them (pseudo parameters are not)
        cloudformation = _session().client("cloudformation", endpoint_url=endpoint.base_url)
        [described] = cloudformation.describe_stacks(StackName=stack.options.stack_name)["Stacks"]
        listed = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
        assert set(listed) == set(template.body["Parameters"])
    finally:
        endpoint.close()


def test_the_banner_names_the_app_token_secret_and_the_subscription_command() -> None:
    # Given the source of what `make local` prints, Then it names the AppToken secret and offers `subscription`
    source = (Path(__file__).parents[2] / "devrig" / "local_stack" / "cli.py").read_text()
    assert "AppToken      Secrets Manager secret {stack.app_token_secret}" in source
    assert '{operator_command(stack, "subscription")}' in source


def test_the_printed_operator_command_runs_from_a_bare_shell(tmp_path: Path) -> None:
    # Given the command line `make local` prints for the operator's tool
    stack = SimpleNamespace(
        client_environment=lambda: {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": REGION},
        options=SimpleNamespace(stack_name="cinnox-sms-local"),
    )
    command = operator_command(stack, "--help")  # type: ignore[arg-type]
    # When it is pasted into a shell whose PATH has no venv on it (a new terminal)
    result = subprocess.run(  # our own command line
        ["/bin/sh", "-c", command],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then it runs (not "env: 'cinnox-sms': No such file or directory"): the venv's program by its path
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: cinnox-sms")
    assert command.split()[3] == str(Path(sys.executable).absolute().parent / "cinnox-sms")
