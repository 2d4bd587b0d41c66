"""The per-run costs the API's p95 work measured (docs/benchmarks.md, "Less interpreter time
per run"), each beside what it replaced, in one run: JSON lines.

- ``pack``: CPU per packing of 10 passages into a 3,000-token budget, counting the whole
  fenced block for every candidate (``estimate=False``, as before) vs on the estimate.
- ``candidates``: one 100-point candidate list from the embedded engine over 300 points,
  with the item id read from each point's payload (as before) vs without payload.
- ``upsert``: the longest single write (the binding holds the GIL through it) and the
  total for 512 points, in batches of 256 (as before) vs 64.
- ``citations``: CPU to pass a streamed answer through ``CitationStream`` a word at a time,
  settling text only at line breaks and checking it by regex on every delta (as before: a
  paragraph was checked whole again each time) vs also settling inside words
  (``_word_cut``) and skipping the regexes for text without a bracket, for a 40-word answer
  (the API bench's) and a 300-word paragraph.
- ``normalise`` and ``search``: CPU per DBSF normalisation of 100 scores with
  ``statistics.pstdev`` (exact fractions, as before) vs floats, and per hybrid search of the
  300 items (k = 8) without and with the dense leg's feedback (``copilot.index.feedback``).
- ``lock_stall``: how long the embedded engine's ``flush`` (after 64 new points) and
  ``optimize`` (after 4,000) take, and the longest gap of a thread that ticks every
  millisecond meanwhile: equal, the binding holds the interpreter lock through the call,
  and every other thread of the process (a server's requests) stands still that long
  (docs/benchmarks.md, "The sync's embedding at SCHED_IDLE").
- ``optimize_steps``: one owner's 16,000 new points written in steps of 4,000, 2,000 and
  1,000, ``optimize`` after each step: the longest call and the total (docs/benchmarks.md,
  "Are the engine's lock stalls in the p95?"). ~15 s.
- ``search_pool``: a hybrid search of the 300 items (k = 8, feedback on) with the engine's
  search pool at one thread (``SEARCH_THREADS``, shipped) vs its default (a thread per
  CPU): the process's CPU a search, its wall time idle and beside two busy processes, and
  the longest gap of a millisecond ticker meanwhile (the binding holds the interpreter
  lock through a query, pool or not: docs/benchmarks.md, "One search thread"). ~10 s.
- ``keyed_read``: the one read a sync makes per slice before embedding it
  (``vectors_by_key``, copilot/ingest/reuse.py), for 64 keys of which half are held, on
  one owner's 20,000 points among 40,000: its wall time (p50 / p95 / max of 200 reads) and
  the longest gap of a millisecond ticker during one read alone (median and worst of 20:
  the binding holds the lock through a scroll, and the API's background sync makes this
  read while requests are served). ~20 s.

    .venv/bin/python bench/hot_paths.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qdrant_edge as qe  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402

from copilot.index import store as store_module  # noqa: E402
from copilot.index.fusion import normalise  # noqa: E402
from copilot.index.search import SearchResult  # noqa: E402
from copilot.index.store import EdgeVectorStore, to_point  # noqa: E402
from copilot.llm.tokens import count_tokens  # noqa: E402
from copilot.skills import citation_stream  # noqa: E402
from copilot.skills.context import _pack  # noqa: E402
from copilot.skills.types import Source  # noqa: E402

DIM = 384


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def cpu_ms(fn: Any, reps: int) -> float:
    start = time.thread_time()
    for _ in range(reps):
        fn()
    return round((time.thread_time() - start) * 1000 / reps, 3)


def bench_pack() -> None:
    results = []
    for i in range(1, 11):
        text = f"Quarterly report section {i}: the Northwind account grew by {i * 7}%. " * 6
        results.append(SearchResult(item_id=f"item-{i % 5}", title=f"Doc {i}", url="",
                                    kind="docx", locator={"paragraph": i}, score=1 - i / 100,
                                    snippet="", chunk_id=f"c{i}", text=text))  # fmt: skip
    exact, quick = (
        cpu_ms(lambda est=est: _pack(results, 3000, count_tokens, 20, 0.8, True, estimate=est), 200)
        for est in (False, True)
    )
    emit({"name": "pack", "exact_cpu_ms": exact, "estimate_cpu_ms": quick,
          "ratio": round(exact / quick, 2)})  # fmt: skip


def bench_citations() -> None:
    sources = [Source(n, f"i{n}", f"i{n}#0", "t", "", "mail", {}, "x") for n in (1, 2, 3)]
    word_cut, check = citation_stream._word_cut, citation_stream.CitationStream._check

    def always(self: citation_stream.CitationStream, text: str) -> str:  # every delta's regexes
        return citation_stream.checked(text, self._known, self._alias)[0]

    for words in (40, 300):
        answer = " ".join(f"w{n} [1]." if n % 12 == 11 else f"word{n}" for n in range(words))
        deltas = [" " + w if n else w for n, w in enumerate(answer.split(" "))]

        def stream(deltas: list[str] = deltas) -> None:
            out: list[str] = []
            s = citation_stream.CitationStream(out.append, sources)
            for d in deltas:
                s.feed(d)
            s.close()

        citation_stream._word_cut = lambda text, ready: 0
        citation_stream.CitationStream._check = always  # type: ignore[method-assign]
        before = cpu_ms(stream, 50)
        citation_stream._word_cut = word_cut
        citation_stream.CitationStream._check = check  # type: ignore[method-assign]
        after = cpu_ms(stream, 50)
        emit({"name": "citations", "words": words, "before_cpu_ms": before,
              "after_cpu_ms": after, "ratio": round(before / after, 2)})  # fmt: skip


def nodes(n: int, item: str, rng: np.random.Generator) -> list[TextNode]:
    out = []
    for i in range(n):
        vector = rng.standard_normal(DIM).astype(np.float32)
        out.append(TextNode(
            id_=str(uuid.uuid4()), text=f"budget review week {i} northwind account " * 8,
            embedding=(vector / np.linalg.norm(vector)).tolist(),
            metadata={"owner": "u", "item_id": item, "title": "t", "kind": "file", "url": "",
                      "locator": {}, "source": "local"},
        ))  # fmt: skip
    return out


def bench_store() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "index", DIM)
        for i in range(300):
            store.add(nodes(1, f"item-{i}", rng))
        query = rng.standard_normal(DIM).astype(np.float32).tolist()
        filt = qe.Filter(must=[qe.FieldCondition("owner", match=qe.MatchValue("u"))])

        def candidates(payload: bool) -> None:
            selector = qe.PayloadSelector.Include(["item_id"]) if payload else False
            request = qe.QueryRequest(limit=100, query=qe.Query.Nearest(query, using="dense"),
                                      filter=filt, with_payload=selector)  # fmt: skip
            store.client.query_batch(qe.QueryBatchRequest([request]))

        emit({"name": "candidates", "points": 300, "limit": 100,
              "with_payload_ms": cpu_ms(lambda: candidates(True), 300),
              "without_payload_ms": cpu_ms(lambda: candidates(False), 300)})  # fmt: skip

        bench_search(store, np.asarray(query, dtype=np.float32), rng)

        for size in (256, 64):
            points = [to_point(n, DIM) for n in nodes(512, f"big-{size}", rng)]
            calls = []
            start = time.perf_counter()
            for at in range(0, len(points), size):
                began = time.perf_counter()
                store.client.update(qe.UpdateOperation.upsert_points(points[at : at + size]))
                calls.append(time.perf_counter() - began)
            emit({"name": "upsert", "points": 512, "batch": size,
                  "total_ms": round((time.perf_counter() - start) * 1000, 1),
                  "longest_call_ms": round(max(calls) * 1000, 1)})  # fmt: skip
        store.close()


def bench_search(store: EdgeVectorStore, query: np.ndarray, rng: np.random.Generator) -> None:
    """DBSF's normalisation in exact fractions (as before) vs floats, and a whole hybrid
    search over the 300 items without and with the dense leg's feedback."""
    scores = rng.random(100).tolist()

    def exact() -> list[float]:
        mean, spread = statistics.fmean(scores), 6 * statistics.pstdev(scores)
        return [(x - (mean - spread / 2)) / spread for x in scores]

    emit({"name": "normalise", "scores": 100, "before_cpu_ms": cpu_ms(exact, 2000),
          "after_cpu_ms": cpu_ms(lambda: normalise(scores), 2000)})  # fmt: skip
    timed = {
        feedback: cpu_ms(lambda f=feedback: store.search(
            "u", text="budget review northwind", dense=query, k=8, feedback=f), 300)
        for feedback in (0, 3)
    }  # fmt: skip
    emit({"name": "search", "items": 300, "mode": "hybrid", "k": 8,
          "without_feedback_cpu_ms": timed[0], "with_feedback_cpu_ms": timed[3]})  # fmt: skip


