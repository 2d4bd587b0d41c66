"""Excel workbooks as skill input (one column of text) and output (the column, scored).

Reading streams the sheet (``read_only``) with cached formula values (``data_only``), so a
large or formula-heavy workbook costs what its text costs and nothing is recalculated.
Writing never edits the user's file: it loads the source normally (formulas and styles as
they are), adds a "Scored" sheet whose rows line up with the original rows and a "Summary"
sheet with a chart, and saves to a new file atomically.

Text from the workbook is data: it is always written back as a string, never as a formula,
whatever it starts with (formula injection).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import column_index_from_string, get_column_letter, quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink

from copilot.errors import CopilotError
from copilot.fileio import save_atomically
from copilot.skills.types import Aspect, SentimentResult

HEADER_SCAN_ROWS = 10
MAX_UNCOMPRESSED_BYTES = 1 << 30  # refuse workbooks that unpack to more than 1 GiB
LABELS = ("positive", "negative", "neutral", "mixed")
LABEL_FILLS = {"positive": "C6EFCE", "negative": "FFC7CE", "neutral": "EDEDED", "mixed": "FFEB9C"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LETTERS_RE = re.compile(r"[A-Za-z]{1,3}")
_RISKY_START = ("=", "+", "-", "@", "\t", "\r")


class WorkbookError(CopilotError, ValueError):
    """A workbook, sheet or column that cannot be used, said in plain words."""

    kind = "bad_workbook"
    status = 400
    title = "I couldn't use the file"


@dataclass(frozen=True)
class TextColumn:
    """The text cells of one column, each with its 1-based worksheet row.

    Empty and non-text cells are left out of ``rows`` but their rows keep their numbers, so
    results written back line up with the original rows.
    """

    sheet: str
    column_letter: str
    header: str
    header_row: int
    rows: list[tuple[int, str]]


def read_text_column(
    path: Path, column: str, *, sheet: str | None = None, max_rows: int = 50_000
) -> TextColumn:
    """Read the text cells of ``column`` (a header name or a letter such as "C").

    A header name is matched case-insensitively in the first rows; the first row where it
    appears is the header row. A letter picks the column directly; its first non-empty cell
    in those rows is then taken as the header (a column without a header loses that cell).
    Only string cells are returned: numbers, dates and booleans are not text to score.
    Formulas give their cached values (what Excel showed); one never calculated gives none.
    """
    path = Path(path)
    _check_container(path)
    try:
        with path.open("rb") as fh:
            wb = _load(fh, path, read_only=True, data_only=True)
            try:
                ws = _pick_sheet(wb, path, sheet)
                return _read_column(ws, path, column, max_rows)
            finally:
                wb.close()
    except OSError as exc:
        raise WorkbookError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc


def write_scored_workbook(
    src: Path,
    out: Path,
    column: TextColumn,
    results: Sequence[SentimentResult],
    *,
    summary: dict | None = None,
) -> None:
    """Write ``src`` plus a "Scored" and a "Summary" sheet to the new file ``out``.

    ``results[i]`` scores ``column.rows[i]``. ``summary`` is extra key/value lines (skill,
    engine, date...) for the Summary sheet. Nothing is written unless everything succeeds.
    """
    src, out = Path(src), Path(out)
    if len(results) != len(column.rows):
        raise ValueError(
            f"{len(results)} results for {len(column.rows)} text cells: they must line up."
        )
    if out.suffix.lower() != ".xlsx":
        raise ValueError(f"{out.name}: the scored workbook is written as .xlsx.")
    if out.resolve() == src.resolve() or (out.exists() and os.path.samefile(out, src)):
        raise ValueError(f"{out.name}: refusing to overwrite the source workbook.")
    _check_container(src)
    with src.open("rb") as fh:
        wb = _load(fh, src, read_only=False, data_only=False)
    if column.sheet not in wb.sheetnames:
        raise WorkbookError(f"{src.name}: sheet {column.sheet!r} is not in the workbook.")
    scored = wb.create_sheet(_unique_title(wb, "Scored"))
    _fill_scored(scored, column, results)
    summary_ws = wb.create_sheet(_unique_title(wb, "Summary"))
    _fill_summary(summary_ws, src, column, results, summary or {})
    if not out.parent.is_dir():
        raise WorkbookError(f"{out.parent}: no such folder to write {out.name} into.")
    save_atomically(wb.save, out)


# --- reading -----------------------------------------------------------------------------


def _check_container(path: Path) -> None:
    """Say what a file is when it is not a readable .xlsx, before openpyxl guesses."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 20)
    except FileNotFoundError as exc:
        raise WorkbookError(f"{path}: no such file.") from exc
    except OSError as exc:
        raise WorkbookError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc
    if head.startswith(_OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in head:
            raise WorkbookError(f"{path.name}: the workbook is password-protected (encrypted).")
        raise WorkbookError(
            f"{path.name}: an old-format .xls (Excel 97-2003) workbook; save it as .xlsx."
        )
    if not head.startswith(b"PK"):
        raise WorkbookError(f"{path.name}: not an Excel workbook (.xlsx).")
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WorkbookError(f"{path.name}: the workbook is damaged ({exc}).") from exc
    if total > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(
            f"{path.name}: the workbook unpacks to {total >> 20} MB, more than the "
            f"{MAX_UNCOMPRESSED_BYTES >> 20} MB allowed."
        )


def _load(fh: BinaryIO, path: Path, *, read_only: bool, data_only: bool) -> Any:
    # A file object, not a name: openpyxl then does not judge the file by its extension.
    try:
        return openpyxl.load_workbook(fh, read_only=read_only, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds for a damaged package
        raise WorkbookError(
            f"{path.name}: the workbook is damaged or not an .xlsx ({exc})."
        ) from exc


def _pick_sheet(wb: Any, path: Path, sheet: str | None) -> Any:
    names = list(wb.sheetnames)
    if sheet is None:
        active = wb.active
        if active is not None and hasattr(active, "iter_rows"):
            return active
        for ws in wb.worksheets:
            return ws
        raise WorkbookError(f"{path.name}: the workbook has no worksheets.")
    wanted = sheet.strip().casefold()
    for name in names:
        if name == sheet or name.strip().casefold() == wanted:
            ws = wb[name]
            if not hasattr(ws, "iter_rows"):
                raise WorkbookError(f"{path.name}: sheet {name!r} is a chart, not a worksheet.")
            return ws
    listed = ", ".join(repr(n) for n in names) or "none"
    raise WorkbookError(f"{path.name}: no sheet named {sheet!r}; the sheets are {listed}.")


def _read_column(ws: Any, path: Path, column: str, max_rows: int) -> TextColumn:
    top = [list(r) for r in ws.iter_rows(min_row=1, max_row=HEADER_SCAN_ROWS, values_only=True)]
    wanted = column.strip().casefold()
    header_row = col_idx = None
    for r, values in enumerate(top, start=1):
        for c, value in enumerate(values, start=1):
            if isinstance(value, str) and value.strip().casefold() == wanted:
                header_row, col_idx = r, c
                break
        if header_row:
            break
    if header_row is None and _LETTERS_RE.fullmatch(column.strip()):
        try:
            col_idx = column_index_from_string(column.strip().upper())
        except ValueError:
            col_idx = None
        if col_idx is not None:
            in_column = (vs[col_idx - 1] if col_idx <= len(vs) else None for vs in top)
            header_row = next((r for r, v in enumerate(in_column, 1) if _filled(v)), 0)
    if header_row is None or col_idx is None:
        headers = [v.strip() for vs in top for v in vs if isinstance(v, str) and v.strip()]
        found = ", ".join(repr(_short(h)) for h in headers[:20]) or "none"
        raise WorkbookError(
            f"{path.name}, sheet {ws.title!r}: no column {column!r}; "
            f"headers found in the first {HEADER_SCAN_ROWS} rows: {found}."
        )
    header = ""
    if header_row and col_idx <= len(top[header_row - 1]):
        value = top[header_row - 1][col_idx - 1]
        header = str(value).strip() if _filled(value) else ""
    letter = get_column_letter(col_idx)
    rows: list[tuple[int, str]] = []
    cells = ws.iter_rows(min_row=header_row + 1, min_col=col_idx, max_col=col_idx, values_only=True)
    for r, (value,) in enumerate(cells, start=header_row + 1):
        if isinstance(value, str) and value.strip():
            if len(rows) >= max_rows:
                raise WorkbookError(
                    f"{path.name}, sheet {ws.title!r}, column {letter}: more than {max_rows} "
                    "text rows; split the workbook or raise the limit."
                )
            rows.append((r, value))
    return TextColumn(ws.title, letter, header or letter, header_row, rows)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


# --- writing -----------------------------------------------------------------------------


def _set_text(cell: Cell, text: str) -> None:
    """Store user text as a string, never as a formula, whatever it starts with."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if not text:
        cell.value = None  # an empty inline string is not worth a cell
        return
    cell.value = text
    cell.data_type = "s"
    if text.startswith(_RISKY_START):
        cell.quotePrefix = True  # Excel keeps it text even when the user edits the cell


def format_aspects(aspects: Sequence[Aspect]) -> str:
    """``battery (−0.62): died in a day; screen (+0.71): great screen``."""
    parts = []
    for a in aspects:
        sign = "−" if a.score < 0 else "+"
        parts.append(f"{a.aspect} ({sign}{abs(a.score):.2f}): {a.evidence}")
    return "; ".join(parts)


def _fill_scored(ws: Any, column: TextColumn, results: Sequence[SentimentResult]) -> None:
    # The header sits on the original header row and each result on its text's row, so the
    # two sheets can be read side by side and sorted or filtered back together by "Row".
    h = max(column.header_row, 1)
    headers = ["Row", column.header, "Label", "Score", "Confidence", "Aspects"]
    for c, name in enumerate(headers, start=1):
        cell = ws.cell(row=h, column=c)
        _set_text(cell, name)
        cell.font = Font(bold=True)
    source_sheet = quote_sheetname(column.sheet)
    wrap = Alignment(wrap_text=True, vertical="top")
    last = h
    for (r, text), result in zip(column.rows, results, strict=True):
        last = max(last, r)
        ref = ws.cell(row=r, column=1, value=r)
        ref.hyperlink = Hyperlink(
            ref=ref.coordinate, location=f"{source_sheet}!{column.column_letter}{r}"
        )
        ref.font = Font(color="0563C1", underline="single")
        _set_text(ws.cell(row=r, column=2), text)
        ws.cell(row=r, column=2).alignment = wrap
        _set_text(ws.cell(row=r, column=3), result.label)
        ws.cell(row=r, column=4, value=round(float(result.score), 4)).number_format = "0.00"
        ws.cell(row=r, column=5, value=round(float(result.confidence), 4)).number_format = "0%"
        aspects = ws.cell(row=r, column=6)
        _set_text(aspects, format_aspects(result.aspects))
        aspects.alignment = wrap
    ws.freeze_panes = ws.cell(row=h + 1, column=1)
    ws.auto_filter.ref = f"A{h}:F{last}"
    for letter, width in zip("ABCDEF", (8, 60, 11, 8, 12, 60), strict=True):
        ws.column_dimensions[letter].width = width
    labels = f"C{h + 1}:C{max(last, h + 1)}"
    for label, colour in LABEL_FILLS.items():
        fill = PatternFill(start_color=colour, end_color=colour, fill_type="solid")
        ws.conditional_formatting.add(
            labels, CellIsRule(operator="equal", formula=[f'"{label}"'], fill=fill)
        )


def _fill_summary(
    ws: Any,
    src: Path,
    column: TextColumn,
    results: Sequence[SentimentResult],
    extra: dict,
) -> None:
    ws.append(["Label", "Count", "Share", "Mean score"])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    total = len(results)
    for label in LABELS:
        scores = [r.score for r in results if r.label == label]
        share = len(scores) / total if total else 0.0
        mean = sum(scores) / len(scores) if scores else None
        ws.append([label, len(scores), share, mean])
    mean_all = sum(r.score for r in results) / total if total else None
    ws.append(["total", total, 1.0 if total else 0.0, mean_all])
    for row in ws.iter_rows(min_row=2, max_row=len(LABELS) + 2):
        row[2].number_format = "0%"
        row[3].number_format = "0.00"
    ws[f"A{len(LABELS) + 2}"].font = Font(bold=True)
    info = {
        "source": src.name,
        "sheet": column.sheet,
        "column": f"{column.header} ({column.column_letter})",
        **{str(k): v for k, v in extra.items()},
    }
    first = len(LABELS) + 4
    for i, (key, value) in enumerate(info.items()):
        _set_text(ws.cell(row=first + i, column=1), key)
        _set_text(ws.cell(row=first + i, column=2), "" if value is None else str(value))
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 12
    ws.column_dimensions["D"].width = 12

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


def _unique_title(wb: Any, base: str) -> str:
    taken = {name.casefold() for name in wb.sheetnames}
    title, n = base, 2
    while title.casefold() in taken:
        title, n = f"{base} {n}", n + 1
    return title
