"""Alerts: one SNS message for each new Undelivered or Rejected TDR."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from cinnox_sms.alert_ledger import (
    ALERT_CLAIM,
    ALERT_DUE,
    ALERTED,
    ALERTED_AT,
    DUE,
    STREAM_MARGIN,
    AlertLedger,
    LedgerUnavailable,
)
from cinnox_sms.item import StoredTdr
from cinnox_sms.moments import received_moment
from cinnox_sms.neutral import json_for_people, line
from cinnox_sms.status import FAILURE_STATUSES, Status

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

SNS_BATCH_SIZE = 10  # PublishBatch's maximum
# SNS takes 256 KiB per message and per PublishBatch call (all entries together); keep a margin.
MAX_MESSAGE_BYTES = 200 * 1024
MAX_BATCH_BYTES = 240 * 1024
_SUBJECT_LIMIT = 100
_BOOKKEEPING = frozenset({ALERT_DUE, ALERT_CLAIM, ALERTED_AT})
_JSON_PROTOCOLS = ("sqs", "lambda", "http", "https", "firehose")
# What a stream image's attribute holds when it is not a map, list or set.
_SCALARS = frozenset({str, int, float, bool, Decimal, type(None)})


class NotAnAlert(ValueError):
    """A stream record that does not describe a failed SMS."""


class AlertNotPublished(RuntimeError):
    """Raised for a record whose alert was not published, so the stream retries it."""


@dataclass(frozen=True)
class Alert:
    """A failed SMS, from the stored item (the stream's NewImage)."""

    key: str  # the stream record's sequence number
    item: dict[str, Any]  # the NewImage as stored: the alert's machine-readable record
    tdr: StoredTdr

    @classmethod
    def from_image(cls, key: str, image: dict[str, Any]) -> Alert | None:
        """The alert for a stored TDR; None when its status is not a failure."""
        try:
            tdr = StoredTdr.from_stream_image(image)
        except ValidationError:
            raise NotAnAlert("the record's NewImage has no transactionId or status") from None
        if tdr.status not in FAILURE_STATUSES:
            return None  # the template's FilterCriteria should keep these away
        # The record of the alert itself (alert_ledger's bookkeeping) is not part of what a subscriber gets.
        return cls(key=key, item={k: v for k, v in image.items() if k not in _BOOKKEEPING}, tdr=tdr)

    @property
    def status(self) -> Status:
        return Status(self.tdr.status)

    def subject(self) -> str:
        return self._subject

    @functools.cached_property
    def _subject(self) -> str:  # asked for twice: to size the batch, then in its entry
        recipient = self.tdr.recipient
        where = f" to {recipient}" if recipient else ""
        country = self.tdr.recipient_country
        subject = f"SMS {self.status.value}{where}{f' ({country})' if country else ''}: {self.tdr.transaction_id}"
        # SNS subjects: printable ASCII, no line breaks, under 100 characters. Any other character is written
        # as its escape (\u00e9, \u4e2d, \U0001f600, \n), so a non-ASCII transaction ID stays readable.
        if not (subject.isascii() and subject.isprintable()):  # printable ASCII is " " to "~"
            subject = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in subject)
        return subject if len(subject) <= _SUBJECT_LIMIT else subject[: _SUBJECT_LIMIT - 3] + "..."

    def body(self) -> str:
        """The e-mail: what a sender wrote is shown one line a field, its unsafe characters as visible escapes
        (cinnox_sms.neutral), and the record as JSON that parses to what is stored."""
        tdr = self.tdr
        lines = [
            f"An outbound SMS sent through CINNOX was {self.status.value.lower()}.",
            "",
            f"Status:          {self.status.value}",
            f"Transaction ID:  {line(tdr.transaction_id)}",
            f"Recipient:       {line(tdr.recipient or 'unknown')}",
            f"Country:         {line(tdr.recipient_country or 'unknown')}",
            f"Exception:       {line(tdr.exception or 'none given')}",
            f"Response code:   {line(tdr.response_code or 'none given')}",
            f"Service ID:      {line(tdr.service_id or 'unknown')}",
            f"App ID:          {line(tdr.app_id or 'unknown')}",
            f"Received:        {line(tdr.received_at or 'unknown')}",
            "",
            "The full record, as stored:",
            json_for_people(self.record_json(indent=2)),
        ]
        return "\n".join(lines)

    def record_json(self, indent: int | None = None) -> str:
        if indent is not None and self.item and all(type(v) in _SCALARS for v in self.item.values()):
            # json's indented output is written in Python; for a flat item, the same text comes
            # from its C encoder with the indentation as the separator (a string holds no raw newline).
            margin = " " * indent
            flat = json.dumps(
                self.item, separators=(",\n" + margin, ": "), sort_keys=True, default=_json_default, ensure_ascii=False
            )
            return "{\n" + margin + flat[1:-1] + "\n}"
        return json.dumps(self.item, indent=indent, sort_keys=True, default=_json_default, ensure_ascii=False)

    def attributes(self) -> dict[str, Any]:
        """Message attributes for subscription filter policies, and what a subscriber deduplicates on
        (transactionId and status); empty values are left out, and so are fields stored out of shape (as
        received: SNS may refuse their characters in an attribute, and the record carries them)."""
        flagged = set((self.tdr.out_of_shape or "").split(","))
        values = {
            "status": self.tdr.status,
            "transactionId": self.tdr.transaction_id,
            "country": None if "recipientCountry" in flagged else self.tdr.recipient_country,
            "appId": self.tdr.app_id,
            "serviceId": None if "serviceId" in flagged else self.tdr.service_id,
        }
        return {attribute: {"DataType": "String", "StringValue": value} for attribute, value in values.items() if value}

    def entry(self, entry_id: str) -> PublishBatchRequestEntryTypeDef:
        return {
            "Id": entry_id,
            "Subject": self.subject(),
            "Message": self.message,
            "MessageStructure": "json",
            "MessageAttributes": self.attributes(),
        }

    @functools.cached_property
    def message(self) -> str:
        """The per-protocol message; a raw body too large for SNS is left to the table."""
        text = self._message()
        if len(text.encode()) <= MAX_MESSAGE_BYTES:
            return text
        raw = StoredTdr.attribute("raw")
        item = {k: v for k, v in self.item.items() if k != raw} | {
            raw: None,
            "rawOmitted": "the raw body is too large for an SNS message; it is in the table",
        }
        return Alert(self.key, item, self.tdr)._message()

    def _message(self) -> str:
        # json.dumps({"default": body, "email": body} | {protocol: machine, ...}), to the character,
        # with each of the two texts escaped once rather than once per protocol.
        body = json.dumps(self.body(), ensure_ascii=False)
        machine = json.dumps(self.record_json(), ensure_ascii=False)
        entries = [f'"default": {body}', f'"email": {body}', *(f'"{p}": {machine}' for p in _JSON_PROTOCOLS)]
        return "{" + ", ".join(entries) + "}"


