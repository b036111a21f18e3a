"""What a sender wrote, made harmless for where people read it (issue 20, item 4).

A TDR's fields are kept as sent (issue 19: odd shapes are stored, not refused), so what a sender wrote
reaches people: the alert e-mail, the digests, the terminal, CSV a spreadsheet opens. There it must not
pass for something we wrote. One set of characters is *unsafe* everywhere:

- C0 and C1 controls (line breaks, ESC and the terminal sequences it starts, NEL U+0085, DEL);
- the line and paragraph separators U+2028 and U+2029;
- the bidirectional controls: the embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and
  the marks (U+200E, U+200F, U+061C), which reorder what is shown ("Trojan Source", CVE-2021-42574);
- non-characters (U+FDD0-U+FDEF, and the last two code points of every plane) and lone surrogates.

The identifying fields (TransactionID, AppID) refuse them at the webhook (``first_unsafe``); every other
field keeps them, and each medium gets its own rendering:

- ``line``: plain text on one line (e-mail body, digest, terminal), each unsafe character written as its
  visible escape (``\\n``, ``\\x1b``, ``\\u202e``), so the line says what was sent and starts nothing new;
- ``json_for_people``: a JSON document shown to people, the unsafe characters JSON-escaped (the same
  values: a parser reads what was stored);
- ``csv_cell``: ``line``, then a cell a spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@``,
  tab, CR first) is prefixed with ``'`` (OWASP, "CSV Injection");
- ``html``: ``line``, then HTML-escaped (for any widget or page that renders HTML).

Machine output (the alert's JSON record for queues, ``--format json``, ``--json``) stays exact.
"""

from __future__ import annotations

import functools
import re

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
_UNSAFE_BEYOND_C0 = (
    "\x7f-\x9f"  # DEL and C1
    "\u2028\u2029"  # line and paragraph separators
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\ud800-\udfff"  # lone surrogates (JSON can carry them; UTF-8 cannot)
) + _NONCHARACTERS
# OWASP "CSV Injection": what makes a spreadsheet read a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def first_unsafe(text: str) -> int | None:
    """The index of the first unsafe character of text; None when there is none (the common case: an
    identifier that is all printable is never searched)."""
    if text.isprintable():
        return None
    found = unsafe().search(text)
    return None if found is None else found.start()


def line(text: str) -> str:
    """Text a sender wrote, on one line of ours: each unsafe character as its visible escape."""
    if text.isprintable():  # printable text holds no unsafe character: returned as is
        return text
    return unsafe().sub(_escape, text)


def json_for_people(document: str) -> str:
    """A JSON document (json.dumps' output, ensure_ascii=False) shown to people: the unsafe characters its
    strings hold written as JSON escapes, so it parses to the same values and shows none of them."""
    return _unsafe_in_json().sub(_json_escape, document)


def csv_cell(text: str) -> str:
    """A cell of CSV for people: one line, and never a formula (``'`` before a formula's first character)."""
    cell = line(text)
    return "'" + cell if cell.lstrip(" ").startswith(_FORMULA_STARTS) else cell


def html(text: str) -> str:
    """Text a sender wrote inside HTML: one line, markup escaped (quotes too, for attributes)."""
    import html as _html  # not on the webhook's path: its import stays out of the cold start

    return _html.escape(line(text), quote=True)


@functools.cache
def unsafe() -> re.Pattern[str]:
    """The unsafe characters, one compiled pattern. Compiled once, when first needed: text that is all
    printable (every identifier CINNOX sends) is never searched, so the webhook's cold start compiles nothing."""
    return re.compile(f"[\x00-\x1f{_UNSAFE_BEYOND_C0}]")


@functools.cache
def _unsafe_in_json() -> re.Pattern[str]:
    # In a JSON document json.dumps has escaped every C0 control inside strings; the raw ones left are its
    # layout. Compiled when first needed (by the alert function), not in the webhook's cold start.
    return re.compile(f"[{_UNSAFE_BEYOND_C0}]")


def _escape(found: re.Match[str]) -> str:
    character = found.group()
    return character.encode("unicode_escape", "backslashreplace").decode("ascii")


def _json_escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON writes a character beyond the BMP
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"
