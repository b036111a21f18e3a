"""`cinnox-sms rollups rebuild` (cinnox_sms.rebuild): the rollups of whole hours from the TDR table, exact while
MetricsFunction counts into them, idempotent.

Every test compares the rollup table with the counts computed from the TDR items themselves (test_rollup's
from_items and cohort_from_items), through real Scans, UpdateItems and TransactWriteItems against moto, on
tables created from the template.

AWS rules relied on, each named where a test checks it:
- DynamoDB API Reference, Scan: Segment and TotalSegments (1 to 1,000,000) split a table into disjoint parts;
  a page holds at most 1 MB of items, LastEvaluatedKey says there is more.
- DynamoDB API Reference, UpdateItem: SET may compute a value from another attribute of the same item
  (``a = :n + if_not_exists(b, :zero)``), atomically; an expression is at most 4 KB.
- DynamoDB Developer Guide, "Quotas": an item is at most 400 KB.
- DynamoDB Developer Guide, "Read/write capacity mode": a strongly consistent read is one unit per 4 KB;
  DynamoDB on-demand pricing (https://aws.amazon.com/dynamodb/pricing/on-demand/) prices the read units.
"""

from __future__ import annotations

import functools
import io
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from cinnox_sms.rebuild import (
    CLOCK_MARGIN,
    COUNTED_ATTRIBUTES,
    MAX_TOTAL_SEGMENTS,
    READ_UNITS_USD_PER_MILLION,
    SCAN_PAGE_BYTES,
    STALE_WRITER_SECONDS,
    WRITE_MARGIN,
    Rebuild,
    count_update,
    list_chunks,
    scan_tdrs,
)
from cinnox_sms.rollup import (
    DAY,
    EARLY_DAY,
    MAX_LIST_ITEM_BYTES,
    SEQUENCE_NUMBER,
    SLOT,
    Fence,
    RollupKey,
    SmsList,
    padded,
    pair_early,
    read_fences,
    watermark_key,
)
from cinnox_sms_cli import rebuild as rebuild_command
from cinnox_sms_cli.main import main
from integration.test_rollup import (
    cohort_from_items,
    cohort_rollups,
    from_items,
    rollups,
    shard_of,
    sms_lists,
    store_as,
    window_event,
)
from support import LambdaContext, Stack, stream_records

DAY_START = datetime(2026, 11, 29, tzinfo=UTC)
DAY_END = DAY_START + timedelta(days=1)
FENCE = datetime(2026, 11, 29, 20, tzinfo=UTC)  # the rebuild's fence: its clock reads CLOCK_MARGIN before


def at(hours: float, seconds: float = 0) -> datetime:
    return DAY_START + timedelta(hours=hours, seconds=seconds)


# --- helpers -----------------------------------------------------------------------------------------------


def rebuilder(stack: Stack, client: Any = None, **options: Any) -> Rebuild:
    """The rebuild over the stack's tables, its clock just before FENCE, no real waits (the consumer runs when the
    test says: no invocation holds fences read before the claim)."""
    settings: dict[str, Any] = {
        "clock": lambda: FENCE - CLOCK_MARGIN,
        "sleep": lambda seconds: None,
        "stale_writer_seconds": 0,
        "segments": 4,
        "workers": 1,  # one call at a time: the consumer's turns come exactly where the test puts them
    }
    retention = int(stack.environment("MetricsFunction")["TDR_RETENTION_DAYS"])
    return Rebuild(
        client or boto3.client("dynamodb"),
        stack.table_name,
        stack.refs["RollupTable"],
        retention,
        **(settings | options),
    )


