"""Word (.docx) documents: body text in reading order, with heading paths and table rows.

python-docx opens the package and gives us styles, sections, comments and core properties;
the body itself is walked as XML, because python-docx's own ``Paragraph.text`` leaves out
tracked insertions, content controls and text boxes, and its block iterator skips
content controls (``w:sdt``) that wrap whole paragraphs and tables (tables of contents,
form templates). Each table row becomes one element carrying the table's header row, so a
chunk of rows can always be read without the row above it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from connectors.parsers.safety import DAMAGE_ERRORS as _DAMAGE
from connectors.types import Element, Parsed, ParseError

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W, "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}

# Text-bearing leaves of a paragraph, leaving out the VML fallback copy of text boxes
# (mc:Fallback repeats what mc:Choice already holds) and deleted text (w:delText).
_TEXT_NODES = etree.XPath(
    ".//*[self::w:t or self::w:tab or self::w:br or self::w:cr or self::w:noBreakHyphen]"
    "[not(ancestor::mc:Fallback)]",
    namespaces=NS,
)
_CELL_PARAGRAPHS = etree.XPath(".//w:p[not(ancestor::mc:Fallback)]", namespaces=NS)
_ROW_CELLS = etree.XPath("./w:tc | ./w:sdt/w:sdtContent/w:tc", namespaces=NS)
_TABLE_ROWS = etree.XPath("./w:tr | ./w:sdt/w:sdtContent/w:tr", namespaces=NS)
_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)


def parse_docx(data: bytes, name: str) -> Parsed:
    """Parse a .docx into body, header/footer and comment elements."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
        styles = _style_names(document)
        body = _body_elements(document.element.body, styles)
        margins = _header_footer_elements(document)
        comments = _comment_elements(document)
        meta = _core_meta(document)
    except PackageNotFoundError as exc:
        raise ParseError(f"{name} is damaged: it is not a Word package ({exc})") from exc
    except _DAMAGE as exc:
        raise ParseError(f"{name} is damaged: {type(exc).__name__}: {exc}") from exc
    elements = body + margins + comments
    meta["tables"] = len({e.group for e in body if e.kind == "table_row"})
    display = "\n\n".join(e.text for e in elements)
    return Parsed(elements=elements, display_text=display, meta=meta)


def paragraph_text(p: etree._Element) -> str:
    """A paragraph's visible text, including insertions, hyperlinks and text boxes."""
    parts = []
    for node in _TEXT_NODES(p):
        tag = etree.QName(node).localname
        if tag == "t":
            parts.append(node.text or "")
        elif tag == "tab":
            parts.append("\t")
        elif tag == "noBreakHyphen":
            parts.append("-")
        else:
            parts.append("\n")
    return "".join(parts).strip()


def _style_names(document: Any) -> dict[str, str]:
    try:
        return {s.style_id: s.name or "" for s in document.styles if s.style_id}
    except _DAMAGE:
        return {}


def _blocks(container: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """Paragraphs and tables in reading order, looking inside block-level content controls."""
    for child in container:
        tag = etree.QName(child).localname if isinstance(child.tag, str) else ""
        if tag in ("p", "tbl"):
            yield tag, child
        elif tag in ("sdt", "customXml", "ins", "smartTag"):
            content = child.find(f"{{{W}}}sdtContent") if tag == "sdt" else child
            if content is not None:
                yield from _blocks(content)


def _heading_level(p: etree._Element, styles: dict[str, str]) -> int | None:
    style = p.find(f"{{{W}}}pPr/{{{W}}}pStyle")
    if style is None:
        return None
    style_id = style.get(f"{{{W}}}val", "")
    style_name = styles.get(style_id, style_id)
    if style_name.lower() == "title":
        return 0
    match = _HEADING_STYLE.match(style_name) or _HEADING_STYLE.match(style_id)
    return int(match.group(1)) if match else None


def _body_elements(body: etree._Element, styles: dict[str, str]) -> list[Element]:
    elements: list[Element] = []
    path: list[tuple[int, str]] = []  # (level, heading text), outermost heading first
    tables = 0
    for index, (tag, block) in enumerate(_blocks(body)):
        section = tuple(text for _, text in path)
        where = {"section": " > ".join(section)} if section else {}
        if tag == "tbl":
            elements += _table_elements(block, tables, section, where)
            tables += 1
            continue
        text = paragraph_text(block)
        if not text:
            continue
        level = _heading_level(block, styles)
        if level is not None:
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, " ".join(text.split())))
            section = tuple(t for _, t in path)
            locator = {"section": " > ".join(section), "paragraph": index}
            elements.append(Element(text, locator, kind="heading", section=section))
        else:
            locator = {**where, "paragraph": index}
            elements.append(Element(text, locator, kind="paragraph", section=section))
    return elements


