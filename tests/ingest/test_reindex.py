"""An index the sync state does not match (another embedding backend, a removed index) is
never skipped in silence: ``copilot status`` says so, and the next sync indexes again."""

from __future__ import annotations

import shutil

import pytest

from connectors.local import LocalFolder
from copilot.api import cli_ops
from copilot.cli.demo import build_workspace
from copilot.index.embed import model_id_of
from copilot.index.search import search
from copilot.ingest.pipeline import SyncCancelled, sync
from copilot.workspace import Workspace


def run(ws, folder, should_stop=None):
    connector = LocalFolder(folder, owner="ann")
    return sync(connector, ws.settings, ws.state, ws.store, ws.embedder, None, should_stop)


def test_switching_the_embedding_backend_reindexes_and_status_says_so_before(settings, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    floats = settings.model_copy(update={"embed_backend": "onnx"})
    with Workspace(floats) as ws:
        first = run(ws, folder)
        assert first.indexed == 7 and not first.notes
        assert cli_ops.status(ws.state, "ann", floats)["notices"] == []

    int8 = settings.model_copy(update={"embed_backend": "onnx-int8"})
    with Workspace(int8) as ws:
        # Before any sync: the state has chunks, the int8 index does not exist yet.
        (notice,) = cli_ops.status(ws.state, "ann", int8)["notices"]
        assert "all-minilm-l6-v2-int8-v2" in notice and "all-minilm-l6-v2)" in notice
        assert "copilot sync" in notice
        again = run(ws, folder)
        assert again.indexed == 7 and again.unchanged == 0
        assert again.chunks == first.chunks and ws.store.count("ann") == first.chunks
        assert any("not in the index of all-minilm-l6-v2-int8-v2" in n["note"] for n in again.notes)
        hits = search(ws.store, ws.embedder, "ann", "legacy invoice export nightly batch", k=3)
        assert hits and hits[0].title == "Atlas status report.docx"
        assert cli_ops.status(ws.state, "ann", int8)["notices"] == []
        # Once done, nothing is redone.
        third = run(ws, folder)
        assert third.indexed == 0 and third.unchanged == 7 and not third.notes


def test_a_removed_index_is_rebuilt_and_a_stopped_rebuild_resumes(settings, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    settings = settings.model_copy(update={"embed_batch": 1})  # a flush every few chunks
    with Workspace(settings) as ws:
        first = run(ws, folder)
    shutil.rmtree(settings.index_dir / model_id_of(settings))

    with Workspace(settings) as ws:
        indexed: list[int] = []
        connector = LocalFolder(folder, owner="ann")
        with pytest.raises(SyncCancelled):
            sync(
                connector, settings, ws.state, ws.store, ws.embedder,
                lambda report: indexed.append(report.indexed),
                lambda: bool(indexed) and indexed[-1] >= 2,
            )  # fmt: skip
        assert 0 < ws.store.count("ann") < first.chunks
        rest = run(ws, folder)
        assert rest.indexed < 7 and rest.indexed + rest.unchanged == 7
        assert ws.store.count("ann") == first.chunks  # every chunk back, none twice
        assert run(ws, folder).indexed == 0


def test_a_full_index_costs_one_count_and_redoes_nothing(ws, tmp_path, monkeypatch):
    folder = build_workspace(tmp_path / "docs")
    run(ws, folder)
    looked_up = []
    store = type(ws.store)
    monkeypatch.setattr(store, "item_chunk_ids", lambda *a: looked_up.append(a) or ["x"])
    report = run(ws, folder)
    assert report.unchanged == 7 and report.indexed == 0 and looked_up == []
