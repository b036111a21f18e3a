"""Rollups kept by MetricsFunction from the stream: exact under retries, bisects, partial retries and replays.

Every test compares the rollup table with the counts computed from the TDR items themselves (by the hour
each was received, its recipient country and status), through real TransactWriteItems against moto.

AWS rules relied on:
- Lambda Developer Guide, "Using AWS Lambda with Amazon DynamoDB", tumbling windows (services-ddb-windows):
  shardId, window, state and isFinalInvokeForWindow in the event; an answer without "state" is a failed
  invocation; the final invoke of a window may carry no records.
- Lambda Developer Guide, "Configuring partial batch response" / BisectBatchOnFunctionError: a failed batch
  is retried whole, from a record within it, or in halves.
- DynamoDB API Reference, TransactWriteItems: all or nothing, at most 100 actions.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cinnox_sms.item import StoredTdr
from cinnox_sms.model import Tdr
from cinnox_sms.rollup import (
    COHORT_ATTRIBUTES,
    COUNT_ATTRIBUTES,
    DAY,
    SEQUENCE_NUMBER,
    SLOT,
    TTF_ATTRIBUTES,
    WATERMARK_DAY,
    NoShardId,
    RollupKey,
    RollupWriter,
    SubmissionArrived,
    WatermarkMoved,
    counted_record,
    early_key,
    padded,
    pair_counts,
    pair_early,
    watermark_key,
)
from cinnox_sms.settings import RollupSettings
from cinnox_sms.status import Status
from support import LambdaContext, Stack, stream_records, tdr

HOUR = datetime(2026, 11, 29, 7, tzinfo=UTC)
Counts = Counter[tuple[str, str, str]]  # (day, slot, status attribute) -> count


# --- helpers -----------------------------------------------------------------------------------


def store(stack: Stack, status: str, country: str | None, received_at: datetime) -> None:
    """A TDR as the webhook stores it (same item), received at a chosen moment."""
    body = tdr(Status=status, RecipientCountry=country if country else ...)
    item = StoredTdr.item_from_tdr(Tdr.model_validate(body), "{}", received_at, received_at + timedelta(days=400))
    boto3.client("dynamodb").put_item(TableName=stack.table_name, Item=item)


def store_day(stack: Stack) -> None:
    """A mix of statuses, countries (one TDR with none) and hours, two days."""
    plan = [
        ("Submitted", "HK", HOUR),
        ("Delivered", "HK", HOUR + timedelta(minutes=5)),
        ("Submitted", "SG", HOUR + timedelta(minutes=59, seconds=59)),
        ("Undelivered", "SG", HOUR + timedelta(hours=1)),  # a late terminal status: its own hour
        ("Rejected", "HK", HOUR + timedelta(hours=1, minutes=30)),
        ("Submitted", None, HOUR + timedelta(hours=2)),
        ("Delivered", "GB", HOUR + timedelta(hours=17)),  # the next UTC day
        ("Submitted", "HK", HOUR + timedelta(minutes=10)),
        ("Delivered", "SG", HOUR + timedelta(minutes=20)),
        ("Rejected", "GB", HOUR + timedelta(hours=17, minutes=1)),
    ]
    for status, country, received_at in plan:
        store(stack, status, country, received_at)


def from_items(stack: Stack) -> Counts:
    """The counts as the TDR items say: hour received x recipient country x status."""
    expected: Counts = Counter()
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=stack.table_name):
        for item in page["Items"]:
            stored = StoredTdr.from_item(item)
            assert stored.received_at is not None
            key = RollupKey.of(datetime.fromisoformat(stored.received_at), stored.recipient_country)
            expected[(key.day, key.slot, COUNT_ATTRIBUTES[Status(stored.status)])] += 1
    return expected


def rollups(table: str) -> Counts:
    """The rollup table's counts (watermarks left out; zero counts are no counts)."""
    found: Counts = Counter()
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if "#" in item[DAY]["S"]:
                continue  # watermarks, SMS lists, early finals
            for attribute in COUNT_ATTRIBUTES.values():
                if attribute in item and int(item[attribute]["N"]):
                    found[(item[DAY]["S"], item[SLOT]["S"], attribute)] += int(item[attribute]["N"])
    return found


