"""/v1/sync: start background syncs of the caller's sources and watch their progress.

A job syncs one source for the signed-in user only; the connector is built here from the
user's identity (their Graph token via the on-behalf-of exchange), never from ids in the
request body, so a request cannot point a sync at someone else's mailbox.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, status

from copilot.api import schemas
from copilot.api.auth import Principal
from copilot.api.deps import Api, ApiDep, UserDep
from copilot.api.problems import Problem

router = APIRouter(prefix="/v1/sync", tags=["sync"])
SOURCES = ("local", "outlook", "onedrive", "sharepoint")


def job_out(job: Any) -> dict[str, Any]:
    return {
        "id": job.id,
        "source": job.source,
        "status": job.status,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": dict(job.progress),
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
    try:
        job = api.jobs.submit(user.user_id, source, factory)
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
