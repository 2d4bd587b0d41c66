"""A sync embeds only texts the owner's index does not already hold (copilot/ingest/reuse.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

import numpy as np

from connectors.local import LocalFolder
from connectors.types import Content, Deleted, Item
from copilot.index.base import embed_key
from copilot.ingest.pipeline import sync
from copilot.ingest.reuse import Kept

TOPICS = ["budget", "hiring", "migration", "security", "travel", "vendors"]


class Counting:
    """The workspace's embedder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.texts = inner, []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed_documents(texts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def report(topics=TOPICS, changed: str | None = None) -> str:
    """A long Markdown report, a section per topic; ``changed`` rewrites one paragraph."""
    parts = ["# Quarterly operations report"]
    for topic in topics:
        parts.append(f"## {topic.title()}")
        for n in range(6):
            words = " ".join(f"{topic}{n}w{i}" for i in range(40))
            parts.append(f"The {topic} team reported item {n}: {words}.")
    text = "\n\n".join(parts) + "\n"
    if changed:
        text = text.replace("The migration team reported item 3:", changed)
    return text


def run(ws, folder, embedder, owner="ann"):
    connector = LocalFolder(folder, owner=owner)
    return sync(connector, ws.settings, ws.state, ws.store, embedder)


def test_an_edited_document_embeds_only_the_chunks_that_changed(ws, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    doc = folder / "report.md"
    doc.write_text(report())
    first = run(ws, folder, Counting(ws.embedder))
    assert first.embedded > 6 and first.reused == 0

    doc.write_text(report(changed="Since March the migration team reported item 3:"))
    later = time.time() + 10
    os.utime(doc, (later, later))
    counting = Counting(ws.embedder)
    second = run(ws, folder, counting)

    assert second.indexed == 1 and second.embedded == first.embedded
    # The migration section's chunks are new; every other section's vectors were found.
    assert 1 <= len(counting.texts) <= 3 and second.reused == second.embedded - len(counting.texts)
    assert all("migration" in text for text in counting.texts)
    # The old version's chunks are gone; every new chunk has its vector.
    ids = ws.store.item_chunk_ids("ann", f"local:{doc}")
    assert len(ids) == second.chunks == len(ws.store.vectors("ann", ids))


def test_reused_vectors_are_the_ones_embedding_gives(ws, tmp_path):
    folder = tmp_path / "docs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (folder / "a" / "notes.md").write_text(report(TOPICS[:3]))
    (folder / "b" / "notes.md").write_text(report(TOPICS[:3]))  # the same file, copied
    counting = Counting(ws.embedder)
    done = run(ws, folder, counting)

    assert done.indexed == 2 and done.embedded == 2 * len(counting.texts)
    assert done.reused == len(counting.texts)
    fresh = ws.embedder.embed_documents(counting.texts)  # each text embedded alone, again
    for copy in ("a", "b"):
        ids = ws.store.item_chunk_ids("ann", f"local:{folder / copy / 'notes.md'}")
        got = np.stack(list(ws.store.vectors("ann", ids).values()))
        nearest = (got @ fresh.T).argmax(axis=1)  # each stored vector is one fresh one
        assert sorted(nearest) == list(range(len(fresh)))
        assert np.allclose(got, fresh[nearest], atol=1e-6)


def test_another_users_identical_text_is_never_read(ws, tmp_path):
    for owner in ("ann", "bob"):
        folder = tmp_path / owner
        folder.mkdir()
        (folder / "report.md").write_text(report())
        counting = Counting(ws.embedder)
        done = run(ws, folder, counting, owner=owner)
        assert done.reused == 0 and len(counting.texts) == done.embedded


def test_a_stopped_sync_run_again_embeds_nothing_twice(ws, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for topic in TOPICS:
        (folder / f"{topic}.md").write_text(report([topic, f"{topic}-more"]))
    counting = Counting(ws.embedder)
    asked = []

    def stop_after_first_slice() -> bool:
        asked.append(1)
        return bool(counting.texts)

    connector = LocalFolder(folder, owner="ann")
    try:
        sync(connector, ws.settings, ws.state, ws.store, counting,
             should_stop=stop_after_first_slice)  # fmt: skip
    except Exception as e:  # SyncCancelled
        assert e.__class__.__name__ == "SyncCancelled"
    first = len(counting.texts)
    assert first
    again = Counting(ws.embedder)
    done = run(ws, folder, again)
    assert done.indexed == len(TOPICS)
    assert done.reused >= first and len(again.texts) + first == done.embedded


def test_a_file_that_repeats_one_paragraph_embeds_it_once(ws, tmp_path):
    """A degenerate export (one boilerplate paragraph thousands of times) costs one text."""
    folder = tmp_path / "docs"
    folder.mkdir()
    paragraph = "This page intentionally left blank for printing purposes only. " * 12
    (folder / "export.txt").write_text("\n\n".join([paragraph.strip()] * 2_000))
    counting = Counting(ws.embedder)
    done = run(ws, folder, counting)
    assert done.indexed == 1 and done.embedded >= 500
    assert len(set(counting.texts)) == len(counting.texts) <= 3  # each distinct text once
    assert done.reused == done.embedded - len(counting.texts)


def test_any_text_has_a_key():
    assert embed_key("a\ud800b") != embed_key("ab")  # a lone surrogate (a damaged file)
    assert len(embed_key("")) == 32 and embed_key("x") == embed_key("x")


class Mailbox:
    """A delta source, as Graph mail and IMAP are: each sync yields what ``events`` holds."""

    scope, owner = "delta:ann", "ann"

    def __init__(self):
        self.events = []

    def load(self, checkpoint):
        yield from self.events

    def list_ids(self):
        return None  # deletions come as ``Deleted`` events


def message(item_id: str) -> Item:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "kay@example.com", "ann@example.com", "Q3 plan"
    mail["Date"] = "Mon, 2 Dec 2024 09:00:00 +0000"
    mail.set_content(report(TOPICS[:2]).replace("#", ""))
    mail.add_attachment(report(TOPICS[2:4]).encode(), maintype="text", subtype="markdown",
                        filename="appendix.md")  # fmt: skip
    data = mail.as_bytes()
    return Item(id=item_id, owner="ann", kind="mail", title="Q3 plan", url="",
                modified=datetime(2024, 12, 2, tzinfo=UTC), version=item_id,
                content=Content.of(data, "message/rfc822"))  # fmt: skip


def test_a_message_moved_to_another_folder_embeds_nothing_again(ws):
    """A move is a deletion in one folder and a new id in another; the deletion can come
    first, and the message's (and its attachment's) vectors are still found."""
    box = Mailbox()
    box.events = [message("delta:inbox/1")]
    first = sync(box, ws.settings, ws.state, ws.store, Counting(ws.embedder))
    assert first.indexed == 2 and first.embedded > 6  # the message and its attachment

    box.events = [Deleted("delta:inbox/1"), message("delta:archive/7")]
    counting = Counting(ws.embedder)
    moved = sync(box, ws.settings, ws.state, ws.store, counting)

    assert moved.deleted == 2 and moved.indexed == 2
    assert counting.texts == [] and moved.reused == moved.embedded == first.embedded
    assert ws.store.item_chunk_ids("ann", "delta:inbox/1") == []
    assert len(ws.store.item_chunk_ids("ann", "delta:archive/7")) > 0


def test_the_vectors_kept_of_deleted_items_are_bounded():
    kept = Kept(limit=3)
    kept.add({str(n): np.full(4, n, np.float32) for n in range(5)})
    assert len(kept) == 3 and kept.get("0") is None and kept.get("4")[0] == 4
