"""Issue 20, items 3 and 8: what one request may cost, and a body whose meaning is ambiguous.

Item 3: the raw body was stored whole, so a forged TDR with a 64 KB junk field was answered 200 and cost
~64 write units against the 1 the capacity sizing assumes. Now a body over ``MAX_BODY_BYTES`` (16 KiB) is
refused with 413, and the item keeps what was validated plus the body's first ``MAX_RAW_BYTES`` (4 KiB),
with ``rawBytes`` when it was cut. Both sizes come from CINNOX's documented fields (/work/shared/cinnox:
Type, AppID, ServiceID, TransactionID, RecipientNumber, RecipientCountry, ResponseCode, Status, Exception)
at the most the product takes or keeps of each; each test below builds the body it is sized from.

Item 8: ``"Status":"Delivered","Status":"Undelivered"`` was stored as Undelivered, json taking the last
silently. A key given twice in one object, at any level, is now refused with 400 naming the key.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from cinnox_sms import item as item_module
from cinnox_sms import webhook as webhook_module
from cinnox_sms.item import StoredTdr
from cinnox_sms.model import MAX_OUT_OF_SHAPE_BYTES, MAX_UNKNOWN_STATUS_CHARACTERS
from local_stack.template import ROOT
from support import APP_ID, LogLines, Post, Stack, table_items, tdr

# The model's own limits on the documented fields (cinnox_sms/model.py): identifiers 1-256 characters, an
# Exception at most 1,024, a ResponseCode at most 64, RecipientNumber up to 32 digits and a "+".
IDENTIFIER = 256
EXCEPTION = 1024
RESPONSE_CODE = 64
RECIPIENT_NUMBER = 33
OPTIONAL = ("Type", "ServiceID", "RecipientNumber", "RecipientCountry", "ResponseCode", "Exception")
FOUR_BYTES = "\U0001f4e8"  # the most UTF-8 a character takes


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB Developer Guide, "Item sizes and formats": attribute names plus values (strings in UTF-8,
    numbers about one byte per two digits plus one); a write unit is 1 KB of item."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        size += len(value["S"].encode()) if "S" in value else math.ceil(len(value["N"]) / 2) + 1
    return size


def _largest_in_shape() -> str:
    """The largest TDR the model takes with every field in shape: each documented field at the model's limit
    (an unknown Status at its 64 characters), wrapped in ``message`` with its identifiers repeated in the
    envelope, indented as a pretty-printer would."""
    fields = {
        "Type": "tdr",
        "AppID": APP_ID,
        "ServiceID": "s" * IDENTIFIER,
        "TransactionID": "t" * IDENTIFIER,
        "RecipientNumber": "+" + "9" * (RECIPIENT_NUMBER - 1),
        "RecipientCountry": "VE",
        "ResponseCode": "4" * RESPONSE_CODE,
        "Status": "S" * MAX_UNKNOWN_STATUS_CHARACTERS,
        "Exception": "e" * EXCEPTION,
    }
    # AppID must be ours; a longer one is allowed by the model, so the envelope repeats it at the limit's size
    envelope = {"Type": "tdr", "TransactionID": fields["TransactionID"], "Event": "x" * IDENTIFIER}
    return json.dumps({**envelope, "message": fields}, indent=4)


def _every_field_reaching_its_cut() -> dict[str, Any]:
    """A TDR whose identifiers are at their limits and whose six optional fields each just pass
    MAX_OUT_OF_SHAPE_BYTES, the most the item keeps of a field out of shape: what MAX_BODY_BYTES is sized on."""
    over = "x" * (MAX_OUT_OF_SHAPE_BYTES + 1)
    status = "S" * MAX_UNKNOWN_STATUS_CHARACTERS
    return tdr(TransactionID="t" * IDENTIFIER, Status=status, **dict.fromkeys(OPTIONAL, over))


def _worst_accepted() -> str:
    """The accepted body whose item is the largest: a failure (it also carries the AlertsDue entry), its
    TransactionID at 256 characters of 4 bytes, its Exception in shape at 1,024 such characters (4 KiB
    stored, more than a field out of shape keeps), the five other optional fields each past their 2 KiB cut,
    and junk up to exactly MAX_BODY_BYTES (the raw body keeps its first MAX_RAW_BYTES)."""
    fields = tdr(
        TransactionID=FOUR_BYTES * IDENTIFIER,
        Status="Undelivered",
        Exception=FOUR_BYTES * EXCEPTION,
        **dict.fromkeys(OPTIONAL[:-1], "x" * (MAX_OUT_OF_SHAPE_BYTES + 1)),
    )
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    room = webhook_module.MAX_BODY_BYTES - len(body.encode()) - len(',"Junk":""')
    assert room > 0
    return body[:-1] + ',"Junk":"' + "j" * room + '"}'


def _documented_write_units() -> int:
    """The write units docs/performance.md's Capacity section states for the worst request still accepted."""
    text = (ROOT / "docs" / "performance.md").read_text()
    found = re.search(r"worst request still accepted.*?\*\*(\d+) write units\*\*", text, re.DOTALL)
    assert found, "docs/performance.md states no write units for the worst request still accepted"
    return int(found.group(1))


