"""The CloudFormation custom resource that subscribes the webhook with CINNOX.

Create/Update subscribe ``<WebhookUrl>/<webhook secret>``; Delete unsubscribes it.
CloudFormation gets exactly one answer per event, in time, within its size limit, and
never a secret. What each event does at CINNOX:

- Create: probe our own webhook until it echoes a challenge (the API's stage deploys
  asynchronously), then subscribe. A refusal answers FAILED with a "not created" id.
- Update: the same; a refusal answers FAILED with the id CloudFormation holds, except
  during an update rollback, where CINNOX is left as it is and the answer is SUCCESS.
- Delete: nothing for a "not created" id; otherwise unsubscribe, unless CINNOX's event
  hook list clearly shows the subscription already off or pointing at another webhook.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cinnox_sms.cinnox import (
    CinnoxClient,
    RetryPolicy,
    SubscriptionState,
    allowed_hosts,
    checked_base_url,
    is_verification_refusal,
    outbound_sms_hook,
)
from cinnox_sms.errors import CinnoxError
from cinnox_sms.secret_label import SUBSCRIBED_LABEL

if TYPE_CHECKING:
    from cinnox_sms.secret_label import SecretVersion
    from cinnox_sms.settings import SubscriptionSettings

Status = Literal["SUCCESS", "FAILED"]

# "Custom resource response objects" (CloudFormation User Guide): the body may be at most
# 4,096 bytes and the PhysicalResourceId at most 1 KB. The budget keeps room below the limit.
RESPONSE_LIMIT_BYTES = 4096
RESPONSE_BUDGET_BYTES = 3800
PHYSICAL_ID_LIMIT_BYTES = 1024
_DATA_VALUE_LIMIT = 128
_CUT = " [...]"

ID_PREFIX = "cinnox-outbound-sms-sub-"
# The id a failed Create answers: its rollback Delete must leave CINNOX alone.
NOT_CREATED_PREFIX = f"{ID_PREFIX}not-created-"
UPDATE_ROLLBACK_IN_PROGRESS = "UPDATE_ROLLBACK_IN_PROGRESS"
_HOOK_LIST_TIMEOUT = 3.0  # the Delete's look at CINNOX's list is best effort: one short try
_PROBE_TIMEOUT = 5.0


def _valid_text(text: str) -> str:
    """The text as valid UTF-8: lone surrogates (which JSON escapes can carry) become '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


