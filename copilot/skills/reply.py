"""Who a reply is to, and the first words it starts with.

A small model asked to reply to a mail calls its sender "the user", greets the user
instead of the sender and signs with the sender's name; and without a first line written
for it, it often copies the mail back. Both are fixed with the same fact, the sender's
name from the message's ``From:`` line, which a template's ``metadata.prefill`` (e.g.
``"Hi {sender_first_name},"``) turns into the answer's first words: a final assistant
turn the engine sends as a prefill (``copilot.llm.prefill``).

Retrieval for a reply searches with the mail itself, so its best hits are the mail and
its own quoted thread: ``not_quoted`` leaves out passages the prompt already holds, so
the model reads the mail once.
"""

from __future__ import annotations

import contextlib
import email.header
import email.utils
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from copilot.index.search import SearchResult
from copilot.llm.types import Message
from copilot.skills.templates.models import SkillTemplate

MESSAGE_INPUTS = ("message", "text")  # where a template takes the mail it answers
HEADER_LINES = 20  # a From: line further down is quoted text, not this mail's header
MAX_NAME = 40
QUOTED = 0.5  # a passage this much of whose word triples are in an input is that input
_FROM = re.compile(r"^[ \t]*from[ \t]*:[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE)
_NAME_PART = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Sender:
    name: str  # "Anna Berg"
    first_name: str  # "Anna"


def sender_of(message: str) -> Sender | None:
    """The sender named on the ``From:`` line of a mail's header; None for a text that is
    not a mail (no such line).

    "Anna Berg <anna@x.com>" and "Berg, Anna" give Anna; a bare address gives a name only
    when its local part has one to give ("phillip.allen@enron.com": Phillip, "pallen@": an
    empty name).
    """
    head = "\n".join(message.split("\n\n", 1)[0].splitlines()[:HEADER_LINES])
    found = _FROM.search(head)
    if found is None:
        return None
    raw = found.group(1).strip()
    display, address = email.utils.parseaddr(raw)
    if not display and "@" not in address:  # an unquoted "Last, First <…>", or a name alone
        display, address = raw.split("<", 1)[0], raw.partition("<")[2].rstrip("> ")
    with contextlib.suppress(ValueError, LookupError, UnicodeError):  # "=?utf-8?q?…?="
        display = str(email.header.make_header(email.header.decode_header(display)))
    words = _NAME_PART.findall(display.strip(" \"'"))
    if "," in display and len(words) >= 2:  # "Berg, Anna"
        last, _, first = display.partition(",")
        words = _NAME_PART.findall(first) + _NAME_PART.findall(last)
    if not words:
        local = address.split("@", 1)[0]
        parts = [p for p in re.split(r"[._-]+", local) if p.isalpha() and len(p) > 1]
        words = [p.capitalize() for p in parts] if len(parts) >= 2 else []
    if not words:
        return Sender(name="", first_name="")  # a mail, but no name to greet
    name = " ".join(words)[:MAX_NAME].strip()
    return Sender(name=name, first_name=words[0][:MAX_NAME])


def prefill_for(template: SkillTemplate, inputs: Mapping[str, Any]) -> str | None:
    """The template's prefill with its placeholders filled, or None when it has none or
    there is no mail to answer (a prefill that names the sender needs a From: line). A name
    that cannot be found is left out with the space before it: "Hi {sender_first_name},"
    becomes "Hi,"."""
    spec = template.metadata.prefill
    if not spec:
        return None
    message = next(
        (v for k in MESSAGE_INPUTS if isinstance(v := inputs.get(k), str) and v.strip()), None
    )
    fields = {name for _, name, _, _ in string.Formatter().parse(spec) if name}
    if not fields:
        return spec
    sender = sender_of(message) if message is not None else None
    if sender is None:
        return None
    values = {"sender_name": sender.name, "sender_first_name": sender.first_name}
    if not fields <= values.keys():
        return None
    text = spec
    for key, value in values.items():
        if value:
            text = text.replace("{" + key + "}", value)
        else:
            text = re.sub(r"[ \t]?\{" + key + r"\}", "", text)
    return text.lstrip() or None  # a trailing blank line starts the body on a line of its own


def with_prefill(
    messages: list[Message], template: SkillTemplate, inputs: Mapping[str, Any]
) -> list[Message]:
    """``messages`` with the template's prefill as a final assistant turn, if it has one."""
    start = prefill_for(template, inputs)
    if start is None or (messages and messages[-1].role == "assistant"):
        return messages
    return [*messages, Message("assistant", start)]


def given_texts(inputs: Mapping[str, Any]) -> list[str]:
    """The texts the prompt already holds whole: the message (or text) being answered."""
    return [v for k in MESSAGE_INPUTS if isinstance(v := inputs.get(k), str) and v.strip()]


def not_quoted(results: list[SearchResult], texts: list[str]) -> list[SearchResult]:
    """``results`` without the passages that are (mostly) one of ``texts`` already."""
    if not texts:
        return results
    known = set().union(*(_triples(t) for t in texts))
    kept = []
    for result in results:
        own = _triples(result.text or "")
        if not own or len(own & known) / len(own) < QUOTED:
            kept.append(result)
    return kept


def _triples(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + 3]) for i in range(max(0, len(words) - 2))}
