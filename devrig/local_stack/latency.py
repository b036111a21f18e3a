"""The latency people feel (`make latency`, first in `make load`): from a TDR's POST to the webhook to

- **stored**: its stream record readable on the table's stream (a reader of its own, polling every 50 ms as a
  stream consumer does: the item is written before the webhook answers, the stream record is where the rest
  of the product first sees it);
- **alert**: the alert of an Undelivered or Rejected TDR received by an SQS queue subscribed to AlertTopic (as
  demo.AlertInbox subscribes one), at its receive time;
- **digest**: the digest on DigestTopic listing that failure, received by a raw SQS subscription;
- **rollup**: the rollups counting the TDR, read as `cinnox-sms report` reads them (cinnox_sms.delivery.read_rollups).

The TDRs are paced, not a burst: each SMS a Submitted TDR, then its final one a second or two later, a share of
them Undelivered or Rejected. Beside each row, the modelled AWS figure: the batching windows the template sets (read
from template.yaml, never repeated here) plus the delays AWS documents, each with its source; what AWS documents no
figure for is said, with the assumption made. The target (issue 22): an alert for a failed SMS reaches a subscriber
within ALERT_TARGET_SECONDS at p95 on the local stack, printed ok or MISS beside the machine's load.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cinnox_sms.delivery import Hours, read_rollups
from cinnox_sms.item import StoredTdr
from cinnox_sms.model import FAILURE_STATUSES, Status
from local_stack.demo import TopicInbox, is_no_final_alert, is_no_final_digest, percentile
from local_stack.template import Template, resolve
from local_stack.traffic import COUNTRIES, Sms, http_post, tdr_body

if TYPE_CHECKING:
    from local_stack.stack import LocalStack

ALERT_TARGET_SECONDS = 3.0  # issue 22: an alert for a failed SMS reaches a subscriber within this, p95, locally
ROWS = ("stored", "alert", "digest", "rollup")
STREAM_READ_INTERVAL = 0.05  # the stored row's own stream reader
ROLLUP_READ_INTERVAL = 0.25  # how often the rollups are read, as a report would be run again

# --- the model: what AWS documents -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One wait on the way, at most ``seconds`` (None: AWS documents no figure; ``assumed`` is used instead)."""

    name: str  # short, for the sums
    what: str  # what the source says
    seconds: float | None
    source: str
    assumed: float = 0.0

    @property
    def used(self) -> float:
        return self.assumed if self.seconds is None else self.seconds

    def short(self) -> str:
        return f"{self.name} {self.seconds:g}" if self.seconds is not None else f"{self.name} (n.d.: {self.assumed:g})"

    def text(self) -> str:
        figure = (
            f"{self.seconds:g} s" if self.seconds is not None else f"no figure documented, {self.assumed:g} s assumed"
        )
        return f"{self.what}: {figure} ({self.source})"


LAMBDA_DDB = "Lambda Developer Guide, 'Using AWS Lambda with Amazon DynamoDB', Polling and batching streams"
LAMBDA_SQS = "Lambda Developer Guide, 'Using Lambda with Amazon SQS', Batching behavior"
STREAM_PROPAGATION = Term(
    "stream record",
    "DynamoDB Streams writes the stream record 'in near-real time'",
    None,
    "DynamoDB Developer Guide, 'Change data capture for DynamoDB Streams'",
)
STREAM_POLL = Term(
    "stream poll", "Lambda polls the stream's shards at a base rate of 4 times per second", 0.25, LAMBDA_DDB
)
SNS_TO_SQS = Term(
    "SNS to SQS",
    "SNS delivery to an SQS subscription",
    None,
    "SNS Developer Guide, 'Amazon SNS message delivery retries': retries are documented, no delivery time",
)
SQS_LONG_POLL = Term(
    "subscriber's long poll",
    "an SQS subscriber's long poll answers once a message is there",
    0.0,
    "SQS Developer Guide, 'Amazon SQS short and long polling'",
)
SQS_LOW_TRAFFIC = 20.0  # "might wait for up to 20 seconds ... even if you set a batch window lower than 20 seconds"
EVENTUAL_READ = Term(
    "eventually consistent read",
    "an eventually consistent Query (read_rollups) returns the recent item 'after a short time'",
    None,
    "DynamoDB Developer Guide, 'DynamoDB read consistency'",
)
SOURCES = {
    LAMBDA_DDB: "https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html",
    LAMBDA_SQS: "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html",
    STREAM_PROPAGATION.source: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html",
    SNS_TO_SQS.source: "https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html",
    SQS_LONG_POLL.source: "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html",
    EVENTUAL_READ.source: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html",
}