def stall_ms(call: Any) -> tuple[float, float, float]:
    """(``call``'s wall time, its CPU time, the longest gap of a thread ticking every
    millisecond): wall beyond CPU is waiting (an fsync) with the lock still held."""
    gaps: list[float] = []

    def timed_call() -> tuple[float, float]:
        time.sleep(0.05)
        began, cpu = time.perf_counter(), time.thread_time()
        call()
        took, cpu = time.perf_counter() - began, time.thread_time() - cpu
        time.sleep(0.05)
        return took, cpu

    took, cpu = ticking(timed_call, gaps)
    return round(took * 1000, 1), round(cpu * 1000, 1), round(max(gaps) * 1000, 1)


def bench_lock_stalls() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "index", DIM)
        store.client.update(qe.UpdateOperation.upsert_points(
            [to_point(n, DIM) for n in nodes(4_000, "bulk", rng)]))  # fmt: skip
        took, cpu, gap = stall_ms(store.optimize)
        emit({"name": "lock_stall", "call": "optimize", "new_points": 4_000, "call_ms": took,
              "call_cpu_ms": cpu, "longest_tick_gap_ms": gap})  # fmt: skip
        store.client.update(qe.UpdateOperation.upsert_points(
            [to_point(n, DIM) for n in nodes(64, "slice", rng)]))  # fmt: skip
        took, cpu, gap = stall_ms(store.flush)
        emit({"name": "lock_stall", "call": "flush", "new_points": 64, "call_ms": took,
              "call_cpu_ms": cpu, "longest_tick_gap_ms": gap})  # fmt: skip
        store.close()


