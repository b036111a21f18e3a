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
from cinnox_sms.nofinal import MESSAGE_TYPE as NO_FINAL_DIGEST
from cinnox_sms.nofinal import NO_FINAL_STATUS
from local_stack.traffic import DEMO_SECONDS, OUTAGE_COUNTRY, Delivery, Outcome, Sender, Sms, plan_day

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local_stack.schedules import ScheduleRun
    from local_stack.stack import LocalStack

NO_FINAL_FUNCTION = "NoFinalStatusFunction"
# Local only (cinnox_sms.settings.NoFinalStatusSettings): the check's clock moved forward, so that the demo
# need not wait NoFinalStatusHours. template.yaml never sets it.
CLOCK_OFFSET_VARIABLE = "CINNOX_SMS_LOCAL_CLOCK_OFFSET_SECONDS"


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
    replay_seconds: float = DEMO_SECONDS  # the day replayed in this many seconds (carrier delays scale with it)
    no_final: NoFinalAccount | None = None  # the no-final-status check's account, once it ran
    # Where the run read alerts and digests, for what comes after the traffic (the no-final-status check).
    inbox: AlertInbox | None = field(default=None, repr=False, compare=False)
    digest_inbox: DigestInbox | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def withheld(self) -> dict[str, str]:
        """The SMS whose final TDR the simulator never sent: transaction ID -> country."""
        return {sms.transaction_id: sms.country.code for sms in self.messages if sms.withheld}


@dataclass
class NoFinalAccount:
    """The no-final-status check as the demo ran it, its clock moved past the deadline: what it told whom."""

    withheld: dict[str, str]  # transaction ID -> country: the SMS whose final TDR the simulator withheld
    deadline_hours: int  # NoFinalStatusHours
    offset_hours: float  # how far ahead the check's clock was moved (local only)
    expression: str  # the schedule's
    at_start: ScheduleRun | None  # the schedule's own first run, as the stack started (real clock)
    runs: list[ScheduleRun]  # the demo's two runs through the schedule, clock moved
    alerts: list[Counter[str]]  # per run: NoFinalStatus alerts on the alert topic, by transaction ID
    alert_countries: Counter[str]  # the alerts' country attribute
    digests: list[list[dict[str, Any]]]  # per run: the no-final-status digests on the digest topic
    leaked: set[str] = field(default_factory=set)  # withheld SMS found in a failed-SMS digest after the check
    digest_batches_after: int = 0  # DigestFunction invocations after the check (its queue takes failures only)

    def result(self, index: int) -> dict[str, Any]:
        run = self.runs[index] if index < len(self.runs) else None
        return run.result if run is not None and isinstance(run.result, dict) else {}


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
        """Alerts as the records they carry, with the SNS subject and message attributes beside them."""
        alerts = []
        for message in self.take(wait_seconds):
            envelope = json.loads(message["Body"])
            record = json.loads(envelope["Message"])
            record["_subject"] = envelope.get("Subject", "")
            record["_attributes"] = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
            alerts.append(record)
        return alerts

    def drain(self) -> list[dict[str, Any]]:
        """Every alert waiting now."""
        alerts: list[dict[str, Any]] = []
        while batch := self.receive():
            alerts += batch
        return alerts


