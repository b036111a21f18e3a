"""An SMS's current status and the operator tool's usage errors, without AWS."""

from __future__ import annotations

import pytest

from cinnox_sms.model import Status
from cinnox_sms.query import current_status
from cinnox_sms_cli.main import main


@pytest.mark.parametrize(
    ("reports", "current"),
    [
        ([(Status.SUBMITTED, "2026-01-01T00:00:02")], Status.SUBMITTED),
        ([(Status.DELIVERED, "2026-01-01T00:00:01"), (Status.SUBMITTED, "2026-01-01T00:00:02")], Status.DELIVERED),
        ([(Status.REJECTED, "2026-01-01T00:00:01"), (Status.DELIVERED, "2026-01-01T00:00:03")], Status.DELIVERED),
        ([(Status.DELIVERED, "2026-01-01T00:00:03"), (Status.UNDELIVERED, "2026-01-01T00:00:01")], Status.DELIVERED),
    ],
)
def test_current_status_ranks_terminal_over_submitted_then_latest(
    reports: list[tuple[Status, str]], current: Status
) -> None:
    assert current_status(reports) is current


@pytest.mark.parametrize(
    "argv", [["status"], ["status", "txn"], ["status", "txn", "--table", "t", "--stack", "s"], ["nonsense"], []]
)
def test_cli_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: cinnox-sms" in capsys.readouterr().err


@pytest.mark.parametrize("period", ["yesterday", "24", "h24", "1w"])
def test_report_bad_period_is_a_usage_error(period: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--table", "t", "--since", period])
    assert exited.value.code == 2
    assert "is not a period like 24h" in capsys.readouterr().err


def test_redrive_needs_a_stack_or_every_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--table", "t"])
    assert exited.value.code == 2
    assert "give --stack, or all of --parking-queue-url" in capsys.readouterr().err


def test_subscription_needs_a_stack_or_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["subscription", "--base-url", "https://x", "--resend"])
    assert exited.value.code == 2
    assert "give --stack, or all of --app-id, --token-secret, --webhook-secret-id, --webhook-url" in (
        capsys.readouterr().err
    )
