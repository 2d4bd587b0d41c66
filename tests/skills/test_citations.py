"""An answer's [n] markers: checked against the sources given, normalised, and linked."""

from __future__ import annotations

import time

import pytest

from copilot.skills.citations import cite, deep_link, markers, renumber
from copilot.skills.types import Source


def source(n: int, **overrides) -> Source:
    fields = {
        "n": n,
        "item_id": f"item-{n}",
        "chunk_id": f"chunk-{n}",
        "title": f"Doc {n}",
        "url": f"file:///docs/report{n}.pdf",
        "kind": "pdf",
        "locator": {"page": n + 2},
        "text": f"Passage {n} of the report.",
    }
    return Source(**{**fields, **overrides})


SOURCES = [source(1), source(2), source(3)]


def test_valid_citations_are_kept_in_order_of_first_citation():
    cited = cite("Costs fell [2]. Revenue rose [1], mostly in Q3 [2].", SOURCES)

    assert cited.text == "Costs fell [2]. Revenue rose [1], mostly in Q3 [2]."
    assert [c.n for c in cited.citations] == [2, 1]
    assert cited.invalid == [] and cited.uncited == [3]
    first = cited.citations[0]
    assert (first.item_id, first.title, first.where) == ("item-2", "Doc 2", "page 4")
    assert first.link == "file:///docs/report2.pdf#page=4"
    assert first.snippet == "Passage 2 of the report."


@pytest.mark.parametrize(
    ("answer", "expected", "numbers"),
    [
        ("A [1, 2].", "A [1][2].", [1, 2]),
        ("A [1,2].", "A [1][2].", [1, 2]),
        ("A [1][2].", "A [1][2].", [1, 2]),
        ("A [1; 3].", "A [1][3].", [1, 3]),
        ("A [1-3].", "A [1][2][3].", [1, 2, 3]),
        ("A [1–3].", "A [1][2][3].", [1, 2, 3]),
        ("A [3-1].", "A [1][2][3].", [1, 2, 3]),
        ("A [source 1].", "A [1].", [1]),
        ("A [Source 2].", "A [2].", [2]),
        ("A [Sources 1, 3].", "A [1][3].", [1, 3]),
        ("A 【1】.", "A [1].", [1]),
        ("A 【3†source】.", "A [3].", [3]),
        ("A [ 2 ].", "A [2].", [2]),
        ("A [2, 2].", "A [2].", [2]),
    ],
)
def test_marker_forms_are_recognised_and_normalised(answer, expected, numbers):
    cited = cite(answer, SOURCES)
    assert cited.text == expected
    assert [c.n for c in cited.citations] == numbers
    assert markers(answer) == numbers


@pytest.mark.parametrize(
    "answer",
    [
        "See [the report](https://example.com/r.pdf) for details.",
        "See [1](https://example.com/r.pdf) for details.",
        "Options: [x], [link], [ ], [a-b].",
        "Use `a[1]` and `rows[2:4]` in the code.",
        "```python\nvalues[5] = rows[12]\n```",
        "Founded [2024] and revised [1999, 2003].",
    ],
)
def test_things_that_are_not_citations_are_left_alone(answer):
    cited = cite(answer, SOURCES)
    assert cited.text == answer
    assert cited.citations == [] and cited.invalid == []
    assert markers(answer) == []


def test_invalid_numbers_are_removed_and_reported():
    answer = "Revenue rose [7]. Costs fell [2, 9] and staff left [0][12].\nMargins [5] held."

    cited = cite(answer, SOURCES)

    assert cited.text == "Revenue rose. Costs fell [2] and staff left.\nMargins held."
    assert cited.invalid == [7, 9, 0, 12, 5]
    assert [c.n for c in cited.citations] == [2]
    assert cited.uncited == [1, 3]


def test_removal_tidies_only_the_gap_it_leaves():
    answer = "  Indented [8] line.\n[9] Starts a line.\nGlued[9]on and [1]  [9] next.\n\nEnd [9]"
    cited = cite(answer, SOURCES)
    assert cited.text == "  Indented line.\nStarts a line.\nGluedon and [1] next.\n\nEnd"


def test_code_keeps_its_brackets_while_prose_is_checked():
    answer = "Set `x[9]` as in [1] and [9].\n```\ny = z[9]\n```\nDone [3]."
    cited = cite(answer, SOURCES)
    assert cited.text == "Set `x[9]` as in [1] and.\n```\ny = z[9]\n```\nDone [3]."
    assert cited.invalid == [9]


def test_a_huge_range_cites_only_its_ends():
    many = [source(n) for n in range(1, 501)]
    assert markers("All [1-500].") == [1, 500]
    assert [c.n for c in cite("All [1-500].", many).citations] == [1, 500]


def test_renumber_moves_markers_all_at_once():
    # Part two of a map-reduce summary cited its own [1] and [2]; globally they are 4 and 5.
    part = "Budget approved [1]. Hiring paused [2][1]. Unknown [3]. In 2024 [2024]."
    assert renumber(part, {1: 4, 2: 5}) == (
        "Budget approved [4]. Hiring paused [5][4]. Unknown. In 2024 [2024]."
    )
    assert renumber("Swap [1][2]", {1: 2, 2: 1}) == "Swap [2][1]"


def test_snippet_is_cut_at_a_word():
    long = source(1, text="word " * 100 + "tail")
    snippet = cite("[1]", [long]).citations[0].snippet
    assert snippet.endswith("word…") and len(snippet) <= 201


@pytest.mark.parametrize(
    ("url", "kind", "locator", "expected"),
    [
        ("file:///d/r.pdf", "pdf", {"page": 3}, "file:///d/r.pdf#page=3"),
        ("https://x.org/a/R.PDF?web=1", "pdf", {"page": 12}, "https://x.org/a/R.PDF?web=1#page=12"),
        ("https://x.org/r.pdf#page=1", "pdf", {"page": 2}, "https://x.org/r.pdf#page=2"),
        ("file:///d/r.pdf", "pdf", {}, "file:///d/r.pdf"),
        ("file:///d/r.pdf", "pdf", {"page": True}, "file:///d/r.pdf"),
        ("file:///d/b.xlsx", "xlsx", {"sheet": "Budget", "page": 2}, "file:///d/b.xlsx"),
        ("mailto:ana@example.com", "mail", {"page": 2}, "mailto:ana@example.com"),
        (
            "https://outlook.office.com/mail/id/AAk",
            "mail",
            {},
            "https://outlook.office.com/mail/id/AAk",
        ),
        ("javascript:alert(1)", "pdf", {"page": 1}, ""),
        ("  JavaScript:alert(1)", "docx", {}, ""),
        ("java\tscript:alert(1)", "docx", {}, ""),
        ("data:text/html;base64,PHNjcmlwdD4=", "docx", {}, ""),
        ("vbscript:msgbox", "docx", {}, ""),
        ("/relative/path.pdf", "pdf", {"page": 1}, ""),
        ("", "pdf", {"page": 1}, ""),
    ],
)
def test_deep_links(url, kind, locator, expected):
    assert deep_link(url, kind, locator) == expected


def test_an_unsafe_source_url_gives_no_link_but_keeps_the_citation():
    bad = source(1, url="javascript:fetch('//evil')")
    cited = cite("Claim [1].", [bad])
    assert cited.text == "Claim [1]." and cited.citations[0].link == ""


def test_hostile_answers_are_fast():
    nasty = "[" + "1, " * 50_000 + "x" + "[1-" * 20_000 + "【" * 20_000
    start = time.perf_counter()
    cite(nasty, SOURCES)
    assert time.perf_counter() - start < 2
