"""Pseudo-relevance feedback for hybrid search, every variant on the same index (issue 18:
hybrid ≥ 0.46 nDCG@10 on long-document sets), the study behind ``copilot.index.feedback``.

One sync through the product path (``bench/bm25_variants.synced``), then per query the
product's BM25 list (``search(mode="bm25")``, 200 chunks, whole-item BM25 as shipped) and
a dense list scored exactly from the stored vectors (best chunk per item, as
``bench/dense_variants.py``), fused by the product's DBSF. Variants, fixed before the
first run (the usual first settings in the literature, nothing fitted):

- **H0** hybrid without feedback;
- **P1** the dense query moved towards its own top 3 (Rocchio α = β = 1);
- **P2** the dense query moved towards the *fused* list's top 3 (Rocchio α = β = 1): what
  shipped;
- **P2b** the query and the fused top 3 averaged as four equal vectors (Qdrant's
  ``recommend`` ``average_vector``);
- **P3/P4** P2 plus BM25 expanded by the 10 / 5 terms of the fused top 3 with the highest
  tf·idf (RM3-like, unweighted);
- **P5** BM25 expanded by 5 terms, dense as in H0;
- **P6** three lists fused: dense, BM25, and P2's dense list.

    .venv/bin/python bench/feedback_variants.py --beir ../shared/data/retrieval/cranfield
    COPILOT_CHUNK_TOKENS=64 COPILOT_CHUNK_OVERLAP=0 \
        .venv/bin/python bench/feedback_variants.py --beir ../shared/data/retrieval/cranfield
    .venv/bin/python -m copilot.eval.mailgen /tmp/mail0 --seed 0     # and --seed 1
    .venv/bin/python bench/feedback_variants.py --mail /tmp/mail0
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
import math  # noqa: E402
import re  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from statistics import fmean  # noqa: E402

import numpy as np  # noqa: E402

from bench.bm25_variants import synced  # noqa: E402
from bench.dense_variants import LIMIT, documents, hit_of, query_vectors, stored  # noqa: E402
from copilot.eval import retrieval as R  # noqa: E402
from copilot.eval.metrics import mrr_at, ndcg_at  # noqa: E402
from copilot.index.feedback import feedback_query  # noqa: E402
from copilot.index.fusion import dbsf  # noqa: E402
from copilot.index.search import search  # noqa: E402
from copilot.index.store import EdgeVectorStore  # noqa: E402

# Expansion terms: words of three letters or more, not stop words (BM25 drops those anyway).
WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
_STOP_WORDS = (
    "the of and or in on at to for from by with is are was were be been this that these "
    "those it its as which what how can does not no there their than then into over under "
    "also has have had may such should would could our you they them his her about between "
    "when where who whom why all any each other some more most very only"
)
STOP = set(_STOP_WORDS.split())
Ranked = list[tuple[str, float]]


def run(kind: str, folder: Path) -> dict[str, dict[str, float]]:
    doc_of = R.beir_doc if kind == "beir" else R.mail_doc
    with synced(kind, folder) as (ws, queries, qrels):
        store = ws.store
        if not isinstance(store, EdgeVectorStore):
            raise SystemExit("reads the embedded index (no COPILOT_QDRANT_URL)")
        ids, payloads, matrix = stored(store)
        row_of = {i: r for r, i in enumerate(ids)}
        item_of = [str(payloads[i]["item_id"]) for i in ids]
        result_of = {i: hit_of(i, payloads[i]) for i in ids}
        words = {i: Counter(w for w in WORD.findall(str(payloads[i].get("text") or "").lower())
                            if w not in STOP) for i in ids}  # fmt: skip
        df = Counter(w for counts in words.values() for w in counts)

        def dense(q: np.ndarray) -> Ranked:
            sims = matrix @ q
            best: dict[str, tuple[str, float]] = {}
            for row in np.argsort(-sims)[: LIMIT * 3]:
                best.setdefault(item_of[row], (ids[row], float(sims[row])))
            return sorted(best.values(), key=lambda p: p[1], reverse=True)[:LIMIT]

        def expanded(text: str, top: list[str], n: int) -> Ranked:
            asked = set(WORD.findall(text.lower()))
            score: dict[str, float] = defaultdict(float)
            for c in top:
                total = sum(words[c].values()) or 1
                for w, tf in words[c].items():
                    if w not in asked:
                        score[w] += tf / total * math.log(len(ids) / df[w])
            terms = " ".join(sorted(score, key=lambda w: score[w], reverse=True)[:n])
            hits = search(store, ws.embedder, R.OWNER, f"{text} {terms}", k=LIMIT, mode="bm25")
            return [(h.chunk_id, h.score) for h in hits]

        table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for qid, text, q in query_vectors(ws, queries):
            plain = dense(q)
            sparse = [(h.chunk_id, h.score) for h in
                      search(store, ws.embedder, R.OWNER, text, k=LIMIT, mode="bm25")]  # fmt: skip

            def fuse(*lists: Ranked) -> Ranked:
                kept = [ranked for ranked in lists if ranked]
                return dbsf(kept, [1.0] * len(kept))

            hybrid = fuse(plain, sparse)
            top_dense = [c for c, _ in plain[:3]]
            top_fused = [c for c, _ in hybrid[:3]]
            p2 = dense(feedback_query(q, [matrix[row_of[c]] for c in top_fused]))
            four = q + matrix[[row_of[c] for c in top_fused]].sum(axis=0)
            plus5 = expanded(text, top_fused, 5)
            variants = {
                "H0 hybrid, no feedback": hybrid,
                "P1 dense towards its own top 3": fuse(
                    dense(feedback_query(q, [matrix[row_of[c]] for c in top_dense])), sparse
                ),
                "P2 dense towards the fused top 3 (shipped)": fuse(p2, sparse),
                "P2b query + fused top 3 as four equals": fuse(
                    dense(four / np.linalg.norm(four)), sparse
                ),
                "P3 P2 + BM25 expanded by 10 terms": fuse(p2, expanded(text, top_fused, 10)),
                "P4 P2 + BM25 expanded by 5 terms": fuse(p2, plus5),
                "P5 BM25 expanded by 5 terms": fuse(plain, plus5),
                "P6 dense, BM25 and P2's dense fused": fuse(plain, sparse, p2),
            }
            for name, hits in variants.items():
                docs = documents(hits, result_of, doc_of)
                table[name]["ndcg10"].append(ndcg_at(docs, qrels[qid], 10))
                table[name]["mrr10"].append(mrr_at(docs, qrels[qid], 10))
        return {n: {k: round(fmean(v), 4) for k, v in cols.items()} for n, cols in table.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--beir", type=Path)
    group.add_argument("--mail", type=Path)
    args = parser.parse_args()
    kind, folder = ("beir", args.beir) if args.beir else ("mail", args.mail)
    chunk = os.environ.get("COPILOT_CHUNK_TOKENS", "default")
    for name, row in run(kind, folder).items():
        print(json.dumps({"name": "feedback_variant", "collection": folder.name,
                          "chunk_tokens": chunk, "variant": name, **row}))  # fmt: skip


if __name__ == "__main__":
    main()
