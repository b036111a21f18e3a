"""What AWS, or the way to it, refused: one line for the operator, never a traceback.

botocore raises three families: ClientError (AWS answered with an error code),
BotoCoreError (no answer: no region, no credentials, endpoint unreachable...) and,
outside both, ResponseParserError (something answered that is not AWS, such as an
emulator's HTML 500 page to an XML protocol call).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

if TYPE_CHECKING:
    import boto3

AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError, ResponseParserError)
_LONGEST = 300  # an HTML error page quoted back is no use past this


class LastCall:
    """The AWS operation in flight (botocore's before-call event), to name it when no answer came."""

    def __init__(self) -> None:
        self.operation: str | None = None

    def remember(self, model: Any = None, **kwargs: Any) -> None:
        if model is not None:
            self.operation = f"{model.service_model.service_name} {model.name}"


@contextmanager
def naming_calls(session: boto3.Session) -> Iterator[LastCall]:
    last = LastCall()
    session.events.register("before-call", last.remember)
    try:
        yield last
    finally:
        session.events.unregister("before-call", last.remember)


def one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _LONGEST else flat[: _LONGEST - 3] + "..."


def describe(error: Exception, operation: str | None = None) -> str:
    """``<operation>: <code>: <message>`` on one line, for any of AWS_ERRORS."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = details.get("Code") or (f"HTTP {status}" if status else "error")
        message = details.get("Message") or ""
        if code.isdigit():  # no AWS error code: the endpoint answered a bare HTTP status
            code = f"HTTP {code}"
        name = operation if operation and operation.endswith(f" {error.operation_name}") else error.operation_name
        return one_line(f"{name}: {code}: {message}" if message else f"{name}: {code}")
    where = f"{operation}: " if operation else ""
    if isinstance(error, ResponseParserError):  # its text goes on to quote the whole body
        first = str(error).split("\n", 1)[0].split(". Further retries", 1)[0]
        return one_line(f"{where}the endpoint's answer is not an AWS response ({first})")
    return one_line(f"{where}{type(error).__name__}: {error}")
