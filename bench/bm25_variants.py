"""BM25 on chunks against BM25 on whole items: every variant scored on the same index.

Issue 18: chunk-level BM25 lost to whole-document BM25 on a held-out collection of longer
documents. The causes named there are per-chunk term statistics (IDF counted over chunks,
length normalised against a fixed chunk length) and a document's best chunk standing for
it. This script measures each remedy without rebuilding the index per variant:

1. ``dump``: sync a collection once through the product path (parse, chunk, embed, index,
   as ``copilot eval retrieval`` does) and write every chunk (item, title, text, message
   id) and, per query, the engine's dense and BM25 candidate lists (200 chunks each).
2. ``score``: re-score BM25 offline for each variant (term counts from the product's own
   tokeniser, ``qdrant_edge.Bm25``; the formula is the engine's, pinned by
   ``tests/index/test_bm25.py``; variant C0 reproduces the engine's scores to 1e-5), fuse
   with the dense list by the product's DBSF for "hybrid", rank documents by their best
   chunk and print nDCG@10 / MRR@10.

Document-level variants keep the chunk locator: an item is represented by its best chunk.

    .venv/bin/python bench/bm25_variants.py dump --beir DIR OUT.json
    .venv/bin/python bench/bm25_variants.py dump --mail DIR OUT.json
    .venv/bin/python bench/bm25_variants.py score OUT.json [--mail]

3. ``compare``: the real engine, before and after a change, in one run: ``copilot eval
   retrieval`` (sync, then every query through ``copilot.index.search``) on one
   collection, once from each of two source trees (folders holding ``copilot/`` and
   ``connectors/``), printed side by side:

    .venv/bin/python bench/bm25_variants.py compare --before SRC --after SRC --beir DIR

Chunk size comes from the settings (``COPILOT_CHUNK_TOKENS``, ``COPILOT_CHUNK_OVERLAP``).
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
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from statistics import fmean  # noqa: E402
from typing import Any  # noqa: E402

import qdrant_edge as qe  # noqa: E402

from connectors.local import LocalFolder  # noqa: E402
from copilot.eval import retrieval as R  # noqa: E402
from copilot.eval.beir import CollectionError, load_beir  # noqa: E402
from copilot.eval.metrics import mrr_at, ndcg_at  # noqa: E402
from copilot.index import bm25  # noqa: E402
from copilot.index.filters import scoped  # noqa: E402
from copilot.index.fusion import dbsf, plan_stages  # noqa: E402
from copilot.index.items import IS_ITEM  # noqa: E402
from copilot.index.search import QueryError, clean_query  # noqa: E402
from copilot.index.store import EdgeVectorStore  # noqa: E402
from copilot.workspace import Workspace  # noqa: E402

LIMIT = 200  # candidates per list, as the evaluation asks
Qrels = dict[str, dict[str, int]]
# k1 huge and b = 0 turn the BM25 weight into the raw term count: tf (k1+1) / (tf + k1) -> tf
_COUNTS = qe.Bm25(qe.Bm25Config(k=1e7, b=0.0, avg_len=100.0, ascii_folding=True))


@contextmanager
def synced(kind: str, folder: Path) -> Iterator[tuple[Workspace, dict[str, str], Qrels]]:
    """A throwaway workspace with the collection synced through the product path, as
    ``copilot eval retrieval`` does, and its queries and judgements (also for
    ``bench/dense_variants.py``)."""
    with (
        tempfile.TemporaryDirectory(prefix="variants-") as tmp,
        Workspace(R.eval_settings(Path(tmp))) as ws,
    ):
        if kind == "beir":
            collection = load_beir(folder)
            R.ingest(ws, R.MemoryConnector(R.OWNER, R.beir_items(collection)))
            yield ws, collection.queries, collection.qrels
        else:
            queries, qrels = R.load_known_item(folder)
            R.ingest(ws, LocalFolder(folder, owner=R.OWNER, include=("*.eml",)))
            yield ws, queries, qrels


def dump(kind: str, folder: Path, out: Path) -> None:
    with synced(kind, folder) as (ws, queries, qrels):
        store = ws.store
        if not isinstance(store, EdgeVectorStore):
            raise SystemExit("the variant study reads the embedded index (no COPILOT_QDRANT_URL)")
        flt = scoped(R.OWNER, must_not=[IS_ITEM])  # chunks only, not whole-item points
        chunks: dict[str, dict[str, Any]] = {}
        offset = None
        while True:
            request = qe.ScrollRequest(offset=offset, limit=1000, filter=flt, with_payload=True)
            records, offset = store.client.scroll(request)
            for r in records:
                p = dict(r.payload or {})
                chunks[str(r.id)] = {
                    "item": p.get("item_id"),
                    "title": p.get("title") or "",
                    "text": p.get("text") or "",
                    "mid": (p.get("locator") or {}).get("message_id"),
                }
            if offset is None:
                break
        engine = store._engine()
        lists: dict[str, dict[str, Any]] = {}
        for qid, query in queries.items():
            try:
                text = clean_query(query)
            except QueryError:
                lists[qid] = {"text": "", "dense": [], "bm25": []}
                continue
            vector = [float(x) for x in ws.embedder.embed_query(text)]
            stages = plan_stages("hybrid", vector, text, LIMIT, LIMIT, None)
            found = [
                [(i, s) for i, s, _ in ranked]
                for ranked in engine.candidates(R.OWNER, [(st, flt) for st in stages])
            ]
            lists[qid] = {"text": text, "dense": found[0], "bm25": found[1:] and found[1]}
    out.write_text(json.dumps({"chunks": chunks, "queries": lists, "qrels": qrels}))


def counts(title: str, texts: list[str]) -> dict[int, int]:
    """Term counts of a chunk (or an item) as the product indexes it: title twice, text."""
    parts = [title] * bm25.TITLE_REPEAT if title.strip() else []
    vector = _COUNTS.embed_document("\n".join(parts + texts))
    return {i: round(v) for i, v in zip(vector.indices, vector.values, strict=True)}


class Stats:
    """Term counts, lengths and document frequencies of one level (chunks or items)."""

    def __init__(self, tfs: dict[str, dict[int, int]]) -> None:
        self.tfs = tfs
        self.lens = {key: sum(tf.values()) for key, tf in tfs.items()}
        self.avg = fmean(self.lens.values())
        self.df: dict[int, int] = defaultdict(int)
        for tf in tfs.values():
            for term in tf:
                self.df[term] += 1

    def idf(self, terms: list[int]) -> dict[int, float]:
        n = len(self.tfs)
        return {t: math.log(1 + (n - self.df[t] + 0.5) / (self.df[t] + 0.5)) for t in terms}

    def scores(self, idf: dict[int, float], avg: float) -> dict[str, float]:
        k1, b = bm25.K1, bm25.B
        out = {}
        for key, tf in self.tfs.items():
            norm = k1 * (1 - b + b * self.lens[key] / avg)
            s = sum(w * tf[t] * (k1 + 1) / (tf[t] + norm) for t, w in idf.items() if t in tf)
            if s > 0:
                out[key] = s
        return out


def score(path: Path, mail: bool) -> None:
    data = json.loads(path.read_text())
    chunks, queries, qrels = data["chunks"], data["queries"], data["qrels"]
    items: dict[str, list[str]] = defaultdict(list)
    for cid, c in chunks.items():
        items[c["item"]].append(cid)
    chunk = Stats({cid: counts(c["title"], [c["text"]]) for cid, c in chunks.items()})
    item = Stats(
        {
            it: counts(chunks[cids[0]]["title"], [chunks[c]["text"] for c in cids])
            for it, cids in items.items()
        }
    )
    item_of = {cid: c["item"] for cid, c in chunks.items()}

    def doc_of(cid: str) -> str | None:
        c = chunks[cid]
        if mail:
            return R.normalise_id(c["mid"]) if c["mid"] else None
        return str(c["item"]).removeprefix("beir:")

    print(
        f"{path.name}: {len(chunk.tfs)} chunks, {len(item.tfs)} items, "
        f"{len(chunk.tfs) / len(item.tfs):.2f} chunks/item, mean length (terms) "
        f"chunk {chunk.avg:.1f}, item {item.avg:.1f}"
    )
    variants: dict[str, Callable[[list[int]], list[tuple[str, float]]]] = {}

    def chunk_variant(idf_level: Stats, avg: float) -> Callable[[list[int]], Any]:
        return lambda terms: ranked(chunk.scores(idf_level.idf(terms), avg))

    def item_variant(combine: Callable[[float, float], float]) -> Callable[[list[int]], Any]:
        def run(terms: list[int]) -> list[tuple[str, float]]:
            best: dict[str, tuple[str, float]] = {}
            for cid, s in ranked(chunk.scores(item.idf(terms), chunk.avg)):
                best.setdefault(item_of[cid], (cid, s))
            whole = item.scores(item.idf(terms), item.avg)
            return ranked(
                {best[it][0]: combine(s, best[it][1]) for it, s in whole.items() if it in best}
            )

        return run

    def summed(terms: list[int]) -> list[tuple[str, float]]:
        total: dict[str, float] = defaultdict(float)
        best: dict[str, str] = {}
        for cid, s in ranked(chunk.scores(chunk.idf(terms), bm25.AVG_LEN)):
            total[item_of[cid]] += s
            best.setdefault(item_of[cid], cid)
        return ranked({best[it]: s for it, s in total.items()})

    variants["C0 chunk statistics, avg_len 100 (today)"] = chunk_variant(chunk, bm25.AVG_LEN)
    variants["C1 item IDF, avg_len 100"] = chunk_variant(item, bm25.AVG_LEN)
    variants["C2 chunk IDF, avg_len = mean chunk"] = chunk_variant(chunk, chunk.avg)
    variants["C3 item IDF, avg_len = mean chunk"] = chunk_variant(item, chunk.avg)
    variants["D0 whole-item BM25, best chunk as locator"] = item_variant(lambda d, c: d)
    variants["D1 whole-item BM25 + best chunk (C3)"] = item_variant(lambda d, c: d + c)
    variants["S0 sum of an item's chunk scores (C0)"] = summed

    def built(avg_item: float | None) -> Callable[[list[int]], Any]:
        """What the stores run (E): whole item with item length against a fixed ``avg_item``
        (None: the real mean), plus the best chunk scored with item IDF against the chunk
        field's fixed AVG_LEN (C1); items without an item score keep their chunk score."""

        def run(terms: list[int]) -> list[tuple[str, float]]:
            idf = item.idf(terms)
            best: dict[str, tuple[str, float]] = {}
            for cid, s in ranked(chunk.scores(idf, bm25.AVG_LEN)):
                best.setdefault(item_of[cid], (cid, s))
            whole = item.scores(idf, item.avg if avg_item is None else avg_item)
            return ranked({cid: s + whole.get(it, 0.0) for it, (cid, s) in best.items()})

        return run

    for avg_item in (None, 100.0, 300.0, 1000.0):
        label = "real mean" if avg_item is None else f"{avg_item:.0f}"
        variants[f"E item avg_len {label} + best chunk C1"] = built(avg_item)

    worst = {"C0": 0.0, "C1": 0.0}
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for qid, q in queries.items():
        terms = list(bm25.query_vector(q["text"]).indices) if q["text"] else []
        dense = [tuple(x) for x in q["dense"]]
        for name, run in variants.items():
            sparse = run(terms)[:LIMIT] if terms else []
            if name[:2] in worst and q["bm25"]:
                engine = dict(q["bm25"])
                gaps = [abs(engine[c] - s) for c, s in sparse[:20] if c in engine]
                worst[name[:2]] = max([worst[name[:2]], *gaps])
            fused = dbsf([dense, sparse], [1.0, 1.0]) if dense and sparse else dense or sparse
            for mode, hits in (("bm25", sparse), ("hybrid", fused)):
                docs = documents(hits, doc_of)
                table[name][f"{mode} ndcg"].append(ndcg_at(docs, qrels[qid], 10))
                table[name][f"{mode} mrr"].append(mrr_at(docs, qrels[qid], 10))
    # An index without whole-item points scores chunks as C0, one with them as C1.
    print(
        "the engine's chunk BM25 scores against C0 / C1: largest difference "
        f"{worst['C0']:.2e} / {worst['C1']:.2e}"
    )
    print("| variant | BM25 nDCG@10 | BM25 MRR@10 | hybrid nDCG@10 | hybrid MRR@10 |")
    print("|---|---|---|---|---|")
    for name, cols in table.items():
        row = (fmean(cols[k]) for k in ("bm25 ndcg", "bm25 mrr", "hybrid ndcg", "hybrid mrr"))
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


