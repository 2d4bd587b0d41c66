"""Plain text, Markdown, HTML and CSV: the formats that are text before they are anything else.

Decoding comes first and is shared: a byte-order mark wins, then UTF-8, then
charset-normalizer's guess (files from older Windows tools are often cp1252). Then each
format is split the way a reader sees it: paragraphs for prose, heading paths for Markdown
and HTML, rows with their header for CSV.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from connectors.types import Element, Parsed, ParseError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
MAX_CSV_ROWS = 1_048_576  # Excel's own limit: nobody expects more rows than Excel opens
MAX_CSV_FIELD = 16 * 1024 * 1024
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINE_END = re.compile(r"\r\n?|\n")
_DROP_TAGS = ("script", "style", "head", "noscript", "template", "svg", "iframe", "object")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Tags that end a paragraph of running text (inline tags such as <b> and <a> do not).
_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div"}
    | {"dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr"}
    | {"html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "ul"}
)


def parse_text(data: bytes, name: str, media_type: str) -> Parsed:
    """Parse a text/plain, text/markdown, text/html or text/csv file."""
    if media_type == "text/html":
        return _parse_html(data, name)
    text = decode(data, name)
    if media_type == "text/csv":
        return _parse_csv(text, name)
    return _parse_prose(text, markdown=media_type == "text/markdown")


def split_lines(text: str) -> list[str]:
    """``text`` cut into lines at ``\n``, ``\r\n`` or ``\r`` only (the line ends ``open()``
    reads in text mode), with no empty line after a final line end.

    Why not ``str.splitlines``: it also cuts at U+0085 (NEL), U+2028/2029, vertical tab,
    form feed and the \x1c-\x1e separators, which occur inside real sentences: one NEL in a
    UCI review split a ``sentence<TAB>label`` line in two and the reader refused the file.
    """
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def decode(data: bytes, name: str) -> str:
    """Bytes to text: BOM, then UTF-8, then a detected legacy encoding."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    # Detection looks at a sample; decoding a long file twice to guess would be wasted work.
    best = from_bytes(data[:1_000_000]).best()
    if best is None:
        raise ParseError(f"{name} is not readable text: its character encoding is unknown")
    encoding = best.encoding
    if not is_multi_byte_encoding(encoding) and _prefer_cp1252(data[:1_000_000], encoding):
        encoding = "cp1252"
    return data.decode(encoding, errors="replace")


_WESTERN_MARKS = frozenset("“”‘’„–—€…«»°§£¥©®™·•")


def _prefer_cp1252(sample: bytes, guess: str) -> bool:
    """Whether Windows-1252 reads ``sample`` at least as well as the detector's guess.

    On short texts charset-normalizer cannot tell apart the single-byte Latin code pages
    (French cp1252 comes out as Central European cp1250: "crčme"), yet cp1252 is what
    Excel and Notepad write in Western Europe and America. We take cp1252 when it decodes
    cleanly, the text is mostly ASCII letters (so a Western language, not misread
    Cyrillic), and it yields no fewer plausible characters than the guess.
    """
    try:
        western = sample.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = [c for c in western if c.isalpha()]
    if not letters or sum(not c.isascii() for c in letters) > 0.3 * len(letters):
        return False

    def plausible(text: str) -> int:
        return sum(1 for c in text if not c.isascii() and (c.isalpha() or c in _WESTERN_MARKS))

    return plausible(western) >= plausible(sample.decode(guess, errors="replace"))


# --- plain text and Markdown -------------------------------------------------------------


def _parse_prose(text: str, markdown: bool) -> Parsed:
    elements: list[Element] = []
    path: list[tuple[int, str]] = []
    for index, (line, block) in enumerate(_blocks(split_lines(text), markdown)):
        heading = _heading(block) if markdown else None
        section = tuple(t for _, t in path)
        if heading:
            level, title = heading
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, title))
            section = tuple(t for _, t in path)
            head = {"section": " > ".join(section), "paragraph": index, "line": line}
            elements.append(Element(title, head, kind="heading", section=section))
            continue
        locator: dict[str, Any] = {"paragraph": index, "line": line}
        if section:
            locator = {"section": " > ".join(section), **locator}
        elements.append(Element(block, locator, kind="paragraph", section=section))
    return Parsed(elements=elements, display_text=text.strip())


def _blocks(lines: list[str], markdown: bool) -> Iterator[tuple[int, str]]:
    """(1-based first line, text) of each blank-line separated block.

    In Markdown a fenced code block is one block, blank lines and '#' comments included,
    and an ATX heading is a block of its own even without blank lines around it.
    """
    start, buffer, fence = 0, [], ""
    for number, line in enumerate(lines, start=1):
        if markdown and fence:
            buffer.append(line)
            if line.strip().startswith(fence):
                fence = ""
            continue
        if markdown and (match := _FENCE.match(line)):
            fence = match.group(1)[0] * 3
            if not buffer:
                start = number
            buffer.append(line)
            continue
        if markdown and _ATX.match(line):
            if buffer:
                yield start, "\n".join(buffer).strip()
            yield number, line.strip()
            buffer = []
            continue
        if line.strip():
            if not buffer:
                start = number
            buffer.append(line)
        elif buffer:
            yield start, "\n".join(buffer).strip()
            buffer = []
    if buffer:
        yield start, "\n".join(buffer).strip()


