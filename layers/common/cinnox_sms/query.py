"""One SMS's history and current status, with one DynamoDB Query."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cinnox_sms.item import StoredTdr
from cinnox_sms.status import FAILURE_STATUSES, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# TDRs carry no timestamp and may arrive in any order: a terminal status outranks
# Submitted whatever came first. Between terminal statuses, the later report wins.
RANK: dict[str, int] = {Status.SUBMITTED: 0, Status.DELIVERED: 1, Status.UNDELIVERED: 1, Status.REJECTED: 1}
# A status CINNOX has not documented (stored as sent) says nothing we can rank: shown in the history,
# current only when nothing else is stored.
UNKNOWN_RANK = -1


@dataclass(frozen=True)
class StatusReport:
    status: Status | str  # a str: a status we do not know, as stored
    received_at: str  # "" when the item has none
    stored: StoredTdr

    @property
    def known(self) -> bool:
        return isinstance(self.status, Status)


@dataclass(frozen=True)
class SmsStatus:
    transaction_id: str
    history: list[StatusReport]  # in order of rank, then of arrival

    @property
    def current(self) -> Status | str:
        return self.history[-1].status

    @property
    def failed(self) -> bool:
        return self.current in FAILURE_STATUSES


def current_status(reports: Iterable[tuple[Status, str]]) -> Status:
    """The highest-ranked status; among equals, the one received last."""
    return max(reports, key=lambda report: (RANK[report[0]], report[1]))[0]


def sms_status(client: DynamoDBClient, table_name: str, transaction_id: str) -> SmsStatus | None:
    """The stored history of one SMS, or None when no TDR of it was stored."""
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "#id = :id",
        "ExpressionAttributeNames": {"#id": StoredTdr.attribute("transaction_id")},
        "ExpressionAttributeValues": {":id": {"S": transaction_id}},
        "ConsistentRead": True,
    }
    while True:  # one page in practice: an SMS has at most four statuses
        page = client.query(**arguments)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if not items:
        return None
    stored = [StoredTdr.from_item(item) for item in items]
    reports = [StatusReport(_status(s.status), s.received_at or "", s) for s in stored]
    reports.sort(key=lambda report: (RANK.get(report.status, UNKNOWN_RANK), report.received_at))
    return SmsStatus(transaction_id, reports)


def _status(name: str) -> Status | str:
    return Status(name) if name in Status._value2member_map_ else name
