"""/v1/sync: start background syncs of the caller's sources and watch their progress.

A job syncs one source for the signed-in user only; the connector is built here from the
user's identity (their Graph token via the on-behalf-of exchange), never from ids in the
request body, so a request cannot point a sync at someone else's mailbox.

Progress, on ``GET /v1/sync/{id}`` and as Server-Sent Events on ``GET /v1/sync/{id}/events``,
carries the numbers the CLI's progress bar shows (``copilot.api.jobs._progress``): the
counters, the item being embedded, the rate, and — when the total is known (a local folder's
files, counted before the job starts) — ``total`` and ``eta_seconds``. A mailbox or a drive
says how much there is only as its sync goes: ``total`` is null for them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import StreamingResponse

from copilot.api import cli_ops, schemas
from copilot.api.auth import Principal
from copilot.api.deps import Api, ApiDep, UserDep
from copilot.api.problems import Problem

router = APIRouter(prefix="/v1/sync", tags=["sync"])
SOURCES = ("local", "outlook", "onedrive", "sharepoint")
FINISHED = ("done", "failed", "cancelled")
EVENTS_POLL_S = 0.5  # how often the event stream looks at its job
KEEPALIVE_S = 15.0  # a comment line while nothing changes: proxies keep the stream open


def job_out(job: Any) -> dict[str, Any]:
    """A job as the API shows it; ``progress.total`` is there from the start (null when
    unknown), the other numbers from the sync's first report on."""
    return {
        "id": job.id,
        "source": job.source,
        "status": job.status,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": {"total": job.total, **job.progress},
        "failures": list(job.failures)[:100],
        "error": job.error,
    }


def connector_factory(api: Api, user: Principal, source: str, body: schemas.SyncIn) -> Callable:
    """A function that makes the connector inside the job (so slow setup runs there)."""
    if source == "local":
        if api.settings.auth != "dev":
            raise Problem(403, "Syncing a server folder is only possible in development mode.")
        if not body.path:
            raise Problem(422, "Give the folder to sync as `path`.")
        folder = confined_folder(body.path, api.settings.sync_roots, user.name)
        from connectors.local import LocalFolder

        connector = LocalFolder(folder, owner=user.user_id)  # the root resolved now, checked
        return lambda: connector
    from copilot.api.graph_sources import graph_connector_factory

    return graph_connector_factory(api, user, source, body)


def confined_folder(raw: str, roots: Sequence[str], user: str) -> Path:
    """The folder ``raw`` names, resolved, if it lies inside one of ``roots``; else a problem
    naming it.

    Why both checks: the path as written (``..`` folded, nothing resolved) must be inside a
    root, so ``/data/bob/../anna`` and ``/proc/self/cwd`` are refused for what they say; and
    the path with every link resolved must be inside that root's resolved form, so a link
    planted in a root cannot lead out of it. ``{user}`` in a root is the caller's name, which
    gives each dev user a folder of their own. No ``~``: the server's home is not the caller's.
    """
    if "\x00" in raw or len(raw) > 4096:
        raise Problem(422, "`path` is not a valid folder path.", path=raw[:200])
    path = Path(raw)
    if not path.is_absolute():
        raise Problem(
            422, f"{raw} is not an absolute path: give the folder's full path on the server.",
            path=raw,
        )  # fmt: skip
    written = Path(os.path.normpath(path))
    real = Path(os.path.realpath(path))
    allowed = []
    for root in roots:
        base = Path(root.replace("{user}", user)).expanduser()
        if base.is_absolute():
            allowed.append(base)
    if not any(
        written.is_relative_to(os.path.normpath(b)) and real.is_relative_to(os.path.realpath(b))
        for b in allowed
    ):
        places = ", ".join(str(b) for b in allowed) or "none configured"
        raise Problem(
            403, f"{raw} is outside the folders this server may sync ({places}; "
            "COPILOT_SYNC_ROOTS).", path=raw,
        )  # fmt: skip
    if not real.is_dir():
        raise Problem(422, f"{raw} is not a folder on the server.", path=raw)
    return real


@router.post("/{source}", response_model=schemas.JobOut, status_code=status.HTTP_202_ACCEPTED)
def start_sync(source: str, body: schemas.SyncIn, api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Start (or join) a background sync of one of your sources: local (development
    mode), outlook, onedrive or sharepoint. Poll GET /v1/sync/{job_id} for progress."""
    if source not in SOURCES:
        raise Problem(404, f"Unknown source {source!r}: use {', '.join(SOURCES)}.")
    factory = connector_factory(api, user, source, body)
    total = None
    if source == "local" and body.path:  # checked by connector_factory: a folder in a root
        total, _ = cli_ops.count_files(Path(os.path.realpath(body.path)))
    try:
        job = api.jobs.submit(user.user_id, source, factory, total=total)
    except Exception as exc:
        if type(exc).__name__ == "JobLimitError":
            raise Problem(429, str(exc)) from None
        raise
    return job_out(job)


@router.get("", response_model=schemas.SyncStatus)
def sync_status(api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Your sync jobs, what is indexed, and what failed and why."""
    summary = api.workspace.state.summary(user.user_id)
    failures = [
        {"item": f["item_id"], "stage": f["stage"], "reason": f["reason"]}
        for f in api.workspace.state.failures(user.user_id)[:200]
    ]
    return {
        "jobs": [job_out(j) for j in api.jobs.list(user.user_id)],
        "items": summary["items"],
        "chunks": summary["chunks"],
        "failures": failures,
    }


@router.get("/{job_id}", response_model=schemas.JobOut)
def get_job(job_id: str, api: ApiDep, user: UserDep) -> dict[str, Any]:
    return job_out(_job(api, user, job_id, cancel=False))


@router.get("/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}})
def job_events(job_id: str, request: Request, api: ApiDep, user: UserDep) -> StreamingResponse:
    """The job as Server-Sent Events: ``progress`` with the body of GET /v1/sync/{job_id}
    each time it changes (at most every 0.5 s), then one ``done``, ``failed`` or
    ``cancelled`` event with the final body, and the stream ends."""
    first = _job(api, user, job_id, cancel=False)  # an unknown job: 404 before any event
    return StreamingResponse(
        _events(request, api, user, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, api: Api, user: Principal, job: Any) -> AsyncIterator[bytes]:
    from copilot.api.streaming import sse

    last: dict[str, Any] | None = None
    quiet_since = time.monotonic()
    while True:
        body = job_out(job)
        if job.status in FINISHED:
            yield sse(job.status, body)
            return
        if body != last:
            yield sse("progress", body)
            last, quiet_since = body, time.monotonic()
        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
            yield b": still running\n\n"
            quiet_since = time.monotonic()
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENTS_POLL_S)
        try:
            job = api.jobs.get(user.user_id, job.id)
        except KeyError:  # dropped from memory (many newer jobs): the history has it
            return


@router.delete("/{job_id}", response_model=schemas.JobOut)
def cancel_job(job_id: str, api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Stop a running sync; the next one resumes where it stopped."""
    return job_out(_job(api, user, job_id, cancel=True))


def _job(api: Api, user: Principal, job_id: str, *, cancel: bool) -> Any:
    try:
        if cancel:
            return api.jobs.cancel(user.user_id, job_id)
        return api.jobs.get(user.user_id, job_id)
    except KeyError:
        raise Problem(404, f"No sync job {job_id!r}.") from None
