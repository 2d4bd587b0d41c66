"""PDF files: one element per page, because a page is what a PDF citation can open.

pypdf extracts the text, in reading order even where a producer wrote a multi-column page
line by line across its columns (``pdf_layout.page_text``: pdfminer.six's layout analysis
reads those pages); we tidy what extraction
leaves behind (words split by a hyphen at a line end, runs of spaces, stray control
characters) and join the lines of each sentence (``pdf_layout.reflow``), so the chunker
cuts between sentences rather than at the typesetter's line breaks. A PDF with an owner
password only (it opens without asking) is decrypted with the empty password, as every
viewer does; one that needs a user password is reported as encrypted.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from connectors.parsers.pdf_layout import page_text, reflow
from connectors.parsers.safety import DAMAGE_ERRORS
from connectors.types import Element, Parsed, ParseError

MAX_PAGES = 5_000

# pypdf logs every oddity it repairs as a warning; damaged-but-readable PDFs are common
# enough that this would drown the sync log. Real failures still surface as ParseError.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_HYPHEN_BREAK = re.compile(r"(\w)-\n[ \t]*([a-zß-ÿ])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_OBJECT_HEAD = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse_pdf(data: bytes, name: str) -> Parsed:
    """Parse a PDF into one page element per page that has text."""
    from pypdf.errors import PyPdfError

    damage: tuple[type[Exception], ...] = (PyPdfError, *DAMAGE_ERRORS)
    try:
        reader, repaired = _open(data)
        _unlock(reader, name)
        count = len(reader.pages)
    except ParseError:
        raise
    except damage as exc:
        raise ParseError(f"{name} is damaged: {type(exc).__name__}: {exc}") from exc

    elements: list[Element] = []
    unreadable = 0
    labels = _page_labels(reader, count)
    for index in range(min(count, MAX_PAGES)):
        try:
            raw = page_text(reader.pages[index], data, index)
        except damage:
            unreadable += 1  # one bad page should not cost us the rest of the document
            continue
        text = reflow(clean_text(raw))
        if not text:
            continue
        locator: dict[str, Any] = {"page": index + 1}
        if labels and labels[index] != str(index + 1):
            locator["label"] = labels[index]
        elements.append(Element(text, locator, kind="page"))

    if count and unreadable == min(count, MAX_PAGES):
        raise ParseError(f"{name} is damaged: none of its {count} pages could be read")
    meta: dict[str, Any] = {"pages": count, **_document_meta(reader)}
    if repaired:
        meta["repaired"] = "no cross-reference table; objects found by scanning the file"
    if count > MAX_PAGES:
        meta["truncated"] = f"read the first {MAX_PAGES:,} of {count:,} pages"
    if unreadable:
        meta["unreadable_pages"] = unreadable
    display = "\n\n".join(e.text for e in elements)
    return Parsed(elements=elements, display_text=display, meta=meta)


def _open(data: bytes) -> tuple[Any, bool]:
    """A reader for ``data``, and whether it needed repair.

    Hand-written and truncated PDFs often lack the cross-reference table and trailer at
    the end. pypdf rebuilds the table by scanning for objects, but only once it has a
    ``startxref`` pointer to reject and a trailer naming the catalog, so we supply both.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        return PdfReader(io.BytesIO(data)), False
    except PdfReadError:
        tail = data[-4096:]
        if b"startxref" in tail:
            raise
        trailer = b""
        if b"trailer" not in tail and (root := _catalog_reference(data)):
            trailer = b"\ntrailer\n<< /Root " + root + b" >>"
        return PdfReader(io.BytesIO(data + trailer + b"\nstartxref\n0\n%%EOF\n")), True


def _catalog_reference(data: bytes) -> bytes | None:
    """``N G R`` for the last object that declares itself the document catalog."""
    at = data.rfind(b"/Catalog")
    if at < 0:
        return None
    heads = list(_OBJECT_HEAD.finditer(data, max(0, at - 4096), at))
    return b"%s %s R" % heads[-1].groups() if heads else None


def clean_text(raw: str) -> str:
    """Undo the line-end artefacts of PDF text extraction."""
    text = _CONTROL.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _unlock(reader: Any, name: str) -> None:
    from pypdf import PasswordType

    if not reader.is_encrypted:
        return
    try:
        result = reader.decrypt("")
    except Exception as exc:  # pypdf raises DependencyError, NotImplementedError, ...
        raise ParseError(f"{name} is encrypted and cannot be opened ({exc})") from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise ParseError(
            f"{name} is encrypted (password-protected); remove the password to index it"
        )


def _page_labels(reader: Any, count: int) -> list[str]:
    try:
        labels = list(reader.page_labels)
    except Exception:  # labels are a nicety; a broken label tree must not fail the file
        return []
    return labels if len(labels) == count else []


def _document_meta(reader: Any) -> dict[str, Any]:
    try:
        info = reader.metadata
    except Exception:
        return {}
    meta = {}
    if info:
        for key, attr in (("title", "title"), ("author", "author"), ("subject", "subject")):
            try:
                value = getattr(info, attr)
            except Exception:
                continue
            if isinstance(value, str) and value.strip():
                meta[key] = value.strip()
    return meta
