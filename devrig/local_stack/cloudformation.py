"""CloudFormation's side of a custom resource: the event, the pre-signed response URL,
the checks CloudFormation makes of an answer, and DescribeStacks for the functions.

CloudFormation's pages this follows: "Custom resource request objects", "Custom
resource response objects", the "Custom resources" overview, and the
AWS::CloudFormation::CustomResource reference (ServiceTimeout).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape  # nosec B406  # writes XML for DescribeStacks; nothing here parses XML

from local_stack.httpserver import JsonHandler, Server
from local_stack.template import ACCOUNT, REGION

STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/cinnox-sms-local/00000000-0000-0000-0000-000000000000"
MAX_RESPONSE_BYTES = 4096  # "Custom resource response objects": the whole body
MAX_PHYSICAL_ID_BYTES = 1024  # same page: a PhysicalResourceId "can be up to 1 KB"
DEFAULT_SERVICE_TIMEOUT = 3600  # AWS::CloudFormation::CustomResource: 1 to 3,600 s, default one hour
TOO_LONG = "Response object is too long."
# nosemgrep: plain-http-url  # an XML namespace, a name that is never fetched
_XMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def stack_id(stack_name: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/{uuid.uuid4()}"


def service_timeout(properties: dict[str, Any]) -> int:
    """A custom resource's ServiceTimeout, checked as CloudFormation checks it."""
    value = properties.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT)
    try:
        seconds = int(str(value))
    except ValueError:
        raise ValueError(f"ServiceTimeout must be an integer from 1 to 3600, not {value!r}") from None
    if not 1 <= seconds <= DEFAULT_SERVICE_TIMEOUT:
        raise ValueError(f"ServiceTimeout must be an integer from 1 to 3600, not {seconds}")
    return seconds


