"""How much of one item is embedded: the rest is indexed for keyword search (BM25) only.

Why a budget: embedding is most of a sync's cost, and some items are out of all proportion.
A workbook of 19,000 rows of numbers embedded row by row cost minutes and bought almost no
retrieval (a vector of "Amount: 1200 | Date: 2021-03-05" is much like every other one), and
one Russian Word file of 17,000 chunks held a sync for a quarter of an hour. So:

* each table (a sheet, a Word table) has its first ``table_rows`` rows embedded; the rest
  are keyword-only, and the table gets a summary chunk that is embedded: its size, its
  columns, each column's type and range, so "the sheet with the 2021 invoices" still
  finds it by meaning;
* an item has at most ``item_chunks`` chunks embedded (summaries first, then in reading
  order); the rest are keyword-only.

Keyword-only chunks are stored and cited like any other, with a BM25 vector and no dense
one: hybrid and keyword search find them, dense search does not. Every limit that bites is
reported (``Budgeted.note``), and the pipeline records it in ``copilot status``: never a
silent loss.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.types import Element
from copilot.config import Settings
from copilot.index.embed import Embedder
from copilot.ingest.chunk import (
    CELL_SEPARATOR,
    TICK_EVERY,
    Chunk,
    Counter,
    Tick,
    chunk_elements,
    clip,
    merge_locators,
)

_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d*)(\.\d+)?([eE][-+]?\d+)?%?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_COLUMN_LETTERS = re.compile(r"^[A-Z]{1,3}$")
MAX_DISTINCT = 1000  # distinct values remembered per text column
EXAMPLES = 3
EXAMPLE_CHARS = 40
MIN_CHUNK_TOKENS = 32  # the chunk size's floor
TITLE_SHARE = 0.25  # the most of the window the title that heads each embedded text takes


@dataclass(frozen=True)
class Limits:
    """Settings ``embed_table_rows`` and ``embed_item_chunks`` (copilot/config.py)."""

    table_rows: int
    item_chunks: int


@dataclass(frozen=True)
class Budgeted:
    """An item's chunks with ``dense`` decided, and what the budget left out (or None).

    ``title`` is the item's title as each embedded text starts with it (cut to
    ``TITLE_SHARE`` of the window; None when it was short enough to keep whole)."""

    chunks: list[Chunk]
    note: str | None = None
    title: str | None = None

    @property
    def keyword_only(self) -> int:
        return sum(1 for c in self.chunks if not c.dense)


@dataclass
class _Range:
    """How many values of one kind a column had, and the least and greatest."""

    count: int = 0
    low: float | str | None = None
    high: float | str | None = None

    def add(self, value: float | str) -> None:
        self.count += 1
        if self.low is None or value < self.low:  # type: ignore[operator]
            self.low = value
        if self.high is None or value > self.high:  # type: ignore[operator]
            self.high = value


@dataclass
class _Column:
    """What a summary says of one column, in memory that does not grow with the rows."""

    numbers: _Range = field(default_factory=_Range)
    dates: _Range = field(default_factory=_Range)  # ISO strings order as dates do
    texts: dict[str, None] = field(default_factory=dict)  # ordered set, <= MAX_DISTINCT
    text_count: int = 0

    def add(self, value: str) -> None:
        if _NUMBER.match(value) and any(ch.isdigit() for ch in value):
            self.numbers.add(float(value.replace(",", "").rstrip("%")))
        elif _DATE.match(value):
            self.dates.add(value[:10])
        else:
            self.text_count += 1
            if len(self.texts) < MAX_DISTINCT:
                self.texts[value] = None

    def describe(self, name: str) -> str:
        kinds = {"number": self.numbers.count, "date": self.dates.count, "text": self.text_count}
        kind = max(kinds, key=lambda k: kinds[k])
        if kind == "number":
            low, high = float(self.numbers.low or 0), float(self.numbers.high or 0)
            return f"{name} (number, {_num(low)} to {_num(high)})"
        if kind == "date":
            return f"{name} (date, {self.dates.low} to {self.dates.high})"
        distinct = len(self.texts)
        many = "over " if distinct >= MAX_DISTINCT else ""
        examples = ", ".join(_short(v) for v in list(self.texts)[:EXAMPLES])
        return f"{name} (text, {many}{distinct:,} distinct, e.g. {examples})"


def _num(value: float) -> str:
    return f"{int(value):,}" if value.is_integer() else f"{value:,.6g}"


def _short(value: str) -> str:
    return value if len(value) <= EXAMPLE_CHARS else value[: EXAMPLE_CHARS - 1] + "…"


def table_summary(
    rows: Sequence[Element], where: dict[str, Any] | None = None, tick: Tick | None = None
) -> tuple[str, list[str]]:
    """(intro line, one line per column) describing a table from its row elements.

    Rows read "Name: value | Name: value" (the docx and xlsx parsers' form); a cell whose
    label is not a column name of the header counts under no column. ``where`` is the
    rows' merged locator, if the caller has it.
    """
    first = rows[0]
    names = [n.strip().rstrip(":") for n in (first.header or "").split(CELL_SEPARATOR) if n.strip()]
    known = set(names)
    columns: dict[str, _Column] = {}
    for n, row in enumerate(rows, 1):
        if tick is not None and n % TICK_EVERY == 0:
            tick()
        for cell in row.text.split(CELL_SEPARATOR):
            label, sep, value = cell.partition(": ")
            if not sep or not (label in known or _COLUMN_LETTERS.match(label)):
                continue
            value = value.strip()
            if value:
                columns.setdefault(label, _Column()).add(value)
    where = where if where is not None else merge_locators([r.locator for r in rows])
    place = where.get("sheet") or (f"table {where['table'] + 1}" if "table" in where else "table")
    span = f" ({where['range']})" if "range" in where else ""
    intro = f"Summary of {place}: {len(rows):,} rows{span}, {len(columns)} columns."
    order = [n for n in names if n in columns] + [n for n in columns if n not in known]
    return intro, [columns[name].describe(name) for name in order]


def _summary_chunks(
    rows: Sequence[Element], count: Counter, max_tokens: int, tick: Tick | None = None
) -> list[Chunk]:
    """The summary as chunks of its own, the intro heading each (a wide table needs more
    than one), cited as the whole table's range."""
    locator = merge_locators([r.locator for r in rows])
    intro, lines = table_summary(rows, locator, tick)
    first = rows[0]
    section = (*first.section, intro)
    parts = [Element(line, locator, "table_summary", first.group, section) for line in lines]
    parts = parts or [Element(intro, locator, "table_summary", first.group, first.section)]
    return [replace(c, locator=locator) for c in chunk_elements(parts, count, max_tokens, 0)]


def apply_budget(
    elements: Sequence[Element],
    chunks: list[Chunk],
    limits: Limits,
    count: Counter,
    max_tokens: int,
    tick: Tick | None = None,
) -> Budgeted:
    """Decide which of ``chunks`` (made from ``elements``) are embedded; add table summaries
    (before their table's first chunk) for the tables over the row limit."""
    rows: dict[str, list[Element]] = {}
    for element in elements:
        if element.kind == "table_row" and element.text.strip():
            rows.setdefault(element.group, []).append(element)
    big = {group for group, found in rows.items() if len(found) > limits.table_rows}
    out: list[Chunk] = []
    summaries: set[int] = set()  # positions in ``out``
    summarised: set[str] = set()
    cut_rows = 0
    for chunk in chunks:
        if chunk.group in big and chunk.first_row is not None:
            if chunk.group not in summarised:
                summarised.add(chunk.group)
                for made in _summary_chunks(rows[chunk.group], count, max_tokens, tick):
                    summaries.add(len(out))
                    out.append(made)
            if chunk.first_row >= limits.table_rows:
                cut_rows += 1
                chunk = replace(chunk, dense=False)
        out.append(chunk)
    dense = [i for i, c in enumerate(out) if c.dense]
    keep = set(sorted(dense, key=lambda i: (i not in summaries, i))[: limits.item_chunks])
    over = len(dense) - len(keep)
    out = [c if i in keep or not c.dense else replace(c, dense=False) for i, c in enumerate(out)]
    keyword = len(out) - len(keep)
    if not keyword:
        return Budgeted(out)
    reasons = []
    if cut_rows:
        tables = f"{len(big)} table" + ("s" if len(big) > 1 else "")
        reasons.append(
            f"rows after the first {limits.table_rows:,} of {tables} "
            "(each summarised in an embedded chunk)"
        )
    if over:
        reasons.append(f"chunks after the first {limits.item_chunks:,} of the item")
    note = (
        f"embedding budget: {len(keep):,} of {len(out):,} chunks embedded, "
        f"{keyword:,} keyword-only (BM25): " + "; ".join(reasons)
    )
    return Budgeted(out, note)


def plan_chunks(
    elements: Sequence[Element],
    title: str,
    embedder: Embedder,
    settings: Settings,
    limits: Limits,
    tick: Tick | None = None,
) -> Budgeted:
    """An item's chunks, sized for the model's window and with the budget applied.

    The chunk size is the setting, within what the model reads once the title (which the
    embedded text starts with) and [CLS]/[SEP] are counted: nothing is cut off unseen. A
    title longer than ``TITLE_SHARE`` of the window (a 900-character subject, a Cyrillic
    file name) is cut for embedding, so it can never squeeze the text out of the window.
    ``tick`` is called every few thousand elements.
    """
    count = embedder.count_tokens
    window = embedder.max_tokens - 2
    title_tokens = count([title])[0]
    short = None
    if title_tokens > int(window * TITLE_SHARE):
        short = clip(title, int(window * TITLE_SHARE), count)
        title_tokens = count([short])[0]
    size = max(min(settings.chunk_tokens, window - title_tokens - 1), MIN_CHUNK_TOKENS)
    chunks = chunk_elements(elements, count, size, settings.chunk_overlap, tick)
    return replace(apply_budget(elements, chunks, limits, count, size, tick), title=short)
