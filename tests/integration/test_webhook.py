"""The webhook function, through its real handler, against moto."""

from __future__ import annotations

import base64
import json
import time
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from integration.test_parked import parked_messages
from support import APP_ID, LambdaContext, LogLines, Post, Stack, http_event, stream_records, table_items, tdr


def test_challenge_is_echoed_and_nothing_is_stored(post: Post, stack: Stack) -> None:
    # Given CINNOX verifying the URL
    # When it posts a challenge
    answer = post({"challenge": "c-123"})
    # Then the challenge comes back in result, and the table stays empty
    assert (answer.status, answer.body) == (200, {"code": 0, "result": {"challenge": "c-123"}})
    assert table_items(stack) == []


def test_tdr_is_stored_with_parsed_fields_raw_body_and_ttl(post: Post, stack: Stack) -> None:
    # Given a TDR with an extra field CINNOX may add one day
    body = tdr(Status="Delivered", Extra={"carrier": "hk-1"})
    before = time.time()
    # When it is posted
    answer = post(body)
    # Then it is stored once, with its fields, raw body, time received and expiry
    assert answer.status == 200
    assert answer.body == {
        "code": 0,
        "result": {"transactionId": body["TransactionID"], "status": "Delivered", "duplicate": False},
    }
    [item] = table_items(stack)
    assert item["transactionId"] == {"S": body["TransactionID"]}
    assert item["status"] == {"S": "Delivered"}
    assert item["appId"] == {"S": APP_ID}
    assert item["serviceId"] == {"S": "svc-sms-01"}
    assert item["recipientNumber"] == {"S": "85298765432"}
    assert item["recipientCountry"] == {"S": "HK"}
    assert item["type"] == {"S": "tdr"}
    assert "responseCode" not in item
    assert "exception" not in item
    assert json.loads(item["raw"]["S"]) == body
    retention = int(stack.refs["TdrRetentionDays"]) * 86400
    assert before + retention - 5 <= int(item["expiresAt"]["N"]) <= time.time() + retention + 5
    assert item["receivedAt"]["S"].endswith("+00:00")


def test_repeated_tdr_is_answered_200_without_a_new_item_or_stream_record(post: Post, stack: Stack) -> None:
    # Given a TDR already stored
    body = tdr(Status="Undelivered", ResponseCode="400", Exception="sms deliver failed")
    assert post(body).body["result"]["duplicate"] is False
    # When the very same TDR comes again
    answer = post(body)
    # Then it is acknowledged as a duplicate, and neither table nor stream grows
    assert answer.status == 200
    assert answer.body["result"] == {"transactionId": body["TransactionID"], "status": "Undelivered", "duplicate": True}
    assert len(table_items(stack)) == 1
    assert len(stream_records(stack)) == 1


def test_each_status_of_one_sms_is_its_own_item(post: Post, stack: Stack) -> None:
    # Given one SMS whose terminal status arrives before Submitted
    body = tdr()
    # When both TDRs arrive
    post({**body, "Status": "Rejected", "ResponseCode": 400, "Exception": "sms send failed"})
    post(body)
    # Then both are stored under the same TransactionID
    assert sorted(i["status"]["S"] for i in table_items(stack)) == ["Rejected", "Submitted"]
    rejected = next(i for i in table_items(stack) if i["status"]["S"] == "Rejected")
    assert rejected["responseCode"] == {"S": "400"}


def test_tdr_that_also_carries_a_challenge_is_stored_and_the_challenge_echoed(post: Post, stack: Stack) -> None:
    body = tdr(challenge="c-9")
    answer = post(body)
    assert answer.status == 200
    assert answer.body["result"]["challenge"] == "c-9"
    assert answer.body["result"]["transactionId"] == body["TransactionID"]
    assert len(table_items(stack)) == 1


def test_wrapped_camel_case_body_is_accepted(post: Post, stack: Stack) -> None:
    # Given the shape CINNOX's other events use: camelCase inside "message"
    body = {
        "message": {
            "type": "TDR",
            "appId": APP_ID,
            "transactionId": "txn-wrapped",
            "status": "rejected",
            "recipientNumber": "+85298765432",
            "recipientCountry": "hk",
        }
    }
    answer = post(body)
    assert answer.status == 200
    [item] = table_items(stack)
    assert item["status"] == {"S": "Rejected"}  # canonical spelling
    assert item["recipientNumber"] == {"S": "+85298765432"}
    assert item["recipientCountry"] == {"S": "HK"}
    assert json.loads(item["raw"]["S"]) == body


