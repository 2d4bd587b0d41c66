"""Wide tables against the embedding model's window: the case of a Russian Word file whose
~760-character header row, repeated in every chunk, left no room for the rows (issue 18).

These use the real MiniLM tokenizer: WordPiece cuts Cyrillic into far more tokens per
character than English, which is what made the header crowd out the rows.
"""

from __future__ import annotations

import io

import docx
import pytest

from connectors.parsers.docx import parse_docx
from connectors.types import Element
from copilot.config import Settings
from copilot.index.embed import MINILM_MAX_TOKENS
from copilot.ingest.budget import TITLE_SHARE, Limits, apply_budget, plan_chunks, table_summary
from copilot.ingest.chunk import PREFIX_SHARE, chunk_elements, fit_prefix

ENGLISH = [f"Quarterly revenue by sales region {i:02d}" for i in range(20)]
RUSSIAN = [f"Цена договора с НДС, руб. {i:02d}" for i in range(25)]


def wide_docx(columns: list[str], rows: int, heading: str) -> bytes:
    document = docx.Document()
    document.add_heading(heading, 1)
    table = document.add_table(rows=1, cols=len(columns))
    for cell, name in zip(table.rows[0].cells, columns, strict=True):
        cell.text = name
    for r in range(rows):
        for c, cell in enumerate(table.add_row().cells):
            cell.text = f"{(r * 7 + c * 13) % 1000}" if c % 3 else f"Позиция {r}-{c}"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.mark.parametrize(("columns", "heading"), [(ENGLISH, "Results"), (RUSSIAN, "Итоги")])
def test_a_wide_header_takes_a_fixed_share_and_no_chunk_overflows_the_window(
    embedder, columns, heading
):
    header = " | ".join(columns)
    assert 740 <= len(header) <= 800  # the size of the header row that caused issue 18
    parsed = parse_docx(wide_docx(columns, 120, heading), "wide.docx")
    count = embedder.count_tokens
    assert count([header])[0] > 0.5 * 200  # in full it would crowd out the rows

    title = "Договор поставки 2024.docx"
    chunks = chunk_elements(parsed.elements, count, 200)
    for chunk in chunks:
        prefix = chunk.text[: chunk.prefix_chars]
        assert count([prefix])[0] <= PREFIX_SHARE * 200
        assert chunk.tokens == count([chunk.text])[0] <= 200
        # What the model reads: the title, the chunk, [CLS] and [SEP].
        assert count([f"{title}\n{chunk.text}"])[0] + 2 <= MINILM_MAX_TOKENS
        body = chunk.text[chunk.prefix_chars :]
        assert count([body])[0] >= 0.5 * chunk.tokens  # the vector sees the row
        assert ": " in body and not body.startswith(" | ")  # whole "Column: value" cells
    # Every row is there, in order, each starting a chunk of its own table group.
    firsts = [c.first_row for c in chunks if c.first_row is not None]
    assert sorted(set(firsts)) == list(range(120))
    assert all(c.locator["table"] == 0 for c in chunks)


def test_a_long_heading_path_keeps_its_innermost_headings(embedder):
    count = embedder.count_tokens
    section = ("Annual report 2024", *(f"Chapter {i} on the many things we did" for i in range(9)))
    prefix = fit_prefix(section, "", 50, count)
    assert count([prefix])[0] <= 50
    assert prefix.startswith("…") and prefix.endswith("Chapter 8 on the many things we did")


def test_rows_over_the_budget_are_keyword_only_and_the_table_is_summarised(embedder):
    count = embedder.count_tokens
    parsed = parse_docx(wide_docx(ENGLISH, 60, "Results"), "wide.docx")
    chunks = chunk_elements(parsed.elements, count, 200)
    planned = apply_budget(parsed.elements, chunks, Limits(table_rows=20, item_chunks=1000),
                           count, 200)  # fmt: skip
    summary = [c for c in planned.chunks if c.text.startswith("Results > Summary of table 1")]
    assert summary and all(c.dense and c.tokens <= 200 for c in summary)
    assert planned.chunks[0] is summary[0]  # before the table's rows
    assert summary[0].locator == {"section": "Results", "table": 0, "row": 1, "row_end": 60}
    text = "\n".join(c.text for c in summary)
    assert "60 rows, 20 columns" in text
    assert "Quarterly revenue by sales region 01 (number, " in text
    assert "Quarterly revenue by sales region 00 (text, 60 distinct, e.g. Позиция 0-0" in text
    for chunk in planned.chunks:
        if chunk.first_row is not None:
            assert chunk.dense == (chunk.first_row < 20)
    assert planned.note == (
        f"embedding budget: {len(planned.chunks) - planned.keyword_only:,} of "
        f"{len(planned.chunks):,} chunks embedded, {planned.keyword_only:,} keyword-only "
        "(BM25): rows after the first 20 of 1 table (each summarised in an embedded chunk)"
    )


