"""Search a user's index and turn chunk hits into results a person can open and cite.

The store answers with chunks; people want documents and messages. Each result keeps the
chunk's locator (the paragraph, cell range, page or message to open), who sent a mail and
when, and a snippet: the sentence of the chunk's body that best matches the query (never
the "Subject: / From: / Date:" lines a mail's first chunk starts with), so a result list
can be skimmed.

A query is searched in one canonical form (``query_text``): lower case, without the
punctuation around words. "Budget?", "budget" and "“Budget”" are one question to a
person, and must find the same passages: BM25 already ignored them, but the dense
embedding did not, and a question mark could move a passage across the local engine's
relevance threshold.
"""

from __future__ import annotations

import re
import unicodedata
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from copilot.errors import CopilotError
from copilot.index.base import IndexStore, Mode, QueryEmbedder
from copilot.index.filters import SearchFilters
from copilot.index.fusion import Fusion

MAX_QUERY_CHARS = 2000
_WORD = re.compile(r"\w+", re.UNICODE)
_HEADER = re.compile(r"^(Subject|From|To|Cc|Date):", re.IGNORECASE)
# The header lines the mail parser puts before a message's body (connectors/parsers/mail.py,
# ``_build``): in the first chunk of every mail and in its display text.
_MAIL_HEADER = re.compile(r"^(Subject|From|To|Cc|Bcc|Date|Sent):[ \t]?(.*)$", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# Punctuation with no word character on one side: "advice?", "“quoted”", "(this)".
# Inside a word it stays: "e-mail", "kay.mann@enron.com", "Q3/Q4", "don't".
_EDGE_PUNCTUATION = re.compile(r"(?<!\w)[^\w\s]+|[^\w\s]+(?!\w)")


class QueryError(CopilotError, ValueError):
    """A query that cannot be searched (empty, only punctuation)."""

    kind = "bad_query"
    status = 400
    title = "I can't search for that"


@dataclass(frozen=True)
class SearchResult:
    item_id: str
    title: str
    url: str
    kind: str
    locator: dict[str, Any]
    score: float
    snippet: str
    text: str
    chunk_id: str
    sender: str = ""  # a mail's sender as people know them: "Kay Mann", else the address
    date: str = ""  # a mail's date, ISO 8601

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def query_text(query: str) -> str:
    """The canonical form a query is searched in: no control characters, lower case, no
    punctuation around words, single spaces, at most ``MAX_QUERY_CHARS``.

    Casing and a question's punctuation never change what a person means, so they must
    not change what is found either (the embedding model would otherwise see them).
    """
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in query)
    text = _EDGE_PUNCTUATION.sub(" ", text.lower())
    return " ".join(text.split())[:MAX_QUERY_CHARS].rstrip()


def clean_query(query: str) -> str:
    """``query_text``; a query with no word in it is refused."""
    text = query_text(query)
    if not _WORD.search(text):
        raise QueryError("the query is empty: type some words to search for")
    return text


def body_text(text: str) -> str:
    """``text`` without the block of mail header lines it may start with: what a snippet
    is cut from. The header says who and when, which a citation shows as such."""
    lines = text.split("\n")
    skip = 0
    while skip < len(lines) and _MAIL_HEADER.match(lines[skip].strip()):
        skip += 1
    return "\n".join(lines[skip:]).strip() if skip else text


def mail_fields(text: str) -> dict[str, str]:
    """Subject, sender and date from the header lines a mail's text starts with (the
    parser's display text, or a first chunk); "" for what it does not say.

    The sender is the name when the From line has one ("Kay Mann <kay@…>"), else the
    address; the date is ISO 8601 as the parser wrote it.
    """
    found = {"subject": "", "sender": "", "date": ""}
    for line in text.split("\n")[:12]:
        match = _MAIL_HEADER.match(line.strip())
        if match is None:
            break
        name, value = match.group(1).lower(), match.group(2).strip()
        if name == "subject":
            found["subject"] = value
        elif name == "from":
            display, address = parseaddr(value)
            found["sender"] = display or address or value
        elif name in ("date", "sent"):
            found["date"] = value
    return found


