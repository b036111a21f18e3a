"""Rebuilding the rollups of whole UTC hours from the TDR table: what `cinnox-sms rollups rebuild` does.

The stream consumer (MetricsFunction, rollup.RollupWriter) counts each TDR once from the table's stream; a
fault longer than the stream's 24 hours loses records, and then only the table knows. A rebuild reads the
whole table (a Scan, in parallel segments, strongly consistent) and sets the counts of every rollup item of
its hours (arrival and cohort views, time-to-final buckets) to the counts from the items, and writes the SMS
lists of its cohorts again. It is safe while the consumer counts, because the two agree on who counts what,
by a fence (rollup.Fences):

1. **Claim.** The rebuild publishes a fence for its hours, ``at`` = AWS's clock (the Date of its own call)
   plus CLOCK_MARGIN. From then on, in those hours, the consumer (and the early-final pairing of the
   no-final-status check) drops every contribution made before the fence (a TDR received before it; a
   cohort pair whose two TDRs were both stored before it), and adds every later one to the count and to a
   shadow attribute of this rebuild (``Delivered@<token>``).
2. **Scan**, once every TDR received before the fence is stored (WRITE_MARGIN after it): the contributions
   before the fence are counted from the items, those after it are left to the consumer.
3. **Write**, once the consumer invocations that read the fences before the claim have ended
   (STALE_WRITER_SECONDS after it): each rollup item of the hours gets, in one UpdateItem, count = what the
   rebuild counted + its shadow (what the consumer added since it saw the fence), conditioned on no later
   rebuild having written it. What the consumer had added before the claim is replaced, whether it was
   right, twice or lost. The SMS lists of the hours' cohorts are written again (they are sets: an SMS listed
   twice is listed once).
4. **Release.** The fence is marked done (the consumer keeps no shadow any more) and the shadows removed;
   the fence itself stays, so that a record of those hours still in the stream, older than the fence, is
   never counted on top of the rebuild's count.

An hour being counted while it is rebuilt therefore ends with each of its TDRs counted once: by the rebuild
if it was received before the fence, by the consumer otherwise. Until step 3 it shows what the consumer
counted before the claim plus what came after; a TDR received before the fence and counted by neither yet
is shown once the rebuild writes. An interrupted rebuild leaves its hours without the contributions before
its fence that the consumer had not counted yet: run it again (the later fence supersedes).
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from cinnox_sms.metrics import stored_tdr
from cinnox_sms.moments import received_moment
from cinnox_sms.rollup import (
    COHORT_ATTRIBUTES,
    COUNT_ATTRIBUTES,
    DAY,
    EXPIRES_AT,
    FENCE_VERSION,
    FENCES,
    FINAL_STATUSES,
    FINALS_LIST,
    MAX_KEY_BYTES,
    MAX_LIST_ITEM_BYTES,
    SLOT,
    SMS_LIST_DAYS,
    SMS_LIST_SUFFIX,
    SUBMITTED_LIST,
    TTF_ATTRIBUTES,
    Fence,
    Fences,
    RollupKey,
    SmsList,
    fence_key,
    iso,
    list_put,
    pair_counts,
    read_fences,
    slot_range,
)
from cinnox_sms.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOUR = timedelta(hours=1)
# Every number attribute of a rollup item: each is set by a rebuild (0 when none counted).
COUNTED_ATTRIBUTES: tuple[str, ...] = (
    *COUNT_ATTRIBUTES.values(),
    *COHORT_ATTRIBUTES.values(),
    *(attribute for status in FINAL_STATUSES for attribute in TTF_ATTRIBUTES[status]),
)
REBUILT_AT = "rebuiltAt"  # on a rollup item: the fence of the rebuild that last wrote it
# The fence lies this far after AWS's clock when it is published: the claim must be in place before any TDR
# received at or after the fence is counted (the webhook's and AWS's clocks agree to well within it).
CLOCK_MARGIN = timedelta(seconds=10)
# A TDR's receivedAt is stamped before it is written: WebhookFunction's Timeout (10 s) bounds by how much;
# the Scan starts this long after the fence so that it sees every TDR received before it.
WRITE_MARGIN = timedelta(seconds=60)
# A consumer invocation that read the fences before the claim may still add what the rebuild counts until it
# ends: the longest Timeout of the functions that add to the rollups (NoFinalStatusFunction's 300 s;
# MetricsFunction's 30 s), plus 30 s for a request in flight. The counts are written after it.
STALE_WRITER_SECONDS = 330.0
# DynamoDB API Reference, Scan: TotalSegments is 1 to 1,000,000; a page holds at most 1 MB of items.
MAX_TOTAL_SEGMENTS = 1_000_000
SCAN_PAGE_BYTES = 1024 * 1024
DEFAULT_SEGMENTS = 8
# DynamoDB Developer Guide, "Read/write capacity mode" (on-demand): a strongly consistent read takes one read
# unit per 4 KB; a Scan is charged on the size of the items it reads, not on what it returns.
READ_UNIT_BYTES = 4096
# DynamoDB on-demand pricing, https://aws.amazon.com/dynamodb/pricing/on-demand/ (us-east-1, read request
# units; devrig/bench/run.py's PRICES["dynamodb_on_demand_read_units_per_million"], checked by a test).
READ_UNITS_USD_PER_MILLION = 0.125
_TDR_ATTRIBUTES = ("transactionId", "status", "receivedAt", "recipientCountry")
_REBUILT_LIST = "rebuilt-"  # the slot suffix of the SMS list items a rebuild writes: rebuilt-000, ...


@dataclass(frozen=True)
class ReadCost:
    """What the Scan is expected to read, from DescribeTable (its size and count are updated about every six
    hours: an estimate)."""

    table_bytes: int
    items: int
    segments: int

    @property
    def read_units(self) -> float:
        return math.ceil(self.table_bytes / READ_UNIT_BYTES) if self.table_bytes else 0.0

    @property
    def usd(self) -> float:
        return self.read_units * READ_UNITS_USD_PER_MILLION / 1e6

    @property
    def pages(self) -> int:
        """Scan calls at least: each page is at most 1 MB, each segment one page or more."""
        return max(self.segments, math.ceil(self.table_bytes / SCAN_PAGE_BYTES))


def read_cost(client: DynamoDBClient, tdr_table: str, segments: int) -> ReadCost:
    table = client.describe_table(TableName=tdr_table)["Table"]
    return ReadCost(int(table.get("TableSizeBytes", 0)), int(table.get("ItemCount", 0)), segments)


@dataclass(frozen=True)
class StoredForRebuild:
    """One TDR as a rebuild reads it, as the consumer reads its stream record (metrics.stored_tdr)."""

    transaction_id: str | None  # None when too long to key an SMS list (as the consumer keeps it)
    status: Status
    received_at: datetime | None  # None: no usable receivedAt (a hand edit): in no hour a rebuild knows
    country: str | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any], now: datetime | None = None) -> StoredForRebuild | None:
        image = {name: _DESERIALIZE.deserialize(value) for name, value in item.items()}
        found = stored_tdr("INSERT", image)
        if found is None:
            return None  # not a TDR (the consumer skips it too)
        tdr, status = found
        tid = tdr.transaction_id if len(tdr.transaction_id.encode()) <= MAX_KEY_BYTES else None
        return cls(tid, status, received_moment(tdr.received_at, now), tdr.recipient_country)


_DESERIALIZE = TypeDeserializer()


@dataclass
class Rebuilt:
    """The rollups of the hours start to end (excluded) from the items: the counts of what came before the
    fence, and the SMS lists of the hours' cohorts (every SMS seen: a list is a set)."""

    start: datetime
    end: datetime
    fence: datetime
    counts: dict[RollupKey, dict[str, int]] = field(default_factory=dict)
    lists: dict[RollupKey, SmsList] = field(default_factory=dict)

    def covers(self, key: RollupKey) -> bool:
        return self.start <= key.hour < self.end

    def add(self, key: RollupKey, counts: Mapping[str, int], when: datetime) -> None:
        if not self.covers(key) or when >= self.fence:
            return  # another hour, or the consumer's (Fences.owned)
        into = self.counts.setdefault(key, {})
        for attribute, n in counts.items():
            into[attribute] = into.get(attribute, 0) + n