def as_sent(value: Any) -> Any:
    """Property values as CloudFormation passes them: numbers and booleans become strings
    (aws-cloudformation/cloudformation-coverage-roadmap#1037)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: as_sent(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sent(v) for v in value]
    return value


@dataclass
class StackRecord:
    """What DescribeStacks tells about one stack."""

    name: str
    stack_id: str
    status: str = "CREATE_IN_PROGRESS"
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
    outputs: Callable[[], list[tuple[str, str, str]]] = lambda: []  # (key, value, description)
    # (key, value): as DescribeStacks gives them, so `cinnox-sms subscription --stack` reads CINNOX's settings
    parameters: Callable[[], list[tuple[str, str]]] = lambda: []


def judge(event: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """What CloudFormation makes of a response body: the body itself, or a failure of the resource."""

    def refused(reason: str) -> dict[str, Any]:
        return {
            "Status": "FAILED",
            "Reason": reason,
            "PhysicalResourceId": event.get("PhysicalResourceId"),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "RefusedByCloudFormation": True,
        }

    if len(raw) > MAX_RESPONSE_BYTES:
        return refused(TOO_LONG)
    try:
        body = json.loads(raw)
    except ValueError:
        return refused("Invalid response object: the body is not JSON")
    if not isinstance(body, dict):
        return refused("Invalid response object: the body is not a JSON object")
    if body.get("Status") not in ("SUCCESS", "FAILED"):
        return refused("Invalid response object: Status must be SUCCESS or FAILED")
    for key in ("RequestId", "StackId", "LogicalResourceId"):
        if body.get(key) != event[key]:
            return refused(f"Invalid response object: its {key} is not the request's")
    physical_id = body.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        return refused("Invalid response object: PhysicalResourceId must be a non-empty string")
    if len(physical_id.encode()) > MAX_PHYSICAL_ID_BYTES:
        return refused("Invalid response object: PhysicalResourceId is longer than 1 KB")
    return body


class ResponseEndpoint:
    """CloudFormation locally: the pre-signed response URLs, and a query-API stand-in for DescribeStacks.

    ``responses`` holds every body PUT that parsed as JSON; ``fail_next`` answers 503 first.
    ``answer`` judges the response to one event as CloudFormation would.
    """

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next = 0
        self.stacks: dict[str, StackRecord] = {}  # by stack id
        self.described: list[str | None] = []  # the StackName of every DescribeStacks, in order
        self._bodies: dict[str, bytes] = {}  # the first body for each RequestId
        self._arrived = threading.Condition()
        self._server = Server(self._handler_class(), what="CloudFormation response endpoint")

    @property
    def base_url(self) -> str:
        """Where the functions' CloudFormation client goes (AWS_ENDPOINT_URL_CLOUDFORMATION)."""
        return self._server.url

    @property
    def url(self) -> str:
        """A response URL shared by all requests: an answer is matched by its RequestId."""
        return f"{self._server.url}/cloudformation-response?X-Amz-Signature={secrets.token_hex(8)}"

    def response_url(self, request_id: str) -> str:
        """A request's own response URL, as CloudFormation pre-signs one per request."""
        return f"{self._server.url}/cloudformation-response/{request_id}?X-Amz-Signature={secrets.token_hex(8)}"

    def close(self) -> None:
        self._server.close()

    def register(self, record: StackRecord) -> None:
        self.stacks[record.stack_id] = record

    def wait(self, request_id: str, timeout: float) -> dict[str, Any] | None:
        """The body that arrived for the request, as sent (None if none did in time)."""
        with self._arrived:
            self._arrived.wait_for(lambda: request_id in self._bodies, timeout)
            raw = self._bodies.get(request_id)
        try:
            parsed = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def answer(self, event: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The response to the event as CloudFormation judges it (None if none arrived in time)."""
        with self._arrived:
            self._arrived.wait_for(lambda: event["RequestId"] in self._bodies, timeout)
            raw = self._bodies.get(event["RequestId"])
        return judge(event, raw) if raw is not None else None

    def _received(self, path: str, raw: bytes, headers: dict[str, str]) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        request_id = path.split("?", 1)[0].removeprefix("/cloudformation-response").strip("/")
        if not request_id and isinstance(parsed, dict):
            request_id = str(parsed.get("RequestId", ""))
        with self._arrived:
            if isinstance(parsed, dict):
                self.responses.append(parsed)
                self.headers.append(headers)
            if request_id:
                self._bodies.setdefault(request_id, raw)  # the first answer counts
            self._arrived.notify_all()

    # --- the query API: DescribeStacks -------------------------------------------

    def describe_stacks(self, form: dict[str, str]) -> tuple[int, bytes]:
        if form.get("Action") != "DescribeStacks":
            return _error(400, "InvalidAction", f"{form.get('Action')} is not served by the local stack")
        wanted = form.get("StackName")
        self.described.append(wanted)
        found = [
            s
            for s in self.stacks.values()
            if (wanted is None and s.status != "DELETE_COMPLETE")
            or wanted == s.stack_id
            or (wanted == s.name and s.status != "DELETE_COMPLETE")  # by name: live stacks only
        ]
        if wanted is not None and not found:
            return _error(400, "ValidationError", f"Stack with id {wanted} does not exist")
        members = "".join(_stack_xml(s) for s in found)
        body = (
            f'<DescribeStacksResponse xmlns="{_XMLNS}"><DescribeStacksResult><Stacks>{members}</Stacks>'
            f"</DescribeStacksResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            f"</ResponseMetadata></DescribeStacksResponse>"
        )
        return 200, body.encode()

    def _handler_class(self) -> type[JsonHandler]:
        endpoint = self

        class Handler(JsonHandler):
            def do_PUT(self) -> None:
                body = self.read_body()
                if endpoint.fail_next:
                    endpoint.fail_next -= 1
                    return self.reply(503)
                endpoint._received(self.path, body, dict(self.headers.items()))
                return self.reply(200)

            def do_POST(self) -> None:
                form = {k: v[0] for k, v in parse_qs(self.read_body().decode("utf-8", "replace")).items()}
                status, payload = endpoint.describe_stacks(form)
                return self.reply(status, payload, {"Content-Type": "text/xml"})

        return Handler


def _stack_xml(record: StackRecord) -> str:
    outputs = "".join(
        f"<member><OutputKey>{escape(key)}</OutputKey><OutputValue>{escape(value)}</OutputValue>"
        f"<Description>{escape(description)}</Description></member>"
        for key, value, description in record.outputs()
    )
    parameters = "".join(
        f"<member><ParameterKey>{escape(key)}</ParameterKey><ParameterValue>{escape(value)}</ParameterValue></member>"
        for key, value in record.parameters()
    )
    return (
        f"<member><StackId>{escape(record.stack_id)}</StackId><StackName>{escape(record.name)}</StackName>"
        f"<CreationTime>{record.created}</CreationTime><StackStatus>{record.status}</StackStatus>"
        f"<Parameters>{parameters}</Parameters><Outputs>{outputs}</Outputs></member>"
    )


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    body = (
        f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return status, body.encode()


def custom_resource_event(
    request_type: str,
    logical_id: str,
    resource_type: str,
    properties: dict[str, Any],
    response_url: str,
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
    *,
    stack: str = STACK_ID,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event CloudFormation sends a custom resource's ServiceToken function."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": response_url,
        "StackId": stack,
        "RequestId": request_id or str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": as_sent(properties),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = as_sent(old_properties)
    return event


def run_custom_resource(
    invoke_async: Callable[[dict[str, Any]], None], endpoint: ResponseEndpoint, event: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send the event as CloudFormation does (asynchronously) and wait, up to the
    resource's ServiceTimeout, for the one answer, judged as CloudFormation judges it."""
    invoke_async(event)
    response = endpoint.answer(event, timeout)
    if response is None:
        return {
            "Status": "FAILED",
            "Reason": f"no response within the custom resource's ServiceTimeout ({timeout:g} s)",
            "PhysicalResourceId": event.get("PhysicalResourceId"),
            "RequestId": event["RequestId"],
            "RefusedByCloudFormation": True,
        }
    return response
