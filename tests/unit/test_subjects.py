"""Issue 21 item 5, subjects: what an e-mail's subject line says is readable and still what SNS accepts.

SNS API reference, Publish (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html): "Subject ... must be
ASCII text that begins with a letter, number, or punctuation mark; must not include line breaks or control
characters; and must be less than 100 characters long."
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cinnox_sms.alerts import Alert
from cinnox_sms.digest import SUBJECT_LIMIT, Digest, Failure

BEFORE_MIDNIGHT = datetime(2026, 11, 28, 23, 58, tzinfo=UTC)


def _sns_accepts(subject: str) -> None:
    assert len(subject) <= SUBJECT_LIMIT
    assert subject.isascii()
    assert subject.isprintable()
    assert subject[0].isalnum() or not subject[0].isspace()


def test_a_digest_window_across_midnight_shows_both_dates() -> None:
    # Given a digest whose window starts at 23:58 and ends at 00:03 the next day (UTC)
    failure = Failure("t-1", "Undelivered", "VE", "sms deliver failed", BEFORE_MIDNIGHT)
    digest = Digest((failure,), 0, BEFORE_MIDNIGHT, BEFORE_MIDNIGHT + timedelta(minutes=5), "prod-sms", 1, 1)
    # When its subject is made
    subject = digest.subject()
    # Then both dates are in it (not "2026-11-28 23:58-00:03", which hides the end's date)
    assert subject == "CINNOX SMS digest: 1 SMS failed in 1 country, 2026-11-28 23:58-2026-11-29 00:03 UTC"
    _sns_accepts(subject)


def test_a_long_midnight_digest_subject_keeps_its_window_and_part() -> None:
    # Given the longest digest subject: 5 digits of failures, 200 countries, part 12 of 12, across midnight
    failures = tuple(
        Failure(f"t-{i}", "Undelivered", f"{chr(65 + i // 26)}{chr(65 + i % 26)}", "x", BEFORE_MIDNIGHT)
        for i in range(200)
    )
    digest = Digest(failures * 60, 0, BEFORE_MIDNIGHT, BEFORE_MIDNIGHT + timedelta(minutes=5), "prod-sms", 12, 12)
    # When its subject is made
    subject = digest.subject()
    # Then SNS accepts it, and the window's two dates and the part survive (the country count goes first)
    _sns_accepts(subject)
    assert subject.endswith("2026-11-28 23:58-2026-11-29 00:03 UTC [part 12 of 12]")


def test_a_digest_window_within_a_day_reads_as_before() -> None:
    failure = Failure("t-1", "Undelivered", "VE", "sms deliver failed", BEFORE_MIDNIGHT)
    start = BEFORE_MIDNIGHT - timedelta(hours=1)
    digest = Digest((failure,), 0, start, start + timedelta(minutes=5), "prod-sms", 1, 1)
    assert digest.subject().endswith(", 2026-11-28 22:58-23:03 UTC")


def _image(**fields: Any) -> dict[str, Any]:
    return {"transactionId": "txn-1", "status": "Undelivered", "appId": "app"} | fields


@pytest.mark.parametrize(
    ("transaction_id", "shown"),
    [
        ("訂單-42", "\\u8a02\\u55ae-42"),
        ("café-7", "caf\\xe9-7"),
        ("😀-1", "\\U0001f600-1"),
        ("a\nb", "a\\nb"),
    ],
)
def test_an_alert_subject_for_a_non_ascii_transaction_id_stays_readable(transaction_id: str, shown: str) -> None:
    # Given a failed SMS whose transaction ID is not ASCII (or holds a line break)
    alert = Alert.from_image("1", _image(transactionId=transaction_id, recipientNumber="852", recipientCountry="HK"))
    assert alert is not None
    # When its alert's subject is made
    subject = alert.subject()
    # Then each such character is written as its escape, not a "?" (one ID told from another), and SNS accepts it
    assert subject == f"SMS Undelivered to +852 (HK): {shown}"
    _sns_accepts(subject)