# --- item 3: what one request may store ---------------------------------------------------------------


def test_a_forged_tdr_with_a_64_kb_junk_field_is_refused_with_413_and_stores_nothing(
    post: Post, stack: Stack, logs: LogLines
) -> None:
    # Given the forged TDR: a genuine shape, with a 64 KB field nobody reads
    body = tdr(Status="Delivered", Junk="j" * 64_000)
    # When it is posted to the right URL
    answer = post(body)
    # Then it is refused as too large (answered 200 and stored at ~64 write units before), and nothing is stored
    assert answer.status == 413, answer.body
    assert answer.body == {"code": 413, "message": f"the body is larger than {webhook_module.MAX_BODY_BYTES} bytes"}
    assert table_items(stack) == []
    # And one short line says why, with neither the body nor the URL
    [line] = [r for r in logs.records() if r.get("message") == "request refused"]
    assert line["status"] == 413
    assert len(json.dumps(line)) < 1_000


def test_the_body_limit_lets_every_optional_field_reach_its_cut_and_no_more(post: Post, stack: Stack) -> None:
    # Given the TDR the body limit is sized on: identifiers at their limits, the six optional fields each just
    # past the 2 KiB the item keeps of a field out of shape (13.0 KB)
    sized_on = json.dumps(_every_field_reaching_its_cut())
    limit = webhook_module.MAX_BODY_BYTES
    # Then the limit is the smallest power of two that holds it: the 2 KiB cut, not a 413, decides what is
    # kept of a field out of shape, and a body larger carries nothing more the item would keep
    assert limit // 2 < len(sized_on.encode()) <= limit
    assert limit & (limit - 1) == 0
    # When it is posted, Then it is stored, each optional field flagged and cut
    answer = post(sized_on, raw=True)
    assert answer.status == 200, answer.body
    assert len(answer.body["result"]["outOfShape"]) == len(OPTIONAL)
    # And a body of exactly the limit is taken, one byte more refused with 413
    exactly = json.dumps(tdr(Status="Delivered", Junk=""))
    exactly = exactly[:-3] + '"' + "j" * (limit - len(exactly)) + '"}'
    assert len(exactly.encode()) == limit
    assert post(exactly, raw=True).status == 200
    over = exactly[:-2] + 'j"}'
    answer = post(over, raw=True)
    assert (answer.status, answer.body["code"]) == (413, 413)
    # As is the same excess sent base64-encoded (API Gateway's binary bodies)
    assert post(over.encode(), raw=True).status == 413


def test_every_tdr_in_shape_keeps_its_raw_body_whole(post: Post, stack: Stack) -> None:
    # Given the largest TDR the model takes in shape (2.8 KB), and one as CINNOX documents it (~260 bytes)
    largest = _largest_in_shape()
    documented = json.dumps(tdr(Status="Undelivered", ResponseCode="400", Exception="sms deliver failed"))
    kept = item_module.MAX_RAW_BYTES
    # Then the raw body's cap is the smallest power of two above the largest, and ten times the documented one
    assert kept // 2 < len(largest.encode()) <= kept
    assert kept & (kept - 1) == 0
    assert len(documented.encode()) * 10 <= kept
    # When both are posted
    for body in (largest, documented):
        answer = post(body, raw=True)
        assert answer.status == 200, answer.body
        assert "outOfShape" not in answer.body["result"]
    # Then both are stored with their raw body whole and no rawBytes
    items = table_items(stack)
    assert sorted(item["raw"]["S"] for item in items) == sorted((largest, documented))
    assert all("rawBytes" not in item for item in items)


def test_the_worst_request_still_accepted_stores_what_was_validated_and_4_kib_of_its_body(
    post: Post, stack: Stack
) -> None:
    # Given the accepted body whose item is the largest (16 KiB, fields out of shape, 4-byte characters)
    body = _worst_accepted()
    assert len(body.encode()) == webhook_module.MAX_BODY_BYTES
    # When it is posted
    answer = post(body, raw=True)
    # Then it is stored (200): what was validated, each field out of shape cut at 2 KiB, and the body's
    # first 4 KiB, never half a character, with the size it had
    assert answer.status == 200, answer.body
    [item] = table_items(stack)
    kept = item_module.MAX_RAW_BYTES
    raw = item["raw"]["S"].encode()
    assert kept - 4 < len(raw) <= kept
    assert body.encode().startswith(raw)
    assert item["rawBytes"] == {"S": str(webhook_module.MAX_BODY_BYTES)}
    assert item["transactionId"] == {"S": FOUR_BYTES * IDENTIFIER}
    assert item["exception"] == {"S": FOUR_BYTES * EXCEPTION}
    for attribute in item["outOfShape"]["S"].split(","):
        assert len(json.dumps(item[attribute]["S"], ensure_ascii=False).encode()) - 2 <= MAX_OUT_OF_SHAPE_BYTES
    # And its write units are the ones docs/performance.md bills the leaked-URL ceiling with (64 before)
    units = math.ceil(_item_size(item) / 1024)
    assert units == _documented_write_units(), _item_size(item)