def capped_id(candidate: str) -> str:
    """``candidate`` when it is a valid id of at most 1 KB, else a short prefix and its SHA-256.

    Every id CloudFormation ever accepted is at most 1 KB, so deployed ids never change.
    """
    try:
        size = len(candidate.encode("utf-8"))
    except UnicodeEncodeError:
        size = PHYSICAL_ID_LIMIT_BYTES + 1
    if 0 < size <= PHYSICAL_ID_LIMIT_BYTES:
        return candidate
    digest = hashlib.sha256(candidate.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{ID_PREFIX}sha256-{digest}"


def not_created_id(request_id: str) -> str:
    return capped_id(f"{NOT_CREATED_PREFIX}{request_id or 'unknown-request'}")


class SubscriptionProperties(BaseModel):
    """The custom resource's Properties, as template.yaml passes them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    cinnox_base_url: str = Field(alias="CinnoxBaseUrl", min_length=1)
    # Absent (a template before it): CINNOX's hosts alone (cinnox_sms.cinnox.DEFAULT_ALLOWED_HOSTS).
    cinnox_allowed_hosts: str = Field(alias="CinnoxAllowedHosts", default="")
    cinnox_app_id: str = Field(alias="CinnoxAppId", min_length=1)
    app_token_secret: str = Field(alias="CinnoxAppTokenSecret", min_length=1)
    webhook_url: str = Field(alias="WebhookUrl", min_length=1)
    webhook_secret_id: str = Field(alias="WebhookSecretId", min_length=1)

    @property
    def physical_id(self) -> str:
        # One id per AppID: a new URL is an in-place Update; a new AppID replaces.
        return capped_id(f"{ID_PREFIX}{self.cinnox_app_id}")


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
        timeout_seconds: float = 5.0,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._event = event
        self._attempts = attempts
        self._timeout = timeout_seconds
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    @classmethod
    def from_settings(
        cls, event: dict[str, Any], settings: SubscriptionSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> CloudFormationResponder:
        return cls(
            event,
            attempts=settings.response_attempts,
            timeout_seconds=settings.response_timeout_seconds,
            backoff_seconds=settings.response_backoff_seconds,
            sleep=sleep,
        )

    def pause(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (0-based)."""
        return float(self._backoff * 2**attempt)

    @property
    def worst_case_seconds(self) -> float:
        """How long ``send`` can take: every attempt timing out, with every pause between them."""
        pauses = sum(self.pause(attempt) for attempt in range(self._attempts - 1))
        return self._attempts * self._timeout + pauses

    def send(self, status: Status, physical_id: str, reason: str = "", data: dict[str, str] | None = None) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            body, payload = self.render(status, physical_id, reason, data)
            self._put(payload)
            self.sent = body
            return True

    def render(
        self, status: Status, physical_id: str, reason: str, data: dict[str, str] | None
    ) -> tuple[dict[str, Any], bytes]:
        """The body and its UTF-8 bytes, shortened (Reason first, then Data) to fit the budget."""
        body: dict[str, Any] = {
            "Status": status,
            "Reason": _valid_text(reason) or status,
            "PhysicalResourceId": capped_id(physical_id),
            # Echoed as CloudFormation sent them; it bounds their size.
            "StackId": _valid_text(str(self._event.get("StackId", ""))),
            "RequestId": _valid_text(str(self._event.get("RequestId", ""))),
            "LogicalResourceId": _valid_text(str(self._event.get("LogicalResourceId", ""))),
            "NoEcho": False,
            "Data": {_valid_text(k): _valid_text(v)[:_DATA_VALUE_LIMIT] for k, v in (data or {}).items()},
        }
        payload = _serialise(body)
        if len(payload) <= RESPONSE_BUDGET_BYTES:
            return body, payload
        body["Reason"] = _shortened(body, RESPONSE_BUDGET_BYTES)
        payload = _serialise(body)
        if len(payload) > RESPONSE_BUDGET_BYTES and body["Data"]:
            body["Data"] = {}
            body["Reason"] = _shortened(body, RESPONSE_BUDGET_BYTES)
            payload = _serialise(body)
        return body, payload

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
                self._sleep(self.pause(attempt))


def _serialise(body: dict[str, Any]) -> bytes:
    # Raw UTF-8 rather than \\uXXXX escapes: a CJK character costs 3 bytes, not 6.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _shortened(body: dict[str, Any], budget: int) -> str:
    """The longest start of the Reason (marked as cut) with which the body fits ``budget`` bytes."""
    reason = str(body["Reason"])
    low, high = 0, len(reason)
    while low < high:
        middle = (low + high + 1) // 2
        if len(_serialise({**body, "Reason": reason[:middle] + _CUT})) <= budget:
            low = middle
        else:
            high = middle - 1
    return reason[:low] + _CUT if low else str(body["Status"])


def probe_webhook(
    url: str,
    deadline: float,
    *,
    timeout_seconds: float = _PROBE_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """POST challenges to our own webhook until one is echoed, or ``deadline`` (monotonic) passes.

    None when the webhook answered; otherwise the last problem, without the URL (it holds the secret).
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "the WebhookUrl is not an http(s) URL"
    problem: str | None = "no time was left to try"
    pause = 0.25
    while (remaining := deadline - clock()) > 0:
        problem = _challenge_once(url, min(timeout_seconds, remaining))
        if problem is None:
            break
        if clock() + pause >= deadline:
            break
        sleep(pause)
        pause = min(pause * 2, 2.0)
    return problem


def _challenge_once(url: str, timeout: float) -> str | None:
    challenge = secrets.token_urlsafe(16)
    request = urllib.request.Request(  # noqa: S310 - http(s) checked by probe_webhook
        url,
        data=json.dumps({"challenge": challenge}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310  # http(s) checked
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except TimeoutError:
        return f"no answer within {timeout:.1f} s"
    except OSError as error:  # refused, reset, DNS
        reason = getattr(error, "reason", error)
        return f"could not connect ({type(reason).__name__})"
    try:
        answer = json.loads(payload)
    except ValueError:
        return f"HTTP {status} without a JSON body"
    result = answer.get("result") if isinstance(answer, dict) else None
    if status == 200 and isinstance(result, dict) and result.get("challenge") == challenge:
        return None
    return f"HTTP {status} without the challenge echoed"


@dataclass(frozen=True)
class Outcome:
    status: Status
    physical_id: str
    reason: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class _Request:
    """One event, as far as its answer on failure depends on it."""

    request_type: str
    failure_id: str  # the id a failure answers with
    rollback: bool = False  # an Update that restores the old properties


def not_a_rollback(_stack_id: str) -> str | None:
    return None


class WebhookSecretVersions(Protocol):
    """The webhook secret's current version, and the mark of the one CINNOX accepted (cinnox_sms.secret_label)."""

    def current(self, secret_id: str) -> SecretVersion: ...

    def mark_subscribed(self, secret_id: str, version_id: str) -> bool: ...


class SubscriptionResource:
    """Handles one custom resource event from start to the answer."""

    def __init__(
        self,
        settings: SubscriptionSettings,
        get_secret: Callable[[str], str],
        log_warning: Callable[[str], None],
        log_info: Callable[[str], None],
        *,
        stack_status: Callable[[str], str | None] = not_a_rollback,
        sleep: Callable[[float], None] = time.sleep,
        webhook_secret_versions: WebhookSecretVersions | None = None,
    ) -> None:
        self._settings = settings
        self._get_secret = get_secret
        # Without it the webhook secret is read with get_secret and no version is marked.
        self._versions = webhook_secret_versions
        self._warn = log_warning
        self._info = log_info
        self._stack_status = stack_status
        self._sleep = sleep

    def response_margin_seconds(self, responder: CloudFormationResponder) -> float:
        """Time kept back from the Lambda deadline: the responder's own worst case, and a little slack."""
        return responder.worst_case_seconds + self._settings.response_slack_seconds

    def handle(self, event: dict[str, Any], remaining_ms: int, responder: CloudFormationResponder) -> Outcome:
        redact = Redactor()
        request = _Request(str(event.get("RequestType", "")), _failure_id(event))
        deadline = time.monotonic() + remaining_ms / 1000 - self.response_margin_seconds(responder)

        def on_time_up() -> None:
            outcome = self._give_up(request, "timed out before CINNOX answered")
            try:
                responder.send(outcome.status, outcome.physical_id, outcome.reason, outcome.data)
            except (OSError, ValueError) as error:
                self._warn(f"could not answer CloudFormation: {type(error).__name__}")

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), on_time_up)
        watchdog.daemon = True
        watchdog.start()
        try:
            outcome = self._run(event, request, deadline, redact, responder)
        except Exception as error:  # every failure still gets its one answer
            outcome = self._give_up(request, redact(f"{type(error).__name__}: {error}"))
        finally:
            watchdog.cancel()
        outcome = Outcome(outcome.status, outcome.physical_id, redact(outcome.reason), outcome.data)
        if not responder.send(outcome.status, outcome.physical_id, outcome.reason, outcome.data) and responder.sent:
            # The watchdog answered first: report what CloudFormation was actually told.
            sent = responder.sent
            outcome = Outcome(sent["Status"], sent["PhysicalResourceId"], sent["Reason"], dict(sent["Data"]))
        return outcome

    def _run(
        self,
        event: dict[str, Any],
        request: _Request,
        deadline: float,
        redact: Redactor,
        responder: CloudFormationResponder,
    ) -> Outcome:
        if request.request_type not in ("Create", "Update", "Delete"):
            return Outcome("FAILED", request.failure_id, f"unknown RequestType {request.request_type!r}")
        if request.request_type == "Update":
            request.rollback = self._is_update_rollback(event)
        props, invalid = _properties(event)
        if request.request_type == "Delete" and _marks_not_created(request.failure_id, props):
            self._info("the Create of this resource failed and subscribed nothing: CINNOX left alone")
            return Outcome("SUCCESS", request.failure_id, "nothing to unsubscribe: the Create had failed")
        if props is None:
            return self._give_up(request, f"invalid resource properties: {invalid}")
        try:  # before the AppToken is even read: it goes to CINNOX's host alone
            hosts = allowed_hosts(props.cinnox_allowed_hosts)
            checked_base_url(props.cinnox_base_url, hosts)
        except ValueError as error:
            return self._give_up(request, f"CinnoxBaseUrl refused, nothing sent: {error}")
        token = app_token_from_secret(self._get_secret(props.app_token_secret))
        version = None if self._versions is None else self._versions.current(props.webhook_secret_id)
        webhook_secret = version.value if version is not None else self._get_secret(props.webhook_secret_id).strip()
        redact.add(token, webhook_secret)
        client = CinnoxClient(
            props.cinnox_base_url,
            token,
            allowed=hosts,
            timeout_seconds=self._settings.request_timeout_seconds,
            retry=RetryPolicy(
                self._settings.max_attempts, self._settings.backoff_base_seconds, self._settings.backoff_cap_seconds
            ),
        )
        url = f"{props.webhook_url.rstrip('/')}/{webhook_secret}"
        if request.request_type == "Delete":
            return self._unsubscribe(client, props, url, request, deadline, redact)
        return self._subscribe(client, props, url, request, deadline, redact, responder, version)

    def _mark_subscribed(
        self, versions: WebhookSecretVersions, props: SubscriptionProperties, version: SecretVersion, outcome: Outcome
    ) -> Outcome:
        """CINNOX accepted this version's URL: the webhook now accepts it alone (with any newer current one)."""
        try:
            moved = versions.mark_subscribed(props.webhook_secret_id, version.version_id)
        except Exception as error:  # CINNOX has the URL: the deploy stands, the old URL stays accepted
            warning = (
                f"subscribed, but the webhook secret's {SUBSCRIBED_LABEL} label was not moved "
                f"({type(error).__name__}): the previous URL is still accepted until a deploy moves it"
            )
            self._warn(warning)
            return Outcome(outcome.status, outcome.physical_id, f"{outcome.reason}; {warning}", outcome.data)
        if moved:
            self._info(f"the webhook secret's {SUBSCRIBED_LABEL} label moved to the subscribed version")
        return outcome

    def _subscribe(
        self,
        client: CinnoxClient,
        props: SubscriptionProperties,
        url: str,
        request: _Request,
        deadline: float,
        redact: Redactor,
        responder: CloudFormationResponder,
        version: SecretVersion | None = None,
    ) -> Outcome:
        # The $default stage deploys asynchronously: wait until our own route answers,
        # keeping time for the PATCH (and CINNOX's challenge) after it.
        now = time.monotonic()
        probe_deadline = min(deadline, max(now + 1.0, deadline - self._settings.request_timeout_seconds))
        problem = probe_webhook(
            url, probe_deadline, timeout_seconds=min(_PROBE_TIMEOUT, self._settings.request_timeout_seconds)
        )
        if problem is not None:
            return self._give_up(
                request, f"the webhook did not answer its own challenge in time ({problem}): is the API deployed?"
            )
        if responder.sent is not None:  # the watchdog has answered: change nothing at CINNOX now
            return self._give_up(request, "timed out before CINNOX answered")
        try:
            state = self._enable(client, props.cinnox_app_id, url, deadline)
        except CinnoxError as error:
            return self._give_up(request, redact(f"CINNOX did not accept the request: {error}"))
        self._info(f"subscribed outbound-SMS events for app {props.cinnox_app_id}")
        outcome = Outcome("SUCCESS", props.physical_id, f"subscribed app {props.cinnox_app_id}", _data(state, True))
        # Only now, CINNOX having accepted the URL, does the label move: the old URL stops, the new one stays.
        if version is None or self._versions is None:
            return outcome
        return self._mark_subscribed(self._versions, props, version, outcome)

    def _enable(self, client: CinnoxClient, app_id: str, url: str, deadline: float) -> SubscriptionState:
        try:
            return client.set_outbound_sms_subscription(app_id, enabled=True, url=url, deadline=deadline)
        except CinnoxError as error:
            pause = self._settings.verification_retry_pause_seconds
            # One more try for a verification that hit an edge the deployment had not reached yet.
            if not is_verification_refusal(error) or time.monotonic() + pause >= deadline:
                raise
            self._warn(f"CINNOX refused the URL ({error.code}); trying once more in {pause:.1f} s")
            self._sleep(pause)
            return client.set_outbound_sms_subscription(app_id, enabled=True, url=url, deadline=deadline)

    def _unsubscribe(
        self,
        client: CinnoxClient,
        props: SubscriptionProperties,
        url: str,
        request: _Request,
        deadline: float,
        redact: Redactor,
    ) -> Outcome:
        left_alone = self._already_elsewhere(client, props, deadline)
        if left_alone is not None:
            self._info(f"CINNOX left as it is: {left_alone}")
            return Outcome("SUCCESS", request.failure_id, f"not unsubscribed: {left_alone}")
        try:
            state = client.set_outbound_sms_subscription(props.cinnox_app_id, enabled=False, url=url, deadline=deadline)
        except CinnoxError as error:
            return self._give_up(request, redact(f"CINNOX did not accept the request: {error}"))
        self._info(f"unsubscribed outbound-SMS events for app {props.cinnox_app_id}")
        return Outcome("SUCCESS", request.failure_id, f"unsubscribed app {props.cinnox_app_id}", _data(state, False))

    def _already_elsewhere(self, client: CinnoxClient, props: SubscriptionProperties, deadline: float) -> str | None:
        """Why unsubscribing would be wrong, when CINNOX's event hook list clearly says so; else None."""
        try:
            listed = client.event_hooks(
                props.cinnox_app_id,
                attempts=1,
                timeout_seconds=min(_HOOK_LIST_TIMEOUT, self._settings.request_timeout_seconds),
                deadline=deadline,
            )
        except CinnoxError as error:
            self._info(f"could not read CINNOX's event hook list ({type(error).__name__}); unsubscribing")
            return None
        hook = outbound_sms_hook(listed)
        if hook is None:
            return None
        if hook.enabled is False:
            return "CINNOX already shows outbound-SMS events unsubscribed"
        if hook.url is not None and not _same_webhook(hook.url, props.webhook_url):
            host = urllib.parse.urlsplit(hook.url).hostname or "an unknown host"
            return f"CINNOX sends outbound-SMS events to another webhook (at {host}), not this stack's"
        return None

    def _is_update_rollback(self, event: dict[str, Any]) -> bool:
        # CloudFormation's rollback Update carries no flag: only the stack's status tells.
        stack_id = event.get("StackId")
        if not isinstance(stack_id, str) or not stack_id:
            return False
        try:
            status = self._stack_status(stack_id)
        except Exception as error:  # any failure to read it: not a rollback
            self._warn(f"could not read the stack's status ({type(error).__name__}); taking it as no rollback")
            return False
        return status == UPDATE_ROLLBACK_IN_PROGRESS

    def _give_up(self, request: _Request, reason: str) -> Outcome:
        if request.request_type == "Delete":
            # A stack must always be deletable: warn, and let CloudFormation go on.
            self._warn(f"could not unsubscribe, leaving it as it is: {reason}")
            return Outcome("SUCCESS", request.failure_id, f"not unsubscribed: {reason}")
        if request.rollback:
            # Failing a rollback leaves the stack in UPDATE_ROLLBACK_FAILED: let it complete.
            self._warn(f"update rollback: could not re-subscribe, CINNOX left as it was: {reason}")
            return Outcome("SUCCESS", request.failure_id, f"update rollback: CINNOX left as it was: {reason}")
        return Outcome("FAILED", request.failure_id, reason)


