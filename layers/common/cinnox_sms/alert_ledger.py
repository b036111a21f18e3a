"""The record of which failed SMS were alerted, kept on the TDR items themselves.

The webhook writes each Undelivered or Rejected TDR with ``alertDue`` (a shard of the sparse
``AlertsDue`` index, sorted by ``receivedAt``): the failures not yet alerted. Whoever publishes an
alert then records it on the item (``alertedAt`` set, ``alertDue`` removed, so the index holds only
what is still owed). That record, not the stream, is what a retry consults and what the overdue
sweep (cinnox_sms.overdue) reads, so an alert outlives the stream's 24 hours.

Two publishers, never at once for one item: the stream path (AlertFunction) takes a failure while it is
younger than ``grace - STREAM_MARGIN``, the sweep once it is older than ``grace``. The margin is longer
than the alert function's Timeout, so a stream invocation that decided to publish has recorded it (or
died) before the sweep can see the item as due. Between a publish and its record (a crash, a timeout, an
answer lost in transit) an alert can go out twice: docs/alerts.md names that window.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.item import StoredTdr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The names template.yaml gives the index and its key; tests create the table from the template, so a
# drift fails them.
DUE_INDEX = "AlertsDue"
ALERT_DUE = "alertDue"  # the index's partition key: a shard, "0".."9"; absent once alerted
ALERTED_AT = "alertedAt"  # when the alert was published (ISO 8601, UTC)
ALERT_CLAIM = "alertClaim"  # the sweep's lease on an item while it publishes it (ISO 8601, UTC)
# One value would put every failure in one index partition (about 1,000 writes a second, "Best practices
# for designing and using partition keys effectively"); ten spread a burst of failures, and a sweep reads
# ten partitions.
DUE_SHARDS = 10
# Longer than the alert function's Timeout (30 s, template.yaml; a test checks) with room for clock skew.
STREAM_MARGIN = timedelta(minutes=5)
# Records written at once: botocore's connection pool holds 10 (Config max_pool_connections).
RECORD_THREADS = 10
# What the record says of a failure (AlertLedger.states).
ALERTED, DUE, UNTRACKED = "alerted", "due", "untracked"

_TRANSACTION_ID = StoredTdr.attribute("transaction_id")
_STATUS = StoredTdr.attribute("status")
_RECEIVED_AT = StoredTdr.attribute("received_at")


def due_shard(transaction_id: str) -> str:
    """The index partition of a failure not yet alerted: any of the shards would do; this one spreads them."""
    return str(zlib.crc32(transaction_id.encode()) % DUE_SHARDS)


def key(transaction_id: str, status: str) -> dict[str, dict[str, str]]:
    return {_TRANSACTION_ID: {"S": transaction_id}, _STATUS: {"S": status}}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class LedgerUnavailable(RuntimeError):
    """The record could not be read: nothing is published (the stream retries)."""


@dataclass(frozen=True)
class Due:
    """One failure the index holds as not yet alerted."""

    transaction_id: str
    status: str
    received_at: str


class AlertLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """What the record says of each (transaction ID, status): ALERTED (or claimed by a sweep right now),
        DUE (on the index, not yet alerted) or UNTRACKED (not in the table, or stored before the index was).

        Strongly consistent: a retry must see the record its previous attempt wrote a moment ago.
        """
        from cinnox_sms.rollup import batch_get  # BatchGetItem with back-off

        if not keys:
            return {}
        names = {"#t": _TRANSACTION_ID, "#s": _STATUS, "#a": ALERTED_AT, "#c": ALERT_CLAIM, "#d": ALERT_DUE}
        try:
            items = batch_get(
                self._client,
                self._table,
                [key(tid, status) for tid, status in dict.fromkeys(keys)],
                ConsistentRead=True,
                ProjectionExpression="#t, #s, #a, #c, #d",
                ExpressionAttributeNames=names,
            )
        except (ClientError, BotoCoreError, RuntimeError) as error:
            raise LedgerUnavailable(f"BatchGetItem failed: {error}") from error
        states = dict.fromkeys(keys, UNTRACKED)
        for item in items:
            found = (item[_TRANSACTION_ID]["S"], item[_STATUS]["S"])
            if ALERTED_AT in item or ALERT_CLAIM in item:
                states[found] = ALERTED
            elif ALERT_DUE in item:
                states[found] = DUE
        return states

    def record(self, keys: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        """Record these alerts as published: ``alertedAt`` set, off the index, any claim released.

        One UpdateItem each (a BatchWriteItem cannot update), up to RECORD_THREADS at once: a batch of 100
        alerts waits for 10 round trips, not 100. An item gone (its TTL) is not written back. Returns why, for
        each record not written: those alerts may go out again (the named window).
        """
        if len(keys) <= 1:
            return [problem for k in keys if (problem := self._record(k, timestamp(now)))]
        from concurrent.futures import ThreadPoolExecutor  # boto3 clients are thread-safe

        with ThreadPoolExecutor(max_workers=min(RECORD_THREADS, len(keys))) as pool:
            done = list(pool.map(self._record, keys, [timestamp(now)] * len(keys)))
        return [problem for problem in done if problem]

    def _record(self, alert_key: tuple[str, str], now: str) -> str | None:
        transaction_id, status = alert_key
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(transaction_id, status),
                UpdateExpression="SET #a = :now REMOVE #d, #c",
                ConditionExpression="attribute_exists(#t)",
                ExpressionAttributeNames={"#a": ALERTED_AT, "#d": ALERT_DUE, "#c": ALERT_CLAIM, "#t": _TRANSACTION_ID},
                ExpressionAttributeValues={":now": {"S": now}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                return f"{transaction_id}/{status}: {error}"
        except BotoCoreError as error:
            return f"{transaction_id}/{status}: {error}"
        return None

    def due(self, before: datetime) -> Iterator[Due]:
        """The failures not yet alerted that were received before this moment, shard by shard (eventually
        consistent: the index has no other kind, "Using Global Secondary Indexes in DynamoDB")."""
        for shard in range(DUE_SHARDS):
            request: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "#d = :shard AND #r < :before",
                "ExpressionAttributeNames": {"#d": ALERT_DUE, "#r": _RECEIVED_AT},
                "ExpressionAttributeValues": {":shard": {"S": str(shard)}, ":before": {"S": timestamp(before)}},
            }
            while True:
                page = self._client.query(**request)
                for item in page.get("Items", []):
                    yield Due(item[_TRANSACTION_ID]["S"], item[_STATUS]["S"], item[_RECEIVED_AT]["S"])
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim(self, due: Due, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        """Take a due failure for one sweep: its whole item, or None when it is alerted or another sweep
        holds a live claim (a conditional UpdateItem: one claimant wins)."""
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=key(due.transaction_id, due.status),
                UpdateExpression="SET #c = :now",
                ConditionExpression=(
                    "attribute_exists(#d) AND attribute_not_exists(#a) AND (attribute_not_exists(#c) OR #c < :stale)"
                ),
                ExpressionAttributeNames={"#c": ALERT_CLAIM, "#d": ALERT_DUE, "#a": ALERTED_AT},
                ExpressionAttributeValues={":now": {"S": timestamp(now)}, ":stale": {"S": timestamp(now - lease)}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return answer["Attributes"]

    def release(self, keys: Sequence[tuple[str, str]]) -> None:
        """Give up the claims of alerts not published, for the next sweep (best effort: a claim also lapses)."""
        for transaction_id, status in keys:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.update_item(
                    TableName=self._table,
                    Key=key(transaction_id, status),
                    UpdateExpression="REMOVE #c",
                    ConditionExpression="attribute_exists(#t)",
                    ExpressionAttributeNames={"#c": ALERT_CLAIM, "#t": _TRANSACTION_ID},
                )