def batching_window(template: Template, function: str, event_type: str, refs: dict[str, str]) -> tuple[str, float]:
    """(event name, MaximumBatchingWindowInSeconds) of the function's one event of this type, resolved against refs."""
    events = template.resource(function)["Properties"]["Events"]
    [(name, event)] = [(n, e) for n, e in events.items() if e["Type"] == event_type]
    window = resolve(event["Properties"].get("MaximumBatchingWindowInSeconds", 0), refs, {})
    return name, float(window)


def model(template: Template, parameters: dict[str, str] | None = None) -> dict[str, list[Term]]:
    """Each row's waits on AWS, at most: the template's batching windows (its parameters' defaults, overridden by
    ``parameters``) and the documented delays. The functions' own time comes on top (measured by `make bench`)."""
    refs = {**template.parameter_defaults(), **(parameters or {})}
    alert_event, alert_window = batching_window(template, "AlertFunction", "DynamoDB", refs)
    rollup_event, rollup_window = batching_window(template, "MetricsFunction", "DynamoDB", refs)
    digest_event, digest_window = batching_window(template, "DigestFunction", "SQS", refs)
    batching = "MaximumBatchingWindowInSeconds"
    alert = Term("AlertFunction window", f"AlertFunction {alert_event} {batching}", alert_window, "template.yaml")
    rollup = Term(
        "MetricsFunction window", f"MetricsFunction {rollup_event} {batching}", rollup_window, "template.yaml"
    )
    digest = Term(
        "DigestFunction window",
        f"DigestFunction {digest_event} {batching} (DigestWindowSeconds {refs['DigestWindowSeconds']})",
        digest_window,
        "template.yaml",
    )
    # Below 20 s, a batching window on a queue with very low traffic may still wait up to 20 s (LAMBDA_SQS).
    low_traffic = Term(
        "low-traffic SQS wait",
        "with a batching window and very low traffic, Lambda 'might wait for up to 20 seconds' (beyond the window)",
        max(0.0, SQS_LOW_TRAFFIC - digest_window),
        LAMBDA_SQS,
    )
    return {
        "stored": [STREAM_PROPAGATION],
        "alert": [STREAM_PROPAGATION, STREAM_POLL, alert, SNS_TO_SQS, SQS_LONG_POLL],
        "digest": [STREAM_PROPAGATION, STREAM_POLL, alert, SNS_TO_SQS, digest, low_traffic, SNS_TO_SQS, SQS_LONG_POLL],
        "rollup": [STREAM_PROPAGATION, STREAM_POLL, rollup, EVENTUAL_READ],
    }


def modelled(terms: list[Term]) -> float:
    return sum(term.used for term in terms)


# --- the traffic -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    due: float  # seconds after the first POST
    key: tuple[str, str]  # (TransactionID, Status)
    country: str
    body: bytes


