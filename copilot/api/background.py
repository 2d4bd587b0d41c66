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
that waits much longer than it computes (starved) sends the following slices back to
the sync's own thread, at nice 10, for ``COOLDOWN_S``, each slice followed by a rest as
long as it took (``PACE``): at nice 10 alone, under 20 streaming runs, the cooldown's
back-to-back slices took ~0.7 of the 2 cores, and the p95 during a sync was 95–132 ms
against 88–109 ms paced, the sync ~20 % slower meanwhile (docs/benchmarks.md, "A paced
cooldown"). A slice at ``SCHED_IDLE`` rests not: it took idle CPU only, and a sync on an
idle machine is never starved, so never paced. A starved slice is not waited for
to the end either (under ``SCHED_IDLE`` a one-second slice can take minutes on a busy
machine, with the sync's progress frozen): past its patience, the sync's thread embeds
the slice itself and the helper's late result, made on idle CPU only, is dropped. Parse
workers are not lowered further: their time limit is wall-clock, and a starved parser
would fail its file.

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
FIRST_PATIENCE_S = 10.0  # the wait for a slice before any slice's CPU time is known
PACE = 1.0  # in the cooldown, rest this many times as long as each slice took: ≤ 1/2 core

log = logging.getLogger(__name__)


class IdleEmbedder:
    """``inner`` (an ``Embedder``) whose ``embed_documents`` runs at ``SCHED_IDLE``.

    Queries and token counts are passed through untouched: they serve requests. ``clock``
    and ``sleep`` are injected so that the cooldown and its rests can be tested without
    waiting for them."""

    def __init__(
        self,
        inner: Embedder,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self._clock = clock
        self._sleep = sleep
        self._normal_until = float("-inf")
        self._cpu_per_text: float | None = None  # the last finished slice's, per text
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
        if self._refused:
            return self.inner.embed_documents(texts)
        if self._clock() < self._normal_until:
            return self._paced(texts)
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
        helper.join(self._patience(len(texts)))
        if helper.is_alive():  # starved: embed here, drop what the helper makes later
            self._cool_down("the sync's embedding was starved of CPU")
            return self._paced(texts)
        if error:
            raise error[0]
        wall, cpu = times
        self._cpu_per_text = cpu / max(1, len(texts))
        if wall - cpu > STARVED_S and wall > STARVED_RATIO * cpu:
            self._cool_down(f"the sync's embedding waited {wall - cpu:.1f} s for the CPU")
        return result[0]

    def _paced(self, texts: Sequence[str]) -> np.ndarray:
        """``texts`` embedded on this (the sync's) thread, then a rest ``PACE`` times as
        long: the progress moves on, at most half a core is taken from the requests."""
        started = time.perf_counter()
        found = self.inner.embed_documents(texts)
        self._sleep(PACE * (time.perf_counter() - started))
        return found

    def _patience(self, count: int) -> float:
        """How long a slice of ``count`` texts may take before it counts as starved."""
        if self._cpu_per_text is None:
            return FIRST_PATIENCE_S
        return STARVED_S + STARVED_RATIO * self._cpu_per_text * count

    def _cool_down(self, why: str) -> None:
        log.info("%s; normal priority for %.0f s", why, COOLDOWN_S)
        self._normal_until = self._clock() + COOLDOWN_S
