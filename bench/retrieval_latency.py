"""Query latency: the full query path at 10k and 100k chunks, embedded engine vs local mode.

What is timed is what a user waits for: ``copilot.index.search.search`` (query clean-up,
query embedding with the real ONNX MiniLM, hybrid dense + BM25 search with fusion, mapping
hits to results with snippets) for one user among ten, each holding a tenth of the chunks.

Stored points are synthetic, because embedding 100k chunks with MiniLM on two cores takes
far too long: texts drawn from a Zipf-distributed vocabulary (so BM25 posting lists look
like real ones) and 384-d unit vectors from a mixture of a few hundred clustered centroids.
The embedded index is optimised (HNSW built) before timing, as after a sync. The same
points go into qdrant-client's local mode (in memory: persisted to a folder it writes ~55
points/s) through ``ServerVectorStore`` for comparison; it searches by brute force in
Python, so it gets fewer queries (``--local-queries``, default 20). ``embed_*`` is the
query embedding alone, timed separately on the same queries.

Prints JSON lines (each with a "name"): corpus, edge, qdrant_local, ratio, summary.

    .venv/bin/python bench/retrieval_latency.py [--sizes 10000,100000] [--queries 200]
        [--local-queries 20] [--skip-local]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("COPILOT_MODELS_DIR", str(Path(sys.prefix) / "share" / "copilot-models"))
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402

from copilot.config import Settings  # noqa: E402
from copilot.index.search import search  # noqa: E402
from copilot.workspace import Workspace  # noqa: E402

DIM = 384
USERS = 10
CENTROIDS = 300
TARGET_P95_MS = 30.0
OFFICE_WORDS = (  # noqa: SIM905
    "budget invoice meeting contract report project deadline customer delivery review "
    "forecast quarter revenue travel expense approval schedule agenda minutes proposal "
    "supplier order shipment payment audit compliance policy hiring training roadmap "
    "release migration risk issue decision action owner status update summary draft "
    "presentation slides spreadsheet finance marketing sales support ticket escalation "
    "renewal pricing discount warehouse inventory server outage backup security access"
).split()


def emit(record: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(record), flush=True)
    return record


def vocabulary(rng: np.random.Generator, size: int = 6000) -> list[str]:
    """Office words first (the frequent ones), then pronounceable made-up words and codes."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = list(OFFICE_WORDS)
    seen = set(words)
    while len(words) < size:
        if rng.random() < 0.1:
            prefix = rng.choice(list("ABCKXZ")) + rng.choice(list("QRTXZ"))
            word = f"{prefix}-{rng.integers(1000, 9999)}"
        else:
            word = "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def make_nodes(n: int, seed: int) -> tuple[list[TextNode], list[str]]:
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    ranks = np.arange(1, len(words) + 1)
    zipf = 1.0 / ranks**1.07
    zipf /= zipf.sum()
    centroids = rng.normal(size=(CENTROIDS, DIM)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    which = rng.integers(0, CENTROIDS, size=n)
    vectors = centroids[which] + rng.normal(scale=0.06, size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lengths = rng.integers(40, 160, size=n)
    tokens = rng.choice(len(words), size=int(lengths.sum()), p=zipf)
    nodes, start = [], 0
    for i in range(n):
        text = " ".join(words[t] for t in tokens[start : start + lengths[i]])
        start += lengths[i]
        item = i // 4  # four chunks per item
        nodes.append(
            TextNode(
                id_=str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)),
                text=text,
                embedding=vectors[i].tolist(),
                metadata={
                    "owner": f"user{item % USERS}",
                    "item_id": f"local:doc{item}.docx",
                    "title": " ".join(words[t] for t in rng.choice(len(words), 3, p=zipf)),
                    "kind": "mail" if item % 3 == 0 else "file",
                    "source": "local",
                    "chunk": i % 4,
                    "modified_ts": float(1_700_000_000 + item * 600),
                },
            )
        )
    return nodes, words


def make_queries(words: list[str], count: int, seed: int) -> list[str]:
    """2-5 words each, from the frequent-to-mid part of the vocabulary (as people type)."""
    rng = np.random.default_rng(seed + 1)
    pool = words[:1500]
    return [" ".join(rng.choice(pool, size=int(rng.integers(2, 6)))) for _ in range(count)]


