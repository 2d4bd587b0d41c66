"""Pack search results into the numbered, fenced context block a prompt cites from.

A model's window is small and every token of context costs money and attention, so this
module decides which passages go in and where:

- the best passages first, near-duplicates out (mail threads quote each other, a document
  synced twice yields the same paragraph twice) — a cheap word-shingle Jaccard, no embeddings;
- one number per passage a person can tell apart: chunks of one mail, and chunks of one
  file at the same or adjacent places (a long paragraph cut in three, paragraphs 3–5 and
  6–8), are merged into one source before numbering, so an answer never cites "[1][2][4]"
  for what is, to its reader, one place;
- as many as fit the token budget, counted on the real fenced text with the caller's
  tokenizer, so the estimate is the bill; a best passage too long for the budget goes in cut
  at a sentence or word boundary rather than leaving the model with nothing;
- passages of one document side by side, in document order, so the model reads a document
  as a document and not as shuffled fragments;
- fenced as untrusted data: a document or mail is never instructions, and a hostile one must
  not be able to close its fence and open a "source" of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from copilot.index.search import SearchResult
from copilot.ingest.chunk import merge_locators
from copilot.skills.source_block import CONTROL, HEADER, block, fence
from copilot.skills.types import Source

# Below this budget a truncated passage is too short to be worth the header around it.
MIN_TRUNCATE_BUDGET = 50
# No real tokenizer gives fewer than one token per 24 characters of text, so characters past
# this many per budget token can never fit: cutting them first bounds the counting work when
# a caller hands in a whole 100 MB "document" as one chunk.
_CHARS_PER_TOKEN_CAP = 24
_SHINGLE = 3

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)")
_POSITION_KEYS = ("page", "slide", "table", "row", "paragraph", "line")
_CELL_ROW = re.compile(r"[A-Za-z]+(\d+)")


@dataclass(frozen=True)
class Packed:
    """What goes into the prompt, and what was left out and why."""

    sources: list[Source]  # numbered 1..n in ranking order ([1] is the best passage)
    text: str  # the fenced block (``Fenced``, or "" without sources): the ``context`` variable
    tokens: int  # tokens of ``text``, counted with the caller's counter
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (chunk_id, reason)


def budget_for(
    window: int, output_reserve: int, fixed_prompt_tokens: int, cap: int | None = None
) -> int:
    """Tokens left for context: the window minus the answer's reserve and the rest of the prompt.

    Never negative; at most ``cap`` (a template's ``retrieval.max_context_tokens``), because
    more context is not always better: it costs money and dilutes the model's attention.
    """
    left = max(0, window - max(0, output_reserve) - max(0, fixed_prompt_tokens))
    return left if cap is None else min(left, max(0, cap))


def pack(
    results: Sequence[SearchResult],
    *,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    max_sources: int = 20,
    dedup_jaccard: float = 0.8,
    adjacent: bool = True,
) -> Packed:
    """Choose, number and fence the passages for a prompt.

    ``results`` is taken as ranked, best first (the order search returns). Passages are kept
    greedily by rank while the whole fenced block still fits ``budget_tokens``; a passage
    that does not fit is skipped and a shorter, weaker one may still go in. A chunk of the
    same passage as one already kept (``same_passage``) joins it rather than taking a number
    of its own; ``adjacent`` False joins only chunks at the same or overlapping places (a
    whole document given in order would otherwise become one source).

    Placement follows Liu et al. 2023, "Lost in the Middle: How Language Models Use Long
    Contexts": models use what is at the start and the end of a long context far better than
    what is in the middle. So the documents (groups of passages) are laid out best, third,
    fifth … sixth, fourth, second: the two strongest at the edges, the weakest in the middle.
    Numbers stay by rank — ``[1]`` is always the best passage — only the placement changes.
    """
    packed = _pack(results, budget_tokens, count_tokens, max_sources, dedup_jaccard, adjacent,
                   estimate=True)  # fmt: skip
    if packed.tokens > max(0, budget_tokens):  # the estimate was wrong: decide exactly
        packed = _pack(results, budget_tokens, count_tokens, max_sources, dedup_jaccard,
                       adjacent, estimate=False)  # fmt: skip
    return packed


def _pack(
    results: Sequence[SearchResult],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    max_sources: int,
    dedup_jaccard: float,
    adjacent: bool,
    *,
    estimate: bool,
) -> Packed:
    """``pack``; with ``estimate``, a set of sources fits without counting the whole block
    when the sum of its parts' counts does (see ``_Fits``)."""
    if max_sources < 1:
        raise ValueError(f"max_sources must be at least 1, got {max_sources}")
    if not 0 < dedup_jaccard <= 1:
        raise ValueError(f"dedup_jaccard must be in (0, 1], got {dedup_jaccard}")
    budget = max(0, budget_tokens)
    char_cap = budget * _CHARS_PER_TOKEN_CAP + 1000

    kept: list[Source] = []
    shingles: list[set[tuple[str, ...]]] = []
    dropped: list[tuple[str, str]] = []
    fits = _Fits(budget, count_tokens, estimate)
    for result in results:
        text = CONTROL.sub("", result.text or "").strip()
        if not text:
            dropped.append((result.chunk_id, "empty"))
            continue
        if len(text) > char_cap:
            text = _cut(text, char_cap)
        own = _shingles(text)
        twin = next((i for i, s in enumerate(shingles) if _jaccard(own, s) >= dedup_jaccard), None)
        if twin is None:
            twin = next((i for i, s in enumerate(kept) if s.chunk_id == result.chunk_id), None)
        if twin is not None:
            dropped.append((result.chunk_id, f"near-duplicate of [{twin + 1}]"))
            continue
        source = _source(result, len(kept) + 1, text)
        mate = next((i for i, s in enumerate(kept) if same_passage(s, source, adjacent)), None)
        if mate is not None:
            joined = join_passages(kept[mate], source)
            trial = [*kept[:mate], joined, *kept[mate + 1 :]]
            if not fits(trial):
                dropped.append((result.chunk_id, "over budget"))
                continue
            kept[mate] = joined
            shingles[mate] = shingles[mate] | own
            dropped.append((result.chunk_id, f"merged into [{mate + 1}]"))
            continue
        if len(kept) >= max_sources:
            dropped.append((result.chunk_id, f"over max_sources ({max_sources})"))
            continue
        if not fits([*kept, source]):
            if kept or budget < MIN_TRUNCATE_BUDGET:
                dropped.append((result.chunk_id, "over budget"))
                continue
            fitted = _truncate(source, budget, count_tokens)
            if fitted is None:
                dropped.append((result.chunk_id, "over budget"))
                continue
            source = fitted
        kept.append(source)
        shingles.append(own)

    text = fence(arrange(kept)) if kept else ""
    return Packed(kept, text, count_tokens(text) if text else 0, dropped)


class _Fits:
    """Whether sources fit the budget once fenced.

    Counting the whole fenced block for every candidate made packing quadratic in tokenizer
    passes (5.5 ms of CPU per run, a sixth of a streamed run's, under API load). The block
    is the header and the sources' elements joined by newlines, and a tokenizer's count of
    joined texts is at most the sum of the parts' counts plus one per newline (the pieces
    split at those boundaries). So a set whose estimate fits is accepted on the estimate,
    and only a set near the budget is counted whole; ``pack`` checks the final count and
    decides again exactly in the (never seen) case that the estimate was wrong.
    """

    def __init__(self, budget: int, count: Callable[[str], int], estimate: bool) -> None:
        self.budget, self.count, self.estimate = budget, count, estimate
        self.header = count(HEADER) + 1
        self.blocks: dict[str, int] = {}

    def __call__(self, sources: Sequence[Source]) -> bool:
        if self.estimate:
            total = self.header
            for source in sources:
                element = block(source)
                if element not in self.blocks:
                    self.blocks[element] = self.count(element) + 1
                total += self.blocks[element]
            if total <= self.budget:
                return True
        return self.count(fence(arrange(sources))) <= self.budget


def arrange(sources: Sequence[Source]) -> list[Source]:
    """The fenced order: grouped by item, groups placed best at the edges (see ``pack``)."""
    groups: dict[str, list[Source]] = {}
    for source in sorted(sources, key=lambda s: s.n):
        groups.setdefault(source.item_id, []).append(source)
    ranked = [_document_order(group) for group in groups.values()]  # by their best number
    placed = ranked[0::2] + ranked[1::2][::-1]
    return [source for group in placed for source in group]


def same_passage(a: Source, b: Source, adjacent: bool = True) -> bool:
    """Whether ``a`` and ``b`` are, to a reader, one passage: parts of one mail (a message
    is named by subject, sender and date, not by paragraph), or parts of one file at the
    same, overlapping or (with ``adjacent``) neighbouring places."""
    if a.item_id != b.item_id:
        return False
    if a.kind == "mail" and b.kind == "mail":
        return True
    one, other = _span(a.locator or {}), _span(b.locator or {})
    if one is None or other is None:
        return (a.locator or {}) == (b.locator or {})
    gap = 1 if adjacent else 0
    return one[0] == other[0] and one[1] <= other[2] + gap and other[1] <= one[2] + gap


def join_passages(a: Source, b: Source) -> Source:
    """One source for two chunks of one passage: texts in document order (the overlap that
    chunking repeats, and a repeated heading line, only once), locators merged, the better
    rank's number and score."""
    first, second = sorted((a, b), key=_reading_order)
    text = _joined_text(first.text, second.text)
    locator = _merged_locator(first.locator or {}, second.locator or {})
    best = a if a.n <= b.n else b
    return replace(
        best,
        text=text,
        locator=locator,
        score=max(a.score, b.score),
        sender=a.sender or b.sender,
        date=a.date or b.date,
    )


# --- helpers --------------------------------------------------------------------------------


def _source(result: SearchResult, n: int, text: str) -> Source:
    return Source(
        n=n,
        item_id=result.item_id,
        chunk_id=result.chunk_id,
        title=result.title or "",
        url=result.url or "",
        kind=result.kind or "",
        locator=dict(result.locator or {}),
        text=text,
        score=float(result.score or 0.0),
        sender=getattr(result, "sender", "") or "",
        date=getattr(result, "date", "") or "",
    )


def _span(locator: dict[str, Any]) -> tuple[tuple[Any, ...], int, int] | None:
    """(what must be equal, first, last position) of a locator's main position, or None."""
    found = _position(locator)
    if found is None:
        return None
    shape, numbers = found
    key = next((k for k in _POSITION_KEYS if isinstance(locator.get(k), int)), None)
    if key is not None:
        end = locator.get(f"{key}_end")
        last = end if isinstance(end, int) and end >= numbers[0] else numbers[0]
        return shape, numbers[0], last
    rows = [int(r) for r in _CELL_ROW.findall(str(locator.get("range", "")))]
    return shape, min(rows), max(rows)


def _reading_order(source: Source) -> tuple[int, int]:
    """A chunk with no position (a mail's header chunk, a whole item) reads first."""
    span = _span(source.locator or {})
    return (0, 0) if span is None else (1, span[1])


def _joined_text(first: str, second: str) -> str:
    head, _, rest = second.partition("\n")
    if rest and head.strip() and head == first.partition("\n")[0] and len(head) < 300:
        second = rest  # the heading path or table header every chunk of a section repeats
    probe = second[:20]  # the longest end of ``first`` that ``second`` starts with
    at = first.find(probe, max(0, len(first) - 4000)) if len(probe) == 20 else -1
    while at >= 0:
        if second.startswith(first[at:]):
            return first + second[len(first) - at :]
        at = first.find(probe, at + 1)
    if second in first:
        return first
    return f"{first}\n{second}"


def _merged_locator(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    merged = dict(first)
    for key, value in second.items():
        if key.endswith("_end"):
            continue
        if key not in merged:
            merged[key] = value
        elif key == "range" and isinstance(value, str) and isinstance(merged[key], str):
            merged[key] = merge_locators([{"range": merged[key]}, {"range": value}])["range"]
        elif isinstance(value, int) and isinstance(merged[key], int):
            ends = [first.get(f"{key}_end", first[key]), second.get(f"{key}_end", value)]
            lo, hi = min(merged[key], value), max(e for e in ends if isinstance(e, int))
            merged[key] = lo
            if hi != lo:
                merged[f"{key}_end"] = hi
    return merged


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < _SHINGLE:
        return {tuple(words)}
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def _jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked with "…"."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip() + " …"


def _truncate(source: Source, budget: int, count_tokens: Callable[[str], int]) -> Source | None:
    """The longest prefix of the source (at a word, then sentence boundary) that fits."""
    text = source.text
    ends = [m.end() for m in re.finditer(r"\S+", text)]

    def fits(end: int) -> bool:
        return count_tokens(fence([replace(source, text=_mark(text[:end]))])) <= budget

    lo, hi = 0, len(ends) - 1  # binary search over word ends: the largest that fits
    best = -1
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(ends[mid]):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    if best < 0:
        return None
    end = ends[best]
    # Prefer a whole sentence if one ends in the second half of what fits.
    sentences = [m.end() for m in _SENTENCE_END.finditer(text, 0, end + 1) if m.end() <= end]
    if sentences and sentences[-1] >= end // 2:
        end = sentences[-1]
    return replace(source, text=_mark(text[:end]))


def _mark(prefix: str) -> str:
    return prefix.rstrip() + " …"


def _document_order(group: list[Source]) -> list[Source]:
    """Passages of one item in document order where their locators allow, else by rank.

    Positions compare only between passages that share the same locator keys and the same
    non-positional values (one sheet, one message); a section heading may differ, because
    paragraph numbers run through the whole document.
    """
    positions = [_position(s.locator or {}) for s in group]
    keys = {p[0] for p in positions if p is not None}
    if len(group) < 2 or None in positions or len(keys) != 1:
        return group
    order = sorted(zip(positions, group, strict=True), key=lambda ps: (ps[0] or ((), ()))[1])
    return [s for _, s in order]


def _position(locator: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[int, ...]] | None:
    """(what must be equal to compare, the numeric position) of a locator, or None."""
    used = [k for k in _POSITION_KEYS if isinstance(locator.get(k), int)]
    numbers = [locator[k] for k in used]
    row = _CELL_ROW.match(str(locator.get("range", "")))
    if row:
        used.append("range")
        numbers.append(int(row.group(1)))
    if not numbers:
        return None
    shape = tuple(
        (key, "" if key in used else str(value))
        for key, value in sorted(locator.items())
        if not key.endswith("_end") and key not in ("section", "label")
    )
    return shape, tuple(numbers)
