"""A small client for CINNOX's Open API: the outbound-SMS event subscription."""

from __future__ import annotations

import http.client
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cinnox_sms.errors import CinnoxError

RATE_LIMITED = 6451010  # CINNOX's "too many requests"
WRONG_PARAMETER = 6451000  # CINNOX's "wrong request parameter", also its answer to a failed URL verification
OUTBOUND_SMS_EVENT = "outbound-sms"
# CINNOX's public pages name a "Get Event Hook list" endpoint but not its path: this is
# the family's pattern, and `cinnox-sms subscription --list-path` can change it.
EVENT_HOOKS_PATH = "/v1/api/apps/{app_id}/event-hooks"
_RETRYABLE_HTTP = frozenset({429, 500, 502, 503, 504})
# Where the AppToken may go. CINNOX's public pages give the base URL only as a placeholder
# (examplebaseURL.com) generated per app in the Web Dashboard ("APPs & API", docs.cinnox.com/docs/open-api);
# CINNOX's own domain is cinnox.com. The CinnoxAllowedHosts parameter widens it for a private endpoint.
DEFAULT_ALLOWED_HOSTS = ("*.cinnox.com",)
# http:// only for these, the local stand-in CINNOX (and https:// to them is always allowed).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_PATTERN = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})+")
_NETLOC = re.compile(rf"(?P<host>{_LABEL}(\.{_LABEL})*)(:(?P<port>[0-9]{{1,5}}))?")


def allowed_hosts(text: str | None) -> tuple[str, ...]:
    """The host patterns of a CinnoxAllowedHosts value: comma-separated host names, each exact
    (``api.example.net``) or ``*.example.net`` (any host name ending in ``.example.net``); blank: the default."""
    entries = tuple(e.strip().lower().rstrip(".") for e in (text or "").split(",") if e.strip())
    for entry in entries:
        if not _HOST_PATTERN.fullmatch(entry):
            raise ValueError(
                f"{entry[:80]!r} in CinnoxAllowedHosts is not a host name or *.domain of at least two labels"
            )
    return entries or DEFAULT_ALLOWED_HOSTS


def checked_base_url(base_url: str, hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS) -> str:
    """``base_url`` without a trailing ``/``, when the AppToken may be sent there; else ValueError.

    https:// to a host ``hosts`` allows (or to loopback); http:// to loopback alone. No user info,
    query or fragment. The message names the host at most, never the whole URL.
    """
    parts = urllib.parse.urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    found = _NETLOC.fullmatch(parts.netloc.lower())
    odd = any(c == "\\" or c.isspace() or not c.isprintable() for c in base_url.strip())
    if scheme not in ("http", "https") or found is None or parts.query or parts.fragment or odd:
        raise ValueError(
            "the CINNOX base URL must be https://<host>[:port][/path] "
            "(no user info, query or fragment; http:// only for localhost or 127.0.0.1)"
        )
    host = found["host"].rstrip(".")
    if host in LOOPBACK_HOSTS:
        return f"{scheme}://{parts.netloc.lower()}{parts.path}".rstrip("/")
    if scheme != "https":
        raise ValueError(f"the CINNOX base URL must be https:// for {host} (http:// only for localhost or 127.0.0.1)")
    if not any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in hosts):
        raise ValueError(
            f"the CINNOX base URL's host {host} is not one CinnoxAllowedHosts allows ({', '.join(hosts)}): "
            "the AppToken goes to CINNOX alone; add a private endpoint's host to CinnoxAllowedHosts"
        )
    return f"https://{parts.netloc.lower()}{parts.path}".rstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handler copies every header, Authorization included, to whatever host a
    302/307 names (https to http too): no redirect is followed, the 3xx comes back as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Every call that carries the AppToken goes through this opener, never urllib.request.urlopen.
_OPENER = urllib.request.build_opener(_NoRedirect)


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
        allowed: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
    ) -> None:
        self._base_url = checked_base_url(base_url, allowed)
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

    def event_hooks(
        self,
        app_id: str,
        path: str = EVENT_HOOKS_PATH,
        *,
        attempts: int | None = None,
        timeout_seconds: float | None = None,
        deadline: float | None = None,
    ) -> Any:
        """What CINNOX lists as subscribed for the app (its "Get Event Hook list"); the shape is CINNOX's."""
        answer = self._call(
            "GET",
            path.format(app_id=urllib.parse.quote(app_id, safe="")),
            None,
            deadline,
            attempts=attempts,
            timeout_seconds=timeout_seconds,
        )
        return answer.get("result", answer)

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None,
        deadline: float | None,
        *,
        attempts: int | None = None,
        timeout_seconds: float | None = None,
    ) -> Any:
        last: CinnoxError | None = None
        made = 0
        for attempt in range(attempts or self._retry.max_attempts):
            if attempt:
                pause = self._retry.delay(attempt - 1)
                if deadline is not None and self._clock() + pause >= deadline:
                    break
                self._sleep(pause)
            timeout = timeout_seconds or self._timeout
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
        request = urllib.request.Request(  # noqa: S310 - scheme and host checked in __init__
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
            with _OPENER.open(request, timeout=timeout) as response:  # nosec B310  # http(s) and host checked in __init__
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
            if 300 <= status < 400:
                location = error.headers.get("Location")
                raise CinnoxError(_redirect_refused(status, location), http_status=status) from None
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


@dataclass(frozen=True)
class EventHook:
    """One entry of CINNOX's event hook list, as far as it can be read."""

    enabled: bool | None
    url: str | None


def outbound_sms_hook(listed: Any) -> EventHook | None:
    """The outbound-SMS entry of an event hook list, or None when the list does not clearly show one.

    CINNOX does not publish the list's shape: entries are matched on an ``event`` (or
    ``eventType``/``type``) field naming outbound SMS, and only typed values are believed.
    """
    entries = listed if isinstance(listed, list) else []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = next((entry[k] for k in ("event", "eventType", "type") if isinstance(entry.get(k), str)), "")
        if name.strip().lower().replace("_", "-") in (OUTBOUND_SMS_EVENT, f"{OUTBOUND_SMS_EVENT}-event"):
            enabled, url = entry.get("enabled"), entry.get("url")
            return EventHook(
                enabled=enabled if isinstance(enabled, bool) else None,
                url=url if isinstance(url, str) and url else None,
            )
    return None


def is_verification_refusal(error: CinnoxError) -> bool:
    """CINNOX's answer when its challenge to the URL failed: 400, wrong request parameter."""
    return error.http_status == 400 and error.code == WRONG_PARAMETER


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


def _redirect_refused(status: int, location: str | None) -> str:
    """What a redirect is answered with: its target's host at most (a path or query could hold anything)."""
    target = urllib.parse.urlsplit(location or "")
    where = f" to {target.scheme.lower()}://{target.hostname}" if target.scheme and target.hostname else ""
    return (
        f"CINNOX answered HTTP {status}, a redirect{where}: redirects are not followed (the AppToken goes to "
        "CinnoxBaseUrl's host alone); check CinnoxBaseUrl"
    )


def _json_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _snippet(payload: bytes) -> str:
    text = payload[:200].decode("utf-8", "replace").strip()
    return repr(text) if text else "an empty body"
