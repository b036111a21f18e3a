"""Rollups without AWS: planning transactions, their write units, the template's mapping and role, the
rehearsal's reading of a transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cinnox_sms.rollup import (  # sizes as the planner reckons them
    MAX_LIST_ITEM_BYTES,
    MAX_TRANSACTION_ACTIONS,
    MAX_TRANSACTION_LIST_BYTES,
    CountedRecord,
    RollupKey,
    Submission,
    _entries_bytes,
    _list_item_bytes,
    counted_record,
    fresh_records,
    iso,
    padded,
    plan,
    read_submissions,
    ttf_label,
    watermark_key,
    write_units,
)
from cinnox_sms.status import Status
from iam_rehearsal import authorisations
from local_stack.template import StreamMappingError, Template, check_stream_mapping

HOUR = datetime(2026, 11, 29, 7, tzinfo=UTC)


def record(sequence: int, country: str = "HK", status: Status = Status.DELIVERED, hours: int = 0) -> CountedRecord:
    return CountedRecord(padded(str(sequence)), RollupKey.of(HOUR + timedelta(hours=hours), country), status)


def test_sequence_numbers_compare_as_numbers_once_padded() -> None:
    # Given sequence numbers of different lengths (DynamoDB Streams: 21 to 40 digits)
    short, long = "9" * 21, "1" + "0" * 21
    # Then padded, they sort as their numbers do
    assert padded(short) < padded(long)
    assert len(padded(short)) == 40


def test_fresh_records_are_those_above_the_watermark_in_stream_order() -> None:
    # Given records out of order and a watermark at the second
    records = [record(3), record(1), record(2)]
    # When filtered
    fresh = fresh_records(records, padded("2"))
    # Then only the third is fresh; without a watermark all are, in order
    assert fresh == [record(3)]
    assert fresh_records(records, None) == [record(1), record(2), record(3)]


def test_plan_groups_by_rollup_key_and_status() -> None:
    # Given two hours, two countries, two statuses
    records = [
        record(1, "HK"),
        record(2, "HK"),
        record(3, "HK", Status.REJECTED),
        record(4, "SG"),
        record(5, "HK", hours=1),
    ]
    # When planned
    [transaction] = plan(records)
    # Then one transaction holds three rollup items and the watermark goes to the last record
    assert transaction.counts == {
        RollupKey.of(HOUR, "HK"): {Status.DELIVERED: 2, Status.REJECTED: 1},
        RollupKey.of(HOUR, "SG"): {Status.DELIVERED: 1},
        RollupKey.of(HOUR + timedelta(hours=1), "HK"): {Status.DELIVERED: 1},
    }
    assert transaction.last_sequence_number == padded("5")
    assert transaction.records == 5


def test_plan_splits_into_in_order_prefixes_of_at_most_99_rollups() -> None:
    """DynamoDB API Reference, TransactWriteItems: at most 100 actions; one is the watermark's."""
    # Given 250 records over 200 countries, the first country twice more at the end
    countries = [a + b for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJKLMNOPQRST"]
    records = [record(i + 1, countries[i]) for i in range(200)]
    records += [record(201, countries[0]), record(202, countries[0])]
    # When planned
    transactions = plan(records)
    # Then each transaction fits, each is a prefix of what is left, and every record is in one
    assert [len(t.counts) for t in transactions] == [99, 99, 3]
    assert all(len(t.counts) + 1 <= MAX_TRANSACTION_ACTIONS for t in transactions)
    assert [t.last_sequence_number for t in transactions] == [padded("99"), padded("198"), padded("202")]
    assert sum(t.records for t in transactions) == len(records)
    assert sum(sum(c.values()) for t in transactions for c in t.counts.values()) == len(records)


def test_a_transaction_adds_the_counts_and_moves_the_watermark_only_from_where_it_was() -> None:
    # Given a planned transaction
    [transaction] = plan([record(7, "HK"), record(8, "HK", Status.SUBMITTED)])
    now = datetime(2026, 11, 29, 8, tzinfo=UTC)
    # When its actions are built, after a previous watermark
    rollup, mark = transaction.actions("rollups", "shard-1", padded("6"), 400, now)
    # Then the rollup item adds each status and sets its TTL at its hour plus the retention
    update = rollup["Update"]
    assert update["Key"] == RollupKey.of(HOUR, "HK").item_key()
    assert update["UpdateExpression"] == "ADD #s0 :n0, #s1 :n1 SET expiresAt = :ttl"
    assert update["ExpressionAttributeNames"] == {"#s0": "Delivered", "#s1": "Submitted"}
    assert update["ExpressionAttributeValues"][":ttl"] == {"N": str(int((HOUR + timedelta(days=400)).timestamp()))}
    # And the watermark moves to the last record, only if nobody moved it since it was read
    watermark = mark["Update"]
    assert watermark["Key"] == watermark_key("shard-1")
    assert watermark["ConditionExpression"] == "attribute_not_exists(sequenceNumber) OR sequenceNumber = :previous"
    assert watermark["ExpressionAttributeValues"][":previous"] == {"S": padded("6")}
    assert watermark["ExpressionAttributeValues"][":last"] == {"S": padded("8")}
    assert watermark["ExpressionAttributeValues"][":ttl"] == {"N": str(int((now + timedelta(days=2)).timestamp()))}
    # And a first watermark needs no previous one
    first = transaction.actions("rollups", "shard-1", None, 400, now)[-1]["Update"]
    assert first["ConditionExpression"] == "attribute_not_exists(sequenceNumber)"
    assert ":previous" not in first["ExpressionAttributeValues"]


def test_write_units_are_two_per_kb_of_each_item_written() -> None:
    """DynamoDB Developer Guide, "Amazon DynamoDB transactions: capacity management": 2 write units per 1 KB."""
    # Given one transaction of 3 rollup items and another of 1 (each item well under 1 KB)
    transactions = plan([record(1, "HK"), record(2, "SG"), record(3, "JP")]) + plan([record(4, "HK")])
    # Then each item written, the watermarks included, costs 2 units
    assert write_units(transactions) == 2.0 * (3 + 1) + 2.0 * (1 + 1)
    assert write_units([]) == 0.0
    assert isinstance(write_units(transactions), float)


def test_a_record_counts_in_the_hour_it_was_received_or_else_when_it_was_written() -> None:
    # Given a TDR received at 07:59:59.999 and one without receivedAt (a hand-written item)
    received = counted_record("12", "2026-11-29T07:59:59.999+00:00", "hk", Status.SUBMITTED, None)
    written = int((HOUR + timedelta(hours=3, minutes=1)).timestamp())
    unstamped = counted_record("13", None, None, Status.REJECTED, written)
    # Then the first counts at 07, HK; the second at its stream record's hour, country unknown
    assert (received.key.day, received.key.slot) == ("2026-11-29", "07#HK")
    assert (unstamped.key.day, unstamped.key.slot) == ("2026-11-29", "10#??")
    assert received.sequence_number == padded("12")


def test_the_template_stored_mapping_windows_keeps_order_and_never_drops_a_record(template: Template) -> None:
    """Lambda Developer Guide, "Using AWS Lambda with Amazon DynamoDB", tumbling windows (services-ddb-windows):
    shardId reaches the function only with TumblingWindowInSeconds; CreateEventSourceMapping API reference:
    TumblingWindowInSeconds 0-900, ParallelizationFactor 1-10, MaximumRetryAttempts and
    MaximumRecordAgeInSeconds -1 for "until the record expires"."""
    # Given the metrics function's stream mapping in the template
    properties = template.resource("MetricsFunction")["Properties"]["Events"]["Stored"]["Properties"]
    # Then it sets a tumbling window (the watermark's shardId), one batch per shard at a time, endless retries
    assert 0 < properties["TumblingWindowInSeconds"] <= 900
    assert properties["ParallelizationFactor"] == 1
    assert properties["MaximumRetryAttempts"] == -1
    assert properties["MaximumRecordAgeInSeconds"] == -1
    assert "DestinationConfig" not in properties  # nothing is ever dropped to a destination
    check_stream_mapping(properties)  # and Lambda would accept it


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"TumblingWindowInSeconds": 901}, "TumblingWindowInSeconds"),
        ({"TumblingWindowInSeconds": -1}, "TumblingWindowInSeconds"),
        ({"ParallelizationFactor": 0}, "ParallelizationFactor"),
        ({"ParallelizationFactor": 11}, "ParallelizationFactor"),
        ({"MaximumRetryAttempts": -2}, "MaximumRetryAttempts"),
        ({"MaximumRecordAgeInSeconds": 59}, "MaximumRecordAgeInSeconds"),
    ],
)
def test_the_local_stack_refuses_a_stream_mapping_lambda_refuses(changes: dict[str, Any], message: str) -> None:
    """Lambda API reference, CreateEventSourceMapping: the ranges of each property."""
    with pytest.raises(StreamMappingError, match=message):
        check_stream_mapping({"Stream": "arn:stream", **changes})


