"""Hostile workbooks, built as small zips whose XML is streamed in: the expanded sheet is
never held by the test, only the compressed file (tens of KB)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{SHEET_TYPE}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_TYPE}.worksheet+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SHEET_TYPE}.sharedStrings+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'<workbook {NS} xmlns:r="{REL}"><sheets>'
        '<sheet name="Reviews" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
}


def workbook(rows: Iterable[bytes], strings: Iterable[bytes]) -> bytes:
    """A minimal .xlsx whose sheet and shared-strings XML are streamed from ``rows`` and
    ``strings``: the test never holds the expanded XML, only the compressed zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, text in PARTS.items():
            zf.writestr(name, text)
        with zf.open("xl/worksheets/sheet1.xml", "w") as part:
            part.write(f"<worksheet {NS}><sheetData>".encode())
            part.write(b'<row><c t="inlineStr"><is><t>Review</t></is></c></row>')
            for row in rows:
                part.write(row)
            part.write(b"</sheetData></worksheet>")
        with zf.open("xl/sharedStrings.xml", "w") as part:
            part.write(f"<sst {NS}>".encode())
            for chunk in strings:
                part.write(chunk)
            part.write(b"</sst>")
    return out.getvalue()


def million_cells(cell: bytes = b'<c t="s"><v>0</v></c>') -> bytes:
    """1,000 rows of 1,000 cells, no ``r=`` on rows or cells (~41 MB of XML as in the issue
    when each cell is a shared string with a style; ~15 MB with ``<c><v>1</v></c>``)."""
    row = b"<row>" + cell * 1000 + b"</row>"
    return workbook((row for _ in range(1000)), [b"<si><t>great</t></si>"])


def many_strings(count: int) -> bytes:
    """One text cell and ``count`` shared strings (``count`` = 4M: 68 MB of XML)."""
    block = b"<si><t>x</t></si>" * 10_000
    rows = [b'<row><c t="s"><v>0</v></c></row>']
    return workbook(rows, (block for _ in range(count // 10_000)))
