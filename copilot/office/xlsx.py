"""Excel workbooks as skill input: one column of text, read from a file a user sent.

A workbook from a user is hostile until proven otherwise (a 120 KB file can hold a million
cells), so reading happens in the sandboxed worker (``ingest.untrusted``: container checks,
memory limit, deadline) and is bounded before openpyxl sees a byte
(``untrusted.check_spreadsheet``: cells and shared strings counted in the raw XML, the limit
named). openpyxl then streams the sheet (``read_only``) with cached formula values
(``data_only``), so nothing is recalculated.

``xlsx_scored`` writes the scored copy.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.parsers.safety import XLSX, check_container
from connectors.types import ParseError
from copilot.errors import CopilotError
from copilot.ingest.untrusted import MAX_CELLS, check_spreadsheet

__all__ = ["MAX_CELLS", "TextColumn", "WorkbookError", "read_column", "read_text_column"]

HEADER_SCAN_ROWS = 10
MAX_TEXT_ROWS = 50_000  # text cells in the scored column
MAX_CELL_CHARS = 32_767  # Excel's own limit on the text of one cell
MAX_ROW_NUMBER = 1_048_576  # Excel's last row
_LETTERS_RE = re.compile(r"[A-Za-z]{1,3}")


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
    path: Path, column: str, *, sheet: str | None = None, max_rows: int = MAX_TEXT_ROWS
) -> TextColumn:
    """Read the text cells of ``column`` of a workbook file, in this process.

    For a file a user sent, run ``read_column`` in the sandbox instead (``office.scoring``
    does); this is the same reader, for files the caller already trusts.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise WorkbookError(f"{path}: no such file.") from exc
    except OSError as exc:
        raise WorkbookError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc
    try:
        check_container(data, path.name, XLSX)
        return read_column(data, path.name, column, sheet, max_rows)
    except ParseError as exc:
        raise WorkbookError(str(exc)) from exc


def read_column(
    data: bytes, name: str, column: str, sheet: str | None = None, max_rows: int = MAX_TEXT_ROWS
) -> TextColumn:
    """The text cells of ``column`` (a header name or a letter such as "C") of a workbook.

    Runs in the sandbox worker (``ingest.untrusted.run_untrusted``), after the container
    checks; every problem is a ``ParseError`` naming the file, and the limit when one was hit.

    A header name is matched case-insensitively in the first rows; the first row where it
    appears is the header row. A letter picks the column directly; its first non-empty cell
    in those rows is then taken as the header (a column without a header loses that cell).
    Only string cells are returned: numbers, dates and booleans are not text to score.
    Formulas give their cached values (what Excel showed); one never calculated gives none.
    """
    wb = open_workbook(data, name, data_only=True)
    try:
        ws = pick_sheet(wb, name, sheet)
        return _read_column(ws, name, column, max_rows)
    except WorkbookError as exc:
        raise ParseError(str(exc)) from exc
    except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise ParseError(f"{name}: the workbook is damaged ({problem}).") from exc
    finally:
        wb.close()


def open_workbook(data: bytes, name: str, *, data_only: bool) -> Any:
    """openpyxl's streaming reader on a workbook within the limits (``check_spreadsheet``)."""
    import openpyxl

    check_spreadsheet(data, name)
    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds for a damaged package
        raise ParseError(f"{name}: the workbook is damaged or not an .xlsx ({exc}).") from exc


def pick_sheet(wb: Any, name: str, sheet: str | None) -> Any:
    """The worksheet called ``sheet`` (any case), or the active one."""
    names = list(wb.sheetnames)
    if sheet is None:
        active = wb.active
        if active is not None and hasattr(active, "iter_rows"):
            return active
        for ws in wb.worksheets:
            return ws
        raise WorkbookError(f"{name}: the workbook has no worksheets.")
    wanted = sheet.strip().casefold()
    for title in names:
        if title == sheet or title.strip().casefold() == wanted:
            ws = wb[title]
            if not hasattr(ws, "iter_rows"):
                raise WorkbookError(f"{name}: sheet {title!r} is a chart, not a worksheet.")
            return ws
    listed = ", ".join(repr(n) for n in names) or "none"
    raise WorkbookError(f"{name}: no sheet named {sheet!r}; the sheets are {listed}.")


def _read_column(ws: Any, name: str, column: str, max_rows: int) -> TextColumn:
    from openpyxl.utils import column_index_from_string, get_column_letter

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
            f"{name}, sheet {ws.title!r}: no column {column!r}; "
            f"headers found in the first {HEADER_SCAN_ROWS} rows: {found}."
        )
    header = ""
    if header_row and col_idx <= len(top[header_row - 1]):
        value = top[header_row - 1][col_idx - 1]
        header = str(value).strip() if _filled(value) else ""
    letter = get_column_letter(col_idx)
    rows: list[tuple[int, str]] = []
    cells = ws.iter_rows(min_row=header_row + 1, min_col=col_idx, max_col=col_idx, values_only=True)
    where = f"{name}, sheet {ws.title!r}, column {letter}"
    for r, (value,) in enumerate(cells, start=header_row + 1):
        if r > MAX_ROW_NUMBER:
            raise WorkbookError(f"{where}: rows past Excel's last row, {MAX_ROW_NUMBER:,}.")
        if isinstance(value, str) and value.strip():
            if len(rows) >= max_rows:
                raise WorkbookError(
                    f"{where}: more than {max_rows:,} text rows, the limit for one "
                    "workbook; split the workbook."
                )
            if len(value) > MAX_CELL_CHARS:
                raise WorkbookError(
                    f"{where}, row {r}: {len(value):,} characters, over Excel's "
                    f"{MAX_CELL_CHARS:,}-character limit for a cell."
                )
            rows.append((r, value))
    return TextColumn(ws.title, letter, header or letter, header_row, rows)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())
