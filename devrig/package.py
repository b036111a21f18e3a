"""`make package`: SAM CLI's own `sam package` of the built template, to S3 or rehearsed on loopback.

With a bucket (PACKAGE_BUCKET) it is the real step before `sam publish` (docs/publishing.md): the
artifacts go to that bucket with the caller's AWS credentials. Without one, the same command runs
against moto's S3 on 127.0.0.1: boto3, under SAM CLI, takes the endpoint from AWS_ENDPOINT_URL
(the SDKs' "Service-specific endpoints" setting), so no account and no network are needed. Either
way the packaged template is checked: every CodeUri/ContentUri and the Serverless Application
Repository's LicenseUrl/ReadmeUrl must be an s3:// URI in the bucket, and in the rehearsal each
object must be in moto's bucket. moto's server is stopped whatever happens (an error, Ctrl-C, SIGTERM).

    python devrig/package.py [--bucket NAME] [--build-dir .aws-sam/build] [--output .aws-sam/packaged.yaml]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from local_stack.emulator import CREDENTIALS, MotoServer, session
from local_stack.template import REGION, Template

ROOT = Path(__file__).resolve().parent.parent
SAR = "AWS::ServerlessRepo::Application"
REHEARSAL_BUCKET = "cinnox-sms-package-rehearsal"
# What `sam package` uploads and replaces with s3:// URIs ("Publishing serverless applications
# using the AWS SAM CLI", step 2: CodeUri, LicenseUrl and ReadmeUrl; a layer's is ContentUri).
CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
METADATA_FILES = ("LicenseUrl", "ReadmeUrl")
# The template's placeholder for the public repository (docs/publishing.md says what replaces it).
PLACEHOLDER_HOST = "https://example.com/"


@dataclass(frozen=True)
class Artifact:
    """One uploaded file: where the template names it and where it went."""

    where: str  # e.g. WebhookFunction.CodeUri, Metadata.LicenseUrl
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def artifacts(packaged: Template, bucket: str) -> list[Artifact]:
    """Every local path `sam package` had to replace, as the S3 object it now names; raises if one was not."""
    named: dict[str, Any] = {}
    for logical_id, resource in packaged.body["Resources"].items():
        code_property = CODE_PROPERTIES.get(resource["Type"])
        if code_property:
            named[f"{logical_id}.{code_property}"] = resource["Properties"].get(code_property)
    application = packaged.body.get("Metadata", {}).get(SAR, {})
    for name in METADATA_FILES:
        named[f"Metadata.{name}"] = application.get(name)
    found = []
    for where, uri in named.items():
        prefix = f"s3://{bucket}/"
        if not (isinstance(uri, str) and uri.startswith(prefix) and len(uri) > len(prefix)):
            raise SystemExit(f"package: {where} is {uri!r}, not an s3:// URI in {bucket}")
        found.append(Artifact(where, bucket, uri.removeprefix(prefix)))
    return found


def s3_prefix(built: Template) -> str:
    """Artifacts of one version under one folder: the application's name and semantic version."""
    application = built.body["Metadata"][SAR]
    return f"{application['Name']}/{application['SemanticVersion']}"


def placeholders(built: Template) -> list[str]:
    application = built.body["Metadata"][SAR]
    return [
        name for name in ("HomePageUrl", "SourceCodeUrl") if str(application.get(name, "")).startswith(PLACEHOLDER_HOST)
    ]


def sam_package(sam: Path, built: Path, output: Path, bucket: str, prefix: str, env: Mapping[str, str]) -> None:
    command = [str(sam), "package", "--template-file", str(built), "--output-template-file", str(output)]
    command += ["--s3-bucket", bucket, "--s3-prefix", prefix, "--no-progressbar"]
    subprocess.run(command, env=dict(env), check=True, stdin=subprocess.DEVNULL)


def rehearsal_environment(endpoint: str) -> dict[str, str]:
    """SAM CLI's environment for moto: no AWS_* of the caller's (a profile, a service endpoint such as
    AWS_ENDPOINT_URL_S3 that would win over the global one), no config files, the local stack's throwaway keys; every
    AWS client SAM CLI makes, not only S3's, is sent to moto."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT_URL": endpoint,
        **CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
    }
    return env


def rehearse(sam: Path, built: Path, output: Path, endpoint: str | None) -> dict[Artifact, int]:
    """sam package against moto's S3 (started here unless `endpoint` names one running); each
    artifact checked in the bucket, with its size."""
    moto = None if endpoint else MotoServer(log_file=output.parent / "package-moto.log")
    try:
        if moto:
            moto.start()
            endpoint = moto.endpoint
            print(f"package: rehearsal against moto's S3 at {endpoint} (no AWS account)", flush=True)
        assert endpoint
        s3 = session(endpoint).client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=REHEARSAL_BUCKET)
        sam_package(
            sam, built, output, REHEARSAL_BUCKET, s3_prefix(Template.load(built)), rehearsal_environment(endpoint)
        )
        sizes = {}
        for artifact in artifacts(Template.load(output), REHEARSAL_BUCKET):
            head = s3.head_object(Bucket=artifact.bucket, Key=artifact.key)  # raises if it is not there
            sizes[artifact] = int(head["ContentLength"])
        return sizes
    finally:
        if moto:
            moto.close()
            print("package: moto's server stopped", flush=True)


def _terminated(signum: int, _frame: object) -> NoReturn:
    # SIGTERM would end Python without running `finally`: make it an exit that does.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--bucket",
        default=os.environ.get("PACKAGE_BUCKET") or None,
        help="S3 bucket of a real account (default $PACKAGE_BUCKET); without it, moto's S3 on loopback",
    )
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build", help="sam build's output")
    parser.add_argument(
        "--output", type=Path, default=ROOT / ".aws-sam" / "packaged.yaml", help="the packaged template"
    )
    parser.add_argument("--sam", type=Path, default=ROOT / ".venv-sam" / "bin" / "sam", help="SAM CLI")
    parser.add_argument("--endpoint-url", help="rehearse against this running S3 emulator instead of starting moto")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)

    built = options.build_dir / "template.yaml"
    if not built.is_file():
        raise SystemExit(f"package: no {built}; run `make build` first (make package does)")
    options.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if options.bucket:
        prefix = s3_prefix(Template.load(built))
        sam_package(options.sam, built, options.output, options.bucket, prefix, os.environ)
        uploaded: dict[Artifact, int | None] = dict.fromkeys(artifacts(Template.load(options.output), options.bucket))
    else:
        uploaded = dict(rehearse(options.sam, built, options.output, options.endpoint_url))
    print(f"package: {options.output} names {len(uploaded)} artifacts ({time.monotonic() - started:.1f} s):")
    for artifact, size in uploaded.items():
        print(f"  {artifact.where:<32} {artifact.uri}" + ("" if size is None else f"  {size:,} bytes"))
    for name in placeholders(Template.load(built)):
        print(f"package: {name} is still a placeholder: replace it before `sam publish` (docs/publishing.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
