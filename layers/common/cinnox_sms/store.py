"""DynamoDB storage of TDRs: one item per (TransactionID, Status), written once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cinnox_sms.model import Tdr

# Item attribute names. The key attributes must match the table's KeySchema in
# template.yaml; the tests create their tables from that schema, so a drift fails.
ITEM_ATTRIBUTES = {
    "transactionid": "transactionId",
    "status": "status",
    "appid": "appId",
    "serviceid": "serviceId",
    "type": "type",
    "recipientnumber": "recipientNumber",
    "recipientcountry": "recipientCountry",
    "responsecode": "responseCode",
    "exception": "exception",
}
RAW_BODY = "raw"
RECEIVED_AT = "receivedAt"
EXPIRES_AT = "expiresAt"

_NEW_ITEM_ONLY = "attribute_not_exists(transactionId)"


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
            raise StorageUnavailable(tdr.transactionid) from error
        except BotoCoreError as error:
            raise StorageUnavailable(tdr.transactionid) from error
        return True


def to_item(tdr: Tdr, raw_body: str, received_at: datetime, expires_at: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        ITEM_ATTRIBUTES[name]: {"S": str(value)} for name, value in tdr.model_dump(exclude_none=True).items()
    }
    item[RAW_BODY] = {"S": raw_body}
    item[RECEIVED_AT] = {"S": received_at.astimezone(UTC).isoformat(timespec="milliseconds")}
    item[EXPIRES_AT] = {"N": str(int(expires_at.timestamp()))}
    return item
