"""``copilot serve --workers 2``: two API processes on one socket, real processes.

The first process owns the index and the sync jobs; the worker serves runs and searches,
reads the index through the owner and passes the owner's routes on. Each test picks the
process it talks to by opening connections until ``/healthz`` names it (a connection stays
with the process that accepted it).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

from tests.cli.test_service_client import START_TIMEOUT_S, copilot, make_env, serving, texts

ANNA = {"Authorization": "Bearer dev:anna"}
TRIES = 400  # new connections before giving up on reaching one process


def worker_pids(pid: int) -> list[int]:
    """The live worker processes of the service ``pid``."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if "copilot.api.workers" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:  # a dead worker not yet reaped by the service
            pass
    return found


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("workers")
    env = make_env(dict(os.environ), root / "home") | {"COPILOT_SYNC_ROOTS": f'["{root}"]'}
    with serving(env, "--workers", "2") as running:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not worker_pids(running.process.pid):
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        copilot(env, "sync", "local", str(texts(root / "notes", 12)), "--user", "anna")
        running.env, running.root = env, root
        yield running


@contextmanager
def on_process(service: SimpleNamespace, number: int) -> Iterator[httpx.Client]:
    """A client whose one connection was accepted by process ``number`` (0: the owner)."""
    for _ in range(TRIES):
        with httpx.Client(base_url=service.url, timeout=60,
                          limits=httpx.Limits(max_connections=1)) as client:  # fmt: skip
            if client.get("/healthz").json()["process"] == number:
                yield client
                return
    raise AssertionError(f"no connection reached process {number} in {TRIES} tries")


def test_the_owner_and_the_worker_search_and_run_alike(service: SimpleNamespace) -> None:
    found, runs = {}, {}
    for number in (0, 1):
        with on_process(service, number) as client:
            hits = client.post("/v1/search", headers=ANNA, json={"query": "heron budget", "k": 5})
            assert hits.status_code == 200, hits.text
            found[number] = [(h["item_id"], round(h["score"], 5)) for h in hits.json()]
            run = client.post("/v1/skills/ask/run", headers=ANNA,
                              json={"inputs": {"question": "What is note 3 about?"}})  # fmt: skip
            assert run.status_code == 200, run.text
            runs[number] = run.json()["run_id"]
            assert run.json()["citations"]  # grounded in the index the owner holds
    assert found[0] == found[1] and len(found[0]) == 5
    # One state store: each process sees the run the other recorded.
    with on_process(service, 0) as owner:
        assert owner.get(f"/v1/runs/{runs[1]}", headers=ANNA).status_code == 200
    with on_process(service, 1) as worker:
        assert worker.get(f"/v1/runs/{runs[0]}", headers=ANNA).status_code == 200


def test_a_worker_passes_the_owners_routes_on(service: SimpleNamespace) -> None:
    folder = texts(service.root / "more", 3)
    with on_process(service, 1) as worker:
        started = worker.post("/v1/sync/local", headers=ANNA, json={"path": str(folder)})
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        deadline = time.monotonic() + 120
        while worker.get(f"/v1/sync/{job}", headers=ANNA).json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert worker.get(f"/v1/sync/{job}", headers=ANNA).json()["status"] == "done"
        # The CLI's routes answer the admin token from this machine: the owner still sees
        # the real client (this one, on loopback) behind the worker.
        machine = {"Authorization": f"Bearer {service.token}", "X-Copilot-User": "anna"}
        shown = worker.get("/v1/cli/service", headers=machine)
        assert shown.status_code == 200, shown.text
        assert shown.json()["pid"] == service.process.pid  # the owner answered


def test_a_claimed_client_address_counts_only_from_a_worker(service: SimpleNamespace) -> None:
    machine = {"Authorization": f"Bearer {service.token}", "X-Copilot-User": "anna"}
    with on_process(service, 0) as owner:
        forged = {**machine, "X-Copilot-Client": "10.1.2.3", "X-Copilot-Worker": "not-the-token"}
        assert owner.get("/v1/cli/service", headers=forged).status_code == 200  # ignored
        # With the service's proof, the address is taken: the admin token from 10.1.2.3 is
        # refused, as it would be from that machine itself.
        claimed = {**machine, "X-Copilot-Client": "10.1.2.3", "X-Copilot-Worker": service.token}
        refused = owner.get("/v1/cli/service", headers=claimed)
        assert refused.status_code == 403 and "this machine" in refused.text


def test_the_index_routes_answer_only_the_service_itself(service: SimpleNamespace) -> None:
    with on_process(service, 0) as owner:
        for headers in ({}, ANNA):
            refused = owner.post("/internal/index/count", headers=headers, json={"owner": "x"})
            assert refused.status_code == 403
        machine = {"Authorization": f"Bearer {service.token}"}
        query = {"owner": "local:anna", "text": "x", "dense": "AAAA"}
        bad = owner.post("/internal/index/search", json=query, headers=machine)
        assert bad.status_code == 422 and "vector" in bad.text  # 1 float, not 384: named


def test_a_worker_calls_the_owner_on_a_socket_only_the_owner_accepts(
    service: SimpleNamespace,
) -> None:
    # On the service's port the kernel spreads connections over every process, so a
    # worker's index search could land on a worker and be passed on again. The address a
    # worker is given reaches the owner on every new connection.
    (pid,) = worker_pids(service.process.pid)
    argv = psutil.Process(pid).cmdline()
    owner_url = argv[argv.index("--owner") + 1]
    assert httpx.URL(owner_url).port != httpx.URL(service.url).port
    for _ in range(20):
        with httpx.Client(base_url=owner_url, timeout=30) as client:
            assert client.get("/healthz").json()["process"] == 0


def test_an_index_route_that_reaches_a_worker_is_answered_by_the_owner(
    service: SimpleNamespace,
) -> None:
    machine = {"Authorization": f"Bearer {service.token}"}
    with on_process(service, 0) as owner:
        expected = owner.post(
            "/internal/index/count", headers=machine, json={"owner": "local:anna"}
        )
    with on_process(service, 1) as worker:
        counted = worker.post(
            "/internal/index/count", headers=machine, json={"owner": "local:anna"}
        )
    assert expected.status_code == counted.status_code == 200
    assert counted.json() == expected.json() > 0


def test_a_dead_worker_is_replaced_and_stop_ends_every_process(service: SimpleNamespace) -> None:
    (first,) = worker_pids(service.process.pid)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        pids = [p for p in worker_pids(service.process.pid) if p != first]
        if pids:
            break
        assert time.monotonic() < deadline, "the worker was not started again"
        time.sleep(0.2)
    with on_process(service, 1) as worker:  # the new worker serves
        assert worker.get("/readyz").status_code == 200
    copilot(service.env, "stop")
    assert service.process.wait(timeout=60) == 0
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie"
    assert "starting it again" in Path(service.log).read_text()