def count_items(tdrs: Iterable[StoredForRebuild], start: datetime, end: datetime, fence: datetime) -> Rebuilt:
    """Counts as the consumer counts them (rollup._Planner), from the items rather than the stream: each TDR in
    the hour it was received; each final status against its SMS's Submitted TDR, with its time to it."""
    rebuilt = Rebuilt(start, end, fence)
    submitted: dict[str, StoredForRebuild] = {}
    finals: dict[str, list[StoredForRebuild]] = {}
    for tdr in tdrs:
        if tdr.received_at is None:
            continue  # no hour to count it in (the stream counts it under its own time)
        rebuilt.add(RollupKey.of(tdr.received_at, tdr.country), {COUNT_ATTRIBUTES[tdr.status]: 1}, tdr.received_at)
        if tdr.transaction_id is None:
            continue
        if tdr.status == Status.SUBMITTED:
            submitted[tdr.transaction_id] = tdr
        else:
            finals.setdefault(tdr.transaction_id, []).append(tdr)
    for tid, sent in submitted.items():
        sent_at = sent.received_at or start  # always set: TDRs without one were left out above
        key = RollupKey.of(sent_at, sent.country)
        if not rebuilt.covers(key):
            continue
        sms = rebuilt.lists.setdefault(key, SmsList())
        sms.submitted[tid] = iso(sent_at)
        statuses = []
        for final in finals.get(tid, []):
            final_at = final.received_at or sent_at
            seconds = (final_at - sent_at).total_seconds()
            rebuilt.add(key, pair_counts(final.status, seconds), max(final_at, sent_at))
            statuses.append(final.status.value)
        if statuses:
            sms.finals[tid] = ",".join(sorted(statuses))
    return rebuilt