def test_the_metrics_role_keeps_the_rollups_and_reads_only_submitted_tdrs(template: Template) -> None:
    """DynamoDB Developer Guide, "Using IAM with DynamoDB transactions": an Update in TransactWriteItems is
    authorised by dynamodb:UpdateItem."""
    function = template.resource("MetricsFunction")["Properties"]
    [policy] = function["Policies"]
    assert policy["Statement"] == [
        {
            "Sid": "KeepTheRollups",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": {"Fn::GetAtt": ["RollupTable", "Arn"]},
        },
        {
            "Sid": "PairFinalStatuses",
            "Effect": "Allow",
            "Action": ["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"],
            "Resource": {"Fn::GetAtt": ["TdrTable", "Arn"]},
        },
        {  # issue 20: the guard on SAM's AWSLambdaDynamoDBExecutionRole ("*"): the TDR table's stream alone
            "Sid": "ReadNoOtherStream",
            "Effect": "Deny",
            "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            "NotResource": {"Fn::GetAtt": ["TdrTable", "StreamArn"]},
        },
    ]
    assert function["Environment"]["Variables"]["ROLLUP_TABLE_NAME"] == {"Ref": "RollupTable"}


def test_the_rehearsal_authorises_a_transaction_per_action() -> None:
    """DynamoDB Developer Guide, "Using IAM with DynamoDB transactions": TransactWriteItems is no IAM action."""
    # Given a transaction of two updates on one table and a condition check on another
    params = {
        "TransactItems": [
            {"Update": {"TableName": "rollups", "Key": {}}},
            {"Update": {"TableName": "rollups", "Key": {}}},
            {"ConditionCheck": {"TableName": "tdrs", "Key": {}}},
        ]
    }
    # Then it needs UpdateItem on the one and ConditionCheckItem on the other, each once
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    assert authorisations("dynamodb", "dynamodb", "TransactWriteItems", params, None) == [
        ("dynamodb:UpdateItem", arn + "rollups"),
        ("dynamodb:ConditionCheckItem", arn + "tdrs"),
    ]


