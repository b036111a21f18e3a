"""A CINNOX simulator: the Open API's outbound-SMS subscription, served over HTTP.

Like CINNOX, it checks the Bearer token, answers errors as 400 {"code", "message"},
and before it accepts a URL it posts a challenge there and expects it echoed.
``script`` queues one-off misbehaviours for tests: an (HTTP status, JSON body)
pair, or "hang", "reset", "garbage".
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from local_stack.httpserver import JsonHandler, Server

WRONG_PARAMETER = 6451000
NOT_FOUND = 6450001


@dataclass
class CinnoxCall:
    path: str
    authorization: str
    body: Any


class CinnoxSimulator:
    def __init__(self, app_id: str, token: str, *, port: int = 0) -> None:
        self.app_id = app_id
        self.token = token
        self.calls: list[CinnoxCall] = []
        self.script: list[Any] = []
        self.subscription: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []  # every accepted PATCH, in order
        self.hang_seconds = 3.0
        self._closing = threading.Event()
        self._server = Server(self._handler_class(), port, what="CINNOX simulator")

    @property
    def base_url(self) -> str:
        return self._server.url

    def close(self) -> None:
        self._closing.set()  # ends a "hang" at once
        self._server.close()

    def answer(self, path: str, authorization: str, body: Any) -> tuple[int, dict[str, Any]]:
        if path != f"/v1/api/apps/{self.app_id}/outbound-sms-event-sub":
            return 404, {"code": NOT_FOUND, "message": "method or URL not found"}
        if authorization != f"Bearer {self.token}":
            return 400, {"code": WRONG_PARAMETER, "message": "wrong request parameter: invalid AppToken"}
        if not (isinstance(body, dict) and isinstance(body.get("enabled"), bool) and isinstance(body.get("url"), str)):
            return 400, {"code": WRONG_PARAMETER, "message": "wrong request parameter: enabled and url are required"}
        if body["enabled"] and not self.verify(body["url"]):
            return 400, {
                "code": WRONG_PARAMETER,
                "message": "wrong request parameter: the webhook URL failed verification",
            }
        updated = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.subscription = {"enabled": body["enabled"], "url": body["url"], "updatedAt": updated}
        self.history.append(self.subscription)
        return 200, {"code": 0, "result": self.subscription}

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
                # The "Get Event Hook list" endpoint (its path is not public; see cinnox_sms.cinnox).
                if self.path != f"/v1/api/apps/{simulator.app_id}/event-hooks":
                    return self.reply(
                        404, json.dumps({"code": NOT_FOUND, "message": "method or URL not found"}).encode()
                    )
                if self.headers.get("Authorization", "") != f"Bearer {simulator.token}":
                    return self.reply(
                        400, json.dumps({"code": WRONG_PARAMETER, "message": "invalid AppToken"}).encode()
                    )
                hooks = [{"event": "outbound-sms", **simulator.subscription}] if simulator.subscription else []
                return self.reply(200, json.dumps({"code": 0, "result": hooks}).encode())

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
