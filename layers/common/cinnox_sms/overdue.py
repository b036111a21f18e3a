"""The overdue sweep: every failed SMS not alerted within the grace period is published from the table.

The stream path (AlertFunction) alerts a failure within seconds; when it cannot (SNS refusing, a key policy
broken, the stream's records expired after 24 hours), the failure stays on the AlertsDue index, and this
sweep, on its schedule and from `cinnox-sms redrive`, publishes it once it is older than the grace period:

1. Query the index, shard by shard, for failures received before ``now - grace``.
2. Claim each (a conditional UpdateItem that returns the item whole): one sweep wins an item, and one whose
   alert is recorded meanwhile is left alone.
3. Publish the claimed in batches of ten; record each published (``alertedAt``, off the index); release
   the claims of those SNS refused, for the next sweep.

What it leaves is counted as overdue: the AlertsOverdue metric, on which an alarm fires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cinnox_sms.alert_ledger import AlertLedger, Due
from cinnox_sms.alert_ledger import timestamp as _iso
from cinnox_sms.alerts import INSERT, Alert, AlertPublisher, StreamRecord, alert_or_skip

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

    from cinnox_sms.settings import OverdueAlertSettings

# A claim lapses after this: longer than the sweep function's Timeout (300 s, template.yaml; a test checks),
# so that a sweep that died lets the next one take its items.
CLAIM_LEASE = timedelta(minutes=10)
# Claimed and published a batch at a time: a sweep that dies holds at most this many claims.
SWEEP_CHUNK = 100


@dataclass
class Swept:
    """What one sweep did: the failures it found due, published, found alerted meanwhile, and left overdue."""

    found: int = 0
    published: int = 0
    already: int = 0  # alerted (or claimed by another sweep) between the Query and the claim
    overdue: int = 0  # found due and still not alerted when it ended: SNS refused them, or not readable
    unrecorded: int = 0  # published, but the record of it failed: may go out again


class OverdueAlerts:
    def __init__(
        self,
        ledger: AlertLedger,
        publisher: AlertPublisher,
        grace: timedelta,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ledger = ledger
        self._publisher = publisher
        self._grace = grace
        self._now = now

    @classmethod
    def from_settings(
        cls,
        settings: OverdueAlertSettings,
        dynamodb: DynamoDBClient,
        sns: SNSClient,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> OverdueAlerts:
        return cls(
            AlertLedger(dynamodb, settings.tdr_table_name),
            AlertPublisher(sns, settings.topic_arn),
            timedelta(minutes=settings.grace_minutes),
            now=now,
        )

    def run(self) -> Swept:
        swept = Swept()
        chunk: list[Due] = []
        for due in self._ledger.due(self._now() - self._grace):
            swept.found += 1
            chunk.append(due)
            if len(chunk) == SWEEP_CHUNK:
                self._sweep(chunk, swept)
                chunk = []
        if chunk:
            self._sweep(chunk, swept)
        return swept

    def not_yet_due(self) -> int:
        """The failures not yet alerted that are younger than the grace period (the stream's, for now)."""
        now = self._now()
        return sum(1 for due in self._ledger.due(now + timedelta(days=1)) if due.received_at >= _iso(now - self._grace))

    def _sweep(self, chunk: list[Due], swept: Swept) -> None:
        from boto3.dynamodb.types import TypeDeserializer

        deserialize = TypeDeserializer().deserialize
        alerts: list[Alert] = []
        for due in chunk:
            item = self._ledger.claim(due, self._now(), CLAIM_LEASE)
            if item is None:
                swept.already += 1
                continue
            image: dict[str, Any] = {name: deserialize(value) for name, value in item.items()}
            outcome = alert_or_skip(StreamRecord(f"{due.transaction_id}/{due.status}", INSERT, image))
            if isinstance(outcome, Alert):
                alerts.append(outcome)
            else:  # not an alert after all (edited by hand): off the index, as if alerted, so it is not found again
                self._ledger.record([(due.transaction_id, due.status)], self._now())
        not_published = self._publisher.publish(alerts)
        sent = [(a.tdr.transaction_id, a.tdr.status) for a in alerts if a.key not in not_published]
        swept.published += len(sent)
        swept.unrecorded += len(self._ledger.record(sent, self._now()))
        refused = [(a.tdr.transaction_id, a.tdr.status) for a in alerts if a.key in not_published]
        swept.overdue += len(refused)
        self._ledger.release(refused)
