"""CloudFormation's side of a custom resource: the event, and the pre-signed response URL."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from typing import Any

from local_stack.httpserver import JsonHandler, Server
from local_stack.template import ACCOUNT, REGION

STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/cinnox-sms-local/00000000-0000-0000-0000-000000000000"


class ResponseEndpoint:
    """Collects what a custom resource PUTs to its ResponseURL; ``fail_next`` answers 503 first."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next = 0
        self._arrived = threading.Condition()
        self._server = Server(self._handler_class(), what="CloudFormation response endpoint")

    @property
    def url(self) -> str:
        return f"{self._server.url}/cloudformation-response?X-Amz-Signature={secrets.token_hex(8)}"

    def close(self) -> None:
        self._server.close()

    def wait(self, request_id: str, timeout: float) -> dict[str, Any] | None:
        with self._arrived:
            self._arrived.wait_for(lambda: self._find(request_id) is not None, timeout)
            return self._find(request_id)

    def _find(self, request_id: str) -> dict[str, Any] | None:
        return next((r for r in self.responses if r.get("RequestId") == request_id), None)

    def _handler_class(self) -> type[JsonHandler]:
        endpoint = self

        class Handler(JsonHandler):
            def do_PUT(self) -> None:
                body = self.read_body()
                if endpoint.fail_next:
                    endpoint.fail_next -= 1
                    return self.reply(503)
                with endpoint._arrived:
                    endpoint.responses.append(json.loads(body))
                    endpoint.headers.append(dict(self.headers.items()))
                    endpoint._arrived.notify_all()
                return self.reply(200)

        return Handler


def custom_resource_event(
    request_type: str,
    logical_id: str,
    resource_type: str,
    properties: dict[str, Any],
    response_url: str,
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event CloudFormation sends a custom resource's ServiceToken function."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": secrets.token_hex(16),
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": properties,
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    return event


def run_custom_resource(
    invoke_async: Callable[[dict[str, Any]], None], endpoint: ResponseEndpoint, event: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send the event as CloudFormation does (asynchronously) and wait for the one answer."""
    invoke_async(event)
    response = endpoint.wait(event["RequestId"], timeout)
    if response is None:
        return {"Status": "FAILED", "Reason": f"no response within {timeout:.0f} s", "RequestId": event["RequestId"]}
    return response
