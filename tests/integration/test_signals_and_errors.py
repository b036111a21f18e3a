"""CLI errors are one line: an AWS error code from moto, in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cinnox_sms_cli.main import FAILED, main

if TYPE_CHECKING:
    import pytest

    from support import Stack


def test_an_aws_error_code_from_moto_is_one_line(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Given moto in-process and a table that does not exist
    assert main(["status", "txn", "--table", "no-such-table"]) == FAILED
    # Then AWS's error code and message, and the operation, are on one line
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("cinnox-sms: error: dynamodb Query: ResourceNotFoundException: ")
