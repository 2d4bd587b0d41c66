"""The embedded vector index: a LlamaIndex vector store on the in-process Qdrant Edge engine.

One shard per embedding model (the caller picks the directory), holding every user's chunks:
a dense vector (``dense``), a BM25 sparse vector with IDF applied at query time (``bm25``),
and the payload below. Users are kept apart by the ``owner`` field, which every read and
delete filters on: no method here takes a query without an owner (see ``filters.scoped``).

Payload per point: owner, acl, source, item_id, parent_id, kind, item_hash, chunk (index in
the item), locator (dict), title, url, text, modified_ts (epoch seconds), sender (lower-case
address), folder, thread_id, plus any other metadata the node carries. Beside its chunks,
each item has one whole-item BM25 point (``level = "item"``, no dense vector, no text; see
``copilot.index.items``), rewritten from the stored chunks whenever chunks of the item are
added, and rebuilt for the whole shard on open when it was made with other item settings
(an index from before item points existed included): no re-sync is needed.

HNSW is built by :meth:`EdgeVectorStore.optimize`, not on write: until then new points sit in
an appendable segment that is searched exactly (correct, slower: at 100k points and 10
owners, dense 1.7 ms and hybrid 3.5 ms before, 0.75 ms and 2.1 ms after). The sync pipeline
calls ``optimize()`` once at the end of a run.

Threads: one store may be used from many threads (API searches while a sync writes) with no
lock of ours. The binding holds the GIL for the whole of every call, so calls never overlap;
searches under a writing sync showed no errors or wrong results, and an RLock made no
difference to latency. The price: a long call stalls every thread of the process (``flush``
~90 ms; ``optimize`` 5.2 s on 36k new chunks in one call, so ``add`` calls it every few
thousand points, ~1 s each, see ``INDEXING_THRESHOLD_KB``). What needs care is a
read made of two calls: the fused search's read-back in ``copilot.index.planner``.

How a search runs (the candidate lists, their fusion) is decided by ``planner``, which
the server store shares; this module only says how each of its calls reaches the shard
(``copilot.index.edge_engine``).

Privacy at rest: the shard folder is created 0700, and since the engine creates its files
with the umask's permissions, everything in it is made owner-only again after opening,
``optimize`` and ``close`` (``copilot.fileio.tighten``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    VectorStoreQuery,
    VectorStoreQueryResult,
)
from pydantic import PrivateAttr

from copilot.errors import CopilotError
from copilot.fileio import make_private_dir, tighten
from copilot.index import bm25, items
from copilot.index.base import EMBED_KEY, FORMAT, KEYWORD_FIELDS, UPSERT_BATCH, Hit, Mode
from copilot.index.edge_engine import EdgeEngine
from copilot.index.filters import SearchFilters, scoped
from copilot.index.fusion import Fusion
from copilot.index.llama_query import plan_query, to_result
from copilot.index.planner import PlannedSearch, run_search
from copilot.index.points import (
    DENSE,
    SPARSE,
    PointParts,
    chunk_view,
    dense_of,
    edge_point,
    has_dense,
    point_id,
    to_point,
)

__all__ = ["EdgeVectorStore", "Hit", "IndexLockedError", "Mode", "SearchFilters"]

INDEXING_THRESHOLD_KB = 2_000  # a segment over this is indexed by ``optimize`` (engine: 10,000)
SEGMENTS = 32  # segments kept before small ones are merged (engine: one per CPU)
# Points written between two ``optimize`` calls, which ``add`` makes itself: ~1 s a call
# with the settings above (once for 36k new points it took 5.2 s, for 100k 14.8 s).
OPTIMIZE_EVERY = 4_000
# The engine's search pool: one thread, which reads every segment in the caller's thread.
# The binding holds the interpreter lock for the whole of a query, so with a pool (one
# thread per CPU by default) every other Python thread of the process waited while the
# query was handed to pool threads that compete for the same two cores: more CPU a
# search (hot_paths: 1.3 vs 2.2 ms) and a longer stall under load. Searches run
# concurrently on the API's threads instead (docs/benchmarks.md, "One search thread").
SEARCH_THREADS = 1

META_FILE = "copilot-index.json"
LOCK_FILE = ".copilot.lock"
log = logging.getLogger(__name__)


class IndexLockedError(CopilotError, RuntimeError):
    """Another process has this index open: the engine allows one writer per shard."""

    kind = "index_locked"
    status = 503
    title = "The index is busy"


class EdgeVectorStore(PlannedSearch, BasePydanticVectorStore):
    """Vector store over one Qdrant Edge shard; see the module docstring.

    ``fusion`` is how ``search`` fuses hybrid results and ``feedback`` how many top chunks
    its dense leg is moved towards (``copilot.index.feedback``), unless told otherwise.
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    path: Path
    dim: int
    fusion: Fusion = "dbsf"
    feedback: int = 0

    _shard: qe.EdgeShard | None = PrivateAttr(default=None)
    _lock_fd: int | None = PrivateAttr(default=None)
    _tallies: items.Tallies = PrivateAttr(default_factory=items.Tallies)
    _known: dict[int | str, tuple[str, str]] = PrivateAttr(default_factory=dict)
    _unoptimised: int = PrivateAttr(default=0)  # points written since the last optimize

    def __init__(self, path: Path, dim: int, fusion: Fusion = "dbsf", feedback: int = 0) -> None:
        # The fields are this subclass's: mypy checks them against the base's __init__.
        super().__init__(path=Path(path), dim=dim, fusion=fusion, feedback=feedback)  # type: ignore[call-arg]
        if dim < 1:
            raise ValueError(f"vector size must be positive, got {dim}")
        make_private_dir(self.path)  # 0700: every user's text is in the payloads
        self._lock_fd = _lock(self.path)
        try:
            self._shard, stale = self._open()
            self._ensure_indexes()
            if stale:
                self._rebuild_items()
            tighten(self.path)
        except BaseException:
            self.close()
            raise

    # ---- opening -------------------------------------------------------------------------

    def _config(self) -> qe.EdgeConfig:
        # m=0 + payload_m: no global graph, one HNSW graph per owner (Qdrant's multitenant
        # layout). Every query filters on one owner, and a global graph searched under that
        # filter lost recall (0.93 vs 1.00 at ef=64 on clustered 384-d vectors, 3 owners).
        # Owners below full_scan_threshold (KB of vectors: ~13k at 384-d) are scanned exactly
        # instead: that beats the graph up to there (0.7 ms vs 1.4 ms for 10k points).
        hnsw = qe.HnswIndexConfig(m=0, payload_m=16, ef_construct=100, full_scan_threshold=20_000)
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=hnsw,
            # ``optimize`` holds the GIL for all of its work, so every thread of the process
            # (the API's event loop, a sync's progress) stops while it runs. With the
            # engine's defaults nothing was indexed below ~28k new points and then all of
            # them at once (5.2 s for the 35,827 chunks of issue 18's hard files); a low
            # indexing threshold and more segments kept let ``add`` optimise every
            # ``OPTIMIZE_EVERY`` points in calls of ~1 s (docs/benchmarks.md, "Ingestion").
            optimizers=qe.EdgeOptimizersConfig(
                indexing_threshold=INDEXING_THRESHOLD_KB, default_segment_number=SEGMENTS
            ),
            max_search_threads=SEARCH_THREADS,
        )

    def _open(self) -> tuple[qe.EdgeShard, bool]:
        """The shard, and whether its item points must be rebuilt (other item settings)."""
        meta_path = self.path / META_FILE
        meta = self._meta()
        if not (self.path / "edge_config.json").exists():
            shard = qe.EdgeShard.create(str(self.path), self._config())
            meta_path.write_text(json.dumps(meta))
            return shard, False
        found: dict[str, Any] = {}
        if meta_path.exists():
            found = json.loads(meta_path.read_text())
            if found.get("dim") != self.dim:
                raise ValueError(
                    f"the index at {self.path} holds {found.get('dim')}-d vectors, not "
                    f"{self.dim}-d: use one index directory per embedding model"
                )
            if found.get("bm25") != bm25.SIGNATURE:
                raise ValueError(
                    f"the index at {self.path} was built with other BM25 settings "
                    f"({found.get('bm25')}); delete it and sync again to rebuild"
                )
        try:
            shard = qe.EdgeShard.load(str(self.path), self._config())
        except Exception as e:
            raise ValueError(f"cannot open the index at {self.path}: {e}") from e
        return shard, found.get("items") != bm25.ITEM_SIGNATURE

    def _meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "dim": self.dim,
            "bm25": bm25.SIGNATURE,
            "items": bm25.ITEM_SIGNATURE,
        }

    def _rebuild_items(self) -> None:
        """Rewrite every item point from the stored chunks, then record the settings.

        For a shard made before item points existed, or with other item settings. The
        meta file is written last: a crash midway rebuilds again on the next open.
        """
        chunks = qe.Filter(must_not=[items.IS_ITEM])
        keys = {items.key_of(p) for p in self._scroll(chunks, ["owner", "item_id", "item_hash"])}
        log.warning(
            "index at %s: building whole-item BM25 points for %d items (made by an older "
            "version); this runs once",
            self.path,
            len(keys),
        )
        self.client.update(
            qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[items.IS_ITEM]))
        )
        self._write_items(keys)
        self.client.flush()
        (self.path / META_FILE).write_text(json.dumps(self._meta()))

    def _ensure_indexes(self) -> None:
        """Create the payload indexes that are missing (all of them on a new shard)."""
        have = set(self.client.info().payload_schema)
        wanted: dict[str, Any] = {
            "owner": qe.KeywordIndexParams(is_tenant=True),
            # Graphs only per owner (see _config), none per value of the other fields.
            "modified_ts": qe.FloatIndexParams(enable_hnsw=False),
            **{name: qe.KeywordIndexParams(enable_hnsw=False) for name in KEYWORD_FIELDS},
        }
        for name, schema in wanted.items():
            if name not in have:
                self.client.update(qe.UpdateOperation.create_field_index(name, schema))

    @property
    def client(self) -> qe.EdgeShard:
        if self._shard is None:
            raise RuntimeError(f"the index at {self.path} is closed")
        return self._shard

    # ---- LlamaIndex interface ------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert nodes (ids are UUID strings; re-adding an id replaces that point)."""
        batch_size = int(kwargs.get("batch_size", UPSERT_BATCH))
        points = [to_point(node, self.dim) for node in nodes]
        for start in range(0, len(points), batch_size):
            some = points[start : start + batch_size]
            self.client.update(qe.UpdateOperation.upsert_points(some))
            self._unoptimised += len(some)
            if self._unoptimised >= OPTIMIZE_EVERY:  # in steps, never one long stall at the end
                self.optimize()
        read = self._read_chunks
        self._write(parts for parts in self._tallies.update([chunk_view(n) for n in nodes], read))
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every chunk of item ``ref_doc_id``; needs ``owner=``."""
        owner = delete_kwargs.get("owner")
        if owner is None:
            raise ValueError("delete() needs owner=...: items are only ever deleted per owner")
        self.delete_item(owner, ref_doc_id)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """LlamaIndex query; needs ``owner=`` or an ``owner == X`` metadata filter.

        DEFAULT is dense, SPARSE is BM25 over ``query_str``, HYBRID fuses both (``fusion=``
        ``"dbsf"`` by default or ``"rrf"``; ``alpha`` weights dense vs. BM25).
        ``similarity_top_k`` is the dense candidate count, ``sparse_top_k`` the BM25 one,
        ``hybrid_top_k`` the number returned.
        """
        request = plan_query(query, kwargs, self.fusion, self.feedback)
        return to_result(run_search(self._engine(), request))

    # ---- our own API (``search`` comes from PlannedSearch) -------------------------------

    def delete_item(self, owner: str, item_id: str, keep_hash: str | None = None) -> None:
        """Delete ``owner``'s chunks of ``item_id``, except those of version ``keep_hash``.

        The pipeline upserts a new version first and then calls this with its hash, so a
        crash in between leaves both versions findable rather than neither. The item
        point goes with the chunks of its version (it carries their ``item_hash``).
        """
        keep = [qe.FieldCondition("item_hash", match=qe.MatchValue(keep_hash))] if keep_hash else []
        item = qe.FieldCondition("item_id", match=qe.MatchValue(item_id))
        self._tallies.forget(owner, item_id)
        self.client.update(
            qe.UpdateOperation.delete_points_by_filter(scoped(owner, item, must_not=keep))
        )

    def set_item_payload(self, owner: str, item_id: str, values: dict[str, Any]) -> None:
        """Overwrite payload fields (``title``, ``url``) on every chunk of one item.

        For a renamed or moved file whose content is unchanged: no re-embedding.
        """
        item = qe.FieldCondition("item_id", match=qe.MatchValue(item_id))
        self._tallies.forget(owner, item_id)
        self.client.update(qe.UpdateOperation.set_payload_by_filter(scoped(owner, item), values))

    def count(self, owner: str | None = None) -> int:
        """Exact number of chunks: all of them, or ``owner``'s (item points not counted)."""
        flt = items.chunks_only(qe.Filter() if owner is None else scoped(owner))
        return self.client.count(qe.CountRequest(exact=True, filter=flt))

    def item_chunk_ids(self, owner: str, item_id: str) -> list[str]:
        """Point ids of one item's chunks, in chunk order."""
        flt = items.chunks_filter((owner, item_id, None))
        found = [(int(p.get("chunk", 0)), p["id"]) for p in self._scroll(flt, ["chunk"])]
        return [point_id for _, point_id in sorted(found)]

    def vectors(self, owner: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored dense vectors of ``owner``'s chunks ``ids`` (for MMR); others are skipped.

        Read back rather than re-embedded: 50 candidates would cost 50 embeddings a query.
        """
        if not ids:
            return {}
        flt = scoped(owner, qe.HasIdCondition({point_id(i) for i in ids}))
        request = qe.ScrollRequest(
            limit=len(ids), filter=flt, with_payload=False, with_vector=[DENSE]
        )
        records, _ = self.client.scroll(request)
        return {str(r.id): dense_of(r.vector) for r in records if has_dense(r.vector)}

    def vectors_by_key(self, owner: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """As ``IndexStore.vectors_by_key``, in one read (``items.keyed_read``)."""
        return self._keyed(*items.keyed_read(owner, keys)) if keys else {}

    def item_vectors_by_key(self, owner: str, item_id: str) -> dict[str, np.ndarray]:
        """As ``IndexStore.item_vectors_by_key``, in one read (``items.item_keyed_read``)."""
        return self._keyed(*items.item_keyed_read(owner, item_id))

    def _keyed(self, flt: qe.Filter, limit: int) -> dict[str, np.ndarray]:
        request = qe.ScrollRequest(
            limit=limit, filter=flt, with_payload=qe.PayloadSelector.Include([EMBED_KEY]),
            with_vector=[DENSE],
        )  # fmt: skip
        return items.by_key(self.client.scroll(request)[0])

    def optimize(self) -> None:
        """Build HNSW and merge segments; call after bulk writes (slow, then searches are fast).
        ``add`` calls it every ``OPTIMIZE_EVERY`` points; a writer calls it once at the end."""
        self.client.optimize()
        self._unoptimised = 0
        tighten(self.path)  # the engine writes its segment files with the umask's permissions

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        """Flush, close the shard and release the directory lock. Safe to call twice."""
        shard, self._shard = self._shard, None
        try:
            if shard is not None:
                shard.flush()
                shard.close()
                tighten(self.path)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    def __enter__(self) -> EdgeVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals -----------------------------------------------------------------------

    def _engine(self) -> EdgeEngine:
        return EdgeEngine(self.client, self.dim, self._known)

    def _scroll(self, flt: qe.Filter, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Payload ``fields`` (and ``id``) of every point matching ``flt``, page by page."""
        selector = qe.PayloadSelector.Include(fields)
        return items.scrolled(
            lambda offset: self.client.scroll(
                qe.ScrollRequest(offset=offset, limit=items.SCROLL_PAGE, filter=flt,
                                 with_payload=selector, with_vector=False)
            )
        )  # fmt: skip

    def _read_chunks(self, flt: qe.Filter) -> Iterator[dict[str, Any]]:
        return self._scroll(flt, items.CHUNK_FIELDS)

    def _write_items(self, keys: Iterable[items.ItemKey]) -> None:
        """(Re)write the item points of ``keys`` from their stored chunks."""
        self._write(tally.parts() for tally in items.rebuild(keys, self._read_chunks))

    def _write(self, parts: Iterable[PointParts]) -> None:
        """Upsert item points in batches."""
        for batch in items.batched(parts, UPSERT_BATCH):
            points = [edge_point(one) for one in batch]
            self.client.update(qe.UpdateOperation.upsert_points(points))


def _lock(path: Path) -> int:
    """Take the directory's lock or raise: one process (and one store) per shard.

    ``flock`` rather than ``lockf``: it is held per open file, so a second store in the same
    process is refused too, not just one in another process.
    """
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise IndexLockedError(
            f"the index at {path} is already open (process {holder}); close the other "
            "copilot process (a sync or the server) and try again"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
