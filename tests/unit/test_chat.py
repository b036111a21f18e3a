"""Digests in Slack or Teams: the custom notification each digest carries in its ``https`` entry, checked against
the shape AWS documents in "Custom notifications using Amazon Q Developer in chat applications" (Event schema,
Parameter details: https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html), while e-mail and
queues keep what they had."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cinnox_sms.chat import (
    CHAT_PROTOCOL,
    DESCRIPTION_LIMIT,
    KEYWORD_LIMIT,
    KEYWORDS_LIMIT,
    NEXT_STEPS_LIMIT,
    STEP_LIMIT,
    TITLE_LIMIT,
    description,
    literal,
)
from cinnox_sms.digest import MACHINE_PROTOCOLS, MAX_MESSAGE_BYTES, digests
from cinnox_sms.nofinal import NoFinalStatusCheck

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
# What a sender could write to reach people in a channel: Slack's special mentions and links, Markdown links,
# formatting, an emoji, a bare URL and domain (Slack links them), a line break and a bidi override.
HOSTILE = "<!channel> <@U0123> @here [fix](https://evil.example/x) *now* `rm` ~x~ :fire: evil.example\nRUN\u202e"
# A code span of ours holding sender text: only the plain characters and visible escapes.
_INERT_SPAN = re.compile(r"`(?:[\w \-+=,]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8}|\\[a-z0-9]+)*`")
CONTENT_KEYS = {"textType", "title", "description", "nextSteps", "keywords"}
METADATA_KEYS = {"threadId", "summary", "eventType", "relatedResources", "additionalContext"}


def assert_custom_notification(document: Any) -> None:
    """The event schema of "Custom notifications using Amazon Q Developer in chat applications": version "1.0" and
    source "custom" required, id optional; content's textType "client-markdown" (the only one supported), title
    and description strings, nextSteps and keywords lists of strings; metadata's summary, eventType and threadId
    strings, relatedResources a list of strings, additionalContext string values. No other key; our budgets."""
    assert isinstance(document, dict)
    assert set(document) <= {"version", "source", "id", "content", "metadata"}
    assert document["version"] == "1.0"
    assert document["source"] == "custom"
    content = document["content"]
    assert set(content) <= CONTENT_KEYS
    assert content["textType"] == "client-markdown"
    for key, limit in (("title", TITLE_LIMIT), ("description", DESCRIPTION_LIMIT)):
        assert isinstance(content[key], str), key
        assert 0 < len(content[key]) <= limit, key
    for key, most, each in (("nextSteps", NEXT_STEPS_LIMIT, STEP_LIMIT), ("keywords", KEYWORDS_LIMIT, KEYWORD_LIMIT)):
        values = content.get(key, [])
        assert isinstance(values, list), key
        assert len(values) <= most, key
        assert all(isinstance(v, str) for v in values), key
        assert all(0 < len(v) <= each for v in values), key
    metadata = document.get("metadata", {})
    assert set(metadata) <= METADATA_KEYS
    for key in ("threadId", "summary", "eventType"):
        assert isinstance(metadata.get(key, ""), str), key
    assert all(isinstance(v, str) for v in metadata.get("relatedResources", []))
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.get("additionalContext", {}).items())


def alert_record(
    transaction_id: str, country: str = "VE", status: str = "Undelivered", seconds: float = 0
) -> dict[str, Any]:
    item = {
        "transactionId": transaction_id,
        "status": status,
        "exception": "sms deliver failed",
        "recipientCountry": country,
        "receivedAt": (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds"),
        "recipientNumber": "584121234567",
    }
    return {"messageId": f"m-{transaction_id}", "body": json.dumps(item)}


def chat_of(message: str) -> dict[str, Any]:
    notification: dict[str, Any] = json.loads(json.loads(message)[CHAT_PROTOCOL])
    return notification


# --- the failed-SMS digest ---------------------------------------------------------------------


def test_one_message_carries_the_email_text_the_queue_json_and_the_chat_notification() -> None:
    # Given a window's failures in two countries
    records = [alert_record("ve-1"), alert_record("hk-1", "HK", "Rejected", 1), alert_record("ve-2", seconds=2)]
    [digest] = digests(records, "prod-sms")
    # When its MessageStructure=json message is built
    message = json.loads(digest.message())
    # Then e-mail (and every protocol without an entry) keeps the text, queues the JSON, chat its notification
    assert set(message) == {"default", "email", *MACHINE_PROTOCOLS, CHAT_PROTOCOL}
    assert message["email"] == message["default"] == digest.text()
    assert json.loads(message["sqs"]) == digest.machine()
    assert "`" not in digest.text()  # the text is today's plain text, no chat markdown
    notification = chat_of(digest.message())
    assert_custom_notification(notification)
    # And the notification tells the same counts, titled as the e-mail's subject
    content = notification["content"]
    assert content["title"] == digest.subject()
    assert "*3 SMS failed*" in content["description"]
    assert "*By status:* Undelivered 2 · Rejected 1" in content["description"]
    assert "• `VE` 2" in content["description"]
    assert "• `HK` 1" in content["description"]
    assert any(digest.report_command() in step for step in content["nextSteps"])
    assert notification["metadata"]["eventType"] == "cinnox-sms-digest"


def test_what_a_sender_wrote_reaches_the_channel_inert() -> None:
    # Given a failure whose transaction ID and country carry mentions, links, formatting and a bare URL
    [digest] = digests([alert_record(HOSTILE, country="<!here>|x")], "prod-sms")
    # When the chat notification is built
    notification = chat_of(digest.message())
    text = json.dumps(notification, ensure_ascii=False)
    # Then none of it comes through as markup: no mention, no link, no URL Slack would link, no line break
    for markup in ("<!channel>", "<@U0123>", "@here", "<!here>", "](", "https://", "evil.example", "*now*", ":fire:"):
        assert markup not in text, markup
    assert "\u202e" not in text
    # And every piece of sender text is a code span of plain characters and visible escapes
    described = notification["content"]["description"]
    spans = re.findall(r"`[^`]*`", described)
    assert len(spans) == 3  # the country in the country list, the ID and the country in the ID list
    assert all(_INERT_SPAN.fullmatch(span) for span in spans), spans
    assert literal(HOSTILE).startswith("`\\u003c\\u0021channel\\u003e \\u003c\\u0040U0123\\u003e")


@pytest.mark.parametrize("text", ["txn-20261127-0101", "VE", "a_b c+d=e,f", "Ünïcödé-123"])
def test_plain_identifiers_are_shown_as_they_are(text: str) -> None:
    assert literal(text) == f"`{text}`"


def test_a_burst_in_many_countries_keeps_to_the_budget_and_cuts_whole_lines() -> None:
    """SNS API Reference, Publish: 256 KiB per message, every protocol's entry together."""
    # Given a batch of 2,000 failures in 400 countries (long, odd IDs)
    records = [alert_record(f"{HOSTILE}-{i:05d}", country=f"C{i % 400:03d}", seconds=i / 10) for i in range(2000)]
    batch = digests(records, "prod-sms")
    for digest in batch:
        # Then each message stays under SNS's limit with its notification, which is within the documented shape
        assert len(digest.message().encode()) <= MAX_MESSAGE_BYTES
        notification = chat_of(digest.message())
        assert_custom_notification(notification)
        described = notification["content"]["description"]
        # And the description is cut at a whole line, which says so, never through a code span or an escape
        assert len(described) <= DESCRIPTION_LIMIT
        assert described.count("`") % 2 == 0
        assert all(_INERT_SPAN.fullmatch(span) for span in re.findall(r"`[^`]*`", described))
        assert "more countries" in described


