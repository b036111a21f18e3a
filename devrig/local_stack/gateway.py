"""API Gateway HTTP API, locally: the template's routes, payload format 2.0."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_stack.httpserver import JsonHandler, Server
from local_stack.runtime import FunctionError
from local_stack.template import ACCOUNT

_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)
MAX_PAYLOAD = 10 * 1024 * 1024  # HTTP APIs refuse larger requests
TOO_MANY_REQUESTS = b'{"message":"Too Many Requests"}'
# "Amazon API Gateway quotas": 10,000 requests/s per account and Region across its APIs, with a
# bucket of 5,000; a route's own limits apply within it ("Throttling requests to your HTTP API").
ACCOUNT_RATE_LIMIT = 10_000.0
ACCOUNT_BURST_LIMIT = 5_000


@dataclass(frozen=True)
class Throttle:
    """A route's ThrottlingRateLimit (tokens per second) and ThrottlingBurstLimit (bucket size)."""

    rate: float
    burst: int

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> Throttle | None:
        """From DefaultRouteSettings or one entry of RouteSettings; None if they set no limit."""
        settings = settings or {}
        rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
        if rate is None and burst is None:
            return None
        try:
            throttle = cls(
                float(ACCOUNT_RATE_LIMIT if rate is None else rate),
                int(ACCOUNT_BURST_LIMIT if burst is None else burst),
            )
        except (TypeError, ValueError):
            raise ValueError(f"throttling limits must be numbers, not rate {rate!r} and burst {burst!r}") from None
        if throttle.rate < 0 or throttle.burst < 0:
            raise ValueError(f"throttling limits cannot be negative (rate {rate}, burst {burst})")
        return throttle


