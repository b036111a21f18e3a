"""Issue 21 item 5: what a newcomer typed ends in a usage error (exit 2, one line, no traceback), never in
a traceback, an AWS call or minutes of Queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cinnox_sms_cli.main import main
from cinnox_sms_cli.report import Period

NOWHERE = "http://127.0.0.1:9"  # nothing listens: were a call made, it would fail with exit 3, not 2
REDRIVE = ["redrive", "--table", "t", "--parking-queue-url", "q", "--failure-queue-url", "f", "--topic-arn", "a"]


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize("endpoint", ["not-a-url", "", "ftp://127.0.0.1", "http://"])
def test_an_endpoint_that_is_not_a_url_is_a_usage_error(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an --endpoint-url botocore would refuse with "ValueError: Invalid endpoint" (or could not reach)
    # When any command is run with it
    last = _usage_error(["status", "txn", "--table", "t", "--endpoint-url", endpoint], capsys)
    # Then it is named as not a URL, before any AWS call
    assert "--endpoint-url" in last
    assert "is not an http:// or https:// URL" in last


@pytest.mark.parametrize("since", ["1000000d", "99999999999999999999d", "0001-01-01", "100000d"])
def test_a_period_too_long_or_out_of_range_is_a_usage_error(since: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given --since far enough back to overflow a date, or to make hundreds of thousands of Queries
    # When the report (or pending) is asked for it
    for command in ("report", "pending"):
        last = _usage_error([command, "--since", since, "--table", "t", "--endpoint-url", NOWHERE], capsys)
        # Then it is refused at once, saying why (no OverflowError, no Query made)
        assert "before year 1" in last or "longer than any period" in last or "longer than 400 days" in last


def test_a_refused_long_period_names_its_query_count(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a period of 401 whole days
    argv = ["report", "--since", "2025-01-01", "--until", "2026-02-06", "--table", "t", "--endpoint-url", NOWHERE]
    # When the report is asked for it
    last = _usage_error(argv, capsys)
    # Then it says how many Queries that would be, and to split it
    assert "401 Queries" in last
    assert "split it" in last


def test_a_period_of_400_days_is_still_read(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a period of exactly 400 days (the default retention)
    argv = ["report", "--since", "2025-01-01", "--until", "2026-02-05", "--table", "t", "--endpoint-url", NOWHERE]
    # When the report is asked for it, Then it goes on to read (here: the endpoint is unreachable, exit 3)
    assert main([*argv, "--region", "eu-west-1"]) == 3
    assert "longer than" not in capsys.readouterr().err


def test_period_errors_show_whole_seconds() -> None:
    # Given --until before --since, both with microseconds (as "24h" and now have)
    now = datetime(2026, 12, 6, 4, 50, 12, 345678, tzinfo=UTC)
    # When the period is formed, Then the error shows the times to the second
    with pytest.raises(ValueError, match="must come after") as refused:
        Period.covering(now, now - timedelta(hours=1))
    assert str(refused.value) == (
        "--until (2026-12-06T03:50:12+00:00) must come after --since (2026-12-06T04:50:12+00:00)"
    )


def test_an_empty_transaction_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given status "" (DynamoDB would refuse the empty key: exit 3 with its message)
    # When it is run, Then it is a bad argument: exit 2
    assert "TRANSACTION_ID is empty" in _usage_error(["status", " ", "--table", "t", "--endpoint-url", NOWHERE], capsys)


@pytest.mark.parametrize("argv", [[*REDRIVE, "--retention-days", "-1"], [*REDRIVE, "--retention-days", "0"]])
def test_a_retention_below_one_day_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given redrive with a retention that would write parked TDRs already expired
    # When it is run, Then it is refused before anything is written
    assert "--retention-days" in _usage_error([*argv, "--endpoint-url", NOWHERE], capsys)


def test_a_negative_grace_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--grace-minutes" in _usage_error([*REDRIVE, "--grace-minutes", "-5", "--endpoint-url", NOWHERE], capsys)


@pytest.mark.parametrize("region", ["", "Europe", "eu west 1"])
def test_a_region_that_is_no_region_is_a_usage_error(region: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given --region "" (which reached moto as a request it answered with an HTML page)
    # When a command is run with it, Then it is a usage error naming the option
    assert "--region" in _usage_error(["status", "txn", "--table", "t", "--region", region], capsys)