def watermarks(table: str) -> dict[str, str]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return {i[SLOT]["S"]: i[SEQUENCE_NUMBER]["S"] for i in items if i[DAY]["S"] == WATERMARK_DAY}


def shard_of(stack: Stack) -> str:
    """The stream's real shard id (moto's table has one shard)."""
    arn = stack.attrs["TdrTable.StreamArn"]
    [shard] = boto3.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    return str(shard["ShardId"])


def window_event(records: list[dict[str, Any]], shard_id: str, **extra: Any) -> dict[str, Any]:
    """The event a mapping with a tumbling window sends (Lambda Developer Guide, services-ddb-windows)."""
    return {
        "Records": records,
        "window": {"start": "2026-11-29T07:00:00Z", "end": "2026-11-29T07:15:00Z"},
        "state": {},
        "shardId": shard_id,
        "eventSourceARN": records[0]["eventSourceARN"] if records else "",
        "isFinalInvokeForWindow": False,
        "isWindowTerminatedEarly": False,
        **extra,
    }


class FlakyDynamoDB:
    """A DynamoDB client whose n-th TransactWriteItems fails (as a throttle or a timeout would), after
    the earlier ones went through."""

    def __init__(self, fail_on: int) -> None:
        self._client = boto3.client("dynamodb")
        self._fail_on = fail_on
        self.transactions = 0

    def transact_write_items(self, **arguments: Any) -> Any:
        self.transactions += 1
        if self.transactions == self._fail_on:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "TransactWriteItems")
        return self._client.transact_write_items(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def use_writer(monkeypatch: pytest.MonkeyPatch, module: ModuleType, client: Any = None, max_rollups: int = 99) -> None:
    """The handler's rollup writer, over a chosen client and with small transactions (to split a small batch)."""
    settings = RollupSettings.from_env()
    client = client or boto3.client("dynamodb")
    writer = RollupWriter(
        client,
        settings.table_name,
        settings.retention_days,
        max_rollups=max_rollups,
        tdr_table_name=settings.tdr_table_name,
    )
    # Cached, as the handler's own: the fixture clears it after the test.
    monkeypatch.setattr(module, "rollup_writer", functools.cache(lambda: writer))


def stored_day(stack: Stack) -> tuple[list[dict[str, Any]], str]:
    """A day of TDRs stored: their stream records and their shard."""
    store_day(stack)
    return stream_records(stack), shard_of(stack)


def failed_after_a_partial_write(
    stack: Stack, module: ModuleType, monkeypatch: pytest.MonkeyPatch, context: LambdaContext
) -> tuple[list[dict[str, Any]], str]:
    """A day stored, and its batch failed after its first transaction (of several) went through:
    the records and their shard, and a writer that works again for what the test does next."""
    records, shard = stored_day(stack)
    # 4 actions a transaction: a few records each (a list or an early final takes actions of its own)
    use_writer(monkeypatch, module, FlakyDynamoDB(fail_on=2), max_rollups=4)
    with pytest.raises(ClientError, match="ThrottlingException"):
        module.lambda_handler(window_event(records, shard), context)
    use_writer(monkeypatch, module, max_rollups=4)
    return records, shard


# --- tests ---------------------------------------------------------------------------------------


def test_a_plain_run_counts_each_tdr_by_hour_country_and_status(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given a day's TDRs on the stream
    store_day(stack)
    records = stream_records(stack)
    # When the metrics function gets the batch, as a mapping with a tumbling window sends it
    answer = metrics_function.lambda_handler(window_event(records, shard_of(stack)), context)
    # Then the rollups are the items' counts, and the answer carries the state Lambda requires
    assert rollups(rollup_table) == from_items(stack)
    assert rollups(rollup_table)[("2026-11-29", "09#??", "Submitted")] == 1  # no country: "??"
    assert rollups(rollup_table)[("2026-11-30", "00#GB", "Rejected")] == 1  # the next UTC day
    assert answer == {"state": {}}
    # And the shard's watermark is the last record's sequence number
    assert watermarks(rollup_table) == {shard_of(stack): padded(records[-1]["dynamodb"]["SequenceNumber"])}


def test_rollup_items_expire_after_the_retention_and_watermarks_after_two_days(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given one TDR received at 07:05
    store(stack, "Delivered", "HK", HOUR + timedelta(minutes=5))
    # When it is counted
    metrics_function.lambda_handler(window_event(stream_records(stack), shard_of(stack)), context)
    # Then its rollup expires TdrRetentionDays after its hour, the watermark 2 days after now
    client = boto3.client("dynamodb")
    rollup = client.get_item(TableName=rollup_table, Key=RollupKey.of(HOUR, "HK").item_key())["Item"]
    retention = int(stack.environment("MetricsFunction")["TDR_RETENTION_DAYS"])
    assert int(rollup["expiresAt"]["N"]) == int((HOUR + timedelta(days=retention)).timestamp())
    mark = client.get_item(TableName=rollup_table, Key=watermark_key(shard_of(stack)))["Item"]
    two_days = datetime.now(UTC) + timedelta(days=2)
    assert abs(int(mark["expiresAt"]["N"]) - two_days.timestamp()) < 300


def test_a_batch_retried_whole_after_a_partial_write_counts_each_record_once(
    metrics_function: ModuleType,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a batch that takes several transactions, and a client whose second one fails
    store_day(stack)
    records = stream_records(stack)
    flaky = FlakyDynamoDB(fail_on=2)
    use_writer(monkeypatch, metrics_function, flaky, max_rollups=2)
    event = window_event(records, shard_of(stack))
    # When the batch fails after its first transaction was written
    with pytest.raises(ClientError, match="ThrottlingException"):
        metrics_function.lambda_handler(event, context)
    # Then a consistent prefix is counted: the first transaction's records, no more
    partial = rollups(rollup_table)
    assert 0 < sum(partial.values()) < len(records)
    assert partial <= from_items(stack)
    # When Lambda retries the whole batch (the client works again)
    use_writer(monkeypatch, metrics_function, max_rollups=2)
    metrics_function.lambda_handler(event, context)
    # Then each record is counted once
    assert rollups(rollup_table) == from_items(stack)


def test_a_bisected_batch_counts_each_record_once(
    metrics_function: ModuleType,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a batch that failed mid-way, after its first transaction
    records, shard = failed_after_a_partial_write(stack, metrics_function, monkeypatch, context)
    # When Lambda bisects it (BisectBatchOnFunctionError) and delivers the halves
    half = len(records) // 2
    metrics_function.lambda_handler(window_event(records[:half], shard), context)
    metrics_function.lambda_handler(window_event(records[half:], shard), context)
    # Then each record is counted once
    assert rollups(rollup_table) == from_items(stack)


def test_a_partial_batch_retry_from_mid_batch_counts_each_record_once(
    metrics_function: ModuleType,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a batch whose first transaction (its first few records) went through before it failed
    records, shard = failed_after_a_partial_write(stack, metrics_function, monkeypatch, context)
    counted_before = sum(rollups(rollup_table).values())
    assert counted_before >= 2
    # When the retry starts from a record within the counted prefix (a checkpoint short of the watermark)
    metrics_function.lambda_handler(window_event(records[1:], shard), context)
    # Then the records of the prefix are not counted again, and the rest are counted
    assert rollups(rollup_table) == from_items(stack)


def test_a_replayed_record_is_not_counted_again(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given a batch counted
    records, shard = stored_day(stack)
    metrics_function.lambda_handler(window_event(records, shard), context)
    # When one of its records comes again later, alone, then the whole batch again
    metrics_function.lambda_handler(window_event([records[3]], shard), context)
    metrics_function.lambda_handler(window_event(records, shard), context)
    # Then nothing is counted twice
    assert rollups(rollup_table) == from_items(stack)
    # And a new TDR after them still counts
    store(stack, "Rejected", "JP", HOUR)
    metrics_function.lambda_handler(window_event(stream_records(stack)[-1:], shard), context)
    assert rollups(rollup_table) == from_items(stack)


def test_two_shards_interleaved_keep_a_watermark_each(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given records split over two shards (alternating, as their sequence numbers interleave)
    store_day(stack)
    records = stream_records(stack)
    first, second = records[0::2], records[1::2]
    # When their batches come interleaved, and the first shard's first batch again
    metrics_function.lambda_handler(window_event(first[:2], "shardId-0001"), context)
    metrics_function.lambda_handler(window_event(second[:3], "shardId-0002"), context)
    metrics_function.lambda_handler(window_event(first[2:], "shardId-0001"), context)
    metrics_function.lambda_handler(window_event(first[:2], "shardId-0001"), context)
    metrics_function.lambda_handler(window_event(second[3:], "shardId-0002"), context)
    # Then each record is counted once, and each shard has its own watermark
    assert rollups(rollup_table) == from_items(stack)
    assert watermarks(rollup_table) == {
        "shardId-0001": padded(first[-1]["dynamodb"]["SequenceNumber"]),
        "shardId-0002": padded(second[-1]["dynamodb"]["SequenceNumber"]),
    }


def test_the_final_invoke_of_a_window_without_records_writes_nothing(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given a batch counted
    store_day(stack)
    shard = shard_of(stack)
    metrics_function.lambda_handler(window_event(stream_records(stack), shard), context)
    before = boto3.client("dynamodb").scan(TableName=rollup_table)["Items"]
    # When the window closes: Lambda's final invoke, with no records
    answer = metrics_function.lambda_handler(window_event([], shard, isFinalInvokeForWindow=True), context)
    # Then it succeeds with the state Lambda requires, and the table is as it was
    assert answer == {"state": {}}
    assert boto3.client("dynamodb").scan(TableName=rollup_table)["Items"] == before
    assert rollups(rollup_table) == from_items(stack)


def test_an_event_without_a_shard_fails_clearly_and_writes_nothing(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given a batch as a mapping without a tumbling window sends it: no shardId
    store_day(stack)
    event = {"Records": stream_records(stack)}
    # When the metrics function gets it
    with pytest.raises(NoShardId, match="TumblingWindowInSeconds"):
        metrics_function.lambda_handler(event, context)
    # Then nothing was written (no guessed shard)
    assert boto3.client("dynamodb").scan(TableName=rollup_table)["Items"] == []


def test_a_watermark_moved_by_someone_else_fails_the_batch_without_counting(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given the first half of a batch counted
    records, shard = stored_day(stack)
    half = len(records) // 2
    metrics_function.lambda_handler(window_event(records[:half], shard), context)
    counted = rollups(rollup_table)
    # When a writer that read the watermark before it moved (none yet) writes the whole batch
    settings = RollupSettings.from_env()
    stale = RollupWriter(boto3.client("dynamodb"), settings.table_name, settings.retention_days)
    stale.watermark = lambda shard_id: None  # type: ignore[method-assign]
    batch = [
        counted_record(
            r["dynamodb"]["SequenceNumber"],
            r["dynamodb"]["NewImage"]["receivedAt"]["S"],
            r["dynamodb"]["NewImage"].get("recipientCountry", {}).get("S"),
            Status(r["dynamodb"]["NewImage"]["status"]["S"]),
            None,
        )
        for r in records
    ]
    # Then its transaction is refused as a whole: nothing more counted, and Lambda is told to retry
    with pytest.raises(WatermarkMoved):
        stale.apply(shard, batch)
    assert rollups(rollup_table) == counted


def test_a_batch_over_99_rollup_items_is_split_into_transactions_and_counted_once(
    metrics_function: ModuleType,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DynamoDB API Reference, TransactWriteItems: at most 100 actions (99 rollups and the watermark)."""
    # Given 130 SMS submitted to 130 countries in one hour: 130 rollup items and 130 SMS lists
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    countries = [a + b for a in letters for b in letters][:130]
    for country in countries:
        store(stack, "Submitted", country, HOUR)
    records = stream_records(stack)
    flaky = FlakyDynamoDB(fail_on=0)  # counts transactions, fails none
    use_writer(monkeypatch, metrics_function, flaky)
    # When they are counted in one batch
    metrics_function.lambda_handler(window_event(records, shard_of(stack)), context)
    # Then three transactions did it (49 countries' two actions each, and the watermark), and the counts
    # are the items'
    assert flaky.transactions == 3
    assert rollups(rollup_table) == from_items(stack)
    assert len(rollups(rollup_table)) == 130


def test_the_rollup_table_has_the_key_schema_rollup_py_spells(template: Any, stack: Stack, rollup_table: str) -> None:
    # Given the table provisioned from the template
    description = boto3.client("dynamodb").describe_table(TableName=rollup_table)["Table"]
    # Then its keys are rollup.py's, the TTL attribute its expiresAt
    assert description["KeySchema"] == [
        {"AttributeName": DAY, "KeyType": "HASH"},
        {"AttributeName": SLOT, "KeyType": "RANGE"},
    ]
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=rollup_table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiresAt"
    assert stack.environment("MetricsFunction")["ROLLUP_TABLE_NAME"] == rollup_table


def test_distinct_transaction_ids_make_distinct_counts(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given the same status for two SMS in the same hour and country
    for _ in range(2):
        store(stack, "Submitted", "HK", HOUR + timedelta(seconds=secrets.randbelow(3600)))
    # When counted
    metrics_function.lambda_handler(window_event(stream_records(stack), shard_of(stack)), context)
    # Then the hour's item counts both
    assert rollups(rollup_table) == Counter({("2026-11-29", "07#HK", "Submitted"): 2})


def test_the_events_file_for_sam_local_invoke_is_a_windowed_batch(
    metrics_function: ModuleType,
    template_events: dict[str, dict[str, Any]],
    rollup_table: str,
    context: LambdaContext,
) -> None:
    """Lambda Developer Guide, services-ddb-windows: the event a mapping with a tumbling window sends."""
    # Given events/metrics-stream-window.json, as `sam local invoke MetricsFunction -e` sends it
    event = template_events["metrics-stream-window.json"]
    assert {"shardId", "window", "state", "isFinalInvokeForWindow", "isWindowTerminatedEarly"} <= set(event)
    # When the function gets it, twice (a retry)
    answers = [metrics_function.lambda_handler(event, context) for _ in range(2)]
    # Then it answers with state, and counts each of its TDRs once, in the hour each was received
    assert answers == [{"state": {}}, {"state": {}}]
    expected: Counts = Counter()
    for record in event["Records"]:
        image = record["dynamodb"]["NewImage"]
        key = RollupKey.of(datetime.fromisoformat(image["receivedAt"]["S"]), image["recipientCountry"]["S"])
        expected[(key.day, key.slot, image["status"]["S"])] += 1
    assert rollups(rollup_table) == expected


# --- the cohort view and time to a final status (issue 18) ---------------------------------------


def store_as(stack: Stack, transaction_id: str, status: str, country: str, received_at: datetime) -> None:
    """One TDR of a chosen SMS, as the webhook stores it."""
    body = tdr(TransactionID=transaction_id, Status=status, RecipientCountry=country)
    item = StoredTdr.item_from_tdr(Tdr.model_validate(body), "{}", received_at, received_at + timedelta(days=400))
    boto3.client("dynamodb").put_item(TableName=stack.table_name, Item=item)


def store_sms_day(stack: Stack) -> None:
    """SMS with their Submitted and final TDRs: quick and slow receipts, a final before its Submitted
    (out of order, same batch), one with no final status, one across midnight, two countries."""
    plan = [
        ("a", "Submitted", "HK", HOUR),
        ("a", "Delivered", "HK", HOUR + timedelta(seconds=4)),  # 2 to 5 s
        ("b", "Submitted", "HK", HOUR + timedelta(minutes=10)),
        ("c", "Submitted", "VE", HOUR + timedelta(minutes=20)),
        ("b", "Delivered", "HK", HOUR + timedelta(minutes=13)),  # 3 min: <= 5 m
        ("d", "Undelivered", "VE", HOUR + timedelta(minutes=59)),  # before its Submitted: counts as 0 s
        ("d", "Submitted", "VE", HOUR + timedelta(minutes=59, seconds=30)),
        ("c", "Rejected", "VE", HOUR + timedelta(hours=3)),  # 2 h 40 m: <= 12 h, the cohort hour is 07
        ("e", "Submitted", "VE", HOUR + timedelta(hours=16, minutes=59)),  # 23:59
        ("e", "Delivered", "VE", HOUR + timedelta(hours=17, minutes=1)),  # the next day; cohort 23:00
        ("f", "Submitted", "HK", HOUR + timedelta(minutes=30)),  # never a final status
    ]
    for transaction_id, status, country, received_at in plan:
        store_as(stack, f"txn-{transaction_id}", status, country, received_at)


def cohort_from_items(stack: Stack) -> Counts:
    """Cohort counts and time-to-final buckets as the TDR items say: each final status against its SMS's
    Submitted TDR (its hour and country), bucketed by the time between their receivedAt."""
    items = [
        StoredTdr.from_item(i)
        for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=stack.table_name)
        for i in page["Items"]
    ]
    submitted = {i.transaction_id: i for i in items if i.status == "Submitted"}
    expected: Counts = Counter()
    for final in items:
        sent = submitted.get(final.transaction_id)
        if final.status == "Submitted" or sent is None:
            continue
        assert sent.received_at is not None
        assert final.received_at is not None
        at = datetime.fromisoformat(sent.received_at)
        key = RollupKey.of(at, sent.recipient_country)
        seconds = (datetime.fromisoformat(final.received_at) - at).total_seconds()
        for attribute in pair_counts(Status(final.status), seconds):
            expected[(key.day, key.slot, attribute)] += 1
    return expected


def cohort_rollups(table: str) -> Counts:
    found: Counts = Counter()
    attributes = {*COHORT_ATTRIBUTES.values(), *(a for group in TTF_ATTRIBUTES.values() for a in group)}
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if "#" in item[DAY]["S"]:
                continue
            for attribute in attributes & item.keys():
                found[(item[DAY]["S"], item[SLOT]["S"], attribute)] += int(item[attribute]["N"])
    return found


def sms_lists(table: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per "day slot" of the list items: the SMS submitted, and those with a final status."""
    submitted: dict[str, set[str]] = {}
    finals: dict[str, set[str]] = {}
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            day = item[DAY]["S"]
            if not day.endswith("#sms"):
                continue
            cohort = day.removesuffix("#sms") + " " + item[SLOT]["S"].rsplit("#", 1)[0]
            submitted.setdefault(cohort, set()).update(item.get("submitted", {}).get("M", {}))
            finals.setdefault(cohort, set()).update(item.get("finals", {}).get("M", {}))
    return submitted, finals


def test_final_statuses_count_against_their_sms_cohort_with_their_time(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given SMS with their Submitted and final TDRs on the stream (one final before its Submitted)
    store_sms_day(stack)
    records = stream_records(stack)
    # When the metrics function counts them in one batch
    metrics_function.lambda_handler(window_event(records, shard_of(stack)), context)
    # Then each final status counts once against the hour and country its SMS was submitted in, in its bucket
    assert cohort_rollups(rollup_table) == cohort_from_items(stack)
    assert cohort_rollups(rollup_table)[("2026-11-29", "07#HK", "ttfDelivered#5s")] == 1
    assert cohort_rollups(rollup_table)[("2026-11-29", "07#HK", "ttfDelivered#5m")] == 1
    assert cohort_rollups(rollup_table)[("2026-11-29", "07#VE", "ttfUndelivered#2s")] == 1  # out of order: 0 s
    assert cohort_rollups(rollup_table)[("2026-11-29", "07#VE", "ttfRejected#12h")] == 1
    assert cohort_rollups(rollup_table)[("2026-11-29", "23#VE", "cohortDelivered")] == 1  # sent before midnight
    # And the arrival view is as before
    assert rollups(rollup_table) == from_items(stack)
    # And the SMS lists name every SMS submitted and those with a final status, by cohort
    submitted, finals = sms_lists(rollup_table)
    assert submitted == {
        "2026-11-29 07#HK": {"txn-a", "txn-b", "txn-f"},
        "2026-11-29 07#VE": {"txn-c", "txn-d"},
        "2026-11-29 23#VE": {"txn-e"},
    }
    assert finals["2026-11-29 07#HK"] == {"txn-a", "txn-b"}
    assert finals["2026-11-29 07#VE"] == {"txn-c", "txn-d"}


@pytest.mark.parametrize("fail_on", [1, 2, 3])
def test_cohort_counts_are_exact_after_a_partial_write_then_a_bisected_retry(
    metrics_function: ModuleType,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    fail_on: int,
) -> None:
    """Lambda Developer Guide, BisectBatchOnFunctionError: a failed batch comes again in halves."""
    # Given SMS stored, and a batch that fails at its n-th transaction (4 actions each)
    store_sms_day(stack)
    records, shard = stream_records(stack), shard_of(stack)
    use_writer(monkeypatch, metrics_function, FlakyDynamoDB(fail_on=fail_on), max_rollups=4)
    with pytest.raises(ClientError, match="ThrottlingException"):
        metrics_function.lambda_handler(window_event(records, shard), context)
    # When Lambda retries it in halves, then the whole batch once more (a replay)
    use_writer(monkeypatch, metrics_function, max_rollups=4)
    half = len(records) // 2
    metrics_function.lambda_handler(window_event(records[:half], shard), context)
    metrics_function.lambda_handler(window_event(records[half:], shard), context)
    metrics_function.lambda_handler(window_event(records, shard), context)
    # Then cohort counts, time buckets and arrival counts are the items', each once
    assert cohort_rollups(rollup_table) == cohort_from_items(stack)
    assert rollups(rollup_table) == from_items(stack)


def test_a_final_status_before_its_submitted_tdr_is_stored_is_paired_once_later(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given a Delivered TDR counted while its Submitted TDR was not stored (CINNOX sent them out of order)
    shard = shard_of(stack)
    store_as(stack, "txn-late", "Delivered", "HK", HOUR + timedelta(seconds=20))
    metrics_function.lambda_handler(window_event(stream_records(stack), shard), context)
    early = boto3.client("dynamodb").get_item(TableName=rollup_table, Key=early_key("txn-late")).get("Item")
    assert early is not None
    assert early["receivedDelivered"]["S"].startswith("2026-11-29T07:00:20")
    assert cohort_rollups(rollup_table) == Counter()  # no cohort yet
    # When its Submitted TDR comes and is counted, and the early finals are paired, twice
    store_as(stack, "txn-late", "Submitted", "HK", HOUR + timedelta(minutes=1))
    metrics_function.lambda_handler(window_event(stream_records(stack)[-1:], shard), context)
    settings = RollupSettings.from_env()
    paired = [
        pair_early(boto3.client("dynamodb"), rollup_table, settings.tdr_table_name, settings.retention_days)
        for _ in range(2)
    ]
    # Then the SMS counts once in its cohort (a final before its Submitted takes 0 s), and the early item is gone
    assert paired == [1, 0]
    assert cohort_rollups(rollup_table) == cohort_from_items(stack)
    assert cohort_rollups(rollup_table)[("2026-11-29", "07#HK", "ttfDelivered#2s")] == 1
    assert boto3.client("dynamodb").get_item(TableName=rollup_table, Key=early_key("txn-late")).get("Item") is None
    submitted, finals = sms_lists(rollup_table)
    assert submitted["2026-11-29 07#HK"] == finals["2026-11-29 07#HK"] == {"txn-late"}


class SubmittedMeanwhile:
    """A DynamoDB client that stores an SMS's Submitted TDR between the writer's read of it and its transaction."""

    def __init__(self, stack: Stack) -> None:
        self._client = boto3.client("dynamodb")
        self._stack = stack
        self.stored = False

    def transact_write_items(self, **arguments: Any) -> Any:
        if not self.stored:
            self.stored = True
            # On a thread of its own: the webhook's write, not the metrics function's (the IAM rehearsal
            # judges a call by the function on the calling thread's stack).
            webhook = threading.Thread(target=store_as, args=(self._stack, "txn-race", "Submitted", "HK", HOUR))
            webhook.start()
            webhook.join()
        return self._client.transact_write_items(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_submitted_tdr_stored_while_its_final_is_kept_early_fails_the_batch_and_the_retry_pairs_it(
    metrics_function: ModuleType,
    stack: Stack,
    rollup_table: str,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DynamoDB API Reference, TransactWriteItems: a ConditionCheck that fails cancels the whole transaction."""
    # Given a Delivered TDR whose Submitted TDR is stored after the writer read it as missing
    store_as(stack, "txn-race", "Delivered", "HK", HOUR + timedelta(seconds=5))
    records, shard = stream_records(stack), shard_of(stack)
    use_writer(monkeypatch, metrics_function, SubmittedMeanwhile(stack))
    # When the batch is counted, then retried by Lambda
    with pytest.raises(SubmissionArrived):
        metrics_function.lambda_handler(window_event(records, shard), context)
    assert boto3.client("dynamodb").scan(TableName=rollup_table)["Items"] == []  # nothing written
    metrics_function.lambda_handler(window_event(records, shard), context)
    # Then it is paired with its Submitted TDR, once, and nothing is kept early
    assert cohort_rollups(rollup_table)[("2026-11-29", "07#HK", "cohortDelivered")] == 1
    assert boto3.client("dynamodb").get_item(TableName=rollup_table, Key=early_key("txn-race")).get("Item") is None


def test_a_batch_of_the_longest_transaction_ids_is_counted_within_dynamodbs_size_limits(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    """DynamoDB Developer Guide, "Quotas": an item is at most 400 KB, a TransactWriteItems at most 4 MB."""
    # Given 400 SMS submitted to one country, each ID the longest the webhook takes (256 characters, 1 KB)
    ids = [f"{i:04d}" + "𝄞" * 252 for i in range(400)]
    for tid in ids:
        store_as(stack, tid, "Submitted", "VE", HOUR)
    # When the metrics function counts them in one batch
    metrics_function.lambda_handler(window_event(stream_records(stack), shard_of(stack)), context)
    # Then all are counted and listed (the lists cut under DynamoDB's limits, which moto enforces too)
    assert rollups(rollup_table)[("2026-11-29", "07#VE", "Submitted")] == 400
    submitted, _ = sms_lists(rollup_table)
    assert submitted["2026-11-29 07#VE"] == set(ids)


def store_item(stack: Stack, **attributes: str) -> None:
    """An item put by hand (not through the webhook): whatever its attributes say."""
    item = {name: {"S": value} for name, value in attributes.items()}
    boto3.client("dynamodb").put_item(TableName=stack.table_name, Item=item)


def test_items_no_key_can_hold_are_counted_under_a_fallback_and_stall_nothing(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    """Issue 19: a record that can never be counted as it is (a time out of range, a country too long for a
    sort key: DynamoDB Developer Guide, "Quotas", 1,024 bytes) is counted under a fallback, never retried."""
    # Given hand-edited items: receivedAt in the year 9999, a 2 KB country, a 1.5 KB transaction ID,
    # and an SMS whose Submitted TDR has a receivedAt out of range, with its Delivered TDR
    store_item(stack, transactionId="odd-1", status="Undelivered", receivedAt="9999-12-31T23:30:00+00:00")
    store_item(
        stack, transactionId="odd-2", status="Rejected", recipientCountry="X" * 2048, receivedAt=HOUR.isoformat()
    )
    store_item(stack, transactionId="L" * 1536, status="Delivered", recipientCountry="HK", receivedAt=HOUR.isoformat())
    store_item(
        stack, transactionId="odd-4", status="Submitted", recipientCountry="HK", receivedAt="0001-01-01T00:00:00"
    )
    store_item(stack, transactionId="odd-4", status="Delivered", recipientCountry="HK", receivedAt=HOUR.isoformat())
    records = stream_records(stack)
    # When the metrics function counts them
    metrics_function.lambda_handler(window_event(records, shard_of(stack)), context)
    # Then the batch succeeds and each is counted once: the country as "??", the time as the stream record's
    counted = rollups(rollup_table)
    assert sum(counted.values()) == len(records) == 5
    assert counted[("2026-11-29", "07#??", "Rejected")] == 1
    assert counted[("2026-11-29", "07#HK", "Delivered")] == 2
    # And nothing waits for a Submitted TDR that is stored (odd-4) or cannot be keyed (the long ID): only odd-2,
    # whose Submitted TDR never came, is kept for it
    items = boto3.client("dynamodb").scan(TableName=rollup_table)["Items"]
    assert [i[SLOT]["S"] for i in items if i[DAY]["S"] == "#early"] == ["odd-2"]
    assert cohort_rollups(rollup_table) == Counter()