def snippet(text: str, query: str, width: int = 240) -> str:
    """The sentence of ``text`` sharing most words with ``query``, cut to ``width``."""
    terms = {w.lower() for w in _WORD.findall(query)}
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()] or [text]

    def score(sentence: str) -> tuple[bool, int, int]:
        # A sentence of the message's own words over its header lines (the title already
        # shows the subject), then the most query words, then the fuller sentence.
        shared = len(terms & {w.lower() for w in _WORD.findall(sentence)})
        own = not _HEADER.match(sentence)
        return shared > 0 and own, shared if own else -1, min(len(sentence), 120)

    best = max(sentences, key=score)
    return best if len(best) <= width else best[: width - 1].rstrip() + "…"


def search(
    store: IndexStore,
    embedder: QueryEmbedder,
    owner: str,
    query: str,
    *,
    k: int = 10,
    mode: Mode = "hybrid",
    filters: SearchFilters | None = None,
    fusion: Fusion | None = None,
    feedback: int | None = None,
) -> list[SearchResult]:
    """The ``k`` best chunks of ``owner``'s index for ``query``.

    ``embedder`` must be the one that filled ``store``; ``fusion`` and ``feedback`` None are
    the store's own.
    """
    text = clean_query(query)
    dense = embedder.embed_query(text) if mode != "bm25" else None
    hits = store.search(
        owner, text=text, dense=dense, k=k, mode=mode, filters=filters, fusion=fusion,
        feedback=feedback,
    )  # fmt: skip
    return [
        SearchResult(
            item_id=hit.payload["item_id"],
            title=hit.payload.get("title") or "",
            url=hit.payload.get("url") or "",
            kind=hit.payload.get("kind") or "",
            locator=hit.payload.get("locator") or {},
            score=hit.score,
            snippet=snippet(_body(hit.payload), text),
            text=hit.payload.get("text") or "",
            chunk_id=hit.id,
            **_sent(hit.payload),
        )
        for hit in hits
    ]


def _body(payload: dict[str, Any]) -> str:
    """The chunk's own text, without the heading path or table header it starts with, or
    the header lines of a mail."""
    text = payload.get("text") or ""
    return body_text(text[int(payload.get("prefix_chars") or 0) :] or text)


def _sent(payload: dict[str, Any]) -> dict[str, str]:
    """Who sent a mail and when, from its payload (an index written before the sender's
    name was stored falls back to the From line of the first chunk, then the address)."""
    if payload.get("kind") != "mail":
        return {"sender": "", "date": ""}
    header = mail_fields(payload.get("text") or "")
    sender = payload.get("sender_name") or header["sender"] or payload.get("sender") or ""
    when = payload.get("modified_ts")
    date = header["date"]
    if isinstance(when, int | float) and not isinstance(when, bool):
        with suppress(OverflowError, OSError, ValueError):  # a corrupt timestamp: the header's
            date = datetime.fromtimestamp(when, UTC).isoformat()
    return {"sender": str(sender), "date": date}


def place(kind: str, locator: dict[str, Any], sender: str = "", date: str = "") -> str:
    """What, beside its title, tells a person which passage it is: a mail's sender and
    date ("Kay Mann, 14 Mar 2001": a message is one passage, named by who and when), a
    file's place in it (``format_locator``)."""
    if kind == "mail":
        return ", ".join(x for x in (sender, short_date(date)) if x)
    return format_locator(locator)


def short_date(value: str) -> str:
    """An ISO 8601 date as people read it in any locale ("14 Mar 2001"); "" for no date,
    the text as given when it is not ISO."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return value.strip()[:40]
    return f"{when.day} {when:%b %Y}"


def format_locator(locator: dict[str, Any]) -> str:
    """``{"sheet": "Budget", "range": "A2:D9"}`` → ``Budget!A2:D9``; readable for the rest
    ("section Risks, paragraphs 4–5", "pages 2–3"). Identifiers (a mail's Message-ID) are
    not places a person can look at, and are left out."""
    if "sheet" in locator:
        return f"{locator['sheet']}!{locator.get('range', '')}".rstrip("!")
    parts = []
    for key, value in locator.items():
        if key.endswith("_end") or key.endswith("_id") or key == "label":
            continue
        end = locator.get(f"{key}_end")
        if end is not None and end != value:
            plural = f"{key}s" if isinstance(value, int) else key
            parts.append(f"{plural} {value}–{end}")
        else:
            parts.append(f"{key} {value}")
        if key == "page" and locator.get("label"):  # the number printed on the page
            parts[-1] += f" ({locator['label']})"
    return ", ".join(parts)
