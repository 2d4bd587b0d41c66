"""Excel (.xlsx/.xlsm) workbooks: one element per row, labelled by the sheet's header row.

A row like ``North | 1200 | 1350`` means nothing in a chunk on its own, so each row's text
pairs every value with its column header (``Region: North | Q1: 1200 | Q2: 1350``) and the
header row travels along as ``Element.header``. Locators are A1 ranges, which is what a
person types into Excel's Go To box.

openpyxl reads in read-only mode (streaming, one sheet at a time) with cached formula
values. The work is capped per workbook: a sheet whose XML claims row 1,000,000,000 or
16,384 columns per row would otherwise keep us busy for hours.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from connectors.parsers.safety import DAMAGE_ERRORS as _DAMAGE
from connectors.types import Element, Parsed, ParseError

MAX_CELLS = 2_000_000  # cells (and rows) visited per workbook, empty ones included
MAX_ROWS = 1_048_576  # rows visited per sheet: Excel's own limit


def parse_xlsx(data: bytes, name: str) -> Parsed:
    """Parse a workbook into one table_row element per non-empty row of every worksheet."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except InvalidFileException as exc:
        raise ParseError(f"{name} is not a readable Excel workbook ({exc})") from exc
    except _DAMAGE as exc:
        raise _damaged(name, exc) from exc
    try:
        return _read_workbook(workbook, name)
    except _DAMAGE as exc:
        raise _damaged(name, exc) from exc
    finally:
        workbook.close()


def _damaged(name: str, exc: Exception) -> ParseError:
    if isinstance(exc, KeyError):  # zipfile: a part the workbook refers to is not there
        return ParseError(f"{name} is damaged: a part it refers to is missing ({exc.args[0]})")
    return ParseError(f"{name} is damaged: {type(exc).__name__}: {exc}")


def _read_workbook(workbook: Any, name: str) -> Parsed:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    elements: list[Element] = []
    budget = [MAX_CELLS]
    truncated: list[str] = []
    sheets = []
    for sheet in workbook.worksheets:
        if not isinstance(sheet, ReadOnlyWorksheet):
            continue  # chartsheets hold no cells
        sheets.append(sheet.title)
        # The stored dimension is often wrong (some writers always say A1); read what is there.
        sheet.reset_dimensions()
        note = _read_sheet(sheet, elements, budget)
        if note:
            truncated.append(note)
        if budget[0] <= 0:
            break
    meta: dict[str, Any] = {"sheets": sheets}
    title = getattr(workbook.properties, "title", None)
    if title:
        meta["title"] = title
    if truncated:
        meta["truncated"] = truncated
    display = "\n\n".join(
        "\n".join([f"# {sheet}"] + [e.text for e in elements if e.group == f"sheet:{sheet}"])
        for sheet in sheets
    )
    return Parsed(elements=elements, display_text=display, meta=meta)


def _read_sheet(sheet: Any, elements: list[Element], budget: list[int]) -> str | None:
    """Append the sheet's rows to ``elements``; return a note if the sheet was cut short."""
    from openpyxl.utils import get_column_letter

    title = sheet.title
    group = f"sheet:{title}"
    names: dict[int, str] | None = None
    header = ""
    header_range = ""
    rows = 0
    for visited, row in enumerate(sheet.iter_rows()):
        if visited >= MAX_ROWS:
            return f"sheet {title!r}: stopped after {MAX_ROWS:,} rows"
        budget[0] -= len(row) + 1  # a gap of empty rows costs time too
        if budget[0] < 0:
            return f"sheet {title!r}: stopped after {MAX_CELLS:,} cells in the workbook"
        cells = [
            (cell.row, cell.column, text)
            for cell in row
            if getattr(cell, "value", None) is not None and (text := format_value(cell.value))
        ]
        if not cells:
            continue
        number = cells[0][0]
        first, last = cells[0][1], cells[-1][1]
        cell_range = f"{get_column_letter(first)}{number}"
        if last != first:
            cell_range += f":{get_column_letter(last)}{number}"
        if names is None:
            names = {column: text.rstrip(": ") for _, column, text in cells}
            header = " | ".join(text for _, _, text in cells)
            header_range = cell_range
            continue
        text = " | ".join(
            f"{names.get(column) or get_column_letter(column)}: {value}"
            for _, column, value in cells
        )
        locator = {"sheet": title, "range": cell_range}
        elements.append(Element(text, locator, "table_row", group, (title,), header))
        rows += 1
    if names is not None and rows == 0:
        # Only a header row (a list of names, a title): keep it rather than lose it.
        locator = {"sheet": title, "range": header_range}
        elements.append(Element(header, locator, "table_row", group, (title,), header))
    return None


def format_value(value: Any) -> str:
    """A cell value as a person would read it: no float noise, dates in ISO form."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return " ".join(str(value).split())
