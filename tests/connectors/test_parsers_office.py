"""Office and text parsers: what a document becomes, and how damaged ones fail.

Every bad-input test goes through ``connectors.parsers.parse``, the dispatcher the sync
pipeline calls, so the safety checks run exactly as they do in production.
"""

from __future__ import annotations

import pytest

from connectors.parsers import parse
from connectors.parsers.pdf import clean_text
from connectors.parsers.text import parse_text
from connectors.parsers.xlsx import format_value
from connectors.types import ParseError
from tests.fakes.builders_office import (
    budget_xlsx,
    encrypted_office,
    encrypted_pdf,
    pdf_with_text,
    report_docx,
)

# --- docx --------------------------------------------------------------------------------


def test_docx_body_keeps_reading_order_and_heading_paths():
    parsed = parse(report_docx(), "report.docx")
    body = [e for e in parsed.elements if e.group == "body"]

    assert [(e.kind, e.text) for e in body[:4]] == [
        ("heading", "Quarterly report"),
        ("paragraph", "This report covers the first quarter."),
        ("heading", "Sales"),
        ("paragraph", "Sales grew in every region."),
    ]
    online = next(e for e in body if e.text == "Online sales doubled.")
    assert online.section == ("Quarterly report", "Sales", "By channel")
    assert online.locator == {"section": "Quarterly report > Sales > By channel", "paragraph": 6}
    # A heading of the same level closes the previous one.
    risks = next(e for e in body if e.text.startswith("Supply"))
    assert risks.section == ("Quarterly report", "Risks")
    assert parsed.meta["title"] == "Quarterly report"
    assert parsed.meta["author"] == "Ada Lovelace"


def test_docx_table_rows_carry_their_header_and_stay_in_their_own_group():
    parsed = parse(report_docx(), "report.docx")
    rows = [e for e in parsed.elements if e.kind == "table_row"]

    assert [e.text for e in rows] == [
        "Region: North | Q1: 1200 | Q2: 1350",
        "Region: South | Q1: 900",
    ]
    assert {e.header for e in rows} == {"Region | Q1 | Q2"}
    assert {e.group for e in rows} == {"table0"}
    assert rows[0].locator == {"section": "Quarterly report > Sales", "table": 0, "row": 1}
    # The table sits between "Sales grew..." (block 3) and "By channel" (block 5).
    texts = [e.text for e in parsed.elements]
    assert texts.index("Sales grew in every region.") < texts.index(rows[0].text)
    assert texts.index(rows[1].text) < texts.index("By channel")


def test_docx_header_footer_and_comments_are_separate_groups():
    parsed = parse(report_docx(), "report.docx")
    by_group = {e.group: e for e in parsed.elements if e.group != "body" and e.kind != "table_row"}

    assert by_group["header"].text == "ACME confidential"
    assert by_group["footer"].text == "Printed on recycled electrons"
    comment = by_group["comments"]
    assert (comment.kind, comment.text) == ("comment", "Check the South figure.")
    assert comment.locator == {"comment": 0, "author": "Bob"}
    assert "Supply chains remain fragile." in parsed.display_text


def test_docx_text_inside_a_content_control_is_read():
    from docx import Document
    from lxml import etree

    from tests.fakes.builders_office import _save

    doc = Document()
    doc.add_paragraph("Before.")
    inside = doc.add_paragraph("Inside the control.")._p
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    sdt = etree.SubElement(doc.element.body, f"{{{w}}}sdt")
    inside.addprevious(sdt)
    etree.SubElement(sdt, f"{{{w}}}sdtContent").append(inside)

    parsed = parse(_save(doc), "form.docx")
    assert [e.text for e in parsed.elements] == ["Before.", "Inside the control."]


# --- xlsx --------------------------------------------------------------------------------


def test_xlsx_rows_pair_values_with_headers_and_cite_a1_ranges():
    parsed = parse(budget_xlsx(), "budget.xlsx")
    budget = [e for e in parsed.elements if e.group == "sheet:Budget"]

    assert [(e.text, e.locator["range"]) for e in budget] == [
        ("Region: North | Q1: 1200 | Q2: 0.3 | Updated: 2024-03-01", "A2:D2"),
        ("Region: South | Q1: 900 | Q2: 1350.5", "A4:C4"),  # the blank row 3 is skipped
        ("Q2: late", "C5"),
    ]
    assert {e.header for e in budget} == {"Region | Q1 | Q2 | Updated"}
    assert {e.section for e in budget} == {("Budget",)}
    assert budget[0].locator == {"sheet": "Budget", "range": "A2:D2"}


