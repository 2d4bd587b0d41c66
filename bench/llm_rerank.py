"""A second stage over the fused list, scored by the embedded language model (issue 18).

The issue's suggestion: rerank the fused top of a hybrid search pointwise, each passage
judged relevant or not by the embedded model with a constrained yes/no answer, "measured
for quality and latency". This measures it before the product carries it: one sync of the
collection through the product path, then, for the first ``--queries`` queries (in the
collection's own order, fixed before the run),

- the product's hybrid list as ``copilot eval retrieval`` ranks it (documents by their
  first chunk);
- its top ``--depth`` documents, each judged by the model from the chunk the list cites:
  one prompt per passage (the query first, so the instruction and the query are read once
  per query and held in the model's cache), and the score is the log-odds of " yes"
  against " no" for the first answer token — the constrained answer without sampling;
- **R1** the top reordered by that score alone, **R2** the reciprocal-rank fusion
  (k = 60) of the hybrid order and the model's order, the rest of the list unchanged.

nDCG@10 / MRR@10 as ``copilot eval retrieval`` computes them, and the model's time per
query (prompt tokens read, seconds). Nothing is fitted: prompt, depth and fusion are fixed
before the run.

    .venv/bin/python bench/llm_rerank.py --beir ../shared/data/retrieval/cranfield \\
        --queries 40 --depth 10
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
import resource  # noqa: E402
import time  # noqa: E402
from statistics import fmean, median  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench.bm25_variants import synced  # noqa: E402
from copilot.config import get_settings  # noqa: E402
from copilot.eval import retrieval as R  # noqa: E402
from copilot.eval.metrics import mrr_at, ndcg_at  # noqa: E402
from copilot.index.fusion import rrf  # noqa: E402
from copilot.index.search import QueryError, SearchResult, clean_query, search  # noqa: E402
from copilot.llm.embedded.models import resolve  # noqa: E402

SYSTEM = (
    "You judge search results. Given a search query and a passage, answer yes if the "
    "passage is relevant to the query (it answers it or helps to answer it), no otherwise. "
    "Answer with one word: yes or no."
)
PASSAGE_CHARS = 1200  # about 250 tokens: the chunk the list cites, cut


def ranked(hits: list[SearchResult]) -> list[tuple[str, str]]:
    """(document, the text of its first chunk in the list), in list order."""
    seen: dict[str, str] = {}
    for hit in hits:
        doc = R.beir_doc(hit)
        if doc is not None and doc not in seen:
            seen[doc] = hit.text
    return list(seen.items())


class Judge:
    """The model, with the query's part of the prompt held in its cache."""

    def __init__(self, model: Path, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(str(model), n_ctx=1024, n_threads=threads, n_batch=512, verbose=False)
        vocab = self.llm.tokenize
        self.yes = [vocab(w.encode(), add_bos=False, special=False)[0] for w in ("yes", "Yes")]
        self.no = [vocab(w.encode(), add_bos=False, special=False)[0] for w in ("no", "No")]
        self.vocab = self.llm.n_vocab()
        self.tokens_read = 0

    def _tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def scores(self, query: str, passages: list[str]) -> list[float]:
        head = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nQuery: {query}\n\n"
        prefix = self._tokens(head)
        self.llm.reset()
        self.llm.eval(prefix)
        self.tokens_read += len(prefix)
        out: list[float] = []
        for passage in passages:
            tail = (
                f"Passage: {passage[:PASSAGE_CHARS]}\n\nIs the passage relevant to the query?"
                "<|im_end|>\n<|im_start|>assistant\n"
            )
            suffix = self._tokens(tail)
            self.llm.n_tokens = len(prefix)  # keep the query's part, drop the last passage
            self.llm.eval(suffix)
            self.tokens_read += len(suffix)
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.vocab,))
            yes, no = (np.logaddexp.reduce(logits[ids]) for ids in (self.yes, self.no))
            out.append(float(yes - no))
        return out


def fused(*orders: list[str]) -> list[str]:
    """The product's reciprocal-rank fusion (k = 60, equal weights) of document orders."""
    return [doc for doc, _ in rrf([[(d, 0.0) for d in o] for o in orders], [1.0] * len(orders))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = resolve(get_settings())
    judge = Judge(model.path, args.threads)
    table: dict[str, dict[str, list[float]]] = {
        name: {"ndcg": [], "mrr": []} for name in ("hybrid", "R1 model order", "R2 rrf")
    }
    times: list[float] = []
    with synced("beir", args.beir) as (ws, queries, qrels):
        for qid in list(queries)[: args.queries]:
            try:
                text = clean_query(queries[qid])
            except QueryError:
                continue
            hits = search(ws.store, ws.embedder, R.OWNER, text, k=R.CHUNKS_PER_QUERY)
            docs = ranked(hits)
            order = [d for d, _ in docs]
            top = docs[: args.depth]
            started = time.perf_counter()
            judged = judge.scores(text, [t for _, t in top])
            times.append(time.perf_counter() - started)
            by_model = [d for _, d in sorted(zip(judged, [d for d, _ in top], strict=True),
                                              key=lambda p: -p[0])]  # fmt: skip
            rest = order[args.depth :]
            lists = {
                "hybrid": order,
                "R1 model order": by_model + rest,
                "R2 rrf": fused([d for d, _ in top], by_model) + rest,
            }
            for name, docs_order in lists.items():
                table[name]["ndcg"].append(ndcg_at(docs_order, qrels[qid], 10))
                table[name]["mrr"].append(mrr_at(docs_order, qrels[qid], 10))
            print(f"{qid}: {times[-1]:.1f} s", file=sys.stderr)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    common: dict[str, Any] = {
        "collection": args.beir.name, "queries": len(times), "depth": args.depth,
        "model": model.id, "threads": args.threads,
        "s_per_query_median": round(median(times), 2),
        "tokens_per_query": round(judge.tokens_read / max(1, len(times))),
        "peak_rss_mb": round(rss_mb),
    }  # fmt: skip
    base = fmean(table["hybrid"]["ndcg"])
    for name, cols in table.items():
        ndcg = fmean(cols["ndcg"])
        print(json.dumps({"name": "llm_rerank", "variant": name, **common,
                          "ndcg@10": round(ndcg, 4), "mrr@10": round(fmean(cols["mrr"]), 4),
                          "ratio_vs_hybrid": round(ndcg / base, 3) if base else None}))  # fmt: skip


if __name__ == "__main__":
    main()
