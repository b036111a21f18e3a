"""cinnox_sms.delivery_page, the one renderer of the dashboard widget and `cinnox-sms report --html`: worst
first, the 'all' line last, everything printed escaped, no script."""

from __future__ import annotations

import re

from cinnox_sms.delivery import CountryLine
from cinnox_sms.delivery_page import MAX_ROWS, document, fragment, worst_first


def _line(country: str, sent: int, delivered: int, undelivered: int = 0, rejected: int = 0) -> CountryLine:
    line = CountryLine(country, sent=sent, delivered=delivered, undelivered=undelivered, rejected=rejected)
    line.pending = max(0, sent - line.final)
    return line


def test_worst_first_puts_the_lowest_rate_first_then_the_most_failed_and_all_last() -> None:
    # Given lines as by_country gives them (most sent first, 'all' last)
    lines = [
        _line("HK", 100, 100),
        _line("SG", 50, 25, undelivered=25),
        _line("PH", 40, 0),  # nothing final yet: no rate
        _line("VE", 10, 2, rejected=8),
        _line("MY", 20, 10, undelivered=10),
        _line("all", 220, 137, 35, 8),
    ]

    # When they are ordered for the page
    ordered = [line.country for line in worst_first(lines)]

    # Then the lowest delivery rate comes first, a tie goes to the most failed, no rate after every rate
    assert ordered == ["VE", "SG", "MY", "HK", "PH", "all"]


def test_everything_a_sender_wrote_is_escaped_and_nothing_runs() -> None:
    # Given a country key that holds markup and a control character (the rollups refuse it; the page must anyway)
    lines = [_line('<script>alert("x")</script>\u202e', 3, 1, undelivered=2), _line("all", 3, 1, undelivered=2)]

    # When the widget's fragment and the page are drawn
    drawn = fragment(lines, 'period <b>"now"</b>')
    page = document(lines, "p", title="<title>")

    # Then the markup is text, the control is its visible escape, and no script, link or URL is printed
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;\\u202e" in drawn
    assert "period &lt;b&gt;&quot;now&quot;&lt;/b&gt;" in drawn
    assert "<title>&lt;title&gt;</title>" in page
    for html in (drawn, page):
        assert not re.search(r"<script|<link|<img|src=|href=|url\(|@import|https?:", html, re.IGNORECASE)


def test_a_bar_per_row_as_wide_as_its_rate_and_rows_bounded() -> None:
    # Given more countries than the page shows
    lines = [_line(f"C{i}", 10, i % 11, undelivered=10 - i % 11) for i in range(MAX_ROWS + 5)] + [_line("all", 10, 5)]

    # When it is drawn
    drawn = fragment(lines, "p")

    # Then each shown row has its bar (the worst: 0 %), and the page says how many it left out
    assert drawn.count('class="cx-track"') == MAX_ROWS + 1
    assert 'class="cx-fill cx-poor" style="width:0.0%"' in drawn
    assert "5 more countries not shown" in drawn
    assert fragment([], "p").endswith("<p>No SMS sent in this period.</p></div>")
