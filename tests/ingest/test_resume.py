"""A sync killed at any point resumes without duplicates or loss."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from connectors.local import LocalFolder
from copilot.config import Settings
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace

KILLER = """
import os, sys
from connectors.local import LocalFolder
from copilot.config import Settings
from copilot.index.store import EdgeVectorStore
from copilot.ingest.pipeline import sync
from copilot.db.state import StateStore
from copilot.workspace import Workspace

where, after, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = [0]

def killing(cls, name, before):
    original = getattr(cls, name)
    def wrapper(self, *args, **kwargs):
        calls[0] += 1
        if before and calls[0] > after:
            os._exit(9)
        result = original(self, *args, **kwargs)
        if not before and calls[0] > after:
            os._exit(9)
        return result
    setattr(cls, name, wrapper)

if where == "after-add":
    killing(EdgeVectorStore, "add", before=False)
elif where == "before-record":
    killing(StateStore, "record_items", before=True)
elif where == "after-checkpoint":
    killing(StateStore, "save_checkpoint", before=False)
settings = Settings()
with Workspace(settings) as ws:
    sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store, ws.embedder)
sys.exit(3)  # reaching here means the kill point was never hit
"""


def corpus(folder):
    folder.mkdir()
    for i in range(40):
        body = " ".join(f"Paragraph {p} of note {i} mentions topic-{i}-{p}." for p in range(12))
        (folder / f"note-{i:02d}.txt").write_text(body)


def index_state(settings, docs):
    with Workspace(settings) as ws:
        rows = ws.state.item_states("ann", LocalFolder(docs, owner="ann").scope)
        per_item = {i: len(ws.store.item_chunk_ids("ann", i)) for i in rows}
        return {i: s.chunks for i, s in rows.items()}, per_item, ws.store.count("ann")


@pytest.mark.parametrize(
    "where,after", [("after-add", 1), ("before-record", 2), ("after-checkpoint", 0)]
)
def test_killed_sync_resumes_without_duplicates(tmp_path, where, after, monkeypatch):
    docs = tmp_path / "docs"
    corpus(docs)
    home = tmp_path / "home"
    env = {**os.environ, "COPILOT_HOME": str(home), "COPILOT_EMBED_BATCH": "4"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, where, str(after), str(docs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == 9, killed.stderr

    monkeypatch.setenv("COPILOT_EMBED_BATCH", "4")
    settings = Settings(home=home)
    with Workspace(settings) as ws:
        report = sync(LocalFolder(docs, owner="ann"), settings, ws.state, ws.store, ws.embedder)
    assert report.failed == 0
    assert report.unchanged > 0, "work done before the kill was kept"
    states, stored, total = index_state(settings, docs)
    assert len(states) == 40
    assert states == stored, "every item has exactly the chunks its state row says"
    assert total == sum(states.values())

    fresh = Settings(home=tmp_path / "fresh")
    with Workspace(fresh) as ws:
        clean = sync(LocalFolder(docs, owner="ann"), fresh, ws.state, ws.store, ws.embedder)
    assert clean.chunks == total
