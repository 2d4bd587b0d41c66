"""A background sync's embedding runs on CPU no request wants, and is never starved for long.

Why: while the service syncs, its embedding takes most of a core for minutes, and the
requests served meanwhile need a core for milliseconds each, many times per run (the
event loop, a run thread, the interpreter lock, a stream's next chunk). The sync's thread
runs at nice 10 (``jobs._yield_to_requests``), yet a request thread that woke up still
waited for the embedding's time slice on that core to end. Under Linux's ``SCHED_IDLE``
policy a thread is preempted at once by any normal one that wakes: measured with 20
streams while a sync ran, six pairs alternated with nice 10, the median p95 before the
first byte fell from 113 to 104 ms and the p50 from 56 to 49 ms, the sync as fast
(docs/benchmarks.md, "The sync's embedding at SCHED_IDLE").

The price of ``SCHED_IDLE`` is that a thread gets nothing while every core is busy with
normal work: a sync on a machine that compiles something for an hour would stand still,
and an unprivileged thread cannot leave the policy once in it. So each slice of chunks is
embedded on a new helper thread that takes the policy for that slice only, and a slice
that waited much longer than it computed (starved) sends the following slices back to
the sync's own thread, at nice 10, for ``COOLDOWN_S``. Parse workers are not lowered
further: their time limit is wall-clock, and a starved parser would fail its file.

Elsewhere than Linux, or where the policy is refused, the embedder is used as it is.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from copilot.index.embed import Embedder

__all__ = ["COOLDOWN_S", "IdleEmbedder"]

STARVED_S = 2.0  # a slice waited this long for the CPU beyond what it computed ...
STARVED_RATIO = 3.0  # ... and its wall time was this many times its CPU time
COOLDOWN_S = 60.0  # then slices run at the sync thread's own priority for this long

log = logging.getLogger(__name__)


class IdleEmbedder:
    """``inner`` (an ``Embedder``) whose ``embed_documents`` runs at ``SCHED_IDLE``.

    Queries and token counts are passed through untouched: they serve requests. ``clock``
    is injected so that the cooldown can be tested without waiting for it."""

    def __init__(self, inner: Embedder, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self._clock = clock
        self._normal_until = float("-inf")
        self._refused = not sys.platform.startswith("linux") or not hasattr(os, "SCHED_IDLE")

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self._refused or self._clock() < self._normal_until:
            return self.inner.embed_documents(texts)
        result: list[np.ndarray] = []
        error: list[BaseException] = []
        times: list[float] = []

        def work() -> None:
            try:
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            except OSError:  # not allowed here: this and later slices at normal priority
                self._refused = True
                log.debug("SCHED_IDLE refused for the sync's embedding", exc_info=True)
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                result.append(self.inner.embed_documents(texts))
            except BaseException as exc:  # re-raised on the sync's thread
                error.append(exc)
            times.extend((time.perf_counter() - started, time.thread_time() - cpu))

        helper = threading.Thread(target=work, name="copilot-sync-embed", daemon=True)
        helper.start()
        helper.join()
        if error:
            raise error[0]
        wall, cpu = times
        if wall - cpu > STARVED_S and wall > STARVED_RATIO * cpu:
            log.info("the sync's embedding waited %.1f s for the CPU; normal priority for "
                     "%.0f s", wall - cpu, COOLDOWN_S)  # fmt: skip
            self._normal_until = self._clock() + COOLDOWN_S
        return result[0]
