"""Adaptive Card JSON for the bot's replies: results, citations, sources, feedback, errors.

Plain dicts, version 1.5 (what Teams renders), checked in the tests against the official
Adaptive Cards JSON schema. Teams refuses a message over about 28 KB, so a long result is
split at paragraph boundaries into several cards; sizes are measured on the JSON actually
sent (escaping included), not guessed from character counts. Citations, the sources panel
and the feedback buttons go on the last card.

Under an answer only what it cites is listed, each source named as a person knows it (a
mail by subject, sender and date; a file by title and place: ``skills.citations``) with
the snippet it leans on; the passages it was given but did not cite are behind a "More
sources" button. A card states once which engine answered.

Card text is Teams markdown. Titles and snippets from the user's documents are escaped so a
document cannot turn itself into a link; only http(s) URLs become links.

Links inside an answer are shown as text (``unlink``): the answer is written by a model
that read the user's documents and mail, so a ``[Click here to re-verify](https://evil…)``
in an indexed mail could otherwise reach the card as a real link under a trusted bot's name.
The only links a card carries are the citations', to the indexed items themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from copilot.skills.citations import more_sources
from copilot.skills.types import Citation, Source

CARD_VERSION = "1.5"
SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_CARD_BYTES = 26_000  # Teams' limit is ~28 KB for the whole activity
TEXT_BUDGET = 14_000  # JSON bytes of result text per card; the rest is room for extras
MAX_SOURCES = 15
SNIPPET_CHARS = 240
FEEDBACK = "feedback"  # the `copilot` value of a feedback button's data
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")  # enough to stop links and emphasis
_MD_LINK = re.compile(r"!?\[([^\]\n]{0,1000})\]\( ?<?([^)\s>]{0,4000})>?[^)\n]{0,200}\)")
_AUTOLINK = re.compile(r"<((?:[a-z][a-z0-9+.-]{0,30}:|www\.)[^>\s]{0,4000})>", re.I)
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]{0,30}://|\bwww\.)[^\s<>()\[\]]{0,4000}", re.I)
_SHOWN_PATH = 40


def card_size(card: dict[str, Any]) -> int:
    """Bytes of ``card`` as sent (compact UTF-8 JSON)."""
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def clean(text: str) -> str:
    """Text without control characters (they cost 6 bytes each in JSON and show as junk)."""
    return _CONTROL.sub("", text)


def escape_md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def defang(url: str) -> str:
    """``url`` as text no renderer turns back into a link: no scheme, dots of the host in
    brackets (``evil[.]example/login…``); the reader still sees where it pointed."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host = parts.hostname or ""
    except ValueError:
        host, parts = "", None
    if not host or parts is None:
        return url.replace(":", "[:]").replace(".", "[.]")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(path) > _SHOWN_PATH:
        path = path[: _SHOWN_PATH - 1] + "…"
    return host.replace(".", "[.]") + (path if path != "/" else "")


def unlink(text: str) -> str:
    """``text`` with every Markdown link, autolink and bare URL shown as text: a link's
    label stays, its target follows it defanged in parentheses. Leftover ``](``, ``][`` and ``]:``
    (nested brackets the patterns do not take apart) are split so no link syntax remains."""
    text = _MD_LINK.sub(lambda m: f"{m.group(1)} ({defang(m.group(2))})", text)
    text = _AUTOLINK.sub(lambda m: defang(m.group(1)), text)
    text = _URL.sub(lambda m: defang(m.group(0)), text)
    return text.replace("](", "] (").replace("][", "] [").replace("]:", "] :")


def safe_link(url: str) -> str | None:
    """``url`` if a person may be sent there from a card (http/https only), else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")  # spaces and parentheses escaped


def split_text(text: str, budget: int = TEXT_BUDGET) -> list[str]:
    """``text`` in pieces of at most ``budget`` JSON bytes, cut at paragraph breaks, else
    line breaks, else sentence ends, else spaces; inside a word only when one word alone is
    over the budget. Joined with the separators they were cut at, the pieces give the text
    back."""
    text = clean(text).strip()
    if not text:
        return []
    if _json_size(text) <= budget:
        return [text]
    for separator in ("\n\n", "\n", ". ", " "):
        parts = text.split(separator)
        if len(parts) > 1:
            break
    else:
        return _hard_split(text, budget)
    glue = separator
    if separator == ". ":  # keep each sentence's full stop with the sentence
        parts, glue = [p + "." for p in parts[:-1]] + [parts[-1]], " "
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{glue}{part}" if current else part
        if _json_size(candidate) <= budget:
            current = candidate
            continue
        if current:
            pieces.append(current)
        if _json_size(part) > budget:
            pieces.extend(split_text(part, budget))
            current = ""
        else:
            current = part
    if current:
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def _hard_split(text: str, budget: int) -> list[str]:
    pieces, current = [], ""
    for char in text:
        if _json_size(current + char) > budget:
            pieces.append(current)
            current = ""
        current += char
    return pieces + ([current] if current else [])


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA_URL,
        "version": CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def message_card(title: str, text: str, *, tone: str = "default") -> dict[str, Any]:
    """A short notice: an error in plain words, a confirmation, a question."""
    color = {"error": "Attention", "warning": "Warning", "good": "Good"}.get(tone, "Default")
    return _card(
        [
            _text(escape_md(title), weight="Bolder", size="Medium", color=color),
            _text(unlink(clean(text))),
        ]
    )


def citation_line(c: Citation) -> str:
    """ "[1] Mexico advice — Kay Mann, 14 Mar 2001", the title a link to the item when it
    is an http(s) one; the document's words escaped so they cannot form a link."""
    title = escape_md(clean(c.title or c.item_id))[:200]
    link = safe_link(c.link or c.url)
    where = f" — {escape_md(clean(c.where))[:200]}" if c.where else ""
    return f"[{c.n}] [{title}]({link}){where}" if link else f"[{c.n}] {title}{where}"


