"""`cinnox-sms redrive`: send what waits in the parking and alert-failure queues back through the product.

Idempotent: a parked TDR is written with the product's conditional put (a repeat writes
nothing), and a queue message is deleted only once what it stands for went through,
so running it twice does nothing the second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from cinnox_sms.alerts import AlertPublisher, dispatch
from cinnox_sms.errors import StorageUnavailable, WebhookError
from cinnox_sms.parking import unpack
from cinnox_sms.webhook import ParkingDrain

if TYPE_CHECKING:
    from cinnox_sms.store import TdrStore


@dataclass
class Redriven:
    landed: int = 0
    already_stored: int = 0
    left_in_queue: int = 0
    alerts_published: int = 0
    batches_redriven: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"parked TDRs written: {self.landed} (already stored: {self.already_stored})",
            f"alert batches redriven: {self.batches_redriven} ({self.alerts_published} alerts published)",
            f"messages left in their queue: {self.left_in_queue}",
        ]
        return lines + [f"  {problem}" for problem in self.problems]


def _messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now in the queue, each received once (hidden for a minute meanwhile)."""
    seen: dict[str, dict[str, Any]] = {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return list(seen.values())
        seen |= {m["MessageId"]: m for m in fresh}


def redrive_parked(sqs: Any, queue_url: str, store: TdrStore, done: Redriven) -> None:
    drain = ParkingDrain(store)  # the webhook's own drain: what it would land, this lands
    for message in _messages(sqs, queue_url):
        try:
            stored = drain.land(unpack(message))
        except WebhookError as error:
            done.left_in_queue += 1
            done.problems.append(f"parked message {message['MessageId']} is not a TDR: {error.message}")
            continue
        except StorageUnavailable:
            done.left_in_queue += 1
            done.problems.append(f"parked message {message['MessageId']}: the table still cannot be written")
            continue
        done.landed += stored
        done.already_stored += not stored
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def redrive_alert_failures(sqs: Any, queue_url: str, streams: Any, publisher: AlertPublisher, done: Redriven) -> None:
    deserialize = TypeDeserializer().deserialize
    for message in _messages(sqs, queue_url):
        try:
            info = json.loads(message["Body"])["DDBStreamBatchInfo"]
            records = _stream_records(streams, info)
        except (KeyError, ValueError) as error:
            done.left_in_queue += 1
            done.problems.append(f"failure record {message['MessageId']} cannot be read: {error}")
            continue
        except streams.exceptions.TrimmedDataAccessException:
            done.left_in_queue += 1
            done.problems.append(f"failure record {message['MessageId']}: its stream records have expired (24 h)")
            continue
        images = [
            (r["dynamodb"]["SequenceNumber"], {k: deserialize(v) for k, v in r["dynamodb"].get("NewImage", {}).items()})
            for r in records
            if r.get("eventName") == "INSERT"
        ]
        failed = dispatch(images, publisher)
        if failed:
            done.left_in_queue += 1
            done.problems.append(f"failure record {message['MessageId']}: {next(iter(failed.values()))}")
            continue
        done.batches_redriven += 1
        done.alerts_published += sum(1 for _, image in images if image.get("status") in ("Undelivered", "Rejected"))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _stream_records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a failure record names, from its first to its last sequence number."""
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    iterator = streams.get_shard_iterator(
        StreamArn=info["streamArn"],
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return records
            if int(record["dynamodb"]["SequenceNumber"]) >= start:
                records.append(record)
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records
