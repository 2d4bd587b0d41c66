"""Builders of damaged and hostile files, shared by the parser and sync tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<lolz>&lol9;</lolz>\n"
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


def pdf_bytes(text: str = "Hello PDF") -> bytes:
    """A minimal one-page PDF with real text, written by hand."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def replace_member(data: bytes, member: str, content: bytes) -> bytes:
    """The same OOXML package with one part replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, content if info.filename == member else src.read(info))
    return out.getvalue()


def zip_bomb(path: Path, member: str = "word/document.xml", gib: int = 1) -> None:
    """A docx-looking zip with a member of ``gib`` GiB of zeros (about 1 MB on disk)."""
    block = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open(member, "w", force_zip64=True) as handle:
            for _ in range(1024 * gib):
                handle.write(block)


def encrypted_docx(path: Path, password: str = "secret") -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(docx_bytes())
    with open(path, "wb") as out:
        OOXMLFile(plain).encrypt(password, out)


def write_hostile_set(folder: Path) -> dict[str, str]:
    """Write one file per kind of bad input; returns file name → what is wrong with it."""
    folder.mkdir(parents=True, exist_ok=True)
    good_docx = docx_bytes()
    good_xlsx = xlsx_bytes()
    cases = {
        "truncated.docx": good_docx[: len(good_docx) // 2],
        "truncated.xlsx": good_xlsx[: len(good_xlsx) // 2],
        "truncated.pdf": pdf_bytes()[:60],
        "actually-a-pdf.docx": pdf_bytes(),
        "xml-bomb.xlsx": replace_member(good_xlsx, "xl/workbook.xml", BILLION_LAUGHS.encode()),
        "xml-bomb.docx": replace_member(good_docx, "word/document.xml", BILLION_LAUGHS.encode()),
    }
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    encrypted_docx(folder / "encrypted.docx")
    zip_bomb(folder / "zip-bomb.docx")
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
