"""SAM `ScheduleV2` events run locally: the function invoked on its rate, as EventBridge Scheduler would.

SAM turns a `ScheduleV2` event into an `AWS::Scheduler::Schedule` with the function as a templated Lambda
`Invoke` target. What the local stack takes from it:

- `ScheduleExpression`: rate expressions only, `rate(value unit)` with a positive whole value and a unit of
  minute, minutes, hour, hours, day or days (EventBridge Scheduler User Guide, Schedule types: rate-based
  schedules; the units as the API Reference's CreateSchedule lists them). cron and at expressions, or
  anything else, are refused when the stack starts.
- `State`: ENABLED (the default) runs it; DISABLED does not (a `!If` is chosen first, as CloudFormation does).
- the first invocation: at once when the stack starts, as a rate schedule without a `StartDate` "starts
  invoking its target immediately" (same page); then every period. `StartDate` and `EndDate` are refused.
- the event: the target's `Input` (SAM's `Input`, well-formed JSON for a Lambda target: EventBridge Scheduler
  API Reference, `Target`); without one, Scheduler "delivers a default notification", whose shape that page
  does not give: locally the function gets `{}` (no function of this template reads its scheduled event).

Differences, all on the safe side for a demo: a run here is synchronous in the schedule's own thread (AWS
invokes asynchronously: a run longer than the period would overlap the next; here it delays it), and a
failed run is logged, not retried (neither the schedule's RetryPolicy nor Lambda's asynchronous retries are
emulated). `period` (the local stack's `--schedule-every`) replaces the rate, to see an hourly schedule run.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_stack.runtime import FunctionError

# Where the rule is: the User Guide's page, and the API Reference's list of units (CreateSchedule, ScheduleExpression).
RATE_PAGE = "EventBridge Scheduler User Guide, Schedule types: rate-based schedules"
_RATE = re.compile(r"rate\(\s*([0-9]+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """A schedule the local stack cannot run as EventBridge Scheduler would: refused when the stack starts."""


def rate_seconds(expression: str, where: str = "ScheduleExpression") -> float:
    """The period of a rate expression, in seconds; a ScheduleError for anything else."""
    found = _RATE.fullmatch(expression.strip())
    if not found or int(found.group(1)) < 1:
        raise ScheduleError(
            f"{where}: {expression!r} is not a rate expression the local stack can run: it runs "
            "rate(value unit), value a positive whole number, unit minute, minutes, hour, hours, day or days "
            f"({RATE_PAGE}); cron() and at() expressions are not run locally"
        )
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2).removesuffix("s")]


def schedule_event(properties: dict[str, Any], where: str = "ScheduleV2") -> dict[str, Any]:
    """The event the function gets: the Input, or `{}` for Scheduler's default notification."""
    text = properties.get("Input")
    if text is None:
        return {}
    try:
        event = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        raise ScheduleError(
            f"{where}: Input is not well-formed JSON, which a templated Lambda target needs "
            "(EventBridge Scheduler API Reference, Target: Input)"
        ) from None
    if not isinstance(event, dict):
        raise ScheduleError(f"{where}: Input must be a JSON object for the local stack to invoke the function with it")
    return event


def is_enabled(properties: dict[str, Any], where: str = "ScheduleV2") -> bool:
    """State, as chosen by CloudFormation (ENABLED when absent)."""
    state = str(properties.get("State", "ENABLED"))
    if state not in ("ENABLED", "DISABLED"):
        raise ScheduleError(f"{where}: State {state!r} is neither ENABLED nor DISABLED")
    return state == "ENABLED"


@dataclass(frozen=True)
class ScheduleRun:
    """One invocation by the schedule: when it started (epoch seconds), what the function answered or the error."""

    started: float
    seconds: float
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Schedule:
    """One ScheduleV2 event of a function: a thread that invokes it at once, then every period."""

    def __init__(
        self,
        function: str,
        name: str,
        expression: str,
        period: float,
        event: dict[str, Any],
        invoke: Callable[[str, dict[str, Any]], Any],
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.function = function  # the template's logical id
        self.name = name  # the event's name under Events
        self.expression = expression
        self.period = period  # seconds between runs: the rate's, or the local stack's --schedule-every
        self.event = event
        self._invoke = invoke  # (function, event): the stack's own invoke path
        self._log = log
        self.runs: list[ScheduleRun] = []
        self._stop = threading.Event()
        self.lock = threading.Lock()  # held while a run is under way
        self._thread: threading.Thread | None = None

    @classmethod
    def from_properties(
        cls,
        function: str,
        name: str,
        properties: dict[str, Any],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        every: float | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> Schedule | None:
        """The schedule of a ScheduleV2 event's resolved properties; None when its State is DISABLED."""
        where = f"{function} event {name} (ScheduleV2)"
        for unsupported in ("StartDate", "EndDate"):
            if unsupported in properties:
                raise ScheduleError(f"{where}: {unsupported} is not run by the local stack")
        expression = str(properties.get("ScheduleExpression", ""))
        period = rate_seconds(expression, f"{where} ScheduleExpression")
        event = schedule_event(properties, where)
        if not is_enabled(properties, where):
            return None
        if every is not None and every <= 0:
            raise ScheduleError(f"--schedule-every must be above 0 seconds, not {every:g}")
        return cls(function, name, expression, every or period, event, invoke, log)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"schedule-{self.function}")
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.fire()
            # A run longer than the period delays the next one; runs never pile up.
            next_at = max(next_at + self.period, time.monotonic())

    def fire(self) -> ScheduleRun:
        """Invoke the function once with the schedule's event: what each tick does (the demo calls it too)."""
        with self.lock:
            started, clock = time.time(), time.monotonic()
            result: Any = None
            error: str | None = None
            try:
                result = self._invoke(self.function, dict(self.event))
            except FunctionError as failure:
                error = str(failure)
                if not self._stop.is_set():
                    self._log(f"[local stack] scheduled invocation ({self.name}, {self.expression}) failed: {error}")
            run = ScheduleRun(started, time.monotonic() - clock, result, error)
            self.runs.append(run)
            return run

    def stop(self) -> None:
        """No further runs (one under way finishes, or fails when its function is stopped)."""
        self._stop.set()

    def close(self, timeout: float = 10) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
