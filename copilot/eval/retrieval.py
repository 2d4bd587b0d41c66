"""Measure retrieval through the real product path: ingestion, chunking, embedding, search.

The collection is synced for a throwaway user into a temporary ``COPILOT_HOME`` with the
same pipeline a user's files go through (parse sandbox, chunking, embedding, the index),
then every query runs through ``copilot.index.search.search``. The index answers with
chunks; a document's rank is the rank of its best chunk, which is what a person sees in a
result list. Latency is the wall time of that call: query embedding, search and mapping.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

from connectors.checkpoints import StoredCheckpoint
from connectors.local import LocalFolder
from connectors.parsers.text import split_lines
from connectors.types import Checkpoint, Content, Item
from copilot.config import Settings, get_settings
from copilot.eval.beir import Collection, CollectionError, load_beir
from copilot.eval.metrics import mrr_at, ndcg_at, percentile, recall_at
from copilot.index.base import Fusion, Mode
from copilot.index.search import QueryError, SearchResult, search
from copilot.ingest.pipeline import SyncReport, sync
from copilot.workspace import Workspace

MODES = ("bm25", "dense", "hybrid")
# Not in "all": hybrid with reciprocal rank fusion instead of DBSF, and hybrid without the
# dense leg's feedback (copilot.index.feedback), each the baseline of a choice made.
EXTRA_MODES = ("hybrid-rrf", "hybrid-no-feedback")
OWNER = "eval-user"
CHUNKS_PER_QUERY = 200  # chunks asked for, so that ~100 distinct documents remain
DOCS_PER_QUERY = 100
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ModeScores:
    """One mode's averages over the queries, and its query latency."""

    ndcg10: float
    mrr10: float
    recall100: float
    p50_ms: float
    p95_ms: float
    queries: int
    unsearchable: int  # empty or punctuation-only queries: scored 0, not timed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ndcg@10": round(self.ndcg10, 4),
            "mrr@10": round(self.mrr10, 4),
            "recall@100": round(self.recall100, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "queries": self.queries,
            "unsearchable": self.unsearchable,
        }


@dataclass
class MemoryConnector:
    """A connector over items already in memory: how a BEIR corpus enters the pipeline."""

    owner: str
    items: list[Item]
    scope: str = "eval:memory"

    def load(self, checkpoint: StoredCheckpoint | None) -> Iterator[Item | Checkpoint]:
        yield from self.items
        yield Checkpoint({"complete": True})

    def list_ids(self) -> Iterable[str]:
        return [item.id for item in self.items]


def eval_settings(home: Path, base: Settings | None = None) -> Settings:
    """``base`` (the user's settings) moved to ``home``, sharing the cached model files.

    Nothing of the user's own store is used (not their database, not their Qdrant server):
    an eval never touches the index a running ``copilot serve`` holds, so it needs none."""
    base = base or get_settings()
    values = base.model_dump()
    values.update(home=home, database_url=None, qdrant_url=None,
                  models_dir_override=base.models_dir)  # fmt: skip
    return Settings(**values)


def beir_items(collection: Collection, owner: str = OWNER) -> list[Item]:
    """One plain-text item per document, titled with the document's title as a file is."""
    items = []
    for doc in collection.corpus.values():
        data = doc.text.encode("utf-8")
        items.append(
            Item(
                id=f"beir:{doc.id}",
                owner=owner,
                kind="file",
                title=doc.title.strip(),
                url="",
                modified=_EPOCH,
                version=hashlib.sha256(data).hexdigest(),
                content=Content.of(data, "text/plain"),
            )
        )
    return items


def rank_documents(
    results: Sequence[SearchResult], to_doc: Callable[[SearchResult], str | None]
) -> list[str]:
    """Documents in the order of their best chunk, each once."""
    ranked: list[str] = []
    seen: set[str] = set()
    for result in results:
        doc = to_doc(result)
        if doc is not None and doc not in seen:
            seen.add(doc)
            ranked.append(doc)
    return ranked[:DOCS_PER_QUERY]


def score_queries(
    ws: Workspace,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    to_doc: Callable[[SearchResult], str | None],
    modes: Sequence[str] = MODES,
    owner: str = OWNER,
    on_query: Callable[[int, int], None] | None = None,
) -> dict[str, ModeScores]:
    """Run every query in every mode and average the metrics; ``on_query(done, total)``
    after each query (of all modes together), for a progress bar."""
    ws.embedder.embed_query("warm up")  # the first call pays for session start-up
    out: dict[str, ModeScores] = {}
    done, total = 0, len(queries) * len(modes)
    for mode in modes:
        ndcg, mrr, recall, times = [], [], [], []
        unsearchable = 0
        run = _searcher(ws, owner, mode)
        for query_id, text in queries.items():
            started = time.perf_counter()
            try:
                results = run(text)
            except QueryError:
                results, unsearchable = [], unsearchable + 1
            else:
                times.append((time.perf_counter() - started) * 1000)
            ranked = rank_documents(results, to_doc)
            relevant = qrels[query_id]
            ndcg.append(ndcg_at(ranked, relevant, 10))
            mrr.append(mrr_at(ranked, relevant, 10))
            recall.append(recall_at(ranked, relevant, DOCS_PER_QUERY))
            done += 1
            if on_query is not None:
                on_query(done, total)
        n = len(queries)
        out[mode] = ModeScores(
            ndcg10=sum(ndcg) / n,
            mrr10=sum(mrr) / n,
            recall100=sum(recall) / n,
            p50_ms=percentile(times, 50),
            p95_ms=percentile(times, 95),
            queries=n,
            unsearchable=unsearchable,
        )
    return out


