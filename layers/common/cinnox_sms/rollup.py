"""Rollups: counts of TDRs by status per UTC hour and recipient country, kept in the rollup table.

The only place the rollup table's layout is spelled (its KeySchema in template.yaml must match):

- a rollup item per (hour, country): ``day`` = ``"2026-11-29"`` (the UTC day, the partition key, so a
  report Queries one partition per day), ``slot`` = ``"07#HK"`` (the UTC hour, two digits, ``#``, the
  recipient country, ``"??"`` when the TDR names none), and one number attribute per status
  (``Submitted``, ``Delivered``, ``Undelivered``, ``Rejected``) counting the TDRs of that status
  received in that hour; ``expiresAt`` is its TTL.
- a watermark item per stream shard: ``day`` = ``"#watermark"``, ``slot`` = the shard's id, and
  ``sequenceNumber``, the last stream record counted from that shard (zero-padded to 40 digits, so
  that it sorts as text).

A TDR is counted in the hour it was received (its ``receivedAt``): a late terminal status counts in
its own hour, not in its Submitted's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cinnox_sms.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DAY = "day"  # partition key attribute
SLOT = "slot"  # sort key attribute
EXPIRES_AT = "expiresAt"
SEQUENCE_NUMBER = "sequenceNumber"
WATERMARK_DAY = "#watermark"  # sorts before every date, and is none
UNKNOWN_COUNTRY = "??"
COUNT_ATTRIBUTES = {status: status.value for status in Status}  # Status -> number attribute
SEQUENCE_DIGITS = 40  # DynamoDB Streams sequence numbers have 21 to 40 digits


@dataclass(frozen=True, order=True)
class RollupKey:
    """One rollup item's key: a UTC hour and a recipient country."""

    hour: datetime  # UTC, on the hour
    country: str

    @classmethod
    def of(cls, received_at: datetime, country: str | None) -> RollupKey:
        hour = received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(hour, (country or UNKNOWN_COUNTRY).upper())

    @property
    def day(self) -> str:
        return self.hour.strftime("%Y-%m-%d")

    @property
    def slot(self) -> str:
        return f"{self.hour.hour:02d}#{self.country}"

    def item_key(self) -> dict[str, dict[str, str]]:
        return {DAY: {"S": self.day}, SLOT: {"S": self.slot}}

    @classmethod
    def from_item(cls, day: str, slot: str) -> RollupKey:
        hour, _, country = slot.partition("#")
        return cls(datetime.strptime(day, "%Y-%m-%d").replace(hour=int(hour), tzinfo=UTC), country)


def slot_range(first_hour: int, last_hour: int) -> tuple[str, str]:
    """The sort-key bounds (for BETWEEN) of the slots from first_hour to last_hour, both included."""
    return f"{first_hour:02d}#", f"{last_hour:02d}#\uffff"


def watermark_key(shard_id: str) -> dict[str, dict[str, str]]:
    return {DAY: {"S": WATERMARK_DAY}, SLOT: {"S": shard_id}}


def padded(sequence_number: str) -> str:
    """A stream sequence number as text that sorts in its numeric order."""
    return sequence_number.zfill(SEQUENCE_DIGITS)


# --- maintaining the rollups from the stream (MetricsFunction) ------------------------------------
# Exactly once under Lambda's retries, bisects and replays: each shard's watermark (the last sequence
# number counted) moves in the same transaction as the counts it covers, so a record at or below it
# was counted already and is skipped, and a transaction that fails leaves neither counts nor watermark.

MAX_TRANSACTION_ACTIONS = 100  # DynamoDB API Reference, TransactWriteItems: "up to 100 action requests"
MAX_ROLLUPS_PER_TRANSACTION = MAX_TRANSACTION_ACTIONS - 1  # one action is the watermark's
WATERMARK_TTL = timedelta(days=2)  # a stream keeps records 24 hours: a watermark older than that guards nothing
# DynamoDB Developer Guide, "Amazon DynamoDB transactions: capacity management": a transactional write
# consumes 2 write units per 1 KB of the item written.
TRANSACTIONAL_UNITS_PER_KB = 2
_NUMBER_BYTES = 21  # the most a DynamoDB number takes (38 digits): an upper bound for a count or TTL


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


@dataclass(frozen=True)
class CountedRecord:
    """One stream record that counts: a TDR's INSERT, its rollup key and status."""

    sequence_number: str  # padded(): compares as numbers do
    key: RollupKey
    status: Status


def counted_record(
    sequence_number: str, received_at: str | None, country: str | None, status: Status, created_at: int | None
) -> CountedRecord:
    """The record's hour is the TDR's receivedAt, or the stream record's ApproximateCreationDateTime
    (epoch seconds) when the item has none (written by hand)."""
    when: datetime | None = None
    if received_at:
        try:
            when = datetime.fromisoformat(received_at)
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        when = datetime.fromtimestamp(created_at, UTC) if created_at is not None else datetime.now(UTC)
    return CountedRecord(padded(sequence_number), RollupKey.of(when, country), status)