def bench_optimize_steps(total: int = 16_000) -> None:
    for every in (4_000, 2_000, 1_000):
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeVectorStore(Path(tmp) / "index", DIM)
            walls: list[float] = []
            for start in range(0, total, every):
                store.client.update(qe.UpdateOperation.upsert_points(
                    [to_point(n, DIM) for n in nodes(every, f"b{start}", rng)]))  # fmt: skip
                began = time.perf_counter()
                store.client.optimize()
                walls.append(round((time.perf_counter() - began) * 1000, 1))
            store.close()
        emit({"name": "optimize_steps", "points": total, "every": every, "calls": len(walls),
              "longest_ms": max(walls), "total_ms": round(sum(walls)),
              "calls_ms": walls})  # fmt: skip


def bench_search_pool(searches: int = 400) -> None:
    rng = np.random.default_rng(0)
    query = rng.standard_normal(DIM).astype(np.float32)
    shipped = store_module.SEARCH_THREADS
    for threads in (shipped, None):
        store_module.SEARCH_THREADS = threads
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeVectorStore(Path(tmp) / "index", DIM)
            for i in range(300):
                store.add(nodes(1, f"item-{i}", np.random.default_rng(i)))

            def one(store: EdgeVectorStore = store) -> None:
                store.search("u", text="budget review northwind", dense=query, k=8, feedback=3)

            for _ in range(50):
                one()
            cpu = time.process_time()
            idle = timed(one, searches)
            cpu = (time.process_time() - cpu) * 1000 / searches
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
            try:
                time.sleep(0.5)
                gaps: list[float] = []
                loaded = ticking(lambda: timed(one, searches), gaps)
            finally:
                for proc in busy:
                    proc.kill()
                    proc.wait()
            store.close()
        emit({"name": "search_pool", "threads": threads or "engine default", "items": 300,
              "process_cpu_ms": round(cpu, 2), "idle_p50_ms": pct(idle, 0.5),
              "idle_p95_ms": pct(idle, 0.95), "busy_p50_ms": pct(loaded, 0.5),
              "busy_p95_ms": pct(loaded, 0.95), "busy_ticker_p99_ms": pct(gaps, 0.99)})  # fmt: skip
    store_module.SEARCH_THREADS = shipped


def bench_keyed_read(reads: int = 200, keys: int = 64) -> None:
    from copilot.index.base import EMBED_KEY, embed_key

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "index", DIM)
        for owner in ("u", "other"):
            for start in range(0, 20_000, 4_000):
                batch = nodes(4_000, f"{owner}{start}", rng)
                for i, node in enumerate(batch):
                    node.metadata.update(owner=owner, **{EMBED_KEY: embed_key(f"{start + i}")})
                store.client.update(qe.UpdateOperation.upsert_points(
                    [to_point(n, DIM) for n in batch]))  # fmt: skip
                store.client.optimize()
        asked = [[embed_key(f"{r * 97 + k * (2 if k % 2 else 1) * 331}") for k in range(keys)]
                 for r in range(reads)]  # fmt: skip
        found: list[int] = []
        walls: list[float] = []
        for some in asked:
            began = time.perf_counter()
            found.append(len(store.vectors_by_key("u", some)))
            walls.append(time.perf_counter() - began)
        # A sync reads once per slice (a second or so apart): the stall of one read alone.
        stalls = [stall_ms(partial(store.vectors_by_key, "u", some))[2] for some in asked[:20]]
        store.close()
    emit({"name": "keyed_read", "points": 40_000, "owner_points": 20_000, "keys": keys,
          "found_mean": round(statistics.mean(found), 1), "p50_ms": pct(walls, 0.5),
          "p95_ms": pct(walls, 0.95), "max_ms": round(max(walls) * 1000, 2),
          "one_read_tick_gap_ms_p50_max": [statistics.median(stalls), max(stalls)]})  # fmt: skip


def timed(call: Any, reps: int) -> list[float]:
    walls = []
    for _ in range(reps):
        began = time.perf_counter()
        call()
        walls.append(time.perf_counter() - began)
    return walls


def ticking(call: Any, gaps: list[float]) -> Any:
    """``call()`` while a thread sleeping a millisecond at a time records its gaps."""
    done = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        return call()
    finally:
        done.set()
        ticker.join()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)


if __name__ == "__main__":
    bench_pack()
    bench_citations()
    bench_store()
    bench_lock_stalls()
    bench_optimize_steps()
    bench_search_pool()
    bench_keyed_read()