def test_base64_encoded_body_without_content_type_is_decoded(post: Post, stack: Stack) -> None:
    # Given API Gateway's base64 encoding of a body sent with no Content-Type
    body = tdr()
    answer = post(json.dumps(body).encode(), raw=True)
    assert answer.status == 200
    assert len(table_items(stack)) == 1


def test_event_without_path_parameters_uses_the_raw_path(post: Post, stack: Stack) -> None:
    # Given a $default route or a sam local event: no pathParameters
    answer = post(tdr(), path_parameters=False)
    assert answer.status == 200


def test_stage_prefix_in_the_raw_path_is_fine(post: Post, stack: Stack) -> None:
    answer = post(tdr(), path=f"/prod/tdr/{stack.webhook_secret}")
    assert answer.status == 200


@pytest.mark.parametrize("body", [{"challenge": "c-1"}, None])
@pytest.mark.parametrize("segment", ["wrong-secret", "", "tdr"])
def test_wrong_secret_segment_is_not_found_and_touches_nothing(
    post: Post, stack: Stack, segment: str, body: dict[str, Any] | None
) -> None:
    # Given a request that does not end with the webhook secret
    # When it is a challenge or a valid TDR
    answer = post(body or tdr(), path=f"/tdr/{segment}")
    # Then it is answered 404 and nothing is stored
    assert (answer.status, answer.body) == (404, {"code": 404, "message": "not found"})
    assert table_items(stack) == []


def test_secret_prefix_or_longer_value_is_not_accepted(post: Post, stack: Stack) -> None:
    for segment in (stack.webhook_secret[:-1], stack.webhook_secret + "x", stack.webhook_secret.upper()):
        assert post(tdr(), path=f"/tdr/{segment}").status == 404
    assert table_items(stack) == []


def test_other_app_id_is_forbidden(post: Post, stack: Stack) -> None:
    answer = post(tdr(AppID="someone-else"))
    assert answer.status == 403
    assert "AppID" in answer.body["message"]
    assert table_items(stack) == []


def test_body_over_16_kib_is_refused_with_413(post: Post, stack: Stack) -> None:
    answer = post(tdr(Padding="x" * 16384))
    assert answer.status == 413
    assert answer.body["code"] == 413
    answer = post(b"{" + b" " * 70000 + b"}", raw=True)
    assert answer.status == 413
    assert table_items(stack) == []


def test_non_post_method_is_not_found(webhook: ModuleType, stack: Stack, context: LambdaContext) -> None:
    response = webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", "{}", method="GET"), context)
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == 404


BAD_REQUESTS = [
    ("not JSON", "{not json", 400, "not valid JSON"),
    ("empty body", "", 400, "empty"),
    ("JSON array", "[1, 2]", 400, "must be a JSON object, not an array"),
    ("JSON string", '"tdr"', 400, "must be a JSON object, not a string"),
    ("JSON null", "null", 400, "must be a JSON object, not null"),
    ("NaN constant", '{"TransactionID": NaN}', 400, "not valid JSON"),
    ("nesting too deep", '{"a":' * 40 + "1" + "}" * 40, 400, "nested too deeply"),
    ("recursion bomb", "[" * 50000 + "]" * 50000, 413, "larger than"),
    ("deep within size", "[" * 8000 + "]" * 8000, 400, "nested too deeply"),
    ("missing TransactionID", json.dumps(tdr(TransactionID=...)), 400, "TransactionID is required"),
    ("missing Status", json.dumps(tdr(Status=...)), 400, "Status is required"),
    ("missing AppID", json.dumps(tdr(AppID=...)), 400, "AppID is required"),
    ("Status not a string", json.dumps(tdr(Status=3)), 400, "Status: must be a string"),
    ("TransactionID a number", json.dumps(tdr(TransactionID=42)), 400, "TransactionID: input should be"),
    ("TransactionID empty", json.dumps(tdr(TransactionID="")), 400, "TransactionID: string should have at least"),
    ("TransactionID too long", json.dumps(tdr(TransactionID="t" * 257)), 400, "at most 256"),
    ("field twice in two cases", json.dumps({**tdr(), "status": "Delivered"}), 400, "more than once"),
    ("challenge not a string", '{"challenge": 5}', 400, "challenge must be a string"),
    ("lone surrogate in a value", json.dumps(tdr(TransactionID="txn-\ud800")), 400, "lone surrogate"),
    ("lone surrogate in a challenge", '{"challenge": "\\udc00"}', 400, "lone surrogate"),
    ("lone surrogate in a key", '{"\\ud83d": 1, "TransactionID": "t"}', 400, "lone surrogate"),
    ("number too long for Python", '{"AppID": ' + "9" * 5000 + "}", 400, "not valid JSON"),
    ("invalid base64", "@@@", 400, "not valid base64"),
    ("not UTF-8", "/w==", 400, "not UTF-8"),
    ("UTF-16 body", base64.b64encode(json.dumps(tdr()).encode("utf-16")).decode(), 400, "not UTF-8"),
    ("JSON true", "true", 400, "must be a JSON object, not a boolean"),
    ("JSON number", "42", 400, "must be a JSON object, not a number"),
    ("empty object", "{}", 400, "TransactionID is required"),
    ("whitespace only", "   ", 400, "not valid JSON"),
    ("trailing garbage", json.dumps(tdr()) + "x", 400, "not valid JSON"),
    ("message wrapper a string", '{"message": "hello"}', 400, "TransactionID is required"),
    ("AppID empty", json.dumps(tdr(AppID="")), 400, "AppID: string should have at least"),
    ("Status empty", json.dumps(tdr(Status="")), 400, "Status: must be one of"),
    # Issue 19: only what identifies a TDR is refused; the optional fields' old refusals are in test_tdr_shapes.py.
    ("Status too long", json.dumps(tdr(Status="s" * 65)), 400, "or another name of 1 to 64 printable characters"),
    ("Status with a control character", json.dumps(tdr(Status="Queued\u0007")), 400, "Status: must be one of"),
    ("Status a list", json.dumps(tdr(Status=["Delivered"])), 400, "Status: must be a string"),
    ("TransactionID twice, two values", json.dumps({**tdr(), "transactionId": "other"}), 400, "more than once"),
    (
        "AppID in envelope and message disagree",
        json.dumps({"appId": "other-app", "message": tdr()}),
        400,
        "AppID differs between the body and its message",
    ),
]
BASE64_FLAGGED = {"invalid base64", "not UTF-8", "UTF-16 body"}