def fresh_records(records: Iterable[CountedRecord], watermark: str | None) -> list[CountedRecord]:
    """The records above the shard's watermark, in stream order (the rest were counted already)."""
    ordered = sorted(records, key=lambda record: record.sequence_number)
    return [record for record in ordered if watermark is None or record.sequence_number > watermark]


@dataclass(frozen=True)
class Transaction:
    """One TransactWriteItems: the counts of an in-order run of records, and the watermark at its last."""

    counts: dict[RollupKey, dict[Status, int]]
    last_sequence_number: str  # padded
    records: int

    def actions(
        self, table: str, shard_id: str, previous: str | None, retention_days: int, now: datetime
    ) -> list[dict[str, Any]]:
        """The TransactItems: an Update per rollup item, then the watermark's, conditioned on where it was."""
        actions: list[dict[str, Any]] = [
            {"Update": _rollup_update(table, key, counts, retention_days)}
            for key, counts in sorted(self.counts.items())
        ]
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


def _rollup_update(table: str, key: RollupKey, counts: Mapping[Status, int], retention_days: int) -> dict[str, Any]:
    statuses = sorted(counts)
    names = {f"#s{i}": COUNT_ATTRIBUTES[status] for i, status in enumerate(statuses)}
    values = {f":n{i}": {"N": str(counts[status])} for i, status in enumerate(statuses)}
    # A rollup item expires retention_days after its hour, as its TDRs do (give or take the hour).
    values[":ttl"] = {"N": str(int((key.hour + timedelta(days=retention_days)).timestamp()))}
    adds = ", ".join(f"#s{i} :n{i}" for i in range(len(statuses)))
    return {
        "TableName": table,
        "Key": key.item_key(),
        "UpdateExpression": f"ADD {adds} SET {EXPIRES_AT} = :ttl",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def plan(records: Sequence[CountedRecord], max_rollups: int = MAX_ROLLUPS_PER_TRANSACTION) -> list[Transaction]:
    """Fresh records (in stream order) as transactions of at most max_rollups rollup items each.

    Each transaction is an in-order prefix of what is left, so a failure between two leaves a
    consistent prefix counted (with the watermark at its end) for the retry to skip.
    """
    transactions: list[Transaction] = []
    counts: dict[RollupKey, dict[Status, int]] = {}
    taken = 0
    for index, record in enumerate(records):
        if record.key not in counts and len(counts) == max_rollups:
            transactions.append(Transaction(counts, records[index - 1].sequence_number, taken))
            counts, taken = {}, 0
        per_status = counts.setdefault(record.key, {})
        per_status[record.status] = per_status.get(record.status, 0) + 1
        taken += 1
    if counts:
        transactions.append(Transaction(counts, records[-1].sequence_number, taken))
    return transactions


def _rollup_item_bytes(key: RollupKey) -> int:
    """An upper bound of a rollup item's size (DynamoDB Developer Guide, "Item sizes and formats"):
    attribute names and values, every status counted."""
    size = len(DAY) + len(key.day) + len(SLOT) + len(key.slot) + len(EXPIRES_AT) + _NUMBER_BYTES
    return size + sum(len(name) + _NUMBER_BYTES for name in COUNT_ATTRIBUTES.values())


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


def write_units(transactions: Iterable[Transaction]) -> float:
    """Write units the transactions consume: 2 per KB (rounded up) of each item written, watermark included."""
    units = 0
    for transaction in transactions:
        for key in transaction.counts:
            units += TRANSACTIONAL_UNITS_PER_KB * math.ceil(_rollup_item_bytes(key) / 1024)
        units += TRANSACTIONAL_UNITS_PER_KB * math.ceil(_WATERMARK_ITEM_BYTES / 1024)
    return float(units)


@dataclass(frozen=True)
class Applied:
    """What one batch did: records counted now, records skipped as counted before, transactions written."""

    counted: int
    skipped: int
    transactions: int


class RollupWriter:
    """Adds a shard's stream records to the rollup table, each once."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        retention_days: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_rollups: int = MAX_ROLLUPS_PER_TRANSACTION,
    ) -> None:
        self._client = client
        self._table = table_name
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

    def apply(self, shard_id: str, records: Sequence[CountedRecord]) -> Applied:
        if not shard_id:
            raise NoShardId
        previous = self.watermark(shard_id) if records else None
        fresh = fresh_records(records, previous)
        transactions = plan(fresh, self.max_rollups)
        for transaction in transactions:
            actions = transaction.actions(self._table, shard_id, previous, self._retention_days, self._now())
            try:
                self._client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
            except self._client.exceptions.TransactionCanceledException as error:
                reasons = error.response.get("CancellationReasons") or []
                if reasons and reasons[-1].get("Code") == "ConditionalCheckFailed":
                    raise WatermarkMoved(f"shard {shard_id}'s watermark moved past {previous}") from error
                raise
            previous = transaction.last_sequence_number
        return Applied(len(fresh), len(records) - len(fresh), len(transactions))