def test_the_rollups_behind_alarm_watches_the_metrics_function_iterator_age(template: Template) -> None:
    """Lambda Developer Guide, "Using CloudWatch metrics with Lambda": IteratorAge, in milliseconds."""
    alarm = template.resource("RollupsBehindAlarm")["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "IteratorAge", "Maximum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "MetricsFunction"}}]
    assert alarm["Threshold"] == 600_000
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]


# --- the cohort view, time to a final status, SMS lists, early finals (issue 18) ---------------


def sms_record(sequence: int, tid: str, status: Status, at: datetime, country: str = "HK") -> CountedRecord:
    return CountedRecord(padded(str(sequence)), RollupKey.of(at, country), status, tid, at)


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(-5, "2s"), (0, "2s"), (2, "2s"), (4.5, "5s"), (10, "10s"), (10.001, "30s"), (61, "5m"), (43201, "more")],
)
def test_a_time_to_final_status_falls_in_the_bucket_whose_bound_it_does_not_pass(seconds: float, label: str) -> None:
    assert ttf_label(seconds) == label


def test_a_final_status_counts_against_its_submissions_hour_and_country_with_its_bucket() -> None:
    # Given an SMS submitted at 07:59:50 to VE, delivered at 08:00:30 (40 s later, the next hour)
    sent = HOUR + timedelta(minutes=59, seconds=50)
    records = [
        sms_record(1, "t1", Status.SUBMITTED, sent, "VE"),
        sms_record(2, "t1", Status.DELIVERED, sent + timedelta(seconds=40), "VE"),
    ]
    # When planned with its Submitted TDR read
    [transaction] = plan(records, submissions={"t1": Submission(sent, "ve")})
    # Then the Delivered counts in the arrival view at 08, and in the cohort of 07 VE, bucket 1m
    assert transaction.counts == {
        RollupKey.of(HOUR, "VE"): {"Submitted": 1, "cohortDelivered": 1, "ttfDelivered#1m": 1},
        RollupKey.of(HOUR + timedelta(hours=1), "VE"): {"Delivered": 1},
    }
    # And the 07 VE list names it submitted, and delivered
    assert transaction.lists[RollupKey.of(HOUR, "VE")].submitted == {"t1": iso(sent)}
    assert transaction.lists[RollupKey.of(HOUR, "VE")].finals == {"t1": "Delivered"}
    assert transaction.early == {}


