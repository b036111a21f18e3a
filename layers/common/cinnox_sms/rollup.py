"""Rollups: counts of TDRs by status per UTC hour and recipient country, kept in the rollup table.

The only place the rollup table's layout is spelled (its KeySchema in template.yaml must match):

- a rollup item per (hour, country): ``day`` = ``"2026-11-29"`` (the UTC day, the partition key, so a
  report Queries one partition per day), ``slot`` = ``"07#HK"`` (the UTC hour, two digits, ``#``, the
  recipient country, ``"??"`` when the TDR names none), and number attributes:

  - the arrival view, one per status (``Submitted``, ``Delivered``, ``Undelivered``, ``Rejected``): the TDRs
    of that status *received* in that hour;
  - the cohort view, one per final status (``cohortDelivered``, ...): of the SMS *submitted* in that hour
    (whose Submitted TDR was received then, to that country), how many have that final status so far;
    the cohort's SMS sent is the arrival view's ``Submitted``;
  - time to a final status, a fixed histogram per final status of the same cohort: ``ttfDelivered#2s``
    counts the SMS whose Delivered TDR came at most 2 s after their Submitted one, ``...#5s`` those
    after 2 to 5 s, and so on to ``...#more`` (bounds in TTF_BUCKETS: 2 s, 5 s, 10 s, 30 s, 1 m, 5 m,
    30 m, 2 h, 12 h);

  and ``expiresAt``, its TTL.
- an SMS list item per (hour, country, transaction of the metrics function): ``day`` =
  ``"2026-11-29#sms"``, ``slot`` = ``"07#HK#<suffix>"``, with ``submitted`` (a map: transaction ID ->
  receivedAt of its Submitted TDR) and ``finals`` (transaction ID -> final status) of the hour's cohort:
  what `cinnox-sms pending` and the no-final-status check read to name the SMS still waiting; kept 35
  days (SMS_LIST_DAYS), where the counts are kept as long as the TDRs.
- an early-final item per SMS whose final status was counted before its Submitted TDR was stored:
  ``day`` = ``"#early"``, ``slot`` = the transaction ID, ``receivedDelivered`` (and so on: per final
  status, its receivedAt) and ``country``; the no-final-status check pairs it once the Submitted TDR is there.
- a watermark item per stream shard: ``day`` = ``"#watermark"``, ``slot`` = the shard's id, and
  ``sequenceNumber``, the last stream record counted from that shard (zero-padded to 40 digits, so
  that it sorts as text).
- the fence item, one: ``day`` = ``"#fence"``, ``slot`` = ``"fences"``, ``fences`` (a list of maps: a rebuild's
  ``token``, the whole hours it rebuilds, ``start`` to ``end`` excluded, its fence ``at`` and whether it is still
  ``counting``) and ``version``: `cinnox-sms rollups rebuild` (cinnox_sms.rebuild) owns what a TDR received
  before the fence adds to those hours, the stream consumer what one received at or after it (Fences below).

A TDR is counted in the arrival view in the hour it was received (its ``receivedAt``); a final status
is counted in the cohort view, and its time in the histogram, against its SMS's Submitted TDR: once
that TDR is stored (read by MetricsFunction, off the webhook's path).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cinnox_sms.moments import received_moment
from cinnox_sms.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DAY = "day"  # partition key attribute
SLOT = "slot"  # sort key attribute
EXPIRES_AT = "expiresAt"
SEQUENCE_NUMBER = "sequenceNumber"
WATERMARK_DAY = "#watermark"  # sorts before every date, and is none
EARLY_DAY = "#early"  # final statuses counted before their Submitted TDR was stored
SMS_LIST_SUFFIX = "#sms"  # "2026-11-29#sms": the day's SMS lists, apart from its rollup items
SUBMITTED_LIST = "submitted"
FINALS_LIST = "finals"
EARLY_COUNTRY = "country"
UNKNOWN_COUNTRY = "??"
MAX_COUNTRY_CHARACTERS = 8  # ISO 3166 codes have 2 or 3; room for what a carrier may send instead
MAX_KEY_BYTES = 1024  # DynamoDB Developer Guide, "Quotas": a sort key value is at most 1,024 bytes
COUNT_ATTRIBUTES = {status: status.value for status in Status}  # Status -> number attribute (arrival view)
FINAL_STATUSES = (Status.DELIVERED, Status.UNDELIVERED, Status.REJECTED)
COHORT_ATTRIBUTES = {status: f"cohort{status.value}" for status in FINAL_STATUSES}  # cohort view
# Time from the Submitted TDR to the final one: each bucket's upper bound (seconds, included) and label.
# Most receipts come within seconds: 2 s and 5 s tell fast carriers apart; the long tail is coarse.
TTF_BUCKETS: tuple[tuple[float, str], ...] = (
    (2, "2s"),
    (5, "5s"),
    (10, "10s"),
    (30, "30s"),
    (60, "1m"),
    (300, "5m"),
    (1800, "30m"),
    (7200, "2h"),
    (43200, "12h"),
    (math.inf, "more"),
)
SEQUENCE_DIGITS = 40  # DynamoDB Streams sequence numbers have 21 to 40 digits


def ttf_attribute(status: Status, label: str) -> str:
    """The histogram attribute of a final status and a bucket: ``ttfDelivered#30s``."""
    return f"ttf{status.value}#{label}"


def ttf_label(seconds: float) -> str:
    """The bucket of a time to a final status; a final received before its Submitted counts as 0 s."""
    return next(label for bound, label in TTF_BUCKETS if max(0.0, seconds) <= bound)


