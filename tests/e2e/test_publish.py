"""`make package`'s rehearsal end to end: SAM CLI's real `sam package` of the build, into moto's S3 on loopback.

What "Publishing serverless applications using the AWS SAM CLI" (AWS SAM Developer Guide) expects of the
packaged template: CodeUri (ContentUri for a layer), LicenseUrl and ReadmeUrl point to objects in the
bucket. No AWS account and no network: devrig/package.py gives SAM CLI moto's endpoint (AWS_ENDPOINT_URL),
throwaway keys and no AWS config files. Needs `sam build`'s output, as tests/e2e/test_build.py does.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / os.environ.get("SAM_BUILD_DIR", ".aws-sam/build")
SCRIPT = ROOT / "devrig" / "package.py"
BUCKET = "cinnox-sms-package-rehearsal"


def _package(output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert (BUILD_DIR / "template.yaml").is_file(), (
        f"no sam build output in {BUILD_DIR}: run `make build` (make test does)"
    )
    env = {name: value for name, value in os.environ.items() if name != "PACKAGE_BUCKET"}  # always the rehearsal
    command = [sys.executable, str(SCRIPT), "--build-dir", str(BUILD_DIR), "--output", str(output), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def _packaged_uris(packaged: Path) -> dict[str, str]:
    """Where the packaged template names an artifact -> the URI it names."""
    template: dict[str, Any] = yaml.safe_load(packaged.read_text())  # sam package writes long-form intrinsics
    uris = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            uris[f"{logical_id}.CodeUri"] = resource["Properties"]["CodeUri"]
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            uris[f"{logical_id}.ContentUri"] = resource["Properties"]["ContentUri"]
    application = template["Metadata"]["AWS::ServerlessRepo::Application"]
    uris |= {f"Metadata.{name}": application[name] for name in ("LicenseUrl", "ReadmeUrl")}
    return uris


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    """A moto server of the test's own, so the bucket can be read after the script has finished."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(endpoint):
            assert process.poll() is None, "moto's server exited"
            assert time.monotonic() < deadline, "moto's server did not answer within 30 s"
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_rehearsal_packages_every_artifact_to_s3_and_stops_moto(tmp_path: Path) -> None:
    # Given sam build's output and no bucket: make package's rehearsal
    packaged = tmp_path / "packaged.yaml"

    # When the script runs as `make package` runs it (it starts and stops moto itself)
    result = _package(packaged)

    # Then it succeeds, and every artifact of the packaged template is an s3:// URI in the rehearsal bucket,
    # under the application's name and version
    assert result.returncode == 0, result.stdout + result.stderr
    uris = _packaged_uris(packaged)
    assert set(uris) == {
        "WebhookFunction.CodeUri",
        "ParkedTdrFunction.CodeUri",
        "AlertFunction.CodeUri",
        "MetricsFunction.CodeUri",
        "DigestFunction.CodeUri",
        "NoFinalStatusFunction.CodeUri",
        "DeliveryWidgetFunction.CodeUri",
        "OverdueAlertFunction.CodeUri",
        "SubscriptionFunction.CodeUri",
        "WarmThroughputFunction.CodeUri",
        "CommonLayer.ContentUri",
        "Metadata.LicenseUrl",
        "Metadata.ReadmeUrl",
    }
    for where, uri in uris.items():
        assert uri.startswith(f"s3://{BUCKET}/cinnox-sms-delivery-tracker/0.1.0/"), (where, uri)
        # And the script lists each one with the size moto holds
        assert any(where in line and uri in line and line.endswith(" bytes") for line in result.stdout.splitlines())
    # And the moto server it started no longer answers
    started = [line for line in result.stdout.splitlines() if "rehearsal against moto's S3 at " in line]
    assert len(started) == 1, result.stdout
    endpoint = started[0].split(" at ")[1].split()[0]
    assert "moto's server stopped" in result.stdout
    assert not _answers(endpoint)


def test_packaged_objects_are_the_artifacts_in_the_bucket(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a moto server the test reads afterwards
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    packaged = tmp_path / "packaged.yaml"

    # When the script packages into it
    result = _package(packaged, "--endpoint-url", moto_endpoint)

    # Then the bucket holds exactly the objects the packaged template names
    assert result.returncode == 0, result.stdout + result.stderr
    uris = _packaged_uris(packaged)
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    listed = {obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    keys = {where: uri.removeprefix(f"s3://{BUCKET}/") for where, uri in uris.items()}
    assert listed == set(keys.values())

    def body(where: str) -> bytes:
        data: bytes = s3.get_object(Bucket=BUCKET, Key=keys[where])["Body"].read()
        return data

    # And the licence and README are the repository's files, byte for byte
    assert body("Metadata.LicenseUrl") == (ROOT / "LICENSE").read_bytes()
    assert body("Metadata.ReadmeUrl") == (ROOT / "README.md").read_bytes()
    # And each function's code is a zip of its built handler; the layer's holds the domain package
    for function in (
        "WebhookFunction",
        "ParkedTdrFunction",
        "AlertFunction",
        "MetricsFunction",
        "DigestFunction",
        "SubscriptionFunction",
    ):
        with zipfile.ZipFile(io.BytesIO(body(f"{function}.CodeUri"))) as archive:
            assert "app.py" in archive.namelist(), function
    with zipfile.ZipFile(io.BytesIO(body("CommonLayer.ContentUri"))) as archive:
        assert "python/cinnox_sms/model.py" in archive.namelist()
