"""The scored workbook: the user's worksheets, plus a "Scored" and a "Summary" sheet.

"Scored" is the scored sheet again with every one of the user's columns (so Id, Customer…
still filter it) and four new columns right of them: label, score, confidence, aspects, on
each text's own row. "Summary" holds counts, shares and mean scores per label and the top
aspects as cells (numbers as numbers), with a chart of the counts.

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
from openpyxl.utils import column_index_from_string, get_column_letter

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
from copilot.skills.sentiment_io import aggregate
from copilot.skills.types import Aspect, SentimentResult

# Cells visited while copying (empty ones included: a row is as wide as the sheet's widest).
MAX_VISITED = 4 * MAX_CELLS
# Cells written: the copy, the scored copy (the user's sheet again, four more cells per
# scored row), and the summary.
MAX_WRITTEN = 2 * MAX_CELLS + 4 * MAX_TEXT_ROWS + 100
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
        width = _copy_sheets(source, wb, written, name, column.sheet)
        taken = set(source.sheetnames)
        scored_ws = wb.create_sheet(_unique_title(taken, "Scored"))
        _fill_scored(scored_ws, source[column.sheet], column, results, width, written, name)
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


def _copy_sheets(source: Any, wb: Workbook, counter: _Counter, name: str, scored: str) -> int:
    """Copy every worksheet; return how many columns the sheet ``scored`` uses (the score
    columns go right of them)."""
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    width = 0
    for ws in source.worksheets:
        if not isinstance(ws, ReadOnlyWorksheet):
            continue  # a chart sheet: not copied
        copy_ws = wb.create_sheet(ws.title)
        for cells in _copied_rows(ws, copy_ws, counter, name):
            if ws.title == scored:
                width = max(width, _used_width(cells))
            copy_ws.append(cells)
    return width


def _copied_rows(
    ws: Any, copy_ws: Any, counter: _Counter, name: str, *, guard: bool = False
) -> Iterator[list[WriteOnlyCell | None]]:
    """The rows of ``ws`` as cells of ``copy_ws``; ``guard``: text that looks like a formula
    gets Excel's quote prefix, so it stays text when someone edits the cell."""
    for number, row in enumerate(ws.iter_rows(), start=1):
        if number > MAX_ROW_NUMBER:
            raise ParseError(
                f"{name}, sheet {ws.title!r}: rows past Excel's last row, {MAX_ROW_NUMBER:,}."
            )
        counter.visit(len(row) + 1)  # a gap of empty rows costs time too
        cells = [_copy_cell(copy_ws, cell, guard) for cell in row]
        counter.write(sum(c is not None for c in cells))
        yield cells


def _used_width(cells: Sequence[object]) -> int:
    return next((i for i in range(len(cells), 0, -1) if cells[i - 1] is not None), 0)


def _copy_cell(ws: Any, cell: Any, guard: bool = False) -> WriteOnlyCell | None:
    value = getattr(cell, "value", None)
    style = getattr(cell, "_style_id", 0)
    if value is None and not style:
        return None
    out = WriteOnlyCell(ws, value=value)
    if cell.data_type == "s" and isinstance(value, str):
        out.data_type = "s"  # text stays text, even "=…" (a formula would have type "f")
    if style:
        out._style = copy(cell.style_array)
    if guard and out.data_type == "s" and str(value).startswith(_RISKY_START):
        out.quotePrefix = True
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
    """``battery (−0.62): died in a day; screen: great screen`` (a model may give no score:
    then the aspect's label alone, never a made-up 0)."""
    parts = []
    for a in aspects:
        if a.score is None:
            head = f"{a.aspect} ({a.label})"
        else:
            head = f"{a.aspect} ({'−' if a.score < 0 else '+'}{abs(a.score):.2f})"
        parts.append(f"{head}: {a.evidence}" if a.evidence else head)
    return "; ".join(parts)


SCORE_HEADERS = ("Label", "Score", "Confidence", "Aspects")