EARLY_ATTRIBUTES = {status: f"received{status.value}" for status in FINAL_STATUSES}  # on an early-final item
TTF_ATTRIBUTES = {status: [ttf_attribute(status, label) for _, label in TTF_BUCKETS] for status in FINAL_STATUSES}


@dataclass(frozen=True, order=True)
class RollupKey:
    """One rollup item's key: a UTC hour and a recipient country."""

    hour: datetime  # UTC, on the hour
    country: str

    @classmethod
    def of(cls, received_at: datetime, country: str | None) -> RollupKey:
        hour = received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(hour, country_code(country))

    @property
    def day(self) -> str:
        return self.hour.strftime("%Y-%m-%d")

    @property
    def slot(self) -> str:
        return f"{self.hour.hour:02d}#{self.country}"

    def item_key(self) -> dict[str, dict[str, str]]:
        return {DAY: {"S": self.day}, SLOT: {"S": self.slot}}

    def list_key(self, suffix: str) -> dict[str, dict[str, str]]:
        """The key of one of this hour and country's SMS list items."""
        return {DAY: {"S": self.day + SMS_LIST_SUFFIX}, SLOT: {"S": f"{self.slot}#{suffix}"}}

    @classmethod
    def from_item(cls, day: str, slot: str) -> RollupKey:
        hour, _, country = slot.partition("#")
        return cls(datetime.strptime(day, "%Y-%m-%d").replace(hour=int(hour), tzinfo=UTC), country)


def country_code(country: str | None) -> str:
    """A recipient country as the rollups key it: upper case; one that is no country code (empty, over
    MAX_COUNTRY_CHARACTERS, or other than letters and digits: "#" would split the slot) counts as "??",
    so that no sender's text can make a key DynamoDB refuses (a sort key is at most 1,024 bytes)."""
    code = (country or "").strip().upper()
    if not code or len(code) > MAX_COUNTRY_CHARACTERS or not (code.isascii() and code.isalnum()):
        return UNKNOWN_COUNTRY
    return code


def slot_range(first_hour: int, last_hour: int) -> tuple[str, str]:
    """The sort-key bounds (for BETWEEN) of the slots from first_hour to last_hour, both included."""
    return f"{first_hour:02d}#", f"{last_hour:02d}#\uffff"


def list_slot_range(key: RollupKey) -> tuple[str, str]:
    """The sort-key bounds (for BETWEEN) of one hour and country's SMS list items."""
    return f"{key.slot}#", f"{key.slot}#\uffff"


def watermark_key(shard_id: str) -> dict[str, dict[str, str]]:
    return {DAY: {"S": WATERMARK_DAY}, SLOT: {"S": shard_id}}


def early_key(transaction_id: str) -> dict[str, dict[str, str]]:
    return {DAY: {"S": EARLY_DAY}, SLOT: {"S": transaction_id}}


def padded(sequence_number: str) -> str:
    """A stream sequence number as text that sorts in its numeric order."""
    return sequence_number.zfill(SEQUENCE_DIGITS)


def iso(moment: datetime) -> str:
    """A receivedAt as the webhook writes it: UTC, milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


# --- fences: who counts what in an hour a rebuild owns (cinnox_sms.rebuild) -----------------------
# A TDR's contribution to a rollup item has a moment: its receivedAt for the arrival view (none when the
# item has no usable one: the stream counts it, a rebuild cannot place it), and for the cohort view and its
# histogram the later of the final's and its Submitted TDR's receivedAt (when both were stored). In an
# hour a fence covers, one before the fence is the rebuild's (the stream consumer drops it), one at or after
# it the consumer's, which while the rebuild is counting also adds it to a shadow attribute of that rebuild
# (``Delivered@<token>``): the rebuild sets each count to what it counted plus its shadow, in one Update.
FENCE_DAY = "#fence"
FENCE_SLOT = "fences"
FENCES = "fences"
FENCE_VERSION = "version"


@dataclass(frozen=True)
class Fence:
    """A rebuild's claim: the whole hours start to end (excluded), whose contributions before `at` it counts."""

    token: str
    start: datetime
    end: datetime
    at: datetime
    counting: bool = True  # False once the rebuild wrote every count: no shadow is kept any more

    def covers(self, hour: datetime) -> bool:
        return self.start <= hour < self.end

    def shadow(self, attribute: str) -> str:
        return f"{attribute}@{self.token}"

    def as_value(self) -> dict[str, Any]:
        text = {"token": self.token, "start": iso(self.start), "end": iso(self.end), "at": iso(self.at)}
        return {"M": {name: {"S": value} for name, value in text.items()} | {"counting": {"BOOL": self.counting}}}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> Fence:
        fields = value["M"]
        start, end, at = (datetime.fromisoformat(fields[name]["S"]) for name in ("start", "end", "at"))
        return cls(fields["token"]["S"], start, end, at, counting=bool(fields["counting"]["BOOL"]))


