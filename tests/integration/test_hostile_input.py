"""Property-based attack on the webhook: whatever a sender puts in a request, the answer is
a 2xx or 4xx with a JSON body, the handler never raises, and nothing refused is stored."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import APP_ID, LambdaContext, Stack, http_event, tdr

FIELDS = [
    "TransactionID",
    "transactionId",
    "transaction_id",
    "Status",
    "status",
    "AppID",
    "appId",
    "Type",
    "ServiceID",
    "RecipientNumber",
    "RecipientCountry",
    "ResponseCode",
    "Exception",
    "challenge",
    "message",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(max_size=5000).map(lambda s: s * 3)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
near_tdrs = st.builds(
    lambda changes: {**tdr(AppID=APP_ID), **changes}, st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)
)
deep = st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "application/octet-stream",
        "application/json; charset=utf-16",
        "multipart/form-data; boundary=x",
        "",
    ]
)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"])
FAST = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def stored(stack: Stack) -> int:
    return int(boto3.client("dynamodb").scan(TableName=stack.table_name, Select="COUNT")["Count"])


def attack(webhook: ModuleType, stack: Stack, context: LambdaContext, event: dict[str, Any]) -> dict[str, Any]:
    before = stored(stack)
    response: dict[str, Any] = webhook.lambda_handler(event, context)  # must not raise
    status = response["statusCode"]
    assert 200 <= status < 300 or 400 <= status < 500, response
    body = json.loads(response["body"])
    assert isinstance(body, dict)
    assert isinstance(body["code"], int)
    if status >= 400:
        assert isinstance(body["message"], str)
        assert body["message"]
        assert stored(stack) == before, "a refused request stored something"
    else:
        assert stored(stack) - before in (0, 1)
    return response


@FAST
@given(body=json_values | near_tdrs)
def test_any_json_value(webhook: ModuleType, stack: Stack, context: LambdaContext, body: Any) -> None:
    text = json.dumps(body, allow_nan=True)
    attack(webhook, stack, context, http_event(f"/tdr/{stack.webhook_secret}", text))


@FAST
@given(raw=st.binary(max_size=2000), flag=st.booleans(), content_type=content_types)
def test_any_bytes_with_any_headers(
    webhook: ModuleType, stack: Stack, context: LambdaContext, raw: bytes, flag: bool, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type is not None else {}
    body = base64.b64encode(raw).decode() if flag else raw.decode("latin-1")
    attack(
        webhook, stack, context, http_event(f"/tdr/{stack.webhook_secret}", body, base64_encoded=flag, headers=headers)
    )


@FAST
@given(body=near_tdrs, encoding=encodings, flag=st.booleans())
def test_odd_encodings(
    webhook: ModuleType, stack: Stack, context: LambdaContext, body: dict[str, Any], encoding: str, flag: bool
) -> None:
    try:
        raw = json.dumps(body, ensure_ascii=False).encode(encoding)
    except UnicodeEncodeError:
        raw = json.dumps(body).encode(encoding)
    text = base64.b64encode(raw).decode() if flag else raw.decode("latin-1")
    attack(webhook, stack, context, http_event(f"/tdr/{stack.webhook_secret}", text, base64_encoded=flag))


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nesting=deep, size=st.integers(min_value=60_000, max_value=200_000))
def test_deep_nesting_and_huge_bodies(
    webhook: ModuleType, stack: Stack, context: LambdaContext, nesting: str, size: int
) -> None:
    for body in (nesting, json.dumps(tdr(Padding="x" * size)), '{"a": "' + "\\u0000" * (size // 6) + '"}'):
        attack(webhook, stack, context, http_event(f"/tdr/{stack.webhook_secret}", body))


@FAST
@given(
    path=st.text(max_size=80),
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]),
    body=st.none() | st.text(max_size=50),
)
def test_any_path_and_method(
    webhook: ModuleType, stack: Stack, context: LambdaContext, path: str, method: str, body: str | None
) -> None:
    response = attack(webhook, stack, context, http_event("/" + path, body, method=method, path_parameters=False))
    if not path.endswith(stack.webhook_secret):
        assert response["statusCode"] == 404
