"""The dashboard's delivery widget as a person sees it (issue 21, item 2): the demo's traffic through a local stack,
then the widget's page at its local URL (DeliveryWidgetFunction, in its own runtime process, invoked with the event
CloudWatch sends a custom widget: local_stack/widget.py) rendered by a real headless Chromium, Debian's `chromium`.

Chromium is a prerequisite of `make test` (`make chromium` installs it): when it is missing this test fails, saying
so, rather than skip. `make widget-png` takes the same picture for docs/operations.md."""

from __future__ import annotations

import io
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from local_stack.cli import LOCAL_DIGEST_WINDOW_SECONDS, widget_traffic
from local_stack.stack import LocalStack, StackOptions
from local_stack.template import Template
from local_stack.traffic import OUTAGE_COUNTRY
from local_stack.widget import (
    FUNCTION,
    PATH,
    ChromiumMissing,
    WidgetServer,
    chromium,
    rendered_dom,
    screenshot,
    widget_event,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a rendered DOM holds: the widget table's body rows (their cells' text) and every element's tag."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self._in_body = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self.rows[-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


@pytest.fixture(scope="module")
def browser() -> str:
    """Debian's chromium: a missing one fails the test with how to install it (CI installs it: never skipped)."""
    try:
        return chromium()
    except ChromiumMissing as error:
        missing = str(error)
    pytest.fail(f"{missing}; then run this test again (or `make test`)", pytrace=False)


def test_chromium_shows_one_row_per_country_the_demo_sent_to_the_outage_first_no_script(
    browser: str, tmp_path: Path
) -> None:
    # Given the demo's traffic, small (60 SMS and the carrier outage's 20, replayed in 20 s), through a local stack
    saved = dict(os.environ)
    parameters = {"DigestWindowSeconds": str(LOCAL_DIGEST_WINDOW_SECONDS)}  # as `make demo` runs it
    options = StackOptions(stack_name="widget-chromium", log_dir=tmp_path / "logs", parameters=parameters)
    stack = LocalStack(Template.load(), options)
    try:
        stack.start()
        account = widget_traffic(stack, out=io.StringIO())
        assert stack.widget is not None

        # When headless chromium opens the widget's local URL (the dashboard's default range: the last 3 hours)
        url = stack.widget.url
        dom = rendered_dom(url)
        picture = screenshot(url, tmp_path / "delivery-widget.png", (1000, 700))
        invocations = stack.hosts[FUNCTION].invocations
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)

    # Then the page it rendered has one row per country the demo sent to, the 'all' line last, each country's
    # SMS counted as the demo sent them
    page = Page()
    page.feed(dom)
    sent: dict[str, int] = {}
    for sms in account.messages:
        sent[sms.country.code] = sent.get(sms.country.code, 0) + 1
    countries = [row[0] for row in page.rows]
    assert countries[-1] == "all"
    assert sorted(countries[:-1]) == sorted(sent)  # once each
    assert {row[0]: int(row[1]) for row in page.rows[:-1]} == sent
    assert int(page.rows[-1][1]) == len(account.messages)
    # and the failing country, the carrier outage's, first
    assert account.burst == (OUTAGE_COUNTRY, 20)
    assert countries[0] == OUTAGE_COUNTRY
    # and no script anywhere in what chromium rendered; the page came from the widget function (once per render)
    assert "script" not in page.tags
    assert "<script" not in dom.lower()
    assert invocations == 2
    # and the screenshot is a PNG
    assert picture.stat().st_size > 0
    assert picture.read_bytes()[:8] == PNG_SIGNATURE


def test_the_widget_page_invokes_the_function_with_cloudwatchs_event() -> None:
    """The event, from "Details about custom widgets in CloudWatch" (Amazon CloudWatch User Guide,
    add_custom_widget_dashboard_about.html): every call carries a widgetContext with these keys, times in epoch ms."""
    # Given the widget's page, with a stand-in for the function that keeps the event
    events: list[dict[str, Any]] = []

    def function(event: dict[str, Any]) -> str:
        events.append(event)
        return "<p>drawn</p>"

    server = WidgetServer(function)
    try:
        # When it is asked for an absolute range, and for the default one
        absolute = server.answer(f"{PATH}?start=2026-12-05T01:00Z&end=1796436000000&view=arrival&width=800")
        default = server.answer(PATH)
        missing = server.answer("/elsewhere")
    finally:
        server.close()

    # Then the function got CloudWatch's event: the documented widgetContext, the range and the widget's params
    keys = {"dashboardName", "widgetId", "accountId", "locale", "timezone", "period", "isAutoPeriod", "timeRange"}
    keys |= {"theme", "linkCharts", "title", "forms", "params", "width", "height"}
    assert all(set(event) == {"widgetContext"} and set(event["widgetContext"]) == keys for event in events)
    first = events[0]["widgetContext"]
    assert first["timeRange"] == {"mode": "absolute", "start": 1796432400000, "end": 1796436000000}
    assert first["params"] == {"view": "arrival"}
    assert first["width"] == 800
    relative = events[1]["widgetContext"]["timeRange"]
    assert relative["mode"] == "relative"
    assert relative["end"] - relative["start"] == relative["relativeStart"] == 3 * 3600 * 1000
    assert set(widget_event()["widgetContext"]["timezone"]) == {"label", "offsetISO", "offsetInMinutes"}
    # and its answer is shown in the widget's frame; another path is not the widget
    assert absolute[0] == default[0] == 200
    assert '<div class="cw-body"><p>drawn</p></div>' in absolute[1]
    assert missing[0] == 404