def _properties(event: dict[str, Any]) -> tuple[SubscriptionProperties | None, str]:
    """The properties, or None and the names of those missing or invalid."""
    try:
        return SubscriptionProperties.model_validate(event.get("ResourceProperties") or {}), ""
    except ValidationError as error:
        return None, ", ".join(str(e["loc"][0]) for e in error.errors(include_url=False))


def _failure_id(event: dict[str, Any]) -> str:
    """A Create that fails marks its id as "not created"; other events keep the id CloudFormation holds."""
    existing = event.get("PhysicalResourceId")
    if event.get("RequestType") != "Create" and isinstance(existing, str) and existing:
        return existing
    return not_created_id(str(event.get("RequestId") or ""))


def _marks_not_created(physical_id: str, props: SubscriptionProperties | None) -> bool:
    # An AppID could itself start with "not-created-": its ordinary id is not a mark.
    return physical_id.startswith(NOT_CREATED_PREFIX) and (props is None or physical_id != props.physical_id)


def _same_webhook(listed_url: str, webhook_url: str) -> bool:
    """Whether CINNOX's URL is this stack's webhook, whatever secret segment it ends with."""
    listed, ours = urllib.parse.urlsplit(listed_url), urllib.parse.urlsplit(webhook_url.rstrip("/"))
    return (
        listed.scheme.lower() == ours.scheme.lower()
        and listed.netloc.lower() == ours.netloc.lower()
        and listed.path.rstrip("/").rpartition("/")[0] == ours.path
    )


def _data(state: SubscriptionState, requested: bool) -> dict[str, str]:
    return {
        "Enabled": str(state.enabled if state.enabled is not None else requested).lower(),
        "UpdatedAt": state.updated_at or "",
    }
