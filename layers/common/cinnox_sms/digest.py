"""Digests: one message for people per batching window of alerts, instead of one e-mail per failed SMS.

The digest queue is subscribed to the alert topic with raw delivery: each SQS message body is an alert's
machine message (the stored record as JSON) and its filter attributes arrive as SQS message attributes.
Lambda gathers the queue's messages for the window (MaximumBatchingWindowInSeconds) and the digest
function publishes what the batch holds as one message on the digest topic:

- for people (``default``, ``email``): how many SMS failed, by country and by exception (most first), the
  first transaction IDs and the ``cinnox-sms`` commands to see the rest;
- for queues (``sqs``): the same counts and every transaction ID, as JSON;
- for chat (``https``: Slack or Teams through Amazon Q Developer in chat applications): the counts as a custom
  notification (cinnox_sms.chat); lambda, email-json and every other protocol get the people's text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cinnox_sms.chat import CHAT_PROTOCOL, encoded, literal, notification
from cinnox_sms.item import StoredTdr
from cinnox_sms.moments import received_moment
from cinnox_sms.neutral import line
from cinnox_sms.status import FAILURE_STATUSES

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

IDS_SHOWN = 15  # transaction IDs a person reads in the text; the machine message carries all of them
LINES_SHOWN = 20  # countries or exceptions listed in the text; the rest are summed on one line
# SNS takes 256 KiB per message, every protocol's text together: keep a margin for the attributes.
MAX_MESSAGE_BYTES = 240 * 1024
SUBJECT_LIMIT = 100  # SNS Publish: printable ASCII, no line breaks, at most 100 characters
# The JSON goes to SQS subscribers alone: one copy of every ID keeps a full 6 MB batch (about 3,000 alerts)
# in one SNS message. Systems that act on each failure subscribe to the alert topic instead.
MACHINE_PROTOCOLS = ("sqs",)
CHAT_IDS_SHOWN = 10  # transaction IDs in the chat notification (the e-mail lists IDS_SHOWN)
CHAT_LINES_SHOWN = 10  # countries listed in the chat notification; the rest summed on one line
MESSAGE_TYPE = "cinnox-sms-digest"
UNKNOWN = "unknown"


class DigestNotPublished(RuntimeError):
    """SNS refused the digest: raised so that the queue keeps the batch and Lambda retries it."""


@dataclass(frozen=True)
class Failure:
    """One failed SMS, as its alert's machine message tells it."""

    transaction_id: str
    status: str
    country: str
    exception: str
    received_at: datetime | None

    @classmethod
    def from_body(cls, body: str) -> Failure | None:
        """The failure an alert's record describes; None when the body is not an alert record."""
        try:
            record = json.loads(body)
            tdr = StoredTdr.model_validate(record)
        except (ValueError, TypeError, ValidationError):  # json's errors are ValueErrors
            return None
        if tdr.status not in FAILURE_STATUSES:
            return None
        return cls(
            transaction_id=tdr.transaction_id,
            status=tdr.status,
            country=(tdr.recipient_country or UNKNOWN).upper(),
            exception=tdr.exception or "none given",
            received_at=_moment(tdr.received_at),
        )


