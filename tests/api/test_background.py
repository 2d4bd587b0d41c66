"""A background sync's embedding: on CPU no request wants, never starved for long.

The embedder here is a stand-in that records the CPU policy of the thread it runs on; the
clock is injected, so the cooldown after a starved slice is checked without waiting."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from copilot.api.background import COOLDOWN_S, PACE, STARVED_S, IdleEmbedder

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SCHED_IDLE is a Linux policy"
)


class Recorder:
    """Embeds to zeros; remembers the policy of each call's thread. ``wait_s``: time spent
    off the CPU per call, as a slice that was starved of it spends it."""

    model_id, dim, max_tokens = "recorder", 4, 256

    def __init__(self, wait_s: float = 0.0) -> None:
        self.wait_s = wait_s
        self.policies: list[int] = []
        self.threads: list[int] = []

    def embed_documents(self, texts):
        self.policies.append(os.sched_getscheduler(0))
        self.threads.append(threading.get_ident())
        time.sleep(self.wait_s)
        return np.zeros((len(texts), self.dim), dtype=np.float32)

    def embed_query(self, text):
        self.policies.append(os.sched_getscheduler(0))
        return np.zeros(self.dim, dtype=np.float32)

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_documents_are_embedded_at_sched_idle_on_a_helper_thread():
    inner = Recorder()
    embedder = IdleEmbedder(inner)
    vectors = embedder.embed_documents(["the offsite is in May", "budget table"])
    assert vectors.shape == (2, 4)
    assert inner.policies == [os.SCHED_IDLE]
    assert inner.threads != [threading.get_ident()]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread is untouched


def test_queries_and_token_counts_serve_requests_at_normal_priority():
    inner = Recorder()
    embedder = IdleEmbedder(inner)
    embedder.embed_query("when is the offsite")
    assert inner.policies == [os.SCHED_OTHER]
    assert embedder.count_tokens(["two words"]) == [2]
    assert (embedder.model_id, embedder.dim, embedder.max_tokens) == ("recorder", 4, 256)


def test_a_starved_slice_sends_the_next_ones_back_to_normal_priority_for_a_while():
    clock = Clock()
    inner = Recorder(wait_s=STARVED_S + 0.2)  # waited for the CPU, computed almost nothing
    embedder = IdleEmbedder(inner, clock=clock)
    embedder.embed_documents(["a"])
    inner.wait_s = 0.0
    embedder.embed_documents(["b"])  # within the cooldown: on the sync's own thread
    clock.now += COOLDOWN_S + 1
    embedder.embed_documents(["c"])  # after it: at SCHED_IDLE again
    assert inner.policies == [os.SCHED_IDLE, os.SCHED_OTHER, os.SCHED_IDLE]
    assert inner.threads[1] == threading.get_ident()


def test_in_the_cooldown_each_slice_rests_as_long_as_it_took():
    # At nice 10 alone the sync took ~0.7 of 2 cores from 20 streaming runs for the whole
    # cooldown; resting after each slice holds it to half a core at most.
    clock, rests = Clock(), []
    inner = Recorder(wait_s=STARVED_S + 0.2)
    embedder = IdleEmbedder(inner, clock=clock, sleep=rests.append)
    embedder.embed_documents(["a"])  # starved: the cooldown starts
    assert rests == []  # a slice at SCHED_IDLE takes only idle CPU: no rest after it
    inner.wait_s = 0.05
    embedder.embed_documents(["b", "c"])
    assert len(rests) == 1 and rests[0] == pytest.approx(PACE * 0.05, abs=0.04)
    clock.now += COOLDOWN_S + 1
    inner.wait_s = 0.0
    embedder.embed_documents(["d"])  # at SCHED_IDLE again: no rest
    assert len(rests) == 1


def test_a_slice_starved_past_its_patience_is_embedded_on_the_syncs_own_thread():
    caller = threading.get_ident()

    class Starving(Recorder):
        """Once ``starve`` is set, helper threads get no CPU (they wait 30 s); the sync's
        own thread computes at once."""

        starve = False

        def embed_documents(self, texts):
            self.wait_s = 30.0 if self.starve and threading.get_ident() != caller else 0.0
            return super().embed_documents(texts)

    inner = Starving()
    embedder = IdleEmbedder(inner)
    embedder.embed_documents(["a first slice"])  # computed at once: patience now ~2 s
    inner.starve = True
    started = time.monotonic()
    vectors = embedder.embed_documents(["the offsite is in May"])
    assert vectors.shape == (1, 4)
    assert time.monotonic() - started < STARVED_S + 2  # not the helper's 30 s
    # the first slice and the starved one's helper at SCHED_IDLE, then the sync's thread
    assert inner.policies == [os.SCHED_IDLE, os.SCHED_IDLE, os.SCHED_OTHER]
    embedder.embed_documents(["budget"])  # cooling down: on the sync's thread straight away
    assert inner.threads[-2:] == [caller, caller]


def test_an_error_of_the_embedder_reaches_the_sync():
    class Broken(Recorder):
        def embed_documents(self, texts):
            raise RuntimeError("the model file is damaged")

    with pytest.raises(RuntimeError, match="damaged"):
        IdleEmbedder(Broken()).embed_documents(["a"])


def test_where_the_policy_is_refused_slices_run_as_they_are(monkeypatch):
    def refuse(pid, policy, param):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    inner = Recorder()
    embedder = IdleEmbedder(inner)
    embedder.embed_documents(["a"])  # on a helper thread, at normal priority
    embedder.embed_documents(["b"])  # not asked again: on the caller's thread
    assert inner.policies == [os.SCHED_OTHER, os.SCHED_OTHER]
    assert inner.threads[1] == threading.get_ident()