class TokenBucket:
    """API Gateway's throttle: a request takes a token; tokens refill at ``rate`` per second up to
    ``burst``; the bucket starts full. Thread-safe; a lock held for a few arithmetic operations."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = throttle
        self._clock = clock
        self._tokens = float(throttle.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.throttle.burst), self._tokens + (now - self._at) * self.throttle.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def give_back(self) -> None:
        """Return a token taken for a request another bucket refused."""
        with self._lock:
            self._tokens = min(float(self.throttle.burst), self._tokens + 1.0)


# The $context variables the local gateway can write to an access log ("Customizing HTTP API
# access logs"). $context.path is refused: the webhook's path carries its secret.
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z]\w*(?:\.[A-Za-z]\w*)*)")
ACCESS_LOG_VARIABLES = frozenset(
    {
        "apiId",
        "domainName",
        "error.message",
        "extendedRequestId",
        "httpMethod",
        "identity.sourceIp",
        "identity.userAgent",
        "integrationErrorMessage",
        "integrationLatency",
        "integrationStatus",
        "protocol",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "responseLatency",
        "responseLength",
        "routeKey",
        "stage",
        "status",
    }
)
_REFUSED_VARIABLES = {
    "path": "the webhook's path carries its secret; log $context.routeKey instead",
    "http.path": "the webhook's path carries its secret; log $context.routeKey instead",
}


class AccessLogFormat:
    """An AccessLogSettings Format, compiled once: ``render(values)`` per request.

    Values are JSON-escaped (the template's format is JSON); a variable with no value is "-", as
    API Gateway writes it.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.variables: list[str] = []
        self._literals: list[str] = []
        position = 0
        for found in _CONTEXT_VARIABLE.finditer(text):
            name = found.group(1)
            if name in _REFUSED_VARIABLES:
                raise ValueError(f"access log format: $context.{name} is refused: {_REFUSED_VARIABLES[name]}")
            if name not in ACCESS_LOG_VARIABLES:
                raise ValueError(
                    f"access log format: $context.{name} is not a variable the local gateway writes "
                    f"(it writes {', '.join(sorted(ACCESS_LOG_VARIABLES))})"
                )
            self._literals.append(text[position : found.start()])
            self.variables.append(name)
            position = found.end()
        self._literals.append(text[position:])

    def render(self, values: dict[str, str]) -> str:
        parts = [self._literals[0]]
        for name, literal in zip(self.variables, self._literals[1:], strict=True):
            value = values.get(name)
            parts.append(json.dumps(value)[1:-1] if value else "-")
            parts.append(literal)
        return "".join(parts)


@dataclass(frozen=True)
class Route:
    method: str  # "ANY" matches every method
    path: str  # e.g. /tdr/{secret}, /items/{proxy+}, or $default
    function: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        if self.path == "$default":
            return {}
        pattern = re.sub(r"\\\{([^}+\\]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        pattern = re.sub(r"\\\{([^}\\]+)\\\}", r"(?P<\1>[^/]+)", pattern)
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers the most specific route: literal paths, then greedy, then $default."""
        return (self.path == "$default", "+}" in self.path, -len(self.path.split("/")))


class HttpApi:
    def __init__(
        self,
        routes: list[Route],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        api_id: str,
        port: int = 0,
        domain: str = "localhost",
        deploy_delay: float = 0.0,
        throttle: Throttle | None = None,
        route_throttles: dict[str, Throttle] | None = None,
        account: TokenBucket | None = None,
        access_log: tuple[AccessLogFormat, Callable[[str, int], None]] | None = None,
    ) -> None:
        """``deploy_delay``: seconds during which every request gets 404, as API Gateway answers
        before the $default stage's auto-deployment (asynchronous) has landed.

        ``throttle``: DefaultRouteSettings' limits, a token bucket per route; ``route_throttles``
        (RouteSettings, by route key) replace them for a route; ``account``: the account's bucket,
        which every API of the stack shares. A request over a limit gets 429 and never reaches the
        function. ``access_log``: the Format and where each rendered line goes, with its time (ms).
        """
        self.routes = sorted(routes, key=lambda r: r.specificity)
        self._invoke = invoke
        self.api_id = api_id
        self._domain = domain
        self.requests = 0
        self.throttled = 0  # requests answered 429
        self._counting = threading.Lock()
        self._deployed_at = time.monotonic() + max(0.0, deploy_delay)
        self._account = account or TokenBucket(Throttle(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT))
        self._buckets: dict[str, TokenBucket] = {}
        for route in self.routes:
            limits = (route_throttles or {}).get(route.route_key, throttle)
            if limits is not None:
                self._buckets[route.route_key] = TokenBucket(limits)
        self._access_log = access_log
        self._server = Server(self._handler_class(), port, what="HTTP API")

    @property
    def url(self) -> str:
        return self._server.url

    def close(self) -> None:
        self._server.close()

    @property
    def deployed(self) -> bool:
        return time.monotonic() >= self._deployed_at

    def admit(self, route: Route) -> bool:
        """Whether the route's bucket and the account's both have a token for this request."""
        bucket = self._buckets.get(route.route_key)
        if bucket is not None and not bucket.take():
            return False
        if not self._account.take():
            if bucket is not None:
                bucket.give_back()
            return False
        return True

    def route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None

    def event(
        self,
        route: Route,
        parameters: dict[str, str],
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The payload format 2.0 event API Gateway would send for this request."""
        url = urlsplit(target)
        merged: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in headers:
            lower = name.lower()
            if lower == "cookie":
                cookies += [c.strip() for c in value.split(";") if c.strip()]
                continue
            merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
        now = time.time() if now is None else now
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": url.path,
            "rawQueryString": url.query,
            "headers": merged,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": self.api_id,
                "domainName": self._domain,
                "domainPrefix": self._domain.split(".")[0],
                "http": {
                    "method": method,
                    "path": url.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": merged.get("user-agent", ""),
                },
                "requestId": request_id or uuid.uuid4().hex[:16],
                "routeKey": route.route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if url.query:
            event["queryStringParameters"] = dict(parse_qsl(url.query, keep_blank_values=True))
        if parameters:
            event["pathParameters"] = parameters
        if body:
            content_type = merged.get("content-type", "").lower()
            if content_type.startswith(_TEXT_TYPES):
                event["body"] = body.decode("utf-8", "replace")
            else:  # what API Gateway does with a body it cannot call text
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event

    def _log(self, context: dict[str, str], started: float, status: int, payload: bytes) -> None:
        """One access log line, in the template's Format, handed to the log shipper."""
        assert self._access_log is not None
        access_format, write = self._access_log
        context["status"] = str(status)
        context["responseLength"] = str(len(payload))
        context["responseLatency"] = str(round((time.time() - started) * 1000))
        context["requestTime"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(started))
        context["requestTimeEpoch"] = str(int(started))
        context["extendedRequestId"] = context["requestId"]
        write(access_format.render(context), int(started * 1000))

    def _handler_class(self) -> type[JsonHandler]:
        api = self

        class Handler(JsonHandler):
            def _any(self) -> None:
                api.requests += 1
                started = time.time()
                context = {
                    "requestId": uuid.uuid4().hex[:16],
                    "httpMethod": self.command,
                    "identity.sourceIp": self.client_address[0],
                    "identity.userAgent": self.headers.get("User-Agent", ""),
                    "protocol": self.request_version,
                    "apiId": api.api_id,
                    "stage": "$default",
                    "domainName": api._domain,
                }
                try:
                    status, payload, headers = self._answer(context, started)
                except Exception:
                    if api._access_log is not None:  # logged as the 500 API Gateway would answer
                        api._log(context, started, 500, b'{"message":"Internal Server Error"}')
                    raise
                # Logged before the answer is sent: whoever has the answer can flush and find its line.
                if api._access_log is not None:
                    api._log(context, started, status, payload)
                self.reply(status, payload, headers)

            def _answer(self, context: dict[str, str], started: float) -> tuple[int, bytes, dict[str, str] | None]:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_PAYLOAD:
                    self.close_connection = True
                    context["error.message"] = "Request Entity Too Large"
                    return 413, b'{"message":"Request Entity Too Large"}', None
                body = self.rfile.read(length)
                path = urlsplit(self.path).path
                found = api.route(self.command, path) if api.deployed else None
                if found is None:
                    context["error.message"] = "Not Found"
                    return 404, b'{"message":"Not Found"}', None
                route, parameters = found
                context["routeKey"] = route.route_key
                if not api.admit(route):
                    with api._counting:
                        api.throttled += 1
                    context["error.message"] = "Too Many Requests"
                    return 429, TOO_MANY_REQUESTS, None
                event = api.event(
                    route,
                    parameters,
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                    request_id=context["requestId"],
                    now=started,
                )
                invoked = time.monotonic()
                try:
                    result = api._invoke(route.function, event)
                except FunctionError as error:
                    context["integrationLatency"] = str(round((time.monotonic() - invoked) * 1000))
                    context["integrationStatus"] = "200"  # Lambda answered; the function failed
                    context["integrationErrorMessage"] = str(error.payload.get("errorType", "Error"))
                    context["error.message"] = "Internal Server Error"
                    return 500, b'{"message":"Internal Server Error"}', None
                context["integrationLatency"] = str(round((time.monotonic() - invoked) * 1000))
                context["integrationStatus"] = "200"
                status, headers, payload = to_http(result)
                return status, payload, headers

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        return Handler


def to_http(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Map a payload 2.0 Lambda result to an HTTP answer, as API Gateway does."""
    if isinstance(result, dict) and "statusCode" in result:
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for cookie in result.get("cookies") or []:
            headers["Set-Cookie"] = cookie
        return int(result["statusCode"]), headers, payload
    # Anything else is taken as a JSON body with status 200.
    return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