# --- the Scan -------------------------------------------------------------------------------------------


def scan_segment(
    client: DynamoDBClient, table: str, segment: int, segments: int, on_page: Callable[[int], None]
) -> Iterator[dict[str, Any]]:
    """One segment's items, page by page (a page is at most 1 MB: LastEvaluatedKey says there is more)."""
    arguments: dict[str, Any] = {
        "TableName": table,
        "Segment": segment,
        "TotalSegments": segments,
        "ConsistentRead": True,  # every TDR stored before the Scan began, none missed by a lagging replica
        "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(_TDR_ATTRIBUTES))),
        "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(_TDR_ATTRIBUTES)},
    }
    while True:
        page = client.scan(**arguments)
        on_page(len(page["Items"]))
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_tdrs(
    client: DynamoDBClient,
    table: str,
    segments: int,
    on_page: Callable[[int], None] = lambda n: None,
    workers: int = 32,
) -> list[StoredForRebuild]:
    """Every TDR of the table, read in `segments` segments, `workers` of them at a time."""
    if not 1 <= segments <= MAX_TOTAL_SEGMENTS:
        raise ValueError(f"segments must be 1 to {MAX_TOTAL_SEGMENTS:,} (DynamoDB's TotalSegments), not {segments}")
    now = datetime.now(UTC)

    def one(segment: int) -> list[StoredForRebuild]:
        read = (StoredForRebuild.from_item(i, now) for i in scan_segment(client, table, segment, segments, on_page))
        return [tdr for tdr in read if tdr is not None]

    with ThreadPoolExecutor(max_workers=max(1, min(segments, workers))) as pool:
        return [tdr for part in pool.map(one, range(segments)) for tdr in part]


# --- writing ------------------------------------------------------------------------------------------------