def test_the_item_budget_keeps_summaries_then_reading_order(embedder):
    count = embedder.count_tokens
    parsed = parse_docx(wide_docx(ENGLISH, 30, "Results"), "wide.docx")
    chunks = chunk_elements(parsed.elements, count, 200)
    planned = apply_budget(parsed.elements, chunks, Limits(table_rows=10, item_chunks=5),
                           count, 200)  # fmt: skip
    dense = [i for i, c in enumerate(planned.chunks) if c.dense]
    assert len(dense) == 5 and dense == list(range(5))  # the summaries, then the first rows
    assert planned.note is not None and "chunks after the first 5 of the item" in planned.note


def test_a_small_table_is_embedded_whole_without_a_note(embedder):
    count = embedder.count_tokens
    parsed = parse_docx(wide_docx(ENGLISH[:4], 5, "Results"), "small.docx")
    chunks = chunk_elements(parsed.elements, count, 200)
    planned = apply_budget(parsed.elements, chunks, Limits(200, 1000), count, 200)
    assert planned.chunks == chunks and planned.note is None and planned.keyword_only == 0


def test_the_summary_reads_types_and_ranges_of_spreadsheet_rows():
    from connectors.types import Element

    rows = [
        Element(
            f"Date: 2024-01-{d:02d} | Amount: {d * 1000:,} | Region: {('North', 'South')[d % 2]}",
            {"sheet": "Sales", "range": f"A{d + 1}:C{d + 1}"},
            "table_row",
            "sheet:Sales",
            ("Sales",),
            "Date | Amount | Region",
        )
        for d in range(1, 29)
    ]
    intro, lines = table_summary(rows)
    assert intro == "Summary of Sales: 28 rows (A2:C29), 3 columns."
    assert lines == [
        "Date (date, 2024-01-01 to 2024-01-28)",
        "Amount (number, 1,000 to 28,000)",
        "Region (text, 2 distinct, e.g. South, North)",
    ]


@pytest.mark.parametrize("script", ["english", "russian"])
def test_a_title_too_long_for_the_window_is_cut_so_the_chunk_is_still_read(embedder, script):
    """Every embedded text (title, newline, chunk) fits MiniLM's 256 tokens with its
    [CLS]/[SEP], however long the subject line above it is."""
    word = "Договор" if script == "russian" else "Agreement"
    title = " ".join(f"{word}{n}" for n in range(400))  # far over the window by itself
    settings = Settings(chunk_tokens=200)
    body = [Element(f"Paragraph {n}: " + "the terms apply to every order. " * 30, {"p": n})
            for n in range(20)]  # fmt: skip
    planned = plan_chunks(body, title, embedder, settings, Limits(200, 1000))
    count = embedder.count_tokens
    assert planned.title is not None and planned.title.endswith("…")
    assert count([planned.title])[0] <= TITLE_SHARE * (MINILM_MAX_TOKENS - 2)
    for chunk in planned.chunks:
        assert count([f"{planned.title}\n{chunk.text}"])[0] + 2 <= MINILM_MAX_TOKENS
    assert max(c.tokens for c in planned.chunks) >= 150  # the text keeps most of the window
    short = plan_chunks(body, "Terms.docx", embedder, settings, Limits(200, 1000))
    assert short.title is None  # a usual title is kept whole


def test_packing_a_wide_table_keeps_ticking(embedder):
    # Each wide Russian row is over the chunk budget and split: ~2 ms a row, so the 2,750
    # rows of issue 18's register went 4-6 s without a progress report. Now the packer and
    # the final count both tick every few dozen rows.
    parsed = parse_docx(wide_docx(RUSSIAN, 400, "Итоги"), "wide.docx")
    ticks: list[int] = []
    chunks = chunk_elements(
        parsed.elements, embedder.count_tokens, 200, tick=lambda: ticks.append(1)
    )
    assert len(chunks) > 400  # every row split into pieces
    assert len(ticks) >= 400 // 64
