"""The CloudFormation custom resource that subscribes the webhook with CINNOX.

Create/Update subscribe ``<WebhookUrl>/<webhook secret>``; Delete unsubscribes it.
CloudFormation gets exactly one answer per event, in time, and never a secret.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cinnox_sms.cinnox import CinnoxClient, RetryPolicy
from cinnox_sms.errors import CinnoxError

if TYPE_CHECKING:
    from cinnox_sms.settings import SubscriptionSettings

Status = Literal["SUCCESS", "FAILED"]
_REASON_LIMIT = 1000  # CloudFormation caps the whole response at 4 KB


class SubscriptionProperties(BaseModel):
    """The custom resource's Properties, as template.yaml passes them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    cinnox_base_url: str = Field(alias="CinnoxBaseUrl", min_length=1)
    cinnox_app_id: str = Field(alias="CinnoxAppId", min_length=1)
    app_token_secret: str = Field(alias="CinnoxAppTokenSecret", min_length=1)
    webhook_url: str = Field(alias="WebhookUrl", min_length=1)
    webhook_secret_id: str = Field(alias="WebhookSecretId", min_length=1)

    @property
    def physical_id(self) -> str:
        # One id per AppID: a new URL is an in-place Update; a new AppID replaces.
        return f"cinnox-outbound-sms-sub-{self.cinnox_app_id}"


def app_token_from_secret(secret_string: str) -> str:
    """The AppToken secret holds the token as plain text or as JSON ``{"appToken": ...}``."""
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise ValueError("the AppToken secret starts with '{' but is not valid JSON") from None
        token = next((v for k, v in document.items() if k.lower() == "apptoken"), None)
        if not isinstance(token, str) or not token.strip():
            raise ValueError('the AppToken secret is JSON but has no non-empty "appToken" key')
        return token.strip()
    if not text:
        raise ValueError("the AppToken secret is empty")
    return text


@dataclass
class Redactor:
    """Replaces every known secret in a text before it leaves the function."""

    secrets: list[str] = field(default_factory=list)

    def add(self, *values: str) -> None:
        self.secrets.extend(v for v in values if v and len(v) >= 4)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