@dataclass(frozen=True)
class Fences:
    """The fence item as read: every rebuild's claim (the latest fence covering an hour is the one that holds)."""

    entries: tuple[Fence, ...] = ()
    version: int = 0

    def covering(self, hour: datetime) -> Fence | None:
        found = [fence for fence in self.entries if fence.covers(hour)]
        return max(found, key=lambda fence: fence.at) if found else None

    def owned(self, key: RollupKey, counts: Mapping[str, int], when: datetime | None) -> dict[str, int]:
        """What the stream consumer adds to a rollup item for one contribution made at `when`: nothing when a
        fence of that hour is after it (the rebuild counts it), the counts and their shadows while that
        rebuild is counting, the counts alone otherwise."""
        fence = self.covering(key.hour)
        if fence is None:
            return dict(counts)
        if when is not None and when < fence.at:
            return {}
        if not fence.counting:
            return dict(counts)
        return {**counts, **{fence.shadow(attribute): n for attribute, n in counts.items()}}

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Fences:
        if not item:
            return cls()
        entries = tuple(Fence.from_value(value) for value in item.get(FENCES, {}).get("L", []))
        return cls(entries, int(item.get(FENCE_VERSION, {}).get("N", "0")))


def fence_key() -> dict[str, dict[str, str]]:
    return {DAY: {"S": FENCE_DAY}, SLOT: {"S": FENCE_SLOT}}


def read_fences(client: DynamoDBClient, table: str, *, query: bool = False) -> Fences:
    """The fence item, strongly consistent (a fence published a moment ago holds); by Query for a function
    allowed to Query the rollup table and not to GetItem it (the no-final-status check)."""
    if query:
        items = client.query(
            TableName=table,
            KeyConditionExpression="#day = :fence",
            ExpressionAttributeNames={"#day": DAY},
            ExpressionAttributeValues={":fence": {"S": FENCE_DAY}},
            ConsistentRead=True,
        )["Items"]
        return Fences.from_item(next((i for i in items if i[SLOT]["S"] == FENCE_SLOT), None))
    return Fences.from_item(client.get_item(TableName=table, Key=fence_key(), ConsistentRead=True).get("Item"))


# --- maintaining the rollups from the stream (MetricsFunction) ------------------------------------
# Exactly once under Lambda's retries, bisects and replays: each shard's watermark (the last sequence
# number counted) moves in the same transaction as the counts it covers, so a record at or below it
# was counted already and is skipped, and a transaction that fails leaves neither counts nor watermark.
# A final status's cohort and time are counted with it, in the same transaction, once its Submitted
# TDR is read; one stored later is paired once by pair_early() (the no-final-status check), the
# early-final item deleted in the same transaction as the counts it adds.

MAX_TRANSACTION_ACTIONS = 100  # DynamoDB API Reference, TransactWriteItems: "up to 100 action requests"
MAX_ROLLUPS_PER_TRANSACTION = MAX_TRANSACTION_ACTIONS - 1  # one action is the watermark's
MAX_BATCH_GET_KEYS = 100  # DynamoDB API Reference, BatchGetItem: "up to 100 items"
# DynamoDB Developer Guide, "Quotas": an item is at most 400 KB, and a TransactWriteItems at most 4 MB of
# items in all; an SMS list item is kept well under the one, a transaction's lists under the other.
MAX_LIST_ITEM_BYTES = 128 * 1024
MAX_TRANSACTION_LIST_BYTES = 2 * 1024 * 1024
SMS_LIST_DAYS = 35  # `cinnox-sms pending` lists the SMS sent in the last 35 days; counts are kept as long as TDRs
EARLY_TTL = timedelta(days=3)  # an early final whose Submitted TDR has not come in 3 days is let go
WATERMARK_TTL = timedelta(days=2)  # a stream keeps records 24 hours: a watermark older than that guards nothing
# DynamoDB Developer Guide, "Amazon DynamoDB transactions: capacity management": a transactional write
# consumes 2 write units per 1 KB of the item written.
TRANSACTIONAL_UNITS_PER_KB = 2
# DynamoDB Developer Guide, "Read consistency" and "Read/write capacity mode": an eventually consistent
# read of up to 4 KB takes half a read unit, a strongly consistent one a whole unit.
EVENTUAL_READ_UNITS = 0.5
STRONG_READ_UNITS = 1.0
# DynamoDB Developer Guide, "Item sizes and formats": a number takes about 1 byte per two significant
# digits plus 1; 8 bytes bound a count below 10**14 or an epoch second. A map takes 3 bytes plus, per
# element, its name, its value and 1 byte.
_NUMBER_BYTES = 8
_MAP_BYTES = 3


class NoShardId(ValueError):
    """The event names no shard: the mapping sets no tumbling window, and a watermark needs the shard."""

    def __init__(self) -> None:
        super().__init__(
            "the stream event carries no shardId: Lambda adds it only when the event source mapping sets "
            "TumblingWindowInSeconds (template.yaml, MetricsFunction's Stored event); no rollup was written"
        )


class WatermarkMoved(RuntimeError):
    """Another invocation moved this shard's watermark meanwhile: raised so Lambda retries the batch,
    whose re-read watermark then skips what is counted."""


class SubmissionArrived(RuntimeError):
    """A Submitted TDR read as missing was stored before the transaction that kept its final status as
    early: raised so Lambda retries the batch, which then reads it (and skips what is counted)."""


@dataclass(frozen=True)
class CountedRecord:
    """One stream record that counts: a TDR's INSERT, its rollup key and status, and what pairs it."""

    sequence_number: str  # padded(): compares as numbers do
    key: RollupKey  # the hour it was received, its country
    status: Status
    transaction_id: str | None = None  # None: counted in the arrival view only
    received_at: datetime | None = None  # its receivedAt, None when the item has none

    @property
    def pairs_as_final(self) -> bool:
        """A final status that can be paired with its Submitted TDR (it has an ID and a receivedAt)."""
        return self.status != Status.SUBMITTED and bool(self.transaction_id) and self.received_at is not None


