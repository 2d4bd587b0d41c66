"""A large item through the whole sync: streamed in slices with progress inside the item,
its embedding budget applied, and what the budget left keyword-only noted in the status."""

from __future__ import annotations

import io
import itertools
import time

import docx
import pytest

from connectors.local import LocalFolder
from copilot.api.cli_ops import status
from copilot.config import Settings
from copilot.index import store as store_module
from copilot.index.mmr import diverse_search
from copilot.index.search import search
from copilot.index.store import EdgeVectorStore
from copilot.ingest.pipeline import NOTE_STAGE, SLICE_RANGE, SyncCancelled, SyncReport, sync
from copilot.ingest.sandbox import ParsePool, ParseTask
from copilot.workspace import Workspace
from tests.ingest.slow_parse import slow_reader


def ledger(rows: int) -> bytes:
    """A Word file: a paragraph, then a table of ``rows`` rows, each with a word of its own."""
    document = docx.Document()
    document.add_paragraph("The supplier ledger for the Volga warehouse, audited in March.")
    table = document.add_table(rows=1, cols=3)
    for cell, name in zip(table.rows[0].cells, ("Supplier", "Invoice", "Amount"), strict=True):
        cell.text = name
    for r in range(rows):
        cells = table.add_row().cells
        cells[0].text = f"Supplier codeword{r:03d} of the northern depot with a long name"
        cells[1].text = f"INV-{r:05d}"
        cells[2].text = str(100 + r)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture
def budget_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"embed_table_rows": 40, "embed_item_chunks": 6})


def test_a_large_item_is_stored_in_slices_each_reported(settings, tmp_path):
    settings = settings.model_copy(update={"embed_table_rows": 1000})
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ledger.docx").write_bytes(ledger(300))
    seen: list[tuple[int, int, int]] = []

    def on_progress(report: SyncReport) -> None:
        seen.append((report.item_done, report.item_total, report.chunks))

    with Workspace(settings) as ws:
        report = sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store,
                      ws.embedder, on_progress=on_progress)  # fmt: skip
    total = report.chunks
    assert total > 48 and report.embedded == total  # under the budget: all embedded
    inside = [s for s in seen if s[1] == total]
    assert len(inside) >= -(-total // SLICE_RANGE[1])  # a report after each slice
    assert [s[2] for s in inside] == sorted(s[2] for s in inside)  # chunks only grow
    assert max(s[0] for s in inside) == total


def test_a_large_sync_optimises_the_index_as_it_goes(settings, tmp_path, monkeypatch):
    # The engine's optimize holds the GIL: once at the end of a large sync it stopped every
    # thread of the process for seconds (5.2 s for 36k chunks, 14.8 s for 100k).
    monkeypatch.setattr(store_module, "OPTIMIZE_EVERY", 10)
    settings = settings.model_copy(update={"embed_table_rows": 1000})
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ledger.docx").write_bytes(ledger(300))
    stored_at: list[int] = []
    optimize = EdgeVectorStore.optimize

    def counted(store: EdgeVectorStore) -> None:
        stored_at.append(store.count("ann"))
        optimize(store)

    monkeypatch.setattr(EdgeVectorStore, "optimize", counted)
    with Workspace(settings) as ws:
        report = sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store, ws.embedder)
        found = search(ws.store, ws.embedder, "ann", "codeword123 INV-00123", k=3)
    assert report.chunks > 40
    # Every ~10 chunks while storing, and once at the end; never more than 10 + a slice
    # of chunks left for one call.
    assert len(stored_at) >= report.chunks // (10 + max(SLICE_RANGE)) + 1
    assert stored_at[-1] == report.chunks and stored_at == sorted(stored_at)
    gaps = [b - a for a, b in itertools.pairwise([0, *stored_at])]
    assert max(gaps) < 10 + max(SLICE_RANGE) and len(stored_at) > 2
    assert "codeword123" in found[0].text  # the index answers as before


