"""Incremental sync through the library API, on files the tests write."""

from __future__ import annotations

import os
import time

from connectors.local import LocalFolder
from copilot.cli.demo import build_workspace, write_report
from copilot.index.search import search
from copilot.ingest.pipeline import sync


def run(ws, folder, owner="ann", **kw):
    return sync(
        LocalFolder(folder, owner=owner, **kw), ws.settings, ws.state, ws.store, ws.embedder
    )


def bump(path):
    later = time.time() + 10
    os.utime(path, (later, later))


def test_first_sync_indexes_every_sample_and_search_finds_them(ws, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    report = run(ws, folder)
    assert report.failed == 0, report.failures
    # 4 files + 3 mails are each an item.
    assert report.indexed == 7 and report.chunks > 8
    assert ws.store.count("ann") == report.chunks

    hits = search(ws.store, ws.embedder, "ann", "legacy invoice export nightly batch risk", k=3)
    assert hits[0].title == "Atlas status report.docx"
    assert hits[0].locator["section"].endswith("Risks")
    cells = search(ws.store, ws.embedder, "ann", "Engineering cloud hosting budget", k=3)
    assert any(h.locator.get("sheet") == "Budget 2025" for h in cells)


def test_unchanged_resync_reads_and_embeds_nothing(ws, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    first = run(ws, folder)
    second = run(ws, folder)
    assert second.indexed == 0 and second.embedded == 0 and second.deleted == 0
    assert second.unchanged == first.indexed
    assert ws.store.count("ann") == first.chunks


def test_touched_but_identical_file_is_not_reembedded(ws, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    run(ws, folder)
    bump(folder / "meeting-notes.md")
    report = run(ws, folder)
    assert report.embedded == 0 and report.unchanged == 7


def test_changed_item_reembeds_only_its_chunks_and_leaves_no_stale_ones(ws, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    run(ws, folder)
    notes = folder / "meeting-notes.md"
    item_id = f"local:{notes}"
    before = set(ws.store.item_chunk_ids("ann", item_id))
    notes.write_text("# Weekly sync\n\nThe zebra budget was approved on Friday.\n")
    bump(notes)
    report = run(ws, folder)
    assert report.indexed == 1 and report.unchanged == 6
    after = set(ws.store.item_chunk_ids("ann", item_id))
    assert after and not (after & before)
    assert search(ws.store, ws.embedder, "ann", "zebra budget approved", k=1)[0].item_id == item_id
    hits = search(ws.store, ws.embedder, "ann", "Leeds June fallback")
    assert hits and all("Leeds data centre until June" not in h.text for h in hits)


def test_deleted_file_disappears_from_the_index(ws, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    first = run(ws, folder)
    (folder / "Budget 2025.xlsx").unlink()
    report = run(ws, folder)
    assert report.deleted == 1
    hits = search(ws.store, ws.embedder, "ann", "Engineering cloud hosting budget", k=10)
    assert hits and all(h.title != "Budget 2025.xlsx" for h in hits)
    assert ws.state.summary("ann")["items"] == first.indexed - 1


def test_users_never_see_each_others_documents(ws, tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    write_report(ann / "report.docx")
    bob = tmp_path / "bob"
    bob.mkdir()
    (bob / "secret.txt").write_text("Bob's salary review: the invoice export risk is mine.")
    run(ws, ann, owner="ann")
    run(ws, bob, owner="bob")
    assert ws.store.count("bob") == 1 and ws.store.count("ann") > 1
    # Words of both users' documents: each would find the other's, were it visible.
    query = "salary review invoice export risk"
    for mode in ("hybrid", "dense", "bm25"):
        anns = search(ws.store, ws.embedder, "ann", query, mode=mode)
        assert {h.item_id for h in anns} == {f"local:{ann / 'report.docx'}"}, mode
        bobs = search(ws.store, ws.embedder, "bob", query, mode=mode)
        assert [h.item_id for h in bobs] == [f"local:{bob / 'secret.txt'}"], mode


def test_attachments_are_items_of_their_own_linked_to_their_message(ws, tmp_path):
    from email.message import EmailMessage

    folder = tmp_path / "mail"
    folder.mkdir()
    write_report(tmp_path / "report.docx")
    msg = EmailMessage()
    msg["Subject"] = "Report attached"
    msg["From"] = "ana@example.com"
    msg["To"] = "tom@example.com"
    msg["Message-ID"] = "<m1@example.com>"
    msg.set_content("Here is the status report.")
    msg.add_attachment(
        (tmp_path / "report.docx").read_bytes(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="report.docx",
    )
    (folder / "m.eml").write_bytes(bytes(msg))
    report = run(ws, folder)
    assert report.indexed == 2, report.failures
    hit = search(ws.store, ws.embedder, "ann", "legacy invoice export nightly batch", k=1)[0]
    assert hit.item_id == f"local:{folder / 'm.eml'}#0:report.docx"
    # Deleting the message deletes its attachment too.
    (folder / "m.eml").unlink()
    assert run(ws, folder).deleted == 2
    assert ws.store.count("ann") == 0


def test_snippet_prefers_the_message_words_to_its_header_lines():
    from copilot.index.search import snippet

    text = "Subject: Re: Atlas go-live date\nFrom: ana@example.com\n\nCan we move the go-live?"
    assert snippet(text, "when is the go-live date") == "Can we move the go-live?"
    assert snippet("Subject: budget", "budget") == "Subject: budget"