def counted_record(
    sequence_number: str,
    received_at: str | None,
    country: str | None,
    status: Status,
    created_at: int | None,
    transaction_id: str | None = None,
) -> CountedRecord:
    """The record's hour is the TDR's receivedAt, or the stream record's ApproximateCreationDateTime
    (epoch seconds) when the item has none (written by hand); such a record pairs with nothing."""
    when = _moment(received_at)
    stamped = when
    if when is None:
        when = datetime.fromtimestamp(created_at, UTC) if created_at is not None else datetime.now(UTC)
    if transaction_id is not None and len(transaction_id.encode()) > MAX_KEY_BYTES:
        transaction_id = None  # too long for an early item's key (a hand edit: the webhook takes 256 characters)
    return CountedRecord(padded(sequence_number), RollupKey.of(when, country), status, transaction_id, stamped)


def _moment(text: str | None) -> datetime | None:
    # Out of range (a hand edit): no time to count or pair by, so the stream record's is used.
    return received_moment(text)


def fresh_records(records: Iterable[CountedRecord], watermark: str | None) -> list[CountedRecord]:
    """The records above the shard's watermark, in stream order (the rest were counted already)."""
    ordered = sorted(records, key=lambda record: record.sequence_number)
    return [record for record in ordered if watermark is None or record.sequence_number > watermark]


@dataclass(frozen=True)
class Submission:
    """An SMS's Submitted TDR as stored: when it was received, and to which country (its cohort). Without a
    usable receivedAt (a hand edit) it is stored but has no cohort: its final statuses count on arrival only."""

    received_at: datetime | None
    country: str | None

    @property
    def key(self) -> RollupKey:
        if self.received_at is None:
            raise ValueError("a Submitted TDR without a usable receivedAt has no cohort")
        return RollupKey.of(self.received_at, self.country)


@dataclass
class SmsList:
    """The SMS a transaction adds to one hour and country's list: submitted, and those with a final status."""

    submitted: dict[str, str] = field(default_factory=dict)  # transaction ID -> receivedAt
    finals: dict[str, str] = field(default_factory=dict)  # transaction ID -> final status


@dataclass
class EarlyFinal:
    """Final statuses of one SMS counted while its Submitted TDR was not stored."""

    statuses: dict[Status, str] = field(default_factory=dict)  # final status -> receivedAt
    country: str = UNKNOWN_COUNTRY


def pair_counts(final: Status, seconds: float) -> dict[str, int]:
    """What one final status adds to its SMS's cohort: the count and the histogram bucket."""
    return {COHORT_ATTRIBUTES[final]: 1, ttf_attribute(final, ttf_label(seconds)): 1}


@dataclass
class Transaction:
    """One TransactWriteItems: an in-order run of records, with the watermark at its last."""

    counts: dict[RollupKey, dict[str, int]]  # rollup item -> number attribute -> added
    last_sequence_number: str  # padded
    records: int
    lists: dict[RollupKey, SmsList] = field(default_factory=dict)
    early: dict[str, EarlyFinal] = field(default_factory=dict)  # transaction ID -> what is kept

    @property
    def action_count(self) -> int:
        """Actions besides the watermark: an Update per rollup item, a Put per list, and per early
        final an Update and a ConditionCheck."""
        return len(self.counts) + len(self.lists) + 2 * len(self.early)

    def actions(
        self,
        table: str,
        shard_id: str,
        previous: str | None,
        retention_days: int,
        now: datetime,
        tdr_table: str = "",
    ) -> list[dict[str, Any]]:
        """The TransactItems: an Update per rollup item, a Put per SMS list, an Update and a ConditionCheck
        per early final, then the watermark's Update, conditioned on where it was."""
        actions: list[dict[str, Any]] = [
            {"Update": rollup_update(table, key, counts, retention_days)} for key, counts in sorted(self.counts.items())
        ]
        # The list's slot: this transaction's last record and shard, unique and the same on every retry.
        suffix = f"{self.last_sequence_number}-{hashlib.sha256(shard_id.encode()).hexdigest()[:8]}"
        actions += [
            {"Put": list_put(table, key, suffix, sms, retention_days)} for key, sms in sorted(self.lists.items())
        ]
        for transaction_id, early in sorted(self.early.items()):
            actions += early_actions(table, tdr_table, transaction_id, early, now)
        condition = f"attribute_not_exists({SEQUENCE_NUMBER})"
        values = {
            ":last": {"S": self.last_sequence_number},
            ":ttl": {"N": str(int((now + WATERMARK_TTL).timestamp()))},
        }
        if previous is not None:
            condition = f"{condition} OR {SEQUENCE_NUMBER} = :previous"
            values[":previous"] = {"S": previous}
        actions.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": watermark_key(shard_id),
                    "UpdateExpression": f"SET {SEQUENCE_NUMBER} = :last, {EXPIRES_AT} = :ttl",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            }
        )
        return actions


