"""CloudWatch Logs and alarms, locally: log lines shipped to the emulator, the template's metric
filters applied to them, and the template's alarms on those metrics evaluated to a state.

moto stores log events and metric data but applies no metric filter and evaluates no alarm: the
local stack does both, for the forms the template uses (CloudWatch Logs User Guide, "Filter pattern
syntax for metric filters, subscription filters, filter log events, and Live Tail"; CloudWatch User
Guide, "Using Amazon CloudWatch alarms"). What it cannot evaluate it refuses with a clear error.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# boto3 clients; the project installs no stubs for CloudWatch and CloudWatch Logs.
CloudWatchClient = Any
CloudWatchLogsClient = Any


class FilterPatternError(ValueError):
    """A filter pattern CloudWatch Logs would refuse, or one the local stack does not evaluate."""


# --- filter patterns ----------------------------------------------------------------
# JSON patterns: { SELECTOR OPERATOR VALUE }, joined with && and || (&& binds tighter), grouped
# with parentheses. A quoted value (or a bare word that is not a number) is a string: = and !=
# only, * matches any run of characters. A bare number compares numerically: = != < > <= >=.
# A comparison on a field the event lacks, or of another JSON type, does not match.

_TOKENS = re.compile(
    r"""\s*(?:
    (?P<punct>[{}()])
    |(?P<logic>&&|\|\|)
    |(?P<op><=|>=|!=|=|<|>)
    |(?P<selector>\$(?:\.[A-Za-z_][\w-]*|\[\d+\])+)
    |(?P<string>"(?:[^"\\]|\\.)*")
    |(?P<bare>[^\s(){}&|=!<>"]+)
    )""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NOT_EVALUATED = {
    "IS": "IS NULL / IS TRUE / IS FALSE",
    "NOT": "NOT EXISTS",
}
_MISSING = object()


@dataclass(frozen=True)
class _Comparison:
    path: tuple[str | int, ...]
    operator: str
    value: str | float
    wildcard: re.Pattern[str] | None = None

    def matches(self, event: Any) -> bool:
        found = event
        for step in self.path:
            if isinstance(step, int):
                found = found[step] if isinstance(found, list) and step < len(found) else _MISSING
            else:
                found = found.get(step, _MISSING) if isinstance(found, dict) else _MISSING
            if found is _MISSING:
                return False
        if isinstance(self.value, str):
            if not isinstance(found, str):
                return False
            equal = self.wildcard.fullmatch(found) is not None if self.wildcard else found == self.value
            return equal if self.operator == "=" else not equal
        if isinstance(found, bool) or not isinstance(found, int | float):
            return False
        return bool(_NUMERIC[self.operator](float(found), self.value))


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class _Node:
    operator: str  # "&&" or "||"
    operands: tuple[_Comparison | _Node, ...]

    def matches(self, event: Any) -> bool:
        if self.operator == "&&":
            return all(operand.matches(event) for operand in self.operands)
        return any(operand.matches(event) for operand in self.operands)


class FilterPattern:
    """A compiled metric filter pattern: ``matches(message)`` for one log event's message."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._root: _Comparison | _Node | None = None
        if text.strip():
            self._root = _Parser(text).parse()

    def matches(self, message: str) -> bool:
        if self._root is None:
            return True  # the empty pattern matches every event
        try:
            event = json.loads(message)
        except ValueError:
            return False  # a JSON pattern never matches an event that is not JSON
        return self._root.matches(event)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        stripped = text.rstrip()
        while position < len(stripped):
            found = _TOKENS.match(stripped, position)
            if found is None or found.end() == position:
                raise self.error(f"unexpected {stripped[position:].strip()[:20]!r}", position)
            kind = found.lastgroup or ""
            self.tokens.append((kind, found.group(kind), found.start(kind)))
            position = found.end()
        self.index = 0

    def error(self, what: str, position: int | None = None) -> FilterPatternError:
        where = f" at character {position + 1}" if position is not None else ""
        return FilterPatternError(f"filter pattern {self.text!r}: {what}{where}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise self.error(f"ends where {value or kind} was expected")
        if token[0] != kind or (value is not None and token[1] != value):
            raise self.error(f"{token[1]!r} where {value or kind} was expected", token[2])
        self.index += 1
        return token

    def parse(self) -> _Comparison | _Node:
        first = self.peek()
        if first is None or first[1] != "{":
            raise self.error(
                "only JSON patterns ({ $.field = value }) are evaluated locally; term, quoted-term and "
                "space-delimited [...] patterns are CloudWatch syntax the local stack does not evaluate"
            )
        self.take("punct", "{")
        root = self.expression()
        self.take("punct", "}")
        if self.peek() is not None:
            raise self.error("text after the closing }", self.tokens[self.index][2])
        return root

    def expression(self) -> _Comparison | _Node:
        operands = [self.conjunction()]
        while (token := self.peek()) is not None and token[1] == "||":
            self.index += 1
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else _Node("||", tuple(operands))

    def conjunction(self) -> _Comparison | _Node:
        operands = [self.factor()]
        while (token := self.peek()) is not None and token[1] == "&&":
            self.index += 1
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else _Node("&&", tuple(operands))

    def factor(self) -> _Comparison | _Node:
        token = self.peek()
        if token is not None and token[1] == "(":
            self.index += 1
            inner = self.expression()
            self.take("punct", ")")
            return inner
        return self.comparison()

    def comparison(self) -> _Comparison:
        _, selector, _ = self.take("selector")
        token = self.peek()
        if token is not None and token[0] == "bare" and token[1].upper() in _NOT_EVALUATED:
            raise self.error(
                f"{_NOT_EVALUATED[token[1].upper()]} is CloudWatch syntax the local stack does not evaluate", token[2]
            )
        _, operator, _ = self.take("op")
        token = self.peek()
        if token is None or token[0] not in ("string", "bare"):
            raise self.error(f"a value must follow {selector} {operator}", token[2] if token else None)
        self.index += 1
        kind, raw, position = token
        path = tuple(
            int(part[1:-1]) if part.startswith("[") else part[1:] for part in re.findall(r"\.[\w-]+|\[\d+\]", selector)
        )
        if kind == "bare" and raw.startswith("%"):
            raise self.error(
                "regular expressions (%...%) are CloudWatch syntax the local stack does not evaluate", position
            )
        if kind == "bare" and _NUMBER.fullmatch(raw):
            return _Comparison(path, operator, float(raw))
        text = json.loads(raw) if kind == "string" else raw
        if operator not in ("=", "!="):
            raise self.error(f"{operator} compares numbers; a string takes = or != only", position)
        wildcard = re.compile(".*".join(re.escape(part) for part in text.split("*"))) if "*" in text else None
        return _Comparison(path, operator, text, wildcard)


# --- metric filters --------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    timestamp: int  # milliseconds since the epoch, as PutLogEvents takes it
    message: str


@dataclass(frozen=True)
class MetricFilter:
    """An AWS::Logs::MetricFilter's properties, resolved: its pattern compiled, one transformation."""

    name: str
    log_group: str
    pattern: FilterPattern
    namespace: str
    metric: str
    value: str  # a number, or $.field taken from each matching event
    default: float | None = None
    unit: str | None = None

    @classmethod
    def from_properties(cls, name: str, properties: dict[str, Any]) -> MetricFilter:
        transformations = properties.get("MetricTransformations") or []
        if len(transformations) != 1:
            raise FilterPatternError(f"{name}: a metric filter has exactly one MetricTransformation")
        [transformation] = transformations
        if transformation.get("Dimensions"):
            raise FilterPatternError(f"{name}: metric filter Dimensions are not evaluated by the local stack")
        value = str(transformation["MetricValue"])
        if not (_NUMBER.fullmatch(value) or re.fullmatch(r"\$(?:\.[\w-]+)+", value)):
            raise FilterPatternError(f"{name}: MetricValue {value!r} is neither a number nor a $.field selector")
        default = transformation.get("DefaultValue")
        return cls(
            name=name,
            log_group=str(properties["LogGroupName"]),
            pattern=FilterPattern(str(properties.get("FilterPattern", ""))),
            namespace=str(transformation["MetricNamespace"]),
            metric=str(transformation["MetricName"]),
            value=value,
            default=None if default is None else float(default),
            unit=transformation.get("Unit"),
        )

    def datum(self, events: list[LogEvent]) -> dict[str, Any] | None:
        """The metric data this batch of ingested events yields, aggregated into one datum.

        As CloudWatch Logs does, each matching event contributes the MetricValue, and a batch with no
        match contributes DefaultValue once (if set). Simplified: CloudWatch stamps each value with its
        event's time; here the batch (a fraction of a second of events) is stamped with its last event.
        """
        if not events:
            return None
        values = [v for v in (self._value(e) for e in events if self.pattern.matches(e.message)) if v is not None]
        if not values:
            if self.default is None:
                return None
            values = [self.default]
        datum: dict[str, Any] = {
            "MetricName": self.metric,
            "Timestamp": datetime.fromtimestamp(max(e.timestamp for e in events) / 1000, UTC),
            "StatisticValues": {
                "SampleCount": float(len(values)),
                "Sum": float(sum(values)),
                "Minimum": float(min(values)),
                "Maximum": float(max(values)),
            },
        }
        if self.unit:
            datum["Unit"] = self.unit
        return datum

    def _value(self, event: LogEvent) -> float | None:
        if not self.value.startswith("$"):
            return float(self.value)
        found: Any = json.loads(event.message)
        for step in self.value[2:].split("."):
            found = found.get(step) if isinstance(found, dict) else None
        try:
            number = float(found)
        except (TypeError, ValueError):
            return None  # a value that is not a number publishes nothing
        return number if math.isfinite(number) else None


# --- shipping log lines ---------------------------------------------------------------------

MAX_BATCH_EVENTS = 10_000  # PutLogEvents' limits (CloudWatch Logs API Reference)
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26


@dataclass
class ShipperStats:
    shipped: int = 0
    dropped: int = 0  # lines refused because the buffer was full
    batches: int = 0
    errors: list[str] = field(default_factory=list)


class LogShipper:
    """Lines to one log stream of one log group, from any thread, without waiting on the emulator.

    ``put`` appends to a bounded buffer; a background thread ships it every ``interval`` seconds
    with PutLogEvents (batches within the API's limits, in time order), then applies the group's
    metric filters and puts what they yield with PutMetricData. ``flush`` ships now; ``close``
    ships what is left and stops the thread.
    """

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        cloudwatch: CloudWatchClient,
        group: str,
        stream: str,
        filters: Iterable[MetricFilter] = (),
        *,
        interval: float = 0.25,
        max_buffered: int = 200_000,
    ) -> None:
        self.group = group
        self.stream = stream
        self.filters = tuple(filters)
        self.stats = ShipperStats()
        self._logs = logs
        self._cloudwatch = cloudwatch
        self._interval = interval
        self._buffer: deque[LogEvent] = deque()
        self._max = max_buffered
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._closing = threading.Event()
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._thread = threading.Thread(target=self._run, name=f"logs {group}", daemon=True)
        self._thread.start()

    def put(self, message: str, timestamp_ms: int | None = None) -> None:
        event = LogEvent(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000), message)
        with self._lock:
            if len(self._buffer) >= self._max:
                self.stats.dropped += 1
                return
            self._buffer.append(event)

    def _run(self) -> None:
        while not self._closing.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        with self._flushing:
            with self._lock:
                events = sorted(self._buffer, key=lambda e: e.timestamp)  # PutLogEvents wants time order
                self._buffer.clear()
            for batch in _batches(events):
                try:
                    self._logs.put_log_events(
                        logGroupName=self.group,
                        logStreamName=self.stream,
                        logEvents=[{"timestamp": e.timestamp, "message": e.message} for e in batch],
                    )
                    self._publish(batch)
                except Exception as error:  # the emulator may be stopping: count it, keep serving
                    if len(self.stats.errors) < 20:  # bounded: the first faults tell the story
                        self.stats.errors.append(f"{type(error).__name__}: {error}"[:300])
                    continue
                self.stats.shipped += len(batch)
                self.stats.batches += 1

    def _publish(self, batch: list[LogEvent]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for metric_filter in self.filters:
            datum = metric_filter.datum(batch)
            if datum is not None:
                by_namespace.setdefault(metric_filter.namespace, []).append(datum)
        for namespace, data in by_namespace.items():
            self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=10)
        self.flush()


