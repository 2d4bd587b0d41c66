"""One process, many threads: searches while a sync writes the same index and state store.

This is how the API runs: requests search from a thread pool while a background job syncs.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
from llama_index.core.schema import TextNode

from connectors.local import LocalFolder
from copilot.index.embed import get_embedder
from copilot.index.search import search
from copilot.index.store import EdgeVectorStore
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace


def notes(folder, owner, n):
    folder.mkdir()
    for i in range(n):
        body = " ".join(
            f"{owner} note {i}, part {p}: topic{owner}{i} and the budget." for p in range(8)
        )
        (folder / f"{owner}-{i:02d}.txt").write_text(body)
    return folder


def run_threads(targets, timeout):
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"


def test_searches_stay_right_while_a_sync_writes(settings, tmp_path):
    settings = settings.model_copy(update={"parse_workers": 1, "embed_batch": 8})
    with Workspace(settings) as ws:
        ann = notes(tmp_path / "ann", "ann", 8)
        bob = notes(tmp_path / "bob", "bob", 30)
        sync(LocalFolder(ann, owner="ann"), settings, ws.state, ws.store, ws.embedder)
        queries = [f"topicann{i}" for i in range(8)]
        expected = {
            q: [r.chunk_id for r in search(ws.store, ws.embedder, "ann", q, k=3)] for q in queries
        }
        assert all(expected.values())

        errors: list[BaseException] = []
        wrong: list[str] = []
        searches = [0]
        reports = []
        syncing = threading.Event()
        syncing.set()

        def sync_bob():
            try:
                reports.append(
                    sync(LocalFolder(bob, owner="bob"), settings, ws.state, ws.store, ws.embedder)
                )
            except BaseException as exc:
                errors.append(exc)
            finally:
                syncing.clear()

        def searcher(offset):
            i = offset
            deadline = time.monotonic() + 120
            while syncing.is_set() and time.monotonic() < deadline:
                try:
                    query = queries[i % len(queries)]
                    found = [r.chunk_id for r in search(ws.store, ws.embedder, "ann", query, k=3)]
                    if found != expected[query]:
                        wrong.append(query)
                    ws.state.summary("ann")
                    searches[0] += 1
                except BaseException as exc:
                    errors.append(exc)
                    return
                i += 1

        run_threads([sync_bob, lambda: searcher(0), lambda: searcher(3)], timeout=180)

        assert errors == []
        assert wrong == []  # another user's sync never changes what ann finds
        assert searches[0] > 10
        [report] = reports
        assert (report.indexed, report.failed) == (30, 0)
        assert ws.store.count("bob") == report.chunks
        assert search(ws.store, ws.embedder, "bob", "topicbob17", k=1)[0].title == "bob-17.txt"


def test_hybrid_search_never_returns_a_chunk_deleted_under_it(tmp_path):
    """An item re-indexed while a search runs: hits without payload were returned before."""
    store = EdgeVectorStore(tmp_path / "index", 8)
    rng = np.random.default_rng(0)

    def version(item: int, content_hash: str) -> list[TextNode]:
        vector = rng.standard_normal(8)
        vector /= np.linalg.norm(vector)
        return [
            TextNode(
                id_=str(uuid.uuid4()),
                text=f"alpha beta item{item} chunk{c}",
                embedding=vector.tolist(),
                metadata={"owner": "ann", "item_id": f"i{item}", "item_hash": content_hash},
            )
            for c in range(3)
        ]

    for item in range(20):
        store.add(version(item, "h0"))
    stop = threading.Event()
    errors: list[BaseException] = []
    bad: list[object] = []
    searches = [0]

    def reindex():
        n = 0
        while not stop.is_set():
            n += 1
            store.add(version(n % 20, f"h{n}"))  # as the pipeline does: new chunks first,
            store.delete_item("ann", f"i{n % 20}", keep_hash=f"h{n}")  # then the old go

    def searcher():
        query = np.ones(8, dtype=np.float32)
        while not stop.is_set():
            try:
                hits = store.search("ann", text="alpha beta", dense=query, k=10)
            except BaseException as exc:
                errors.append(exc)
                return
            bad.extend(h for h in hits if "item_id" not in h.payload or "text" not in h.payload)
            searches[0] += 1

    timer = threading.Timer(1.5, stop.set)
    timer.start()
    try:
        run_threads([reindex, searcher, searcher], timeout=30)
    finally:
        stop.set()
        timer.cancel()
        store.close()
    assert errors == [] and bad == []
    assert searches[0] > 50


def test_the_embedder_gives_the_same_vectors_from_many_threads(settings):
    embedder = get_embedder(settings)
    texts = [[f"thread {t} says {'word ' * (i * 9 % 60)}{i}" for i in range(12)] for t in range(4)]
    expected = [embedder.embed_documents(batch) for batch in texts]
    counts = [embedder.count_tokens(batch) for batch in texts]
    problems: list[object] = []
    barrier = threading.Barrier(4, timeout=30)

    def work(t):
        try:
            barrier.wait()
            for _ in range(3):
                if not np.allclose(embedder.embed_documents(texts[t]), expected[t], atol=1e-5):
                    problems.append(f"vectors of thread {t}")
                if embedder.count_tokens(texts[t]) != counts[t]:
                    problems.append(f"token counts of thread {t}")
        except BaseException as exc:
            problems.append(exc)

    run_threads([lambda t=t: work(t) for t in range(4)], timeout=120)
    assert problems == []