class CloudFormationResponder:
    """Sends the one answer CloudFormation waits for; later calls are ignored."""

    def __init__(
        self,
        event: dict[str, Any],
        *,
        attempts: int = 3,
        timeout_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._event = event
        self._attempts = attempts
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    def send(self, status: Status, physical_id: str, reason: str = "", data: dict[str, str] | None = None) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            body = {
                "Status": status,
                "Reason": reason[:_REASON_LIMIT] or status,
                "PhysicalResourceId": physical_id,
                "StackId": self._event.get("StackId", ""),
                "RequestId": self._event.get("RequestId", ""),
                "LogicalResourceId": self._event.get("LogicalResourceId", ""),
                "NoEcho": False,
                "Data": data or {},
            }
            self._put(json.dumps(body).encode())
            self.sent = body
            return True

    def _put(self, payload: bytes) -> None:
        url = str(self._event.get("ResponseURL", ""))
        if not url.startswith(("https://", "http://")):
            raise ValueError("the event has no http(s) ResponseURL")
        for attempt in range(self._attempts):
            # The pre-signed S3 URL is signed without a content type: send none.
            request = urllib.request.Request(  # noqa: S310 - http(s) checked above
                url,
                data=payload,
                method="PUT",
                headers={"Content-Type": "", "Content-Length": str(len(payload))},
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310  # nosec B310  # http(s) checked
                    response.read()
                return
            except OSError:
                if attempt + 1 == self._attempts:
                    raise
                self._sleep(0.5 * 2**attempt)


@dataclass(frozen=True)
class Outcome:
    status: Status
    physical_id: str
    reason: str
    data: dict[str, str] = field(default_factory=dict)


class SubscriptionResource:
    """Handles one custom resource event from start to the answer."""

    def __init__(
        self,
        settings: SubscriptionSettings,
        get_secret: Callable[[str], str],
        log_warning: Callable[[str], None],
        log_info: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._get_secret = get_secret
        self._warn = log_warning
        self._info = log_info

    def handle(self, event: dict[str, Any], remaining_ms: int, responder: CloudFormationResponder) -> Outcome:
        redact = Redactor()
        request_type = str(event.get("RequestType", ""))
        deadline = time.monotonic() + remaining_ms / 1000 - self._settings.response_margin_seconds
        fallback_id = str(
            event.get("PhysicalResourceId") or f"cinnox-outbound-sms-sub-{event.get('LogicalResourceId')}"
        )

        def on_time_up() -> None:
            outcome = self._give_up(request_type, fallback_id, "timed out before CINNOX answered")
            try:
                responder.send(outcome.status, outcome.physical_id, outcome.reason, outcome.data)
            except OSError as error:
                self._warn(f"could not answer CloudFormation: {type(error).__name__}")

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), on_time_up)
        watchdog.daemon = True
        watchdog.start()
        try:
            outcome = self._run(event, request_type, fallback_id, deadline, redact)
        except Exception as error:  # every failure still gets its one answer
            outcome = self._give_up(request_type, fallback_id, redact(f"{type(error).__name__}: {error}"))
        finally:
            watchdog.cancel()
        outcome = Outcome(outcome.status, outcome.physical_id, redact(outcome.reason), outcome.data)
        responder.send(outcome.status, outcome.physical_id, outcome.reason, outcome.data)
        return outcome

    def _run(
        self, event: dict[str, Any], request_type: str, fallback_id: str, deadline: float, redact: Redactor
    ) -> Outcome:
        if request_type not in ("Create", "Update", "Delete"):
            return Outcome("FAILED", fallback_id, f"unknown RequestType {request_type!r}")
        try:
            props = SubscriptionProperties.model_validate(event.get("ResourceProperties") or {})
        except ValidationError as error:
            missing = ", ".join(str(e["loc"][0]) for e in error.errors(include_url=False))
            return self._give_up(request_type, fallback_id, f"invalid resource properties: {missing}")
        # Delete must answer for the id CloudFormation holds; the others name their own.
        physical_id = fallback_id if request_type == "Delete" else props.physical_id
        token = app_token_from_secret(self._get_secret(props.app_token_secret))
        webhook_secret = self._get_secret(props.webhook_secret_id).strip()
        redact.add(token, webhook_secret)
        enabled = request_type != "Delete"
        client = CinnoxClient(
            props.cinnox_base_url,
            token,
            timeout_seconds=self._settings.request_timeout_seconds,
            retry=RetryPolicy(
                self._settings.max_attempts, self._settings.backoff_base_seconds, self._settings.backoff_cap_seconds
            ),
        )
        url = f"{props.webhook_url.rstrip('/')}/{webhook_secret}"
        try:
            state = client.set_outbound_sms_subscription(
                props.cinnox_app_id, enabled=enabled, url=url, deadline=deadline
            )
        except CinnoxError as error:
            return self._give_up(request_type, physical_id, redact(f"CINNOX did not accept the request: {error}"))
        verb = "subscribed" if enabled else "unsubscribed"
        self._info(f"{verb} outbound-SMS events for app {props.cinnox_app_id}")
        data = {
            "Enabled": str(state.enabled if state.enabled is not None else enabled).lower(),
            "UpdatedAt": state.updated_at or "",
        }
        return Outcome("SUCCESS", physical_id, f"{verb} app {props.cinnox_app_id}", data)

    def _give_up(self, request_type: str, physical_id: str, reason: str) -> Outcome:
        if request_type == "Delete":
            # A stack must always be deletable: warn, and let CloudFormation go on.
            self._warn(f"could not unsubscribe, leaving it as it is: {reason}")
            return Outcome("SUCCESS", physical_id, f"not unsubscribed: {reason}")
        return Outcome("FAILED", physical_id, reason)
