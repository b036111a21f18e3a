"""The dashboard's delivery widget on this machine, as a person sees it (issue 21, item 2).

``WidgetServer`` answers GET /widgets/delivery by invoking DeliveryWidgetFunction (in its own runtime process,
through the stack's FunctionHost) with the event CloudWatch sends a custom widget, and shows the HTML it returns
in a page framed as a dashboard frames a widget: a title bar, a box of the widget's size. Query parameters:
``start`` and ``end`` (epoch milliseconds or ISO 8601, e.g. 2026-12-05T01:00Z: an absolute range; without them the
dashboard's default, the last 3 hours, relative), ``view`` (the widget's params.view: cohort or arrival),
``width`` and ``height`` (the widget's size in pixels).

The event, from "Details about custom widgets in CloudWatch" (Amazon CloudWatch User Guide,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_about.html): every
call carries a ``widgetContext`` with dashboardName, widgetId, accountId, locale, timezone {label, offsetISO,
offsetInMinutes}, period, isAutoPeriod, timeRange {mode, start, end, relativeStart, zoom {start, end}} (epoch
milliseconds; zoom only once a range is zoomed into), theme, linkCharts, title, forms {all}, params (the
widget's own) and width, height (pixels). The function returns HTML (or {"markdown": ...}), which the dashboard
displays in the widget.

``rendered_dom`` and ``screenshot`` render such a page in headless Chromium (Debian's ``chromium``; `make chromium`
installs it, as `make test` does). The page is served with a Content-Security-Policy that runs no script and
fetches nothing, as the widget needs neither.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local_stack.httpserver import JsonHandler, Server
from local_stack.runtime import FunctionError
from local_stack.template import ACCOUNT

FUNCTION = "DeliveryWidgetFunction"
PATH = "/widgets/delivery"
DASHBOARD = "cinnox-sms-local"
TITLE = "SMS delivery by country, worst first (from the rollups; the SMS sent in the range)"  # the template's
DEFAULT_RELATIVE_MS = 3 * 3600 * 1000  # a dashboard with no "start" opens on the last 3 hours
WIDTH, HEIGHT = 960, 520  # pixels: the widget's box in the page, fits a 1000 x 700 window
# The dashboard's frame around the widget: CloudWatch's look, roughly (its own CSS is not ours to copy).
FRAME_STYLE = """
body{margin:0;background:#f2f3f3;font:14px/1.4 Arial,Helvetica,sans-serif;color:#16191f}
.cw-bar{padding:8px 16px;background:#232f3e;color:#fff;font-size:13px}
.cw-bar span{color:#d5dbdb;margin-left:12px}
.cw-widget{margin:12px 16px;background:#fff;border:1px solid #d5dbdb;box-sizing:border-box;overflow:auto}
.cw-widget h2{margin:0;padding:8px 12px 4px;font-size:14px;font-weight:bold}
.cw-body{padding:0 12px 8px}
""".strip()
# No script runs and nothing is fetched: only the page's own inline style applies.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CHROMIUM = "chromium"
CHROMIUM_INSTALL = (
    "`make chromium` installs Debian's chromium (apt-get install -y chromium), as `make test` does before the tests"
)


def _millis(text: str) -> int:
    """Epoch milliseconds, from milliseconds or an ISO 8601 time (UTC unless it says otherwise)."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def widget_event(
    *,
    start: int | None = None,
    end: int | None = None,
    view: str = "cohort",
    width: int = WIDTH,
    height: int = HEIGHT,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The event CloudWatch sends the widget (module docstring): an absolute range from ``start`` to ``end``
    (epoch ms), or, without ``start``, the dashboard's default relative range ending now."""
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    time_range: dict[str, Any]
    if start is None:
        time_range = {
            "mode": "relative",
            "start": now_ms - DEFAULT_RELATIVE_MS,
            "end": now_ms,
            "relativeStart": DEFAULT_RELATIVE_MS,
        }
    else:
        time_range = {"mode": "absolute", "start": start, "end": now_ms if end is None else end}
    return {
        "widgetContext": {
            "dashboardName": DASHBOARD,
            "widgetId": "widget-delivery",
            "accountId": ACCOUNT,
            "locale": "en",
            "timezone": {"label": "UTC", "offsetISO": "+00:00", "offsetInMinutes": 0},
            "period": 300,
            "isAutoPeriod": True,
            "timeRange": time_range,
            "theme": "light",
            "linkCharts": True,
            "title": TITLE,
            "forms": {"all": {}},
            "params": {"view": view},  # the template's widget passes {"view": "cohort"}
            "width": width,
            "height": height,
        }
    }


def event_from_query(query: str, now: datetime | None = None) -> dict[str, Any]:
    """The widget's event for a request's query string (module docstring); ValueError for a bad value."""
    values = {name: found[-1] for name, found in parse_qs(query).items()}
    width, height = int(values.get("width", WIDTH)), int(values.get("height", HEIGHT))
    if not (100 <= width <= 4000 and 100 <= height <= 4000):
        raise ValueError("width and height are 100 to 4000 pixels")
    return widget_event(
        start=_millis(values["start"]) if "start" in values else None,
        end=_millis(values["end"]) if "end" in values else None,
        view=values.get("view", "cohort"),
        width=width,
        height=height,
        now=now,
    )


def _range_text(event: dict[str, Any]) -> str:
    time_range = event["widgetContext"]["timeRange"]
    if time_range["mode"] == "relative":
        return f"last {time_range['relativeStart'] / 3_600_000:g} h (UTC)"
    start, end = (datetime.fromtimestamp(time_range[k] / 1000, UTC) for k in ("start", "end"))
    return f"{start:%Y-%m-%dT%H:%MZ} to {end:%Y-%m-%dT%H:%MZ} (UTC)"


def page(answer: Any, event: dict[str, Any]) -> str:
    """The function's answer shown as a dashboard shows a widget: HTML as it is, markdown as text, in the frame."""
    context = event["widgetContext"]
    if isinstance(answer, dict) and "markdown" in answer:
        body = f"<pre>{html.escape(str(answer['markdown']))}</pre>"
    elif isinstance(answer, str):
        body = answer  # the widget's own HTML: CloudWatch displays it as returned
    else:
        body = f"<pre>{html.escape(repr(answer))}</pre>"
    size = f"width:{int(context['width'])}px;height:{int(context['height'])}px"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(context['title'])} - {html.escape(context['dashboardName'])}</title>"
        f"<style>{FRAME_STYLE}</style></head><body>"
        f'<div class="cw-bar">CloudWatch dashboard {html.escape(context["dashboardName"])} (local stack)'
        f"<span>{html.escape(_range_text(event))}</span></div>"
        f'<section class="cw-widget" id="{html.escape(context["widgetId"])}" style="{size}">'
        f'<h2>{html.escape(context["title"])}</h2><div class="cw-body">{body}</div></section>'
        "</body></html>\n"
    )


class WidgetServer:
    """GET /widgets/delivery: the widget function invoked with CloudWatch's event, its HTML in a page."""

    def __init__(self, invoke: Callable[[dict[str, Any]], Any], port: int = 0) -> None:
        self._invoke = invoke
        self.requests = 0
        self._server = Server(self._handler_class(), port, what="widget page")

    @property
    def url(self) -> str:
        return f"{self._server.url}{PATH}"

    def close(self) -> None:
        self._server.close()

    def answer(self, target: str) -> tuple[int, str]:
        """The status and page for a request target (path and query)."""
        url = urlsplit(target)
        if url.path not in (PATH, "/"):
            return 404, f"<p>Not found: the widget is at {html.escape(PATH)}</p>"
        try:
            event = event_from_query(url.query)
        except (ValueError, OverflowError) as error:
            return 400, f"<p>Bad request: {html.escape(str(error))}</p>"
        self.requests += 1
        try:
            answer = self._invoke(event)
        except FunctionError as error:  # CloudWatch shows the function's error in the widget
            return 502, page(f"<p>The widget's function failed: {html.escape(str(error))}</p>", event)
        return 200, page(answer, event)

    def _handler_class(self) -> type[JsonHandler]:
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                status, text = server.answer(self.path)
                headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP}
                self.reply(status, text.encode(), headers | {"Cache-Control": "no-store"})

        return Handler


# --- headless Chromium -------------------------------------------------------------


class ChromiumMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(f"{CHROMIUM} is not on PATH: {CHROMIUM_INSTALL}")


def chromium() -> str:
    """The path of Debian's chromium, or ChromiumMissing saying how to install it."""
    found = shutil.which(CHROMIUM)
    if found is None:
        raise ChromiumMissing
    return found


def _headless(*arguments: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Headless chromium with a profile of its own, talking to nothing but the page's URL."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [
            chromium(),
            "--headless",
            "--no-sandbox",  # as root (CI, containers) chromium's sandbox does not start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *arguments,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def rendered_dom(url: str, timeout: float = 60) -> str:
    """The DOM chromium rendered from the page at ``url`` (``--dump-dom``), as serialized HTML."""
    return _headless("--dump-dom", url, timeout=timeout).stdout


def screenshot(url: str, path: Path, size: tuple[int, int] = (1000, 700), timeout: float = 60) -> Path:
    """A PNG of the page at ``url`` as chromium draws it in a window of ``size`` pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _headless(f"--screenshot={path.resolve()}", f"--window-size={size[0]},{size[1]}", url, timeout=timeout)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {path}")
    return path
