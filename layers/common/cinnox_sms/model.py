"""The TDR (Transaction Detail Record) CINNOX posts for each outbound-SMS status change.

CINNOX documents the field names and types but no example body, and its other
events use camelCase inside a ``message`` object, so names are matched without
regard to case (or ``_``/``-``) and both a flat and a wrapped body are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from cinnox_sms.errors import BadRequest
from cinnox_sms.status import FAILURE_STATUSES as FAILURE_STATUSES  # re-exported, as Status: they live
from cinnox_sms.status import Status as Status  # apart so that what only needs them loads no Tdr model

_STATUS_BY_FOLDED_NAME = {status.value.lower(): status for status in Status}

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
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
    status: Status = Field(alias="Status")
    app_id: Identifier = Field(alias="AppID")
    type: Literal["tdr"] | None = Field(None, alias="Type")
    service_id: Identifier | None = Field(None, alias="ServiceID")
    recipient_number: str | None = Field(None, alias="RecipientNumber")
    recipient_country: str | None = Field(None, alias="RecipientCountry")
    response_code: Annotated[str, StringConstraints(max_length=64)] | None = Field(None, alias="ResponseCode")
    exception: Annotated[str, StringConstraints(max_length=1024)] | None = Field(None, alias="Exception")

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Status:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        try:
            return _STATUS_BY_FOLDED_NAME[value.strip().lower()]
        except KeyError:
            raise ValueError(f"must be one of {', '.join(s.value for s in Status)}, not {_quote(value)}") from None

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

    @property
    def failed(self) -> bool:
        return self.status.is_failure


# Wire names keyed by their folded form: how a body's field names are matched.
WIRE_NAMES = {fold(str(field.alias)): str(field.alias) for field in Tdr.model_fields.values()}
_REQUIRED = tuple(fold(str(field.alias)) for field in Tdr.model_fields.values() if field.is_required())


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
    if not any(name in _REQUIRED for name, _ in fields):
        message = dict(fields).get("message")
        if isinstance(message, dict):
            fields = _folded_items(message)
            challenge = challenge or _challenge(fields)
    known = _known_fields(fields)
    if challenge is not None and not any(name in known for name in _REQUIRED):
        return Inbound(tdr=None, challenge=challenge)
    # Blank optional fields are how CINNOX says "none" (ResponseCode, Exception).
    values = {
        WIRE_NAMES[name]: value
        for name, value in known.items()
        if not (name not in _REQUIRED and (value is None or (isinstance(value, str) and not value.strip())))
    }
    try:
        tdr = Tdr.model_validate(values)
    except ValidationError as error:
        raise BadRequest(_describe(error)) from None
    return Inbound(tdr=tdr, challenge=challenge)


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


def _known_fields(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """The TDR's fields by folded name; a field given twice (in any case) is refused."""
    known: dict[str, Any] = {}
    for name, value in fields:
        if name in WIRE_NAMES:
            if name in known:
                raise BadRequest(f"{WIRE_NAMES[name]} is given more than once (field names are case-insensitive)")
            known[name] = value
    return known


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        name = str(item["loc"][0]) if item["loc"] else "body"  # the wire name: Tdr is validated by alias
        if item["type"] == "missing":
            problems.append(f"{name} is required")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {_lower_first(message)}")
    return "; ".join(problems)


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