def _fill_scored(
    ws: Any,
    source_ws: Any,
    column: TextColumn,
    results: Sequence[SentimentResult],
    width: int,
    counter: _Counter,
    name: str,
) -> None:
    """The user's sheet again, every column kept, with the scores as four new columns right
    of it on each text's own row: the user's own columns (Id, Customer…) filter the scores.

    A sheet whose column has no header row gets one on top (naming the columns by letter),
    so there its rows sit one lower than in the original.
    """
    h = column.header_row
    shift = 0 if h else 1
    header_at = max(h, 1)
    width = max(width, column_index_from_string(column.column_letter))  # even if it is empty
    first = width + 1  # the first score column
    letters = [get_column_letter(first + i) for i in range(len(SCORE_HEADERS))]
    last = max([header_at, *(r + shift for r, _ in column.rows)])
    ws.freeze_panes = f"A{header_at + 1}"
    ws.auto_filter.ref = f"A{header_at}:{letters[-1]}{last}"
    ws.column_dimensions[column.column_letter].width = 60
    for letter, w in zip(letters, (11, 8, 12, 60), strict=True):
        ws.column_dimensions[letter].width = w
    label_range = f"{letters[0]}{header_at + 1}:{letters[0]}{max(last, header_at + 1)}"
    for label, colour in LABEL_FILLS.items():
        fill = PatternFill(start_color=colour, end_color=colour, fill_type="solid")
        ws.conditional_formatting.add(
            label_range, CellIsRule(operator="equal", formula=[f'"{label}"'], fill=fill)
        )
    bold = Font(bold=True)
    headers = [_text_cell(ws, t, font=bold) for t in SCORE_HEADERS]
    by_row = {r: result for (r, _), result in zip(column.rows, results, strict=True)}
    if shift:
        names = [_text_cell(ws, get_column_letter(i), font=bold) for i in range(1, width + 1)]
        counter.write(width + len(headers))
        ws.append([*names, *headers])
    for number, cells in enumerate(_copied_rows(source_ws, ws, counter, name, guard=True), start=1):
        extra: list[Any] = []
        if number == h:
            extra = headers
        elif number in by_row:
            extra = _score_cells(ws, by_row[number])
        if extra:
            cells = [*cells[:width], *([None] * (width - len(cells))), *extra]
            counter.write(sum(c is not None for c in extra))
        ws.append(cells)


def _score_cells(ws: Any, result: SentimentResult) -> list[Any]:
    score = _number(ws, round(float(result.score), 4), "0.00")
    confidence = _number(ws, round(float(result.confidence), 4), "0%")
    wrap = Alignment(wrap_text=True, vertical="top")
    aspects = _text_cell(ws, format_aspects(result.aspects), alignment=wrap)
    return [_text_cell(ws, result.label), score, confidence, aspects]


# --- the Summary sheet ----------------------------------------------------------------------


def _fill_summary(
    ws: Any,
    name: str,
    column: TextColumn,
    results: Sequence[SentimentResult],
    extra: Mapping[str, object],
) -> None:
    """Counts, shares and mean scores per label, the top aspects, then what was scored: all
    as cells (numbers as numbers), with a chart of the counts."""
    bold = Font(bold=True)
    for letter, w in zip("ABCDE", (18, 12, 12, 12, 12), strict=True):
        ws.column_dimensions[letter].width = w
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
    ws.append([_text_cell(ws, h, font=bold) for h in ("Aspect", "Mentions", "Mean score")])
    top = aggregate(results)["aspects"]
    for a in top:
        ws.append(
            [_text_cell(ws, a["aspect"]), a["mentions"], _number(ws, a["mean_score"], "0.00")]
        )
    if not top:
        ws.append([_text_cell(ws, "(no aspects found)")])
    ws.append([])
    info: dict[str, object] = {
        "source": name,
        "sheet": column.sheet,
        "column": f"{column.header} ({column.column_letter})",
        **{str(k): v for k, v in extra.items()},
    }
    for key, value in _info_lines(info):
        ws.append([_text_cell(ws, key), value if isinstance(value, int | float) else
                   _text_cell(ws, value)])  # fmt: skip

    chart = BarChart()
    chart.type = "col"
    chart.title = "Texts per label"
    chart.y_axis.title = "texts"
    chart.legend = None
    data = Reference(ws, min_col=2, min_row=1, max_row=len(LABELS) + 1)
    cats = Reference(ws, min_col=1, min_row=2, max_row=len(LABELS) + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(cats)
    ws.add_chart(chart, "G2")


def _info_lines(info: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Key/value lines, one cell each: a mapping becomes "key sub" lines, never its repr."""
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _info_lines(value, f"{name} ")
        elif isinstance(value, bool) or value is None:
            yield name, "" if value is None else str(value).lower()
        elif isinstance(value, int | float | str):
            yield name, value
        else:
            raise ValueError(f"summary line {name!r}: {type(value).__name__} is not one value")


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