def test_xlsx_header_only_sheet_is_kept_and_chartsheets_are_skipped():
    parsed = parse(budget_xlsx(), "budget.xlsx")

    names = [e for e in parsed.elements if e.group == "sheet:Names"]
    assert [(e.text, e.locator) for e in names] == [
        ("Ada | Grace", {"sheet": "Names", "range": "A1:B1"})
    ]
    assert parsed.meta["sheets"] == ["Budget", "Names"]


def test_xlsx_cell_cap_truncates_with_a_note(monkeypatch):
    from connectors.parsers import xlsx

    monkeypatch.setattr(xlsx, "MAX_CELLS", 10)
    parsed = parse(budget_xlsx(), "budget.xlsx")

    assert len(parsed.elements) == 1
    assert "stopped after 10 cells" in parsed.meta["truncated"][0]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1 + 0.2, "0.3"), (1200.0, "1200"), (True, "TRUE"), (1 / 3, "0.333333333333333")],
)
def test_xlsx_values_read_like_a_person_typed_them(value, text):
    assert format_value(value) == text


# --- pdf ---------------------------------------------------------------------------------


def test_pdf_one_element_per_page_with_text():
    data = pdf_with_text([["Summary of the year"], [], ["Appendix", "Tables follow."]])
    parsed = parse(data, "annual.pdf")

    assert [(e.locator, e.text) for e in parsed.elements] == [
        ({"page": 1}, "Summary of the year"),
        ({"page": 3}, "Appendix\nTables follow."),
    ]
    assert {e.kind for e in parsed.elements} == {"page"}
    assert parsed.meta["pages"] == 3


def test_pdf_text_is_tidied():
    assert clean_text("The infor-\nmation  age\x00\n\n\n\nends") == "The information age\n\nends"
    assert clean_text("North-\nEast") == "North-\nEast"  # a capital after the break: a real hyphen


def test_pdf_with_only_an_owner_password_opens():
    data = encrypted_pdf(pdf_with_text([["Open to all"]]), user_password="")
    assert [e.text for e in parse(data, "open.pdf").elements] == ["Open to all"]


def test_pdf_needing_a_password_is_reported_as_encrypted():
    data = encrypted_pdf(pdf_with_text([["Secret"]]), user_password="hunter2")
    with pytest.raises(ParseError, match=r"secret\.pdf is encrypted"):
        parse(data, "secret.pdf")


def test_pdf_without_cross_reference_table_is_repaired():
    data = pdf_with_text([["Hand written"]])
    data = data[: data.index(b"xref")]  # what a hand-written or cut-off file looks like
    parsed = parse(data, "handmade.pdf")
    assert [e.text for e in parsed.elements] == ["Hand written"]
    assert "repaired" in parsed.meta


def test_truncated_pdf_is_a_parse_error():
    data = pdf_with_text([["Cut short"]])
    with pytest.raises(ParseError, match=r"cut\.pdf is damaged"):
        parse(data[:60], "cut.pdf")


def test_garbage_pdf_is_a_parse_error():
    with pytest.raises(ParseError, match=r"junk\.pdf is damaged"):
        parse(b"%PDF-1.7\n" + bytes(range(256)) * 8, "junk.pdf")


# --- damaged and disguised office files --------------------------------------------------


