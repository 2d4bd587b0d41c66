"""A skill's answer as a Word document, with its citations as a source list or footnotes.

The body is light markdown ("# " headings, "- " / "* " bullets, blank lines between
paragraphs) with citation markers such as ``[1]`` or ``[2, 3]`` that refer to
``Citation.n``. ``style="list"`` keeps the markers as text and ends with a "Sources" list of
clickable links; ``style="footnotes"`` turns each marker into a real Word footnote.

python-docx has no footnote API, so this module adds the footnotes part itself: the part
with Word's separator and continuation-separator notes, its relationship from the document,
its content type (python-docx writes the override from the part), and the styles Word uses.
A citation cited twice gets one footnote; later markers are NOTEREF cross-references to it,
which is what Word's own "Insert cross-reference" produces.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import docx
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part, XmlPart
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Pt, RGBColor
from docx.text.paragraph import Paragraph

from copilot.fileio import save_atomically
from copilot.skills.types import Citation

_ILLEGAL_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MARKER_RE = re.compile(r"\[(\d{1,4}(?:\s*[,;–-]\s*\d{1,4})*)\]")
_LINK_SCHEMES = {"http", "https", "mailto", "file"}
_HEADING_RE = re.compile(r"^(#{1,3})\s+(.*)$")
_BULLET_RE = re.compile(r"^\s*[-*]\s+(.*)$")
MAX_RANGE = 20  # "[2-4]" expands; "[1-9999]" is not a citation

# A footnote's reference mark inside a run; used in the body and at the start of the note.
_REF_STYLE = "FootnoteReference"
_NOTE_STYLE = "FootnoteText"


def clean_text(text: str) -> str:
    """Drop characters XML cannot hold (control characters, lone surrogates)."""
    return _ILLEGAL_XML_RE.sub("", text or "")


def write_docx(
    out: Path,
    *,
    title: str,
    body: str,
    citations: Sequence[Citation],
    style: Literal["footnotes", "list"] = "list",
    meta: dict[str, str] | None = None,
) -> None:
    """Write ``title``, ``body`` and its ``citations`` to the new Word file ``out``.

    ``meta`` (skill, engine, date...) goes to the document properties and to a small line
    under the title. The file appears complete or not at all.
    """
    out = Path(out)
    if style not in ("footnotes", "list"):
        raise ValueError(f"unknown citation style {style!r}: use 'footnotes' or 'list'.")
    if out.suffix.lower() != ".docx":
        raise ValueError(f"{out.name}: the document is written as .docx.")
    title = clean_text(title).strip() or "Untitled"
    meta = {clean_text(str(k)): clean_text(str(v)) for k, v in (meta or {}).items()}
    by_n = {c.n: c for c in citations}

    document = docx.Document()
    _set_properties(document, title, meta)
    document.add_heading(title, level=0)
    if meta:
        line = document.add_paragraph()
        run = line.add_run(" · ".join(f"{k}: {v}" for k, v in meta.items()))
        run.italic = True
        run.font.size = Pt(9)
        run.font.color.rgb = RGBColor(0x59, 0x59, 0x59)

    notes = _Footnotes(document, by_n) if style == "footnotes" else None
    _write_body(document, clean_text(body), notes.add_inline if notes else _plain_inline)

    listed = sorted(by_n.values(), key=lambda c: c.n)
    if notes is not None:
        listed = [c for c in listed if c.n not in notes.used]
    if listed:
        document.add_heading("Sources" if notes is None else "Further sources", level=1)
        for c in listed:
            _source_paragraph(document, c)
    save_atomically(document.save, out)


# --- body ----------------------------------------------------------------------------------

Inline = Callable[[Paragraph, str], None]


def _plain_inline(paragraph: Paragraph, text: str) -> None:
    paragraph.add_run(text)


def _write_body(document: DocxDocument, body: str, inline: Inline) -> None:
    for block in re.split(r"\n\s*\n", body.replace("\r\n", "\n").replace("\r", "\n")):
        paragraph = None  # the plain paragraph being filled, if any
        for raw in block.split("\n"):
            line = raw.strip()
            if not line:
                continue
            heading = _HEADING_RE.match(line)
            bullet = _BULLET_RE.match(raw)
            if heading:
                level = len(heading.group(1))
                p = document.add_heading("", level=level)
                inline(p, heading.group(2).strip())
                paragraph = None
            elif bullet:
                p = document.add_paragraph(style="List Bullet")
                inline(p, bullet.group(1).strip())
                paragraph = None
            elif paragraph is None:
                paragraph = document.add_paragraph()
                inline(paragraph, line)
            else:
                paragraph.add_run().add_break()
                inline(paragraph, line)


def _marker_numbers(inside: str) -> list[int]:
    """``"2, 3"`` -> [2, 3]; ``"2-4"`` -> [2, 3, 4]; anything odd -> []."""
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", inside):
        bounds = re.split(r"\s*[–-]\s*", part)
        if len(bounds) == 1:
            numbers.append(int(bounds[0]))
            continue
        if len(bounds) != 2:
            return []
        lo, hi = int(bounds[0]), int(bounds[1])
        if hi < lo or hi - lo > MAX_RANGE:
            return []
        numbers.extend(range(lo, hi + 1))
    return list(dict.fromkeys(numbers))


# --- footnotes -----------------------------------------------------------------------------


class _Footnotes:
    """The footnotes part of one document, filled as the body is written."""

    def __init__(self, document: DocxDocument, by_n: dict[int, Citation]) -> None:
        self.document = document
        self.by_n = by_n
        self.used: dict[int, int] = {}  # citation n -> footnote id (1, 2, ... in order)
        self._part: XmlPart | None = None

    @property
    def part(self) -> XmlPart:
        """The footnotes part, created at the first reference (no citation, no part)."""
        if self._part is None:
            _ensure_styles(self.document)
            root = parse_xml(
                f"<w:footnotes {nsdecls('w', 'r')}>"
                '<w:footnote w:type="separator" w:id="-1"><w:p><w:pPr>'
                '<w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
                "<w:r><w:separator/></w:r></w:p></w:footnote>"
                '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:pPr>'
                '<w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
                "<w:r><w:continuationSeparator/></w:r></w:p></w:footnote>"
                "</w:footnotes>"
            )
            doc_part = self.document.part
            self._part = XmlPart(
                PackURI("/word/footnotes.xml"), CT.WML_FOOTNOTES, root, doc_part.package
            )
            doc_part.relate_to(self._part, RT.FOOTNOTES)
        return self._part

    def add_inline(self, paragraph: Paragraph, text: str) -> None:
        """Add ``text`` to ``paragraph`` with its citation markers as footnote references."""
        pos = 0
        for m in _MARKER_RE.finditer(text):
            numbers = _marker_numbers(m.group(1))
            if not numbers or any(n not in self.by_n for n in numbers):
                continue  # not a citation we know: leave it as text
            if m.start() > pos:
                paragraph.add_run(text[pos : m.start()].rstrip())
            for i, n in enumerate(numbers):
                if i:
                    paragraph._p.append(_ref_run(text=","))
                self._reference(paragraph._p, n)
            pos = m.end()
        if pos < len(text):
            paragraph.add_run(text[pos:])

    def _reference(self, p: BaseOxmlElement, n: int) -> None:
        bookmark = f"_RefCite{n}"
        if n in self.used:  # cite the same note again: a cross-reference to its number
            for el in _noteref_field(bookmark, self.used[n]):
                p.append(el)
            return
        note_id = len(self.used) + 1
        self.used[n] = note_id
        start = _el("w:bookmarkStart", {"w:id": str(note_id), "w:name": bookmark})
        end = _el("w:bookmarkEnd", {"w:id": str(note_id)})
        ref = _ref_run()
        ref.append(_el("w:footnoteReference", {"w:id": str(note_id)}))
        for el in (start, ref, end):
            p.append(el)
        self.part.element.append(self._note(note_id, self.by_n[n]))

    def _note(self, note_id: int, c: Citation) -> BaseOxmlElement:
        note = _el("w:footnote", {"w:id": str(note_id)})
        p = _el("w:p")
        ppr = _el("w:pPr")
        ppr.append(_el("w:pStyle", {"w:val": _NOTE_STYLE}))
        p.append(ppr)
        mark = _ref_run()
        mark.append(_el("w:footnoteRef"))
        p.append(mark)
        head = ", ".join(x for x in (clean_text(c.title), clean_text(c.where)) if x.strip())
        p.append(_text_run(f" {head or 'source'}"))
        link = _usable_link(c)
        if link:
            p.append(_text_run(" — "))
            p.append(_hyperlink(self.part, link, link))
        note.append(p)
        return note


def _ensure_styles(document: DocxDocument) -> None:
    """Add Word's built-in footnote styles when the template lacks them."""
    styles = document.styles
    ids = {s.style_id for s in styles}
    if _NOTE_STYLE not in ids:
        s = styles.add_style("Footnote Text", WD_STYLE_TYPE.PARAGRAPH)
        s.style_id, s.name = _NOTE_STYLE, "footnote text"
        s.base_style = styles["Normal"]
        s.font.size = Pt(10)
        s.paragraph_format.space_after = Pt(0)
    if _REF_STYLE not in ids:
        s = styles.add_style("Footnote Reference", WD_STYLE_TYPE.CHARACTER)
        s.style_id, s.name = _REF_STYLE, "footnote reference"
        s.font.superscript = True
    for style_id in (_NOTE_STYLE, _REF_STYLE):  # Word's own styles, not custom ones
        element = styles.element.get_by_id(style_id)
        if element is not None:
            element.attrib.pop(qn("w:customStyle"), None)


