"""Check that a file's bytes are what its name says, and are safe to hand to a parser.

Runs before every parser, so a PDF renamed ``.docx``, a password-protected workbook or a
hostile archive gets a plain-words ``ParseError`` instead of a confusing failure (or a
hang, or an out-of-memory kill) from deep inside python-docx, openpyxl or pypdf.

Everything here is bounded: ZIP checks read the central directory and at most a few KB of
each XML part, never a whole member. ``zipfile`` itself stops every member at the size the
central directory declares, so once those sizes pass the caps below, no parser reading
through ``zipfile`` can decompress more than the caps allow.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
import zlib

from lxml import etree

from connectors.types import ParseError

# What python-docx, openpyxl, pypdf, zipfile and lxml raise on damaged input (found by
# running them over real and mutated files). Parsers turn these into ParseError; anything
# else is a bug of ours and should surface as one.
DAMAGE_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    etree.LxmlError,
    SyntaxError,  # includes xml.etree.ElementTree.ParseError
    KeyError,
    IndexError,
    ValueError,  # includes UnicodeDecodeError and defusedxml's refusals
    TypeError,
    AttributeError,
    NotImplementedError,  # unsupported compression, encryption or filter
    AssertionError,
    RecursionError,
    EOFError,
    OSError,
)
ZIP_ERRORS: tuple[type[Exception], ...] = (*DAMAGE_ERRORS, zipfile.LargeZipFile)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
PDF = "application/pdf"
MSG = "application/vnd.ms-outlook"
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/html", "text/csv"})

MAX_TOTAL_UNCOMPRESSED = 512 * 1024 * 1024
MAX_MEMBER_UNCOMPRESSED = 256 * 1024 * 1024
MAX_RATIO = 200
RATIO_MIN_SIZE = 16 * 1024 * 1024  # small parts may compress very well; only large ones count
MAX_MEMBERS = 10_000
MAX_TEXT_BYTES = 100 * 1024 * 1024
PROLOG_LIMIT = 64 * 1024  # an XML part's prolog (before the root element) longer than this
CHUNK = 4096

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# What a format is called in messages, and what its bytes look like when it is something else.
_FORMAT_NAMES = {
    DOCX: "a Word document",
    XLSX: "an Excel workbook",
    XLSM: "an Excel workbook",
    PDF: "a PDF",
    MSG: "an Outlook message",
}
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (OLE_MAGIC, "a legacy binary Office file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "a program"),
)
# Office Open XML packages say what they are by their top-level folder.
_PACKAGE_FOLDERS = {"word/": "a Word document", "xl/": "an Excel workbook", "ppt/": "a PowerPoint"}

# The prolog is what may precede an XML root element: declaration, PIs, comments, space.
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def check_container(data: bytes, name: str, media_type: str) -> None:
    """Raise ``ParseError`` unless ``data`` is plausibly a ``media_type`` file and safe to parse."""
    if not data:
        raise ParseError(f"{name} is empty")
    if media_type in (DOCX, XLSX, XLSM):
        _check_ooxml(data, name, media_type)
    elif media_type == PDF:
        if b"%PDF" not in data[:1024]:
            raise ParseError(f"{name} is not a PDF: its content looks like {describe(data)}")
    elif media_type == MSG:
        if not data.startswith(OLE_MAGIC):
            raise ParseError(
                f"{name} is not an Outlook .msg file: its content looks like {describe(data)}"
            )
    elif media_type in TEXT_TYPES:
        _check_text(data, name)


def describe(data: bytes) -> str:
    """Name what ``data`` looks like from its first bytes, for error messages."""
    head = data[:1024]
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if b"%PDF" in head:
        return "a PDF"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if stripped.startswith(b"<"):
        return "XML or HTML text"
    if b"\x00" not in head:
        return "plain text"
    return "binary data of an unknown kind"


def _check_ooxml(data: bytes, name: str, media_type: str) -> None:
    expected = _FORMAT_NAMES[media_type]
    if data.startswith(OLE_MAGIC):
        _check_ole(data, name)
    if not data.startswith(ZIP_MAGIC):
        raise ParseError(f"{name} is not {expected}: its content looks like {describe(data)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as exc:
        raise ParseError(f"{name} is damaged: it is not a readable ZIP package ({exc})") from exc
    with archive:
        infos = archive.infolist()
        _check_zip_directory(infos, name)
        _check_package_kind(infos, name, expected)
        for info in infos:
            _check_xml_member(archive, info, name)


def _check_ole(data: bytes, name: str) -> None:
    """An OLE file where OOXML was expected: either encrypted OOXML or a legacy .doc/.xls."""
    import olefile

    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            encrypted = ole.exists("EncryptionInfo") or ole.exists("EncryptedPackage")
    except Exception as exc:  # olefile raises many kinds on damaged input
        raise ParseError(f"{name} is damaged: unreadable compound file ({exc})") from exc
    if encrypted:
        raise ParseError(
            f"{name} is encrypted (password-protected); remove the password to index it"
        )
    raise ParseError(f"{name} is a legacy binary Office file (.doc/.xls), not supported")


def _check_zip_directory(infos: list[zipfile.ZipInfo], name: str) -> None:
    """Reject archives whose central directory promises more than any real document needs."""
    if len(infos) > MAX_MEMBERS:
        raise ParseError(f"{name} has too many parts ({len(infos)}; limit {MAX_MEMBERS})")
    total = 0
    seen: set[str] = set()
    for info in infos:
        total += info.file_size
        if info.file_size > MAX_MEMBER_UNCOMPRESSED:
            raise ParseError(
                f"{name} looks like a zip bomb: part {info.filename!r} unpacks to "
                f"{info.file_size // 2**20:,} MiB (limit {MAX_MEMBER_UNCOMPRESSED // 2**20} MiB)"
            )
        if total > MAX_TOTAL_UNCOMPRESSED:
            raise ParseError(
                f"{name} looks like a zip bomb: it unpacks to more than "
                f"{MAX_TOTAL_UNCOMPRESSED // 2**20} MiB"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_SIZE and ratio > MAX_RATIO:
            raise ParseError(
                f"{name} looks like a zip bomb: part {info.filename!r} is compressed "
                f"{ratio:.0f}:1 (limit {MAX_RATIO}:1)"
            )
        # Part names are case-insensitive in OPC; two entries with one name let a checker
        # and a parser see different content.
        key = info.filename.lower()
        if key in seen:
            raise ParseError(f"{name} is malformed: part {info.filename!r} appears twice")
        seen.add(key)
    # Overlapping entries (several names sharing one compressed stream) are how the
    # smallest, deadliest zip bombs are built; a real package never has them.
    by_offset = sorted(infos, key=lambda i: i.header_offset)
    for this, after in itertools.pairwise(by_offset):
        if this.header_offset + 30 + this.compress_size > after.header_offset:
            raise ParseError(f"{name} looks like a zip bomb: its parts overlap")


def _check_package_kind(infos: list[zipfile.ZipInfo], name: str, expected: str) -> None:
    names = [info.filename for info in infos]
    if "[Content_Types].xml" not in names:
        raise ParseError(
            f"{name} is not {expected}: it is a ZIP archive, not an Office Open XML package"
        )
    kinds = {
        what
        for folder, what in _PACKAGE_FOLDERS.items()
        if any(n.startswith(folder) for n in names)
    }
    if kinds and expected not in kinds:
        raise ParseError(f"{name} is not {expected}: its content looks like {sorted(kinds)[0]}")


def _check_xml_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """Reject a DTD in any XML part: OOXML never has one, and entity bombs need one.

    Only the prolog (what precedes the root element) is read, a few KB at a time, so a
    DTD hidden behind padding comments is found without reading the whole part.
    """
    if info.is_dir() or info.file_size == 0:
        return
    named_xml = info.filename.lower().endswith((".xml", ".rels", ".vml"))
    try:
        with archive.open(info) as member:
            prolog = member.read(CHUNK)
            if not named_xml and not _normalise(prolog).lstrip().startswith(b"<"):
                return  # images and other binaries: no parser reads them as XML
            while (verdict := _prolog_verdict(prolog)) is None:
                more = member.read(CHUNK) if len(prolog) < PROLOG_LIMIT else b""
                if not more:
                    verdict = "long" if len(prolog) >= PROLOG_LIMIT else "ok"
                    break
                prolog += more
    except DAMAGE_ERRORS as exc:
        raise ParseError(
            f"{name} is damaged: part {info.filename!r} is unreadable ({exc})"
        ) from exc
    except RuntimeError as exc:  # zipfile's way of saying a member is encrypted
        raise ParseError(f"{name} is encrypted: part {info.filename!r} needs a password") from exc
    part = f"part {info.filename!r}"
    if verdict == "dtd":
        raise ParseError(
            f"{name} is unsafe: {part} contains a DTD (<!DOCTYPE>), the way XML entity bombs "
            "are built; Office files never have one"
        )
    if verdict == "long":
        raise ParseError(f"{name} is unsafe: {part} starts with over 64 KB of XML preamble")
    if verdict == "garbled":
        raise ParseError(f"{name} is damaged: {part} is not well-formed XML")


def _normalise(head: bytes) -> bytes:
    """The bytes of an XML prolog as ASCII-compatible text, whatever its encoding."""
    if head.startswith(b"\x4c\x6f\xa7\x94"):  # '<?xm' in EBCDIC, which libxml2 reads
        return head.decode("cp500").encode("ascii", "replace")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    # UTF-16 and UTF-32 interleave NULs with ASCII; dropping them leaves the markup readable.
    return head.replace(b"\x00", b"").lstrip(b"\xff\xfe")


def _prolog_verdict(raw: bytes) -> str | None:
    """What the prolog holds: "ok" (the root element starts, no DTD before it), "dtd",
    "garbled" (anything else, such as UTF-7 markup hiding a DTD), or None: read more."""
    text = _normalise(raw)
    pos = 0
    while (match := _PROLOG_ITEM.match(text, pos)) and match.end() > pos:
        pos = match.end()
    rest = text[pos:]
    if rest[:9].upper() in (b"<!DOCTYPE", b"<!ENTITY "):
        return "dtd"
    if rest[:1] == b"<" and (rest[1:2].isalpha() or rest[1:2] in (b"_", b":")):
        return "ok"
    if len(rest) < 9 or rest.startswith((b"<?", b"<!--")):
        return None  # too short to tell, or a PI or comment not yet closed
    return "garbled"


def _check_text(data: bytes, name: str) -> None:
    if len(data) > MAX_TEXT_BYTES:
        raise ParseError(
            f"{name} is too large to index as text ({len(data) // 2**20} MiB; "
            f"limit {MAX_TEXT_BYTES // 2**20} MiB)"
        )
    what = describe(data)
    if what not in (
        "plain text",
        "an HTML page",
        "XML or HTML text",
        "binary data of an unknown kind",
    ):
        raise ParseError(f"{name} is not a text file: its content looks like {what}")
