"""Cut a parsed item's Elements into chunks sized in the embedding model's tokens.

Why structure matters more than size: a chunk that mixes two sheets, or a table row
without its header, embeds into a vector that means nothing, and a citation to it points
nowhere. So a chunk never crosses a group (sheet, table, header/footer, message), table
chunks repeat their header row, and every chunk of a section starts with its heading
path. Only prose that is longer than a chunk is split, at sentence boundaries, with a
small overlap so a fact that straddles the cut is still whole in one of the two.

Why the prefix is capped: a wide table's header row (hundreds of tokens in a Word table
of 30 columns, far more in Cyrillic, which WordPiece cuts finely) repeated in full left
no room for the rows, so every row became a chunk longer than the model's window whose
vector saw only the header. A prefix now takes at most ``PREFIX_SHARE`` of a chunk: the
heading path keeps its innermost headings, the header its first columns, and "…" marks
the cut. Nothing is lost by it: every row already names its columns ("Region: North").

The window is a hard limit: ``max_tokens`` is what the caller can afford (the model's
window less the title it adds), and every chunk is counted again after packing, so no
chunk is ever longer, whatever the tokenizer does with joins and odd text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.types import Element

Counter = Callable[[Sequence[str]], list[int]]
Tick = Callable[[], None]  # called now and then during a long job: progress, a stop check
TICK_EVERY = 2048  # elements between ticks (about 0.2 s of tokenizing)
# Elements between ticks while packing: a wide row over the budget is split and its pieces
# counted one by one (~2 ms a row of issue 18's Russian register: 2,750 rows were 4-6 s
# without a tick). The tick itself reports at most twice a second.
PACK_TICK_EVERY = 64
COUNT_BATCH = 512  # elements counted in one call between ticks (2,048 of those rows: 1.4 s)
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_CELL = re.compile(r"^([A-Z]+)(\d+)$")
CELL_SEPARATOR = " | "  # between the cells of a table row (the docx and xlsx parsers' form)
PREFIX_SHARE = 0.25  # the most of a chunk's tokens its heading path and table header take
ELLIPSIS = "…"


@dataclass(frozen=True)
class Chunk:
    """The unit that is embedded, stored and cited.

    ``first_row`` is the position, within its table, of the first table row the chunk holds
    (None for prose): the embedding budget (``budget.py``) counts rows with it. ``dense``
    is False for a chunk indexed for keyword search only.
    """

    text: str
    locator: dict[str, Any]
    group: str
    tokens: int
    prefix_chars: int = 0  # the heading path / table header lines at the start of ``text``
    first_row: int | None = None
    dense: bool = True


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


# --- cutting text to a token budget ------------------------------------------------------


def clip(text: str, limit: int, count: Counter) -> str:
    """``text`` cut to at most ``limit`` tokens, at a word boundary where there is one,
    with "…" marking the cut. A binary search on the length: a few counts, any script."""
    if limit <= 0:
        return ""
    if count([text])[0] <= limit:
        return text
    lo, hi = 0, len(text)  # the longest fitting cut is in [lo, hi)
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if count([text[:mid].rstrip() + ELLIPSIS])[0] <= limit:
            lo = mid
        else:
            hi = mid
    cut = text[:lo]
    space = cut.rfind(" ")
    if space > lo // 2:  # prefer a whole word unless that throws away half the text
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS if cut.strip() else ""


def hard_split(text: str, budget: int, count: Counter) -> list[str]:
    """``text`` in consecutive pieces of at most ``budget`` tokens each, cut between words
    (between characters inside a word longer than the budget). Halving keeps it
    O(n log n) in counted characters whatever the script's tokens per word."""
    size = count([text])[0]
    if size <= budget:
        return [text] if text.strip() else []
    words = text.split()
    if len(words) > 1:
        half = len(words) // 2
        parts = [" ".join(words[:half]), " ".join(words[half:])]
    else:
        half = max(len(text) // 2, 1)
        parts = [text[:half], text[half:]]
    return [piece for part in parts for piece in hard_split(part, budget, count)]


def _split_long(
    text: str, budget: int, count: Counter, overlap: int, cells: bool = False
) -> list[str]:
    """Split prose longer than ``budget`` tokens at sentence (then word) boundaries; a
    table row (``cells``) between its "Column: value" cells, so no piece cuts a cell."""
    joiner = CELL_SEPARATOR if cells else " "
    parts = text.split(CELL_SEPARATOR) if cells else _SENTENCE.split(text)
    pieces = [p for p in parts if p.strip()]
    joint = count([joiner.strip()])[0] if joiner.strip() else 0  # each "|" is a token too
    sizes = [size + joint for size in count(pieces)]
    units: list[tuple[str, int]] = []
    for piece, size in zip(pieces, sizes, strict=True):
        if size <= budget:
            units.append((piece, size))
        else:
            parts = hard_split(piece, budget, count)
            units += zip(parts, count(parts), strict=True)
    out: list[str] = []
    current: list[tuple[str, int]] = []
    used = 0
    for unit, size in units:
        if current and used + size > budget:
            out.append(joiner.join(u for u, _ in current))
            carry: list[tuple[str, int]] = []
            carried = 0
            for prev in reversed(current):  # overlap: the last sentences, up to ``overlap``
                if carried + prev[1] > overlap or carried + prev[1] + size > budget:
                    break
                carry.insert(0, prev)
                carried += prev[1]
            current, used = carry, carried
        current.append((unit, size))
        used += size
    if current:
        out.append(joiner.join(u for u, _ in current))
    return out


# --- prefixes -------------------------------------------------------------------------------


def _prefix_key(element: Element) -> tuple[tuple[str, ...], str]:
    return element.section, element.header or ""


def fit_prefix(section: tuple[str, ...], header: str, cap: int, count: Counter) -> str:
    """The heading path and table header that head a chunk, in at most ``cap`` tokens.

    A path too long keeps its innermost headings ("… > Scope"); a header too long keeps
    its first columns. With both, the path may take half of ``cap`` and the header the rest.
    """
    path = " > ".join(section)
    full = "\n".join(part for part in (path, header) if part)
    if not full or count([full])[0] <= cap:
        return full
    path_cap = cap // 2 if header else cap
    if path and count([path])[0] > path_cap:
        inner = [section[-1]]
        for heading in reversed(section[:-1]):  # add outer headings while they fit
            candidate = " > ".join([ELLIPSIS, heading, *inner])
            if count([candidate])[0] > path_cap:
                break
            inner.insert(0, heading)
        path = " > ".join(([ELLIPSIS] if len(inner) < len(section) else []) + inner)
        path = clip(path, path_cap, count)
    if header:
        used = count([path])[0] + 1 if path else 0  # the newline between them
        header = clip(header, cap - used, count)
    return "\n".join(part for part in (path, header) if part)


# --- packing ----------------------------------------------------------------------------------


def chunk_elements(
    elements: Sequence[Element],
    count: Counter,
    max_tokens: int = 200,
    overlap: int = 32,
    tick: Tick | None = None,
) -> list[Chunk]:
    """Pack ``elements`` in order into chunks of at most ``max_tokens`` tokens.

    ``count`` returns token counts for a batch of texts (the embedding model's tokenizer).
    Headings are not chunks of their own: they become the prefix of their section.
    ``tick`` is called every ``TICK_EVERY`` elements (a 19,000-row sheet takes seconds).
    """
    body = [e for e in elements if e.text.strip() and e.kind != "heading"]
    if not body:
        return []
    max_tokens = max(max_tokens, 8)
    cap = max(int(max_tokens * PREFIX_SHARE), 1)
    sizes: list[int] = []
    for start in range(0, len(body), COUNT_BATCH):
        sizes += count([e.text.strip() for e in body[start : start + COUNT_BATCH]])
        if tick is not None:
            tick()
    prefixes: dict[tuple[tuple[str, ...], str], tuple[str, int]] = {}
    for section, header in dict.fromkeys(_prefix_key(e) for e in body):
        text = fit_prefix(section, header, cap, count)
        prefixes[section, header] = (text, count([text])[0] + 1 if text else 0)  # + newline

    chunks: list[Chunk] = []
    run: list[tuple[Element, int]] = []
    run_key: tuple[str, tuple[tuple[str, ...], str]] | None = None
    rows_seen: dict[str, int] = {}  # table rows met so far, per group
    run_first_row: list[int | None] = [None]

    def flush() -> None:
        if not run:
            return
        first = run[0][0]
        prefix, prefix_tokens = prefixes[_prefix_key(first)]
        texts = [e.text.strip() for e, _ in run]
        text = "\n".join(([prefix] if prefix else []) + texts)
        tokens = prefix_tokens + sum(size for _, size in run)
        locator = merge_locators([e.locator for e, _ in run])
        skip = len(prefix) + 1 if prefix else 0
        chunks.append(Chunk(text, locator, first.group, tokens, skip, run_first_row[0]))
        run.clear()

    for n, (element, size) in enumerate(zip(body, sizes, strict=True), 1):
        if tick is not None and n % PACK_TICK_EVERY == 0:
            tick()
        key = (element.group, _prefix_key(element))
        prefix, prefix_tokens = prefixes[key[1]]
        budget = max_tokens - prefix_tokens
        row = None
        if element.kind == "table_row":
            row = rows_seen.get(element.group, 0)
            rows_seen[element.group] = row + 1
        used = sum(s for _, s in run)
        if run and (key != run_key or used + size > budget):
            flush()
        run_key = key
        if size <= budget:
            if not run:
                run_first_row[0] = row
            run.append((element, size))
            continue
        flush()
        skip = len(prefix) + 1 if prefix else 0
        row_cells = element.kind == "table_row"
        room = 0 if row_cells else overlap  # a cell repeated in the next piece adds nothing
        pieces = _split_long(element.text.strip(), budget, count, room, row_cells)
        for piece in pieces:  # their tokens are counted once, by _within
            text = f"{prefix}\n{piece}" if prefix else piece
            chunks.append(Chunk(text, dict(element.locator), element.group, 0, skip, row))
    flush()
    return _within(chunks, count, max_tokens, tick)


def _within(
    chunks: list[Chunk], count: Counter, max_tokens: int, tick: Tick | None = None
) -> list[Chunk]:
    """Count the chunks whose size is not known exactly (pieces of a split, and any a join
    may have pushed over), and split those that are too long.

    A packed chunk's size is the sum of its parts' (WordPiece splits on whitespace first,
    so joining with a newline adds no token): counting it again doubled the tokenizing
    of a 19,000-row sheet for nothing."""
    unsure = [i for i, c in enumerate(chunks) if not 0 < c.tokens <= max_tokens - 2]
    counted: dict[int, int] = {}
    for start in range(0, len(unsure), TICK_EVERY):
        some = unsure[start : start + TICK_EVERY]
        counted.update(zip(some, count([chunks[i].text for i in some]), strict=True))
        if tick is not None:
            tick()
    out: list[Chunk] = []
    for i, chunk in enumerate(chunks):
        if tick is not None and i % TICK_EVERY == 0:
            tick()
        tokens = counted.get(i, chunk.tokens)
        if tokens <= max_tokens:
            out.append(replace(chunk, tokens=tokens))
            continue
        prefix = chunk.text[: chunk.prefix_chars]
        room = max_tokens - (count([prefix])[0] if prefix else 0)
        for piece in hard_split(chunk.text[chunk.prefix_chars :], max(room, 1), count):
            text = prefix + piece
            out.append(replace(chunk, text=text, tokens=count([text])[0]))
    return out
