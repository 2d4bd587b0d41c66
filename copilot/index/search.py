"""Search a user's index and turn chunk hits into results a person can open and cite.

The store answers with chunks; people want documents and messages. Each result keeps the
chunk's locator (the paragraph, cell range, page or message to open) and a snippet: the
passage of the chunk that best matches the query, so a result list can be skimmed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from copilot.errors import CopilotError
from copilot.index.base import IndexStore, Mode, QueryEmbedder
from copilot.index.filters import SearchFilters
from copilot.index.fusion import Fusion

MAX_QUERY_CHARS = 2000
_WORD = re.compile(r"\w+", re.UNICODE)
_HEADER = re.compile(r"^(Subject|From|To|Cc|Date):", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_query(query: str) -> str:
    """Strip control characters and cap the length; refuse a query with nothing in it."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in query)
    text = " ".join(text.split())[:MAX_QUERY_CHARS]
    if not _WORD.search(text):
        raise QueryError("the query is empty: type some words to search for")
    return text


def snippet(text: str, query: str, width: int = 240) -> str:
    """The sentence of ``text`` sharing most words with ``query``, cut to ``width``."""
    terms = {w.lower() for w in _WORD.findall(query)}
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()] or [text]

    def score(sentence: str) -> tuple[bool, int, int]:
        # A sentence of the message's own words over its header lines (the title already
        # shows the subject), then the most query words, then the fuller sentence.
        shared = len(terms & {w.lower() for w in _WORD.findall(sentence)})
        return shared > 0 and not _HEADER.match(sentence), shared, min(len(sentence), 120)

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
) -> list[SearchResult]:
    """The ``k`` best chunks of ``owner``'s index for ``query``.

    ``embedder`` must be the one that filled ``store``; ``fusion`` None is the store's own.
    """
    text = clean_query(query)
    dense = embedder.embed_query(text) if mode != "bm25" else None
    hits = store.search(
        owner, text=text, dense=dense, k=k, mode=mode, filters=filters, fusion=fusion
    )
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
        )
        for hit in hits
    ]


def _body(payload: dict[str, Any]) -> str:
    """The chunk's own text, without the heading path or table header it starts with."""
    text = payload.get("text") or ""
    return text[int(payload.get("prefix_chars") or 0) :] or text


def format_locator(locator: dict[str, Any]) -> str:
    """``{"sheet": "Budget", "range": "A2:D9"}`` → ``Budget!A2:D9``; readable for the rest."""
    if "sheet" in locator:
        return f"{locator['sheet']}!{locator.get('range', '')}".rstrip("!")
    parts = []
    for key, value in locator.items():
        if key.endswith("_end"):
            continue
        end = locator.get(f"{key}_end")
        parts.append(f"{key} {value}–{end}" if end is not None else f"{key} {value}")
    return ", ".join(parts)
