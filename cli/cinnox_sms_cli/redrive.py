"""`cinnox-sms redrive`: send what waits in the parking and alert-failure queues back through the product.

Idempotent: a parked TDR is written with the product's conditional put (a repeat writes
nothing), and a queue message is deleted only once what it stands for went through,
so running it twice does nothing the second time. An alert-failure record of which only some
alerts went out is replaced by one for the rest (from its first failed record, with the alerts
already published after it named), so a later run publishes only those.

Each queue is read with long polls (an empty short poll can miss messages that are there), and each
batch received is handled and deleted before the next is asked for (a receipt handle is good only
while its message is hidden).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from cinnox_sms.alerts import Alert, AlertPublisher, StreamRecord, alert_or_skip
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


WAIT_SECONDS = 1  # SQS long polling: 1 to 20 s; any above 0 asks every server ("Amazon SQS short and long polling")
HIDDEN_SECONDS = 300  # what is received stays hidden this long: a run meets each message once
PUBLISHED_AFTER = "publishedSequenceNumbers"  # our field on a narrowed failure record


class _Queue:
    """One queue as a run reads it: each message handled once, what stays put back in sight at the end."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.seen: set[str] = set()  # received, or sent by this run itself (those wait for the next run)
        self._left: list[str] = []  # receipt handles of messages that stay in the queue

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """The messages, a received batch at a time, until a long poll finds none new."""
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=HIDDEN_SECONDS,
                WaitTimeSeconds=WAIT_SECONDS,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in self.seen]
            self._left += [m["ReceiptHandle"] for m in batch if m["MessageId"] in self.seen]
            if not fresh:
                return
            self.seen |= {m["MessageId"] for m in fresh}
            yield fresh

    def done(self, message: dict[str, Any]) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def leave(self, message: dict[str, Any]) -> None:
        self._left.append(message["ReceiptHandle"])

    def release(self) -> None:
        """What stays is visible again at once: for the next run, or the queue's own consumer."""
        for start in range(0, len(self._left), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(self._left[start : start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
        self._left = []


def redrive_parked(sqs: Any, queue_url: str, store: TdrStore, done: Redriven) -> None:
    drain = ParkingDrain(store)  # the webhook's own drain: what it would land, this lands
    queue = _Queue(sqs, queue_url)
    for batch in queue.batches():
        for message in batch:
            try:
                stored = drain.land(unpack(message))
            except WebhookError as error:
                queue.leave(message)
                done.left_in_queue += 1
                done.problems.append(f"parked message {message['MessageId']} is not a TDR: {error.message}")
                continue
            except StorageUnavailable:
                queue.leave(message)
                done.left_in_queue += 1
                done.problems.append(f"parked message {message['MessageId']}: the table still cannot be written")
                continue
            done.landed += stored
            done.already_stored += not stored
            queue.done(message)
    queue.release()


def redrive_alert_failures(sqs: Any, queue_url: str, streams: Any, publisher: AlertPublisher, done: Redriven) -> None:
    queue = _Queue(sqs, queue_url)
    for batch in queue.batches():
        for message in batch:
            _redrive_failure_record(queue, streams, publisher, message, done)
    queue.release()


def _redrive_failure_record(
    queue: _Queue, streams: Any, publisher: AlertPublisher, message: dict[str, Any], done: Redriven
) -> None:
    """Publish one failure record's alerts; for those not published, a narrowed record replaces it."""
    deserialize = TypeDeserializer().deserialize
    try:
        body = json.loads(message["Body"])
        info = body["DDBStreamBatchInfo"]
        already = {str(n) for n in body.get(PUBLISHED_AFTER, [])}
        records = _stream_records(streams, info)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        queue.leave(message)
        done.left_in_queue += 1
        done.problems.append(f"failure record {message['MessageId']} cannot be read: {error}")
        return
    except streams.exceptions.TrimmedDataAccessException:
        queue.leave(message)
        done.left_in_queue += 1
        done.problems.append(f"failure record {message['MessageId']}: its stream records have expired (24 h)")
        return
    alerts = []
    for record in records:
        if record["dynamodb"]["SequenceNumber"] in already:
            continue  # published by an earlier run
        image = {k: deserialize(v) for k, v in record["dynamodb"].get("NewImage", {}).items()}
        outcome = alert_or_skip(StreamRecord(record["dynamodb"]["SequenceNumber"], record.get("eventName"), image))
        if isinstance(outcome, Alert):
            alerts.append(outcome)
    not_published = publisher.publish(alerts)
    published = [alert.key for alert in alerts if alert.key not in not_published]
    done.alerts_published += len(published)
    if not not_published:
        done.batches_redriven += 1
        queue.done(message)
        return
    # What went out is not sent again: the record is replaced by one from its first alert not published,
    # naming those published after it. (Sent before the old one is deleted: a crash between the two
    # leaves both, and the next run repeats what the narrowed one names as done, nothing more.)
    first = min(not_published, key=int)
    narrowed = body | {
        "DDBStreamBatchInfo": info | {"startSequenceNumber": first},
        PUBLISHED_AFTER: sorted((k for k in already | set(published) if int(k) > int(first)), key=int),
    }
    sent = queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(narrowed))["MessageId"]
    queue.seen.add(str(sent))  # for the next run
    queue.done(message)
    done.left_in_queue += 1
    done.problems.append(
        f"failure record {message['MessageId']}: {len(published)} alerts published, {len(not_published)} not "
        f"({next(iter(not_published.values()))}); a record of the rest stays in the queue"
    )


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
