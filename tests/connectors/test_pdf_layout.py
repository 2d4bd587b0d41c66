"""PDF reading order and sentences (issue 18): lines joined into sentences before chunking,
and columns read one after the other even when the producer wrote them line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.parsers.pdf import parse_pdf
from connectors.parsers.pdf_layout import reflow

LEFT = [
    "In the above explanation, we have assumed that we",
    "can obtain enough basic patterns from an article.",
    "However, the actual number of basic patterns that",
    "one can find from a single article is usually not",
    "enough, because the number of sentences is rather",
    "small in comparison to the variation of expres-",
    "sions. So we extend the number of articles.",
]
RIGHT = [
    "The second column starts a new topic about the",
    "clustering of articles that share a relation and",
    "explains how the tables are built from them.",
    "",
    "Evaluation",
    "We measured precision on two hundred tables and",
    "found most of them correct.",
]


def two_column_pdf(left: list[str], right: list[str], across: bool) -> bytes:
    """One US-letter page, two columns of 10pt Helvetica lines. ``across``: the content
    stream writes line 1 of both columns, then line 2 of both, ... (as some producers do);
    otherwise the left column, then the right one."""

    def show(x: int, row: int, text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return f"BT /F1 10 Tf {x} {720 - 12 * row} Td ({escaped}) Tj ET"

    rows = range(max(len(left), len(right)))
    if across:
        ops = [show(x, r, col[r]) for r in rows for x, col in ((72, left), (320, right))
               if r < len(col) and col[r]]  # fmt: skip
    else:
        ops = [show(72, r, t) for r, t in enumerate(left) if t]
        ops += [show(320, r, t) for r, t in enumerate(right) if t]
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.mark.parametrize("across", [False, True], ids=["column-by-column", "line-by-line"])
def test_two_columns_come_out_in_reading_order_with_whole_sentences(across):
    text = parse_pdf(two_column_pdf(LEFT, RIGHT, across), "paper.pdf").elements[0].text
    lines = text.split("\n")
    # Sentences broken at line ends are whole again, each on a line of its own.
    assert "In the above explanation, we have assumed that we can obtain enough basic " \
        "patterns from an article." in lines  # fmt: skip
    assert any("because the number of sentences is rather small in comparison to the "
               "variation of expressions. So we extend" in line for line in lines)  # fmt: skip
    # The left column is read to its end before the right one starts.
    assert text.index("So we extend the number of articles.") < text.index("The second column")
    # A heading stays on its own line: it is not glued to the sentence after it.
    assert "Evaluation" in lines


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Results are in the\ntable below and look good.",
            "Results are in the table below and look good.",
        ),
        ("a well-known com-\npany", "a well-known company"),
        ("the tagger of a Named\nEntity recogniser", "the tagger of a Named Entity recogniser"),
    ],
)
def test_reflow_joins_the_lines_of_a_sentence(raw, expected):
    assert reflow(raw) == expected


@pytest.mark.parametrize(
    "kept",
    [
        "It works.\nThe next sentence.",
        "We need:\n• one thing\n• another thing",
        "2 Basic Idea\nIn Unrestricted Relation Discovery, the discovery process is long",
        "03-7FA81.03 Clutch valve Fault: Signal voltage above threshold\n"
        "03-7FA81.05 Clutch valve Fault: Open load",
        "First paragraph ends here.\n\nSecond one",
    ],
)
def test_reflow_keeps_real_breaks(kept):
    assert reflow(kept) == kept


def test_the_shared_two_column_papers_read_in_order(request):
    folder = request.config.getoption("--office-files")
    if not folder:
        pytest.skip("opt-in: pass --office-files DIR (or set COPILOT_OFFICE_FILES)")
    pdf = Path(folder) / "pdf"
    paper = parse_pdf((pdf / "pdfminer__samples_nonfree_naacl06-shinyama.pdf").read_bytes(), "p")
    assert "In the above explanation, we have assumed that we can obtain enough basic patterns " \
        "from an article." in paper.display_text  # fmt: skip
    form = parse_pdf((pdf / "pdfminer__samples_nonfree_i1040nr.pdf").read_bytes(), "form")
    page = form.elements[18].text  # three columns, written line by line across them
    assert "that is effectively connected with a U.S. trade or business." in page
    assert "more than • You do not have to file" not in page
