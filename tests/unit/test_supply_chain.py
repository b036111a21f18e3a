"""Supply chain (issue 20, item 9): what CI runs and what installs the code is pinned to exact bytes.

- Every GitHub Action is pinned by its full commit SHA (a tag can be moved to other code), with the
  release as a comment, and Dependabot watches the workflows' actions.
- The build backend (setuptools) comes from a hashed lock: the Makefile installs it and builds the
  project and devrig/ with --no-build-isolation, so nothing unpinned is fetched on the way to a venv.
- The CLI's documented install takes a constraints file from the lock that pins every package the
  command needs at run time, transitive ones included, at the versions the tests run.
- `make test` runs semgrep, from its own hashed lock, with the repository's own Python rules (offline),
  and every suppression names its rule and says why.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "devrig" / "requirements"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._\-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a requirements file."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def _hashed(path: Path) -> dict[str, str]:
    """The pins of a lock whose every requirement carries at least one sha256 hash (asserted)."""
    blocks = re.split(r"\n(?=[A-Za-z0-9])", path.read_text())
    pins: dict[str, str] = {}
    for block in blocks:
        if match := PIN.match(block):
            assert "--hash=sha256:" in block, f"{path.name}: {match['name']} is pinned without a hash"
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def _make_variables(text: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    for match in re.finditer(r"^([A-Z0-9_]+)\s*(?::=|\?=|=)\s*(.*)$", text, re.MULTILINE):
        variables.setdefault(match[1], match[2].strip())
    return variables


def _expand(text: str, variables: dict[str, str]) -> str:
    for _ in range(10):
        expanded = re.sub(r"\$\(([A-Z0-9_]+)\)", lambda m: variables.get(m[1], m[0]), text)
        if expanded == text:
            break
        text = expanded
    return text


def _rule(target: str) -> tuple[str, str]:
    """(prerequisites, recipe) of a Makefile rule, variables expanded, continuation lines joined."""
    text = (ROOT / "Makefile").read_text()
    variables = _make_variables(text)
    lines = text.replace("\\\n", " ").splitlines()
    for index, line in enumerate(lines):
        head = re.match(r"^(?P<target>[^\s:#=][^:=]*?):(?!=)(?P<prerequisites>[^#]*)", line)
        if head and _expand(head["target"], variables).strip() == target:
            recipe = []
            for following in lines[index + 1 :]:
                if not following.startswith("\t"):
                    break
                recipe.append(following.strip())
            return _expand(head["prerequisites"], variables), _expand("\n".join(recipe), variables)
    raise AssertionError(f"no Makefile rule for {target}")


# --- GitHub Actions ---------------------------------------------------------------------------------


def test_there_are_workflows_to_check() -> None:
    assert WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_by_full_commit_sha_with_its_release_as_a_comment(workflow: Path) -> None:
    uses = [match for line in workflow.read_text().splitlines() if (match := USES.match(line))]
    assert uses, f"{workflow.name} uses no action"
    for match in uses:
        ref = match["ref"].strip("'\"")
        if ref.startswith(("./", "docker://")):
            continue
        action, _, version = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", version), f"{workflow.name}: {action} is pinned by {version!r}, not a SHA"
        assert re.search(r"#\s*v\d+(\.\d+)*\s*$", match["rest"]), f"{workflow.name}: {action}'s release is not noted"


def test_dependabot_proposes_new_action_shas_and_watches_every_lock_directory() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {(update["package-ecosystem"], update["directory"]) for update in config["updates"]}
    assert ("github-actions", "/") in ecosystems
    assert ("pip", "/devrig/requirements") in ecosystems  # the build backend's, semgrep's and the CLI's locks


# --- the build backend --------------------------------------------------------------------------------


def test_the_build_backend_is_pinned_and_hashed_in_a_lock() -> None:
    locked = _hashed(REQUIREMENTS / "build.txt")
    for pyproject in (ROOT / "pyproject.toml", ROOT / "devrig" / "pyproject.toml"):
        system = tomllib.loads(pyproject.read_text())["build-system"]
        assert system["build-backend"] == "setuptools.build_meta"
        for requirement in map(Requirement, system["requires"]):
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{pyproject.relative_to(ROOT)} builds with {name}, which build.txt does not lock"
            assert requirement.specifier.contains(locked[name]), f"build.txt: {name} {locked[name]}, not {requirement}"


def test_make_installs_the_locked_backend_and_builds_without_isolation() -> None:
    prerequisites, recipe = _rule(".venv/.installed")
    assert "devrig/requirements/build.txt" in prerequisites.split()
    installs = [line for line in recipe.splitlines() if " install " in line]
    locked = [line for line in installs if "--require-hashes" in line]
    assert any("-r devrig/requirements/build.txt" in line for line in locked), recipe
    editable = [line for line in installs if " -e " in line]
    assert editable, recipe
    for line in editable:
        assert "--no-build-isolation" in line, f"an isolated build fetches an unpinned backend: {line}"
        assert "--no-deps" in line, line


def test_no_make_target_builds_the_project_with_isolation() -> None:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if re.search(r"\bpip install\b.*\s(-e\s+)?\.(\s|$)", line):
            assert "--no-build-isolation" in line, line


# --- the CLI's install ---------------------------------------------------------------------------------


def test_the_cli_lock_is_hashed_and_pins_what_the_tests_run() -> None:
    cli = _hashed(REQUIREMENTS / "cli.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    assert cli
    for name, version in cli.items():
        assert dev.get(name) == version, f"cli.txt pins {name} {version}, the tests run {dev.get(name)}"


def test_the_constraints_file_is_the_cli_lock_without_hashes() -> None:
    constraints = REQUIREMENTS / "cli-constraints.txt"
    assert "--hash" not in constraints.read_text()  # pip would demand hashes for the project directory too
    assert _pins(constraints) == _hashed(REQUIREMENTS / "cli.txt")


def _runtime_closure() -> dict[str, set[str]]:
    """Every distribution `cinnox-sms-tracker` needs at run time (from the installed metadata), with who needs it."""
    needed: dict[str, set[str]] = {}
    pending = [("cinnox-sms-tracker", requirement) for requirement in _requires("cinnox-sms-tracker")]
    while pending:
        parent, requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in needed:
            needed[name].add(parent)
            continue
        needed[name] = {parent}
        pending.extend((name, child) for child in _requires(name))
    return needed


def _requires(distribution: str) -> list[Requirement]:
    return [Requirement(text) for text in importlib.metadata.requires(distribution) or []]


def test_the_constraints_pin_every_runtime_dependency_of_the_cli() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    constraints = _pins(REQUIREMENTS / "cli-constraints.txt")
    for requirement in map(Requirement, declared):
        name = canonicalize_name(requirement.name)
        assert name in constraints, f"the constraints file does not pin {name}, a dependency of the CLI"
        assert requirement.specifier.contains(constraints[name]), f"{name} {constraints[name]} is not {requirement}"
    closure = _runtime_closure()
    assert {"botocore", "pydantic-core", "urllib3"} <= closure.keys()  # the walk reaches transitive ones
    for needed, parents in closure.items():
        assert needed in constraints, f"the constraints do not pin {needed} (needed by {', '.join(sorted(parents))})"


def test_the_cli_install_is_documented_with_the_constraints_and_the_locked_backend() -> None:
    for doc in ("README.md", "docs/operations.md"):
        text = (ROOT / doc).read_text()
        assert "devrig/requirements/cli-constraints.txt" in text, doc
        assert "PIP_BUILD_CONSTRAINT" in text, doc
        assert not re.search(r"`pipx install \.`", text), f"{doc} still documents the unconstrained install"


def test_make_lock_writes_the_build_cli_and_semgrep_locks() -> None:
    _, recipe = _rule("lock")
    for lock in ("build.txt", "cli.txt", "cli-constraints.txt", "semgrep.txt"):
        assert f"devrig/requirements/{lock}" in recipe, lock
    assert "-c requirements-dev.txt" in recipe  # the CLI at the tested versions


# --- semgrep --------------------------------------------------------------------------------------------


def test_make_test_runs_semgrep_offline_with_the_repositorys_python_rules() -> None:
    test_prerequisites, _ = _rule("test")
    assert "security" in test_prerequisites.split()
    prerequisites, recipe = _rule("security")
    assert ".venv-semgrep/.installed" in prerequisites.split()
    scans = [line for line in recipe.splitlines() if "semgrep scan" in line]
    assert scans, recipe
    for line in scans:
        assert "--config devrig/semgrep/python.yml" in line
        assert "--error" in line  # a finding fails the run
        assert "--metrics=off" in line
        assert not re.search(r"--config[ =](p/|r/|auto\b|https?:)", line), "a registry config needs the network"
        for path in ("layers/common/cinnox_sms", "functions", "cli", "devrig"):
            assert re.search(rf"\s{re.escape(path)}(\s|$)", line), path
    assert any("semgrep --test" in line for line in recipe.splitlines()), "the rules are not checked on their examples"
    _, install = _rule(".venv-semgrep/.installed")
    assert "--require-hashes" in install
    assert "-r devrig/requirements/semgrep.txt" in install
    assert "semgrep" in _hashed(REQUIREMENTS / "semgrep.txt")


def test_every_semgrep_rule_has_an_example_it_must_flag() -> None:
    rules = yaml.safe_load((ROOT / "devrig" / "semgrep" / "python.yml").read_text())["rules"]
    examples = (ROOT / "devrig" / "semgrep" / "python.py").read_text()
    for rule in rules:
        assert f"# ruleid: {rule['id']}\n" in examples, rule["id"]


def test_every_semgrep_suppression_names_its_rule_and_says_why() -> None:
    rules = yaml.safe_load((ROOT / "devrig" / "semgrep" / "python.yml").read_text())["rules"]
    rule_ids = {rule["id"] for rule in rules}
    for folder in ("layers/common/cinnox_sms", "functions", "cli", "devrig"):
        for path in (ROOT / folder).rglob("*.py"):
            if "semgrep" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "nosemgrep" not in line:
                    continue
                match = re.search(r"nosemgrep:\s*(?P<ids>[\w\-, ]+?)\s+#\s*\S+", line)
                where = f"{path.relative_to(ROOT)}:{number}"
                assert match, f"{where}: a nosemgrep needs its rule id and, after a #, the reason"
                for rule_id in match["ids"].split(","):
                    assert rule_id.strip() in rule_ids, f"{where}: no rule {rule_id.strip()}"