@dataclass(frozen=True)
class Digest:
    """What one batch of alerts tells: its failures, in the order they were received, and what could not be read."""

    failures: tuple[Failure, ...]
    unreadable: int
    window_start: datetime
    window_end: datetime
    stack: str
    part: int = 1
    parts: int = 1

    @property
    def failed(self) -> int:
        return len(self.failures)

    def by_country(self) -> list[tuple[str, int]]:
        return _most_first(f.country for f in self.failures)

    def by_exception(self) -> list[tuple[str, int]]:
        return _most_first(f.exception for f in self.failures)

    def by_status(self) -> list[tuple[str, int]]:
        return _most_first(f.status for f in self.failures)

    def subject(self) -> str:
        countries = len({f.country for f in self.failures})
        where = f" in {countries} countr{'y' if countries == 1 else 'ies'}" if self.failures else ""
        part = f" [part {self.part} of {self.parts}]" if self.parts > 1 else ""
        # A window across midnight (UTC) shows both dates: "2026-11-28 23:58-2026-11-29 00:03".
        end = "%H:%M" if self.window_end.date() == self.window_start.date() else "%Y-%m-%d %H:%M"
        window = f"{self.window_start:%Y-%m-%d %H:%M}-{self.window_end.strftime(end)} UTC{part}"
        subject = f"CINNOX SMS digest: {self.failed} SMS failed{where}, {window}"
        if len(subject) > SUBJECT_LIMIT:  # the window and part before the country count (the body has it)
            subject = f"CINNOX SMS digest: {self.failed} SMS failed, {window}"
        return _subject(subject)

    def report_command(self) -> str:
        since = self.window_start.replace(second=0, microsecond=0)
        until = self.window_end.replace(second=0, microsecond=0) + timedelta(minutes=1)
        # The arrival view: the failures received in the window, whenever their SMS was sent.
        window = f"--since {_iso(since)} --until {_iso(until)}"
        return f"cinnox-sms report --stack {self.stack} {window} --by hour --view arrival"

    def status_command(self, transaction_id: str = "<TransactionID>") -> str:
        return f"cinnox-sms status {transaction_id} --stack {self.stack}"

    def text(self) -> str:
        part = f" (part {self.part} of {self.parts} of this window's batch)" if self.parts > 1 else ""
        lines = [
            f"{self.failed} outbound SMS sent through CINNOX failed between {self.window_start:%Y-%m-%d %H:%M:%S} "
            f"and {self.window_end:%Y-%m-%d %H:%M:%S} UTC{part}.",
            "",
            "By country:",
            *_table(self.by_country()),
            "",
            "By exception:",
            *_table(self.by_exception()),
            "",
            "By status:",
            *_table(self.by_status()),
            "",
        ]
        shown = self.failures[:IDS_SHOWN]
        if shown:
            heading = "Transaction IDs" if len(shown) == self.failed else f"The first {len(shown)} transaction IDs"
            lines += [f"{heading}:"]
            lines += [
                f"  {line(f.transaction_id)}  {line(f.status)}  {line(f.country)}  {line(f.exception)}" for f in shown
            ]
            if self.failed > len(shown):
                lines.append(f"  ... and {self.failed - len(shown)} more")
            lines.append("")
        if self.unreadable:
            lines += [f"{self.unreadable} message(s) of the digest queue were not alert records and were left out.", ""]
        lines += [
            "To see them all, by hour and country:",
            f"  {self.report_command()}",
            "To see one SMS's history:",
            f"  {self.status_command()}",
            "",
            "Systems that need every failure as it happens subscribe to the alert topic (AlertTopicArn).",
        ]
        return "\n".join(lines)

    def machine(self) -> dict[str, Any]:
        """The JSON machine subscribers get: every failure's transaction ID, the counts, the window."""
        return {
            "type": MESSAGE_TYPE,
            "version": 1,
            "windowStart": _iso(self.window_start),
            "windowEnd": _iso(self.window_end),
            "failed": self.failed,
            "unreadable": self.unreadable,
            "byCountry": dict(self.by_country()),
            "byException": dict(self.by_exception()),
            "byStatus": dict(self.by_status()),
            "part": self.part,
            "parts": self.parts,
            # By status, in the order received: each ID written once, as the message's size is SNS's to limit.
            "transactionIds": {
                status: [f.transaction_id for f in self.failures if f.status == status]
                for status, _ in self.by_status()
            },
        }

    def chat(self) -> dict[str, object]:
        """The custom notification chat channels get (cinnox_sms.chat): the counts by status and country, the first
        transaction IDs and the commands; what a sender wrote only through ``literal``."""
        part = f" (part {self.part} of {self.parts})" if self.parts > 1 else ""
        statuses = " · ".join(f"{status} {count}" for status, count in self.by_status()) or "none"
        lines = [
            f"*{self.failed} SMS failed* between {self.window_start:%Y-%m-%d %H:%M:%S} and "
            f"{self.window_end:%Y-%m-%d %H:%M:%S} UTC{part}.",
            f"*By status:* {statuses}",
            "*By country:*",
        ]
        countries = self.by_country()
        lines += [f"• {literal(country)} {count}" for country, count in countries[:CHAT_LINES_SHOWN]]
        rest = countries[CHAT_LINES_SHOWN:]
        if rest:
            lines.append(f"• {len(rest)} more countries: {sum(count for _, count in rest)} SMS")
        shown = self.failures[:CHAT_IDS_SHOWN]
        if shown:
            first = "" if len(shown) == self.failed else f" (the first {len(shown)})"
            lines.append(f"*Transaction IDs*{first}:")
            lines += [f"• {literal(f.transaction_id)} {f.status} {literal(f.country)}" for f in shown]
        if self.unreadable:
            lines.append(f"{self.unreadable} message(s) of the digest queue were not alert records and were left out.")
        return notification(
            title=self.subject(),
            lines=lines,
            next_steps=[
                f"By hour and country: `{self.report_command()}`",
                f"One SMS: `{self.status_command('TRANSACTION_ID')}`",
            ],
            keywords=["CINNOX SMS", *(status for status, _ in self.by_status())],
            event_type=MESSAGE_TYPE,  # the chat event type is the digest's own type, as the no-final-status digest's
            context={
                "stack": self.stack,
                "failed": str(self.failed),
                "windowStart": _iso(self.window_start),
                "windowEnd": _iso(self.window_end),
            },
        )

    def message(self) -> str:
        """The MessageStructure=json message: the text for people, the JSON for machines, the custom notification
        for chat (``https``); every other protocol gets ``default``."""
        text = self.text()
        machine = json.dumps(self.machine(), ensure_ascii=False, separators=(",", ":"))
        return json.dumps(
            {"default": text, "email": text}
            | dict.fromkeys(MACHINE_PROTOCOLS, machine)
            | {CHAT_PROTOCOL: encoded(self.chat())},
            ensure_ascii=False,
        )

    def attributes(self) -> dict[str, MessageAttributeValueTypeDef]:
        """Message attributes for subscription filter policies: the count, and the country when only one failed."""
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "failed": {"DataType": "Number", "StringValue": str(self.failed)}
        }
        countries = {f.country for f in self.failures}
        if len(countries) == 1:
            attributes["country"] = {"DataType": "String", "StringValue": next(iter(countries))}
        return attributes


