"""The scored workbook: the user's worksheets, plus a "Scored" and a "Summary" sheet.

It is written in streaming mode (openpyxl ``write_only``): rows go to disk as they are
made, so memory does not grow with the workbook. The source is read in streaming mode too
(it is the user's file: this runs in the sandbox worker, ``ingest.untrusted``) and each
worksheet is copied cell by cell, values, formulas and cell styles; column widths, merged
cells, charts, images and comments of the source are not copied. The user's own file is
never edited. Caps on the cells copied and written, and on the rows scored, are named in
the error that reports them. Nothing is written unless everything succeeds.

Text from the workbook is data: it is always written back as a string, never as a formula,
whatever it starts with (formula injection).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from copy import copy
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink

from connectors.parsers.safety import XLSX, check_container
from connectors.types import ParseError
from copilot.fileio import save_atomically
from copilot.office.xlsx import (
    MAX_CELLS,
    MAX_ROW_NUMBER,
    MAX_TEXT_ROWS,
    TextColumn,
    WorkbookError,
    open_workbook,
)
from copilot.skills.types import Aspect, SentimentResult

# Cells visited while copying (empty ones included: a row is as wide as the sheet's widest).
MAX_VISITED = 4 * MAX_CELLS
# Cells written: the copy, six per scored row, and the summary.
MAX_WRITTEN = MAX_CELLS + 6 * MAX_TEXT_ROWS + 100
LABELS = ("positive", "negative", "neutral", "mixed")
LABEL_FILLS = {"positive": "C6EFCE", "negative": "FFC7CE", "neutral": "EDEDED", "mixed": "FFEB9C"}
_RISKY_START = ("=", "+", "-", "@", "\t", "\r")
# The source's style tables, shared with the copy so each cell keeps its style by index.
_STYLE_TABLES = ("_fonts", "_fills", "_borders", "_number_formats", "_alignments",
                 "_protections", "_cell_styles", "_named_styles")  # fmt: skip


def write_scored_workbook(
    src: Path,
    out: Path,
    column: TextColumn,
    results: Sequence[SentimentResult],
    *,
    summary: Mapping[str, object] | None = None,
    name: str | None = None,
) -> None:
    """Write the worksheets of ``src`` plus a "Scored" and a "Summary" sheet to ``out``,
    in this process. For a file a user sent, run ``write_scored`` in the sandbox instead
    (``office.scoring`` does). ``name`` is what errors call the file (default: its name)."""
    src, out = Path(src), Path(out)
    if out.resolve() == src.resolve() or (out.exists() and os.path.samefile(out, src)):
        raise ValueError(f"{out.name}: refusing to overwrite the source workbook.")
    data = src.read_bytes()
    try:
        check_container(data, name or src.name, XLSX)
        write_scored(data, name or src.name, out, column, list(results), summary or {})
    except ParseError as exc:
        raise WorkbookError(str(exc)) from exc


def write_scored(
    data: bytes,
    name: str,
    out: Path,
    column: TextColumn,
    results: list[SentimentResult],
    summary: Mapping[str, object],
) -> None:
    """Write the scored workbook for the workbook ``data`` to ``out``.

    ``results[i]`` scores ``column.rows[i]``; ``summary`` is extra key/value lines (skill,
    engine, date...) for the Summary sheet. Runs in the sandbox worker, after the container
    checks; a problem with the file is a ``ParseError`` naming it.
    """
    if len(results) != len(column.rows):
        raise ValueError(
            f"{len(results)} results for {len(column.rows)} text cells: they must line up."
        )
    if out.suffix.lower() != ".xlsx":
        raise ValueError(f"{out.name}: the scored workbook is written as .xlsx.")
    if len(column.rows) > MAX_TEXT_ROWS:
        raise ParseError(f"{name}: more than {MAX_TEXT_ROWS:,} scored rows, the limit.")
    source = open_workbook(data, name, data_only=False)
    wb = Workbook(write_only=True)
    try:
        if column.sheet not in source.sheetnames:
            raise ParseError(f"{name}: sheet {column.sheet!r} is not in the workbook.")
        for table in _STYLE_TABLES:
            setattr(wb, table, getattr(source, table))
        written = _Counter(name)
        _copy_sheets(source, wb, written, name)
        taken = set(source.sheetnames)
        _fill_scored(wb.create_sheet(_unique_title(taken, "Scored")), column, results, written)
        summary_ws = wb.create_sheet(_unique_title(taken, "Summary"))
        _fill_summary(summary_ws, name, column, results, summary)
        save_atomically(wb.save, out)
    except (KeyError, TypeError) as exc:
        _discard(wb)
        problem = f"{type(exc).__name__}: {exc}"
        raise ParseError(f"{name}: the workbook is damaged ({problem}).") from exc
    except BaseException:
        _discard(wb)
        raise
    finally:
        source.close()


def _discard(wb: Workbook) -> None:
    """Close and remove the temporary files of a write-only workbook that was not saved."""
    for ws in wb.worksheets:
        writer = getattr(ws, "_writer", None)
        rows = getattr(ws, "_rows", None)
        with suppress(Exception):
            if rows is not None:
                rows.close()
        with suppress(Exception):
            if writer is not None:
                writer.close()
        with suppress(Exception):
            if writer is not None:
                writer.cleanup()


class _Counter:
    """Cells visited and written, against the caps, which the error names."""

    def __init__(self, name: str) -> None:
        self.name, self.visited, self.written = name, 0, 0

    def visit(self, cells: int) -> None:
        self.visited += cells
        if self.visited > MAX_VISITED:
            raise ParseError(
                f"{self.name}: its sheets span more than {MAX_VISITED:,} cells (empty ones "
                "included), the limit for a workbook to score: keep only the sheet and the "
                "columns to score."
            )

    def write(self, cells: int) -> None:
        self.written += cells
        if self.written > MAX_WRITTEN:
            raise ParseError(
                f"{self.name}: the scored workbook would hold more than {MAX_WRITTEN:,} cells, "
                "the limit."
            )


# --- the copy of the user's sheets -----------------------------------------------------


def _copy_sheets(source: Any, wb: Workbook, counter: _Counter, name: str) -> None:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    for ws in source.worksheets:
        if not isinstance(ws, ReadOnlyWorksheet):
            continue  # a chart sheet: not copied
        copy_ws = wb.create_sheet(ws.title)
        for number, row in enumerate(ws.iter_rows(), start=1):
            if number > MAX_ROW_NUMBER:
                raise ParseError(
                    f"{name}, sheet {ws.title!r}: rows past Excel's last row, {MAX_ROW_NUMBER:,}."
                )
            counter.visit(len(row) + 1)  # a gap of empty rows costs time too
            cells = [_copy_cell(copy_ws, cell) for cell in row]
            counter.write(sum(c is not None for c in cells))
            copy_ws.append(cells)


def _copy_cell(ws: Any, cell: Any) -> WriteOnlyCell | None:
    value = getattr(cell, "value", None)
    style = getattr(cell, "_style_id", 0)
    if value is None and not style:
        return None
    out = WriteOnlyCell(ws, value=value)
    if cell.data_type == "s" and isinstance(value, str):
        out.data_type = "s"  # text stays text, even "=…" (a formula would have type "f")
    if style:
        out._style = copy(cell.style_array)
    return out


# --- the Scored sheet -----------------------------------------------------------------------


def _text_cell(ws: Any, text: str, **style: Any) -> WriteOnlyCell | None:
    """User text as a string cell, never a formula, whatever it starts with."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if not text:
        return None  # an empty inline string is not worth a cell
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    if text.startswith(_RISKY_START):
        cell.quotePrefix = True  # Excel keeps it text even when the user edits the cell
    for key, value in style.items():
        setattr(cell, key, value)
    return cell


