"""A CINNOX simulator: the Open API's outbound-SMS subscription, served over HTTP.

Like CINNOX, it keeps one outbound-SMS subscription per AppID (a new PATCH moves
it), checks each app's Bearer token, answers errors as 400 {"code", "message"},
and before it accepts a URL it posts a challenge there and expects it echoed.
``script`` queues one-off misbehaviours for tests: an (HTTP status, JSON body)
pair, or "hang", "reset", "garbage"; ``refuse_verification`` makes every
challenge fail, as when CINNOX cannot reach or verify the webhook.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from local_stack.httpserver import JsonHandler, Server

WRONG_PARAMETER = 6451000
NOT_FOUND = 6450001
_SUBSCRIPTION_PATH = re.compile(r"/v1/api/apps/(?P<app>[^/?]+)/outbound-sms-event-sub")
_EVENT_HOOKS_PATH = re.compile(r"/v1/api/apps/(?P<app>[^/?]+)/event-hooks")


@dataclass
class CinnoxCall:
    path: str
    authorization: str
    body: Any


class CinnoxSimulator:
    def __init__(self, app_id: str, token: str, *, port: int = 0) -> None:
        self.app_id = app_id  # the first app: ``token`` and ``subscription`` are its own
        self.token = token
        self.tokens: dict[str, str] = {app_id: token}
        self.subscriptions: dict[str, dict[str, Any]] = {}  # one per AppID, as CINNOX keeps them
        self.calls: list[CinnoxCall] = []  # every PATCH, in order
        self.reads: list[CinnoxCall] = []  # every GET of an event-hook list, in order
        self.script: list[Any] = []
        self.history: list[dict[str, Any]] = []  # every accepted PATCH, in order
        self.refuse_verification = False
        self.hang_seconds = 3.0
        self._closing = threading.Event()
        self._server = Server(self._handler_class(), port, what="CINNOX simulator")

    @property
    def base_url(self) -> str:
        return self._server.url

    @property
    def subscription(self) -> dict[str, Any] | None:
        """The first app's subscription."""
        return self.subscriptions.get(self.app_id)

    @subscription.setter
    def subscription(self, value: dict[str, Any] | None) -> None:
        if value is None:
            self.subscriptions.pop(self.app_id, None)
        else:
            self.subscriptions[self.app_id] = value

    def add_app(self, app_id: str, token: str) -> None:
        """Another app of the account, with its own AppToken (an app already known keeps its token)."""
        self.tokens.setdefault(app_id, token)

    def subscribe(self, app_id: str, url: str, *, enabled: bool = True) -> dict[str, Any]:
        """Set an app's subscription as someone else did (another stack, production): no challenge."""
        self.subscriptions[app_id] = {"enabled": enabled, "url": url, "updatedAt": _now()}
        return self.subscriptions[app_id]

    def close(self) -> None:
        self._closing.set()  # ends a "hang" at once
        self._server.close()

    def _app(self, pattern: re.Pattern[str], path: str) -> str | None:
        found = pattern.fullmatch(path)
        return urllib.parse.unquote(found["app"]) if found else None

    def _authorised(self, app_id: str, authorization: str) -> bool:
        token = self.tokens.get(app_id)
        return token is not None and secrets.compare_digest(authorization.encode(), f"Bearer {token}".encode())

    def answer(self, path: str, authorization: str, body: Any) -> tuple[int, dict[str, Any]]:
        app_id = self._app(_SUBSCRIPTION_PATH, path)
        if app_id is None:
            return 404, {"code": NOT_FOUND, "message": "method or URL not found"}
        if not self._authorised(app_id, authorization):
            return 400, {"code": WRONG_PARAMETER, "message": "wrong request parameter: invalid AppToken"}
        if not (isinstance(body, dict) and isinstance(body.get("enabled"), bool) and isinstance(body.get("url"), str)):
            return 400, {"code": WRONG_PARAMETER, "message": "wrong request parameter: enabled and url are required"}
        if body["enabled"] and (self.refuse_verification or not self.verify(body["url"])):
            return 400, {
                "code": WRONG_PARAMETER,
                "message": "wrong request parameter: the webhook URL failed verification",
            }
        subscription = self.subscribe(app_id, body["url"], enabled=body["enabled"])
        self.history.append(subscription)
        return 200, {"code": 0, "result": subscription}

    def event_hooks(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        """The "Get Event Hook list" endpoint (its path is not public; see cinnox_sms.cinnox)."""
        app_id = self._app(_EVENT_HOOKS_PATH, path)
        if app_id is None:
            return 404, {"code": NOT_FOUND, "message": "method or URL not found"}
        if not self._authorised(app_id, authorization):
            return 400, {"code": WRONG_PARAMETER, "message": "invalid AppToken"}
        subscription = self.subscriptions.get(app_id)
        return 200, {"code": 0, "result": [{"event": "outbound-sms", **subscription}] if subscription else []}

    @staticmethod
    def verify(url: str) -> bool:
        """POST a challenge to the URL; it must come back in result.challenge."""
        challenge = secrets.token_urlsafe(16)
        request = urllib.request.Request(url, data=json.dumps({"challenge": challenge}).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # nosec B310  # the URL under verification
                answer = json.loads(response.read())
        except (OSError, ValueError):
            return False
        return bool(
            isinstance(answer, dict)
            and answer.get("code") == 0
            and isinstance(answer.get("result"), dict)
            and answer["result"].get("challenge") == challenge
        )

    def _handler_class(self) -> type[JsonHandler]:
        simulator = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization", "")
                simulator.reads.append(CinnoxCall(self.path, authorization, None))
                status, answer = simulator.event_hooks(self.path, authorization)
                return self.reply(status, json.dumps(answer).encode())

            def do_PATCH(self) -> None:
                raw = self.read_body()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                authorization = self.headers.get("Authorization", "")
                simulator.calls.append(CinnoxCall(self.path, authorization, body))
                action = simulator.script.pop(0) if simulator.script else None
                if action == "hang":
                    simulator._closing.wait(simulator.hang_seconds)
                    return self.reply(200, b'{"code": 0, "result": {}}')
                if action == "reset":
                    # An RST instead of an answer: SO_LINGER with a zero timeout.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return None
                if action == "garbage":
                    self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                    self.close_connection = True
                    return None
                status, answer = action or simulator.answer(self.path, authorization, body)
                return self.reply(status, json.dumps(answer).encode())

        return Handler


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
