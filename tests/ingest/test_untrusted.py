"""Files from users are read one way: size first, then container checks and the parser (or
a named reader) in a sandboxed worker with a memory limit and a deadline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.parsers.safety import XLSX
from connectors.types import ParseError
from copilot.ingest.untrusted import (
    MAX_CELLS,
    FileTooLarge,
    UntrustedFileError,
    check_spreadsheet,
    read_untrusted,
    run_untrusted,
)
from tests.fakes.hostile import docx_bytes, xlsx_bytes
from tests.hostile.workbooks import many_strings, million_cells


def test_a_file_is_parsed_in_the_sandbox(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(docx_bytes("Revenue rose 12% in Q3."))
    parsed = read_untrusted(path, path.name, max_bytes=10**6)
    assert [e.text for e in parsed.elements] == ["Revenue rose 12% in Q3."]
    assert read_untrusted(xlsx_bytes(), "book.xlsx", max_bytes=10**6).elements


def test_size_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(FileTooLarge, match=r"big\.txt is 0\.0 MB, over the 0\.00\d+ MB limit"):
        read_untrusted(path, "big.txt", max_bytes=1024)
    with pytest.raises(FileTooLarge) as info:
        read_untrusted(b"x" * 2048, "big.txt", max_bytes=1024)
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"%PDF-1.4 not really", "notes.docx", "notes.docx is not a Word document"),
        (b"PK\x03\x04 torn", "book.xlsx", "book.xlsx is damaged"),
        (b"", "empty.txt", "empty.txt is empty"),
        (b"hello", "tool.exe", "tool.exe: this file type is not supported"),
    ],
)
def test_the_container_is_checked_before_any_parser(data: bytes, name: str, message: str) -> None:
    with pytest.raises(UntrustedFileError, match=message):
        read_untrusted(data, name, max_bytes=10**6)


def test_a_workbook_over_the_cell_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ParseError, match=f"more than {MAX_CELLS:,} cells"):
        check_spreadsheet(million_cells(b"<c><v>1</v></c>"), "cells.xlsx")
    with pytest.raises(ParseError, match=f"more than {MAX_CELLS:,} shared strings"):
        check_spreadsheet(many_strings(900_000), "strings.xlsx")
    started = time.monotonic()
    with pytest.raises(UntrustedFileError, match=r"cells\.xlsx has more than"):
        read_untrusted(million_cells(b"<c><v>1</v></c>"), "cells.xlsx", max_bytes=10**7)
    assert time.monotonic() - started < 10


def sleep_reader(data: bytes, name: str, seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def grab_reader(data: bytes, name: str, megabytes: int) -> int:
    return len(bytearray(megabytes * 2**20))


def test_a_reader_runs_in_the_worker_with_a_deadline_and_a_memory_limit() -> None:
    txt = "text/plain"
    assert run_untrusted(sleep_reader, b"hi", "a.txt", 0.0, max_bytes=10, media_type=txt) == "done"
    started = time.monotonic()
    with pytest.raises(UntrustedFileError, match=r"a\.txt: parsing took longer than 1 s"):
        run_untrusted(sleep_reader, b"hi", "a.txt", 30.0, max_bytes=10, media_type=txt,
                      timeout_s=1.0)  # fmt: skip
    assert time.monotonic() - started < 5
    with pytest.raises(UntrustedFileError, match="needs more than 300 MB"):
        run_untrusted(grab_reader, b"hi", "a.txt", 600, max_bytes=10, media_type=txt,
                      memory_mb=300)  # fmt: skip


def test_a_reader_never_sees_a_file_that_fails_the_container_checks() -> None:
    with pytest.raises(UntrustedFileError, match="is not an Excel workbook"):
        run_untrusted(sleep_reader, b"plain text", "fake.xlsx", 0.0, max_bytes=100,
                      media_type=XLSX)  # fmt: skip
