"""API Gateway HTTP API, locally: the template's routes, payload format 2.0."""

from __future__ import annotations

import base64
import json
import re
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
    ) -> None:
        """``deploy_delay``: seconds during which every request gets 404, as API Gateway answers
        before the $default stage's auto-deployment (asynchronous) has landed."""
        self.routes = sorted(routes, key=lambda r: r.specificity)
        self._invoke = invoke
        self.api_id = api_id
        self._domain = domain
        self.requests = 0
        self._deployed_at = time.monotonic() + max(0.0, deploy_delay)
        self._server = Server(self._handler_class(), port, what="HTTP API")

    @property
    def url(self) -> str:
        return self._server.url

    def close(self) -> None:
        self._server.close()

    @property
    def deployed(self) -> bool:
        return time.monotonic() >= self._deployed_at

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
        now = time.time()
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
                "requestId": uuid.uuid4().hex[:16],
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

    def _handler_class(self) -> type[JsonHandler]:
        api = self

        class Handler(JsonHandler):
            def _any(self) -> None:
                api.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_PAYLOAD:
                    self.close_connection = True
                    return self.reply(413, b'{"message":"Request Entity Too Large"}')
                body = self.rfile.read(length)
                path = urlsplit(self.path).path
                found = api.route(self.command, path) if api.deployed else None
                if found is None:
                    return self.reply(404, b'{"message":"Not Found"}')
                route, parameters = found
                event = api.event(
                    route, parameters, self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                try:
                    result = api._invoke(route.function, event)
                except FunctionError:
                    return self.reply(500, b'{"message":"Internal Server Error"}')
                status, headers, payload = to_http(result)
                self.reply(status, payload, headers)

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
