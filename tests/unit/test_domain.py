"""The layer's plain functions and classes, without AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cinnox_sms.alerts import Alert, NotAnAlert, _json_default
from cinnox_sms.cinnox import CinnoxClient, RetryPolicy
from cinnox_sms.custom_resource import Redactor, app_token_from_secret
from cinnox_sms.errors import BadRequest, CinnoxError
from cinnox_sms.item import StoredTdr
from cinnox_sms.model import Status, parse_inbound
from cinnox_sms.neutral import json_for_people
from support import tdr


@pytest.mark.parametrize("name", ["TransactionID", "transactionId", "transactionid", "TRANSACTIONID", "transaction_id"])
def test_field_names_are_matched_without_regard_to_case(name: str) -> None:
    body = {k: v for k, v in tdr().items() if k != "TransactionID"} | {name: "txn-1"}
    inbound = parse_inbound(body)
    assert inbound.tdr is not None
    assert inbound.tdr.transaction_id == "txn-1"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("submitted", Status.SUBMITTED),
        ("DELIVERED", Status.DELIVERED),
        (" Undelivered ", Status.UNDELIVERED),
        ("rejected", Status.REJECTED),
    ],
)
def test_status_is_stored_in_its_canonical_spelling(given: str, stored: Status) -> None:
    inbound = parse_inbound(tdr(Status=given))
    assert inbound.tdr is not None
    assert inbound.tdr.status is stored
    assert inbound.tdr.failed is stored.is_failure


@pytest.mark.parametrize(
    ("given", "kept"),
    [(85298765432, "85298765432"), ("85298765432", "85298765432"), ("+85298765432", "+85298765432"), (0, "0")],
)
def test_recipient_number_may_be_a_number_or_a_digit_string(given: Any, kept: str) -> None:
    inbound = parse_inbound(tdr(RecipientNumber=given))
    assert inbound.tdr is not None
    assert inbound.tdr.recipient_number == kept


@pytest.mark.parametrize(("given", "kept"), [(400, "400"), ("400", "400"), ("", None), (None, None)])
def test_response_code_may_be_a_string_or_a_number(given: Any, kept: str | None) -> None:
    inbound = parse_inbound(tdr(ResponseCode=given))
    assert inbound.tdr is not None
    assert inbound.tdr.response_code == kept


def test_only_required_fields_are_enough() -> None:
    inbound = parse_inbound({"TransactionID": "t", "Status": "Delivered", "AppID": "a"})
    assert inbound.tdr is not None
    assert (inbound.tdr.type, inbound.tdr.recipient_number, inbound.challenge) == (None, None, None)


def test_a_message_that_names_another_sms_than_its_envelope_is_refused() -> None:
    """Issue 19: the message is opened whenever it holds a TDR; what identifies it must then agree."""
    # Given a TDR whose "message" object holds another TransactionID
    body = tdr(message={"TransactionID": "other"})
    # When it is parsed, Then it is refused: which SMS it reports cannot be told
    with pytest.raises(BadRequest, match="TransactionID differs between the body and its message"):
        parse_inbound(body)


def test_a_message_object_without_tdr_fields_is_an_unknown_field() -> None:
    # Given a flat TDR with a "message" object that holds no TransactionID or Status
    body = tdr(message={"text": "hello"})
    # When it is parsed
    inbound = parse_inbound(body)
    # Then the flat TDR is the TDR, nothing out of shape
    assert inbound.tdr is not None
    assert (inbound.tdr.transaction_id, inbound.tdr.out_of_shape) == (body["TransactionID"], ())


def test_challenge_inside_the_message_wrapper_is_found() -> None:
    inbound = parse_inbound({"message": {"challenge": "c"}})
    assert (inbound.tdr, inbound.challenge) == (None, "c")


def test_several_problems_are_all_named() -> None:
    # Given a body wrong in every field that identifies a TDR, and in an optional one
    body = {"Status": 3, "RecipientCountry": "Hong Kong"}
    # When it is parsed
    with pytest.raises(BadRequest) as refused:
        parse_inbound(body)
    # Then each identifying problem is named; the optional field is no reason to refuse, so not named
    message = refused.value.message
    assert "TransactionID is required" in message
    assert "AppID is required" in message
    assert "Status: must be a string" in message
    assert "RecipientCountry" not in message


def test_long_wrong_values_are_shortened_in_messages() -> None:
    with pytest.raises(BadRequest, match=r"not 'x+\.\.\."):
        parse_inbound(tdr(Status="x" * 500))


@pytest.mark.parametrize(
    ("secret", "token"),
    [
        ("tok-123", "tok-123"),
        ("  tok-123\n", "tok-123"),
        ('{"appToken": "tok-9"}', "tok-9"),
        ('{"AppToken": " tok-9 "}', "tok-9"),
    ],
)
def test_app_token_secret_is_plain_or_json(secret: str, token: str) -> None:
    assert app_token_from_secret(secret) == token


@pytest.mark.parametrize(
    ("secret", "problem"),
    [("", "empty"), ("{not json", "not valid JSON"), ('{"token": "x"}', "appToken"), ('{"appToken": ""}', "appToken")],
)
def test_bad_app_token_secret_is_explained(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        app_token_from_secret(secret)


def test_redactor_hides_every_secret_and_ignores_tiny_ones() -> None:
    redact = Redactor()
    redact.add("s3cr3t-value", "tok-abcdef", "", "ab")
    assert redact("url /tdr/s3cr3t-value token tok-abcdef ab") == "url /tdr/*** token *** ab"


def test_retry_delay_is_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1, cap_seconds=4)
    delays = [policy.delay(attempt) for attempt in range(8) for _ in range(20)]
    assert all(0 <= d <= 4 for d in delays)
    assert len(set(delays)) > 10


def test_client_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="https://"):
        CinnoxClient("file:///etc/passwd", "tok")


def test_cinnox_error_reads_well() -> None:
    assert str(CinnoxError("too many requests", code=6451010, http_status=429)) == (
        "HTTP 429, code 6451010: too many requests"
    )
    assert str(CinnoxError("plain")) == "plain"


def test_client_gives_up_at_once_when_the_deadline_has_passed() -> None:
    client = CinnoxClient("http://127.0.0.1:9", "tok", clock=lambda: 100.0)
    with pytest.raises(CinnoxError, match="no time was left"):
        client.set_outbound_sms_subscription("app", enabled=True, url="http://x/y", deadline=99.0)


def _image(**fields: Any) -> dict[str, Any]:
    return {"transactionId": "txn-1", "status": "Rejected", "appId": "app"} | fields


def test_alert_subject_is_ascii_and_short() -> None:
    alert = Alert.from_image("1", _image(transactionId="txn-é" + "x" * 200, recipientNumber="852"))
    assert alert is not None
    subject = alert.subject()
    assert len(subject) == 100
    assert subject.endswith("...")
    assert subject.isascii()
    assert "txn-\\xe9" in subject


def test_alert_attributes_leave_out_what_is_unknown() -> None:
    alert = Alert.from_image("1", _image())
    assert alert is not None
    assert set(alert.attributes()) == {"status", "transactionId", "appId"}


def test_alert_json_handles_dynamodb_numbers() -> None:
    alert = Alert.from_image("1", _image(expiresAt=Decimal("1830340800"), score=Decimal("1.5"), tags={"b", "a"}))
    assert alert is not None
    assert '"expiresAt": 1830340800' in alert.record_json()
    assert '"score": 1.5' in alert.record_json()
    assert '"tags": ["a", "b"]' in alert.record_json()


@pytest.mark.parametrize(
    "extra",
    [
        {"expiresAt": Decimal("1830340800"), "score": Decimal("1.5"), "flag": True, "none": None},
        {"raw": '{"Status": "Rejected",\n  "Exception": "a \\"quoted\\" ,\\n  break"}', "note": "é \u2028 ✓"},
        {"tags": {"b", "a"}, "nested": {"m": [1, {"k": "v"}]}},  # a hand edit: maps, lists and sets
        {"blob": b"\x00\x01"},
    ],
)
def test_alert_message_is_json_of_each_protocols_text_to_the_character(extra: dict[str, Any]) -> None:
    # Given an alert over a flat item, an item holding text that looks like JSON, or a hand-edited one
    alert = Alert.from_image("1", _image(recipientNumber="852", **extra))
    assert alert is not None
    # When its message is built (written without json's slow indented encoder, each text escaped once)
    message = alert.message
    # Then it is what json writes for the per-protocol object, the e-mail's record indented as json indents it
    indented = json.dumps(alert.item, indent=2, sort_keys=True, default=_json_default, ensure_ascii=False)
    assert alert.record_json(indent=2) == indented
    body, machine = alert.body(), alert.record_json()
    # (in the e-mail, what people must not be shown raw, as U+2028, JSON-escaped: the same values)
    assert body.endswith("The full record, as stored:\n" + json_for_people(indented))
    assert json.loads(body.split("The full record, as stored:\n")[1]) == json.loads(indented)
    json_protocols = ("sqs", "lambda", "http", "https", "firehose")
    protocols = {"default": body, "email": body} | dict.fromkeys(json_protocols, machine)
    assert message == json.dumps(protocols, ensure_ascii=False)


def test_image_without_keys_is_not_an_alert() -> None:
    with pytest.raises(NotAnAlert):
        Alert.from_image("1", {"status": "Rejected"})
    assert Alert.from_image("1", _image(status="Delivered")) is None


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"RecipientNumber": 85298765432, "RecipientCountry": "hk", "ResponseCode": 400, "Exception": "not delivered"},
        {"Type": "TDR", "ServiceID": "svc-01", "RecipientNumber": "+85291234567", "Exception": "无法送达 😢"},
    ],
)
def test_the_webhooks_item_is_the_stored_models_item(fields: dict[str, Any]) -> None:
    # Given a validated TDR, its raw body and its times
    body = tdr(**fields)
    parsed = parse_inbound(body).tdr
    assert parsed is not None
    received_at = datetime(2026, 11, 29, 23, 30, 1, 234567, tzinfo=UTC)
    expires_at = received_at + timedelta(days=400)
    # When the webhook's hot path builds the PutItem attribute map
    item = StoredTdr.item_from_tdr(parsed, json.dumps(body), received_at, expires_at)
    # Then it is the stored model's own item, attribute for attribute and in the same order
    expected = StoredTdr.from_tdr(parsed, json.dumps(body), received_at, expires_at).to_item()
    assert list(item.items()) == list(expected.items())
    assert StoredTdr.from_item(item) == StoredTdr.from_tdr(parsed, json.dumps(body), received_at, expires_at)
