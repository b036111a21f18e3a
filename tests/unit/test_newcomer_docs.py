"""Issue 21 item 5: what README and the docs tell a newcomer matches what the demo and `make local` do."""

from __future__ import annotations

import re

from local_stack.template import ROOT


def _demo_default(option: str) -> int:
    source = (ROOT / "devrig" / "local_stack" / "cli.py").read_text()
    [default] = re.findall(rf'demo\.add_argument\(\s*"--{option}", type=int, default=(\d+)', source)
    return int(default)


def test_readme_counts_the_demo_s_sms_as_the_demo_prints_them() -> None:
    # Given the demo's defaults (its account prints "SMS simulated <sms + burst>")
    sms, burst = _demo_default("sms"), _demo_default("burst")
    # When the README describes the demo's traffic
    readme = (ROOT / "README.md").read_text()
    [total] = re.findall(r"\((\d+) SMS to 12 countries", readme)
    # Then the total is the one printed, and its two parts are the defaults
    assert int(total) == sms + burst == 500
    assert f"{sms} over the day" in readme
    assert f"{burst} more failed by a carrier outage" in readme


def test_readme_s_table_names_status_py() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`status.py`" in readme


def test_the_documented_paste_commands_carry_region_credentials_and_the_venv_path() -> None:
    # Given the docs' `make local` examples of the operator's tool
    local = (ROOT / "docs" / "local-stack.md").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    # Then each names the region and credentials the emulator needs, and the program in .venv
    [pasted] = [line for line in local.splitlines() if "cinnox-sms report --since 1h" in line]
    for needed in ("AWS_DEFAULT_REGION=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "/.venv/bin/cinnox-sms"):
        assert needed in pasted
    [example] = re.findall(r"(AWS_ACCESS_KEY_ID=\S+ AWS_SECRET_ACCESS_KEY=\S+ \\\n.*# make local)", operations)
    assert "--region us-east-1" in example