def count_update(
    table: str, key: RollupKey, counts: Mapping[str, int], fence: Fence, retention_days: int
) -> dict[str, Any]:
    """The UpdateItem that sets every count of one rollup item to what the rebuild counted plus its shadow (what
    the consumer added since it saw the fence), unless a later rebuild wrote the item."""
    names = {"#r": REBUILT_AT, "#e": EXPIRES_AT}
    values: dict[str, Any] = {
        ":zero": {"N": "0"},
        ":at": {"S": iso(fence.at)},
        ":ttl": {"N": str(int((key.hour + timedelta(days=retention_days)).timestamp()))},
    }
    sets = []
    for i, attribute in enumerate(COUNTED_ATTRIBUTES):
        names[f"#a{i}"], names[f"#s{i}"] = attribute, fence.shadow(attribute)
        values[f":c{i}"] = {"N": str(counts.get(attribute, 0))}
        sets.append(f"#a{i} = :c{i} + if_not_exists(#s{i}, :zero)")
    return {
        "TableName": table,
        "Key": key.item_key(),
        "UpdateExpression": f"SET {', '.join(sets)}, #r = :at, #e = :ttl",
        "ConditionExpression": "attribute_not_exists(#r) OR #r <= :at",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def shadow_removal(table: str, key: RollupKey, fence: Fence) -> dict[str, Any]:
    """The UpdateItem that removes a finished rebuild's shadows from one rollup item (if it exists)."""
    names = {f"#s{i}": fence.shadow(attribute) for i, attribute in enumerate(COUNTED_ATTRIBUTES)}
    return {
        "TableName": table,
        "Key": key.item_key(),
        "UpdateExpression": "REMOVE " + ", ".join(names),
        "ConditionExpression": "attribute_exists(#d)",  # its key: an item that is not there is not made
        "ExpressionAttributeNames": names | {"#d": DAY},
    }


def list_chunks(sms: SmsList) -> list[SmsList]:
    """An hour and country's SMS as list items of at most MAX_LIST_ITEM_BYTES of entries each (an item is at
    most 400 KB), in a fixed order: a second rebuild writes the same items."""
    chunks: list[SmsList] = [SmsList()]
    size = 0
    for name, entries in ((SUBMITTED_LIST, sms.submitted), (FINALS_LIST, sms.finals)):
        for tid, value in sorted(entries.items()):
            entry = len(tid.encode()) + len(value.encode()) + 1
            if size + entry > MAX_LIST_ITEM_BYTES:
                chunks.append(SmsList())
                size = 0
            getattr(chunks[-1], name)[tid] = value
            size += entry
    return chunks


def list_writes(table: str, key: RollupKey, sms: SmsList, retention_days: int) -> list[dict[str, Any]]:
    return [
        list_put(table, key, f"{_REBUILT_LIST}{n:03d}", chunk, retention_days)
        for n, chunk in enumerate(list_chunks(sms))
    ]


def existing_keys(client: DynamoDBClient, table: str, start: datetime, end: datetime) -> set[RollupKey]:
    """The rollup items of the hours (one Query per UTC day, as the report reads them)."""
    keys: set[RollupKey] = set()
    day = start.replace(hour=0)
    while day < end:
        first, last = max(start, day), min(end, day + timedelta(days=1)) - HOUR
        low, high = slot_range(first.hour, last.hour)
        arguments: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#d = :d AND #s BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#d": DAY, "#s": SLOT},
            "ExpressionAttributeValues": {
                ":d": {"S": day.strftime("%Y-%m-%d")},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            "ProjectionExpression": "#d, #s",
            "ConsistentRead": True,
        }
        while True:
            page = client.query(**arguments)
            keys |= {RollupKey.from_item(i[DAY]["S"], i[SLOT]["S"]) for i in page["Items"]}
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        day += timedelta(days=1)
    return keys


def stale_list_items(client: DynamoDBClient, table: str, key: RollupKey, keep: int) -> list[dict[str, Any]]:
    """The keys of a previous rebuild's list items of one hour and country beyond the `keep` written now."""
    base = f"{key.slot}#{_REBUILT_LIST}"
    page = client.query(
        TableName=table,
        KeyConditionExpression="#d = :d AND begins_with(#s, :prefix)",
        ExpressionAttributeNames={"#d": DAY, "#s": SLOT},
        ExpressionAttributeValues={":d": {"S": key.day + SMS_LIST_SUFFIX}, ":prefix": {"S": base}},
        ProjectionExpression="#d, #s",
    )
    return [{DAY: i[DAY], SLOT: i[SLOT]} for i in page["Items"] if int(i[SLOT]["S"].removeprefix(base) or 0) >= keep]


# --- the fence ------------------------------------------------------------------------------------------------


def aws_now(response: Mapping[str, Any]) -> datetime | None:
    """AWS's clock, from a response's Date header (whole seconds), if it has one."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    return email.utils.parsedate_to_datetime(date).astimezone(UTC) if date else None


def pruned(entries: Iterable[Fence], now: datetime, retention_days: int) -> list[Fence]:
    """The fences still worth keeping: not every hour covered by a later fence, nor every hour expired."""
    kept = list(entries)

    def superseded(fence: Fence) -> bool:
        hour = fence.start
        while hour < fence.end:
            if not any(other.at > fence.at and other.covers(hour) for other in kept):
                return False
            hour += HOUR
        return True

    expired = now - timedelta(days=retention_days)
    return [fence for fence in kept if fence.end > expired and not superseded(fence)]


def write_fences(
    client: DynamoDBClient, table: str, change: Callable[[Fences], list[Fence]], attempts: int = 10
) -> dict[str, Any]:
    """Read the fence item, change its entries, write them back if no one else did meanwhile (its version);
    returns the Put's answer."""
    for _ in range(attempts):
        fences = read_fences(client, table)
        put: dict[str, Any] = {
            "TableName": table,
            "Item": fence_key()
            | {
                FENCES: {"L": [fence.as_value() for fence in change(fences)]},
                FENCE_VERSION: {"N": str(fences.version + 1)},
            },
            "ConditionExpression": f"attribute_not_exists({FENCE_VERSION})",
        }
        if fences.version:
            put["ConditionExpression"] = f"{FENCE_VERSION} = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(fences.version)}}
        try:
            return dict(client.put_item(**put))
        except client.exceptions.ConditionalCheckFailedException:
            continue  # another rebuild wrote it: read it again
    raise RuntimeError(f"the fence item kept changing: {attempts} attempts")


# --- the whole rebuild -------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What a rebuild tells as it goes (the command line draws it); each is called from any thread."""

    scanned: Callable[[int], None] = lambda items: None  # items read by one more page
    written: Callable[[int, int], None] = lambda done, total: None  # rollup items written, of total
    waiting: Callable[[float, str], None] = lambda seconds, why: None


@dataclass(frozen=True)
class Outcome:
    fence: Fence
    tdrs: int  # TDRs read
    items: int  # rollup items written
    superseded: int  # rollup items a later rebuild had written: left to it
    lists: int  # SMS list items written
    counts: dict[RollupKey, dict[str, int]]  # what the rebuild counted (before the fence)


class Rebuild:
    """Rebuilds the rollups of whole hours, start to end (excluded), from the TDR table."""

    def __init__(
        self,
        client: DynamoDBClient,
        tdr_table: str,
        rollup_table: str,
        retention_days: int,
        *,
        segments: int = DEFAULT_SEGMENTS,
        workers: int = 8,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stale_writer_seconds: float = STALE_WRITER_SECONDS,
        write_margin: timedelta = WRITE_MARGIN,
    ) -> None:
        self._client = client
        self._tdrs = tdr_table
        self._rollups = rollup_table
        self._retention_days = retention_days
        self._segments = segments
        self._workers = workers
        self._clock = clock
        self._sleep = sleep
        self._stale = stale_writer_seconds
        self._write_margin = write_margin
        self._offset = timedelta(0)  # AWS's clock less this machine's

    def now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(UTC) + self._offset

    def claim(self, start: datetime, end: datetime) -> tuple[Fence, float]:
        """Publish the fence of the hours; returns it and the monotonic time it was published at."""
        if self._clock is None:  # AWS's clock, not this machine's: the fence is compared with TDRs' receivedAt
            read = self._client.get_item(TableName=self._rollups, Key=fence_key(), ProjectionExpression=DAY)
            aws = aws_now(read)
            self._offset = (aws - datetime.now(UTC)) if aws else timedelta(0)
        fence = Fence(secrets.token_hex(4), start, end, self.now().replace(microsecond=0) + CLOCK_MARGIN)
        published = time.monotonic()
        answer = write_fences(
            self._client,
            self._rollups,
            lambda fences: pruned([*fences.entries, fence], self.now(), self._retention_days),
        )
        after = aws_now(answer) if self._clock is None else None  # the Put's answer
        if after is not None and after + timedelta(seconds=1) >= fence.at:
            raise RuntimeError("publishing the fence took longer than its margin: run the rebuild again")
        return fence, published

    def release(self, fence: Fence) -> None:
        done = replace(fence, counting=False)
        write_fences(
            self._client,
            self._rollups,
            lambda fences: [done if f.token == fence.token else f for f in fences.entries],
        )

    def _wait_until(self, moment: datetime, why: str, progress: Progress) -> None:
        seconds = (moment - self.now()).total_seconds()
        if seconds > 0:
            progress.waiting(seconds, why)
            self._sleep(seconds)

    def run(self, start: datetime, end: datetime, progress: Progress | None = None) -> Outcome:
        progress = progress or Progress()
        fence, published = self.claim(start, end)
        self._wait_until(fence.at + self._write_margin, "every TDR received before the fence to be stored", progress)
        tdrs = scan_tdrs(self._client, self._tdrs, self._segments, progress.scanned, self._workers)
        rebuilt = count_items(tdrs, start, end, fence.at)
        keys = sorted(existing_keys(self._client, self._rollups, start, end) | rebuilt.counts.keys())
        stale = self._stale - (time.monotonic() - published)
        if stale > 0:
            progress.waiting(stale, "the counters that read the fences before the claim to end")
            self._sleep(stale)
        written, superseded, lists = self._write(keys, rebuilt, fence, progress)
        self.release(fence)
        # Every item of the hours, those the consumer made since the rebuild listed them too (their counts are
        # the consumer's alone: all it added came after the fence).
        every = existing_keys(self._client, self._rollups, start, end)
        self._each(sorted(every), lambda key: self._remove_shadows(key, fence))
        return Outcome(fence, len(tdrs), written, superseded, lists, rebuilt.counts)

    def _each(self, keys: Iterable[Any], work: Callable[[Any], Any]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            return list(pool.map(work, keys))

    def _write(self, keys: list[RollupKey], rebuilt: Rebuilt, fence: Fence, progress: Progress) -> tuple[int, int, int]:
        lock = threading.Lock()
        done = [0]

        def count(key: RollupKey) -> bool:
            try:
                update = count_update(self._rollups, key, rebuilt.counts.get(key, {}), fence, self._retention_days)
                self._client.update_item(**update)
                wrote = True
            except self._client.exceptions.ConditionalCheckFailedException:
                wrote = False  # a later rebuild wrote this item: its counts hold
            with lock:
                done[0] += 1
                progress.written(done[0], len(keys))
            return wrote

        def sms(key: RollupKey) -> int:
            puts = list_writes(self._rollups, key, rebuilt.lists[key], self._retention_days)
            expiry = key.hour + timedelta(days=min(self._retention_days, SMS_LIST_DAYS))
            if expiry <= self.now():
                return 0  # expired already: `pending` and the check read back SMS_LIST_DAYS
            for put in puts:
                self._client.put_item(**put)
            for stale in stale_list_items(self._client, self._rollups, key, len(puts)):
                self._client.delete_item(TableName=self._rollups, Key=stale)
            return len(puts)

        wrote = self._each(keys, count)
        lists = sum(self._each(sorted(rebuilt.lists), sms))
        return sum(wrote), len(wrote) - sum(wrote), lists

    def _remove_shadows(self, key: RollupKey, fence: Fence) -> None:
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):  # no such item
            self._client.update_item(**shadow_removal(self._rollups, key, fence))
