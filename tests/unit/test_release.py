"""Release metadata: one version in three places, one licence, and the publishing limits AWS documents.

The limits are AWS's, from "AWS SAM template Metadata section properties" (AWS SAM Developer Guide,
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-template-publishing-applications-metadata-properties.html):
Name 1-140 of [a-zA-Z0-9-]; Description 1-256; Author 1-127 of the pattern below; Labels at most 10,
each 1-127 of letters, digits and + - _ : / @; LicenseUrl and ReadmeUrl at most 5 MB; SemanticVersion per semver.org;
no intrinsic functions under AWS::ServerlessRepo::Application.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAR = "AWS::ServerlessRepo::Application"
FIVE_MB = 5 * 1024 * 1024
NAME = re.compile(r"[a-zA-Z0-9\-]+")
AUTHOR = re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$")
LABEL = re.compile(r"^[a-zA-Z0-9+\-_:\/@]+$")
# semver.org's own regular expression for a version.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.MULTILINE)


class _CfnLoader(yaml.SafeLoader):
    """template.yaml with CloudFormation's short forms (!Ref, !Sub, ...) read as plain data."""


def _short_form(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _short_form)


def _application() -> dict[str, Any]:
    loader = _CfnLoader((ROOT / "template.yaml").read_text())
    try:
        template: dict[str, Any] = loader.get_single_data()
    finally:
        loader.dispose()
    application: dict[str, Any] = template["Metadata"][SAR]
    return application


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _changelog_releases() -> list[tuple[str, str | None]]:
    return [(m["version"], m["date"]) for m in RELEASE_HEADING.finditer((ROOT / "CHANGELOG.md").read_text())]


def test_one_version_in_pyproject_template_and_changelog() -> None:
    # Given the three places a release states its version
    project_version = _project()["version"]
    semantic_version = _application()["SemanticVersion"]
    releases = [(version, date) for version, date in _changelog_releases() if version != "Unreleased"]

    # Then the latest CHANGELOG entry, the template's SemanticVersion and pyproject.toml's version agree
    assert releases, "CHANGELOG.md has no release heading like '## [0.1.0] - 2026-11-29'"
    latest_version, latest_date = releases[0]
    assert semantic_version == project_version == latest_version
    assert latest_date, "the latest release heading has no date"
    assert SEMVER.match(semantic_version), semantic_version


def test_changelog_keeps_an_unreleased_section_above_the_releases() -> None:
    # Given CHANGELOG.md's headings and link lines
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = [version for version, _ in _changelog_releases()]

    # Then Keep a Changelog's shape: Unreleased first, newest release next, each heading linked
    assert versions[0] == "Unreleased"
    assert len(versions) == len(set(versions)), "a version appears twice"
    for version in versions:
        assert re.search(rf"^\[{re.escape(version)}\]: \S+$", changelog, re.MULTILINE), f"no link line for [{version}]"


def test_licence_is_the_one_pyproject_states() -> None:
    # Given the template's licence metadata and pyproject.toml's
    application = _application()
    project = _project()

    # Then the SPDX identifier is the same, and the file the template uploads is the one pyproject ships
    assert application["SpdxLicenseId"] == project["license"] == "MIT-0"
    assert application["LicenseUrl"] in project["license-files"]
    assert (ROOT / application["LicenseUrl"]).read_text().startswith("MIT No Attribution\n")


def test_licence_and_readme_files_exist_within_the_size_limit() -> None:
    # Given the local files `sam package` uploads for the Serverless Application Repository
    application = _application()

    for field in ("LicenseUrl", "ReadmeUrl"):
        path = ROOT / application[field]
        # Then each is a file beside template.yaml, at most 5 MB
        assert path.is_file(), f"{field}: {path} does not exist"
        assert path.stat().st_size <= FIVE_MB, f"{field}: {path} is over 5 MB"
    assert application["ReadmeUrl"] == "README.md"


def test_metadata_within_the_documented_limits() -> None:
    # Given the application's metadata
    application = _application()

    # Then no intrinsic function (they are not supported there): plain strings, Labels a list of them
    for field, value in application.items():
        strings = value if field == "Labels" else [value]
        assert all(isinstance(s, str) for s in strings), f"{field} is not plain text: {value!r}"
    # And the required fields within their lengths and patterns
    assert 1 <= len(application["Name"]) <= 140
    assert NAME.fullmatch(application["Name"]), application["Name"]
    assert 1 <= len(application["Description"]) <= 256, len(application["Description"])
    assert 1 <= len(application["Author"]) <= 127
    assert AUTHOR.match(application["Author"]), application["Author"]
    # And the labels
    labels = application["Labels"]
    assert 1 <= len(labels) <= 10
    for label in labels:
        assert 1 <= len(label) <= 127, label
        assert LABEL.match(label), label


def test_home_page_and_source_urls_are_https_and_their_placeholders_documented() -> None:
    # Given the two URLs the publisher replaces with the public repository's
    application = _application()
    publishing = (ROOT / "docs" / "publishing.md").read_text()

    for field in ("HomePageUrl", "SourceCodeUrl"):
        url = application[field]
        # Then each is an https URL, and while it is a placeholder the publishing steps say so
        assert url.startswith("https://"), url
        if url.startswith("https://example.com/"):
            assert url in publishing, f"{field}'s placeholder is not in docs/publishing.md"
            assert f"`{field}`" in publishing, f"docs/publishing.md does not say {field} is replaced"
