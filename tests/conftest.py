"""Fixtures of every level: the real template, a Lambda context, the functions' log lines, the secrets check.

moto and the functions loaded from the template are tests/integration/conftest.py's; plain helpers are in
tests/support.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from local_stack.template import ROOT, Template
from support import LambdaContext, LogLines

if TYPE_CHECKING:
    from support import Stack

# Records every AWS call the functions make and judges it against their SAM-made roles (tests/integration/test_iam.py).
pytest_plugins = ["iam_rehearsal"]


@pytest.fixture(scope="session")
def template() -> Template:
    return Template.load()


@pytest.fixture(scope="session")
def template_events() -> dict[str, dict[str, Any]]:
    """The events/ files, as sam local invoke -e reads them."""
    return {path.name: json.loads(path.read_text()) for path in sorted((ROOT / "events").glob("*.json"))}


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def logs() -> LogLines:
    return LogLines()


SECRET_CHECKS = {"tests": 0, "lines": 0}


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Across the whole suite: no log line, and nothing printed, holds the AppToken or the webhook secret."""
    if "stack" not in request.fixturenames:
        yield
        return
    # Asked for here, so that they are torn down after this check.
    stack: Stack = request.getfixturevalue("stack")
    logs: LogLines | None = request.getfixturevalue("logs") if "logs" in request.fixturenames else None
    yield
    printed = capsys.readouterr()
    text = printed.out + printed.err + (logs.getvalue() if logs is not None else "")
    for secret in (stack.webhook_secret, stack.app_token):
        assert secret not in text, "a secret reached the logs"
    SECRET_CHECKS["tests"] += 1
    SECRET_CHECKS["lines"] += text.count("\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its counts to the controller, which prints the summary."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["secret_checks"] = dict(SECRET_CHECKS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    for key, count in getattr(node, "workeroutput", {}).get("secret_checks", {}).items():
        SECRET_CHECKS[key] += count


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"secrets: no AppToken or webhook secret in {SECRET_CHECKS['lines']} log lines of "
        f"{SECRET_CHECKS['tests']} tests"
    )