def time_queries(ws: Workspace, owner: str, queries: list[str], warmup: int) -> dict[str, Any]:
    for q in queries[:warmup]:
        search(ws.store, ws.embedder, owner, q, k=10)
    took, found = [], 0
    for q in queries[warmup:]:
        start = time.perf_counter()
        results = search(ws.store, ws.embedder, owner, q, k=10)
        took.append((time.perf_counter() - start) * 1000)
        found += len(results)
    ms = np.asarray(took)
    embed = []
    for q in queries[warmup:]:
        start = time.perf_counter()
        ws.embedder.embed_query(q)
        embed.append((time.perf_counter() - start) * 1000)
    return {
        "embed_p50_ms": round(float(np.percentile(embed, 50)), 2),
        "embed_p95_ms": round(float(np.percentile(embed, 95)), 2),
        "queries": len(took),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "mean_results": round(found / max(len(took), 1), 1),
    }


def workspace_with(settings: Settings, store: Any) -> Workspace:
    ws = Workspace(settings)
    ws.__dict__["store"] = store  # the seeded index instead of the configured one
    return ws


def run_edge(settings, nodes, owner, queries, dim) -> dict[str, Any]:
    from copilot.index.store import EdgeVectorStore

    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "edge", dim)
        calls: list[float] = []  # each optimize: ``add`` makes one every OPTIMIZE_EVERY points
        optimize = EdgeVectorStore.optimize

        def timed(self: EdgeVectorStore) -> None:
            start = time.perf_counter()
            optimize(self)
            calls.append(time.perf_counter() - start)

        EdgeVectorStore.optimize = timed  # type: ignore[method-assign]
        try:
            start = time.perf_counter()
            store.add(nodes)
            store.optimize()  # what a sync does at its end
            load_s = time.perf_counter() - start - sum(calls)
        finally:
            EdgeVectorStore.optimize = optimize  # type: ignore[method-assign]
        optimize_s, longest_optimize_s = sum(calls), max(calls)
        segments = store.client.info().segments_count
        ws = workspace_with(settings, store)
        try:
            timed = time_queries(ws, owner, queries, warmup=10)
        finally:
            store.close()
    return {"load_s": round(load_s, 1), "optimize_s": round(optimize_s, 1),
            "longest_optimize_s": round(longest_optimize_s, 2), "segments": segments,
            **timed}  # fmt: skip


def run_local(settings, nodes, owner, queries, dim) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    from copilot.index.server_store import ServerVectorStore

    # In memory: local mode persisted to a folder writes ~55 points/s (SQLite, one row per
    # point), 100k would take half an hour; its searches are the same in-memory scans.
    store = ServerVectorStore(QdrantClient(":memory:"), "bench", dim)
    start = time.perf_counter()
    store.add(nodes)
    load_s = time.perf_counter() - start
    ws = workspace_with(settings, store)
    try:
        timed = time_queries(ws, owner, queries, warmup=2)
    finally:
        store.close()
    return {"load_s": round(load_s, 1), **timed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--local-queries", type=int, default=20)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        embedder = workspace_with(settings, None).embedder
        embedder.embed_query("warm up the model")
        owner = "user3"
        results: dict[int, float] = {}
        for n in (int(s) for s in args.sizes.split(",")):
            start = time.perf_counter()
            nodes, words = make_nodes(n, args.seed)
            queries = make_queries(words, args.queries + 10, args.seed)
            emit(
                {
                    "name": "corpus",
                    "chunks": n,
                    "users": USERS,
                    "owner_chunks": sum(1 for x in nodes if x.metadata["owner"] == owner),
                    "dim": DIM,
                    "generate_s": round(time.perf_counter() - start, 1),
                    "load_avg": round(os.getloadavg()[0], 2),
                }
            )
            edge = emit(
                {"name": "edge", "chunks": n, **run_edge(settings, nodes, owner, queries, DIM)}
            )
            results[n] = edge["p95_ms"]
            if args.skip_local:
                continue
            few = queries[: args.local_queries + 2]
            local = emit(
                {"name": "qdrant_local", "chunks": n, **run_local(settings, nodes, owner, few, DIM)}
            )
            emit(
                {
                    "name": "ratio",
                    "chunks": n,
                    "local_over_edge_p50": round(local["p50_ms"] / edge["p50_ms"], 1),
                    "local_over_edge_p95": round(local["p95_ms"] / edge["p95_ms"], 1),
                }
            )
        largest = max(results)
        emit(
            {
                "name": "summary",
                "target_p95_ms": TARGET_P95_MS,
                "chunks": largest,
                "edge_p95_ms": results[largest],
                "pass": results[largest] < TARGET_P95_MS,
                "load_avg": round(os.getloadavg()[0], 2),
            }
        )


if __name__ == "__main__":
    main()
