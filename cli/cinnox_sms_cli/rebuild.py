"""`cinnox-sms rollups rebuild`: the rollups of whole hours recomputed from the TDR table (cinnox_sms.rebuild).

Prints the Scan's read cost (from DescribeTable) and asks before it starts (--yes skips the question); draws
its progress on stderr (a bar on a terminal, a line per phase otherwise), and what it did on stdout.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from cinnox_sms.rebuild import (
    DEFAULT_SEGMENTS,
    MAX_TOTAL_SEGMENTS,
    READ_UNITS_USD_PER_MILLION,
    STALE_WRITER_SECONDS,
    Outcome,
    Progress,
    ReadCost,
    Rebuild,
    read_cost,
)
from cinnox_sms_cli.progress import Bar

if TYPE_CHECKING:
    from cinnox_sms_cli.report import Period

PRICING_PAGE = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
DECLINED = 1  # the operator said no: nothing was done


def add_options(rebuild: argparse.ArgumentParser) -> None:
    rebuild.add_argument("--stack", help="a deployed stack's name (its TdrTableName and RollupTableName outputs)")
    rebuild.add_argument("--table", help="the TDR table's name (without --stack)")
    rebuild.add_argument("--rollup-table", help="the rollup table's name (without --stack)")
    rebuild.add_argument(
        "--retention-days",
        type=int,
        help="days a rollup item is kept after its hour: with --stack, the stack's TdrRetentionDays; without, 400",
    )
    rebuild.add_argument(
        "--segments",
        type=segments,
        default=DEFAULT_SEGMENTS,
        help=f"parallel Scan segments (default {DEFAULT_SEGMENTS}; DynamoDB allows 1 to {MAX_TOTAL_SEGMENTS:,})",
    )
    rebuild.add_argument("--yes", action="store_true", help="do not ask before the Scan starts")


def segments(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_TOTAL_SEGMENTS:
        raise argparse.ArgumentTypeError(f"{value} is not 1 to {MAX_TOTAL_SEGMENTS:,} (DynamoDB's TotalSegments)")
    return value


def describe_cost(cost: ReadCost, table: str, period: Period) -> str:
    megabytes = cost.table_bytes / 1024 / 1024
    return "\n".join(
        [
            f"rebuild the rollups of {period}",
            f"from a Scan of {table}: about {cost.items:,} items, {megabytes:,.1f} MB (DescribeTable, updated about "
            f"every 6 hours), in {cost.segments} parallel segments, at least {cost.pages:,} pages of up to 1 MB",
            f"read cost: about {cost.read_units:,.0f} read units (strongly consistent: 1 per 4 KB read), "
            f"${cost.usd:,.4f} at ${READ_UNITS_USD_PER_MILLION} per million read request units (on-demand, "
            f"us-east-1: {PRICING_PAGE}; a provisioned table uses its read capacity instead)",
            f"it takes at least {STALE_WRITER_SECONDS / 60:.1f} minutes: the counters that read the fences before it "
            "claims the hours must end before it writes",
        ]
    )


def confirmed(question: str, answer: Callable[[str], str] = input) -> bool:
    try:
        return answer(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


class ProgressBar:
    """The rebuild's phases (scanned, written) on stderr: progress.Bar's bar on a terminal, a line per phase else."""

    def __init__(self, expected_items: int, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bar = Bar(self._stream)
        self._expected = max(1, expected_items)
        self._scanned = 0
        self._scan_closed = False
        self._lock = threading.Lock()

    def _draw(self, label: str, done: int, total: int, *, final: bool = False) -> None:
        self._bar.draw(label, done, total, final=final)

    def scanned(self, items: int) -> None:
        with self._lock:
            self._scanned += items
            self._draw("scanned", self._scanned, max(self._expected, self._scanned))

    def scan_done(self) -> None:
        if not self._scan_closed:
            self._scan_closed = True
            self._draw("scanned", self._scanned, self._scanned, final=True)

    def written(self, done: int, total: int) -> None:
        with self._lock:
            self.scan_done()
            self._draw("written", done, total, final=done == total)

    def waiting(self, seconds: float, why: str) -> None:
        if self._scanned:
            self.scan_done()  # the wait after the Scan: its bar ends first
        print(f"waiting {seconds:,.0f} s for {why}", file=self._stream)

    def progress(self) -> Progress:
        return Progress(scanned=self.scanned, written=self.written, waiting=self.waiting)


def summary(outcome: Outcome, rollup_table: str) -> str:
    hours = len({key.hour for key in outcome.counts})
    lines = [
        f"rebuilt {outcome.items:,} rollup items in {rollup_table} from {outcome.tdrs:,} TDRs read "
        f"({hours} hours with TDRs received before the fence, {outcome.fence.at.isoformat()}; the stream counts "
        "those after it)",
        f"SMS list items written: {outcome.lists:,}",
    ]
    if outcome.superseded:
        lines.append(f"left to a later rebuild, which had written them: {outcome.superseded:,} rollup items")
    return "\n".join(lines)


def run(
    dynamodb: Any,
    tdr_table: str,
    rollup_table: str,
    retention_days: int,
    period: Period,
    args: argparse.Namespace,
    ask: Callable[[str], str] = input,
) -> int:
    cost = read_cost(dynamodb, tdr_table, args.segments)
    print(describe_cost(cost, tdr_table, period))
    if not args.yes and not confirmed("rebuild? [y/N] ", ask):
        print("not rebuilt")
        return DECLINED
    rebuild = Rebuild(dynamodb, tdr_table, rollup_table, retention_days, segments=args.segments)
    try:
        outcome = rebuild.run(period.start, period.end, ProgressBar(cost.items).progress())
    except KeyboardInterrupt:
        print(
            "cinnox-sms: the rebuild was interrupted: run it again (until a rebuild of these hours ends, the stream "
            "leaves the TDRs received before its fence to it)",
            file=sys.stderr,
        )
        raise
    print(summary(outcome, rollup_table))
    return 0
