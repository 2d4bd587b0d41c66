"""Builders for office test files: real ones via python-docx/openpyxl, hostile ones by hand."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<lolz>&lol9;</lolz>\n"
)


def report_docx() -> bytes:
    """A report with a title, nested headings, a table between paragraphs, header, footer
    and a comment: every kind of block the docx parser handles."""
    from docx import Document

    doc = Document()
    doc.core_properties.title = "Quarterly report"
    doc.core_properties.author = "Ada Lovelace"
    doc.sections[0].header.paragraphs[0].text = "ACME confidential"
    doc.sections[0].footer.paragraphs[0].text = "Printed on recycled electrons"
    doc.add_heading("Quarterly report", level=0)
    doc.add_paragraph("This report covers the first quarter.")
    doc.add_heading("Sales", level=1)
    commented = doc.add_paragraph("Sales grew in every region.")
    doc.add_comment(commented.runs, text="Check the South figure.", author="Bob")
    table = doc.add_table(rows=3, cols=3)
    rows = [("Region", "Q1", "Q2"), ("North", "1200", "1350"), ("South", "900", "")]
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    doc.add_heading("By channel", level=2)
    doc.add_paragraph("Online sales doubled.")
    doc.add_paragraph("   ")  # empty paragraphs are skipped
    doc.add_heading("Risks", level=1)
    doc.add_paragraph("Supply chains remain fragile.")
    return _save(doc)


def budget_xlsx() -> bytes:
    """A workbook with a data sheet (blank row, dates, float noise), a header-only sheet
    and a chartsheet."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference

    wb = Workbook()
    ws = wb.active
    ws.title = "Budget"
    ws.append(["Region", "Q1", "Q2", "Updated"])
    ws.append(["North", 1200, 0.1 + 0.2, dt.datetime(2024, 3, 1)])
    ws.append([])
    ws.append(["South", 900.0, 1350.5])
    ws.append([None, None, "late"])
    wb.create_sheet("Names").append(["Ada", "Grace"])
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=4), titles_from_data=True)
    wb.create_chartsheet("Chart").add_chart(chart)
    return _save(wb)


def column_xlsx(header: str, texts: list[str]) -> bytes:
    """A one-sheet workbook: ``header`` over one text per row (a blank row for "")."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append([header])
    for text in texts:
        ws.append([text])
    return _save(wb)


def pdf_with_text(pages: list[list[str]]) -> bytes:
    """A PDF with one page per entry, each a list of text lines in Helvetica.

    Written by hand (pypdf cannot lay out text): catalog, page tree, font, and for every
    page a page object and its content stream, then the cross-reference table.
    """
    objects: list[bytes] = [b"", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        body = " T* ".join(f"({_pdf_escape(line)}) Tj" for line in lines)
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {body} ET".encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % content
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def encrypted_pdf(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    return _save(writer, method="write")


def encrypted_office(data: bytes, password: str = "secret") -> bytes:
    """``data`` (a docx or xlsx) encrypted the way Office does it: an OLE compound file."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def replace_member(data: bytes, member: str, content: bytes) -> bytes:
    """The same ZIP package with one part's content replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, content if info.filename == member else src.read(info))
    return out.getvalue()


def zip_bomb(member: str, size: int) -> bytes:
    """A package holding ``size`` bytes of zeros in ``member``, streamed so that memory
    never holds them (1 GiB compresses to about 1 MB)."""
    block = bytes(1 << 20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open(member, "w", force_zip64=True) as handle:
            for _ in range(size // len(block)):
                handle.write(block)
    return out.getvalue()


def _save(document: object, method: str = "save") -> bytes:
    out = io.BytesIO()
    getattr(document, method)(out)
    return out.getvalue()


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
