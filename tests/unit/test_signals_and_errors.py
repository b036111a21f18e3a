"""CLI usage errors stay argparse's: exit 2, no traceback."""

from __future__ import annotations

import pytest

from cinnox_sms_cli.main import main


def test_usage_errors_stay_argparse_s_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["status", "txn"])
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
