"""Builders of damaged and hostile files, shared by the parser and sync tests."""

from __future__ import annotations

import io
from pathlib import Path

from tests.fakes.builders_office import (
    BILLION_LAUGHS,
    encrypted_office,
    pdf_with_text,
    replace_member,
    zip_bomb,
)


def docx_bytes(text: str = "Quarterly report text.") -> bytes:
    from docx import Document

    doc = Document()
    doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Name", "Value"])
    wb.active.append(["a", 1])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def write_hostile_set(folder: Path) -> dict[str, str]:
    """Write one file per kind of bad input; returns file name → what is wrong with it."""
    folder.mkdir(parents=True, exist_ok=True)
    good_docx = docx_bytes()
    good_xlsx = xlsx_bytes()
    cases = {
        "truncated.docx": good_docx[: len(good_docx) // 2],
        "truncated.xlsx": good_xlsx[: len(good_xlsx) // 2],
        "truncated.pdf": pdf_with_text([["Hello PDF"]])[:60],
        "actually-a-pdf.docx": pdf_with_text([["Hello PDF"]]),
        "xml-bomb.xlsx": replace_member(good_xlsx, "xl/workbook.xml", BILLION_LAUGHS.encode()),
        "xml-bomb.docx": replace_member(good_docx, "word/document.xml", BILLION_LAUGHS.encode()),
    }
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    (folder / "encrypted.docx").write_bytes(encrypted_office(good_docx))
    (folder / "zip-bomb.docx").write_bytes(zip_bomb("word/document.xml", 1 << 30))
    with open(folder / "huge.pdf", "wb") as handle:
        handle.truncate(1024**3)
    return {
        "truncated.docx": "damaged",
        "truncated.xlsx": "damaged",
        "truncated.pdf": "damaged",
        "actually-a-pdf.docx": "not a Word document",
        "xml-bomb.xlsx": "entity",
        "xml-bomb.docx": "entity",
        "encrypted.docx": "encrypted",
        "zip-bomb.docx": "zip",
        "huge.pdf": "size cap",
    }


BROKEN_MAIL = {
    # A multipart message whose closing boundary never comes.
    "broken-mime.eml": (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: broken\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\n"
        b"The pelican budget survived the broken boundary.\r\n"
        b"--XY"
    ),
    "unknown-charset.eml": (
        b"From: a@example.com\nSubject: charset\nContent-Type: text/plain; charset=x-klingon-42\n\n"
        b"The walrus invoice is due on Monday.\n"
    ),
    "cr-only.eml": (
        b"From: a@example.com\rSubject: old mac\r\rThe flamingo report uses CR line endings.\r"
    ),
}
