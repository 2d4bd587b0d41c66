"""Which items a sync removes: a pure rule over what the state knows, what the source
lists and what this run visited."""

from __future__ import annotations

from copilot.db.state import ItemState
from copilot.ingest.removal import missing


def known(*items: tuple[str, str | None]) -> dict[str, ItemState]:
    return {i: ItemState(i, "v1", "h", "indexed", 1, parent) for i, parent in items}


STATE = known(
    ("a.eml", None),
    ("a.eml/invoice.pdf", "a.eml"),
    ("a.eml/invoice.pdf/scan.png", "a.eml/invoice.pdf"),  # an attachment's attachment
    ("b.docx", None),
)


def test_an_item_the_source_no_longer_lists_is_removed_with_its_attachments():
    gone = missing(STATE, listed={"b.docx"}, seen={"b.docx"})
    assert gone == ["a.eml", "a.eml/invoice.pdf", "a.eml/invoice.pdf/scan.png"]


def test_nothing_is_removed_when_every_item_is_listed_or_visited():
    assert missing(STATE, listed={"a.eml", "b.docx"}, seen=set()) == []


def test_attachments_of_a_listed_item_this_run_did_not_visit_stay():
    # a delta source lists every id after a resync without yielding each message again
    assert missing(STATE, listed={"a.eml", "b.docx"}, seen={"b.docx"}) == []


def test_an_attachment_its_visited_parent_no_longer_has_is_removed():
    gone = missing(STATE, listed={"a.eml", "b.docx"}, seen={"a.eml", "a.eml/invoice.pdf"})
    assert gone == ["a.eml/invoice.pdf/scan.png"]
