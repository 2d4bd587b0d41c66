"""The sync state store on its own: the facts the pipeline relies on, on SQLite and on
PostgreSQL (the ``state_url`` fixture runs each test on both)."""

import pytest

from copilot.db.state import StateStore


@pytest.fixture
def state(state_url):
    with StateStore(state_url) as store:  # closed, or PostgreSQL sees the pool linger
        yield store


def row(item_id, status="indexed", **kw):
    base = {
        "item_id": item_id,
        "scope": "local:/d",
        "parent_id": None,
        "kind": "file",
        "title": item_id,
        "url": "",
        "version": "v1",
        "content_hash": "h1",
        "status": status,
        "chunks": 2,
        "modified": 0.0,
    }
    return {**base, **kw}


def test_items_are_scoped_by_owner_and_failures_clear_when_indexed(state):
    state.record_items("ann", [row("a", display_text="full text of a")])
    state.record_items("bob", [row("a", chunks=5)])
    state.record_failure("ann", "local:/d", "b", "parse", "b is damaged")
    assert set(state.item_states("ann", "local:/d")) == {"a"}
    assert state.summary("ann") == {
        "items": 1,
        "chunks": 2,
        "syncs": [],
        "sources": [{"owner": "ann", "scope": "local:/d", "items": 1, "chunks": 2}],
    }
    assert state.summary()["chunks"] == 7
    assert state.display_text("ann", "a") == "full text of a"
    assert state.display_text("bob", "a") is None
    assert [f["reason"] for f in state.failures("ann")] == ["b is damaged"]
    state.record_items("ann", [row("b")])
    assert state.failures("ann") == []


def test_checkpoints_round_trip_and_forget_removes_everything(state):
    assert state.checkpoint("ann", "local:/d") is None
    state.save_checkpoint("ann", "local:/d", {"delta": "https://x/delta?token=1"})
    assert state.checkpoint("ann", "local:/d") == {"delta": "https://x/delta?token=1"}
    state.record_items("ann", [row("a"), row("a#0:att.docx", parent_id="a")])
    assert state.children("ann", "a") == ["a#0:att.docx"]
    state.forget_items("ann", ["a", "a#0:att.docx"])
    assert state.item_states("ann", "local:/d") == {}