def test_truncated_docx_is_a_parse_error():
    data = report_docx()
    with pytest.raises(ParseError, match=r"cut\.docx is damaged"):
        parse(data[: len(data) // 2], "cut.docx")


def test_truncated_xlsx_is_a_parse_error():
    data = budget_xlsx()
    with pytest.raises(ParseError, match=r"cut\.xlsx is damaged"):
        parse(data[: len(data) // 2], "cut.xlsx")


@pytest.mark.parametrize(
    ("name", "build"), [("locked.docx", report_docx), ("locked.xlsx", budget_xlsx)]
)
def test_encrypted_office_file_asks_for_the_password_to_be_removed(name, build):
    with pytest.raises(ParseError, match=r"is encrypted \(password-protected\)") as caught:
        parse(encrypted_office(build()), name)
    assert name in str(caught.value)


def test_pdf_renamed_docx_says_what_it_really_is():
    with pytest.raises(ParseError) as caught:
        parse(pdf_with_text([["x"]]), "report.docx")
    assert str(caught.value) == "report.docx is not a Word document: its content looks like a PDF"


def test_docx_missing_its_main_part_is_a_parse_error():
    from tests.fakes.builders_office import replace_member

    data = replace_member(report_docx(), "word/document.xml", b"<not-a-document/>")
    with pytest.raises(ParseError, match=r"odd\.docx"):
        parse(data, "odd.docx")


# --- text formats ------------------------------------------------------------------------


def test_plain_text_paragraphs_cite_their_first_line():
    parsed = parse(b"First para\ncontinues.\n\n\nSecond para.\n", "notes.txt")
    assert [(e.text, e.locator) for e in parsed.elements] == [
        ("First para\ncontinues.", {"paragraph": 0, "line": 1}),
        ("Second para.", {"paragraph": 1, "line": 5}),
    ]


def test_markdown_headings_set_sections_but_code_comments_do_not():
    text = "# Guide\nIntro.\n\n## Install\n```sh\n# not a heading\n\npip install x\n```\n\nDone.\n"
    parsed = parse(text.encode(), "guide.md")

    assert [(e.kind, e.section) for e in parsed.elements] == [
        ("heading", ("Guide",)),
        ("paragraph", ("Guide",)),
        ("heading", ("Guide", "Install")),
        ("paragraph", ("Guide", "Install")),
        ("paragraph", ("Guide", "Install")),
    ]
    code = parsed.elements[3]
    assert "# not a heading" in code.text and "pip install x" in code.text
    assert code.locator == {"section": "Guide > Install", "paragraph": 3, "line": 5}


def test_html_drops_scripts_and_follows_headings():
    html = b"""<html><head><title>Policy</title><style>p{}</style></head><body>
    <h1>Travel</h1><p>Book <b>early</b>.</p><script>alert(1)</script>
    <div>Loose text in a div</div><h2>Hotels</h2><ul><li>Max 150 EUR</li></ul>
    <table><tr><th>City</th><th>Limit</th></tr><tr><td>Paris</td><td>200</td></tr></table>
    </body></html>"""
    parsed = parse(html, "policy.html")

    assert [(e.kind, e.text, e.section) for e in parsed.elements] == [
        ("heading", "Travel", ("Travel",)),
        ("paragraph", "Book early .", ("Travel",)),
        ("paragraph", "Loose text in a div", ("Travel",)),
        ("heading", "Hotels", ("Travel", "Hotels")),
        ("paragraph", "Max 150 EUR", ("Travel", "Hotels")),
        ("table_row", "City: Paris | Limit: 200", ("Travel", "Hotels")),
    ]
    assert parsed.elements[-1].header == "City | Limit"
    assert parsed.meta["title"] == "Policy"


def test_deeply_nested_html_does_not_overflow_the_stack():
    html = b"<div>" * 20_000 + b"deep" + b"</div>" * 20_000
    parsed = parse(html, "deep.html")
    assert "deep" in parsed.display_text


def test_csv_rows_are_numbered_like_a_spreadsheet():
    data = b'Name;Amount\nAda;10\n\nGrace;"1;5"\n'
    parsed = parse(data, "ledger.csv")

    assert [(e.text, e.locator) for e in parsed.elements] == [
        ("Name: Ada | Amount: 10", {"row": 2}),
        ("Name: Grace | Amount: 1;5", {"row": 4}),
    ]
    assert {(e.header, e.group) for e in parsed.elements} == {("Name | Amount", "table")}


@pytest.mark.parametrize(
    "data",
    [
        "Café crème\n".encode("utf-16"),  # with a BOM
        "\ufeffCafé crème\n".encode(),
        "Café crème, déjà vu, à bientôt, naïve, garçon\n".encode("cp1252"),
    ],
)
def test_text_encodings_are_detected(data):
    parsed = parse_text(data, "menu.txt", "text/plain")
    assert parsed.elements[0].text.startswith("Café crème")


def test_binary_file_named_txt_is_a_parse_error():
    with pytest.raises(ParseError, match=r"photo\.txt is not a text file: .*a PNG image"):
        parse(b"\x89PNG\r\n\x1a\n" + bytes(100), "photo.txt")