class DigestInbox(TopicInbox):
    """Subscribed to the digest topic with raw delivery: each digest's machine message (the `sqs`
    protocol's JSON: counts and every transaction ID), as a system that audits the digests reads it."""

    def __init__(self, aws: boto3.Session, topic_arn: str, name: str = "local-digest-inbox") -> None:
        super().__init__(aws, topic_arn, name, raw=True)

    def receive(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        return [json.loads(message["Body"]) for message in self.take(wait_seconds)]

    def drain(self) -> list[dict[str, Any]]:
        """Every digest waiting now."""
        digests: list[dict[str, Any]] = []
        while batch := self.receive():
            digests += batch
        return digests


def is_no_final_alert(alert: dict[str, Any]) -> bool:
    return bool(alert.get("_attributes", {}).get("status") == NO_FINAL_STATUS)


def is_no_final_digest(digest: dict[str, Any]) -> bool:
    return bool(digest.get("type") == NO_FINAL_DIGEST)


def digested(digests: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many failed-SMS digests list each failed SMS, by (TransactionID, status)."""
    return Counter(
        (i, status)
        for d in digests
        if not is_no_final_digest(d)
        for status, ids in d["transactionIds"].items()
        for i in ids
    )


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
    """A day of traffic through the stack; ``send_all`` paces it (default: each request when it is due, the day
    replayed in ``traffic["seconds"]``, so that each country's carrier delays are real seconds)."""
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
            failures = [a for a in inbox.receive(wait_seconds=1) if not is_no_final_alert(a)]
            stored = map(StoredTdr.from_stream_image, failures)  # each record is a NewImage
            alerts.update((s.transaction_id, s.status) for s in stored)
            digests.extend(digest_inbox.receive())

    receiver = threading.Thread(target=receive_alerts, daemon=True)
    receiver.start()
    sender = Sender(webhook_url, senders=senders, progress=progress.update)
    outcomes = send_all(sender, deliveries) if send_all else sender.send_scheduled(deliveries)
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
        burst=(str(traffic.get("burst_country", OUTAGE_COUNTRY)), burst) if burst else None,
        replay_seconds=float(traffic.get("seconds", DEMO_SECONDS)),
        inbox=inbox,
        digest_inbox=digest_inbox,
    )


def run_no_final_check(stack: LocalStack, account: Account) -> NoFinalAccount:
    """After the traffic, once the rollups count it: NoFinalStatusFunction run twice through its schedule (the
    path the stack's scheduler takes), with its clock moved NoFinalStatusHours + 1 h ahead so that the SMS of
    this hour are past the deadline; what it told machines and people, and what reached the failed-SMS digests."""
    assert account.inbox is not None
    assert account.digest_inbox is not None
    deadline = int(stack.provisioned.refs["NoFinalStatusHours"])
    withheld = account.withheld
    try:
        schedule = stack.schedule(NO_FINAL_FUNCTION)
    except KeyError:  # NoFinalStatusHours 0: the schedule is DISABLED, and the checks say nothing ran
        return NoFinalAccount(withheld, deadline, 0, "DISABLED", None, [], [], Counter(), [])
    at_start = schedule.runs[0] if schedule.runs else None
    # Hour H is due once H + 1 h + the deadline has passed: NoFinalStatusHours + 1 h ahead, this hour is.
    offset_hours = deadline + 1
    stack.configure_function(NO_FINAL_FUNCTION, {CLOCK_OFFSET_VARIABLE: str(offset_hours * 3600)})
    digest_queue = stack.provisioned.attrs["DigestQueue.Arn"]
    digest_mappings = [m for m in stack.queue_mappings if m.queue_arn == digest_queue]
    batches_before = sum(m.stats.invocations for m in digest_mappings)
    checked = time.monotonic()
    runs: list[ScheduleRun] = []
    alerts: list[Counter[str]] = []
    countries: Counter[str] = Counter()
    digests: list[list[dict[str, Any]]] = []
    for _ in range(2):
        runs.append(schedule.fire())
        # SNS delivers to SQS as it publishes: what each run sent is in the inboxes when it returns.
        received = [a for a in account.inbox.drain() if is_no_final_alert(a)]
        alerts.append(Counter(str(a.get("transactionId")) for a in received))
        countries.update(str(a["_attributes"].get("country")) for a in received)
        waiting = account.digest_inbox.drain()
        digests.append([d for d in waiting if is_no_final_digest(d)])
        account.digests += [d for d in waiting if not is_no_final_digest(d)]
    # A NoFinalStatus alert on the digest queue would be in a failed-SMS digest within a batching window.
    window = account.digest_window or 0.0
    time.sleep(max(0.0, checked + window + 2.0 - time.monotonic()))
    later = account.digest_inbox.drain()
    account.digests += [d for d in later if not is_no_final_digest(d)]
    leaked = {tid for tid, _ in digested(account.digests)} & set(withheld)
    return NoFinalAccount(
        withheld,
        deadline,
        offset_hours,
        schedule.expression,
        at_start,
        runs,
        alerts,
        countries,
        digests,
        leaked,
        sum(m.stats.invocations for m in digest_mappings) - batches_before,
    )


def no_final_checks(account: NoFinalAccount) -> list[Check]:
    """The no-final-status account adds up: exactly the withheld SMS, each reported once to machines, one digest
    for people, nothing on a second run, and none of it in the failed-SMS digests."""
    withheld = account.withheld
    by_country = Counter(withheld.values())
    places = ", ".join(f"{country} {n}" for country, n in sorted(by_country.items())) or "none"
    first, second = account.result(0), account.result(1)
    alerts = account.alerts[0] if account.alerts else Counter()
    twice = sum(1 for n in alerts.values() if n > 1)
    checks = []
    at_start = account.at_start
    start_result = at_start.result if at_start is not None and isinstance(at_start.result, dict) else {}
    checks.append(
        Check(
            at_start is not None and at_start.ok and start_result.get("found") == 0,
            f"{NO_FINAL_FUNCTION} ran on its schedule ({account.expression}) as the stack started, at once as "
            f"EventBridge Scheduler does, and found nothing past NoFinalStatusHours ({account.deadline_hours} h): "
            f"{start_result.get('hours_checked', '?')} hours checked",
        )
    )
    errors = [run.error for run in account.runs if run.error]
    checks.append(
        Check(
            not errors and set(alerts) == set(withheld) and not twice and first.get("found") == len(withheld),
            f"the check, its clock {account.offset_hours:g} h ahead (local only), reported exactly the "
            f"{len(withheld)} SMS whose final status the simulator withheld ({places}), each in one NoFinalStatus "
            f"alert for machines ({len(alerts)} of {len(withheld)}; {twice} twice)"
            + (f"; failed: {'; '.join(errors)}" if errors else ""),
        )
    )
    digests = account.digests[0] if account.digests else []
    digest_countries: Counter[str] = Counter()
    for digest in digests:
        for line in digest.get("byCountryAndHour", []):
            digest_countries[str(line["country"])] += int(line["sms"])
    checks.append(
        Check(
            len(digests) == 1 and first.get("digests") == 1 and digest_countries == by_country,
            f"one no-final-status digest for people (DigestTopic), counting them by country: {len(digests)} digest(s), "
            f"{', '.join(f'{c} {n}' for c, n in sorted(digest_countries.items())) or 'nothing'}",
        )
    )
    again = account.alerts[1:2] and account.alerts[1]
    later_digests = account.digests[1] if len(account.digests) > 1 else []
    checks.append(
        Check(
            len(account.runs) == 2
            and account.runs[1].ok
            and second.get("found") == 0
            and not again
            and not later_digests,
            f"a second run reported nothing again: {second.get('found', '?')} SMS, "
            f"{sum(again.values()) if again else 0} alerts, {len(later_digests)} digests",
        )
    )
    checks.append(
        Check(
            not account.leaked and account.digest_batches_after == 0,
            "NoFinalStatus alerts stayed out of the failed-SMS digests (the DigestSubscription's FilterPolicy, "
            f"status Undelivered or Rejected): {len(account.leaked)} in a digest, "
            f"{account.digest_batches_after} DigestFunction batches after the check",
        )
    )
    return checks


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
    # What passed the filter: each failure's INSERT alone. Each alert's record (alertedAt, an UpdateItem of the
    # failure's item) is a MODIFY the filter drops, as it drops Submitted and Delivered TDRs.
    passed = account.stream["read"] - account.stream["filtered out"]
    checks.append(
        Check(
            passed == len(failures) and account.stream["filtered out"] >= non_failures,
            f"the stream filter kept Submitted/Delivered and the alerts' records away from the alert function "
            f"({passed} of {account.stream['read']} records passed, one per failure; "
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


def no_final_lines(account: NoFinalAccount) -> list[str]:
    """The no-final-status account, by country: what the simulator withheld, the check found, machines and people
    were told."""
    at_start = account.at_start.result if account.at_start and isinstance(account.at_start.result, dict) else {}
    first, second = account.result(0), account.result(1)
    by_country = Counter(account.withheld.values())
    digest_countries: Counter[str] = Counter()
    for digest in account.digests[0] if account.digests else []:
        for line in digest.get("byCountryAndHour", []):
            digest_countries[str(line["country"])] += int(line["sms"])
    alerts = account.alerts[0] if account.alerts else Counter()
    again = account.alerts[1] if len(account.alerts) > 1 else Counter()
    later = account.digests[1] if len(account.digests) > 1 else []

    def run_line(result: dict[str, Any]) -> str:
        digests = result.get("digests", "?")
        return (
            f"{result.get('hours_checked', '?')} hours checked, {result.get('found', '?')} SMS found, "
            f"{result.get('published', '?')} alerts, {digests} digest{'' if digests == 1 else 's'}"
        )

    paired = first.get("paired_early", "?")
    lines = [
        "",
        f"  no final status     {NO_FINAL_FUNCTION}, {account.expression}, NoFinalStatusHours {account.deadline_hours}",
        f"    on its schedule   run as the stack started: {run_line(at_start)}",
        f"    withheld          {len(account.withheld)} SMS: their carrier sent no final TDR",
        f"    clock moved       {account.offset_hours:g} h ahead for the demo ({CLOCK_OFFSET_VARIABLE}, local only)",
        f"    first run         {run_line(first)} ({paired} early final statuses paired first)",
        f"    second run        {run_line(second)}; {sum(again.values())} alerts and {len(later)} digests received",
        "",
        "  no final status    withheld  alerts (machines)  in the digest (people)",
    ]
    for country in sorted(set(by_country) | set(account.alert_countries) | set(digest_countries)):
        lines.append(
            f"  {country:<17} {by_country[country]:>9}  {account.alert_countries[country]:>17}  "
            f"{digest_countries[country]:>22}"
        )
    lines.append(
        f"  {'all':<17} {len(account.withheld):>9}  {sum(alerts.values()):>17}  {sum(digest_countries.values()):>22}"
    )
    return lines


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
    lines += ["", "  by country    SMS  delivered  undelivered  rejected  no final  delivery rate  carrier delay"]
    per_country: dict[str, Counter[str]] = {}
    delays: dict[str, tuple[float, float]] = {}
    for sms in account.messages:
        per_country.setdefault(sms.country.code, Counter())["no final" if sms.withheld else sms.outcome.value] += 1
        delays[sms.country.code] = sms.country.delay
    scale = account.replay_seconds / DEMO_SECONDS
    for country, counts in sorted(per_country.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(counts.values())
        final = total - counts["no final"]
        rate = f"{counts['Delivered'] / final:.1%}" if final else "-"
        low, high = (bound * scale for bound in delays[country])
        lines.append(
            f"  {country:<10} {total:>6}  {counts['Delivered']:>9}  {counts['Undelivered']:>11}  "
            f"{counts['Rejected']:>8}  {counts['no final']:>8}  {rate:>13}  {low:g}-{high:g} s"
        )
    if account.no_final is not None:
        lines += no_final_lines(account.no_final)
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
