"""The TDR (Transaction Detail Record) CINNOX posts for each outbound-SMS status change.

CINNOX documents the field names and types but no example body, and its other
events use camelCase inside a ``message`` object, so names are matched without
regard to case (or ``_``/``-``) and both a flat and a wrapped body are accepted.
"""

from __future__ import annotations

import functools
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
    # The same few names come on every request (each is folded several times): cached, but
    # only short ones, so that a body of long, random keys cannot fill the cache with them.
    return _fold_short(name) if len(name) <= _FOLD_CACHED_UP_TO else _fold(name)


def _fold(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_FOLD_CACHED_UP_TO = 64
_fold_short = functools.lru_cache(maxsize=256)(_fold)


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
    fields = _unwrap(body)
    challenge = _challenge(body) or _challenge(fields)
    folded = _fold_keys(fields)
    known = {name: value for name, value in folded.items() if name in WIRE_NAMES}
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


def _unwrap(body: dict[str, Any]) -> dict[str, Any]:
    folded = {fold(key): value for key, value in body.items()}
    message = folded.get("message")
    if isinstance(message, dict) and not any(name in folded for name in _REQUIRED):
        return message
    return body


def _challenge(fields: Mapping[str, Any]) -> str | None:
    for key, value in fields.items():
        if fold(key) == "challenge":
            if not isinstance(value, str):
                raise BadRequest(f"challenge must be a string, not {_json_kind(value)}")
            return value
    return None


def _fold_keys(fields: Mapping[str, Any]) -> dict[str, Any]:
    folded: dict[str, Any] = {}
    for key, value in fields.items():
        name = fold(key)
        if name in folded and name in WIRE_NAMES:
            raise BadRequest(f"{WIRE_NAMES[name]} is given more than once (field names are case-insensitive)")
        folded[name] = value
    return folded


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
