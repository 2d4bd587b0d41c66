"""Turn an item's bytes into Elements: one entry point, one parser module per format.

``parse`` picks the parser from the media type (or the file name's extension when the
media type is generic) and first checks that the bytes really are what the name says,
so a PDF renamed ``.docx`` gets a clear error instead of a confusing one from deep inside
a library. Every parser raises ``ParseError`` with a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from connectors.types import Parsed, ParseError

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
PDF = "application/pdf"
EML = "message/rfc822"
MSG = "application/vnd.ms-outlook"

MEDIA_TYPES: dict[str, str] = {
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".xlsm": XLSM,
    ".pdf": PDF,
    ".eml": EML,
    ".msg": MSG,
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".csv": "text/csv",
}
MAIL_TYPES = frozenset({EML, MSG})


def media_type_for(name: str) -> str | None:
    """The media type we parse a file of this name as, or None if we do not support it."""
    return MEDIA_TYPES.get(PurePath(name).suffix.lower())


def _parser_for(media_type: str) -> Callable[[bytes, str], Parsed]:
    # Imported lazily: a parse worker only pays for the libraries of the formats it sees.
    if media_type == DOCX:
        from connectors.parsers.docx import parse_docx

        return parse_docx
    if media_type in (XLSX, XLSM):
        from connectors.parsers.xlsx import parse_xlsx

        return parse_xlsx
    if media_type == PDF:
        from connectors.parsers.pdf import parse_pdf

        return parse_pdf
    if media_type == EML:
        from connectors.parsers.mail import parse_eml

        return parse_eml
    if media_type == MSG:
        from connectors.parsers.mail import parse_msg

        return parse_msg
    if media_type in ("text/plain", "text/markdown", "text/html", "text/csv"):
        from connectors.parsers.text import parse_text

        return lambda data, name: parse_text(data, name, media_type)
    raise ParseError(f"unsupported file type {media_type!r}")


def parse(data: bytes, name: str, media_type: str | None = None) -> Parsed:
    """Parse ``data`` (the bytes of a file called ``name``) into Elements.

    Raises ``ParseError`` for unsupported, damaged, encrypted or hostile input.
    """
    from connectors.parsers.safety import check_container

    if not media_type or media_type == "application/octet-stream":
        media_type = media_type_for(name)
    if media_type is None:
        raise ParseError(f"unsupported file type: {PurePath(name).suffix or 'no extension'}")
    check_container(data, name, media_type)
    return _parser_for(media_type)(data, name)