def _heading(block: str) -> tuple[int, str] | None:
    """(level, title) if a Markdown block is an ATX or a one-line setext heading."""
    lines = block.split("\n")
    if len(lines) == 1 and (match := _ATX.match(lines[0])):
        title = (match.group(2) or "").strip()
        return (len(match.group(1)), title) if title else None
    if len(lines) == 2 and (match := _SETEXT.match(lines[1])) and lines[0].strip():
        return (1 if match.group(1)[0] == "=" else 2), lines[0].strip()
    return None


# --- HTML --------------------------------------------------------------------------------


def _parse_html(data: bytes, name: str) -> Parsed:
    from bs4 import BeautifulSoup, NavigableString, Tag

    try:
        # Bytes, not text: BeautifulSoup honours the page's own <meta charset>.
        soup = BeautifulSoup(data, "lxml")
    except Exception as exc:  # bs4 and lxml disagree on which errors they raise
        raise ParseError(f"{name} is not readable HTML ({type(exc).__name__}: {exc})") from exc
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.extract()

    elements: list[Element] = []
    path: list[tuple[int, str]] = []
    buffer: list[str] = []
    tables = 0

    def where() -> tuple[tuple[str, ...], dict[str, Any]]:
        section = tuple(t for _, t in path)
        return section, ({"section": " > ".join(section)} if section else {})

    def flush() -> None:
        text = " ".join(" ".join(buffer).split())
        buffer.clear()
        if text:
            section, locator = where()
            locator = {**locator, "paragraph": len(elements)}
            elements.append(Element(text, locator, kind="paragraph", section=section))

    # An explicit stack, not recursion: hostile pages nest tags thousands deep.
    stack: list[tuple[Any, Any]] = [(soup, iter(soup.children))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if getattr(node, "name", None) in _BLOCK_TAGS:
                flush()
            continue
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a comment, doctype or CDATA
                buffer.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        if child.name in _HEADINGS:
            flush()
            text = child.get_text(" ", strip=True)
            if text:
                level = _HEADINGS[child.name]
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, text))
                section, locator = where()
                locator = {**locator, "paragraph": len(elements)}
                elements.append(Element(text, locator, kind="heading", section=section))
        elif child.name == "table":
            flush()
            elements += _html_table(child, tables, *where())
            tables += 1
        else:
            if child.name in _BLOCK_TAGS:
                flush()
            stack.append((child, iter(child.children)))
    flush()
    display = "\n\n".join(e.text for e in elements)
    return Parsed(elements=elements, display_text=display, meta={"title": title} if title else {})


def _html_table(
    table: Any, number: int, section: tuple[str, ...], where: dict[str, Any]
) -> list[Element]:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # a nested table's rows: their text is in the enclosing cell
        cells = [
            " ".join(c.get_text(" ", strip=True).split())
            for c in tr.find_all(["td", "th"])
            if c.find_parent("tr") is tr
        ]
        if any(cells):
            rows.append(cells)
    if not rows:
        return []
    header = " | ".join(c for c in rows[0] if c)
    group = f"table{number}"
    if len(rows) == 1:
        return [
            Element(
                header, {**where, "table": number, "row": 0}, "table_row", group, section, header
            )
        ]
    elements = []
    for r, cells in enumerate(rows[1:], start=1):
        pairs = [
            f"{rows[0][i].rstrip(': ')}: {value}" if i < len(rows[0]) and rows[0][i] else value
            for i, value in enumerate(cells)
            if value
        ]
        locator = {**where, "table": number, "row": r}
        elements.append(Element(" | ".join(pairs), locator, "table_row", group, section, header))
    return elements


# --- CSV ---------------------------------------------------------------------------------


def _parse_csv(text: str, name: str) -> Parsed:
    # The sniffer's regular expressions get slow on long samples; whole lines of 16 KB do.
    sample = text[:16384].rsplit("\n", 1)[0]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    elements: list[Element] = []
    names: list[str] | None = None
    header, header_row = "", 1
    meta: dict[str, Any] = {}
    # A cell may legitimately hold a long text (an exported mail body); the text cap in
    # safety.py bounds the file. The limit is process-wide, hence put back afterwards.
    limit = csv.field_size_limit(MAX_CSV_FIELD)
    try:
        for number, record in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
            if number > MAX_CSV_ROWS:
                meta["truncated"] = f"stopped after {MAX_CSV_ROWS:,} rows"
                break
            cells = [" ".join(c.split()) for c in record]
            if not any(cells):
                continue
            if names is None:
                names, header, header_row = cells, " | ".join(c for c in cells if c), number
                continue
            pairs = [
                f"{names[i].rstrip(': ')}: {value}" if i < len(names) and names[i] else value
                for i, value in enumerate(cells)
                if value
            ]
            elements.append(
                Element(" | ".join(pairs), {"row": number}, "table_row", "table", (), header)
            )
    except csv.Error as exc:
        raise ParseError(f"{name} is not readable CSV: {exc}") from exc
    finally:
        csv.field_size_limit(limit)
    if names is not None and not elements:
        elements.append(Element(header, {"row": header_row}, "table_row", "table", (), header))
    meta["columns"] = names or []
    return Parsed(elements=elements, display_text=text.strip(), meta=meta)
