from connectors.types import Element
from copilot.ingest.chunk import chunk_elements, merge_locators


def words(texts):
    return [len(t.split()) for t in texts]


def test_table_chunks_repeat_the_header_and_never_mix_sheets():
    rows = [
        Element(
            f"Region: R{i} | Sales: {i}",
            {"sheet": s, "range": f"A{i}:B{i}"},
            kind="table_row",
            group=f"sheet:{s}",
            section=(s,),
            header="Region | Sales",
        )
        for s in ("North", "South")
        for i in range(2, 30)
    ]
    chunks = chunk_elements(rows, words, max_tokens=40, overlap=0)
    assert {c.locator["sheet"] for c in chunks} == {"North", "South"}
    for chunk in chunks:
        assert chunk.text.startswith(f"{chunk.locator['sheet']}\nRegion | Sales\n")
        assert chunk.tokens <= 40
        assert chunk.group == f"sheet:{chunk.locator['sheet']}"
    first = chunks[0]
    assert first.locator["range"].startswith("A2:B")


def test_headings_prefix_their_sections_and_are_not_chunks_themselves():
    elements = [
        Element("Risks", {"paragraph": 0}, kind="heading", section=("Risks",)),
        Element(
            "The invoice export is fragile.",
            {"section": "Risks", "paragraph": 1},
            section=("Risks",),
        ),
        Element("Plan", {"paragraph": 2}, kind="heading", section=("Plan",)),
        Element("Go live in March.", {"section": "Plan", "paragraph": 3}, section=("Plan",)),
    ]
    chunks = chunk_elements(elements, words, max_tokens=100)
    assert [c.text for c in chunks] == [
        "Risks\nThe invoice export is fragile.",
        "Plan\nGo live in March.",
    ]


def test_long_prose_is_split_at_sentences_within_budget_with_overlap():
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(60)]
    element = Element(" ".join(sentences), {"page": 3})
    chunks = chunk_elements([element], words, max_tokens=50, overlap=10)
    assert len(chunks) > 3
    assert all(c.tokens <= 50 for c in chunks)
    assert all(c.locator == {"page": 3} for c in chunks)
    # Every sentence survives, and consecutive chunks share their boundary sentence.
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)
    assert chunks[0].text.split(". ")[-1] in chunks[1].text


def test_a_single_enormous_word_run_is_still_bounded():
    element = Element("word " * 5000, {"page": 1})
    chunks = chunk_elements([element], words, max_tokens=100, overlap=0)
    assert all(c.tokens <= 100 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 5000


def test_merge_locators_makes_ranges():
    assert merge_locators([{"sheet": "S", "range": "A2:D2"}, {"sheet": "S", "range": "A9:C9"}]) == {
        "sheet": "S",
        "range": "A2:D9",
    }
    assert merge_locators([{"page": 2}, {"page": 3}]) == {"page": 2, "page_end": 3}
    assert merge_locators([]) == {}


def test_empty_input_gives_no_chunks():
    assert chunk_elements([Element("   ", {"page": 1})], words) == []