def citation_lines(citations: Sequence[Citation]) -> list[str]:
    return [citation_line(c) for c in citations]


def source_blocks(citations: Sequence[Citation]) -> list[dict[str, Any]]:
    """Each source as its line and, beneath it, its snippet (small and subtle)."""
    body: list[dict[str, Any]] = []
    for c in list(citations)[:MAX_SOURCES]:
        body.append(_text(citation_line(c), size="Small", weight="Bolder", spacing="Small"))
        snippet = " ".join(unlink(clean(c.snippet)).split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[: SNIPPET_CHARS - 1] + "…"
        if snippet:
            body.append(_text(escape_md(snippet), isSubtle=True, size="Small", spacing="None"))
    if len(citations) > MAX_SOURCES:
        body.append(_text(f"…and {len(citations) - MAX_SOURCES} more.", isSubtle=True))
    return body


def sources_card(citations: Sequence[Citation]) -> dict[str, Any]:
    """The panel behind "More sources": the passages the answer was given but did not cite."""
    return {"type": "AdaptiveCard", "body": source_blocks(citations)}


def feedback_actions(run_id: str) -> list[dict[str, Any]]:
    """Thumbs up/down as ``Action.Submit``: Teams sends the data back as a message whose
    ``value`` the bot records on the run (``runner.runs.feedback``)."""
    return [
        {"type": "Action.Submit", "title": title, "data": {"copilot": FEEDBACK,
         "run_id": run_id, "rating": rating}}
        for title, rating in (("👍 Helpful", 1), ("👎 Not helpful", -1))
    ]  # fmt: skip


def result_cards(
    title: str,
    text: str,
    *,
    citations: Sequence[Citation] = (),
    sources: Sequence[Source] = (),
    run_id: str | None = None,
    note: str = "",
    facts: Sequence[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """A skill's answer as one card, or several when it is long ("part 2 of 3").

    ``citations`` (what the answer cites) are listed under it; the other ``sources`` it
    was given go behind "More sources". ``note`` is the one line on how it was answered
    (the engine's note)."""
    chunks = split_text(unlink(text)) or ["(The skill returned no text.)"]
    cards = []
    for i, chunk in enumerate(chunks, start=1):
        heading = title if len(chunks) == 1 else f"{title} (part {i} of {len(chunks)})"
        body = [_text(escape_md(heading), weight="Bolder", size="Medium"), _text(chunk)]
        cards.append(_card(body))
    last = cards[-1]
    if facts:
        last["body"].append(
            {
                "type": "FactSet",
                "facts": [{"title": clean(k), "value": unlink(clean(v))} for k, v in facts],
            }
        )
    if citations:
        last["body"].append(_text("**Sources**", size="Small", spacing="Medium"))
        last["body"].extend(source_blocks(citations))
    if note.strip():
        last["body"].append(_text(unlink(clean(note)), isSubtle=True, size="Small"))
    actions: list[dict[str, Any]] = []
    more = more_sources(sources, citations)
    if more:
        title = f"More sources ({len(more)})"
        actions.append({"type": "Action.ShowCard", "title": title, "card": sources_card(more)})
    if run_id:
        actions.extend(feedback_actions(run_id))
    if actions:
        last["actions"] = actions
    if card_size(last) > MAX_CARD_BYTES and more:  # the panel is the part that can go
        last["actions"] = [a for a in actions if a["type"] != "Action.ShowCard"]
    return cards


def download_card(title: str, text: str, url: str, *, facts: Sequence[tuple[str, str]] = ()):
    """A file ready to download (the scored workbook) behind a short-lived link."""
    body = [_text(escape_md(title), weight="Bolder", size="Medium"), _text(clean(text))]
    if facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": k, "value": clean(v)} for k, v in facts]}
        )
    return _card(body, [{"type": "Action.OpenUrl", "title": "Download", "url": url}])


def skills_card(skills: Iterable[Any], default: str, *, shared: bool) -> dict[str, Any]:
    """The skills a user can run. In a group chat or a channel (``shared``) only the
    built-in ones: a user's own skills, their names and descriptions, are not the group's
    business, so they are listed only in a 1:1 chat (and a personal default is not named)."""
    rows = []
    personal = set()
    for info in skills:
        if info.source == "personal":
            personal.add(info.id)
            if shared:
                continue
        rows.append((info.id + (" (yours)" if info.source == "personal" else ""), info.description))
    if shared:
        shown = "" if default in personal else f"Default: {default}. "
        footer = f"{shown}Your own skills are listed in a 1:1 chat with me."
    else:
        footer = f"Default: {default}. Type a skill's name and your text, or `run SKILL text`."
    return list_card("Skills" if shared else "Your skills", rows, footer)


def list_card(title: str, rows: Sequence[tuple[str, str]], footer: str = "") -> dict[str, Any]:
    """Help and the skills list: a name and a description per row."""
    body = [_text(escape_md(title), weight="Bolder", size="Medium")]
    body.append(
        {
            "type": "FactSet",
            "facts": [{"title": clean(name), "value": clean(text)} for name, text in rows],
        }
    )
    if footer:
        body.append(_text(clean(footer), isSubtle=True, size="Small"))
    return _card(body)