def digests(records: Sequence[Mapping[str, Any]], stack: str, now: datetime | None = None) -> list[Digest]:
    """The digests of one batch of SQS records: one, unless its message would pass SNS's size limit.

    A record is an alert read once: an alert SQS delivered twice to the same batch counts once. A record
    that is not an alert record is counted as unreadable: retrying it could never help.
    """
    failures: dict[tuple[str, str], Failure] = {}
    unreadable = 0
    sent: list[datetime] = []
    for record in records:
        failure = Failure.from_body(str(record.get("body", "")))
        if failure is None:
            unreadable += 1
        else:
            failures.setdefault((failure.transaction_id, failure.status), failure)
        sent_at = _sent_at(record)
        if sent_at is not None:
            sent.append(sent_at)
    ordered = sorted(failures.values(), key=lambda f: f.received_at or datetime.max.replace(tzinfo=UTC))
    moments = [f.received_at for f in ordered if f.received_at is not None] or sent or [now or datetime.now(UTC)]
    start, end = min(moments), max(moments)
    whole = Digest(tuple(ordered), unreadable, start, end, stack)
    if _fits(whole):
        return [whole]
    chunks = _split(list(ordered), lambda chunk: _fits(Digest(tuple(chunk), unreadable, start, end, stack)))
    return [
        Digest(tuple(chunk), unreadable if index == 0 else 0, start, end, stack, index + 1, len(chunks))
        for index, chunk in enumerate(chunks)
    ]


class DigestPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self.client = client
        self._topic_arn = topic_arn

    def publish(self, digest: Digest) -> str:
        """Publish one digest; its message id. Raises DigestNotPublished when SNS refuses it."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.publish(
                TopicArn=self._topic_arn,
                Subject=digest.subject(),
                Message=digest.message(),
                MessageStructure="json",
                MessageAttributes=digest.attributes(),
            )
        except (ClientError, BotoCoreError) as error:
            raise DigestNotPublished(f"Publish failed: {error}") from error
        return answer["MessageId"]


def _fits(digest: Digest) -> bool:
    return len(digest.message().encode()) <= MAX_MESSAGE_BYTES


def _split(failures: list[Failure], fits: Any) -> list[list[Failure]]:
    """Halve until every chunk's message fits (a batch is at most 10,000 alerts: a few halvings)."""
    if len(failures) <= 1 or fits(failures):
        return [failures]
    half = len(failures) // 2
    return _split(failures[:half], fits) + _split(failures[half:], fits)


def _most_first(values: Iterable[str]) -> list[tuple[str, int]]:
    return sorted(Counter(values).items(), key=lambda item: (-item[1], item[0]))


def _table(counts: list[tuple[str, int]]) -> list[str]:
    if not counts:
        return ["  none"]
    shown = [(line(name), count) for name, count in counts[:LINES_SHOWN]]  # a sender's text, on one line
    width = max(len(name) for name, _ in shown)
    lines = [f"  {name:<{width}}  {count:>6}" for name, count in shown]
    rest = counts[LINES_SHOWN:]
    if rest:
        lines.append(f"  {len(rest)} more: {sum(count for _, count in rest)} in all")
    return lines


def _subject(text: str) -> str:
    # SNS subjects: printable ASCII (" " to "~"), no line breaks, at most 100 characters.
    text = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def _moment(text: str | None) -> datetime | None:
    # Out of range (a hand edit) reads as unknown: the digest's window is then when SQS got the alert.
    return received_moment(text)


def _sent_at(record: Mapping[str, Any]) -> datetime | None:
    """When SNS put the message in the queue (SQS's SentTimestamp, milliseconds since the epoch)."""
    try:
        return datetime.fromtimestamp(int(record.get("attributes", {})["SentTimestamp"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