class ConsumerMeanwhile:
    """The rebuild's DynamoDB client: before its n-th call of an operation, a turn of the stream consumer (or
    anything) runs, as it would between two of the rebuild's calls."""

    def __init__(self, turns: dict[tuple[str, int], Callable[[], None]]) -> None:
        self._client = boto3.client("dynamodb")
        self._turns = dict(turns)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name == "exceptions" or not callable(method):
            return method

        def call(**arguments: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                turn = self._turns.pop((name, self.calls[name]), None)
            if turn is not None:
                turn()
            return method(**arguments)

        return call

    @property
    def turns_left(self) -> list[tuple[str, int]]:
        return sorted(self._turns)


def count_stream(module: ModuleType, stack: Stack, context: LambdaContext, upto: int | None = None) -> None:
    """MetricsFunction gets the stream's records (up to `upto`), as its mapping sends them: what is counted skips."""
    records = stream_records(stack)[:upto]
    module.lambda_handler(window_event(records, shard_of(stack)), context)


def lose_records(stack: Stack, rollup_table: str, through: int) -> None:
    """The stream's records up to `through` (excluded) expired unread: the mapping goes on after them (as Lambda
    does from TRIM_HORIZON once they are trimmed), so they are counted by nobody."""
    last = stream_records(stack)[through - 1]["dynamodb"]["SequenceNumber"]
    boto3.client("dynamodb").put_item(
        TableName=rollup_table, Item=watermark_key(shard_of(stack)) | {SEQUENCE_NUMBER: {"S": padded(last)}}
    )


def pair(stack: Stack, rollup_table: str) -> int:
    """The no-final-status check's pairing of early final statuses."""
    retention = int(stack.environment("MetricsFunction")["TDR_RETENTION_DAYS"])
    return pair_early(boto3.client("dynamodb"), rollup_table, stack.table_name, retention)


def store_all(stack: Stack, plan: list[tuple[str, str, str, datetime]]) -> None:
    for transaction_id, status, country, received_at in plan:
        store_as(stack, transaction_id, status, country, received_at)


def rollup_items(table: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return {(i[DAY]["S"], i[SLOT]["S"]): i for i in items if "#" not in i[DAY]["S"]}


def early_items(table: str) -> list[str]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return sorted(i[SLOT]["S"] for i in items if i[DAY]["S"] == EARLY_DAY)


def listed_from_items(stack: Stack) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The SMS lists as the items say: per "day slot" of each cohort, its SMS, and those with a final status."""
    items = boto3.client("dynamodb").scan(TableName=stack.table_name)["Items"]
    sent = {i["transactionId"]["S"]: i for i in items if i["status"]["S"] == "Submitted"}
    submitted: dict[str, set[str]] = {}
    finals: dict[str, set[str]] = {}
    for tid, item in sent.items():
        key = RollupKey.of(datetime.fromisoformat(item["receivedAt"]["S"]), item["recipientCountry"]["S"])
        submitted.setdefault(f"{key.day} {key.slot}", set()).add(tid)
        finals.setdefault(f"{key.day} {key.slot}", set())
        if any(i["transactionId"]["S"] == tid and i["status"]["S"] != "Submitted" for i in items):
            finals.setdefault(f"{key.day} {key.slot}", set()).add(tid)
    return submitted, finals


# Before the rebuild: every TDR received before its fence (20:00), in stream order.
COUNTED = [
    ("a", "Submitted", "HK", at(7)),
    ("a", "Delivered", "HK", at(7, 4)),
    ("b", "Submitted", "HK", at(7, 600)),
    ("c", "Submitted", "VE", at(7, 1200)),
    ("d", "Undelivered", "VE", at(7, 3540)),  # before its Submitted
    ("d", "Submitted", "VE", at(7, 3570)),
    ("f", "Submitted", "HK", at(7, 1800)),  # never a final status
    ("h", "Delivered", "GB", at(19)),  # its Submitted comes after the fence: kept early
    ("m", "Delivered", "SG", at(18)),  # its Submitted comes before the fence, counted late: kept early
]
LOST = [("g", "Submitted", "SG", at(12)), ("g", "Delivered", "SG", at(12, 60))]  # expired from the stream unread
COUNTED_AFTER = [("x", "Rejected", "HK", at(15)), ("y", "Submitted", "JP", at(16))]
IN_FLIGHT = [  # stored before the fence, not yet counted when the rebuild claims the hours
    ("b", "Delivered", "HK", at(19, 3590)),
    ("m", "Submitted", "SG", at(18, 1800)),
    ("z", "Delivered", "SG", at(19, 1800)),
]


def a_day_gone_wrong(stack: Stack, module: ModuleType, rollup_table: str, context: LambdaContext) -> None:
    """A day counted by the stream, then wrong: two records lost, a count added twice by hand, three in flight."""
    store_all(stack, COUNTED)
    count_stream(module, stack, context)
    store_all(stack, LOST)
    lose_records(stack, rollup_table, len(COUNTED) + len(LOST))
    store_all(stack, COUNTED_AFTER)
    count_stream(module, stack, context)
    boto3.client("dynamodb").update_item(
        TableName=rollup_table,
        Key=RollupKey.of(at(7), "HK").item_key(),
        UpdateExpression="ADD Delivered :five",
        ExpressionAttributeValues={":five": {"N": "5"}},
    )
    store_all(stack, IN_FLIGHT)


# --- tests ---------------------------------------------------------------------------------------------------


def test_a_day_rebuilt_while_the_consumer_counts_new_tdrs_into_it_equals_the_counts_from_the_items(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    """The done-when of issue 19, item 5."""
    # Given a day counted by the stream, then wrong: lost records, a count twice, TDRs in flight
    a_day_gone_wrong(stack, metrics_function, rollup_table, context)
    assert rollups(rollup_table) != from_items(stack)

    def turn(plan: list[tuple[str, str, str, datetime]], *, early: bool = False) -> Callable[[], None]:
        def run() -> None:
            store_all(stack, plan)
            count_stream(metrics_function, stack, context)
            if early:
                pair(stack, rollup_table)

        return run

    # ... and a consumer that counts at every step of the rebuild: after the claim (the in-flight TDRs, and new
    # ones into the rebuilt day and into its cohorts), in the middle of the Scan, between two of its writes, and
    # once it is done
    client = ConsumerMeanwhile(
        {
            ("scan", 1): turn(
                [
                    ("c", "Rejected", "VE", at(20, 1800)),
                    ("h", "Submitted", "GB", at(20, 600)),
                    ("i", "Submitted", "HK", at(20, 300)),
                ],
                early=True,
            ),
            ("scan", 3): turn([("i", "Delivered", "HK", at(20, 360)), ("j", "Submitted", "SG", at(21))]),
            ("update_item", 3): turn(
                [("k", "Submitted", "HK", at(23)), ("k", "Delivered", "HK", at(24, 60))], early=True
            ),
            ("update_item", 9): turn([("j", "Undelivered", "SG", at(22)), ("n", "Submitted", "HK", at(22))]),
        }
    )
    # When the day is rebuilt
    outcome = rebuilder(stack, client).run(DAY_START, DAY_END)
    turn([("l", "Submitted", "HK", at(23, 1800)), ("n", "Delivered", "HK", at(23, 1900))], early=True)()
    # Then every turn ran, and the rollups are the items' counts: arrival, cohort and time-to-final, each TDR once
    assert client.turns_left == []
    assert outcome.fence.at == FENCE
    assert rollups(rollup_table) == from_items(stack)
    assert cohort_rollups(rollup_table) == cohort_from_items(stack)
    assert rollups(rollup_table)[("2026-11-29", "07#HK", "Delivered")] == 1  # the 5 added by hand are gone
    assert rollups(rollup_table)[("2026-11-29", "12#SG", "Submitted")] == 1  # a lost record is back
    # And the SMS lists name every SMS of the day's cohorts, and which have a final status
    assert sms_lists(rollup_table) == listed_from_items(stack)
    # And no early final is left that was paired, and no shadow of the rebuild stays on an item
    assert early_items(rollup_table) == ["x", "z"]  # h and m paired (m by the rebuild); x, z: no Submitted ever
    assert not [name for item in rollup_items(rollup_table).values() for name in item if "@" in name]
    # When it is rebuilt again (idempotent)
    before = (rollups(rollup_table), cohort_rollups(rollup_table), sms_lists(rollup_table))
    later = at(26)  # after every TDR stored: its fence is later than the first's, as AWS's clock would be
    rebuilder(stack, clock=lambda: later).run(DAY_START, DAY_END)
    # Then nothing changes
    assert (rollups(rollup_table), cohort_rollups(rollup_table), sms_lists(rollup_table)) == before


def test_records_older_than_the_fence_that_come_after_the_rebuild_are_not_counted_again(
    metrics_function: ModuleType, stack: Stack, rollup_table: str, context: LambdaContext
) -> None:
    # Given a day stored, the stream far behind (nothing counted yet), and the day rebuilt
    store_all(stack, COUNTED + LOST + COUNTED_AFTER + IN_FLIGHT)
    rebuilder(stack).run(DAY_START, DAY_END)
    rebuilt = rollups(rollup_table), cohort_rollups(rollup_table)
    # When the stream catches up: every record of the day, each older than the fence, then the pairing, twice
    for _ in range(2):
        count_stream(metrics_function, stack, context)
        pair(stack, rollup_table)
    # Then nothing is counted twice: the counts are the rebuild's, which are the items'
    assert (rollups(rollup_table), cohort_rollups(rollup_table)) == rebuilt
    assert rollups(rollup_table) == from_items(stack)
    assert cohort_rollups(rollup_table) == cohort_from_items(stack)


def test_a_later_rebuild_holds_over_an_earlier_one_that_writes_after_it(stack: Stack, rollup_table: str) -> None:
    """DynamoDB API Reference, UpdateItem: a ConditionExpression that fails leaves the item as it was."""
    # Given a day stored, and two rebuilds of it: the first claims, the second claims, counts and writes
    store_all(stack, COUNTED)
    later = datetime(2026, 11, 29, 21, tzinfo=UTC)
    second = rebuilder(stack, clock=lambda: later - CLOCK_MARGIN)

    def meanwhile() -> None:  # a TDR received between the two fences, and the second rebuild, whole
        store_all(stack, [("p", "Submitted", "HK", at(20, 10))])
        second.run(DAY_START, DAY_END)

    first_client = ConsumerMeanwhile({("update_item", 1): meanwhile})
    # When the first writes after the second
    outcome = rebuilder(stack, first_client).run(DAY_START, DAY_END)
    # Then the first wrote nothing over the second's counts, which are the items'
    assert outcome.items == 0
    assert outcome.superseded == len(rollup_items(rollup_table)) - 1  # all but the one only the second knew
    assert rollups(rollup_table) == from_items(stack)
    # And the fence item keeps the second's fence only (the first's is covered by it)
    assert [fence.at for fence in read_fences(boto3.client("dynamodb"), rollup_table).entries] == [later]


def test_it_writes_only_after_the_counters_that_read_the_fences_before_its_claim_have_ended(stack: Stack) -> None:
    """The wait that keeps a MetricsFunction or NoFinalStatusFunction invocation that read no fence from adding,
    after the rebuild wrote, what the rebuild counted."""
    # Given a TDR stored, and a rebuild whose waits are recorded with the calls made before each
    store_as(stack, "a", "Submitted", "HK", at(7))
    client = ConsumerMeanwhile({})
    waits: list[tuple[float, int]] = []
    rebuild = rebuilder(stack, client, sleep=lambda s: waits.append((s, client.calls["update_item"])))
    rebuild._stale = STALE_WRITER_SECONDS
    # When it runs
    rebuild.run(DAY_START, DAY_END)
    # Then it waited for the TDRs received before the fence to be stored, then for the stale counters, and wrote
    # only after both
    (scan_wait, writes_before_first), (stale_wait, writes_before_second) = waits
    assert scan_wait == (CLOCK_MARGIN + WRITE_MARGIN).total_seconds()
    assert STALE_WRITER_SECONDS - 5 < stale_wait <= STALE_WRITER_SECONDS
    assert writes_before_first == writes_before_second == 0
    assert client.calls["update_item"] > 0


def test_its_waits_cover_the_timeouts_of_the_functions_that_count(template: Any) -> None:
    # Given the template's functions that add to the rollups, and the webhook that stamps receivedAt
    timeouts = {
        name: template.function(name)["Timeout"]
        for name in ("MetricsFunction", "NoFinalStatusFunction", "WebhookFunction")
    }
    # Then the rebuild writes only after the longest counting invocation could have ended (and a request in
    # flight), and scans only after a TDR received before the fence could have been stored
    assert max(timeouts["MetricsFunction"], timeouts["NoFinalStatusFunction"]) + 30 <= STALE_WRITER_SECONDS
    assert WRITE_MARGIN.total_seconds() >= timeouts["WebhookFunction"] + CLOCK_MARGIN.total_seconds()


def test_a_parallel_scan_reads_every_item_once_across_segments_and_pages(stack: Stack) -> None:
    """DynamoDB API Reference, Scan: segments are disjoint and together the whole table; a page holds at most
    1 MB (LastEvaluatedKey: more to read); TotalSegments is 1 to 1,000,000."""
    # Given 300 TDRs of about 8 KB each (2.4 MB: several pages)
    client = boto3.client("dynamodb")
    for n in range(300):
        store_as(stack, f"big-{n:03d}", "Submitted", "HK", at(7))
        client.update_item(
            TableName=stack.table_name,
            Key={"transactionId": {"S": f"big-{n:03d}"}, "status": {"S": "Submitted"}},
            UpdateExpression="SET #raw = :raw",
            ExpressionAttributeNames={"#raw": "raw"},
            ExpressionAttributeValues={":raw": {"S": "x" * 8000}},
        )
    pages: list[int] = []
    # When they are read in 3 segments, then in 1
    three = scan_tdrs(client, stack.table_name, 3)
    one = scan_tdrs(client, stack.table_name, 1, pages.append)
    # Then each is read once either way, the one segment over several pages (1 MB each at most)
    assert sorted(t.transaction_id or "" for t in three) == sorted(t.transaction_id or "" for t in one)
    assert len({t.transaction_id for t in three}) == 300
    assert len(pages) > 300 * 8000 / SCAN_PAGE_BYTES
    assert sum(pages) == 300
    # And a segment count DynamoDB refuses is refused before any call
    for wrong in (0, MAX_TOTAL_SEGMENTS + 1):
        with pytest.raises(ValueError, match="TotalSegments"):
            scan_tdrs(client, stack.table_name, wrong)


def test_the_update_of_a_rollup_item_is_within_dynamodbs_expression_limit(stack: Stack, rollup_table: str) -> None:
    """DynamoDB Developer Guide, "Quotas" (expression parameters): an expression string is at most 4 KB; DynamoDB
    API Reference, UpdateItem: SET a = :n + if_not_exists(b, :zero) reads b in the same item, atomically."""
    # Given a fence of a long token, and an item whose shadow says the consumer added 3 Delivered since
    fence = Fence("f" * 64, DAY_START, DAY_END, FENCE)
    key = RollupKey.of(at(7), "HK")
    client = boto3.client("dynamodb")
    client.update_item(
        TableName=rollup_table,
        Key=key.item_key(),
        UpdateExpression="ADD #d :n, #s :n",
        ExpressionAttributeNames={"#d": "Delivered", "#s": fence.shadow("Delivered")},
        ExpressionAttributeValues={":n": {"N": "3"}},
    )
    update = count_update(rollup_table, key, {"Delivered": 2, "Submitted": 4}, fence, 400)
    # When it is written
    client.update_item(**update)
    # Then its expression is under 4 KB, and every count is the rebuild's plus the shadow
    assert len(update["UpdateExpression"].encode()) < 4096
    item = client.get_item(TableName=rollup_table, Key=key.item_key())["Item"]
    assert {a: int(item[a]["N"]) for a in COUNTED_ATTRIBUTES if int(item[a]["N"])} == {"Delivered": 5, "Submitted": 4}


def test_the_longest_sms_lists_are_cut_under_dynamodbs_item_size(stack: Stack, rollup_table: str) -> None:
    """DynamoDB Developer Guide, "Quotas": an item is at most 400 KB (moto refuses a larger one too)."""
    # Given 600 SMS of one hour and country, each ID 1 KB (the longest the webhook takes)
    ids = [f"{i:04d}" + "𝄞" * 252 for i in range(600)]
    sms = SmsList(submitted=dict.fromkeys(ids, "2026-11-29T07:00:00.000+00:00"))
    # When they are cut into list items
    chunks = list_chunks(sms)
    # Then each holds at most MAX_LIST_ITEM_BYTES of entries (well under 400 KB), and all are there, once
    assert len(chunks) > 1
    assert all(sum(len(t.encode()) + len(v) + 1 for t, v in c.submitted.items()) <= MAX_LIST_ITEM_BYTES for c in chunks)
    assert sorted(t for c in chunks for t in c.submitted) == ids


def test_the_command_prints_the_read_cost_asks_and_rebuilds_with_yes(
    stack: Stack, rollup_table: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DynamoDB Developer Guide, "Read/write capacity mode": a strongly consistent read is one unit per 4 KB;
    the price is DynamoDB on-demand pricing's, as devrig/bench/run.py models it."""
    from bench.run import PRICES

    # Given a day of TDRs, and the command's rebuild without real waits
    store_all(stack, COUNTED + LOST)
    monkeypatch.setattr(
        rebuild_command,
        "Rebuild",
        functools.partial(Rebuild, clock=lambda: FENCE - CLOCK_MARGIN, sleep=lambda s: None, stale_writer_seconds=0),
    )
    argv = ["rollups", "rebuild", "--table", stack.table_name, "--rollup-table", rollup_table]
    argv += ["--since", "2026-11-29T00:00:00Z", "--until", "2026-11-30T00:00:00Z", "--segments", "3"]
    described = boto3.client("dynamodb").describe_table(TableName=stack.table_name)["Table"]
    units = math.ceil(described["TableSizeBytes"] / 4096)
    # When it is run, answered "n", then with --yes
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    declined = main(argv)
    asked = capsys.readouterr()
    accepted = main([*argv, "--yes"])
    done = capsys.readouterr()
    # Then it printed the Scan's read cost from DescribeTable, and did nothing when declined
    assert declined == rebuild_command.DECLINED
    assert f"about {units:,} read units" in asked.out
    assert f"${units * READ_UNITS_USD_PER_MILLION / 1e6:,.4f}" in asked.out
    assert "https://aws.amazon.com/dynamodb/pricing/on-demand/" in asked.out
    assert "not rebuilt" in asked.out
    assert PRICES["dynamodb_on_demand_read_units_per_million"] == READ_UNITS_USD_PER_MILLION
    # And with --yes it rebuilt the day, with its progress on stderr
    assert accepted == 0
    assert rollups(rollup_table) == from_items(stack)
    assert "rebuilt" in done.out
    assert "scanned:" in done.err
    assert "written:" in done.err


def test_rebuild_time_for_a_day_of_tdrs(stack: Stack, rollup_table: str) -> None:
    """A measure, not a limit: how long a rebuild of 2,000 TDRs takes in moto (the number docs/operations.md gives)."""
    # Given 2,000 TDRs over a day: 1,000 SMS, Submitted and Delivered, 5 countries
    for n in range(1000):
        country = ("HK", "SG", "VE", "GB", "JP")[n % 5]
        store_as(stack, f"t{n}", "Submitted", country, at(n % 20, n))
        store_as(stack, f"t{n}", "Delivered", country, at(n % 20, n + 30))
    # When the day is rebuilt
    started = time.monotonic()
    outcome = rebuilder(stack, segments=8, workers=8).run(DAY_START, DAY_END)
    took = time.monotonic() - started
    # Then every TDR is counted, within a minute
    assert outcome.tdrs == 2000
    assert sum(rollups(rollup_table).values()) == 2000
    assert took < 60
    print(f"rebuild of 2,000 TDRs in moto: {took:.1f} s")
