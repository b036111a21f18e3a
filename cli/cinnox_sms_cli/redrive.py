"""`cinnox-sms redrive`: send parked TDRs and overdue alerts back through the product.

Idempotent: a parked TDR is written with the product's conditional put (a repeat writes
nothing), and a queue message is deleted only once what it stands for went through,
so running it twice does nothing the second time. Alerts come from the table, as the overdue
sweep's do (cinnox_sms.overdue): every failure older than the grace period not yet alerted, at any
age, each recorded once published; the alert failure queue's records (pointers into a stream that
keeps them 24 hours) are cleared once that sweep covered them.

Each queue is read with long polls (an empty short poll can miss messages that are there), and each
batch received is handled and deleted before the next is asked for (a receipt handle is good only
while its message is hidden).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cinnox_sms.errors import StorageUnavailable, WebhookError
from cinnox_sms.parking import unpack
from cinnox_sms.webhook import ParkingDrain

if TYPE_CHECKING:
    from cinnox_sms.overdue import OverdueAlerts
    from cinnox_sms.store import TdrStore


@dataclass
class Redriven:
    landed: int = 0
    already_stored: int = 0
    left_in_queue: int = 0
    alerts_published: int = 0
    alerts_overdue: int = 0
    alerts_not_yet_due: int = 0
    failure_records_cleared: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"parked TDRs written: {self.landed} (already stored: {self.already_stored})",
            f"overdue alerts published: {self.alerts_published} (still not alerted: {self.alerts_overdue}; "
            f"younger than the grace period, left to the stream and the sweep: {self.alerts_not_yet_due})",
            f"alert failure records cleared: {self.failure_records_cleared}",
            f"messages left in their queue: {self.left_in_queue}",
        ]
        return lines + [f"  {problem}" for problem in self.problems]


WAIT_SECONDS = 1  # SQS long polling: 1 to 20 s; any above 0 asks every server ("Amazon SQS short and long polling")
HIDDEN_SECONDS = 300  # what is received stays hidden this long: a run meets each message once


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
                MessageSystemAttributeNames=["SentTimestamp"],
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


def redrive_alerts(sqs: Any, queue_url: str, sweep: OverdueAlerts, done: Redriven) -> None:
    """Publish every failure older than the grace period not yet alerted, from the table (the overdue sweep the
    schedule runs, run now: any age, however long ago the stream dropped it); then, once nothing is left overdue,
    clear the alert failure records. They only point into the stream; what they name is on the AlertsDue index
    until alerted, and the sweep takes what is younger than the grace period once it is older."""
    swept = sweep.run()
    done.alerts_published += swept.published
    done.alerts_overdue += swept.overdue
    done.alerts_not_yet_due = sweep.not_yet_due()
    if swept.overdue:
        done.problems.append(f"{swept.overdue} failed SMS still not alerted: SNS refused them (run again once mended)")
    queue = _Queue(sqs, queue_url)
    for batch in queue.batches():
        for message in batch:
            if not _is_failure_record(message):
                queue.leave(message)
                done.left_in_queue += 1
                done.problems.append(f"failure record {message['MessageId']} cannot be read: not a stream batch")
            elif swept.overdue:
                queue.leave(message)  # still a sign that alerts are owed
                done.left_in_queue += 1
            else:
                queue.done(message)
                done.failure_records_cleared += 1
    queue.release()


def _is_failure_record(message: dict[str, Any]) -> bool:
    try:
        return isinstance(json.loads(message["Body"])["DDBStreamBatchInfo"], dict)
    except (KeyError, ValueError, TypeError):
        return False
