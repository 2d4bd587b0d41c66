"""Background sync jobs: a few worker threads running ``ingest.pipeline.sync`` for users.

Why threads in the API process and not a task queue: the embedded index allows one process
(see ``index/store.py``), so whatever writes it must live where the searches run. One worker
by default: the index takes one writer at a time anyway, and on a small machine a second
sync would only steal CPU from the searches.

The rules a caller can rely on:

* One running-or-queued job per (user, source): submitting again returns that job.
* Jobs are per user. Another user's job id answers exactly like an unknown one.
* Cancelling is cooperative: the sync stops before its next item. Everything it stored
  stays, and the next sync of the source resumes from the last checkpoint.
* A connector that raises fails its job with a plain message; the worker goes on.

No web framework here: the API maps ``JobNotFound`` and ``JobLimitError`` to responses.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.base import Connector
from copilot.api.background import IdleEmbedder
from copilot.errors import CopilotError
from copilot.ingest.pipeline import SyncCancelled, SyncReport, sync
from copilot.ingest.report import finished, rate_and_eta
from copilot.workspace import Workspace

__all__ = ["Job", "JobLimitError", "JobManager", "JobNotFound", "Status"]

Status = Literal["queued", "running", "done", "failed", "cancelled"]
MAX_FAILURES = 100  # per job in memory; the state store keeps every failure
KEEP_FINISHED = 20  # finished jobs kept per user; the syncs table is the durable history
MAX_ERROR_CHARS = 500

log = logging.getLogger(__name__)


class JobLimitError(CopilotError, RuntimeError):
    """The user has too many jobs waiting, or the manager no longer takes jobs."""

    kind = "too_many_jobs"
    status = 429
    title = "Too many syncs at once"


class JobNotFound(CopilotError, KeyError):
    """No such job for this user (whether or not another user has one by that id)."""

    kind = "job_not_found"
    status = 404
    title = "I can't find that sync"

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else "no such job"


@dataclass
class Job:
    """One sync of one source for one user. Callers get copies: a snapshot, never live."""

    id: str
    user: str
    source: str
    status: Status = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    total: int | None = None  # items expected, when known: the progress then has an ETA


@dataclass
class _Entry:
    job: Job
    factory: Callable[[], Connector]
    order: int
    stop: threading.Event = field(default_factory=threading.Event)


def _snapshot(job: Job) -> Job:
    return dataclasses.replace(job, progress=dict(job.progress), failures=list(job.failures))


def _progress(report: SyncReport, total: int | None = None) -> dict[str, Any]:
    """The numbers the CLI's progress bar shows, for ``GET /v1/sync/jobs/{id}``: the report's
    counters, the items finished, the item being embedded, the rate (items finished a second)
    and, with a known total, the ETA (``copilot.ingest.report.rate_and_eta``)."""
    numbers: dict[str, Any] = {
        k: v for k, v in report.as_dict().items() if isinstance(v, int | float)
    }
    rate, left = rate_and_eta(report, total)
    numbers["current"] = report.current
    numbers["finished"] = finished(report)
    numbers["rate"] = round(rate, 3)
    numbers["total"] = total
    numbers["eta_seconds"] = None if left is None else round(left, 1)
    return numbers


def _plain(exc: BaseException) -> str:
    """A message for the user: the exception's own words, not a traceback."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class JobManager:
    """Queues sync jobs and runs them on ``workers`` threads against ``workspace``."""

    def __init__(
        self, workspace: Workspace, *, workers: int = 1, max_queued_per_user: int = 3
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workspace = workspace
        self._embedder: IdleEmbedder | None = None  # made at the first job: loads the model
        self.max_queued_per_user = max_queued_per_user
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._active: dict[tuple[str, str], str] = {}  # (user, source) -> queued/running job
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._order = itertools.count()
        self._closed = False
        # Daemon threads: a sync stuck in a network call must not keep the process alive
        # after shutdown() has given up waiting for it.
        self._threads = [
            threading.Thread(target=self._work, name=f"copilot-sync-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- the public API ---------------------------------------------------------------
    def submit(
        self,
        user: str,
        source: str,
        connector_factory: Callable[[], Connector],
        *,
        total: int | None = None,
    ) -> Job:
        """Queue a sync of ``source`` for ``user``, or return the one already queued/running.

        ``connector_factory`` runs in the worker, so slow setup (a token exchange) does not
        hold up the request that submits the job. ``total``, the items expected (a folder's
        file count), turns the progress's rate into an ETA.
        """
        with self._lock:
            if self._closed:
                raise JobLimitError("The server is shutting down; try again in a minute.")
            existing = self._active.get((user, source))
            if existing is not None:
                entry = self._entries[existing]
                if entry.stop.is_set():
                    raise JobLimitError(
                        f"The previous {source} sync is still stopping; try again in a moment."
                    )
                return _snapshot(entry.job)
            waiting = sum(
                1 for e in self._entries.values() if e.job.user == user and e.job.status == "queued"
            )
            if waiting >= self.max_queued_per_user:
                raise JobLimitError(
                    f"You already have {waiting} syncs waiting; wait for one to finish "
                    "before starting another."
                )
            job = Job(id=uuid.uuid4().hex, user=user, source=source, total=total)
            self._entries[job.id] = _Entry(job, connector_factory, next(self._order))
            self._active[(user, source)] = job.id
            self._queue.put(job.id)
            return _snapshot(job)

    def get(self, user: str, job_id: str) -> Job:
        with self._lock:
            return _snapshot(self._own(user, job_id).job)

    def list(self, user: str) -> list[Job]:
        """``user``'s jobs in memory, newest first (the state store's syncs table keeps
        the history across restarts: ``workspace.state.summary(user)["syncs"]``)."""
        with self._lock:
            mine = [e for e in self._entries.values() if e.job.user == user]
            mine.sort(key=lambda e: e.order, reverse=True)
            return [_snapshot(e.job) for e in mine]

    def cancel(self, user: str, job_id: str) -> Job:
        """Stop a job: a queued one at once, a running one before its next item.

        A running job says ``running`` until the sync has stopped, then ``cancelled``.
        Cancelling a finished job changes nothing.
        """
        with self._lock:
            entry = self._own(user, job_id)
            if entry.job.status == "queued":
                self._finish(entry, "cancelled")
            elif entry.job.status == "running":
                entry.stop.set()
            return _snapshot(entry.job)

    def shutdown(self, wait: float = 10.0) -> None:
        """Take no more jobs, cancel the queued and running ones, wait up to ``wait`` s.

        A job that does not stop in time (a connector stuck in a network call) is left to
        its daemon thread; the caller may then close the workspace under it, which makes
        its next index call fail cleanly.
        """
        with self._lock:
            self._closed = True
            for entry in list(self._entries.values()):  # _finish may drop old entries
                if entry.job.status == "queued":
                    self._finish(entry, "cancelled")
                elif entry.job.status == "running":
                    entry.stop.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))

    # -- internals --------------------------------------------------------------------
    def _own(self, user: str, job_id: str) -> _Entry:
        entry = self._entries.get(job_id)
        if entry is None or entry.job.user != user:
            raise JobNotFound(f"No sync job {job_id!r}.")
        return entry

    def _finish(self, entry: _Entry, status: Status, error: str | None = None) -> None:
        """Mark a job finished and free its (user, source) slot; call with the lock held."""
        job = entry.job
        job.status, job.error, job.finished_at = status, error, time.time()
        if self._active.get((job.user, job.source)) == job.id:
            del self._active[(job.user, job.source)]
        done = [
            e
            for e in self._entries.values()
            if e.job.user == job.user and e.job.status in ("done", "failed", "cancelled")
        ]
        done.sort(key=lambda e: e.order)
        for old in done[:-KEEP_FINISHED]:
            del self._entries[old.job.id]

    def _work(self) -> None:
        _yield_to_requests()
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                entry = self._entries.get(job_id)
                if entry is None or entry.job.status != "queued":
                    continue  # cancelled while it waited
                entry.job.status, entry.job.started_at = "running", time.time()
            self._run(entry)

    def _run(self, entry: _Entry) -> None:
        job = entry.job
        status: Status = "failed"
        error: str | None = "the sync stopped unexpectedly"
        try:
            connector = entry.factory()
            if connector.owner != job.user:  # never index into another user's space
                raise RuntimeError("the connector belongs to another user")
            ws = self.workspace
            sync(
                connector,
                ws.settings,
                ws.state,
                ws.store,
                self._background_embedder(),
                on_progress=lambda report: self._on_progress(job, report),
                should_stop=entry.stop.is_set,
            )
            status, error = "done", None
        except SyncCancelled:
            status, error = "cancelled", None
        except Exception as exc:  # a network error, a revoked token: the worker goes on
            log.warning("sync job %s (%s, %s) failed", job.id, job.user, job.source, exc_info=True)
            if entry.stop.is_set():
                status, error = "cancelled", None  # e.g. shutdown closed the index under it
            else:
                error = _plain(exc)
        finally:
            with self._lock:
                self._finish(entry, status, error)

    def _background_embedder(self) -> IdleEmbedder:
        """The workspace's embedder, embedding on CPU no request wants (api/background.py)."""
        inner = self.workspace.embedder  # the model loads at the first job, not under the lock
        with self._lock:
            if self._embedder is None:
                self._embedder = IdleEmbedder(inner)
            return self._embedder

    def _on_progress(self, job: Job, report: SyncReport) -> None:
        progress = _progress(report, job.total)
        failures = [dict(f) for f in report.failures[:MAX_FAILURES]]
        with self._lock:
            job.progress, job.failures = progress, failures


SYNC_NICENESS = 10


def _yield_to_requests() -> None:
    """Lower this sync thread's CPU priority (Linux nice is per thread; parse workers it
    starts inherit it). A sync embeds for minutes on every core it can get; the requests
    served meanwhile need a core for milliseconds each, and without this they waited
    behind it (docs/benchmarks.md, API under load during a sync)."""
    if not sys.platform.startswith("linux"):  # elsewhere a thread id is no process id
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SYNC_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        log.debug("could not lower the sync thread's priority", exc_info=True)
