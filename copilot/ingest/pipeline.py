"""Sync one connector's items into the index: diff → parse → chunk → embed → store.

The invariants this module keeps, and why:

* An item whose version is unchanged is not read; one whose bytes hash the same is not
  parsed. So a re-sync of an unchanged folder costs a ``stat`` per file and no embedding.
* Chunk point ids are derived from (owner, item, content hash, position), so storing the
  same chunk twice overwrites it: a sync killed anywhere and run again makes no
  duplicates. Stale chunks of an item's previous version are deleted only after its new
  chunks are stored, and the item's state row is written last, so an interrupted item is
  simply redone.
* A failure (unreadable, damaged, hostile file) is recorded with its reason, the item's
  old chunks are removed (the index never keeps half an item or an outdated one), and the
  sync goes on.
* Checkpoints are stored only when everything yielded before them is durable.
* Memory is bounded per item: chunks go to the embedder and the store in slices of about
  a second of embedding (8 to 64 chunks), with a progress report after each, and one
  a second while a slow file is parsed: a 17,000-chunk item neither holds all its vectors
  at once nor freezes the progress line. What the embedding budget leaves keyword-only
  (``budget.py``) is recorded as a note on the item (``NOTE_STAGE`` in the failures
  table, shown by ``copilot status``), never lost silently.
* Items the state calls indexed but this embedding model's index lacks (a changed model
  or backend, a removed index: ``reindex.py``) are indexed again, with a note.
* ``should_stop`` is asked before each item and after each result: a stopped sync raises
  ``SyncCancelled`` and, by the points above, the next sync resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from connectors.base import Connector
from connectors.types import Checkpoint, Deleted, Failure, Item, Parsed
from copilot.config import Settings
from copilot.db.state import ItemState, StateStore
from copilot.errors import Cancelled
from copilot.index.base import EMBED_KEY, IndexStore
from copilot.index.embed import Embedder
from copilot.ingest.attachments import skipped_rows, split_attachments
from copilot.ingest.budget import Limits, plan_chunks
from copilot.ingest.items import Work, chunk_node, item_title, state_row
from copilot.ingest.reindex import lost_items, lost_note
from copilot.ingest.removal import missing, remove
from copilot.ingest.report import NOTE_STAGE, SyncReport
from copilot.ingest.reuse import Kept, vectors_reusing
from copilot.ingest.sandbox import Outcome, ParsePool, ParseTask

__all__ = ["NOTE_STAGE", "SyncCancelled", "SyncReport", "Syncer", "sync"]
DENSE_SLICE = 32  # chunks embedded between reports at first: ~0.5 s of MiniLM on 2 idle cores
SLICE_S = 1.0  # then as many as take about this long (fewer on a busy machine), within:
SLICE_RANGE = (8, 64)
KEYWORD_SLICE = 256  # keyword-only chunks (nothing to embed) stored between reports


class SyncCancelled(Cancelled):
    """``should_stop`` asked the sync to stop; what was stored stays, the rest is redone."""

    kind = "sync_cancelled"


class Syncer:
    """One sync run of one connector. Use ``sync()`` rather than this class directly."""

    def __init__(
        self,
        connector: Connector,
        settings: Settings,
        state: StateStore,
        store: IndexStore,
        embedder: Embedder,
        on_progress: Callable[[SyncReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.connector, self.settings, self.state = connector, settings, state
        self.should_stop = should_stop or (lambda: False)
        self.store, self.embedder = store, embedder
        self.owner, self.scope = connector.owner, connector.scope
        self.on_progress = on_progress or (lambda report: None)
        self.report = SyncReport(scope=self.scope)
        self.known = state.item_states(self.owner, self.scope)
        # Indexed by the state, missing from this model's index (reindex.py): redone, and
        # the source listed in full, as a delta from the checkpoint would not name them.
        self.lost = lost_items(store, state, self.owner, self.known)
        if self.lost:
            note = lost_note(len(self.lost), embedder.model_id)
            self.report.notes.append({"item": self.scope, "note": note})
        self.seen: set[str] = set()
        self.children: deque[tuple[Item, int]] = deque()
        self.kids: dict[str, list[str]] | None = None  # parent id -> known child ids
        # A parent is stored only after its attachments, and a checkpoint only after every
        # parent before it: a sync killed in between redoes the parent, and so re-finds its
        # attachments, instead of keeping a message whose attachments were never indexed.
        self.held: dict[str, list[Any]] = {}  # parent id -> [its Work, children to go]
        self.deferred: deque[tuple[Checkpoint, frozenset[str]]] = deque()
        self.batch: list[Work] = []
        self.batch_chunks = 0
        self.notes: dict[str, str] = {}  # item id -> what its embedding budget left out
        self.kept = Kept()  # vectors of items deleted by a delta source (reuse.py)
        self.limits = Limits(settings.embed_table_rows, settings.embed_item_chunks)
        # Dense chunks embedded between progress reports: about SLICE_S for the local model
        # (sorted by length, so a slice pads little); one request for a remote one.
        self.adaptive = settings.embed_provider == "local"
        self.slice = DENSE_SLICE if self.adaptive else settings.embed_batch
        self.started = self.waited = time.perf_counter()

    # -- deciding what needs work ----------------------------------------------------
    def _jobs(self) -> Iterator[tuple[Any, ParseTask | None]]:
        checkpoint = None if self.lost else self.state.checkpoint(self.owner, self.scope)
        for event in self.connector.load(checkpoint):
            self._check_stop()  # here too: a slow source would otherwise delay the stop
            yield from self._drain_children()
            if isinstance(event, Checkpoint | Deleted):
                yield event, None
            elif isinstance(event, Failure):
                self.seen.add(event.item)
                yield event, None
            else:
                yield from self._item_job(event, 0)
        yield from self._drain_children()

    def _drain_children(self) -> Iterator[tuple[Any, ParseTask | None]]:
        while self.children:
            item, depth = self.children.popleft()
            yield from self._item_job(item, depth)

    def _item_job(self, item: Item, depth: int) -> Iterator[tuple[Any, ParseTask | None]]:
        self.seen.add(item.id)
        self.report.seen += 1
        previous = None if item.id in self.lost else self.known.get(item.id)
        if previous and previous.version == item.version:
            self._retitle(item, previous)
            self._unchanged(item.id)
            self._release(item.parent)
            return
        try:
            data = item.content.read()
        except OSError as exc:
            yield Failure(item.id, "fetch", f"cannot read {item.title}: {exc}"), None
            return
        content_hash = hashlib.sha256(data).hexdigest()
        if previous and previous.content_hash == content_hash:
            self.state.touch_version(self.owner, item.id, item.version)
            self._unchanged(item.id)
            self._release(item.parent)
            return
        yield Work(item, content_hash, depth), ParseTask(data, item.title, item.content.media_type)

    def _unchanged(self, item_id: str) -> None:
        self.report.unchanged += 1
        # Attachments of an unchanged message are unchanged too, and theirs (an index of
        # children built once: a scan of ``known`` per item made a re-sync quadratic).
        if self.kids is None:
            self.kids = {}
            for key, known in self.known.items():
                if known.parent_id:
                    self.kids.setdefault(known.parent_id, []).append(key)
        stack = list(self.kids.get(item_id, ()))
        while stack:
            child = stack.pop()
            self.seen.add(child)
            stack.extend(self.kids.get(child, ()))

    def _retitle(self, item: Item, previous: ItemState) -> None:
        """Same version, new name or place (a renamed or moved Graph file): update the title
        and url on its chunks and in its state row, without reading or embedding it."""
        if item.kind != "file" or item.parent is not None or previous.status != "indexed":
            return  # a message's title is its parsed subject; attachments follow their parent
        if (previous.title, previous.url) == (item.title, item.url):
            return
        self.store.set_item_payload(self.owner, item.id, {"title": item.title, "url": item.url})
        update: dict[str, Any] = {"item_id": item.id, "scope": self.scope}
        update.update(parent_id=previous.parent_id)
        update.update(kind=item.kind, title=item.title, url=item.url, version=item.version)
        update.update(content_hash=previous.content_hash, status=previous.status)
        update.update(chunks=previous.chunks, modified=item.modified.timestamp())
        self.state.record_items(self.owner, [update])
        self.report.renamed += 1

    # -- handling results --------------------------------------------------------------
    def _check_stop(self) -> None:
        if self.should_stop():
            raise SyncCancelled(f"the sync of {self.scope} was stopped")

    def run(self) -> SyncReport:
        started = self.started = time.perf_counter()
        self.state.sync_started(self.owner, self.scope)
        try:
            return self._run(started)
        except BaseException as exc:
            # The sync history must not say "running" for ever; the error itself matters
            # more than recording it, so a failure to record is not raised over it.
            status = "cancelled" if isinstance(exc, SyncCancelled) else "failed"
            with contextlib.suppress(Exception):
                self.state.sync_finished(self.owner, self.scope, self._counts(), status)
            raise

    def _run(self, started: float) -> SyncReport:
        settings = self.settings
        with ParsePool(
            settings.parse_workers, settings.parse_timeout_s, settings.parse_memory_mb
        ) as pool:
            jobs: Iterator[tuple[Any, ParseTask | None]] = self._jobs()
            while True:
                for key, outcome in pool.run(jobs, on_wait=self._waiting):
                    self._check_stop()
                    self._handle(key, outcome)
                    self.report.seconds = time.perf_counter() - started
                    self.on_progress(self.report)
                if not self.children:  # attachments found after the source ran dry
                    break
                jobs = self._drain_children()
            for work, _ in list(self.held.values()):  # none are left unless a child was lost
                self.batch.append(work)
            self.held.clear()
            self._flush()
        self._delete_missing()
        self.store.optimize()
        self.report.seconds = time.perf_counter() - started
        self.state.sync_finished(self.owner, self.scope, self._counts())
        self.on_progress(self.report)
        return self.report

    def _waiting(self) -> None:
        """A slow file holds the next result back, or a huge one is being chunked: say the
        sync is alive (at most twice a second), and stop if asked."""
        self._check_stop()
        now = time.perf_counter()
        if now - self.waited >= 0.5:
            self.waited = now
            self.report.seconds = now - self.started
            self.on_progress(self.report)

    def _counts(self) -> dict[str, Any]:
        return self.report.counts()

    def _handle(self, key: Any, outcome: Outcome) -> None:
        if isinstance(key, Checkpoint):
            self.deferred.append((key, frozenset(self.held)))
            self._flush()
            self._save_checkpoints()
        elif isinstance(key, Deleted):
            # Flush only when a version of it (or an attachment) waits in the batch: a flush
            # per deletion would embed a delta's changes in tiny batches.
            mine = f"{key.item}#"
            if any(w.item.id == key.item or w.item.id.startswith(mine) for w in self.batch):
                self._flush()
            self.held.pop(key.item, None)
            self._delete([key.item], keep=self.kept)  # a move: its new id may come later
        elif isinstance(key, Failure):
            self._fail(key.item, key.stage, key.reason)
        elif outcome.parsed is None:
            self._fail(key.item.id, "parse", outcome.error or "could not be parsed", key)
        else:
            self._parsed(key, outcome.parsed)

    def _parsed(self, work: Work, parsed: Parsed) -> None:
        work.parsed = parsed
        title = item_title(work.item, parsed)
        self.report.current, self.report.item_done = title, 0
        planned = plan_chunks(
            parsed.elements, title, self.embedder, self.settings, self.limits, self._waiting
        )
        work.chunks, work.embed_title = planned.chunks, planned.title
        if planned.note:
            self.notes[work.item.id] = planned.note
        # What the parser left out, plus attachments over this source's cap: each becomes
        # a failure, so `copilot status` and the API say what was not indexed and why.
        children, skipped = split_attachments(self.settings, work.item, parsed, work.depth)
        self.children.extend((child, work.depth + 1) for child in children)
        queued = len(children)
        self._report_skipped(work, skipped)
        if queued:
            self.held[work.item.id] = [work, queued]
        else:
            self._enqueue(work)

    def _report_skipped(self, work: Work, skipped: list[dict[str, Any]]) -> None:
        """Record each left-out attachment as a failed child of its message: it shows with
        the failures, and goes when the message goes (a child row, like an indexed one)."""
        for item_id, reason, row in skipped_rows(work.item, self.scope, skipped):
            self.seen.add(item_id)
            self.report.failed += 1
            self.report.failures.append({"item": item_id, "stage": "parse", "reason": reason})
            self.state.record_failure(self.owner, self.scope, item_id, "parse", reason)
            self.state.record_items(self.owner, [row])

    def _enqueue(self, work: Work) -> None:
        self.batch.append(work)
        self.batch_chunks += len(work.chunks)
        self._release(work.item.parent)
        if self.batch_chunks >= self.settings.embed_batch * 4:
            self._flush()

    def _release(self, parent_id: str | None) -> None:
        """One attachment of ``parent_id`` is done: once all are, the parent may be stored."""
        entry = self.held.get(parent_id) if parent_id else None
        if parent_id and entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.held[parent_id]
                self._enqueue(entry[0])

    def _save_checkpoints(self) -> None:
        """Store the newest checkpoint all of whose earlier parents are stored."""
        ready = None
        while self.deferred and self.deferred[0][1].isdisjoint(self.held):
            ready = self.deferred.popleft()[0]
        if ready is not None:
            self.state.save_checkpoint(self.owner, self.scope, dict(ready.value))

    def _fail(self, item_id: str, stage: str, reason: str, work: Work | None = None) -> None:
        self.report.failed += 1
        self.report.failures.append({"item": item_id, "stage": stage, "reason": reason})
        self.store.delete_item(self.owner, item_id)
        self.state.record_failure(self.owner, self.scope, item_id, stage, reason)
        if work is not None:  # remember the bad version so it is not re-parsed until it changes
            self.state.record_items(self.owner, [state_row(work, self.scope, "failed", 0)])
            self._release(work.item.parent)
        elif item_id in self.known:
            self.state.mark_failed(self.owner, item_id)

    def _flush(self) -> None:
        """Embed and store every chunk of the batch, then record the items as indexed.

        Chunks go in slices (small items share one, a large item takes many), each embedded
        and stored before the next is made; the stop flag is asked between slices, so even
        one enormous item can be stopped (it is redone by the next sync). The dense chunks
        of the batch are embedded shortest first: a forward pass pads every text to its
        longest, and slices in reading order (a 20-token mail beside a 250-token page)
        wasted a third of the embedding time on padding."""
        if not self.batch:
            return
        batch, self.batch, self.batch_chunks = self.batch, [], 0
        picks = [(work, position) for work in batch for position in range(len(work.chunks))]
        dense = sorted(
            (pick for pick in picks if pick[0].chunks[pick[1]].dense),
            key=lambda pick: pick[0].chunks[pick[1]].tokens,
        )
        keyword = [pick for pick in picks if not pick[0].chunks[pick[1]].dense]
        largest = max(batch, key=lambda work: len(work.chunks))
        more = f" and {len(batch) - 1} more" if len(batch) > 1 else ""
        self.report.current = f"{largest.item.title}{more}"
        self.report.item_done, self.report.item_total = 0, len(picks)
        start = 0
        while start < len(dense):
            size = self.slice
            self._store(dense[start : start + size], embed=True)
            start += size
        for start in range(0, len(keyword), KEYWORD_SLICE):
            self._store(keyword[start : start + KEYWORD_SLICE], embed=False)
        self.report.item_done = self.report.item_total = 0
        self.report.current = ""
        for work in batch:
            self.store.delete_item(self.owner, work.item.id, keep_hash=work.content_hash)
        self.store.flush()
        self.state.record_items(
            self.owner, [state_row(w, self.scope, "indexed", len(w.chunks)) for w in batch]
        )
        for work in batch:  # after record_items, which clears an indexed item's old rows
            note = self.notes.pop(work.item.id, None)
            if note:
                self.state.record_failure(self.owner, self.scope, work.item.id, NOTE_STAGE, note)
                self.report.notes.append({"item": work.item.id, "note": note})
        self.report.indexed += len(batch)
        self._save_checkpoints()

    def _store(self, picks: list[tuple[Work, int]], embed: bool) -> None:
        """Embed (``embed``) and store one slice of chunks, then report progress."""
        if not picks:
            return
        self._check_stop()
        made = [chunk_node(self.owner, work, position) for work, position in picks]
        nodes = [node for _, node in made]
        started = time.perf_counter()
        if embed:
            keys = [str(node.metadata[EMBED_KEY]) for node in nodes]
            texts = [text for text, _ in made]
            made_by = self.embedder.embed_documents
            vectors, reused = vectors_reusing(
                self.store, self.owner, texts, keys, made_by, self.kept
            )
            for node, vector in zip(nodes, vectors, strict=True):
                node.embedding = vector.tolist()
            self.report.reused += reused
            if self.adaptive and reused < len(nodes):  # ~SLICE_S a slice: never frozen
                each = (time.perf_counter() - started) / (len(nodes) - reused)
                low, high = SLICE_RANGE
                self.slice = max(low, min(high, int(SLICE_S / max(each, 1e-6))))
        self.report.embed_seconds += time.perf_counter() - started
        self.store.add(nodes)
        self.report.chunks += len(nodes)
        self.report.embedded += len(nodes) if embed else 0
        self.report.keyword_only += 0 if embed else len(nodes)
        self.report.item_done += len(nodes)
        self.report.seconds = time.perf_counter() - self.started
        self.on_progress(self.report)

    def _delete_missing(self) -> None:
        listed = self.connector.list_ids()
        if listed is not None:  # None: a delta source, whose deletions came as Deleted events
            self._delete(missing(self.known, set(listed), self.seen))

    def _delete(self, item_ids: list[str], keep: Kept | None = None) -> None:
        gone = remove(self.store, self.state, self.owner, item_ids, keep)
        self.report.deleted += sum(1 for i in gone if i in self.known)


def sync(
    connector: Connector,
    settings: Settings,
    state: StateStore,
    store: IndexStore,
    embedder: Embedder,
    on_progress: Callable[[SyncReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyncReport:
    """Bring the index up to date with ``connector``'s source for its owner.

    Raises ``SyncCancelled`` once ``should_stop()`` returns true (checked between items).
    """
    return Syncer(connector, settings, state, store, embedder, on_progress, should_stop).run()