@pytest.mark.parametrize(("name", "body", "status", "message"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    post: Post, stack: Stack, name: str, body: str, status: int, message: str
) -> None:
    # Given a malformed request at the right URL
    base64_encoded = name in BASE64_FLAGGED
    # When it is posted
    answer = post(body, raw=True, base64_encoded=base64_encoded)
    # Then it gets a 4xx with a message in words, and nothing is stored
    assert answer.status == status
    assert answer.body["code"] == status
    assert message in answer.body["message"]
    assert table_items(stack) == []


@pytest.mark.parametrize(
    "error",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError", "ServiceUnavailable"],
)
def test_table_that_cannot_be_written_parks_the_tdr_and_answers_200(
    webhook: ModuleType, stack: Stack, context: LambdaContext, logs: LogLines, error: str
) -> None:
    # Given DynamoDB failing the write (after the SDK's own retries)
    client = webhook.webhook_service()._store._client
    body = tdr(Status="Rejected")
    with Stubber(client) as stub:
        stub.add_client_error("put_item", error, http_status_code=500 if "Internal" in error else 400)
        # When the TDR arrives
        response = webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", json.dumps(body)), context)
    # Then it is answered 200 only because it is parked, raw and with the time received
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["result"]["parked"] is True
    [message] = parked_messages(stack)
    assert json.loads(message["Body"]) == body
    assert message["MessageAttributes"]["receivedAt"]["StringValue"].startswith("20")
    assert table_items(stack) == []
    assert any(r["level"] == "WARNING" and r["transaction_id"] == body["TransactionID"] for r in logs.records())


def test_storage_and_parking_failing_is_a_503_logged_with_the_transaction_id(
    webhook: ModuleType, stack: Stack, context: LambdaContext, logs: LogLines
) -> None:
    # Given DynamoDB throttling and SQS failing too
    service = webhook.webhook_service()
    body = tdr(Status="Rejected")
    with Stubber(service._store._client) as dynamodb, Stubber(service._parking._client) as sqs:
        dynamodb.add_client_error("put_item", "ProvisionedThroughputExceededException")
        sqs.add_client_error("send_message", "KMS.KMSThrottlingException", http_status_code=400)
        response = webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", json.dumps(body)), context)
    # Then the sender is told to retry, and the error names the TransactionID
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["code"] == 503
    errors = [record for record in logs.records() if record["level"] == "ERROR"]
    assert [e["transaction_id"] for e in errors] == [body["TransactionID"]]
    assert errors[0]["parking"] == "ClientError"
    # And the line names the invocation, to find it among the others
    assert errors[0]["function_request_id"] == context.aws_request_id


def test_missing_table_parks_the_tdr(post: Post, stack: Stack) -> None:
    boto3.client("dynamodb").delete_table(TableName=stack.table_name)
    answer = post(tdr())
    assert answer.status == 200
    assert answer.body["result"]["parked"] is True
    assert len(parked_messages(stack)) == 1


def test_unreachable_aws_is_a_503(
    webhook: ModuleType, stack: Stack, context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB's and SQS's endpoints refusing connections (nothing listens on port 9)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")
    webhook.webhook_service.cache_clear()
    response = webhook.lambda_handler(http_event(f"/tdr/{stack.webhook_secret}", json.dumps(tdr())), context)
    assert response["statusCode"] == 503


def test_unreadable_webhook_secret_is_a_503(post: Post, stack: Stack) -> None:
    boto3.client("secretsmanager").delete_secret(SecretId=stack.refs["WebhookSecret"], ForceDeleteWithoutRecovery=True)
    answer = post(tdr())
    assert answer.status == 503
    assert table_items(stack) == []


def test_secret_never_reaches_the_logs(
    webhook: ModuleType, post: Post, stack: Stack, logs: LogLines, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given requests of every kind, good and bad, some at the secret URL, with every log line on
    webhook.logger.setLevel("DEBUG")
    post(tdr())
    post({"challenge": "x"})
    post("{bad", raw=True)
    post(tdr(AppID="other"))
    post(tdr(), path="/tdr/wrong")
    # Then no log line carries the secret
    printed = capsys.readouterr()
    assert len(logs.records()) == 4  # the handler did log, once per request but the wrong URL's (issue 20)
    assert stack.webhook_secret not in logs.getvalue() + printed.out + printed.err


def test_events_folder_files_are_accepted_by_the_handler(
    webhook: ModuleType, stack: Stack, context: LambdaContext
) -> None:
    # Given the events/ files that sam local invoke -e uses, at the secret the stack made
    from local_stack.template import ROOT

    expected = json.loads((ROOT / "events" / "expected.json").read_text())
    for name, status in expected["webhook"].items():
        event = json.loads((ROOT / "events" / name).read_text())
        event["rawPath"] = event["rawPath"].replace("REPLACE-WITH-WEBHOOK-SECRET", stack.webhook_secret)
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(event["body"])
            assert raw
        # When each is invoked, Then it gets the answer the file is meant for
        response = webhook.lambda_handler(event, context)
        assert response["statusCode"] == status, name


def test_one_write_and_no_read_per_tdr(webhook: ModuleType, post: Post, stack: Stack) -> None:
    # Given the webhook's DynamoDB client, watched
    operations: list[str] = []
    client = webhook.webhook_service()._store._client
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: operations.append(model.name))
    body = tdr(Status="Delivered")
    # When a TDR and its repeat arrive
    post(body)
    post(body)
    # Then each cost exactly one PutItem and nothing else
    assert operations == ["PutItem", "PutItem"]


def test_rotated_secret_is_picked_up_at_once_and_the_old_url_stops_working(
    webhook: ModuleType, post: Post, stack: Stack
) -> None:
    # Given the webhook has the secret cached, and the secret is rotated in Secrets Manager
    old = stack.webhook_secret
    assert post(tdr(), path=f"/tdr/{old}").status == 200
    new = "Rotated" + old[::-1][7:]
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.refs["WebhookSecret"], SecretString=new)
    # When CINNOX posts its challenge to the new URL (within the cache's lifetime)
    answer = post({"challenge": "after-rotation"}, path=f"/tdr/{new}")
    # Then the webhook read the secret afresh and answered, and the old URL is not found any more
    assert answer.status == 200
    assert post(tdr(), path=f"/tdr/{old}").status == 404


def test_wrong_urls_do_not_drive_secrets_manager_calls(webhook: ModuleType, post: Post, stack: Stack) -> None:
    # Given the webhook's reads of its secret, counted (fresh reads go to Secrets Manager)
    post(tdr())
    service = webhook.webhook_service()
    read = service._webhook_secret
    fresh_reads: list[bool] = []

    def counted(fresh: bool) -> Any:
        fresh_reads.append(fresh)
        return read(fresh)

    service._webhook_secret = counted
    # When 50 requests probe wrong URLs in quick succession
    for attempt in range(50):
        assert post(tdr(), path=f"/tdr/guess-{attempt}").status == 404
    # Then the secret was read afresh once, not 50 times
    assert fresh_reads.count(True) == 1