def plan(tdrs: int, seconds: float, failing: float, app_id: str, seed: int) -> list[Planned]:
    """``tdrs`` TDRs (a Submitted and a final one per SMS, rounded up to pairs) paced evenly over ``seconds``;
    ``failing`` of the SMS end Undelivered or Rejected, the rest Delivered."""
    rng = random.Random(seed)
    sms_count = max(1, (tdrs + 1) // 2)
    gap = seconds / sms_count
    planned = []
    failures = set(rng.sample(range(sms_count), max(1, round(sms_count * failing))))
    for index in range(sms_count):
        country = rng.choice(COUNTRIES)
        outcome = rng.choice((Status.UNDELIVERED, Status.REJECTED)) if index in failures else Status.DELIVERED
        number = country.dialing + "".join(str(rng.randrange(10)) for _ in range(country.digits))
        sms = Sms(f"lat-{seed:02d}-{index:05d}-{rng.getrandbits(24):06x}", country, number, outcome)
        submitted = index * gap
        final = submitted + rng.uniform(0.5, 1.5)  # the carrier's receipt, soon after
        for due, status in ((submitted, Status.SUBMITTED), (final, outcome)):
            body = json.dumps(tdr_body(app_id, "svc-latency", sms, status, wrapped=False)).encode()
            planned.append(Planned(due, (sms.transaction_id, status.value), country.code, body))
    return sorted(planned, key=lambda p: p.due)


@dataclass
class Posted:
    planned: Planned
    at: float  # epoch seconds when the POST started
    status: int = 0
    answered: float = 0.0  # seconds to the answer


# --- what each reader sees, and when ---------------------------------------------------------------------------


@dataclass
class Arrivals:
    """Epoch seconds at which each reader first saw each TDR (by (TransactionID, Status))."""

    stored: dict[tuple[str, str], float] = field(default_factory=dict)
    alert: dict[tuple[str, str], float] = field(default_factory=dict)
    digest: dict[tuple[str, str], float] = field(default_factory=dict)
    # (country, status) -> [(epoch, count)] each time the rollups' count changed
    rollup_counts: dict[tuple[str, str], list[tuple[float, int]]] = field(default_factory=dict)
    rollup_reads: int = 0
    alerts_twice: int = 0


class Watchers:
    """Four readers in threads: the stream, the alert inbox, the digest inbox, the rollups."""

    def __init__(self, stack: LocalStack, started: datetime) -> None:
        assert stack.aws is not None
        self.arrivals = Arrivals()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._streams = stack.aws.client("dynamodbstreams")
        self._dynamodb = stack.aws.client("dynamodb")
        table = stack.output("TdrTableName")
        self._stream_arn = self._dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._iterators = self._latest_iterators()
        self._alerts = TopicInbox(stack.aws, stack.output("AlertTopicArn"), "latency-alert-inbox")
        self._digests = TopicInbox(stack.aws, stack.output("DigestTopicArn"), "latency-digest-inbox", raw=True)
        self._rollup_table = stack.output("RollupTableName")
        self._since = started - timedelta(minutes=1)
        self._baseline = self._rollup_totals()
        self._threads = [
            threading.Thread(target=self._loop, args=(reader, pause), daemon=True, name=f"latency-{reader.__name__}")
            for reader, pause in (
                (self._read_stream, STREAM_READ_INTERVAL),
                (self._read_alerts, 0.0),
                (self._read_digests, 0.0),
                (self._read_rollups, ROLLUP_READ_INTERVAL),
            )
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _loop(self, reader: Any, pause: float) -> None:
        while not self._stop.is_set():
            try:
                reader()
            except Exception:  # the emulator may be busy or going away: read again
                self._stop.wait(0.2)
            if pause:
                self._stop.wait(pause)

    def _latest_iterators(self) -> dict[str, str | None]:
        shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        return {
            shard["ShardId"]: self._streams.get_shard_iterator(
                StreamArn=self._stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for shard in shards
        }

    def _read_stream(self) -> None:
        for shard, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            answer = self._streams.get_records(ShardIterator=iterator, Limit=1000)
            now = time.time()
            self._iterators[shard] = answer.get("NextShardIterator")
            for record in answer["Records"]:
                image = record.get("dynamodb", {}).get("NewImage")
                if record.get("eventName") == "INSERT" and image:
                    stored = StoredTdr.from_item(image)
                    self.arrivals.stored.setdefault((stored.transaction_id, stored.status), now)

    def _read_alerts(self) -> None:
        for message in self._alerts.take(wait_seconds=1):
            now = time.time()
            envelope = json.loads(message["Body"])
            record = json.loads(envelope["Message"])
            if is_no_final_alert(
                {"_attributes": {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}}
            ):
                continue
            alert = StoredTdr.from_stream_image(record)
            key = (alert.transaction_id, alert.status)
            with self._lock:
                if key in self.arrivals.alert:
                    self.arrivals.alerts_twice += 1
                self.arrivals.alert.setdefault(key, now)

    def _read_digests(self) -> None:
        for message in self._digests.take(wait_seconds=1):
            now = time.time()
            digest = json.loads(message["Body"])
            if is_no_final_digest(digest):
                continue
            for status, ids in digest.get("transactionIds", {}).items():
                for transaction_id in ids:
                    self.arrivals.digest.setdefault((transaction_id, status), now)

    def _rollup_totals(self) -> Counter[tuple[str, str]]:
        period = Hours.covering(self._since, datetime.now(UTC))
        totals: Counter[tuple[str, str]] = Counter()
        for hour in read_rollups(self._dynamodb, self._rollup_table, period):
            for status, count in hour.counts.items():
                totals[(hour.country, str(status.value))] += count
        return totals

    def _read_rollups(self) -> None:
        totals = self._rollup_totals()
        now = time.time()
        self.arrivals.rollup_reads += 1
        for key, count in totals.items():
            seen = self.arrivals.rollup_counts.setdefault(key, [])
            count -= self._baseline.get(key, 0)
            if not seen or seen[-1][1] != count:
                seen.append((now, count))


def rollup_times(posted: list[Posted], counts: dict[tuple[str, str], list[tuple[float, int]]]) -> dict[int, float]:
    """When the rollups first counted each TDR (by its index in ``posted``): the n-th TDR of a country and status,
    in the order posted (the stream's order, but for TDRs posted within moments of each other, where swapping them
    changes nothing measurable), is counted once that country's count of that status reaches n."""
    rank: Counter[tuple[str, str]] = Counter()
    times: dict[int, float] = {}
    for index in sorted(range(len(posted)), key=lambda i: posted[i].at):
        planned = posted[index].planned
        key = (planned.country, planned.key[1])
        rank[key] += 1
        reached = next((at for at, count in counts.get(key, []) if count >= rank[key]), None)
        if reached is not None:
            times[index] = reached
    return times


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Result:
    rows: dict[str, list[float]]  # row -> seconds from the POST, one per TDR that arrived
    expected: dict[str, int]
    tdrs: int
    failed_sms: int
    seconds: float
    digest_window: float
    alerts_twice: int
    answered_200: int
    answered: list[float]  # seconds each POST took to its answer
    load: tuple[float, float, float]
    cpus: int

    @property
    def alert_p95(self) -> float:
        return percentile(sorted(self.rows["alert"]), 95)

    @property
    def complete(self) -> bool:
        return all(len(self.rows[row]) == self.expected[row] for row in ROWS) and self.answered_200 == self.tdrs


def measure(
    stack: LocalStack,
    *,
    tdrs: int = 200,
    seconds: float = 45.0,
    failing: float = 0.4,
    seed: int = 22,
    out: TextIO | None = None,
) -> Result:
    """Post ``tdrs`` TDRs paced over ``seconds``, then wait until every reader has seen what it should (bounded by
    the batching windows), and return each row's seconds from the POST."""
    plans = plan(tdrs, seconds, failing, stack.options.app_id, seed)
    url = f"{stack.output('WebhookBaseUrl')}/{stack.secret('WebhookSecret')}"
    watchers = Watchers(stack, datetime.now(UTC))
    watchers.start()
    time.sleep(0.5)  # the readers' first polls in flight
    posted = [Posted(p, 0.0) for p in plans]

    def post(item: Posted) -> None:
        item.at = time.time()
        try:
            item.status, _ = http_post(url, item.planned.body, {"Content-Type": "application/json"})
        except OSError:
            item.status = 0
        item.answered = time.time() - item.at

    failures = {p.key for p in plans if p.key[1] in FAILURE_STATUSES}
    _say(out, f"posting {len(plans)} TDRs over {seconds:g} s ({len(failures)} SMS failing), paced")
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        for item in posted:
            time.sleep(max(0.0, start + item.planned.due - time.monotonic()))
            pool.submit(post, item)
    sent_seconds = time.monotonic() - start
    windows = model(stack.template, stack.options.parameters)
    digest_window = next(t.seconds for t in windows["digest"] if t.name.startswith("DigestFunction")) or 0.0
    rollup_window = next(t.seconds for t in windows["rollup"] if t.name.startswith("MetricsFunction")) or 0.0
    deadline = time.monotonic() + max(digest_window, rollup_window) + 20
    arrivals = watchers.arrivals
    keys = {p.key for p in plans}
    while time.monotonic() < deadline:
        counted = rollup_times(posted, arrivals.rollup_counts)
        if (
            keys <= set(arrivals.stored)
            and failures <= set(arrivals.alert)
            and failures <= set(arrivals.digest)
            and len(counted) == len(posted)
        ):
            break
        time.sleep(0.25)
    time.sleep(ROLLUP_READ_INTERVAL)
    watchers.stop()
    by_key = {item.planned.key: item for item in posted}
    counted = rollup_times(posted, arrivals.rollup_counts)
    rows = {
        "stored": [arrivals.stored[k] - by_key[k].at for k in keys if k in arrivals.stored],
        "alert": [arrivals.alert[k] - by_key[k].at for k in failures if k in arrivals.alert],
        "digest": [arrivals.digest[k] - by_key[k].at for k in failures if k in arrivals.digest],
        "rollup": [at - posted[i].at for i, at in counted.items()],
    }
    return Result(
        rows={row: sorted(values) for row, values in rows.items()},
        expected={"stored": len(keys), "alert": len(failures), "digest": len(failures), "rollup": len(posted)},
        tdrs=len(posted),
        failed_sms=len(failures),
        seconds=sent_seconds,
        digest_window=digest_window,
        alerts_twice=arrivals.alerts_twice,
        answered_200=sum(1 for item in posted if item.status == 200),
        answered=[item.answered for item in posted],
        load=os.getloadavg(),
        cpus=os.cpu_count() or 1,
    )


def _say(out: TextIO | None, line: str) -> None:
    if out is not None:
        print(line, file=out, flush=True)


LABELS = {
    "stored": "stored (its stream record)",
    "alert": "alert (AlertTopic subscriber)",
    "digest": "digest (DigestTopic subscriber)",
    "rollup": "rollup (cinnox-sms report)",
}


def render(result: Result, template: Template, parameters: dict[str, str]) -> tuple[str, bool]:
    """The table, the model's terms with their sources, the target's verdict; and whether the target was met."""
    here = model(template, parameters)
    deployed = model(template)
    lines = [
        "",
        f"The latency people feel: {result.tdrs} TDRs posted over {result.seconds:.0f} s "
        f"({result.tdrs / max(result.seconds, 0.001):.1f}/s), {result.failed_sms} SMS failed; "
        f"DigestWindowSeconds {result.digest_window:g} s here (LOCAL_DIGEST_WINDOW_SECONDS, local_stack.cli)",
        "",
        f"  {'from the POST to':<32} {'n':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7}   "
        f"{'AWS model, these windows':>24} {'AWS model, template defaults':>29}",
    ]
    for row in ROWS:
        values = result.rows[row]
        arrived = f"{len(values)}" if len(values) == result.expected[row] else f"{len(values)}/{result.expected[row]}"
        lines.append(
            f"  {LABELS[row]:<32} {arrived:>4} {percentile(values, 50):>7.2f} {percentile(values, 95):>7.2f} "
            f"{(values[-1] if values else 0.0):>7.2f}   {_at_most(here[row]):>24} {_at_most(deployed[row]):>29}"
        )
    met = bool(result.rows["alert"]) and result.alert_p95 <= ALERT_TARGET_SECONDS
    one, five, fifteen = result.load
    lines += [
        "",
        f"  target: an alert for a failed SMS reaches a subscriber within {ALERT_TARGET_SECONDS:g} s p95 here: "
        f"{result.alert_p95:.2f} s {'ok' if met else 'MISS'}  (load average {one:.2f} {five:.2f} {fifteen:.2f} "
        f"on {result.cpus} CPUs: {'quiet' if one < 0.5 * result.cpus else 'busy'})",
    ]
    if result.alerts_twice:
        lines.append(f"  {result.alerts_twice} alert(s) received twice")
    for row in ROWS:
        if len(result.rows[row]) != result.expected[row]:
            lines.append(f"  {row}: {result.expected[row] - len(result.rows[row])} never arrived")
    answered = sorted(result.answered)
    lines += [
        f"  the webhook answered 200 (the item written before it answers): p50 {percentile(answered, 50):.3f} s, "
        f"p95 {percentile(answered, 95):.3f} s, max {(answered[-1] if answered else 0.0):.3f} s",
        "",
        "  The AWS model, in seconds: the waits on the way, at most (each function's own time comes on top), these",
        "  windows; n.d.: AWS documents no figure, the assumption in brackets:",
    ]
    lines += [f"    {row:<7} {' + '.join(term.short() for term in here[row])}" for row in ROWS]
    lines.append("  where")
    terms = {term.name: term for row in ROWS for term in here[row]}
    lines += [f"    {name}: {term.text()}" for name, term in terms.items()]
    lines.append("  sources:")
    lines += [f"    {name}: {address}" for name, address in SOURCES.items()]
    return "\n".join(lines), met


def _at_most(terms: list[Term]) -> str:
    undocumented = sum(1 for term in terms if term.seconds is None)
    return f"<= {modelled(terms):g} s" + (f" + {undocumented} n.d." if undocumented else "")


def figures(result: Result, template: Template, parameters: dict[str, str]) -> dict[str, Any]:
    """The run as JSON (.local-stack/latency.json)."""
    here, deployed = model(template, parameters), model(template)
    return {
        "tdrs": result.tdrs,
        "failed_sms": result.failed_sms,
        "seconds": round(result.seconds, 1),
        "digest_window_seconds": result.digest_window,
        "rows": {
            row: {
                "n": len(result.rows[row]),
                "expected": result.expected[row],
                **{f"p{p}": round(percentile(result.rows[row], p), 3) for p in (50, 95)},
                "max": round(result.rows[row][-1], 3) if result.rows[row] else None,
                "aws_model_at_most_seconds": {
                    "these_windows": modelled(here[row]),
                    "defaults": modelled(deployed[row]),
                },
                "aws_model_terms": [term.text() for term in here[row]],
            }
            for row in ROWS
        },
        "alert_p95_target_seconds": ALERT_TARGET_SECONDS,
        "alert_p95_met": bool(result.rows["alert"]) and result.alert_p95 <= ALERT_TARGET_SECONDS,
        "load_average": list(result.load),
        "cpus": result.cpus,
        "sources": SOURCES,
    }


def run(stack: LocalStack, args: Any, out: TextIO) -> int:
    """`python -m local_stack latency`: measure, print, write the figures; 1 when the target is missed or a TDR
    never reached a reader."""
    result = measure(stack, tdrs=args.tdrs, seconds=args.seconds, failing=args.failing, seed=args.seed, out=out)
    text, met = render(result, stack.template, stack.options.parameters)
    print(text, file=out, flush=True)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures(result, stack.template, stack.options.parameters), indent=2) + "\n")
    print(f"\nfigures written to {path}", file=out, flush=True)
    return 0 if met and result.complete else 1