def _el(tag: str, attrs: dict[str, str] | None = None) -> BaseOxmlElement:
    """``_el("w:footnote", {"w:id": "1"})``: an element with prefixed attribute names."""
    return OxmlElement(tag, {qn(k): v for k, v in (attrs or {}).items()})


def _ref_run(text: str | None = None) -> BaseOxmlElement:
    """A superscript run in the footnote-reference style (direct superscript as well, so the
    mark stays raised even where the style is missing)."""
    r = _el("w:r")
    rpr = _el("w:rPr")
    rpr.append(_el("w:rStyle", {"w:val": _REF_STYLE}))
    rpr.append(_el("w:vertAlign", {"w:val": "superscript"}))
    r.append(rpr)
    if text is not None:
        t = _el("w:t", {"xml:space": "preserve"})
        t.text = text
        r.append(t)
    return r


def _text_run(text: str) -> BaseOxmlElement:
    r = _el("w:r")
    t = _el("w:t", {"xml:space": "preserve"})
    t.text = text
    r.append(t)
    return r


def _noteref_field(bookmark: str, number: int) -> list[BaseOxmlElement]:
    """``NOTEREF bookmark \\f \\h``: the note's number, formatted as a reference mark."""
    begin, instr, sep, result, end = (_ref_run() for _ in range(5))
    begin.append(_el("w:fldChar", {"w:fldCharType": "begin"}))
    code = _el("w:instrText", {"xml:space": "preserve"})
    code.text = f" NOTEREF {bookmark} \\f \\h "
    instr.append(code)
    sep.append(_el("w:fldChar", {"w:fldCharType": "separate"}))
    t = _el("w:t")
    t.text = str(number)
    result.append(t)
    end.append(_el("w:fldChar", {"w:fldCharType": "end"}))
    return [begin, instr, sep, result, end]


