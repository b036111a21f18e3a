"""What `sam build` produced: each built handler imports and runs with the built layer.

The build targets arm64, so the layer holds an aarch64 pydantic-core; this machine
is x86_64. The x86_64 wheel of the very same version (from this test environment)
is put ahead of the layer on the path for that one compiled package, and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from local_stack.template import ROOT, Template

BUILD_DIR = ROOT / os.environ.get("SAM_BUILD_DIR", ".aws-sam/build")
# Every function the template declares: a function added later is checked without a list to update.
FUNCTIONS = sorted(Template.load().resources_of_type("AWS::Serverless::Function"))

# Runs in a fresh interpreter without site-packages, paths set as Lambda sets them:
# the function's folder, then the layer's python/ folder; the runtime's boto3 last.
PROBE = r"""
import importlib.util, json, os, sys
function_dir, x86_dir, layer_dir, runtime_dir, handler = sys.argv[1:6]
sys.path[:0] = [function_dir, x86_dir, layer_dir]
sys.path.append(runtime_dir)
module_name, _, attribute = handler.rpartition(".")
spec = importlib.util.spec_from_file_location(module_name, os.path.join(function_dir, module_name + ".py"))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import aws_lambda_powertools, cinnox_sms, pydantic, pydantic_core._pydantic_core as core
report = {
    "handler": callable(getattr(module, attribute)),
    "files": {m.__name__: m.__file__ for m in (aws_lambda_powertools, cinnox_sms, pydantic, core)},
}
if len(sys.argv) > 6:  # run one event against moto, in this same process
    import boto3
    from moto import mock_aws
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(Name="s", SecretString="built-secret-0123456789")
        os.environ["WEBHOOK_SECRET_ARN"] = secret["ARN"]
        boto3.client("dynamodb").create_table(**json.loads(sys.argv[7]))
        class Context:
            function_name = "built"; memory_limit_in_mb = 256; aws_request_id = "r"
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:built"
        report["answer"] = getattr(module, attribute)(json.loads(sys.argv[6]), Context())
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def built(template: Template) -> Template:
    built_template = BUILD_DIR / "template.yaml"
    assert built_template.is_file(), f"no sam build output in {BUILD_DIR}: run `make build` (make test does)"
    return Template.load(built_template)


@pytest.fixture(scope="module")
def x86_pydantic_core(tmp_path_factory: pytest.TempPathFactory, built: Template) -> Path:
    import pydantic_core

    layer = BUILD_DIR / built.resource("CommonLayer")["Properties"]["ContentUri"] / "python"
    [built_dist] = layer.glob("pydantic_core-*.dist-info")
    assert built_dist.name == f"pydantic_core-{pydantic_core.__version__}.dist-info", "versions must match"
    assert list((layer / "pydantic_core").glob("_pydantic_core.*aarch64*.so")), "the layer should be arm64"
    folder = tmp_path_factory.mktemp("x86")
    (folder / "pydantic_core").symlink_to(Path(pydantic_core.__file__).parent)
    return folder


def probe(built: Template, x86: Path, function: str, *event: str) -> dict[str, Any]:
    properties = built.resource(function)["Properties"]
    layer = BUILD_DIR / built.resource("CommonLayer")["Properties"]["ContentUri"] / "python"
    command = [
        sys.executable,
        "-S",
        "-c",
        PROBE,
        str(BUILD_DIR / properties["CodeUri"]),
        str(x86),
        str(layer),
        sysconfig.get_paths()["purelib"],
        properties["Handler"],
        *event,
    ]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TDR_TABLE_NAME": "built-tdr",
        "CINNOX_APP_ID": "app-built",
        "WEBHOOK_SECRET_ARN": "unset",
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("function", FUNCTIONS)
def test_built_handler_imports_with_the_built_layer(built: Template, x86_pydantic_core: Path, function: str) -> None:
    report = probe(built, x86_pydantic_core, function)
    assert report["handler"] is True
    files = report["files"]
    layer = str(BUILD_DIR / "CommonLayer" / "python")
    assert files["cinnox_sms"].startswith(layer)
    assert files["pydantic"].startswith(layer)
    assert files["aws_lambda_powertools"].startswith(layer)
    assert files["pydantic_core._pydantic_core"].startswith(str(x86_pydantic_core))


def test_built_webhook_stores_a_tdr(built: Template, template: Template, x86_pydantic_core: Path) -> None:
    from support import http_event, tdr

    event = http_event("/tdr/built-secret-0123456789", json.dumps(tdr(AppID="app-built")))
    table = template.table_definition("TdrTable", "built-tdr")
    report = probe(built, x86_pydantic_core, "WebhookFunction", json.dumps(event), json.dumps(table))
    assert report["answer"]["statusCode"] == 200
    assert json.loads(report["answer"]["body"])["result"]["duplicate"] is False


def test_built_template_keeps_the_runtime_and_architecture(built: Template) -> None:
    for function in FUNCTIONS:
        properties = built.function(function)
        assert (properties["Runtime"], properties["Architectures"]) == ("python3.13", ["arm64"])
