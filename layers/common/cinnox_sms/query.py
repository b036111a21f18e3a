"""One SMS's history and current status, with one DynamoDB Query."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cinnox_sms.item import StoredTdr
from cinnox_sms.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# TDRs carry no timestamp and may arrive in any order: a terminal status outranks
# Submitted whatever came first. Between terminal statuses, the later report wins.
RANK = {Status.SUBMITTED: 0, Status.DELIVERED: 1, Status.UNDELIVERED: 1, Status.REJECTED: 1}


@dataclass(frozen=True)
class StatusReport:
    status: Status
    received_at: str  # "" when the item has none
    stored: StoredTdr


@dataclass(frozen=True)
class SmsStatus:
    transaction_id: str
    history: list[StatusReport]  # in order of rank, then of arrival

    @property
    def current(self) -> Status:
        return self.history[-1].status

    @property
    def failed(self) -> bool:
        return self.current.is_failure


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
    reports = [StatusReport(Status(s.status), s.received_at or "", s) for s in stored]
    reports.sort(key=lambda report: (RANK[report.status], report.received_at))
    return SmsStatus(transaction_id, reports)
