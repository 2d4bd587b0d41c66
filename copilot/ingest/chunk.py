"""Cut a parsed item's Elements into chunks sized in the embedding model's tokens.

Why structure matters more than size: a chunk that mixes two sheets, or a table row
without its header, embeds into a vector that means nothing, and a citation to it points
nowhere. So a chunk never crosses a group (sheet, table, header/footer, message), table
chunks repeat their header row, and every chunk of a section starts with its heading
path. Only prose that is longer than a chunk is split, at sentence boundaries, with a
small overlap so a fact that straddles the cut is still whole in one of the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.types import Element

Counter = Callable[[Sequence[str]], list[int]]
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_CELL = re.compile(r"^([A-Z]+)(\d+)$")


@dataclass(frozen=True)
class Chunk:
    """The unit that is embedded, stored and cited."""

    text: str
    locator: dict[str, Any]
    group: str
    tokens: int
    prefix_chars: int = 0  # the heading path / table header lines at the start of ``text``


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _col_letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def _bounding_range(ranges: Sequence[str]) -> str:
    cols: list[int] = []
    rows: list[int] = []
    for cell_range in ranges:
        for cell in cell_range.split(":"):
            match = _CELL.match(cell.replace("$", ""))
            if match:
                cols.append(_col_number(match.group(1)))
                rows.append(int(match.group(2)))
    if not cols:
        return ranges[0]
    first = f"{_col_letters(min(cols))}{min(rows)}"
    last = f"{_col_letters(max(cols))}{max(rows)}"
    return first if first == last else f"{first}:{last}"


def merge_locators(locators: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One locator covering several elements' locators.

    Equal values are kept; integer positions become ``key`` .. ``key_end``; spreadsheet
    ranges become their bounding range. So rows A2:D2 .. A9:D9 cite as ``A2:D9``.
    """
    if not locators:
        return {}
    merged: dict[str, Any] = {}
    for key in locators[0]:
        values = [loc[key] for loc in locators if key in loc]
        if all(v == values[0] for v in values):
            merged[key] = values[0]
        elif key == "range" and all(isinstance(v, str) for v in values):
            merged[key] = _bounding_range(values)
        elif all(isinstance(v, int) for v in values):
            merged[key] = min(values)
            merged[f"{key}_end"] = max(values)
        else:
            merged[key] = values[0]
    return merged


def _split_long(text: str, budget: int, count: Counter, overlap: int) -> list[str]:
    """Split prose longer than ``budget`` tokens at sentence (then word) boundaries."""
    pieces = [p for p in _SENTENCE.split(text) if p.strip()]
    sizes = count(pieces)
    units: list[tuple[str, int]] = []
    for piece, size in zip(pieces, sizes, strict=True):
        if size <= budget:
            units.append((piece, size))
            continue
        words = piece.split()
        per_word = max(size / max(len(words), 1), 0.01)
        step = max(int(budget / per_word), 1)
        for start in range(0, len(words), step):
            part = " ".join(words[start : start + step])
            units.append((part, min(budget, int(len(words[start : start + step]) * per_word) + 1)))
    out: list[str] = []
    current: list[tuple[str, int]] = []
    used = 0
    for unit, size in units:
        if current and used + size > budget:
            out.append(" ".join(u for u, _ in current))
            carry: list[tuple[str, int]] = []
            carried = 0
            for prev in reversed(current):  # overlap: the last sentences, up to ``overlap``
                if carried + prev[1] > overlap:
                    break
                carry.insert(0, prev)
                carried += prev[1]
            current, used = carry, carried
        current.append((unit, size))
        used += size
    if current:
        out.append(" ".join(u for u, _ in current))
    return out


def _prefix(element: Element) -> str:
    lines = []
    if element.section:
        lines.append(" > ".join(element.section))
    if element.header:
        lines.append(element.header)
    return "\n".join(lines)


def chunk_elements(
    elements: Sequence[Element], count: Counter, max_tokens: int = 200, overlap: int = 32
) -> list[Chunk]:
    """Pack ``elements`` in order into chunks of at most ``max_tokens`` tokens.

    ``count`` returns token counts for a batch of texts (the embedding model's tokenizer).
    Headings are not chunks of their own: they become the prefix of their section.
    """
    body = [e for e in elements if e.text.strip() and e.kind != "heading"]
    if not body:
        return []
    sizes = count([e.text for e in body])
    prefixes = [_prefix(e) for e in body]
    unique_prefixes = sorted(set(prefixes))
    prefix_size = dict(zip(unique_prefixes, count(unique_prefixes), strict=True))

    chunks: list[Chunk] = []
    run: list[tuple[Element, int]] = []
    run_key: tuple[str, str] | None = None

    def flush() -> None:
        if not run:
            return
        first = run[0][0]
        prefix = _prefix(first)
        texts = [e.text.strip() for e, _ in run]
        text = "\n".join(([prefix] if prefix else []) + texts)
        tokens = prefix_size[prefix] + sum(size for _, size in run)
        locator = merge_locators([e.locator for e, _ in run])
        chunks.append(Chunk(text, locator, first.group, tokens, len(prefix) + 1 if prefix else 0))
        run.clear()

    for element, size, prefix in zip(body, sizes, prefixes, strict=True):
        key = (element.group, prefix)
        budget = max(max_tokens - prefix_size[prefix], 16)
        used = sum(s for _, s in run)
        if run and (key != run_key or used + size > budget):
            flush()
        run_key = key
        if size <= budget:
            run.append((element, size))
            continue
        flush()
        for piece in _split_long(element.text, budget, count, overlap):
            text = f"{prefix}\n{piece}" if prefix else piece
            tokens = prefix_size[prefix] + count([piece])[0]
            skip = len(prefix) + 1 if prefix else 0
            chunks.append(Chunk(text, dict(element.locator), element.group, tokens, skip))
    flush()
    return chunks
