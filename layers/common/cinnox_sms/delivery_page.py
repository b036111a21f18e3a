"""Delivery by country as HTML: the one renderer of the dashboard's delivery widget (functions/widget) and of
`cinnox-sms report --html FILE` (issue 21, items 1 and 4).

From the per-country lines cinnox_sms.delivery computes: one row per country, worst first (lowest delivery
rate, then most failed, then most sent; a country with no final status yet after those with one), each with
a small CSS bar of its delivery rate, and the 'all' line last. No script, no link, no image, nothing fetched:
the CSS is inline, so the page stands alone and the widget shows the same in CloudWatch's frame.

Everything printed that came from outside (a country is a rollup key, written from what a sender sent) goes
through neutral.html; numbers are formatted here.
"""

from __future__ import annotations

from collections.abc import Iterable

from cinnox_sms.delivery import CountryLine, human
from cinnox_sms.neutral import html

MAX_ROWS = 300  # ISO 3166 has 249 codes; past that the page says how many more it left out
GOOD_RATE = 0.95  # at or above: the bar is green
POOR_RATE = 0.80  # below: red; between: amber
HEADERS = ("country", "sent", "delivered", "undelivered", "rejected", "pending", "rate", "", "p50", "p90")
STYLE = """
.cx-delivery{font:13px/1.4 Arial,Helvetica,sans-serif;color:#16191f}
.cx-delivery p{margin:2px 0 6px}
.cx-delivery table{border-collapse:collapse;width:100%}
.cx-delivery th,.cx-delivery td{padding:2px 6px;border-bottom:1px solid #e9ebed;text-align:right;white-space:nowrap}
.cx-delivery th:first-child,.cx-delivery td:first-child{text-align:left}
.cx-delivery tr.cx-all td{font-weight:bold;border-top:2px solid #aab7b8}
.cx-delivery td.cx-bar{width:120px;text-align:left}
.cx-delivery .cx-track{display:block;height:8px;width:120px;background:#e9ebed}
.cx-delivery .cx-fill{display:block;height:8px}
.cx-delivery .cx-good{background:#1d8102}
.cx-delivery .cx-fair{background:#f89256}
.cx-delivery .cx-poor{background:#d13212}
""".strip()


VIEW_CAPTIONS = {
    "cohort": "the SMS sent in the period, each under its final status so far",
    "arrival": "the TDRs received in the period, each in the hour it was received",
}


def caption(period: str, view: str) -> str:
    """The line above the table: the period and the view."""
    return f"period {period}; {VIEW_CAPTIONS.get(view, view)}"


def worst_first(lines: Iterable[CountryLine]) -> list[CountryLine]:
    """The countries worst first, then the 'all' line(s)."""
    lines = list(lines)
    countries = [line for line in lines if line.country != "all"]  # a rollup key is upper case: never "all"
    totals = [line for line in lines if line.country == "all"]

    def badness(line: CountryLine) -> tuple[bool, float, int, int, str]:
        rate = line.delivery_rate
        failed = line.undelivered + line.rejected
        return (rate is None, rate if rate is not None else 0.0, -failed, -line.sent, line.country)

    return sorted(countries, key=badness) + totals


def _rate(line: CountryLine) -> str:
    return "-" if line.delivery_rate is None else f"{line.delivery_rate:.1%}"


def _bar(line: CountryLine) -> str:
    rate = line.delivery_rate
    if rate is None:
        return '<td class="cx-bar"></td>'
    grade = "cx-good" if rate >= GOOD_RATE else "cx-fair" if rate >= POOR_RATE else "cx-poor"
    width = f"{max(0.0, min(1.0, rate)) * 100:.1f}"
    fill = f'<span class="cx-fill {grade}" style="width:{width}%"></span>'
    return f'<td class="cx-bar"><span class="cx-track">{fill}</span></td>'


def _row(line: CountryLine) -> str:
    cells = [
        html(line.country),
        str(line.sent),
        str(line.delivered),
        str(line.undelivered),
        str(line.rejected),
        str(line.pending),
        _rate(line),
    ]
    tds = "".join(f"<td>{cell}</td>" for cell in cells)
    times = "".join(f"<td>{html(human(t))}</td>" for t in (line.p50_delivered_est, line.p90_delivered_est))
    kind = ' class="cx-all"' if line.country == "all" else ""
    return f"<tr{kind}>{tds}{_bar(line)}{times}</tr>"


def fragment(lines: list[CountryLine], caption: str) -> str:
    """The table with its style and caption: what the widget returns, and the body of the page."""
    ordered = worst_first(lines)
    countries = [line for line in ordered if line.country != "all"]
    shown = countries[:MAX_ROWS] + [line for line in ordered if line.country == "all"]
    left = len(countries) - min(len(countries), MAX_ROWS)
    head = "".join(f"<th>{name}</th>" for name in HEADERS)
    parts = [f"<style>{STYLE}</style>", '<div class="cx-delivery">', f"<p>{html(caption)}</p>"]
    if not countries:
        parts.append("<p>No SMS sent in this period.</p>")
    else:
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        parts.extend(_row(line) for line in shown)
        parts.append("</tbody></table>")
        if left:
            parts.append(f"<p>{left} more countries not shown (the best delivered).</p>")
        parts.append(
            "<p>rate: delivered of the final statuses; p50, p90: time from Submitted to Delivered, "
            "estimated from the rollups' buckets.</p>"
        )
    parts.append("</div>")
    return "".join(parts)


def document(lines: list[CountryLine], caption: str, title: str = "SMS delivery by country") -> str:
    """A page that stands alone (`cinnox-sms report --html`): the same fragment, no script, nothing fetched."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html(title)}</title></head><body>{fragment(lines, caption)}</body></html>\n"
    )