# --- sources, links, properties ------------------------------------------------------------


def _usable_link(c: Citation) -> str:
    """The citation's deep link if it is one a reader can safely open, else ""."""
    for candidate in (c.link, c.url):
        link = clean_text(candidate or "").strip()
        try:
            scheme = urlsplit(link).scheme.lower()
        except ValueError:
            continue
        if link and scheme in _LINK_SCHEMES:
            return link
    return ""


def _hyperlink(part: Part, url: str, text: str) -> BaseOxmlElement:
    r_id = part.relate_to(url, RT.HYPERLINK, is_external=True)
    link = _el("w:hyperlink", {"r:id": r_id, "w:history": "1"})
    r = _el("w:r")
    rpr = _el("w:rPr")
    rpr.append(_el("w:color", {"w:val": "0563C1"}))
    rpr.append(_el("w:u", {"w:val": "single"}))
    r.append(rpr)
    t = _el("w:t", {"xml:space": "preserve"})
    t.text = text
    r.append(t)
    link.append(r)
    return link


def _source_paragraph(document: DocxDocument, c: Citation) -> None:
    p = document.add_paragraph()
    p.paragraph_format.left_indent = Pt(24)
    p.paragraph_format.first_line_indent = Pt(-24)
    p.add_run(f"[{c.n}]\t")
    p.add_run(clean_text(c.title).strip() or "source").bold = True
    where = clean_text(c.where).strip()
    if where:
        p.add_run(f", {where}")
    link = _usable_link(c)
    if link:
        p.add_run(" — ")
        p._p.append(_hyperlink(document.part, link, link))


def _set_properties(document: DocxDocument, title: str, meta: dict[str, str]) -> None:
    props = document.core_properties
    props.title = title[:255]
    props.author = "Office Copilot"
    props.subject = meta.get("skill", "")[:255]
    props.comments = "; ".join(f"{k}: {v}" for k, v in meta.items())[:255]
    props.keywords = meta.get("engine", "")[:255]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    props.created = props.modified = now
    props.revision = 1
