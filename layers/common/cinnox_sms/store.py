"""DynamoDB storage of TDRs: one item per (TransactionID, Status), written once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.alert_ledger import ALERT_DUE, due_shard
from cinnox_sms.errors import StorageUnavailable
from cinnox_sms.item import StoredTdr
from cinnox_sms.status import FAILURE_STATUSES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cinnox_sms.model import Tdr

_FAILURES = frozenset(status.value for status in FAILURE_STATUSES)
# Written once: a repeat of the same key is refused and so adds no stream record.
_NEW_ITEM_ONLY = f"attribute_not_exists({StoredTdr.attribute('transaction_id')})"


class TdrStore:
    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int) -> None:
        self._client = client
        self._table_name = table_name
        self._retention = timedelta(days=retention_days)

    def put(self, tdr: Tdr, raw_body: str, received_at: datetime) -> bool:
        """Store the TDR; return False when this (TransactionID, Status) was stored before.

        One conditional PutItem: a repeat writes nothing and so adds no stream record.
        """
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=to_item(tdr, raw_body, received_at, received_at + self._retention),
                ConditionExpression=_NEW_ITEM_ONLY,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailable(tdr.transaction_id) from error
        except BotoCoreError as error:
            raise StorageUnavailable(tdr.transaction_id) from error
        return True


def to_item(tdr: Tdr, raw_body: str, received_at: datetime, expires_at: datetime) -> dict[str, Any]:
    """The PutItem attribute map of a TDR, what ``put`` writes (the benchmark sizes items with it); a failure
    is written owed an alert (on the AlertsDue index)."""
    item = StoredTdr.item_from_tdr(tdr, raw_body, received_at, expires_at)
    if tdr.status in _FAILURES:
        item[ALERT_DUE] = {"S": due_shard(tdr.transaction_id)}
    return item