def test_the_description_is_cut_at_a_line_and_says_how_many_were_left_out() -> None:
    lines = [f"line {i:03d} " + "x" * 90 for i in range(100)]
    cut = description(lines, limit=1000)
    assert len(cut) <= 1000
    kept = cut.split("\n")
    assert kept[:-1] == lines[: len(kept) - 1]
    assert kept[-1] == f"_... {100 - (len(kept) - 1)} more lines: see the e-mail or the command below_"
    assert description(lines[:3], limit=1000) == "\n".join(lines[:3])


# --- the no-final-status digest ----------------------------------------------------------------


def test_the_no_final_status_digest_carries_a_chat_notification_too() -> None:
    # Given the hourly check's accounts, one country named by a hostile sender
    check = NoFinalStatusCheck(
        None,  # type: ignore[arg-type]  # the message is built without AWS
        None,  # type: ignore[arg-type]
        rollup_table="r",
        tdr_table="t",
        alert_topic_arn="a",
        digest_topic_arn="d",
        deadline_hours=24,
        retention_days=400,
        stack_name="prod-sms",
    )
    countries = {"VE": {"N": "5"}, "<!channel>": {"N": "1"}}
    accounts = [{"slot": {"S": "2026-11-29T07"}, "found": {"N": "6"}, "countries": {"M": countries}}]
    # When its message is built
    message = check._digest_message(accounts)
    # Then e-mail keeps the text, queues the JSON, and chat gets a notification of the documented shape
    assert set(message) == {"default", "email", "sqs", CHAT_PROTOCOL}
    assert message["email"] == message["default"]
    assert "`" not in message["email"]
    notification: dict[str, Any] = json.loads(message[CHAT_PROTOCOL])
    assert_custom_notification(notification)
    assert notification["content"]["title"] == "6 SMS with no final status after 24 h"
    described = notification["content"]["description"]
    assert "• `VE` 2026-11-29T07 5" in described
    assert "<!channel>" not in described
    assert "• `\\u003c\\u0021channel\\u003e` 2026-11-29T07 1" in described
    assert notification["content"]["nextSteps"] == ["List them: `cinnox-sms pending --stack prod-sms --older-than 24h`"]