def _searcher(ws: Workspace, owner: str, mode: str) -> Callable[[str], list[SearchResult]]:
    if mode not in MODES + EXTRA_MODES:
        raise ValueError(f"unknown mode {mode!r}")
    fusion: Fusion | None = "rrf" if mode == "hybrid-rrf" else None  # None: the setting
    feedback = 0 if mode == "hybrid-no-feedback" else None  # None: the setting
    base = cast(Mode, "hybrid" if mode in EXTRA_MODES else mode)  # one of MODES, checked
    store, embedder = ws.store, ws.embedder
    return lambda text: search(
        store, embedder, owner, text, k=CHUNKS_PER_QUERY, mode=base, fusion=fusion,
        feedback=feedback,
    )  # fmt: skip


def ingest(
    ws: Workspace, connector: Any, on_progress: Callable[[SyncReport], None] | None = None
) -> SyncReport:
    return sync(connector, ws.settings, ws.state, ws.store, ws.embedder, on_progress=on_progress)


def evaluate_beir(
    folder: Path,
    modes: Sequence[str] = MODES,
    settings: Settings | None = None,
    *,
    on_ingest: Callable[[SyncReport], None] | None = None,
    on_query: Callable[[int, int], None] | None = None,
) -> dict[str, ModeScores]:
    """Score a BEIR folder (see ``copilot.eval.beir``) in each mode."""
    collection = load_beir(folder)
    with (
        tempfile.TemporaryDirectory(prefix="copilot-eval-") as tmp,
        Workspace(eval_settings(Path(tmp), settings)) as ws,
    ):
        ingest(ws, MemoryConnector(OWNER, beir_items(collection)), on_ingest)
        return score_queries(
            ws, collection.queries, collection.qrels, beir_doc, modes, on_query=on_query
        )


def beir_doc(result: SearchResult) -> str | None:
    return result.item_id.removeprefix("beir:") if result.item_id.startswith("beir:") else None


# ---- mail known-item ------------------------------------------------------------------------


def load_known_item(folder: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """``queries.tsv`` (query, tab, Message-ID, and optionally tab, the Message-IDs of other
    messages that answer it as well, space-separated) checked against the folder's .eml files.

    The wanted message is graded 2, the others 1: MRR@10 counts the first right answer,
    nDCG@10 still prefers the message the query was written for.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CollectionError(f"{folder} is not a folder")
    ids = {message_id_of(path) for path in folder.rglob("*.eml")}
    ids.discard(None)
    if not ids:
        raise CollectionError(f"{folder} holds no .eml files with a Message-ID")
    path = folder / "queries.tsv"
    if not path.is_file():
        raise CollectionError(f"{path} is missing")
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(split_lines(path.read_text(encoding="utf-8")), 1):
        if not line.strip() or (number == 1 and line.lower().startswith("query\t")):
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise CollectionError(f"{path}:{number}: expected query, tab, Message-ID")
        wanted = {normalise_id(fields[1]): 2}
        for also in fields[2].split() if len(fields) == 3 else ():
            wanted.setdefault(normalise_id(also), 1)
        for message_id in wanted:
            if message_id not in ids:
                raise CollectionError(
                    f"{path}:{number}: no .eml file has Message-ID {message_id!r}"
                )
        query_id = str(number)
        queries[query_id] = fields[0]
        qrels[query_id] = wanted
    if not queries:
        raise CollectionError(f"{path} holds no queries")
    return queries, qrels


def evaluate_mail_known_item(
    folder: Path,
    modes: Sequence[str] = MODES,
    settings: Settings | None = None,
    *,
    on_ingest: Callable[[SyncReport], None] | None = None,
    on_query: Callable[[int, int], None] | None = None,
) -> dict[str, ModeScores]:
    """Score a mail folder (.eml files + queries.tsv) by MRR@10 of the wanted message."""
    queries, qrels = load_known_item(folder)
    with (
        tempfile.TemporaryDirectory(prefix="copilot-eval-") as tmp,
        Workspace(eval_settings(Path(tmp), settings)) as ws,
    ):
        ingest(ws, LocalFolder(Path(folder), owner=OWNER, include=("*.eml",)), on_ingest)
        return score_queries(ws, queries, qrels, mail_doc, modes, on_query=on_query)


def mail_doc(result: SearchResult) -> str | None:
    message_id = result.locator.get("message_id")
    return normalise_id(message_id) if isinstance(message_id, str) else None


def normalise_id(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


def message_id_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            headers = BytesHeaderParser(policy=default_policy).parse(handle)
        value = str(headers.get("Message-ID") or "")
    except (OSError, ValueError, TypeError, IndexError):
        return None  # an unreadable file is reported by the sync, not here
    return normalise_id(value) or None
