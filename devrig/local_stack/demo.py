"""`make demo`: a day of traffic through the local stack, then an account of every TDR."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from cinnox_sms.item import StoredTdr, projection
from cinnox_sms.model import FAILURE_STATUSES, Status
from local_stack.traffic import Delivery, Outcome, Sender, Sms, plan_day

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local_stack.stack import LocalStack


@dataclass
class Check:
    ok: bool
    text: str


@dataclass
class Account:
    """What was sent, what the product did with it, and whether it adds up."""

    messages: list[Sms]
    outcomes: list[Outcome]
    stored: set[tuple[str, str]]
    alerts: Counter[tuple[str, str]]
    stream: dict[str, int]
    subscription: list[bool]
    seconds: float
    checks: list[Check] = field(default_factory=list)
    # The digest topic's messages (their machine form), the digest mapping's invocations (one per batching
    # window here: one poller), and DigestWindowSeconds; None when the run did not wait for digests.
    digests: list[dict[str, Any]] = field(default_factory=list)
    digest_invocations: int = 0
    digest_window: float | None = None
    burst: tuple[str, int] | None = None  # (country, SMS) of the simulated carrier outage

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


class TopicInbox:
    """An SQS queue subscribed to a topic: what a subscriber receives, each message taken once."""

    def __init__(self, aws: boto3.Session, topic_arn: str, name: str, raw: bool = False) -> None:
        self._sqs = aws.client("sqs")
        self.url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"} if raw else {}
        aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)

    def take(self, wait_seconds: int = 0) -> list[MessageTypeDef]:
        """Up to 10 messages, deleted once read."""
        answer = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        messages = answer.get("Messages", [])
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return messages


class AlertInbox(TopicInbox):
    """Subscribed to the alert topic (SNS's JSON envelope, as a system without raw delivery sees it)."""

    def __init__(self, aws: boto3.Session, topic_arn: str, name: str = "local-alert-inbox") -> None:
        super().__init__(aws, topic_arn, name)

    def receive(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """Alerts as the stored records they carry, with the SNS subject beside them."""
        alerts = []
        for message in self.take(wait_seconds):
            envelope = json.loads(message["Body"])
            record = json.loads(envelope["Message"])
            record["_subject"] = envelope.get("Subject", "")
            alerts.append(record)
        return alerts


class DigestInbox(TopicInbox):
    """Subscribed to the digest topic with raw delivery: each digest's machine message (the `sqs`
    protocol's JSON: counts and every transaction ID), as a system that audits the digests reads it."""

    def __init__(self, aws: boto3.Session, topic_arn: str, name: str = "local-digest-inbox") -> None:
        super().__init__(aws, topic_arn, name, raw=True)

    def receive(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        return [json.loads(message["Body"]) for message in self.take(wait_seconds)]


def digested(digests: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many digests list each failed SMS, by (TransactionID, status)."""
    return Counter((i, status) for d in digests for status, ids in d["transactionIds"].items() for i in ids)


def run_demo(
    stack: LocalStack,
    *,
    sms_count: int,
    seed: int,
    senders: int,
    out: TextIO = sys.stdout,
    send_all: Callable[[Sender, list[Delivery]], list[Outcome]] | None = None,
    **traffic: Any,
) -> Account:
    """A day of traffic through the stack; ``send_all`` paces it (default: every sender as fast as it can)."""
    assert stack.aws is not None
    assert stack.cinnox is not None
    inbox = AlertInbox(stack.aws, stack.output("AlertTopicArn"))
    digest_inbox = DigestInbox(stack.aws, stack.output("DigestTopicArn"))
    webhook_url = f"{stack.output('WebhookBaseUrl')}/{stack.secret('WebhookSecret')}"
    messages, deliveries = plan_day(sms_count, app_id=stack.options.app_id, seed=seed, **traffic)
    alerts: Counter[tuple[str, str]] = Counter()
    progress = _Progress(out, len(deliveries), lambda: sum(alerts.values()))
    print(
        f"sending {len(deliveries)} requests for {len(messages)} SMS "
        f"to {len({m.country.code for m in messages})} countries, {senders} at a time",
        file=out,
    )
    started = time.monotonic()
    receiving = threading.Event()
    receiving.set()

    digests: list[dict[str, Any]] = []

    def receive_alerts() -> None:
        while receiving.is_set():
            stored = map(StoredTdr.from_stream_image, inbox.receive(wait_seconds=1))  # each record is a NewImage
            alerts.update((s.transaction_id, s.status) for s in stored)
            digests.extend(digest_inbox.receive())

    receiver = threading.Thread(target=receive_alerts, daemon=True)
    receiver.start()
    sender = Sender(webhook_url, senders=senders, progress=progress.update)
    outcomes = send_all(sender, deliveries) if send_all else sender.send_all(deliveries)
    # Only a TDR the webhook accepted can alert (one refused with 429 at the edge never reached it).
    expected_alerts = {
        o.delivery.key for o in outcomes if o.status == 200 and o.delivery.key and o.delivery.key[1] in FAILURE_STATUSES
    }
    # Alerts follow the stream: wait until all have come and the stream is drained,
    # then read once more, so that an alert published twice would be seen.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(alerts) >= expected_alerts:
        time.sleep(0.2)
        progress.update(len(deliveries))
    alerting = [m for m in stack.mappings if m.function == "AlertFunction"]
    for mapping in alerting:
        mapping.wait_idle(10)
    # The last digest goes out when its batching window closes: wait for every alert to be in one.
    window = float(stack.provisioned.refs["DigestWindowSeconds"])
    deadline = time.monotonic() + 2 * window + 30
    while time.monotonic() < deadline and not set(digested(digests)) >= set(alerts):
        time.sleep(0.2)
    time.sleep(1.5)
    receiving.clear()
    receiver.join()
    seconds = time.monotonic() - started
    progress.finish()
    stored = _scan(stack.aws, stack.output("TdrTableName"))
    stream = {
        "read": sum(m.stats.records_read for m in alerting),
        "filtered out": sum(m.stats.records_filtered_out for m in alerting),
        "invocations": sum(m.stats.invocations for m in alerting),
    }
    subscription = [entry["enabled"] for entry in stack.cinnox.history]
    digest_queue = stack.provisioned.attrs["DigestQueue.Arn"]
    invocations = sum(m.stats.invocations for m in stack.queue_mappings if m.queue_arn == digest_queue)
    burst = int(traffic.get("burst", 0))
    return Account(
        messages,
        outcomes,
        stored,
        alerts,
        stream,
        subscription,
        seconds,
        digests=digests,
        digest_invocations=invocations,
        digest_window=window,
        burst=(str(traffic.get("burst_country", "VE")), burst) if burst else None,
    )


def check(account: Account, unsubscribed: bool, *, throttled: bool = False) -> None:
    """Whether the account adds up. ``throttled``: the run may go past the API's throttle, so a TDR
    may be refused at the edge with 429 (told to retry); it must then not be stored."""
    outcomes = account.outcomes
    tdrs = [o for o in outcomes if o.delivery.kind in ("tdr", "repeat")]
    malformed = [o for o in outcomes if o.delivery.kind == "malformed"]
    expected_pairs = {o.delivery.key for o in tdrs if o.delivery.key}
    duplicates = sum(1 for o in tdrs if o.answer and o.answer.get("result", {}).get("duplicate") is True)
    repeats = sum(1 for o in tdrs if o.delivery.kind == "repeat")
    checks = account.checks
    if throttled:
        answered = Counter(o.delivery.key for o in tdrs if o.status == 200 and o.delivery.key)
        refused = expected_pairs - set(answered)
        expected_pairs = set(answered)
        repeats = sum(n - 1 for n in answered.values())  # each 200 after a key's first is a duplicate
        checks.append(
            Check(
                all(o.status in (200, 429) for o in tdrs) and account.stored == expected_pairs,
                f"every TDR answered 200 is in the table ({len(account.stored)} stored of {len(expected_pairs)}), "
                f"the {len(refused)} refused with 429 (told to retry) are not: nothing lost, nothing extra",
            )
        )
    else:
        checks.append(
            Check(
                all(o.status == 200 for o in tdrs) and account.stored == expected_pairs,
                f"every TDR was answered 200 and is in the table: {len(account.stored)} stored "
                f"of {len(expected_pairs)} expected, nothing lost, nothing extra",
            )
        )
    failures = {key for key in expected_pairs if key[1] in FAILURE_STATUSES}
    checks.append(
        Check(
            duplicates == repeats,
            f"every repeat was acknowledged as a duplicate ({duplicates} of {repeats}) and added nothing",
        )
    )
    checks.append(
        Check(
            all(o.status == o.delivery.expect for o in malformed),
            f"every malformed request was refused with the expected 4xx ({len(malformed)})",
        )
    )
    twice = [key for key, count in account.alerts.items() if count > 1]
    checks.append(
        Check(
            set(account.alerts) == failures and not twice,
            f"every Undelivered/Rejected SMS alerted exactly once ({len(account.alerts)} of "
            f"{len(failures)}; {len(twice)} twice), and nothing else alerted",
        )
    )
    non_failures = len(expected_pairs) - len(failures)
    checks.append(
        Check(
            account.stream["filtered out"] == non_failures,
            f"the stream filter kept Submitted/Delivered away from the alert function "
            f"({account.stream['filtered out']} of {account.stream['read']} records filtered out, "
            f"{account.stream['invocations']} invocations)",
        )
    )
    if account.digest_window is not None:
        checks += digest_checks(account, failures)
    checks.append(
        Check(
            account.subscription[:1] == [True] and unsubscribed,
            "CINNOX verified and subscribed the webhook at start, and saw enabled: false at shutdown",
        )
    )


def digest_checks(account: Account, failures: set[tuple[str, str]]) -> list[Check]:
    """People's digests: every failure in exactly one, at most two digests per batching window (one poller here:
    each invocation of the digest function is one window)."""
    listed = digested(account.digests)
    twice = [key for key, count in listed.items() if count > 1]
    windows = account.digest_invocations
    return [
        Check(
            set(listed) == failures and not twice,
            f"every Undelivered/Rejected SMS is in exactly one digest ({len(listed)} of {len(failures)}; "
            f"{len(twice)} in two), and nothing else is",
        ),
        Check(
            0 < len(account.digests) <= 2 * windows,
            f"at most 2 digests per batching window: {len(account.digests)} digests for {windows} windows "
            f"of {account.digest_window:g} s (DigestWindowSeconds), not {sum(account.alerts.values())} e-mails",
        ),
    ]


def _outage_lines(account: Account) -> list[str]:
    if account.burst is None:
        return []
    country, count = account.burst
    outage = {(m.transaction_id, m.outcome.value) for m in account.messages if m.transaction_id.startswith("outage-")}
    carrying = sum(1 for d in account.digests if outage & set(digested([d])))
    return [
        f"  carrier outage      {count} SMS to {country} Undelivered within a minute: {count} alerts, "
        f"in {carrying} digest(s)"
    ]


def summary(account: Account) -> str:
    outcomes = account.outcomes
    lines = []
    sent = len(outcomes)
    by_kind = Counter(o.delivery.kind for o in outcomes)
    refused = Counter(o.status for o in outcomes if o.status >= 400)
    answered_200 = sum(1 for o in outcomes if o.status == 200)
    latencies = sorted(o.seconds for o in outcomes)
    retried = sum(1 for o in outcomes if o.attempts > 1)
    refusals = ", ".join(f"{n}x {status}" for status, n in sorted(refused.items()))
    lines += [
        "",
        "Summary",
        f"  SMS simulated       {len(account.messages)} to {len({m.country.code for m in account.messages})} countries",
        f"  requests sent       {sent}  ({by_kind['tdr']} TDRs, {by_kind['repeat']} repeats, "
        f"{by_kind['malformed']} malformed)",
        f"  answered 200        {answered_200}",
        f"  refused             {sum(refused.values())}  ({refusals})",
        f"  retried by sender   {retried}",
        f"  stored in DynamoDB  {len(account.stored)}",
        f"  alerts published    {sum(account.alerts.values())}  (one per failed SMS, for machines: AlertTopic)",
        f"  digests published   {len(account.digests)}  (for people: DigestTopic, one per "
        f"{account.digest_window or 0:g} s window)",
        *_outage_lines(account),
        f"  time                {account.seconds:.1f} s, {sent / account.seconds:.0f} requests/s; latency "
        f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms",
        "",
        "  by status      sent  stored  alerts   (sent counts repeats too)",
    ]
    for status in Status:
        sent_n = sum(1 for o in outcomes if o.delivery.key and o.delivery.key[1] == status.value)
        stored_n = sum(1 for key in account.stored if key[1] == status.value)
        alerts_n = sum(n for key, n in account.alerts.items() if key[1] == status.value)
        lines.append(f"  {status.value:<12} {sent_n:>6}  {stored_n:>6}  {alerts_n if status.is_failure else '-':>6}")
    lines += ["", "  by country    SMS  delivered  undelivered  rejected  delivery rate"]
    per_country: dict[str, Counter[str]] = {}
    for sms in account.messages:
        per_country.setdefault(sms.country.code, Counter())[sms.outcome.value] += 1
    for country, counts in sorted(per_country.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(counts.values())
        lines.append(
            f"  {country:<10} {total:>6}  {counts['Delivered']:>9}  {counts['Undelivered']:>11}  "
            f"{counts['Rejected']:>8}  {counts['Delivered'] / total:>12.1%}"
        )
    lines += ["", "Checks"]
    lines += [f"  {'ok  ' if c.ok else 'FAIL'}  {c.text}" for c in account.checks]
    lines.append("")
    lines.append("All accounted for." if account.ok else "Something did not add up: see FAIL above.")
    return "\n".join(lines)


def _scan(aws: boto3.Session, table: str) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    paginator = aws.client("dynamodb").get_paginator("scan")
    projected, names = projection("transaction_id", "status")
    for page in paginator.paginate(TableName=table, ProjectionExpression=projected, ExpressionAttributeNames=names):
        keys |= {(s.transaction_id, s.status) for s in map(StoredTdr.from_item, page["Items"])}
    return keys


def percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(percent / 100 * (len(values) - 1)))]


class _Progress:
    def __init__(self, out: TextIO, total: int, alerts: Callable[[], int]) -> None:
        self._out = out
        self._total = total
        self._alerts = alerts
        self._tty = out.isatty()
        self._last = 0.0
        self._done = 0

    def update(self, done: int) -> None:
        self._done = done
        now = time.monotonic()
        if now - self._last < (0.2 if self._tty else 5):
            return
        self._last = now
        text = f"  {done}/{self._total} requests answered, {self._alerts()} alerts received"
        print(f"\r{text}", end="", file=self._out, flush=True) if self._tty else print(text, file=self._out)

    def finish(self) -> None:
        self._last = 0
        self.update(self._done)
        if self._tty:
            print(file=self._out)
