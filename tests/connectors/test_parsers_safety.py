"""Container checks: disguised, encrypted and hostile files are refused fast and by name.

The bombs here are real: a 1 GiB member, a billion-laughs DTD. The checks must refuse them
from the ZIP directory and a few KB of each part, so each test also bounds time or memory.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import pytest

from connectors.parsers import DOCX, XLSX, parse
from connectors.parsers.safety import check_container
from connectors.types import ParseError
from tests.fakes.builders_office import (
    BILLION_LAUGHS,
    budget_xlsx,
    encrypted_office,
    pdf_with_text,
    replace_member,
    report_docx,
    zip_bomb,
)


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    return zip_bomb("xl/worksheets/sheet1.xml", 1 << 30)  # takes a few seconds to build


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()


# --- bombs -------------------------------------------------------------------------------


def test_gigabyte_zip_bomb_is_refused_fast_in_little_memory(gigabyte_bomb):
    assert len(gigabyte_bomb) < 5 * 2**20  # what arrives is small...
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ParseError, match=r"bomb\.xlsx looks like a zip bomb"):
        parse(gigabyte_bomb, "bomb.xlsx")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert elapsed < 0.5
    assert peak < 2 * len(gigabyte_bomb) + 2**20  # ...and is never unpacked


def test_highly_compressed_part_is_refused_even_under_the_size_cap():
    data = zip_bomb("word/document.xml", 32 << 20)  # 32 MiB at about 1000:1
    with pytest.raises(ParseError, match=r"dense\.docx looks like a zip bomb: .* compressed"):
        parse(data, "dense.docx")


def test_total_unpacked_size_is_capped(monkeypatch):
    from connectors.parsers import safety

    monkeypatch.setattr(safety, "MAX_TOTAL_UNCOMPRESSED", 3 << 20)
    parts = {f"word/media/{i}.bin": bytes(1 << 20) for i in range(4)}
    data = zip_of({"[Content_Types].xml": b"<Types/>", **parts})
    with pytest.raises(ParseError, match="unpacks to more than 3 MiB"):
        check_container(data, "many.docx", DOCX)


def test_billion_laughs_in_a_workbook_is_refused():
    data = replace_member(budget_xlsx(), "xl/workbook.xml", BILLION_LAUGHS.encode())
    with pytest.raises(ParseError, match=r"laughs\.xlsx is unsafe: .*entity bombs"):
        parse(data, "laughs.xlsx")


def test_billion_laughs_in_a_document_is_refused():
    data = replace_member(report_docx(), "word/document.xml", BILLION_LAUGHS.encode())
    with pytest.raises(ParseError, match=r"laughs\.docx is unsafe: .*DOCTYPE"):
        parse(data, "laughs.docx")


@pytest.mark.parametrize(
    "xml",
    [
        # Padding pushes the DTD past any fixed-size peek.
        b'<?xml version="1.0"?>\n<!--' + b"x" * 20_000 + b"-->\n" + BILLION_LAUGHS.encode()[22:],
        # UTF-16 hides the ASCII marker from a naive byte search.
        BILLION_LAUGHS.replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"),
        # A part with no .xml extension, which a relationship may still point at.
    ],
)
def test_dtd_is_found_behind_padding_and_in_utf16(xml):
    data = replace_member(report_docx(), "word/styles.xml", xml)
    with pytest.raises(ParseError, match=r"sly\.docx is unsafe"):
        check_container(data, "sly.docx", DOCX)


def test_dtd_in_a_part_without_xml_extension_is_refused():
    data = zip_of({"[Content_Types].xml": b"<Types/>", "word/document": BILLION_LAUGHS.encode()})
    with pytest.raises(ParseError, match="DOCTYPE"):
        check_container(data, "sly.docx", DOCX)


def test_utf7_markup_before_the_root_is_refused():
    xml = b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x+AD4-<x/>'
    data = replace_member(report_docx(), "word/styles.xml", xml)
    with pytest.raises(ParseError, match="not well-formed XML"):
        check_container(data, "sly.docx", DOCX)


def test_too_many_parts_is_refused():
    data = zip_of({"[Content_Types].xml": b"<Types/>"} | {f"word/p{i}": b"" for i in range(10_001)})
    with pytest.raises(ParseError, match=r"many\.docx has too many parts"):
        check_container(data, "many.docx", DOCX)


def test_duplicate_part_names_are_refused():
    with pytest.warns(UserWarning, match="Duplicate name"):
        buffer = io.BytesIO(zip_of({"[Content_Types].xml": b"<Types/>", "word/x.xml": b"<a/>"}))
        with zipfile.ZipFile(buffer, "a") as zf:
            zf.writestr("word/x.xml", b"<b/>")
    data = buffer.getvalue()
    with pytest.raises(ParseError, match="appears twice"):
        check_container(data, "twice.docx", DOCX)
    # Part names are case-insensitive in OPC, so a change of case is no escape.
    data = zip_of({"[Content_Types].xml": b"<Types/>", "word/x.xml": b"<a/>", "WORD/X.xml": b""})
    with pytest.raises(ParseError, match="appears twice"):
        check_container(data, "twice.docx", DOCX)


def test_overlapping_parts_are_refused():
    """Several directory entries sharing one compressed stream: the densest zip bombs."""
    data = bytearray(zip_of({"[Content_Types].xml": b"<Types/>", "word/a.xml": b"<a/>" * 100}))
    directory = [i for i in range(len(data)) if data[i : i + 4] == b"PK\x01\x02"]
    data[directory[1] + 42 : directory[1] + 46] = (0).to_bytes(4, "little")  # point at part 1
    with pytest.raises(ParseError, match="parts overlap"):
        check_container(bytes(data), "overlap.docx", DOCX)


# --- disguises ---------------------------------------------------------------------------


def test_encrypted_workbook_is_named_as_encrypted():
    with pytest.raises(ParseError) as caught:
        check_container(encrypted_office(budget_xlsx()), "pay.xlsx", XLSX)
    assert str(caught.value) == (
        "pay.xlsx is encrypted (password-protected); remove the password to index it"
    )


def test_legacy_binary_office_file_is_named_as_unsupported():
    # An OLE compound file without the streams of an encrypted package: what a .doc or
    # .xls renamed .docx or .xlsx looks like. Renaming the streams makes one.
    data = encrypted_office(report_docx())
    for stream in ("EncryptionInfo", "EncryptedPackage"):
        data = data.replace(stream.encode("utf-16-le"), ("X" + stream[1:]).encode("utf-16-le"))
    with pytest.raises(ParseError, match=r"old\.docx is a legacy binary Office file"):
        parse(data, "old.docx")


def test_zip_that_is_not_an_office_package_is_refused():
    data = zip_of({"photos/cat.jpg": b"\xff\xd8\xff" + bytes(10)})
    with pytest.raises(ParseError, match=r"cats\.xlsx is not an Excel workbook: it is a ZIP"):
        check_container(data, "cats.xlsx", XLSX)


def test_word_document_named_xlsx_says_what_it_is():
    with pytest.raises(ParseError, match=r"not an Excel workbook: .* a Word document"):
        check_container(report_docx(), "numbers.xlsx", XLSX)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.docx", "empty.docx is empty"),
        (b"<html><body>Sign in</body></html>", "page.docx", "looks like an HTML page"),
        (b"just text", "notes.pdf", "notes.pdf is not a PDF: its content looks like plain text"),
        (b"PK\x03\x04 not really a zip", "cut.docx", "cut.docx is damaged"),
    ],
)
def test_disguised_or_empty_files_get_a_plain_reason(data, name, message):
    with pytest.raises(ParseError, match=message):
        parse(data, name)


def test_pdf_header_may_follow_some_junk():
    data = b"\r\n" * 10 + pdf_with_text([["Late header"]])
    check_container(data, "late.pdf", "application/pdf")  # no error: viewers accept this


def test_real_files_pass():
    check_container(report_docx(), "report.docx", DOCX)
    check_container(budget_xlsx(), "budget.xlsx", XLSX)
