"""The TDR table's item: one per (TransactionID, Status), the only place its attribute names are spelled.

Python field names are snake_case; the aliases are the attribute names deployed tables
hold, so they never change. The key attributes must match the table's KeySchema in
template.yaml: the tests create their tables from that schema, so a drift fails.

Reading is lenient, writing is not: what is written comes from a validated ``Tdr``,
while what is read may be a Scan's projection or an item edited by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from cinnox_sms.model import Tdr


def _text(value: Any) -> Any:
    # A hand edit may store a number where text is expected: shown as it reads.
    return value if value is None or isinstance(value, str) else str(value)


def _whole_seconds(value: Any) -> int | None:
    # The TTL as epoch seconds (a stream image's Decimal, an item's N text); anything else reads as none.
    try:
        seconds = Decimal(str(value))
        return int(seconds) if seconds == seconds.to_integral_value() else None
    except ArithmeticError:
        return None


Text = Annotated[str | None, BeforeValidator(_text)]

# The raw body is kept up to this many bytes of UTF-8, whole below it: the smallest power of two above the
# largest TDR the model takes in shape, every documented field at the model's limit, wrapped in a `message`
# envelope and indented (2.8 KB; a TDR as CINNOX documents it is ~260 bytes). Beyond it, what was validated
# is kept (each field out of shape up to 2 KiB) and the body's first MAX_RAW_BYTES, with ``rawBytes``.
MAX_RAW_BYTES = 4 * 1024


class StoredTdr(BaseModel):
    """One stored TDR: ``from_tdr`` + ``to_item`` to write it, ``from_item`` / ``from_stream_image`` to read it."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, extra="ignore")

    # In the order of the attributes of the PutItem request, which has always been this one.
    transaction_id: str = Field(alias="transactionId", strict=True)
    status: str = Field(alias="status", strict=True)  # a Status, one CINNOX has not documented, or a hand edit
    app_id: Text = Field(None, alias="appId")
    type: Text = Field(None, alias="type")
    service_id: Text = Field(None, alias="serviceId")
    recipient_number: Text = Field(None, alias="recipientNumber")
    recipient_country: Text = Field(None, alias="recipientCountry")
    response_code: Text = Field(None, alias="responseCode")
    exception: Text = Field(None, alias="exception")
    raw: Text = Field(None, alias="raw")  # the body as CINNOX posted it
    received_at: Text = Field(None, alias="receivedAt")  # ISO 8601, UTC, milliseconds: sorts as text
    expires_at: Annotated[int | None, BeforeValidator(_whole_seconds)] = Field(None, alias="expiresAt")  # TTL
    # The attributes whose value came out of shape, comma-separated ("recipientCountry,exception"); absent
    # when none did. Each holds its value as received, as text (cut at 2 KiB: ``raw`` has it whole when the
    # body is within MAX_RAW_BYTES).
    out_of_shape: Text = Field(None, alias="outOfShape")
    # The body's size in bytes when ``raw`` holds only its first MAX_RAW_BYTES (as text); absent when whole.
    raw_bytes: Text = Field(None, alias="rawBytes")

    @classmethod
    def attribute(cls, field: str) -> str:
        """The item's attribute name of a field (its alias), for expressions: ``attribute("transaction_id")``."""
        return str(cls.model_fields[field].alias)

    @classmethod
    def from_tdr(cls, tdr: Tdr, raw_body: str, received_at: datetime, expires_at: datetime) -> StoredTdr:
        return cls(
            **tdr.model_dump(mode="json", exclude_none=True),
            **_out_of_shape(tdr),
            **kept_raw(raw_body),
            received_at=received_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            expires_at=int(expires_at.timestamp()),
        )

    @classmethod
    def item_from_tdr(
        cls, tdr: Tdr, raw_body: str, received_at: datetime, expires_at: datetime
    ) -> dict[str, dict[str, str]]:
        """``from_tdr(...).to_item()``, built straight from the validated TDR: the webhook's hot path.

        Every field of a ``Tdr`` is text already (its JSON dump), so there is nothing to validate a
        second time; measured, half the cost (about 10 us rather than 22 us a TDR).
        """
        values = tdr.model_dump(mode="json", exclude_none=True)
        if tdr.out_of_shape:
            values |= _out_of_shape(tdr)
        values |= kept_raw(raw_body)
        values["received_at"] = received_at.astimezone(UTC).isoformat(timespec="milliseconds")
        item = {_ATTRIBUTE[field]: {"S": values[field]} for field in _TEXT_FIELDS if field in values}
        item[_ATTRIBUTE["expires_at"]] = {"N": str(int(expires_at.timestamp()))}
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Mapping[str, Any]]) -> StoredTdr:
        """From DynamoDB JSON (GetItem, Query, Scan); attributes of other types than S and N are ignored."""
        return cls.model_validate(
            {name: value.get("S", value.get("N")) for name, value in item.items() if "S" in value or "N" in value}
        )

    @classmethod
    def from_stream_image(cls, image: Mapping[str, Any]) -> StoredTdr:
        """From a stream record's NewImage as Powertools deserializes it (numbers as Decimal).

        Raises pydantic's ValidationError when transactionId or status is missing or not text.
        """
        return cls.model_validate(image)

    def to_item(self) -> dict[str, dict[str, str]]:
        """The PutItem attribute map: text as S, the TTL as N; absent fields are left out."""
        # A plain loop: on every webhook call, and twice as fast as model_dump here.
        item = {}
        for field, info in type(self).model_fields.items():
            value = getattr(self, field)
            if value is not None:
                item[str(info.alias)] = {"N": str(value)} if field == "expires_at" else {"S": value}
        return item

    def as_record(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """Plain JSON by attribute name (as an operator reads the table); absent fields are left out."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude=exclude)

    @property
    def recipient(self) -> str | None:
        """The recipient as a phone number is written: ``+`` and digits (CINNOX sends digits, maybe a ``+``)."""
        return "+" + self.recipient_number.lstrip("+") if self.recipient_number else None


# Field -> attribute name, and the text fields in the order of the PutItem request.
_ATTRIBUTE = {field: str(info.alias) for field, info in StoredTdr.model_fields.items()}
_TEXT_FIELDS = tuple(field for field in StoredTdr.model_fields if field != "expires_at")


def _out_of_shape(tdr: Tdr) -> dict[str, str]:
    """A TDR's fields out of shape, each as received, and their attribute names; empty when none is."""
    if not tdr.out_of_shape:
        return {}
    return dict(tdr.out_of_shape) | {"out_of_shape": ",".join(_ATTRIBUTE[field] for field, _ in tdr.out_of_shape)}


def kept_raw(raw_body: str) -> dict[str, str]:
    """``raw`` as the item keeps it: the body whole up to MAX_RAW_BYTES of UTF-8; beyond, its first
    MAX_RAW_BYTES (never half a character) and ``raw_bytes``, the size it had."""
    if len(raw_body) * 4 <= MAX_RAW_BYTES:  # a character is at most 4 bytes: no need to encode (a TDR, ~300)
        return {"raw": raw_body}
    encoded = raw_body.encode()
    if len(encoded) <= MAX_RAW_BYTES:
        return {"raw": raw_body}
    return {"raw": encoded[:MAX_RAW_BYTES].decode(errors="ignore"), "raw_bytes": str(len(encoded))}


def projection(*fields: str) -> tuple[str, dict[str, str]]:
    """A ProjectionExpression of fields and its ExpressionAttributeNames (``status`` is a reserved word)."""
    names = {f"#{field}": StoredTdr.attribute(field) for field in fields}
    return ", ".join(names), names
