"""A sync job's totals over HTTP: ``GET /v1/sync/{id}`` and its event stream carry what a
client needs to show "n of N" and an ETA, as the CLI's progress bar does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from tests.fakes.api_server import serving, wait_for_job
from tests.fakes.api_server import sse_events as events

ANNA = {"Authorization": "Bearer dev:anna"}
BOB = {"Authorization": "Bearer dev:bob"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sync-api")
    settings = Settings(home=root / "home", auth="dev", sync_roots=[str(root)], parse_workers=1,
                        rate_limit_per_minute=1000)  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield {"client": client, "root": root}


def notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"note-{i}.txt").write_text(f"Note {i}: the heron survey counts {i} birds.")
    return folder


def test_a_local_sync_job_carries_its_total_rate_and_eta(api: dict[str, Any]) -> None:
    client = api["client"]
    folder = notes(api["root"] / "survey", 12)
    job = client.post("/v1/sync/local", json={"path": str(folder)}, headers=ANNA).json()
    assert job["progress"]["total"] == 12  # counted before the job starts: from the first look

    with client.stream("GET", f"/v1/sync/{job['id']}/events", headers=ANNA) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        stream.read()
    seen = events(stream)
    kinds = [kind for kind, _ in seen]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"progress"}, kinds
    assert all(body["progress"]["total"] == 12 for _, body in seen)
    last = seen[-1][1]["progress"]
    assert (last["seen"], last["indexed"], last["eta_seconds"]) == (12, 12, 0.0)
    assert last["rate"] > 0

    final = wait_for_job(client, job, ANNA)
    assert final["progress"] == last and final["status"] == "done"


def test_the_event_stream_of_another_users_job_is_not_found(api: dict[str, Any]) -> None:
    client = api["client"]
    folder = notes(api["root"] / "private", 2)
    job = client.post("/v1/sync/local", json={"path": str(folder)}, headers=ANNA).json()
    other = client.get(f"/v1/sync/{job['id']}/events", headers=BOB)
    assert other.status_code == 404 and other.json()["detail"] == f"No sync job {job['id']!r}."
    assert client.get("/v1/sync/nope/events", headers=ANNA).status_code == 404
    wait_for_job(client, job, ANNA)


def test_a_finished_jobs_stream_is_one_event(api: dict[str, Any]) -> None:
    client = api["client"]
    folder = notes(api["root"] / "once", 1)
    job = client.post("/v1/sync/local", json={"path": str(folder)}, headers=ANNA).json()
    done = wait_for_job(client, job, ANNA)
    assert [kind for kind, _ in events(client.get(f"/v1/sync/{job['id']}/events",
                                                  headers=ANNA))] == ["done"]  # fmt: skip
    assert done["progress"]["total"] == 1
