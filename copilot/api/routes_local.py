"""The routes for this machine: the CLI's (``/v1/cli``) and dev mode's sign-in list.

``/v1/cli/*`` answer only the local admin token (``Principal.machine``: this machine's own
``copilot`` command, acting as the local user it names). They run the same operations as
a command run in the CLI's own process (``cli_ops``) and answer with the JSON that
command prints, and with its words on failure, so the CLI's output is the same whether
or not a service runs. They are not in the public OpenAPI document: the task pane and the
bot use the public routes.

``GET /v1/dev/users`` (dev mode only) lists who the pane's dev sign-in can pick: the
configured dev users and every local user with data (the CLI's users among them).
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from copilot.api import cli_ops, streaming
from copilot.api.auth import Principal
from copilot.api.deps import Api, ApiDep, current_user
from copilot.api.problems import Problem
from copilot.api.routes_sync import job_out
from copilot.db.owners import local_users

STARTED = time.time()  # the service's start, near enough: imported when the app is made


def machine_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.machine:
        raise Problem(403, "Only this machine's copilot command may use /v1/cli routes.")
    return user


MachineDep = Annotated[Principal, Depends(machine_user)]
cli_router = APIRouter(prefix="/v1/cli", tags=["cli"], include_in_schema=False)
dev_router = APIRouter(prefix="/v1/dev", tags=["dev"], include_in_schema=False)


class SearchBody(BaseModel):
    query: str = Field(max_length=4000)
    k: int = Field(10, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    kind: str | None = Field(None, max_length=20)


class ScoreBody(BaseModel):
    skill: str = Field(max_length=200)
    file: str = Field(max_length=4096)
    column: str = Field(max_length=200)
    sheet: str | None = Field(None, max_length=200)
    out: str = Field(max_length=4096)
    engine: str = "auto"


def cli_problem(exc: BaseException) -> Problem:
    """``exc`` as a problem carrying the words the CLI prints for it."""
    from copilot.errors import describe

    if isinstance(exc, Problem):
        return exc
    words, _ = cli_ops.cli_words(exc)
    described = describe(exc, where="a /v1/cli route")
    return Problem(described.status, words, code=described.kind, **described.fields)


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise cli_problem(exc) from None


@cli_router.get("/service")
def service(request: Request, api: ApiDep, user: MachineDep) -> dict[str, Any]:
    """This service: pid, start, uptime, address, and what answers skills."""
    engine, model = engine_and_model(api)
    return {
        "pid": os.getpid(),
        "started": STARTED,
        "uptime_s": round(time.time() - STARTED, 1),
        "address": str(request.base_url).rstrip("/"),
        "home": str(api.settings.home_dir),
        "engine": engine,
        "model": model,
    }


def engine_and_model(api: Api) -> tuple[str, str | None]:
    from copilot.skills.engines.select import choose_engine

    try:
        engine = choose_engine(api.settings)
    except Exception:  # a misconfigured engine is the run's error to report, not status's
        return "unavailable", None
    if engine == "llm":
        return engine, api.settings.llm_model
    if engine == "embedded":
        from copilot.llm.embedded.server import running

        info = running(api.settings)
        return engine, info.model if info else api.settings.embedded_model
    return engine, None


@cli_router.get("/status")
def status(
    api: ApiDep, user: MachineDep, owner: Annotated[str | None, Query(max_length=300)] = None
) -> dict[str, Any]:
    """``copilot status`` (every user's, or ``owner``'s)."""
    return _guarded(cli_ops.status, api.workspace.state, owner, api.settings)


@cli_router.post("/search")
def search(body: SearchBody, api: ApiDep, user: MachineDep) -> list[dict[str, Any]]:
    return _guarded(cli_ops.search, api.workspace, user.user_id, body.query, k=body.k,
                    mode=body.mode, kind=body.kind)  # fmt: skip


@cli_router.post("/sync", status_code=202)
def sync(body: cli_ops.SyncSpec, api: ApiDep, user: MachineDep) -> dict[str, Any]:
    """Start (or join) a sync job of a source the CLI names; progress at /v1/sync/{id}.

    The job's source is the connector's scope, so the same folder twice joins one job
    and two different ones queue behind the one worker.
    """
    connector = _guarded(cli_ops.connector_for, body, user.user_id, api.settings)
    job = _guarded(api.jobs.submit, user.user_id, connector.scope, lambda: connector,
                   total=cli_ops.sync_total(body))  # fmt: skip
    return {"job": job_out(job), "scope": connector.scope}


@cli_router.post("/run", responses={200: {"content": {"text/event-stream": {}}}})
def run(body: cli_ops.RunArgs, api: ApiDep, user: MachineDep) -> StreamingResponse:
    """``copilot run``: events (``sources``, ``delta``…), then ``done`` with the result as
    ``--json`` prints it, or ``error`` with the CLI's words."""
    args = body

    def work(emit: Any, cancel: Any) -> Any:
        return cli_ops.run(api.runner, user.user_id, args, emit, cancel=cancel)

    return _events(api, work, cli_ops.result_json)


@cli_router.post("/score", responses={200: {"content": {"text/event-stream": {}}}})
def score(body: ScoreBody, api: ApiDep, user: MachineDep) -> StreamingResponse:
    """``copilot run SKILL --file BOOK.xlsx --column C``: ``progress`` events, then ``done``
    with the summary; the scored copy is written to ``out`` on this machine."""

    def work(emit: Any, cancel: Any) -> Any:
        def on_progress(done: int, total: int) -> None:
            emit("progress", {"done": done, "total": total})

        return cli_ops.score(api.runner, user.user_id, body.skill, body.file,
                             column=body.column, sheet=body.sheet, out=body.out,
                             engine=body.engine, on_progress=on_progress)  # fmt: skip

    return _events(api, work, lambda summary: summary)


@cli_router.post("/skills/{op}")
def skills(op: str, body: dict[str, Any], api: ApiDep, user: MachineDep) -> dict[str, Any]:
    """One ``copilot skills`` operation: ``{"result": …}``."""
    if op not in cli_ops.SKILL_OPS:
        raise Problem(404, f"Unknown skills operation {op!r}.")
    return {"result": _guarded(cli_ops.skills_call, api.runner, user.user_id, op, body)}


def _events(api: Api, work: Any, render: Any) -> StreamingResponse:
    return StreamingResponse(
        streaming.stream(
            api.run_pool,
            work,
            api.settings.run_timeout_s,
            render=render,
            render_error=lambda exc: cli_problem(exc).body(),
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@dev_router.get("/users")
def dev_users(api: ApiDep) -> dict[str, list[str]]:
    """Who the dev sign-in can pick (dev mode only): configured dev users and every local
    user with data, sorted."""
    if api.settings.auth != "dev":
        raise Problem(404, "There is no dev sign-in: the API is not in development mode.")
    names = set(api.auth.dev_users()) | set(local_users(api.workspace.state.engine))
    return {"users": sorted(names)}