COMPARE_MODES = "bm25,dense,hybrid"
_RUN_CLI = "import sys; from copilot.cli.app import main; sys.argv[0] = 'copilot'; main()"


def compare(before: Path, after: Path, kind: str, folder: Path) -> None:
    """Run ``copilot eval retrieval --json`` from each source tree and print both."""
    found = {}
    for label, tree in (("before", before), ("after", after)):
        if not (tree / "copilot").is_dir():
            raise SystemExit(f"bm25_variants: {tree} holds no copilot/ package")
        env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
        option = "--beir" if kind == "beir" else "--mail-known-item"
        command = [sys.executable, "-c", _RUN_CLI, "eval", "retrieval", "--json"]
        command += ["--mode", COMPARE_MODES, option, str(folder.resolve())]
        # cwd = the tree: ``python -c`` puts the working directory first on sys.path.
        done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bm25_variants: the {label} run failed:\n{done.stderr[-2000:]}")
        found[label] = json.loads(done.stdout)
    print(f"{folder.name}: before | after")
    print("| mode | nDCG@10 | MRR@10 | R@100 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for mode in COMPARE_MODES.split(","):
        b, a = found["before"][mode], found["after"][mode]
        cells = [
            f"{b[key]:.3f} \\| {a[key]:.3f}" for key in ("ndcg@10", "mrr@10", "recall@100")
        ] + [f"{b[key]:.1f} \\| {a[key]:.1f}" for key in ("p50_ms", "p95_ms")]
        print(f"| {mode} | " + " | ".join(cells) + " |")


def documents(hits: list[tuple[str, float]], doc_of: Callable[[str], str | None]) -> list[str]:
    """Documents in the order of their best chunk, each once (as the evaluation ranks)."""
    out: list[str] = []
    for cid, _ in hits:
        doc = doc_of(cid)
        if doc is not None and doc not in out:
            out.append(doc)
    return out[: R.DOCS_PER_QUERY]


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    source = d.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", type=Path)
    source.add_argument("--mail", type=Path)
    d.add_argument("out", type=Path)
    s = sub.add_parser("score")
    s.add_argument("dump", type=Path)
    s.add_argument("--mail", action="store_true", help="documents are messages (Message-ID)")
    c = sub.add_parser("compare")
    c.add_argument("--before", type=Path, required=True, help="source tree of the baseline")
    c.add_argument("--after", type=Path, required=True, help="source tree of the change")
    collection = c.add_mutually_exclusive_group(required=True)
    collection.add_argument("--beir", type=Path)
    collection.add_argument("--mail", type=Path)
    args = parser.parse_args()
    if args.command == "compare":
        compare(args.before, args.after, "beir" if args.beir else "mail", args.beir or args.mail)
    elif args.command == "dump":
        try:
            dump("beir" if args.beir else "mail", args.beir or args.mail, args.out)
        except CollectionError as exc:
            raise SystemExit(f"bm25_variants: {exc}") from None
    else:
        score(args.dump, args.mail)


if __name__ == "__main__":
    main()