def rollup_update(table: str, key: RollupKey, counts: Mapping[str, int], retention_days: int) -> dict[str, Any]:
    """An Update that adds counts to one rollup item (created if new) and sets its TTL."""
    attributes = sorted(counts)
    names = {f"#s{i}": attribute for i, attribute in enumerate(attributes)}
    values = {f":n{i}": {"N": str(counts[attribute])} for i, attribute in enumerate(attributes)}
    # A rollup item expires retention_days after its hour, as its TDRs do (give or take the hour).
    values[":ttl"] = {"N": str(_expiry(key.hour, retention_days))}
    adds = ", ".join(f"#s{i} :n{i}" for i in range(len(attributes)))
    return {
        "TableName": table,
        "Key": key.item_key(),
        "UpdateExpression": f"ADD {adds} SET {EXPIRES_AT} = :ttl",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _expiry(moment: datetime, retention_days: int) -> int:
    return int((moment + timedelta(days=retention_days)).timestamp())


def list_put(table: str, key: RollupKey, suffix: str, sms: SmsList, retention_days: int) -> dict[str, Any]:
    """A Put of one SMS list item: a new key per transaction, so a list is never read to be written."""
    # Kept SMS_LIST_DAYS (or the retention, if shorter): the no-final-status check reads a few days back, and
    # an SMS list is most of the rollup table's storage (about 130 bytes per SMS).
    days = min(retention_days, SMS_LIST_DAYS)
    item: dict[str, Any] = {**key.list_key(suffix), EXPIRES_AT: {"N": str(_expiry(key.hour, days))}}
    if sms.submitted:
        item[SUBMITTED_LIST] = {"M": {tid: {"S": at} for tid, at in sms.submitted.items()}}
    if sms.finals:
        item[FINALS_LIST] = {"M": {tid: {"S": status} for tid, status in sms.finals.items()}}
    return {"TableName": table, "Item": item}


def early_actions(
    table: str, tdr_table: str, transaction_id: str, early: EarlyFinal, now: datetime
) -> list[dict[str, Any]]:
    """Keep an early final, only while its SMS's Submitted TDR is still not stored (checked in the same
    transaction, so a Submitted TDR stored after it was read cannot be missed by both sides)."""
    statuses = sorted(early.statuses)
    names = {f"#f{i}": EARLY_ATTRIBUTES[status] for i, status in enumerate(statuses)} | {"#c": EARLY_COUNTRY}
    values = {f":f{i}": {"S": early.statuses[status]} for i, status in enumerate(statuses)}
    # Kept EARLY_TTL, not the retention: the hourly pairing reads them all, and a Submitted TDR that has not
    # come in days will not come (the final status still counts in the arrival view).
    values |= {":c": {"S": early.country}, ":ttl": {"N": str(int((now + EARLY_TTL).timestamp()))}}
    sets = ", ".join([*(f"#f{i} = :f{i}" for i in range(len(statuses))), "#c = :c", f"{EXPIRES_AT} = :ttl"])
    return [
        {
            "Update": {
                "TableName": table,
                "Key": early_key(transaction_id),
                "UpdateExpression": f"SET {sets}",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        },
        {
            "ConditionCheck": {
                "TableName": tdr_table,
                "Key": submitted_key(transaction_id),
                "ConditionExpression": "attribute_not_exists(#id)",
                "ExpressionAttributeNames": {"#id": TDR_ID},
            }
        },
    ]


# The TDR table's key (cinnox_sms.item spells it; here without loading the pydantic model).
TDR_ID = "transactionId"
TDR_STATUS = "status"
TDR_RECEIVED_AT = "receivedAt"
TDR_COUNTRY = "recipientCountry"


def submitted_key(transaction_id: str) -> dict[str, dict[str, str]]:
    return {TDR_ID: {"S": transaction_id}, TDR_STATUS: {"S": Status.SUBMITTED.value}}


class _Planner:
    """Accumulates records into transactions of at most max_actions actions (besides the watermark)."""

    def __init__(self, submissions: Mapping[str, Submission], max_actions: int, fences: Fences | None = None) -> None:
        self._submissions = submissions
        self._max = max_actions
        self._fences = fences or Fences()
        self.done: list[Transaction] = []
        self._open = Transaction({}, "", 0)
        self._list_bytes: dict[RollupKey, int] = {}  # the open transaction's SMS list entries, by list item

    def _too_large(self, lists: Mapping[RollupKey, SmsList]) -> bool:
        """Whether these entries would take a list item past MAX_LIST_ITEM_BYTES, or the transaction's lists
        past MAX_TRANSACTION_LIST_BYTES (transaction IDs are up to 1 KB each: a batch of long ones is cut)."""
        grown = {key: self._list_bytes.get(key, 0) + _entries_bytes(sms) for key, sms in lists.items()}
        total = sum(self._list_bytes.values()) + sum(_entries_bytes(sms) for sms in lists.values())
        return any(size > MAX_LIST_ITEM_BYTES for size in grown.values()) or total > MAX_TRANSACTION_LIST_BYTES

    def add(self, record: CountedRecord) -> None:
        effects = self._effects(record)
        if self._open.records and (self._grown(effects) > self._max or self._too_large(effects[1])):
            self.done.append(self._open)
            self._open = Transaction({}, "", 0)
            self._list_bytes = {}
        counts, lists, early = effects
        for key, sms in lists.items():
            self._list_bytes[key] = self._list_bytes.get(key, 0) + _entries_bytes(sms)
        for key, attributes in counts.items():
            per_key = self._open.counts.setdefault(key, {})
            for attribute, n in attributes.items():
                per_key[attribute] = per_key.get(attribute, 0) + n
        for key, sms in lists.items():
            into = self._open.lists.setdefault(key, SmsList())
            into.submitted |= sms.submitted
            into.finals |= sms.finals
        for transaction_id, kept in early.items():
            into_early = self._open.early.setdefault(transaction_id, EarlyFinal(country=kept.country))
            into_early.statuses |= kept.statuses
        self._open.last_sequence_number = record.sequence_number
        self._open.records += 1

    def close(self) -> list[Transaction]:
        if self._open.records:
            self.done.append(self._open)
        return self.done

    def _grown(self, effects: tuple[dict[RollupKey, dict[str, int]], dict[RollupKey, SmsList], dict[str, Any]]) -> int:
        counts, lists, early = effects
        return (
            self._open.action_count
            + len(counts.keys() - self._open.counts.keys())
            + len(lists.keys() - self._open.lists.keys())
            + 2 * len(early.keys() - self._open.early.keys())
        )

    def _effects(
        self, record: CountedRecord
    ) -> tuple[dict[RollupKey, dict[str, int]], dict[RollupKey, SmsList], dict[str, EarlyFinal]]:
        # In an hour a rebuild owns, what was received before its fence is the rebuild's (Fences.owned).
        arrival = self._fences.owned(record.key, {COUNT_ATTRIBUTES[record.status]: 1}, record.received_at)
        counts: dict[RollupKey, dict[str, int]] = {record.key: arrival} if arrival else {}
        lists: dict[RollupKey, SmsList] = {}
        early: dict[str, EarlyFinal] = {}
        tid, at = record.transaction_id, record.received_at
        if tid is None or at is None:
            return counts, lists, early  # nothing to pair it with: the arrival view only
        if record.status == Status.SUBMITTED:
            lists[record.key] = SmsList(submitted={tid: iso(at)})
            return counts, lists, early
        submission = self._submissions.get(tid)
        if submission is None:
            early[tid] = EarlyFinal({record.status: iso(at)}, record.key.country)
            return counts, lists, early
        if submission.received_at is None:
            return counts, lists, early  # stored, but no cohort to count it in: the arrival view only
        cohort = submission.key
        seconds = (at - submission.received_at).total_seconds()
        paired = pair_counts(record.status, seconds)
        for attribute, n in self._fences.owned(cohort, paired, max(at, submission.received_at)).items():
            per_key = counts.setdefault(cohort, {})
            per_key[attribute] = per_key.get(attribute, 0) + n
        lists[cohort] = SmsList(finals={tid: record.status.value})
        return counts, lists, early


def plan(
    records: Sequence[CountedRecord],
    max_rollups: int = MAX_ROLLUPS_PER_TRANSACTION,
    submissions: Mapping[str, Submission] | None = None,
    fences: Fences | None = None,
) -> list[Transaction]:
    """Fresh records (in stream order) as transactions of at most max_rollups actions each, besides the
    watermark; submissions are the stored Submitted TDRs of the final statuses among them (by transaction ID);
    fences, the rebuilds' claims (what a rebuild owns is not added).

    Each transaction is an in-order prefix of what is left, so a failure between two leaves a
    consistent prefix counted (with the watermark at its end) for the retry to skip.
    """
    planner = _Planner(submissions or {}, max_rollups, fences)
    for record in records:
        planner.add(record)
    return planner.close()


def _text_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _rollup_item_bytes(key: RollupKey) -> int:
    """An upper bound of a rollup item's size (DynamoDB Developer Guide, "Item sizes and formats"):
    attribute names and values, with every count and histogram bucket present."""
    names = [*COUNT_ATTRIBUTES.values(), *COHORT_ATTRIBUTES.values(), *(a for b in TTF_ATTRIBUTES.values() for a in b)]
    size = len(DAY) + len(key.day) + len(SLOT) + _text_bytes(key.slot) + len(EXPIRES_AT) + _NUMBER_BYTES
    return size + sum(len(name) + _NUMBER_BYTES for name in names)


def _list_item_bytes(key: RollupKey, sms: SmsList) -> int:
    size = len(DAY) + len(key.day) + len(SMS_LIST_SUFFIX) + len(SLOT) + _text_bytes(key.slot) + 1 + 49
    size += len(EXPIRES_AT) + _NUMBER_BYTES  # 49: the suffix, a 40-digit sequence number, "-" and 8 hex
    for name, entries in ((SUBMITTED_LIST, sms.submitted), (FINALS_LIST, sms.finals)):
        if entries:
            size += len(name) + _MAP_BYTES
            size += sum(_text_bytes(tid) + _text_bytes(value) + 1 for tid, value in entries.items())
    return size


def _entries_bytes(sms: SmsList) -> int:
    """The bytes a list's entries take in its item: per entry its name, its value and 1 byte."""
    entries = [*sms.submitted.items(), *sms.finals.items()]
    return sum(_text_bytes(tid) + _text_bytes(value) + 1 for tid, value in entries)


def _early_item_bytes(transaction_id: str) -> int:
    finals = sum(len(status.value) + 29 for status in FINAL_STATUSES)  # a receivedAt is 29 bytes
    return len(DAY) + len(EARLY_DAY) + len(SLOT) + _text_bytes(transaction_id) + finals + 64


_WATERMARK_ITEM_BYTES = (
    len(DAY)
    + len(WATERMARK_DAY)
    + len(SLOT)
    + 64
    + len(SEQUENCE_NUMBER)
    + SEQUENCE_DIGITS
    + len(EXPIRES_AT)
    + _NUMBER_BYTES
)  # 64: a shard id's length, with room


def _units(size: int) -> int:
    return TRANSACTIONAL_UNITS_PER_KB * math.ceil(size / 1024)


def write_units(transactions: Iterable[Transaction]) -> float:
    """Write units the transactions consume: 2 per KB (rounded up) of each item written, the watermark's and
    a ConditionCheck's included (its item is absent: the minimum, 2)."""
    units = 0
    for transaction in transactions:
        units += sum(_units(_rollup_item_bytes(key)) for key in transaction.counts)
        units += sum(_units(_list_item_bytes(key, sms)) for key, sms in transaction.lists.items())
        units += sum(_units(_early_item_bytes(tid)) + _units(1) for tid in transaction.early)
        units += _units(_WATERMARK_ITEM_BYTES)
    return float(units)


def read_units(records: Iterable[CountedRecord], misses: int = 0) -> float:
    """Read units of the Submitted TDRs read for the final statuses: an eventually consistent read each,
    and a strongly consistent one again for each read as missing."""
    finals = sum(1 for record in records if record.pairs_as_final)
    return finals * EVENTUAL_READ_UNITS + misses * STRONG_READ_UNITS


@dataclass(frozen=True)
class Applied:
    """What one batch did: records counted now, records skipped as counted before, transactions written,
    final statuses paired with their Submitted TDR, and those kept as early."""

    counted: int
    skipped: int
    transactions: int
    paired: int = 0
    early: int = 0
    statuses: dict[Status, int] = field(default_factory=dict)  # of the records counted now: what metrics tell


class RollupWriter:
    """Adds a shard's stream records to the rollup table, each once."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        retention_days: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_rollups: int = MAX_ROLLUPS_PER_TRANSACTION,
        tdr_table_name: str = "",
    ) -> None:
        self._client = client
        self._table = table_name
        self._tdr_table = tdr_table_name
        self._retention_days = retention_days
        self._now = now
        self.max_rollups = max_rollups

    def watermark(self, shard_id: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table,
            Key=watermark_key(shard_id),
            ConsistentRead=True,  # the last transaction's watermark, not an older copy
            ProjectionExpression=SEQUENCE_NUMBER,
        ).get("Item")
        value = (item or {}).get(SEQUENCE_NUMBER, {}).get("S")
        return str(value) if value is not None else None

    def submissions(self, transaction_ids: Iterable[str]) -> dict[str, Submission]:
        """The stored Submitted TDRs of these SMS: read eventually consistent, and those not found read
        again strongly consistent (one stored a moment ago may not show in the first read)."""
        wanted = sorted(set(transaction_ids))
        if not wanted or not self._tdr_table:
            return {}
        found = read_submissions(self._client, self._tdr_table, wanted, consistent=False)
        missing = [tid for tid in wanted if tid not in found]
        if missing:
            found |= read_submissions(self._client, self._tdr_table, missing, consistent=True)
        return found

    def apply(self, shard_id: str, records: Sequence[CountedRecord]) -> Applied:
        if not shard_id:
            raise NoShardId
        previous = self.watermark(shard_id) if records else None
        fresh = fresh_records(records, previous)
        finals = [
            r.transaction_id for r in fresh if r.status != Status.SUBMITTED and r.transaction_id and r.received_at
        ]
        submissions = self.submissions(tid for tid in finals if tid)
        # Read after the records were stored: a fence published before them holds for them (cinnox_sms.rebuild).
        fences = read_fences(self._client, self._table) if fresh else Fences()
        transactions = plan(fresh, self.max_rollups, submissions, fences)
        for transaction in transactions:
            actions = transaction.actions(
                self._table, shard_id, previous, self._retention_days, self._now(), self._tdr_table
            )
            try:
                self._client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
            except self._client.exceptions.TransactionCanceledException as error:
                reasons = error.response.get("CancellationReasons") or []
                if reasons and reasons[-1].get("Code") == "ConditionalCheckFailed":
                    raise WatermarkMoved(f"shard {shard_id}'s watermark moved past {previous}") from error
                if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                    raise SubmissionArrived("a Submitted TDR was stored as its final status was kept") from error
                raise
            previous = transaction.last_sequence_number
        early = sum(len(t.early) for t in transactions)
        statuses: dict[Status, int] = {}
        for record in fresh:
            statuses[record.status] = statuses.get(record.status, 0) + 1
        return Applied(len(fresh), len(records) - len(fresh), len(transactions), len(finals) - early, early, statuses)


def batch_get(
    client: DynamoDBClient, table: str, keys: Sequence[Mapping[str, Any]], **options: Any
) -> list[dict[str, Any]]:
    """BatchGetItem of any number of keys of one table: 100 a call, unprocessed keys asked again with
    back-off (DynamoDB API Reference, BatchGetItem); options: ConsistentRead, ProjectionExpression, ..."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
        request = list(keys[start : start + MAX_BATCH_GET_KEYS])
        for attempt in range(8):
            asked: dict[str, Any] = {table: {"Keys": request, **options}}
            answer = client.batch_get_item(RequestItems=asked)
            items += answer.get("Responses", {}).get(table, [])
            unprocessed: dict[str, Any] = dict(answer.get("UnprocessedKeys") or {})
            request = list((unprocessed.get(table) or {}).get("Keys") or [])
            if not request:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError(f"BatchGetItem left {len(request)} keys unprocessed after 8 attempts")
    return items


def read_submissions(
    client: DynamoDBClient, tdr_table: str, transaction_ids: Sequence[str], *, consistent: bool
) -> dict[str, Submission]:
    """The Submitted TDRs of these SMS (receivedAt and country only), by transaction ID."""
    items = batch_get(
        client,
        tdr_table,
        [submitted_key(tid) for tid in transaction_ids],
        ConsistentRead=consistent,
        ProjectionExpression="#id, #at, #country",
        ExpressionAttributeNames={"#id": TDR_ID, "#at": TDR_RECEIVED_AT, "#country": TDR_COUNTRY},
    )
    # Found, with or without a usable time: a stored Submitted TDR is never kept waiting for.
    return {
        item[TDR_ID]["S"]: Submission(
            _moment(item.get(TDR_RECEIVED_AT, {}).get("S")), item.get(TDR_COUNTRY, {}).get("S")
        )
        for item in items
    }


# --- SMS lists: read back by `cinnox-sms pending` and the no-final-status check -------------------------


def list_query(key: RollupKey) -> dict[str, Any]:
    """The Query arguments (but the table) of one hour and country's SMS list items."""
    low, high = list_slot_range(key)
    return {
        "KeyConditionExpression": "#day = :day AND #slot BETWEEN :low AND :high",
        "ExpressionAttributeNames": {"#day": DAY, "#slot": SLOT},
        "ExpressionAttributeValues": {
            ":day": {"S": key.day + SMS_LIST_SUFFIX},
            ":low": {"S": low},
            ":high": {"S": high},
        },
    }


def unfinished(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """An hour and country's SMS with no final status, from its list items: transaction ID -> receivedAt of
    its Submitted TDR. An SMS may be submitted in one item and final in another."""
    submitted: dict[str, str] = {}
    finals: set[str] = set()
    for item in items:
        submitted |= {tid: value["S"] for tid, value in item.get(SUBMITTED_LIST, {}).get("M", {}).items()}
        finals |= set(item.get(FINALS_LIST, {}).get("M", {}))
    return {tid: at for tid, at in submitted.items() if tid not in finals}


# --- early finals: paired once their Submitted TDR is stored (the no-final-status check) ---------------


@dataclass(frozen=True)
class Early:
    """An early-final item as read: the SMS, its final statuses (with their receivedAt) and country."""

    transaction_id: str
    statuses: dict[Status, str]

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Early:
        statuses = {s: item[a]["S"] for s, a in EARLY_ATTRIBUTES.items() if a in item}
        return cls(item[SLOT]["S"], statuses)


def read_early(client: DynamoDBClient, table: str) -> list[Early]:
    """Every early-final item: one partition, small (kept only while an SMS's Submitted TDR is missing)."""
    early: list[Early] = []
    arguments: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#day = :early",
        "ExpressionAttributeNames": {"#day": DAY},
        "ExpressionAttributeValues": {":early": {"S": EARLY_DAY}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**arguments)
        early += [Early.from_item(item) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return early
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def early_pairing(
    table: str, early: Early, submission: Submission, retention_days: int, fences: Fences | None = None
) -> list[dict[str, Any]]:
    """The TransactItems that count an early SMS's final statuses against its cohort and delete its early
    item, only as it was read (a final status kept meanwhile waits for the next pairing); a pair a rebuild
    owns (both TDRs stored before its fence: Fences.owned) is not counted, its early item still deleted."""
    key = submission.key  # raises for a Submitted TDR without a usable receivedAt (pair_early skips those)
    sent = submission.received_at or key.hour
    counts: dict[str, int] = {}
    for status, at in early.statuses.items():
        when = _moment(at) or sent
        paired = pair_counts(status, (when - sent).total_seconds())
        for attribute, n in (fences or Fences()).owned(key, paired, max(when, sent)).items():
            counts[attribute] = counts.get(attribute, 0) + n
    suffix = "early-" + hashlib.sha256(early.transaction_id.encode()).hexdigest()[:16]
    finals = SmsList(finals=dict.fromkeys([early.transaction_id], ",".join(sorted(early.statuses))))
    names = {f"#f{i}": EARLY_ATTRIBUTES[status] for i, status in enumerate(FINAL_STATUSES)}
    conditions, values = [], {}
    for i, status in enumerate(FINAL_STATUSES):
        if status in early.statuses:
            conditions.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = {"S": early.statuses[status]}
        else:
            conditions.append(f"attribute_not_exists(#f{i})")
    delete: dict[str, Any] = {
        "TableName": table,
        "Key": early_key(early.transaction_id),
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
    }
    if values:
        delete["ExpressionAttributeValues"] = values
    update = [{"Update": rollup_update(table, key, counts, retention_days)}] if counts else []
    return [
        *update,
        {"Put": list_put(table, key, suffix, finals, retention_days)},
        {"Delete": delete},
    ]


def pair_early(client: DynamoDBClient, table: str, tdr_table: str, retention_days: int) -> int:
    """Counts each early final whose Submitted TDR is now stored against its SMS's cohort, once (its early
    item is deleted in the same transaction); returns how many SMS were paired."""
    early = [e for e in read_early(client, table) if e.statuses]
    if not early:
        return 0
    submissions = read_submissions(client, tdr_table, [e.transaction_id for e in early], consistent=True)
    fences = read_fences(client, table, query=True)
    paired = 0
    for item in early:
        submission = submissions.get(item.transaction_id)
        if submission is None or submission.received_at is None:
            continue  # still no Submitted TDR (kept until it comes, or expires), or one with no cohort
        try:
            actions = early_pairing(table, item, submission, retention_days, fences)
            client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
        except client.exceptions.TransactionCanceledException:
            continue  # changed since it was read (another final kept, or paired meanwhile): the next run
        paired += 1
    return paired
