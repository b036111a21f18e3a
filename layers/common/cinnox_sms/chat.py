"""Digests in Slack or Teams: the custom notification Amazon Q Developer in chat applications (formerly AWS
Chatbot) renders, carried by the same Publish as the e-mail (issue 21).

A channel configuration subscribes the digest topic to the service's HTTPS endpoint, so a digest published with
MessageStructure=json reaches the channel as its ``https`` entry, and e-mail still gets the ``email`` entry: one
Publish, one message id, each subscriber its own form. Any other HTTPS subscriber of the digest topic gets this
JSON too (docs/operations.md); ``http`` subscriptions are refused by the topic policy.

The shape is the one AWS documents in "Custom notifications using Amazon Q Developer in chat applications"
(Event schema, Parameter details): ``version`` "1.0" and ``source`` "custom" required; ``content`` with
``textType`` "client-markdown" (the only one supported: rendered in the chat platform's own markdown),
``title``, ``description``, ``nextSteps`` and ``keywords``; ``metadata`` with ``summary``, ``eventType`` and
``additionalContext`` (string values). The page states no length limits: the budgets below are ours, kept
small (Slack's section text takes 3,000 characters) so that a notification never nears SNS's 256 KiB with
the other forms of the message.

What a sender wrote (a transaction ID, a country, an exception) is rendered by ``literal``: one line
(``neutral.line``), in a code span, each character markdown, Slack or Teams could give a meaning to (links,
mentions such as ``<!channel>`` or ``@here``, emoji, formatting, bare URLs) written as a visible escape.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence

from cinnox_sms.neutral import line

CHAT_PROTOCOL = "https"  # how SNS delivers to the chat service (and to any other HTTPS subscriber)
VERSION = "1.0"  # "Must be 1.0"
SOURCE = "custom"  # "Must be custom"
TEXT_TYPE = "client-markdown"  # "Only client-markdown textType is currently supported"
TITLE_LIMIT = 250  # our budget, in characters (the digests' titles are their subjects: at most 100)
DESCRIPTION_LIMIT = 3000  # our budget: Slack's section block takes 3,000 characters
NEXT_STEPS_LIMIT = 5
STEP_LIMIT = 300
KEYWORDS_LIMIT = 5
KEYWORD_LIMIT = 50
# Characters shown as they are, inside the code span: letters, digits and "_" (a regex's \w), space, - + = , and
# the backslash of neutral.line's escapes. Everything else (. : / for URLs and emoji, @ # ! < > & | for mentions
# and links, * ~ ` [ ] ( ) for formatting, every symbol and emoji) is escaped.
_PLAIN = r"\w \-+=,\\"


def literal(text: str) -> str:
    """Text a sender wrote, in chat markdown: inert, on one line, in a code span."""
    return f"`{_markup().sub(_escape, line(text))}`"


def notification(
    *,
    title: str,
    lines: Sequence[str],
    next_steps: Sequence[str] = (),
    keywords: Sequence[str] = (),
    event_type: str,
    context: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """A custom notification. ``lines`` are markdown lines of ours (sender text already through ``literal``):
    whole lines are left out past the description's budget, and the last line says how many."""
    title = _cut(title, TITLE_LIMIT)
    return {
        "version": VERSION,
        "source": SOURCE,
        "content": {
            "textType": TEXT_TYPE,
            "title": title,
            "description": description(lines),
            "nextSteps": [_cut(step, STEP_LIMIT) for step in next_steps[:NEXT_STEPS_LIMIT]],
            "keywords": [_cut(word, KEYWORD_LIMIT) for word in keywords[:KEYWORDS_LIMIT]],
        },
        "metadata": {
            "summary": title,
            "eventType": event_type,
            "additionalContext": dict(context or {}),
        },
    }


def encoded(notification: Mapping[str, object]) -> str:
    """The notification as the ``https`` entry of a MessageStructure=json message."""
    return json.dumps(notification, ensure_ascii=False, separators=(",", ":"))


def description(lines: Sequence[str], limit: int = DESCRIPTION_LIMIT) -> str:
    """The lines joined, at most ``limit`` characters: whole lines only, then a line saying how many were left
    out (never a cut through an escape or a code span)."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    for index, one in enumerate(lines):
        rest = len(lines) - index
        note = f"_... {rest} more line{'s' if rest != 1 else ''}: see the e-mail or the command below_"
        if size + len(one) + 1 + len(note) > limit:
            return "\n".join([*kept, note])
        kept.append(one)
        size += len(one) + 1
    return "\n".join(kept)  # pragma: no cover - the text was over the limit, so some line was left out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def _markup() -> re.Pattern[str]:
    return re.compile(f"[^{_PLAIN}]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