class AlertPublisher:
    def __init__(self, client: SNSClient, topic_arn: str, *, entry_attempts: int = 3) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._entry_attempts = entry_attempts

    def publish(self, alerts: Sequence[Alert]) -> dict[str, str]:
        """Publish in order, in batches of ten; return {key: why} for each alert not published.

        Entries that fail inside a batch are sent again (up to ``entry_attempts`` in
        all); after a batch with lasting failures the later batches are not sent.
        """
        failed: dict[str, str] = {}
        for batch in _batches(alerts):
            if failed:
                failed |= {alert.key: HELD_BACK for alert in batch}
            else:
                failed |= self._publish_batch(batch)
        return failed

    def _publish_batch(self, batch: Sequence[Alert]) -> dict[str, str]:
        pending = {str(index): alert for index, alert in enumerate(batch)}
        errors: dict[str, str] = {}
        for _ in range(self._entry_attempts):
            try:
                answer = self._client.publish_batch(
                    TopicArn=self._topic_arn,
                    PublishBatchRequestEntries=[alert.entry(entry_id) for entry_id, alert in pending.items()],
                )
            except (ClientError, BotoCoreError) as error:
                errors = {entry_id: f"PublishBatch failed: {error}" for entry_id in pending}
                break
            errors = {f["Id"]: f"{f.get('Code')}: {f.get('Message', '')}" for f in answer.get("Failed", [])}
            pending = {entry_id: alert for entry_id, alert in pending.items() if entry_id in errors}
            if not pending or any(f.get("SenderFault") for f in answer.get("Failed", [])):
                break
        return {pending[entry_id].key: why for entry_id, why in errors.items() if entry_id in pending}


def _batches(alerts: Sequence[Alert]) -> list[list[Alert]]:
    """Ten to a batch, fewer when the messages together would pass SNS's size limit."""
    batches: list[list[Alert]] = []
    size = 0
    for alert in alerts:
        entry_size = len(alert.message.encode()) + len(alert.subject()) + 512  # attributes and framing
        if not batches or len(batches[-1]) == SNS_BATCH_SIZE or size + entry_size > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(alert)
        size += entry_size
    return batches


HELD_BACK = "held back: an earlier record of this batch failed, and the stream retries from there"


INSERT = "INSERT"
# Why a record can never be an alert. Fixed wording, so that log lines group by reason.
SKIP_NOT_INSERT = "not an INSERT: a TDR is alerted on when it is written, not when it is edited or removed"
SKIP_NO_IMAGE = "no NewImage"
SKIP_UNREADABLE = "its NewImage is not DynamoDB JSON"
SKIP_NOT_TDR = "not a TDR: its NewImage has no transactionId or status"
SKIP_NOT_FAILURE = "not a failed SMS"


