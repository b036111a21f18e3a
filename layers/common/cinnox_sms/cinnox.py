"""A small client for CINNOX's Open API: the outbound-SMS event subscription."""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cinnox_sms.errors import CinnoxError

RATE_LIMITED = 6451010  # CINNOX's "too many requests"
# CINNOX's public pages name a "Get Event Hook list" endpoint but not its path: this is
# the family's pattern, and `cinnox-sms subscription --list-path` can change it.
EVENT_HOOKS_PATH = "/v1/api/apps/{app_id}/event-hooks"
_RETRYABLE_HTTP = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 0.5
    cap_seconds: float = 8.0

    def delay(self, attempt: int) -> float:
        """Exponential back-off with full jitter, before attempt number ``attempt + 1``."""
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))  # noqa: S311  # nosec B311  # jitter, not crypto


@dataclass(frozen=True)
class SubscriptionState:
    enabled: bool | None
    updated_at: str | None


class _Retryable(CinnoxError):
    pass


class CinnoxClient:
    def __init__(
        self,
        base_url: str,
        app_token: str,
        *,
        timeout_seconds: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        scheme = urllib.parse.urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError("the CINNOX base URL must start with https:// (or http:// for local testing)")
        self._base_url = base_url.rstrip("/")
        self._app_token = app_token
        self._timeout = timeout_seconds
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock

    def set_outbound_sms_subscription(
        self, app_id: str, *, enabled: bool, url: str, deadline: float | None = None
    ) -> SubscriptionState:
        """PATCH the subscription, retrying what is worth retrying until ``deadline`` (monotonic)."""
        path = f"/v1/api/apps/{urllib.parse.quote(app_id, safe='')}/outbound-sms-event-sub"
        body = json.dumps({"enabled": enabled, "url": url}).encode()
        return _subscription_state(self._call("PATCH", path, body, deadline), enabled)

    def event_hooks(self, app_id: str, path: str = EVENT_HOOKS_PATH) -> Any:
        """What CINNOX lists as subscribed for the app (its "Get Event Hook list"); the shape is CINNOX's."""
        answer = self._call("GET", path.format(app_id=urllib.parse.quote(app_id, safe="")), None, None)
        return answer.get("result", answer)

    def _call(self, method: str, path: str, body: bytes | None, deadline: float | None) -> Any:
        last: CinnoxError | None = None
        made = 0
        for attempt in range(self._retry.max_attempts):
            if attempt:
                pause = self._retry.delay(attempt - 1)
                if deadline is not None and self._clock() + pause >= deadline:
                    break
                self._sleep(pause)
            timeout = self._timeout
            if deadline is not None:
                timeout = min(timeout, deadline - self._clock())
                if timeout <= 0:
                    break
            made += 1
            try:
                return self._send(method, path, body, timeout)
            except _Retryable as error:
                last = error
                continue
        if last is None:
            raise CinnoxError("no time was left to call CINNOX before the deadline")
        raise CinnoxError(
            f"gave up after {made} attempt(s); last answer: {last}", code=last.code, http_status=last.http_status
        )

    def _send(self, method: str, path: str, body: bytes | None, timeout: float) -> Any:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._base_url + path,
            data=body,
            method=method,
            headers={
                "Authorization": f"Bearer {self._app_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310  # http(s) checked in __init__
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except http.client.HTTPException as error:  # a garbled answer
            raise _Retryable(f"unreadable answer: {type(error).__name__}") from None
        except TimeoutError:
            raise _Retryable(f"no answer within {timeout:.1f} s") from None
        except OSError as error:  # URLError, refused or reset connections
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"no answer within {timeout:.1f} s") from None
            raise _Retryable(f"could not connect: {reason}") from None
        answer = _json_or_none(payload)
        code = answer.get("code") if isinstance(answer, dict) else None
        message = answer.get("message") if isinstance(answer, dict) else None
        if status in _RETRYABLE_HTTP or code == RATE_LIMITED:
            raise _Retryable(str(message or _snippet(payload)), code=code, http_status=status)
        if not 200 <= status < 300:
            raise CinnoxError(str(message or _snippet(payload)), code=code, http_status=status)
        if not isinstance(answer, dict):
            raise CinnoxError(f"unexpected answer: {_snippet(payload)}", http_status=status)
        if code not in (None, 0) and not isinstance(answer.get("result"), dict):
            raise CinnoxError(str(message or "no result"), code=code, http_status=status)
        return answer


def _subscription_state(answer: dict[str, Any], requested: bool) -> SubscriptionState:
    result = answer.get("result")
    result = result if isinstance(result, dict) else {}
    enabled = result.get("enabled")
    if isinstance(enabled, bool) and enabled is not requested:
        raise CinnoxError(
            f"CINNOX answered enabled={str(enabled).lower()} to a request for {str(requested).lower()}",
            code=answer.get("code"),
        )
    updated_at = result.get("updatedAt")
    return SubscriptionState(
        enabled=enabled if isinstance(enabled, bool) else None,
        updated_at=updated_at if isinstance(updated_at, str) else None,
    )


def _json_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _snippet(payload: bytes) -> str:
    text = payload[:200].decode("utf-8", "replace").strip()
    return repr(text) if text else "an empty body"