def format_aspects(aspects: Sequence[Aspect]) -> str:
    """``battery (−0.62): died in a day; screen (+0.71): great screen``."""
    parts = []
    for a in aspects:
        sign = "−" if a.score < 0 else "+"
        parts.append(f"{a.aspect} ({sign}{abs(a.score):.2f}): {a.evidence}")
    return "; ".join(parts)


def _fill_scored(
    ws: Any, column: TextColumn, results: Sequence[SentimentResult], counter: _Counter
) -> None:
    # The header sits on the original header row and each result on its text's row, so the
    # two sheets can be read side by side and sorted or filtered back together by "Row".
    h = max(column.header_row, 1)
    last = max([h, *(r for r, _ in column.rows)])
    ws.freeze_panes = f"A{h + 1}"
    ws.auto_filter.ref = f"A{h}:F{last}"
    for letter, width in zip("ABCDEF", (8, 60, 11, 8, 12, 60), strict=True):
        ws.column_dimensions[letter].width = width
    labels = f"C{h + 1}:C{max(last, h + 1)}"
    for label, colour in LABEL_FILLS.items():
        fill = PatternFill(start_color=colour, end_color=colour, fill_type="solid")
        ws.conditional_formatting.add(
            labels, CellIsRule(operator="equal", formula=[f'"{label}"'], fill=fill)
        )
    for row in _scored_rows(ws, column, results, h):
        counter.write(sum(c is not None for c in row))
        ws.append(row)