def _batches(events: list[LogEvent]) -> Iterable[list[LogEvent]]:
    batch: list[LogEvent] = []
    size = 0
    for event in events:
        length = len(event.message.encode()) + EVENT_OVERHEAD
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += length
    if batch:
        yield batch


def log_group_name(arn: str) -> str:
    """The name in a log group ARN (Fn::GetAtt LogGroup.Arn ends in ":*")."""
    marker = ":log-group:"
    if marker not in arn:
        raise ValueError(f"{arn!r} is not a CloudWatch Logs log group ARN")
    return arn.split(marker, 1)[1].removesuffix(":*")


# --- alarms -----------------------------------------------------------------------------------
# A simplified CloudWatch alarm evaluation: the last EvaluationPeriods periods ending now (CloudWatch
# aligns periods to the clock and may look back further for missing data), one statistic per period
# (Sum, Average, Minimum, Maximum, SampleCount; no percentiles, no metric math, no anomaly bands),
# DatapointsToAlarm of them breaching puts it in ALARM, and TreatMissingData as documented in
# "Configuring how CloudWatch alarms treat missing data".

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")


class AlarmError(ValueError):
    """An alarm the local stack does not evaluate."""


@dataclass(frozen=True)
class AlarmEvaluation:
    state: str  # OK, ALARM or INSUFFICIENT_DATA
    datapoints: tuple[float | None, ...]  # newest last; None where the period has no data
    reason: str


