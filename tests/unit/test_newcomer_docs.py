"""Issue 21 item 5: what README and the docs tell a newcomer matches what the demo and `make local` do."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from local_stack.cli import arguments, no_final_count
from local_stack.template import ROOT
from local_stack.traffic import plan_day


def _demo_default(option: str) -> int:
    return int(getattr(arguments().parse_args(["demo"]), option))


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


# --- the documented demo excerpts -------------------------------------------------------------------------

# The demo's two per-country tables, by their header lines: its account ("by country") and the report it ends
# with (`cinnox-sms report`'s cohort view). A row: a country code (or "all") and its counts.
DEMO_TABLES = {
    "account": re.compile(r"^\s*by country\s+SMS\s+delivered\s+undelivered\s+rejected\s+no final\s+delivery rate"),
    "report": re.compile(r"^country\s+sent\s+delivered\s+undelivered\s+rejected\s+pending\s+rate\s+p50_est"),
}
ROW = re.compile(r"^\s*([A-Z]{2}|all)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+%|-)")
DOCS_WITH_DEMO_RUNS = ("README.md", "docs/local-stack.md", "docs/operations.md")


def _documented_rows(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """(table, country, (sent, delivered, undelivered, rejected, pending, rate)) of each demo table's rows."""
    found: list[tuple[str, str, tuple[str, ...]]] = []
    table: str | None = None
    for text in path.read_text().splitlines():
        header = next((name for name, pattern in DEMO_TABLES.items() if pattern.match(text)), None)
        if header:
            table = header
            continue
        row = ROW.match(text)
        if table and row:
            found.append((table, row[1], row.groups()[1:]))
        elif table and text.strip() not in ("…", "..."):
            table = None  # the table ended: a blank line, a fence, prose
    return found


def _demo_counts() -> dict[str, tuple[str, ...]]:
    """Per country (and "all") what a demo run with its defaults sends: the same plan as `make demo` (seeded, so
    every run sends the same SMS with the same outcomes; tests/e2e checks that the report matches the plan)."""
    args = arguments().parse_args(["demo"])
    messages, _ = plan_day(
        args.sms, app_id="demo", seed=args.seed, burst=args.burst, seconds=args.seconds, withhold=no_final_count(args)
    )
    counts: dict[str, Counter[str]] = {}
    for sms in messages:
        for key in (sms.country.code, "all"):
            counts.setdefault(key, Counter())["pending" if sms.withheld else sms.outcome.value] += 1
    rows = {}
    for key, count in counts.items():
        final = count["Delivered"] + count["Undelivered"] + count["Rejected"]
        rate = f"{count['Delivered'] / final:.1%}" if final else "-"
        sent = final + count["pending"]
        rows[key] = tuple(
            map(str, (sent, count["Delivered"], count["Undelivered"], count["Rejected"], count["pending"]))
        )
        rows[key] += (rate,)
    return rows


@pytest.mark.parametrize("document", DOCS_WITH_DEMO_RUNS)
def test_the_documented_demo_excerpts_match_what_the_demo_sends(document: str) -> None:
    # Given what a `make demo` run with its defaults sends, country by country
    expected = _demo_counts()
    # When a document shows a demo run's tables
    documented = _documented_rows(ROOT / document)
    # Then every row it shows is what the demo sends
    wrong = [
        f"{table} {country}: documented {got}, the demo sends {expected.get(country)}"
        for table, country, got in documented
        if expected.get(country) != got
    ]
    assert not wrong, "\n".join(wrong)


def test_the_excerpts_are_found() -> None:
    # Given the documents the demo's tables are shown in; Then each table is found (the check above is not empty)
    tables = {
        (document, table) for document in DOCS_WITH_DEMO_RUNS for table, _, _ in _documented_rows(ROOT / document)
    }
    assert tables == {
        ("docs/local-stack.md", "account"),
        ("docs/local-stack.md", "report"),
        ("docs/operations.md", "report"),
    }


def test_the_cli_s_own_python_requirement_is_stated_where_it_is_installed() -> None:
    # Given the CLI's package metadata (pip refuses it on an older Python: "requires a different Python")
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    [version] = re.findall(r">=(\d+\.\d+)", required)
    # When the operations guide explains how to install `cinnox-sms`, and the README's table names it
    operations = (ROOT / "docs" / "operations.md").read_text()
    section = operations[operations.index("## The `cinnox-sms` command line") :]
    section = section.split("\n## ", 1)[0]  # to the next section, if any
    readme_row = next(line for line in (ROOT / "README.md").read_text().splitlines() if "`cli/cinnox_sms_cli/`" in line)
    # Then both say the version, and the pipx command asks for it (pipx's own Python may be older)
    assert f"Python {version} or later" in section
    assert f"Python {version} or later" in readme_row
    assert all(f"--python python{version}" in line for line in section.splitlines() if "pipx install" in line)