def test_a_parked_body_is_kept_as_the_webhook_keeps_it() -> None:
    # Given a body over the raw cap, as the parking drain lands it (StoredTdr.from_tdr) and as the webhook
    # writes it (item_from_tdr)
    from datetime import UTC, datetime

    from cinnox_sms.model import parse_inbound

    body = json.dumps(tdr(Status="Delivered", Junk="é" * 3_000), ensure_ascii=False)
    parsed = parse_inbound(json.loads(body)).tdr
    assert parsed is not None
    now = datetime(2026, 12, 1, tzinfo=UTC)
    # When both build the item
    direct = StoredTdr.item_from_tdr(parsed, body, now, now)
    modelled = StoredTdr.from_tdr(parsed, body, now, now).to_item()
    # Then both keep the same first 4 KiB (a 2-byte character is not split) and the size it had
    assert direct == modelled
    assert len(direct["raw"]["S"].encode()) == item_module.MAX_RAW_BYTES
    assert direct["rawBytes"] == {"S": str(len(body.encode()))}


# --- item 8: a key given twice ------------------------------------------------------------------------

TDR = f'"TransactionID":"txn-dup-1","AppID":"{APP_ID}","Type":"tdr"'
DUPLICATES = [
    ("Status twice, flat", "{" + TDR + ',"Status":"Delivered","Status":"Undelivered"}', "Status"),
    ("Status twice, same value", "{" + TDR + ',"Status":"Delivered","Status":"Delivered"}', "Status"),
    ("in the message envelope", '{"message":{' + TDR + ',"Status":"Delivered","Status":"Undelivered"}}', "Status"),
    ("the envelope's own key", '{"AppID":"x","AppID":"y","message":{' + TDR + ',"Status":"Delivered"}}', "AppID"),
    ("an optional field", "{" + TDR + ',"Status":"Delivered","Exception":"","Exception":"sms failed"}', "Exception"),
    ("in a field nobody reads", "{" + TDR + ',"Status":"Delivered","Extra":{"a":1,"b":{"c":1,"c":2}}}', "c"),
    ("the message key itself", '{"message":{"Status":"Sent"},"message":{' + TDR + ',"Status":"Rejected"}}', "message"),
]


@pytest.mark.parametrize(("name", "body", "key"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_a_key_given_twice_at_any_level_is_refused_with_400_naming_it(
    post: Post, stack: Stack, logs: LogLines, name: str, body: str, key: str
) -> None:
    # Given a TDR in which one object gives a key twice (json would keep the last, silently)
    json.loads(body)  # valid JSON all the same
    # When it is posted to the right URL
    answer = post(body, raw=True)
    # Then it is refused with 400 and a message naming the key, and nothing is stored
    assert answer.status == 400, answer.body
    assert answer.body["message"] == (
        f'the key "{key}" is given twice in one object (at any level, a key must be unique)'
    )
    assert table_items(stack) == []
    # And the refusal is logged once, with the reason
    [line] = [r for r in logs.records() if r.get("message") == "request refused"]
    assert (line["status"], line["reason"]) == (400, answer.body["message"])


def test_keys_that_differ_only_in_case_are_still_the_field_given_twice(post: Post, stack: Stack) -> None:
    # Given two distinct JSON keys that name one field (TDR names are matched without regard to case)
    body = "{" + TDR + ',"Status":"Delivered","status":"Delivered","RecipientCountry":"HK","recipientCountry":"VE"}'
    # When it is posted
    answer = post(body, raw=True)
    # Then it is no duplicate key: issue 19's rule holds (an identifying field agreeing with itself is taken,
    # an optional one given twice is kept as the array of its values, flagged)
    assert answer.status == 200, answer.body
    [item] = table_items(stack)
    assert item["recipientCountry"] == {"S": '["HK","VE"]'}


def test_a_long_key_given_twice_is_named_short_and_anything_else_in_it_is_escaped(post: Post, stack: Stack) -> None:
    # Given a key of 5,000 characters, with a newline in it, given twice
    key = "k\n" + "k" * 5_000
    body = "{" + TDR + ',"Status":"Delivered",' + f"{json.dumps(key)}:1,{json.dumps(key)}:2" + "}"
    # When it is posted
    answer = post(body, raw=True)
    # Then it is a 400 whose message names the key's start, escaped, in one short line
    assert answer.status == 400
    message = answer.body["message"]
    assert message.startswith('the key "k\\nkkk')
    assert '..."' in message
    assert "\n" not in message
    assert len(message) < 120