def evaluate_alarm(
    name: str,
    properties: dict[str, Any],
    statistic: Callable[[datetime, datetime], float | None],
    now: datetime,
    previous: str = "INSUFFICIENT_DATA",
) -> AlarmEvaluation:
    """The state an AWS::CloudWatch::Alarm's properties give, from ``statistic(start, end)`` per period."""
    if "Metrics" in properties or "MetricName" not in properties:
        raise AlarmError(f"{name}: metric math alarms are not evaluated by the local stack")
    if properties.get("Statistic") not in _STATISTICS:
        raise AlarmError(f"{name}: Statistic {properties.get('Statistic')!r} is not evaluated by the local stack")
    operator = properties.get("ComparisonOperator")
    if operator not in _COMPARISONS:
        raise AlarmError(f"{name}: ComparisonOperator {operator!r} is not evaluated by the local stack")
    period = int(properties["Period"])
    periods = int(properties["EvaluationPeriods"])
    to_alarm = int(properties.get("DatapointsToAlarm", periods))
    threshold = float(properties["Threshold"])
    missing = properties.get("TreatMissingData", "missing")
    if missing not in ("missing", "notBreaching", "breaching", "ignore"):
        raise AlarmError(f"{name}: TreatMissingData {missing!r} is not one of CloudWatch's four values")
    points = tuple(
        statistic(now - timedelta(seconds=period * (i + 1)), now - timedelta(seconds=period * i))
        for i in reversed(range(periods))
    )
    present = [p for p in points if p is not None]
    breaching = sum(1 for p in present if _COMPARISONS[operator](p, threshold))
    if len(present) < len(points):
        if missing == "breaching":
            breaching += len(points) - len(present)
        elif not present and missing in ("missing", "ignore"):
            state = "INSUFFICIENT_DATA" if missing == "missing" else previous
            return AlarmEvaluation(state, points, f"no data in {periods} period(s) of {period} s ({missing})")
    state = "ALARM" if breaching >= to_alarm else "OK"
    reason = (
        f"{breaching} of {periods} period(s) of {period} s breaching {operator} {threshold:g} "
        f"({properties['Statistic']}: {', '.join('-' if p is None else f'{p:g}' for p in points)})"
    )
    return AlarmEvaluation(state, points, reason)


def cloudwatch_statistic(
    cloudwatch: CloudWatchClient, properties: dict[str, Any]
) -> Callable[[datetime, datetime], float | None]:
    """The alarm's statistic over [start, end) from the emulator's GetMetricStatistics."""
    name = str(properties["Statistic"])

    def statistic(start: datetime, end: datetime) -> float | None:
        answer = cloudwatch.get_metric_statistics(
            Namespace=properties["Namespace"],
            MetricName=properties["MetricName"],
            Dimensions=properties.get("Dimensions", []),
            StartTime=start,
            EndTime=end,
            Period=int((end - start).total_seconds()),
            Statistics=[name],
        )
        points = answer.get("Datapoints", [])
        if not points:
            return None
        values = [float(point[name]) for point in points]
        if name in ("Sum", "SampleCount"):
            return sum(values)
        if name == "Minimum":
            return min(values)
        if name == "Maximum":
            return max(values)
        return sum(values) / len(values)  # Average: one datapoint per period here (the window is one period)

    return statistic
