"""Progress on stderr for the CLI's long reads and writes: a bar drawn in place on a terminal (at most ten
times a second); elsewhere (a pipe, a file, CI) one line when a phase ends, so logs stay short."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from cinnox_sms.delivery import Days

LONG_READ_DAYS = 32  # a read of more days than a month has shows its progress: one Query per day, paginated


class Bar:
    WIDTH = 30

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._last = 0.0

    def draw(self, label: str, done: int, total: int, *, final: bool = False, unit: str = "") -> None:
        now = time.monotonic()
        if self._tty and (final or now - self._last >= 0.1):
            share = min(1.0, done / max(1, total))
            filled = int(share * self.WIDTH)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            tail = f" {unit}" if unit else ""
            self._stream.write(f"\r{label:<8} [{bar}] {share:4.0%} {done:,}/{total:,}{tail}" + ("\n" if final else ""))
            self._stream.flush()
            self._last = now
        elif final and not self._tty:
            print(f"{label}: {done:,} of {total:,}" + (f" {unit}" if unit else ""), file=self._stream)


class DaysRead:
    """A period's days as read_rollups reads them (one Query per day, in order), with the days read so far drawn
    on stderr when the period is long: the next day is asked for once the last one's pages are read."""

    def __init__(self, period: Days, stream: TextIO | None = None, *, long_days: int = LONG_READ_DAYS) -> None:
        self._period = period
        self._bar = Bar(stream)
        self._long_days = long_days

    def days(self) -> Iterator[tuple[str, int, int]]:
        days = list(self._period.days())
        shown = len(days) > self._long_days
        for done, day in enumerate(days):
            if shown:
                self._bar.draw("read", done, len(days), unit="days of rollups")
            yield day
        if shown:
            self._bar.draw("read", len(days), len(days), final=True, unit="days of rollups")
