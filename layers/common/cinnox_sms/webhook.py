"""The webhook's domain logic: who may post, what a body must be, what is stored."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cinnox_sms.errors import BadRequest, Forbidden, NotFound, ParkingUnavailable, PayloadTooLarge, StorageUnavailable
from cinnox_sms.item import StoredTdr  # loaded by the store anyway: no cost on the cold start
from cinnox_sms.model import Tdr, parse_inbound

if TYPE_CHECKING:
    from cinnox_sms.parking import ParkedTdr, ParkingQueue
    from cinnox_sms.secret_label import WebhookSecrets
    from cinnox_sms.store import TdrStore

# A body over this is refused (413): the smallest power of two that holds a TDR whose identifying fields
# are at their limits and whose six optional fields each reach MAX_OUT_OF_SHAPE_BYTES, the most the item
# keeps of one (13.0 KB; tests/integration/test_webhook_limits.py builds it). A real TDR is ~260 bytes.
MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 32


@dataclass(frozen=True)
class Receipt:
    tdr: Tdr | None
    challenge: str | None
    duplicate: bool = False
    parked: bool = False

    def result(self) -> dict[str, Any]:
        """The ``result`` object of the 200 answer."""
        result: dict[str, Any] = {}
        if self.tdr is not None:
            result |= {
                "transactionId": self.tdr.transaction_id,
                "status": str(self.tdr.status),  # a StrEnum's str() is its value; a status we do not know as is
                "duplicate": self.duplicate,
            }
            if self.tdr.out_of_shape:  # stored as received and flagged: the sender may want to know
                result["outOfShape"] = [StoredTdr.attribute(field) for field in self.tdr.out_of_shape_fields]
            if self.parked:
                result["parked"] = True
        if self.challenge is not None:
            result["challenge"] = self.challenge
        return result


class SecretUnavailable(Exception):
    """The webhook's secret could not be read (after the SDK's retries); the sender should retry."""


class CachedSecret[T]:
    """What a secret read returned, kept for ``max_age`` seconds; called with ``fresh=True`` it is read afresh.

    The caching of Powertools' ``SecretsProvider.get(max_age=..., force_fetch=...)``, without importing
    every parameter provider (AppConfig, SSM, DynamoDB) on the webhook's cold start; ``age`` says how old
    the kept read is (timed from just before it was made, so never younger than what it saw).
    """

    def __init__(self, read: Callable[[], T], max_age: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._max_age = max_age
        self._monotonic = monotonic
        self._value: T | None = None
        self._read_at = 0.0

    def __call__(self, fresh: bool) -> T:
        now = self._monotonic()
        if fresh or self._value is None or now - self._read_at >= self._max_age:
            self._value = self._read()  # a failed read keeps nothing: the last good one stays, with its age
            self._read_at = now
        return self._value

    def age(self) -> float:
        return self._monotonic() - self._read_at


class WebhookService:
    """Receives one POST: checks the secret path, parses, stores."""

    def __init__(
        self,
        *,
        app_id: str,
        webhook_secret: CachedSecret[WebhookSecrets],
        store: TdrStore,
        parking: ParkingQueue | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh_interval: float = 10.0,
        subscribed_max_age: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app_id = app_id
        self._webhook_secret = webhook_secret  # called with True to bypass the cache
        self._refresh_interval = refresh_interval
        self._subscribed_max_age = subscribed_max_age
        self._monotonic = monotonic
        self._last_refresh = -refresh_interval
        self._store = store
        self._parking = parking
        self._clock = clock

    def authorise(self, raw_path: str) -> None:
        """The secret is the last path segment; anything else is answered as not found.

        The current value's URL is accepted, and, while a rotation waits for CINNOX or was refused by it,
        the URL CINNOX was last subscribed with (``cinnox_sms.secret_label``): that one only on a read at
        most ``subscribed_max_age`` old, so that once the custom resource moves the label (CINNOX accepted
        the new URL) the old URL stops within that time on every warm instance. docs/security.md has the
        whole window.
        """
        segment = raw_path.rstrip("\n").rsplit("/", 1)[-1].encode()
        secrets = self._webhook_secret(False)
        if hmac.compare_digest(segment, secrets.current.encode()):
            return
        if secrets.subscribed is not None and hmac.compare_digest(segment, secrets.subscribed.encode()):
            # Only who holds that secret gets here: re-read at most once per subscribed_max_age.
            if self._webhook_secret.age() < self._subscribed_max_age or _accepts(self._webhook_secret(True), segment):
                return
            raise NotFound("not found")
        # The secret may have been rotated since it was cached: read it afresh, but at
        # most once per interval, so that probing wrong URLs cannot drive Secrets Manager.
        now = self._monotonic()
        if now - self._last_refresh >= self._refresh_interval:
            self._last_refresh = now
            if _accepts(self._webhook_secret(True), segment):
                return
        raise NotFound("not found")

    def receive(self, raw_path: str, body: str | None, is_base64_encoded: bool) -> Receipt:
        self.authorise(raw_path)
        text = decode_body(body, is_base64_encoded)
        inbound = parse_inbound(parse_json(text))
        if inbound.tdr is None:
            return Receipt(tdr=None, challenge=inbound.challenge)
        if inbound.tdr.app_id != self._app_id:
            raise Forbidden("AppID does not match the app this webhook was subscribed for")
        received_at = self._clock()
        try:
            stored = self._store.put(inbound.tdr, text, received_at)
        except StorageUnavailable:
            if self._parking is None:
                raise
            # Accepted all the same: it waits in the queue and lands when the table is back.
            try:
                self._parking.park(text, received_at)
            except ParkingUnavailable as parking_error:
                raise StorageUnavailable(inbound.tdr.transaction_id, parking=str(parking_error)) from parking_error
            return Receipt(tdr=inbound.tdr, challenge=inbound.challenge, parked=True)
        return Receipt(tdr=inbound.tdr, challenge=inbound.challenge, duplicate=not stored)

    @property
    def store(self) -> TdrStore:
        return self._store


def _accepts(secrets: WebhookSecrets, segment: bytes) -> bool:
    """Whether the segment is either accepted value, each compared in constant time."""
    current = hmac.compare_digest(segment, secrets.current.encode())
    return current or (secrets.subscribed is not None and hmac.compare_digest(segment, secrets.subscribed.encode()))


class ParkingDrain:
    """Writes parked TDRs to the table: for the parked-TDR function and `cinnox-sms redrive` alike."""

    def __init__(self, store: TdrStore) -> None:
        self._store = store

    def land(self, parked: ParkedTdr) -> bool:
        """True when written, False when it was stored already.

        A message that holds no TDR is refused (BadRequest) and so stays in the queue for an operator
        to look at; StorageUnavailable: the table still cannot be written, try again later.
        """
        inbound = parse_inbound(parse_json(parked.raw_body))
        if inbound.tdr is None:
            raise BadRequest("no TDR in the message")
        return self._store.put(inbound.tdr, parked.raw_body, parked.received_at)


def decode_body(body: str | None, is_base64_encoded: bool) -> str:
    """The request body as text; API Gateway base64-encodes bodies it deems binary."""
    if not body:
        raise BadRequest("the body is empty; a JSON object is expected")
    if is_base64_encoded:
        # Refuse before decoding what cannot fit anyway.
        if len(body) > (MAX_BODY_BYTES // 3 + 1) * 4:
            raise _too_large()
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is marked base64-encoded but is not valid base64") from None
    else:
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text; a JSON object is expected") from None


def parse_json(text: str) -> Any:
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"the body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    # Only a text that could break a rule is walked: a lone surrogate can come only from a \u escape
    # (decode_body refuses raw ones), and nesting deeper than MAX_DEPTH needs more brackets than that.
    if "\\u" in text or text.count("{") + text.count("[") > MAX_DEPTH:
        _check_structure(value)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Each JSON object, refused when a name repeats (RFC 8259: names SHOULD be unique; json takes the last
    silently): ``"Status":"Delivered","Status":"Undelivered"`` is no TDR we can tell. 0.4-0.7 us a TDR."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        name = json.dumps(key)  # the first key given twice; quoted, escaped, and cut when long
        name = name if len(name) <= 40 else name[:36] + '..."'
        raise BadRequest(f"the key {name} is given twice in one object (at any level, a key must be unique)")
    return found


# One, not one per request as json.loads(...) makes; each object through _unique_keys.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def _check_structure(value: Any) -> None:
    """Refuse deep nesting, and lone surrogates (``"\\ud800"``) that no store or answer could encode."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, str):
            _check_text(current)
        elif isinstance(current, dict | list):
            if depth > MAX_DEPTH:
                raise BadRequest(f"the body is nested too deeply (at most {MAX_DEPTH} levels)")
            if isinstance(current, dict):
                stack.extend((key, depth) for key in current)
                stack.extend((child, depth + 1) for child in current.values())
            else:
                stack.extend((child, depth + 1) for child in current)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body holds an invalid Unicode escape (a lone surrogate)") from None


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