def _scored_rows(
    ws: Any, column: TextColumn, results: Sequence[SentimentResult], h: int
) -> Iterator[list[Any]]:
    bold = Font(bold=True)
    headers = ["Row", column.header, "Label", "Score", "Confidence", "Aspects"]
    yield from ([] for _ in range(1, h))
    yield [_text_cell(ws, text, font=bold) for text in headers]
    source_sheet = quote_sheetname(column.sheet)
    link = Font(color="0563C1", underline="single")
    wrap = Alignment(wrap_text=True, vertical="top")
    at = h
    for (r, text), result in zip(column.rows, results, strict=True):
        yield from ([] for _ in range(at + 1, r))  # rows without text stay empty
        at = r
        ref = WriteOnlyCell(ws, value=r)
        ref.hyperlink = Hyperlink(ref=f"A{r}", location=f"{source_sheet}!{column.column_letter}{r}")
        ref.font = link
        score = WriteOnlyCell(ws, value=round(float(result.score), 4))
        score.number_format = "0.00"
        confidence = WriteOnlyCell(ws, value=round(float(result.confidence), 4))
        confidence.number_format = "0%"
        yield [
            ref,
            _text_cell(ws, text, alignment=wrap),
            _text_cell(ws, result.label),
            score,
            confidence,
            _text_cell(ws, format_aspects(result.aspects), alignment=wrap),
        ]


# --- the Summary sheet ----------------------------------------------------------------------


def _fill_summary(
    ws: Any,
    name: str,
    column: TextColumn,
    results: Sequence[SentimentResult],
    extra: Mapping[str, object],
) -> None:
    bold = Font(bold=True)
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 12
    ws.column_dimensions["D"].width = 12
    ws.append([_text_cell(ws, h, font=bold) for h in ("Label", "Count", "Share", "Mean score")])
    total = len(results)
    for label in LABELS:
        scores = [r.score for r in results if r.label == label]
        share = len(scores) / total if total else 0.0
        mean = sum(scores) / len(scores) if scores else None
        ws.append([label, len(scores), _number(ws, share, "0%"), _number(ws, mean, "0.00")])
    mean_all = sum(r.score for r in results) / total if total else None
    share_all = 1.0 if total else 0.0
    ws.append([_text_cell(ws, "total", font=bold), total, _number(ws, share_all, "0%"),
               _number(ws, mean_all, "0.00")])  # fmt: skip
    ws.append([])
    info = {
        "source": name,
        "sheet": column.sheet,
        "column": f"{column.header} ({column.column_letter})",
        **{str(k): v for k, v in extra.items()},
    }
    for key, value in info.items():
        ws.append([_text_cell(ws, key), _text_cell(ws, "" if value is None else str(value))])

    chart = BarChart()
    chart.type = "col"
    chart.title = "Texts per label"
    chart.y_axis.title = "texts"
    chart.legend = None
    data = Reference(ws, min_col=2, min_row=1, max_row=len(LABELS) + 1)
    cats = Reference(ws, min_col=1, min_row=2, max_row=len(LABELS) + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(cats)
    ws.add_chart(chart, "F2")


def _number(ws: Any, value: float | None, number_format: str) -> WriteOnlyCell | None:
    if value is None:
        return None
    cell = WriteOnlyCell(ws, value=value)
    cell.number_format = number_format
    return cell


def _unique_title(taken: set[str], base: str) -> str:
    folded = {t.casefold() for t in taken}
    title, n = base, 2
    while title.casefold() in folded:
        title, n = f"{base} {n}", n + 1
    taken.add(title)
    return title
