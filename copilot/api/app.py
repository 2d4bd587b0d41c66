"""The FastAPI application: one process holds the index, serves the add-ins and the bot.

Why one process: the embedded index is written by one process at a time (a file lock),
so the API both serves requests and runs sync jobs. Blocking work (searches, skill runs,
syncs) runs in threads; skill runs get a pool of their own so 50 streaming runs waiting
on a model do not starve the thread pool that ordinary routes use.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from copilot.api import errors, problems
from copilot.api.auth import Authenticator
from copilot.api.deps import Api
from copilot.api.forward import ClientFromWorker, ForwardToOwner
from copilot.api.headers import SecurityHeaders, addin_csp, api_origin
from copilot.api.internal import router as internal_router
from copilot.api.jobs import JobManager
from copilot.api.limits import BodyLimits, RateLimiter
from copilot.api.loopback import LoopbackHostOnly
from copilot.api.pages import router as pages_router
from copilot.api.routes_data import router as data_router
from copilot.api.routes_finetune import router as finetune_router
from copilot.api.routes_local import cli_router, dev_router
from copilot.api.routes_skills import router as skills_router
from copilot.api.routes_sync import router as sync_router
from copilot.api.warm import warm_runs, warm_up
from copilot.api.workers import Worker
from copilot.bot import mount_bot
from copilot.config import Settings
from copilot.db.owners import local_user_exists
from copilot.deploy.assets import asset_dir
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace

RUN_THREADS = 64  # runs mostly wait on the model's stream
ROUTE_THREADS = 80
log = logging.getLogger("copilot.api")


def default_addins_dir(settings: Settings) -> Path | None:
    """The task-pane pages; only this folder is served (not node_modules or tests)."""
    folder = settings.addins_dir or asset_dir("addins")
    return folder if folder is not None and folder.is_dir() else None


def create_app(
    settings: Settings,
    *,
    authenticator: Authenticator | None = None,
    llm: Any = None,
    worker: Worker | None = None,
) -> FastAPI:
    """The app for ``settings``; tests pass their own authenticator or LLM engine.

    ``worker``: this process is one of the service's API workers (``copilot.api.workers``):
    it reads the index through its owner and hands the owner-only routes to it."""
    auth = authenticator or Authenticator(settings)  # refuses a half-configured Entra setup
    if settings.embed_threads == 0:
        # Requests already run in parallel threads: one ONNX thread per embedding call keeps
        # the second core for them (p95 first byte 199 → 86 ms at 20 streams; benchmarks.md).
        settings = settings.model_copy(update={"embed_threads": 1})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = ROUTE_THREADS
        workspace = Workspace(settings)
        if worker is not None:
            workspace.use_store(worker.index(workspace.embedder.dim))
        # Open every part now, in this one thread: a locked index fails at start rather than
        # in a request, and no two request threads race to open the same part.
        _ = workspace.state, workspace.embedder, workspace.store
        warm_up(workspace)
        auth.local_user_exists = partial(local_user_exists, workspace.state.engine)
        api = Api(
            settings=settings,
            workspace=workspace,
            runner=SkillRunner(workspace, llm=llm),
            jobs=JobManager(workspace) if worker is None else None,  # the owner's (forward.py)
            auth=auth,
            limiter=RateLimiter(settings.rate_limit_per_minute),
        )
        api.run_pool = ThreadPoolExecutor(RUN_THREADS, thread_name_prefix="copilot-run")
        if settings.entra_client_secret and settings.entra_client_id and settings.entra_tenant_id:
            from copilot.api.obo import OnBehalfOf  # Graph sources, on behalf of the caller

            api.obo = OnBehalfOf(settings)
        app.state.api = api
        warm_runs(api.runner)
        # Everything loaded so far (~300k objects: the libraries, the models, the index)
        # lives as long as the server, yet the cyclic collector walked all of it in every
        # full collection: one stopped every thread for 218 ms under 20 streams, which is a
        # p95 by itself. Frozen, they are skipped (a full collection took 10 ms); unfrozen
        # at shutdown, so a process that builds many apps (the tests) can still free them.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if api.jobs is not None:
                api.jobs.shutdown(wait=10.0)
            api.run_pool.shutdown(wait=False, cancel_futures=True)
            workspace.close()

    app = FastAPI(
        title="Office Copilot API",
        version="1",
        description="Skills (summarise, draft, sentiment, ask and your own), search, sync "
        "and runs over your own documents and mail. Every /v1 route needs an Entra ID "
        "access token (`Authorization: Bearer …`).",
        lifespan=lifespan,
    )
    app.state.settings = settings  # for servers of this app (copilot.api.server)
    problems.install(app)
    errors.install(app)
    app.include_router(data_router)
    app.include_router(skills_router)
    app.include_router(sync_router)
    app.include_router(finetune_router)
    app.include_router(cli_router)
    app.include_router(dev_router)
    app.include_router(pages_router)  # /privacy, /terms, /support: the manifests link there
    app.include_router(internal_router)  # the index for this service's own API workers

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str | int]:
        """The process is up (``process``: 0 for the service's first process, n for its API
        worker n)."""
        return {"status": "ok", "process": worker.number if worker is not None else 0}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """The state store and the index answer."""
        api: Api = app.state.api
        checks = {}
        try:
            with api.workspace.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["state"] = "ok"
        except Exception as exc:  # report, never raise: this route is for probes
            log.warning("readyz: state store: %s", exc)
            checks["state"] = "unavailable"
        try:
            api.workspace.store.count("__readyz__")
            checks["index"] = "ok"
        except Exception as exc:
            log.warning("readyz: index: %s", exc)
            checks["index"] = "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", **checks},
                            status_code=200 if ready else 503)  # fmt: skip

    addins = default_addins_dir(settings)
    if addins is not None:
        app.mount("/addins/office", StaticFiles(directory=addins, html=True), name="addins")
    icons = asset_dir("icons")
    if icons is not None:  # the ribbon and app icons the manifests point at
        app.mount("/manifest/icons", StaticFiles(directory=icons), name="manifest-icons")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            max_age=600,
        )
    app.add_middleware(
        BodyLimits,
        max_bytes=int(settings.max_request_mb * 1024 * 1024),
        timeout_s=settings.request_body_timeout_s,
    )
    app.add_middleware(SecurityHeaders, csp=addin_csp(api_origin(addins)))
    if worker is not None:  # inside the Host check: a forwarded request passed it here
        app.add_middleware(ForwardToOwner, owner_url=worker.owner_url, token=worker.token)
    if settings.auth == "dev":  # a foreign Host is refused before anything runs
        app.add_middleware(LoopbackHostOnly)
    # Outermost: a request one of this service's workers passed on gets its client back.
    app.add_middleware(
        ClientFromWorker, is_worker=lambda proof: auth.is_admin_token(f"Bearer {proof}")
    )
    mount_bot(app, settings, lambda: app.state.api.runner)  # Teams: /api/messages, same runner
    return app
