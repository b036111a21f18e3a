"""Issue 20, items 1, 2 and 5: the AppToken goes to CINNOX's host alone, and the webhook secret is never printed.

Real HTTP on loopback: a stand-in CINNOX on 127.0.0.1 and, as "another host", a recorder bound to
127.0.0.2 (also loopback, but not a host the client accepts over http:// nor the base URL's host).

Documents relied on:
- Python's urllib.request, HTTPRedirectHandler.redirect_request: the request it builds for a 301, 302,
  303 or 307/308 copies the original headers (all but the content ones), Authorization included, to
  whatever URL the Location names, http:// included.
- CINNOX's "Create/Edit/Delete Outbound SMS Event Subscription" page (/work/shared/cinnox): the base URL is
  a placeholder, generated per app ("APPs & API", docs.cinnox.com/docs/open-api), and the AppToken is sent
  as ``Authorization: Bearer``: it must go to that base URL's host and nowhere else.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from cinnox_sms.cinnox import CinnoxClient, RetryPolicy
from cinnox_sms.errors import CinnoxError
from cinnox_sms_cli.main import main
from local_stack.httpserver import JsonHandler, QuietServer, Server
from support import APP_ID, LambdaContext, LogLines, Stack

if TYPE_CHECKING:
    from local_stack.cinnox import CinnoxSimulator
    from local_stack.cloudformation import ResponseEndpoint
    from local_stack.template import Template

Event = Callable[..., dict[str, Any]]


class Recorder:
    """A host other than CINNOX's (127.0.0.2): records every request's Authorization header."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        recorder = self

        class Handler(JsonHandler):
            def _record(self) -> None:
                self.read_body()
                recorder.authorizations.append(self.headers.get("Authorization", ""))
                self.reply(200, json.dumps({"code": 0, "result": []}).encode())

            do_GET = do_PATCH = do_POST = _record

        self.httpd = QuietServer(("127.0.0.2", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.2:{self.httpd.server_port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Redirecting:
    """A CINNOX stand-in (127.0.0.1) that answers every request with ``status`` to the recorder."""

    def __init__(self, status: int, target: str) -> None:
        class Handler(JsonHandler):
            def _redirect(self) -> None:
                self.read_body()
                self.reply(status, b"", {"Location": f"{target}{self.path}"})

            do_GET = do_PATCH = do_POST = _redirect

        self._server = Server(Handler, what="redirecting CINNOX")
        self.base_url = self._server.url

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.fixture
def redirecting(elsewhere: Recorder) -> Iterator[Callable[[int], Redirecting]]:
    started: list[Redirecting] = []

    def start(status: int) -> Redirecting:
        started.append(Redirecting(status, elsewhere.url))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _cli_flags(base_url: str, stack: Stack) -> list[str]:
    return [
        "--base-url",
        base_url,
        "--app-id",
        APP_ID,
        "--token-secret",
        stack.refs["CinnoxAppTokenSecret"],
        "--webhook-secret-id",
        stack.refs["WebhookSecret"],
    ]


# --- 1. No redirect is followed by a client that carries the AppToken ------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", ["event_hooks", "set_outbound_sms_subscription"])
def test_a_redirect_is_refused_and_the_app_token_stays_home(
    call: str, status: int, elsewhere: Recorder, redirecting: Callable[[int], Redirecting]
) -> None:
    """urllib.request's HTTPRedirectHandler copies Authorization to the Location's host (module docstring)."""
    # Given a CINNOX base URL whose every answer is a redirect to another host, over http
    cinnox = redirecting(status)
    client = CinnoxClient(cinnox.base_url, "tok-not-for-elsewhere", retry=RetryPolicy(2, 0.0, 0.0))
    # When the client lists the event hooks (the Delete path, `cinnox-sms subscription`) or PATCHes
    calls: dict[str, Callable[[], object]] = {
        "event_hooks": lambda: client.event_hooks(APP_ID),
        "set_outbound_sms_subscription": lambda: client.set_outbound_sms_subscription(
            APP_ID, enabled=True, url="https://w.example/tdr/s"
        ),
    }
    with pytest.raises(CinnoxError) as raised:
        calls[call]()
    # Then nothing reached the other host, and the error says why, naming its host but no path or token
    assert elsewhere.authorizations == []
    message = str(raised.value)
    assert f"HTTP {status}, a redirect to http://127.0.0.2" in message
    assert "redirects are not followed" in message
    assert "tok-not-for-elsewhere" not in message
    assert raised.value.http_status == status


def test_cli_subscription_answers_a_redirect_with_an_error_not_the_token(
    stack: Stack, elsewhere: Recorder, redirecting: Callable[[int], Redirecting], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given CINNOX's event-hook list redirected (302) to another host
    cinnox = redirecting(302)
    # When the operator lists the subscription
    status = main(["subscription", *_cli_flags(cinnox.base_url, stack)])
    # Then the command fails with one line saying so, and the AppToken never left for the other host
    assert status == 3
    assert "a redirect to http://127.0.0.2" in capsys.readouterr().err
    assert elsewhere.authorizations == []


def test_delete_does_not_follow_a_redirected_event_hook_list(
    subscription: ModuleType,
    custom_resource_event: Event,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    elsewhere: Recorder,
    redirecting: Callable[[int], Redirecting],
) -> None:
    # Given a stack being deleted whose CINNOX redirects (307) every call to another host
    cinnox = redirecting(307)
    event = custom_resource_event("Delete", properties={"CinnoxBaseUrl": cinnox.base_url})
    # When CloudFormation sends the Delete (it reads the event-hook list, then PATCHes)
    subscription.lambda_handler(event, LambdaContext(remaining_ms=30_000))
    # Then the other host got nothing; the stack stays deletable (SUCCESS, not unsubscribed, saying why)
    assert elsewhere.authorizations == []
    [response] = cloudformation.responses
    assert response["Status"] == "SUCCESS"
    assert "redirect" in response["Reason"]
    assert stack.app_token not in json.dumps(response)


# --- 2. The base URL is https:// to a CINNOX host (or one CinnoxAllowedHosts adds); http:// loopback alone --


@pytest.mark.parametrize(
    ("url", "template_allows", "code_allows"),
    [
        ("https://acme.cinnox.com", True, True),
        ("https://acme.cinnox.com/base/", True, True),
        ("https://eu.api.cinnox.com:8443/v", True, True),
        ("http://127.0.0.1:8080", True, True),
        ("http://localhost:9000", True, True),
        ("http://acme.cinnox.com", False, False),
        ("http://10.0.0.5", False, False),
        ("http://127.0.0.2:8080", False, False),
        ("ftp://acme.cinnox.com", False, False),
        ("https://", False, False),
        ("https://user:pw@acme.cinnox.com", False, False),
        ("https://acme.cinnox.com@evil.example", False, False),
        ("https://acme.cinnox.com?next=evil.example", False, False),
        ("https://evil.example\\@acme.cinnox.com", False, False),
        # The template cannot see CinnoxAllowedHosts: the code refuses these before the AppToken is read
        ("https://evil.example", True, False),
        ("https://acme.cinnox.com.evil.example", True, False),
        ("https://evilcinnox.com", True, False),
    ],
)
def test_base_url_rules_in_the_template_and_the_code(
    template: Template, url: str, template_allows: bool, code_allows: bool
) -> None:
    from cinnox_sms.cinnox import checked_base_url

    # Given the template's AllowedPattern and the client's check (CinnoxAllowedHosts left at its default)
    pattern = template.body["Parameters"]["CinnoxBaseUrl"]["AllowedPattern"]
    # When each judges the URL
    refusal = ""
    try:
        checked_base_url(url)
        code = True
    except ValueError as error:
        code, refusal = False, str(error)
    assert "pw" not in refusal  # a refused URL is not quoted back whole
    # Then they agree with the table, and the code never allows what the template refuses
    assert bool(re.fullmatch(pattern, url)) is template_allows
    assert code is code_allows
    # and the client itself refuses what the check refuses
    if not code_allows:
        with pytest.raises(ValueError, match="CINNOX base URL"):
            CinnoxClient(url, "t")


@pytest.mark.parametrize(
    ("hosts", "url", "allowed"),
    [
        ("*.cinnox.com", "https://acme.cinnox.com", True),
        ("*.cinnox.com", "https://api.private.example", False),
        ("api.private.example", "https://api.private.example/v1", True),
        ("api.private.example", "https://x.api.private.example", False),
        ("*.cinnox.com, *.private.example", "https://eu.private.example", True),
        ("*.cinnox.com, *.private.example", "http://eu.private.example", False),  # never http:// but loopback
        ("api.private.example", "http://127.0.0.1:8080", True),  # the local stand-in is always allowed
    ],
)
def test_cinnox_allowed_hosts_widens_the_default_for_a_private_endpoint(
    template: Template, hosts: str, url: str, allowed: bool
) -> None:
    from cinnox_sms.cinnox import DEFAULT_ALLOWED_HOSTS, allowed_hosts, checked_base_url

    # Given a CinnoxAllowedHosts value the template accepts, and the template's default being the code's
    parameter = template.body["Parameters"]["CinnoxAllowedHosts"]
    assert re.fullmatch(parameter["AllowedPattern"], hosts)
    assert allowed_hosts(parameter["Default"]) == DEFAULT_ALLOWED_HOSTS == allowed_hosts("")
    # When the base URL is judged against it
    try:
        checked_base_url(url, allowed_hosts(hosts))
        verdict = True
    except ValueError:
        verdict = False
    # Then only the hosts it names are allowed
    assert verdict is allowed


@pytest.mark.parametrize("value", ["*", "*.com", "evil", "a.example/path", "https://a.example", "a.example,*"])
def test_cinnox_allowed_hosts_refuses_what_is_not_a_host_list(template: Template, value: str) -> None:
    from cinnox_sms.cinnox import allowed_hosts

    # Given a value that names no host (or every host), When the template and the code read it, Then both refuse
    assert not re.fullmatch(template.body["Parameters"]["CinnoxAllowedHosts"]["AllowedPattern"], value)
    with pytest.raises(ValueError, match="CinnoxAllowedHosts"):
        allowed_hosts(value)


def test_custom_resource_sends_nothing_to_a_base_url_it_does_not_allow(
    subscription: ModuleType,
    custom_resource_event: Event,
    cloudformation: ResponseEndpoint,
    stack: Stack,
    elsewhere: Recorder,
    logs: LogLines,
) -> None:
    # Given CinnoxBaseUrl changed (a stack update) to a host of someone's own, over http
    event = custom_resource_event("Update", properties={"CinnoxBaseUrl": elsewhere.url})
    # When CloudFormation sends the Update
    subscription.lambda_handler(event, LambdaContext(remaining_ms=30_000))
    # Then no request (so no Bearer token) reached that host, and the update fails saying why
    assert elsewhere.authorizations == []
    [response] = cloudformation.responses
    assert response["Status"] == "FAILED"
    assert "CinnoxBaseUrl refused" in response["Reason"]
    assert stack.app_token not in json.dumps(response) + logs.getvalue()


def test_cli_subscription_sends_nothing_to_a_base_url_it_does_not_allow(
    stack: Stack, elsewhere: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a base URL on another host over http, When the operator lists the subscription
    status = main(["subscription", *_cli_flags(elsewhere.url, stack)])
    # Then it is refused before the AppToken is sent anywhere
    assert status == 3
    assert "must be https://" in capsys.readouterr().err
    assert elsewhere.authorizations == []


# --- 5. `cinnox-sms subscription` hides the webhook secret by its value ----------------------------


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param("{base}/tdr/{secret}", id="as-sent"),
        pytest.param("{base}/tdr/{secret}/", id="trailing-slash"),
        pytest.param("{upper}/tdr/{secret}", id="upper-case-scheme"),
        pytest.param("{bare}/tdr/{secret}", id="no-scheme"),
        pytest.param("{bare}/tdr/{secret}?x=1", id="no-scheme-with-query"),
        pytest.param("webhook {base}/tdr/{secret} (verified)", id="inside-text"),
    ],
)
@pytest.mark.parametrize("which", ["current", "previous"])
def test_cli_subscription_never_prints_the_webhook_secret_whatever_the_url_shape(
    shape: str, which: str, cinnox: CinnoxSimulator, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given CINNOX listing the webhook URL in a shape of its own, holding the current secret or, after a
    # rotation not yet re-subscribed, the one before it
    secret = stack.webhook_secret
    if which == "previous":
        boto3.client("secretsmanager").put_secret_value(
            SecretId=stack.refs["WebhookSecret"], SecretString="Rotated" + "x" * 40
        )
    base = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    url = shape.format(base=base, upper=base.upper(), bare=base.removeprefix("https://"), secret=secret)
    cinnox.subscribe(APP_ID, url)
    # When the operator lists the subscription
    status = main(["subscription", *_cli_flags(cinnox.base_url, stack)])
    # Then the listing is printed, with the secret hidden wherever it was
    printed = capsys.readouterr()
    assert status == 0, printed.err
    [hook] = json.loads(printed.out)
    assert secret not in printed.out + printed.err
    assert "***" in hook["url"]
    assert hook["enabled"] is True


def test_cli_subscription_needs_the_webhook_secret_to_print_anything(
    stack: Stack, cinnox: CinnoxSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no --stack and no --webhook-secret-id (nothing to redact by value)
    flags = _cli_flags(cinnox.base_url, stack)[:-2]
    # When the operator lists the subscription, Then argparse refuses before CINNOX is called
    with pytest.raises(SystemExit) as exited:
        main(["subscription", *flags])
    assert exited.value.code == 2
    assert "--webhook-secret-id" in capsys.readouterr().err
    assert cinnox.reads == []
