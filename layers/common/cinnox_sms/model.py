"""The TDR (Transaction Detail Record) CINNOX posts for each outbound-SMS status change.

CINNOX documents the field names and types but no example body, and its other
events use camelCase inside a ``message`` object, so names are matched without
regard to case (or ``_``/``-``) and both a flat and a wrapped body are accepted.

A TDR is refused only when it cannot be one: what identifies it (TransactionID, Status, AppID) is
strict; any other field that does not fit is kept as it came, as text, and named in ``out_of_shape``
(a refusal is a 400, which tells CINNOX not to send the TDR again: it would be lost). A Status that
is none of the four documented is kept as sent, when it is a sane name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from cinnox_sms.errors import BadRequest
from cinnox_sms.neutral import first_unsafe
from cinnox_sms.status import FAILURE_STATUSES as FAILURE_STATUSES  # re-exported, as Status: they live
from cinnox_sms.status import Status as Status  # apart so that what only needs them loads no Tdr model

_STATUS_BY_FOLDED_NAME = {status.value.lower(): status for status in Status}

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# A Status none of the four: kept as sent (trimmed) when it is a name of at most this many printable
# characters. It is the item's sort key, and DynamoDB takes at most 1,024 bytes there (64 x 4 = 256).
MAX_UNKNOWN_STATUS_CHARACTERS = 64
# A field out of shape is stored as received, as text, cut where its JSON string would pass this many
# UTF-8 bytes (the raw body keeps it whole when the body is within item.MAX_RAW_BYTES): an alert holds each
# field's JSON about nine times, twice escaped in places, and six such fields must still make a message SNS
# takes (256 KiB). webhook.MAX_BODY_BYTES is sized so that each of the six can reach this cut.
MAX_OUT_OF_SHAPE_BYTES = 2048
_PHONE_NUMBER = re.compile(r"\+?[0-9]{1,32}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


def fold(name: str) -> str:
    """``TransactionID``, ``transactionId``, ``transaction_id`` all fold to ``transactionid``."""
    folded = _FOLDED.get(name)
    if folded is None:
        folded = name.replace("_", "").replace("-", "").lower()
        # The same few names come on every request: kept, but only short ones and only so many,
        # so that a body of long, random keys cannot fill memory with them.
        if len(name) <= 64 and len(_FOLDED) < 256:
            _FOLDED[name] = folded
    return folded


_FOLDED: dict[str, str] = {}


class Tdr(BaseModel):
    """A validated TDR. The aliases are the wire names as CINNOX documents them."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    transaction_id: Identifier = Field(alias="TransactionID")
    status: Status | str = Field(alias="Status")  # a str: a status CINNOX has not documented, kept as sent
    app_id: Identifier = Field(alias="AppID")
    type: Literal["tdr"] | None = Field(None, alias="Type")
    service_id: Identifier | None = Field(None, alias="ServiceID")
    recipient_number: str | None = Field(None, alias="RecipientNumber")
    recipient_country: str | None = Field(None, alias="RecipientCountry")
    response_code: Annotated[str, StringConstraints(max_length=64)] | None = Field(None, alias="ResponseCode")
    exception: Annotated[str, StringConstraints(max_length=1024)] | None = Field(None, alias="Exception")
    # No wire name (no alias): what parse_inbound found out of shape, as (field, value as received, as text),
    # in the order of the fields above; the fields themselves are then None. Never part of a dump.
    out_of_shape: tuple[tuple[str, str], ...] = Field((), exclude=True, repr=False)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Status | str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        name = value.strip()
        known = _STATUS_BY_FOLDED_NAME.get(name.lower())
        if known is not None:
            return known
        if 0 < len(name) <= MAX_UNKNOWN_STATUS_CHARACTERS and name.isprintable():
            return name  # stored and counted, never alerted: FAILURE_STATUSES names the failures
        raise ValueError(
            f"must be one of {', '.join(s.value for s in Status)}, or another name of 1 to "
            f"{MAX_UNKNOWN_STATUS_CHARACTERS} printable characters, not {_quote(value)}"
        )

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "tdr":
            return "tdr"
        raise ValueError(f'must be "tdr", not {_quote(value)}')

    @field_validator("recipient_number", mode="before")
    @classmethod
    def _recipient_number(cls, value: Any) -> str:
        # CINNOX documents a JSON number; strings of digits are accepted as well.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if isinstance(value, str) and _PHONE_NUMBER.fullmatch(value.strip()):
            return value.strip()
        raise ValueError("must be digits (country code and number), as a number or a string")

    @field_validator("recipient_country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> str:
        if isinstance(value, str) and _COUNTRY.fullmatch(value.strip()):
            return value.strip().upper()
        raise ValueError("must be a two-letter ISO 3166 country code")

    @field_validator("response_code", mode="before")
    @classmethod
    def _response_code(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("transaction_id", "app_id")
    @classmethod
    def _identifier(cls, value: str) -> str:
        # What identifies a TDR is shown to people as is (alerts, digests, the terminal): none of the
        # characters cinnox_sms.neutral calls unsafe (controls, bidi controls, non-characters).
        at = first_unsafe(value)
        if at is not None:
            raise ValueError(
                f"must hold no control character, bidi control or non-character "
                f"(U+{ord(value[at]):04X} at position {at + 1})"
            )
        return value

    @property
    def failed(self) -> bool:
        return self.status in FAILURE_STATUSES

    @property
    def known_status(self) -> bool:
        """False for a status CINNOX has not documented (kept as sent)."""
        return isinstance(self.status, Status)

    @property
    def out_of_shape_fields(self) -> tuple[str, ...]:
        """The fields (Python names, as StoredTdr's) that were out of shape, in wire order."""
        return tuple(field for field, _ in self.out_of_shape)


# Wire names keyed by their folded form: how a body's field names are matched (out_of_shape has none).
WIRE_NAMES = {fold(str(field.alias)): str(field.alias) for field in Tdr.model_fields.values() if field.alias}
_REQUIRED = tuple(fold(str(field.alias)) for field in Tdr.model_fields.values() if field.is_required())
# What identifies a TDR is strict (the required fields); a ``message`` object that holds either of these
# holds a TDR, and is opened whatever else the body carries.
_HOLDS_A_TDR = (fold("TransactionID"), fold("Status"))
_FIELD_BY_WIRE_NAME = {str(info.alias): field for field, info in Tdr.model_fields.items() if info.alias}
_WIRE_ORDER = {str(info.alias): index for index, info in enumerate(Tdr.model_fields.values())}


@dataclass(frozen=True)
class Inbound:
    """What one webhook request carries: a TDR, a challenge, or both."""

    tdr: Tdr | None
    challenge: str | None


def parse_inbound(body: Any) -> Inbound:
    """Classify and validate a decoded JSON body; raise ``BadRequest`` in words."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {_json_kind(body)}")
    # Each key is folded once (a TDR's fields are read on every request).
    fields = _folded_items(body)
    challenge = _challenge(fields)
    envelope: list[tuple[str, Any]] = []
    message = next((value for name, value in fields if name == "message"), None)
    if isinstance(message, dict):
        inner = _folded_items(message)
        # Opened whenever it holds a TDR (whatever the envelope carries beside it), or when the body
        # itself holds none (a challenge inside it); the envelope's fields fill what the message lacks.
        if any(name in _HOLDS_A_TDR for name, _ in inner) or not any(name in _REQUIRED for name, _ in fields):
            envelope = [(name, value) for name, value in fields if name != "message"]
            fields = inner
            challenge = challenge or _challenge(fields)
    known, twice = _known_fields(fields)
    if envelope:
        _fill_from_envelope(known, envelope)
    if challenge is not None and not any(name in known for name in _REQUIRED):
        return Inbound(tdr=None, challenge=challenge)
    # Blank optional fields are how CINNOX says "none" (ResponseCode, Exception).
    values = {
        WIRE_NAMES[name]: value
        for name, value in known.items()
        if not (name not in _REQUIRED and (value is None or (isinstance(value, str) and not value.strip())))
    }
    problems: list[Any] = []
    if not twice:
        try:
            return Inbound(tdr=Tdr.model_validate(values), challenge=challenge)
        except ValidationError as error:
            problems = error.errors(include_url=False, include_input=False)
    return Inbound(tdr=_out_of_shape(known, values, problems, twice), challenge=challenge)


def _out_of_shape(
    known: dict[str, Any], values: dict[str, Any], problems: list[Any], twice: dict[str, list[Any]]
) -> Tdr:
    """The TDR without the optional fields that do not fit, each kept as received (as text) in
    ``out_of_shape`` (one given twice as the JSON array of its values); a BadRequest when what
    identifies it (TransactionID, Status, AppID) is at fault."""
    strict = [item for item in problems if not item["loc"] or fold(str(item["loc"][0])) in _REQUIRED]
    if strict:
        raise BadRequest(_describe(strict))
    wrong = {str(item["loc"][0]) for item in problems} | twice.keys()
    kept: dict[str, Any] = {name: value for name, value in values.items() if name not in wrong}
    kept["out_of_shape"] = tuple(
        (_FIELD_BY_WIRE_NAME[name], as_received(twice[name] if name in twice else known[fold(name)]))
        for name in sorted(wrong, key=_WIRE_ORDER.__getitem__)
    )
    try:
        return Tdr.model_validate(kept)
    except ValidationError as error:  # not expected: each optional field is validated on its own
        raise BadRequest(_describe(error.errors(include_url=False, include_input=False))) from None


def as_received(value: Any) -> str:
    """A JSON value as text, as it came (a string as is, anything else as compact JSON), cut where its
    JSON string would pass MAX_OUT_OF_SHAPE_BYTES of UTF-8 (a character takes at most 6: ``\\u0000``)."""
    text = value if isinstance(value, str) else _ENCODE(value)
    if len(text) * 6 > MAX_OUT_OF_SHAPE_BYTES and _json_bytes(text) > MAX_OUT_OF_SHAPE_BYTES:
        fits, too_long = 0, len(text)  # the longest prefix that fits, by bisection: its size grows with it
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            fits, too_long = (
                (middle, too_long) if _json_bytes(text[:middle]) <= MAX_OUT_OF_SHAPE_BYTES else (fits, middle)
            )
        text = text[:fits]
    return text


def _json_bytes(text: str) -> int:
    return len(_ENCODE(text).encode()) - 2  # without its quotes


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _folded_items(fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
    known = _FOLDED.get  # fold() inlined for the names seen before: the common case
    return [(known(key) or fold(key), value) for key, value in fields.items()]


def _challenge(fields: list[tuple[str, Any]]) -> str | None:
    for name, value in fields:
        if name == "challenge":
            if not isinstance(value, str):
                raise BadRequest(f"challenge must be a string, not {_json_kind(value)}")
            return value
    return None


def _known_fields(fields: list[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The TDR's fields by folded name, and the optional ones given more than once (in two cases), by
    wire name: all their values. An identifying field given twice with two values is refused."""
    known: dict[str, Any] = {}
    twice: dict[str, list[Any]] = {}
    for name, value in fields:
        if name in WIRE_NAMES:
            if name in known:
                if name not in _REQUIRED:
                    twice.setdefault(WIRE_NAMES[name], [known[name]]).append(value)
                elif known[name] != value:
                    raise BadRequest(
                        f"{WIRE_NAMES[name]} is given more than once, with two values "
                        "(field names are case-insensitive)"
                    )
                continue
            known[name] = value
    return known, twice


def _fill_from_envelope(known: dict[str, Any], envelope: list[tuple[str, Any]]) -> None:
    """The envelope's TDR fields fill what its message lacks; an identifying field in both must agree."""
    outer, _ = _known_fields(envelope)
    for name, value in outer.items():
        if name not in known:
            known[name] = value
        elif name in _REQUIRED and known[name] != value:
            raise BadRequest(f"{WIRE_NAMES[name]} differs between the body and its message")


def _describe(problems: list[Any]) -> str:
    messages = []
    for item in problems:
        name = str(item["loc"][0]) if item["loc"] else "body"  # the wire name: Tdr is validated by alias
        if item["type"] == "missing":
            messages.append(f"{name} is required")
        else:
            message = item["msg"].removeprefix("Value error, ")
            messages.append(f"{name}: {_lower_first(message)}")
    return "; ".join(messages)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _quote(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _json_kind(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__