@dataclass(frozen=True)
class StreamRecord:
    """What the alerts need of a DynamoDB stream record."""

    key: str  # its sequence number
    event_name: str | None
    image: dict[str, Any] | None  # the NewImage, deserialized; None when the record has none
    readable: bool = True  # False: the NewImage could not be deserialized


@dataclass(frozen=True)
class Dispatched:
    """What became of a batch of stream records."""

    failed: dict[str, str]  # {key: why}: the records to report as batch item failures
    skipped: list[tuple[str, str]]  # (key, why): records that can never be alerts; retrying cannot help
    published: int
    already: int = 0  # alerts the record shows published before (a retry's, a bisect's): not sent again
    deferred: int = 0  # failures older than the stream's share of the grace period: the overdue sweep's
    unrecorded: tuple[str, ...] = ()  # why records of published alerts could not be written

    def skip_reasons(self) -> dict[str, int]:
        return dict(Counter(why for _, why in self.skipped))


def alert_or_skip(record: StreamRecord) -> Alert | str:
    """The record's alert, or why it can never be one."""
    if record.event_name != INSERT:
        return SKIP_NOT_INSERT
    if not record.readable:
        return SKIP_UNREADABLE
    if record.image is None:
        return SKIP_NO_IMAGE
    try:
        alert = Alert.from_image(record.key, record.image)
    except NotAnAlert:
        return SKIP_NOT_TDR
    return SKIP_NOT_FAILURE if alert is None else alert


def dispatch_records(
    records: Sequence[StreamRecord],
    publisher: AlertPublisher,
    ledger: AlertLedger | None = None,
    *,
    grace: timedelta | None = None,
    now: datetime | None = None,
) -> Dispatched:
    """Alert on the failed SMS among stream records, in stream order; skip what cannot be an alert.

    With a ledger (cinnox_sms.alert_ledger), what it records as alerted is not sent again and each alert
    published is recorded; with a grace period, a failure on the AlertsDue index received longer than
    ``grace - STREAM_MARGIN`` ago is left to the overdue sweep, so that the two never publish one item at once.

    Only a publishing fault is worth a retry. A stream resumes from its first failed
    record, so every record after it (skipped ones too) is reported failed with it.
    """
    alerts: list[Alert] = []
    skipped: list[tuple[str, str]] = []
    for record in records:
        outcome = alert_or_skip(record)
        if isinstance(outcome, Alert):
            alerts.append(outcome)
        else:
            skipped.append((record.key, outcome))
    already = deferred = 0
    if ledger is not None and alerts:
        now = now or datetime.now(UTC)
        try:
            states = ledger.states([(alert.tdr.transaction_id, alert.tdr.status) for alert in alerts])
        except LedgerUnavailable as error:
            return Dispatched(failed={record.key: str(error) for record in records}, skipped=skipped, published=0)
        sweep_from = None if grace is None else now - grace + STREAM_MARGIN
        fresh = []
        for alert in alerts:
            state = states[(alert.tdr.transaction_id, alert.tdr.status)]
            if state == ALERTED:
                already += 1
            elif state == DUE and sweep_from is not None and _past(alert, sweep_from, now):
                deferred += 1  # on the index and old enough: the sweep's (only what is on the index is)
            else:
                fresh.append(alert)
        alerts = fresh
    not_published = publisher.publish(alerts)
    sent = [alert for alert in alerts if alert.key not in not_published]
    unrecorded: tuple[str, ...] = ()
    if ledger is not None and sent:
        unrecorded = tuple(
            ledger.record([(a.tdr.transaction_id, a.tdr.status) for a in sent], now or datetime.now(UTC))
        )
    dispatched = Dispatched(
        failed={}, skipped=skipped, published=len(sent), already=already, deferred=deferred, unrecorded=unrecorded
    )
    if not not_published:
        return dispatched
    cutoff = min(index for index, record in enumerate(records) if record.key in not_published)
    failed = {record.key: not_published.get(record.key, HELD_BACK) for record in records[cutoff:]}
    return replace(dispatched, failed=failed)


def _past(alert: Alert, cutoff: datetime, now: datetime) -> bool:
    """Received before the cutoff (a receivedAt that cannot be read is not: the stream publishes it)."""
    received = received_moment(alert.tdr.received_at, now)
    return received is not None and received < cutoff


def dispatch(records: Sequence[tuple[str, dict[str, Any] | None]], publisher: AlertPublisher) -> dict[str, str]:
    """Alert on new items (key, new image), in stream order; {key: why} for the records to retry."""
    return dispatch_records([StreamRecord(key, INSERT, image) for key, image in records], publisher).failed


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    return str(value)
