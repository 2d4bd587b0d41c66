"""Background sync jobs: progress, per-user isolation, cancelling, limits and shutdown."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime

import pytest

from connectors.local import LocalFolder
from connectors.types import Checkpoint, Content, Item
from copilot.api.jobs import SYNC_NICENESS, Job, JobLimitError, JobManager, JobNotFound
from copilot.workspace import Workspace


class SlowSource:
    """A fake mailbox: ``n`` one-line notes, one every ``delay`` s, a checkpoint every 5."""

    def __init__(self, owner: str, n: int = 40, delay: float = 0.05, name: str = "slow") -> None:
        self.owner, self.scope, self.n, self.delay = owner, f"fake:{name}", n, delay
        self.checkpoints_given: list[dict | None] = []

    def load(self, checkpoint):
        self.checkpoints_given.append(checkpoint)
        for i in range((checkpoint or {}).get("next", 0), self.n):
            time.sleep(self.delay)
            data = f"Note {i}: the budget review moves to week {i}.".encode()
            yield Item(
                id=f"fake:{i}",
                owner=self.owner,
                kind="file",
                title=f"note-{i}.txt",
                url="",
                modified=datetime(2024, 1, 1, tzinfo=UTC),
                version="1",
                content=Content.of(data, "text/plain"),
            )
            if (i + 1) % 5 == 0:
                yield Checkpoint({"next": i + 1})

    def list_ids(self):
        return [f"fake:{i}" for i in range(self.n)]


class StuckSource:
    """A source hanging in a network call that ignores cancelling, until ``release``."""

    def __init__(self, owner: str, name: str = "stuck") -> None:
        self.owner, self.scope = owner, f"fake:{name}"
        self.release, self.entered = threading.Event(), threading.Event()

    def load(self, checkpoint):
        self.entered.set()
        self.release.wait(60)
        yield from SlowSource(self.owner, n=3, delay=0).load(None)

    def list_ids(self):
        return [f"fake:{i}" for i in range(3)]


class BrokenSource:
    def __init__(self, owner: str) -> None:
        self.owner, self.scope = owner, "fake:broken"

    def load(self, checkpoint):
        raise ConnectionError("cannot reach mail.example.com: connection refused")
        yield  # a generator, like a real connector

    def list_ids(self):
        return []


@pytest.fixture
def ws(settings):
    with Workspace(settings.model_copy(update={"parse_workers": 1})) as workspace:
        yield workspace


@pytest.fixture
def jobs(ws):
    manager = JobManager(ws)
    yield manager
    manager.shutdown(wait=10)


def wait_for(jobs: JobManager, user: str, job_id: str, *states: str, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get(user, job_id)
        if job.status in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job still {job.status} after {timeout} s: {job}")


def wait_until(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_local_folder_job_reports_progress_and_failures(jobs, ws, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"minutes-{i}.txt").write_text(f"Minutes of meeting {i}: the offsite is in May.")
    (docs / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a Word file")

    job = jobs.submit("ann", "local", lambda: LocalFolder(docs, owner="ann"))
    assert job.status in ("queued", "running") and job.user == "ann" and job.source == "local"
    done = wait_for(jobs, "ann", job.id, "done", "failed", "cancelled")

    assert done.status == "done", done.error
    assert done.error is None and done.started_at <= done.finished_at
    assert (done.progress["seen"], done.progress["indexed"], done.progress["failed"]) == (7, 6, 1)
    [failure] = done.failures
    assert failure["item"].endswith("broken.docx") and failure["stage"] == "parse"
    assert failure["reason"]
    assert ws.store.count("ann") == done.progress["chunks"] >= 6
    assert [j.id for j in jobs.list("ann")] == [job.id]
    assert ws.state.summary("ann")["syncs"][0]["status"] == "done"


def test_jobs_are_snapshots_not_live_objects(jobs):
    source = SlowSource("ann", n=10, delay=0.01)
    job = jobs.submit("ann", "outlook", lambda: source)
    job.progress["seen"] = -1
    done = wait_for(jobs, "ann", job.id, "done", "failed")
    assert done.status == "done", done.error
    assert job.status in ("queued", "running")  # the copy the caller holds did not move
    assert done.progress["seen"] == 10


def test_submit_again_returns_the_job_already_queued_or_running(jobs):
    first = jobs.submit("ann", "outlook", lambda: SlowSource("ann", n=30, delay=0.05))
    again = jobs.submit("ann", "outlook", lambda: SlowSource("ann", n=30, delay=0.05))
    other = jobs.submit("ann", "onedrive", lambda: SlowSource("ann", n=3, name="drive"))
    assert again.id == first.id and other.id != first.id

    wait_for(jobs, "ann", first.id, "done")
    wait_for(jobs, "ann", other.id, "done")
    rerun = jobs.submit("ann", "outlook", lambda: SlowSource("ann", n=30, delay=0.0))
    assert rerun.id != first.id  # a finished job is not returned again
    wait_for(jobs, "ann", rerun.id, "done")
    assert [j.id for j in jobs.list("ann")] == [rerun.id, other.id, first.id]


def test_another_user_cannot_see_or_cancel_a_job(jobs):
    job = jobs.submit("ann", "outlook", lambda: SlowSource("ann", n=20, delay=0.05))

    with pytest.raises(JobNotFound) as theirs:
        jobs.get("bob", job.id)
    with pytest.raises(KeyError) as unknown:  # JobNotFound is a KeyError
        jobs.get("bob", "0" * 32)
    assert str(theirs.value) == str(unknown.value).replace("0" * 32, job.id)
    with pytest.raises(JobNotFound):
        jobs.cancel("bob", job.id)
    assert jobs.list("bob") == []

    assert wait_for(jobs, "ann", job.id, "done", "cancelled").status == "done"


def test_cancel_stops_a_running_sync_quickly_and_the_next_one_resumes(jobs, ws):
    source = SlowSource("ann", n=60, delay=0.1)
    job = jobs.submit("ann", "outlook", lambda: source)
    wait_until(lambda: jobs.get("ann", job.id).progress.get("indexed", 0) >= 10)

    asked = time.monotonic()
    jobs.cancel("ann", job.id)
    stopped = wait_for(jobs, "ann", job.id, "cancelled", "done", "failed", timeout=10)
    assert stopped.status == "cancelled" and stopped.error is None
    assert time.monotonic() - asked < 3
    assert stopped.progress["seen"] < 60
    assert ws.state.summary("ann")["syncs"][0]["status"] == "cancelled"
    with pytest.raises(JobNotFound):
        jobs.get("ann", "not-a-job")
    assert jobs.cancel("ann", job.id).status == "cancelled"  # again: nothing changes

    source.delay = 0.01
    rerun = jobs.submit("ann", "outlook", lambda: source)
    assert rerun.id != job.id
    done = wait_for(jobs, "ann", rerun.id, "done", "failed", "cancelled")
    assert done.status == "done", done.error
    resumed_at = source.checkpoints_given[1]["next"]
    assert resumed_at >= 10
    assert done.progress["seen"] == 60 - resumed_at  # it did not start over
    assert ws.store.count("ann") == 60  # every note once: no duplicates, none lost


def test_queue_cap_per_user_and_cancelling_a_queued_job(jobs):
    blocker = StuckSource("zoe")
    busy = jobs.submit("zoe", "outlook", lambda: blocker)  # holds the only worker
    assert blocker.entered.wait(30)
    queued = [
        jobs.submit("ann", source, lambda: SlowSource("ann", n=1, delay=0))
        for source in ("outlook", "onedrive", "sharepoint")
    ]
    assert all(j.status == "queued" for j in queued)
    with pytest.raises(JobLimitError, match="3 syncs waiting"):
        jobs.submit("ann", "local", lambda: SlowSource("ann", n=1))
    assert jobs.submit("bob", "local", lambda: SlowSource("bob", n=1)).status == "queued"

    cancelled = jobs.cancel("ann", queued[0].id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert jobs.submit("ann", "local", lambda: SlowSource("ann", n=1, delay=0)).status == "queued"

    blocker.release.set()
    wait_for(jobs, "zoe", busy.id, "done")
    for job in queued[1:]:
        assert wait_for(jobs, "ann", job.id, "done", "failed").status == "done"


def test_shutdown_cancels_a_running_job_within_the_bound(ws):
    jobs = JobManager(ws)
    job = jobs.submit("ann", "outlook", lambda: SlowSource("ann", n=10_000, delay=0.05))
    wait_until(lambda: jobs.get("ann", job.id).progress.get("seen", 0) >= 3)

    started = time.monotonic()
    jobs.shutdown(wait=5)
    assert time.monotonic() - started < 6
    assert jobs.get("ann", job.id).status == "cancelled"
    with pytest.raises(JobLimitError, match="shutting down"):
        jobs.submit("ann", "onedrive", lambda: SlowSource("ann"))


def test_shutdown_gives_up_on_a_job_that_does_not_stop(ws):
    jobs = JobManager(ws)
    stuck = StuckSource("ann")
    job = jobs.submit("ann", "outlook", lambda: stuck)
    assert stuck.entered.wait(30)

    started = time.monotonic()
    jobs.shutdown(wait=1)
    assert time.monotonic() - started < 2
    stuck.release.set()  # the call returns at last; the job then sees it was cancelled
    assert wait_for(jobs, "ann", job.id, "cancelled", "failed", "done").status == "cancelled"


def test_a_failing_connector_fails_its_job_and_the_worker_goes_on(jobs):
    broken = jobs.submit("ann", "outlook", lambda: BrokenSource("ann"))
    failed = wait_for(jobs, "ann", broken.id, "failed", "done")
    assert failed.status == "failed"
    assert failed.error == "cannot reach mail.example.com: connection refused"

    def no_token():
        raise PermissionError("your sign-in has expired; sign in again")

    expired = jobs.submit("ann", "onedrive", no_token)
    assert wait_for(jobs, "ann", expired.id, "failed").error == (
        "your sign-in has expired; sign in again"
    )
    wrong_owner = jobs.submit("ann", "sharepoint", lambda: SlowSource("bob", n=1))
    assert "another user" in wait_for(jobs, "ann", wrong_owner.id, "failed").error

    ok = jobs.submit("ann", "local", lambda: SlowSource("ann", n=2, delay=0))
    assert wait_for(jobs, "ann", ok.id, "done", "failed").status == "done"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_a_sync_runs_at_lower_cpu_priority_than_the_requests(jobs):
    class NiceProbe(SlowSource):
        def load(self, checkpoint):
            self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            yield from super().load(checkpoint)

    source = NiceProbe("ann", n=2, delay=0)
    done = wait_for(jobs, "ann", jobs.submit("ann", "outlook", lambda: source).id, "done", "failed")
    assert done.status == "done", done.error
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert source.nice == min(here + SYNC_NICENESS, 19)  # the job's thread, not this one
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_a_jobs_embedding_runs_on_cpu_no_request_wants(jobs, ws, tmp_path, monkeypatch):
    embed = ws.embedder.embed_documents
    policies: list[int] = []

    def recording(texts):
        policies.append(os.sched_getscheduler(0))
        return embed(texts)

    monkeypatch.setattr(ws.embedder, "embed_documents", recording)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "minutes.txt").write_text("Minutes: the offsite is in May.")
    job = jobs.submit("ann", "local", lambda: LocalFolder(docs, owner="ann"))
    assert wait_for(jobs, "ann", job.id, "done", "failed").status == "done"
    # api/background.py; the job's thread stays at nice 10. (A helper starved past its
    # patience on a busy machine would be followed by the job's own thread: only the first.)
    assert policies[0] == os.SCHED_IDLE