def test_a_final_status_without_its_submitted_tdr_is_kept_early_with_a_condition_on_the_tdr_table() -> None:
    # Given a Rejected TDR whose Submitted TDR was not found
    [transaction] = plan([sms_record(5, "t9", Status.REJECTED, HOUR, "SG")], submissions={})
    # When its actions are built
    actions = transaction.actions("rollups", "shard-1", None, 400, HOUR, "tdrs")
    # Then it counts in the arrival view only, keeps an early item, and checks the Submitted TDR is still absent
    assert transaction.counts == {RollupKey.of(HOUR, "SG"): {"Rejected": 1}}
    kinds = [next(iter(action)) for action in actions]
    assert kinds == ["Update", "Update", "ConditionCheck", "Update"]  # rollup, early, check, watermark
    check = actions[2]["ConditionCheck"]
    assert check["TableName"] == "tdrs"
    assert check["Key"] == {"transactionId": {"S": "t9"}, "status": {"S": "Submitted"}}
    assert check["ConditionExpression"] == "attribute_not_exists(#id)"
    assert actions[1]["Update"]["ExpressionAttributeNames"]["#f0"] == "receivedRejected"


def test_a_transaction_counts_every_action_against_the_limit() -> None:
    """DynamoDB API Reference, TransactWriteItems: at most 100 actions, the watermark one of them."""
    # Given 100 SMS in 100 countries, each submitted (a rollup item and a list each)
    countries = [a + b for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJ"]
    records = [sms_record(i + 1, f"t{i}", Status.SUBMITTED, HOUR, c) for i, c in enumerate(countries)]
    # When planned
    transactions = plan(records)
    # Then no transaction passes 99 actions besides its watermark, and every record is in one
    assert [t.action_count for t in transactions] == [98, 98, 4]
    assert sum(t.records for t in transactions) == 100


def test_list_items_cost_their_size_in_write_units() -> None:
    """DynamoDB Developer Guide, "Item sizes and formats" and transactions' capacity: 2 units per KB."""
    # Given a transaction listing 40 SMS of one country (about 2.6 KB of IDs and times)
    records = [sms_record(i + 1, f"txn-{i:032d}", Status.SUBMITTED, HOUR) for i in range(40)]
    transactions = plan(records)
    # Then the list item costs 6 units (3 KB), the rollup item 2, the watermark 2
    assert write_units(transactions) == 6 + 2 + 2


def test_long_transaction_ids_cut_list_items_under_the_item_size_limit() -> None:
    """DynamoDB Developer Guide, "Quotas": an item is at most 400 KB, a TransactWriteItems at most 4 MB."""
    # Given 1,000 SMS to one country in one hour, each with a 256-character ID of 4-byte characters (1 KB)
    records = [sms_record(i + 1, f"{i:04d}" + "𝄞" * 252, Status.SUBMITTED, HOUR) for i in range(1000)]
    # When planned
    transactions = plan(records)
    # Then every list item stays under the cap, every transaction's lists under theirs, and every SMS is listed
    sizes = [_list_item_bytes(key, sms) for t in transactions for key, sms in t.lists.items()]
    assert max(sizes) <= MAX_LIST_ITEM_BYTES + 1024
    assert all(sum(_entries_bytes(s) for s in t.lists.values()) <= MAX_TRANSACTION_LIST_BYTES for t in transactions)
    assert sum(len(s.submitted) for t in transactions for s in t.lists.values()) == 1000
    assert len(transactions) == 8  # 125 entries of 1,042 bytes to a 128 KB list: 1,000 in 8


class _BatchGets:
    """A BatchGetItem that answers from a dict of Submitted TDRs, leaving the first call's last key unprocessed."""

    def __init__(self, stored: dict[str, str]) -> None:
        self.stored = stored
        self.calls: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        self.calls.append(len(keys))
        held = keys[-1:] if len(self.calls) == 1 else []
        found = [
            {"transactionId": k["transactionId"], "receivedAt": {"S": self.stored[k["transactionId"]["S"]]}}
            for k in keys
            if k not in held and k["transactionId"]["S"] in self.stored
        ]
        return {"Responses": {table: found}, "UnprocessedKeys": {table: {"Keys": held}} if held else {}}


def test_submitted_tdrs_are_read_100_keys_a_call_and_unprocessed_keys_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB API Reference, BatchGetItem: at most 100 keys a call; UnprocessedKeys are to be asked again."""
    # Given 250 final statuses' SMS, 240 of them with a stored Submitted TDR
    monkeypatch.setattr("cinnox_sms.rollup.time.sleep", lambda _: None)
    stored = {f"t{i}": iso(HOUR) for i in range(240)}
    client = _BatchGets(stored)
    # When their Submitted TDRs are read
    found = read_submissions(client, "tdrs", [f"t{i}" for i in range(250)], consistent=False)  # type: ignore[arg-type]
    # Then in calls of at most 100 keys, the unprocessed one asked again, and every stored one found
    assert client.calls == [100, 1, 100, 50]
    assert set(found) == set(stored)
    assert found["t0"] == Submission(HOUR, None)