def _row_cells(tr: etree._Element) -> list[tuple[int, str]]:
    """(grid column, text) for each cell of a row; merged cells appear once."""
    cells = []
    before = tr.find(f"{{{W}}}trPr/{{{W}}}gridBefore")
    column = _int(before.get(f"{{{W}}}val")) if before is not None else 0
    for tc in _ROW_CELLS(tr):
        text = "\n".join(t for t in (paragraph_text(p) for p in _CELL_PARAGRAPHS(tc)) if t)
        cells.append((column, " ".join(text.split())))
        span = tc.find(f"{{{W}}}tcPr/{{{W}}}gridSpan")
        column += max(_int(span.get(f"{{{W}}}val")), 1) if span is not None else 1
    return cells


def _table_elements(
    tbl: etree._Element, number: int, section: tuple[str, ...], where: dict[str, Any]
) -> list[Element]:
    rows = [_row_cells(tr) for tr in _TABLE_ROWS(tbl)]
    first = next((i for i, row in enumerate(rows) if any(text for _, text in row)), None)
    if first is None:
        return []
    names = dict(rows[first])
    header = " | ".join(text for _, text in rows[first] if text)
    group = f"table{number}"
    elements = []
    if not any(any(text for _, text in row) for row in rows[first + 1 :]):
        # A one-row table (a layout box, a form line): the row is the content.
        locator = {**where, "table": number, "row": first}
        return [Element(header, locator, "table_row", group, section, header)]
    for r, row in enumerate(rows[first + 1 :], start=first + 1):
        pairs = []
        for column, text in row:
            if not text:
                continue
            label = names.get(column, "").rstrip(": ")
            pairs.append(f"{label}: {text}" if label and label != text else text)
        if pairs:
            locator = {**where, "table": number, "row": r}
            elements.append(
                Element(" | ".join(pairs), locator, "table_row", group, section, header)
            )
    return elements


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _header_footer_elements(document: Any) -> list[Element]:
    """Header and footer paragraphs, each distinct text once (every section repeats them)."""
    elements: list[Element] = []
    seen: set[tuple[str, str]] = set()
    counts = {"header": 0, "footer": 0}
    for s, section in enumerate(document.sections):
        for group, parts in (
            ("header", (section.header, section.first_page_header, section.even_page_header)),
            ("footer", (section.footer, section.first_page_footer, section.even_page_footer)),
        ):
            for part in parts:
                # A linked header has no part of its own; reading it would create one.
                if part.is_linked_to_previous:
                    continue
                for _, block in _blocks(part._element):
                    texts = (
                        [paragraph_text(block)]
                        if etree.QName(block).localname == "p"
                        else [paragraph_text(p) for p in _CELL_PARAGRAPHS(block)]
                    )
                    for text in texts:
                        if text and (group, text) not in seen:
                            seen.add((group, text))
                            locator = {group: s, "paragraph": counts[group]}
                            counts[group] += 1
                            elements.append(Element(text, locator, "paragraph", group))
    return elements


def _comment_elements(document: Any) -> list[Element]:
    # Document.comments arrived in python-docx 1.2; before that comments are not read.
    if not hasattr(type(document), "comments") or not _has_comments_part(document):
        return []
    elements = []
    for comment in document.comments:
        text = "\n".join(t for t in (paragraph_text(p._p) for p in comment.paragraphs) if t)
        if text:
            locator = {"comment": comment.comment_id, "author": comment.author or ""}
            elements.append(Element(text, locator, kind="comment", group="comments"))
    return elements


def _has_comments_part(document: Any) -> bool:
    # Asking python-docx for comments of a document without any makes an empty part.
    from docx.opc.constants import RELATIONSHIP_TYPE as RT

    return any(rel.reltype == RT.COMMENTS for rel in document.part.rels.values())


def _core_meta(document: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    try:
        props = document.core_properties
        for key in ("title", "author", "subject"):
            value = getattr(props, key, None)
            if value:
                meta[key] = value
    except _DAMAGE:
        pass
    return meta