def test_a_large_item_is_streamed_budgeted_and_noted(budget_settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ledger.docx").write_bytes(ledger(300))
    with Workspace(budget_settings) as ws:
        report = sync(LocalFolder(folder, owner="ann"), budget_settings, ws.state, ws.store,
                      ws.embedder)  # fmt: skip
        assert report.indexed == 1 and report.failed == 0
        assert report.embedded == 6 and report.keyword_only == report.chunks - 6
        assert ws.store.count("ann") == report.chunks

        # The note: in the report and as a note row of `copilot status`, not a failure.
        item_id = f"local:{folder / 'ledger.docx'}"
        assert report.notes == [{"item": item_id, "note": report.notes[0]["note"]}]
        note = report.notes[0]["note"]
        assert "rows after the first 40 of 1 table" in note
        assert "chunks after the first 6 of the item" in note
        shown = status(ws.state, "ann")
        assert shown["failures"] == [
            {"item": item_id, "stage": NOTE_STAGE, "reason": note, "owner": "ann"}
        ]
        assert shown["items"] == 1

        # A keyword-only row: found by BM25 and hybrid search, never by dense search.
        late = "codeword287"
        hits = search(ws.store, ws.embedder, "ann", late, mode="bm25", k=3)
        assert hits and late in hits[0].text
        assert any(late in h.text for h in search(ws.store, ws.embedder, "ann", late, k=10))
        dense = search(ws.store, ws.embedder, "ann", late, mode="dense", k=50)
        assert all(late not in h.text for h in dense)
        # MMR reads dense vectors back: a keyword-only candidate is simply left out.
        assert diverse_search(ws.store, ws.embedder, "ann", late, k=3)

        # The table summary is embedded and cited as the whole table.
        summary = search(ws.store, ws.embedder, "ann", "summary of the supplier table",
                         mode="dense", k=5)  # fmt: skip
        assert any(h.text.startswith("Summary of table 1: 300 rows") for h in summary)


def test_a_sync_stopped_inside_a_large_item_resumes_without_duplicates(settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ledger.docx").write_bytes(ledger(300))
    progress: list[int] = []
    with Workspace(settings) as ws:
        connector = LocalFolder(folder, owner="ann")
        with pytest.raises(SyncCancelled):
            sync(connector, settings, ws.state, ws.store, ws.embedder,
                 on_progress=lambda r: progress.append(r.chunks),
                 should_stop=lambda: bool(progress) and progress[-1] >= 16)  # fmt: skip
        assert ws.store.count("ann") > 0 and ws.state.summary("ann")["items"] == 0
        report = sync(connector, settings, ws.state, ws.store, ws.embedder)
        assert report.indexed == 1
        assert ws.store.count("ann") == report.chunks  # the stopped run's slices overwritten


def test_chunks_fit_the_window_even_with_a_long_title(settings, tmp_path):
    settings = settings.model_copy(update={"chunk_tokens": 250})  # the window leaves 254
    folder = tmp_path / "docs"
    folder.mkdir()
    long_name = "Quarterly board minutes and resolutions of the regional council " * 2
    (folder / f"{long_name.strip()[:180]}.txt").write_text("Decision. " * 2000)
    with Workspace(settings) as ws:
        sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store, ws.embedder)
        hits = search(ws.store, ws.embedder, "ann", "decision", mode="bm25", k=50)
        count = ws.embedder.count_tokens
        assert len(hits) > 10 and max(count([h.text for h in hits])) > 200
        for hit in hits:
            assert count([f"{hit.title}\n{hit.text}"])[0] + 2 <= ws.embedder.max_tokens


def test_a_slow_parse_does_not_freeze_the_progress_report():
    beats: list[float] = []
    task = ParseTask(b"slow text", "slow.txt", "text/plain", reader=slow_reader)
    with ParsePool(workers=1, timeout_s=60, memory_mb=1024) as pool:
        results = list(pool.run([("slow", task)], on_wait=lambda: beats.append(time.monotonic())))
    assert results[0][1].parsed is not None
    assert len(beats) >= 2  # about one a second while the worker was busy
    assert max(b - a for a, b in itertools.pairwise(beats)) < 3


class SlowEmbedder:
    """The real embedder on a busy machine: 50 ms a text. Records each call's texts."""

    def __init__(self, embedder):
        self.inner, self.calls = embedder, []
        self.model_id, self.dim, self.max_tokens = embedder.model_id, embedder.dim, 256

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)

    def embed_documents(self, texts):
        self.calls.append(list(texts))
        time.sleep(0.05 * len(texts))
        return self.inner.embed_documents(texts)


def test_slices_are_embedded_shortest_first_and_shrink_on_a_slow_machine(settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(12):  # notes of very different lengths, in one batch, no chunk repeated
        lines = (f"Note {n} on the depot audit, line {i}." for i in range(4 + 30 * n))
        (folder / f"note{n:02d}.txt").write_text(" ".join(lines))
    with Workspace(settings) as ws:
        slow = SlowEmbedder(ws.embedder)
        report = sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store, slow)
    sizes = [len(call) for call in slow.calls]
    assert sum(sizes) == report.embedded > 40 and report.reused == 0
    # The first slice takes 32 x 50 ms = 1.6 s, so the next ones hold about a second's worth.
    assert sizes[0] == 32 and max(sizes[1:-1]) <= 22
    bodies = [text.split("\n", 1)[1] for call in slow.calls for text in call]  # no title
    lengths = slow.inner.count_tokens(bodies)
    assert lengths == sorted(lengths)  # shortest first: a forward pass pads to its longest
