"""Run the API for a test: real uvicorn on a free loopback port, in a thread; wait for jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from copilot.api.server import uvicorn_config
from copilot.cli.client import sse_events as client_events
from copilot.config import Settings


@contextmanager
def serving(app: Any, *, start_timeout: float = 30.0) -> Iterator[str]:
    """Start ``app`` on 127.0.0.1 (a free port); yield its base URL; stop it afterwards."""
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "on",
                               "timeout_graceful_shutdown": 2}  # fmt: skip
    settings = getattr(getattr(app, "state", None), "settings", None)
    if isinstance(settings, Settings):  # the API: the same timeouts as `copilot serve`
        config = uvicorn_config(app, settings, "127.0.0.1", 0, **options)
    else:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def wait_for_job(
    client: httpx.Client, job: dict[str, Any], headers: dict[str, str], timeout_s: float = 60.0
) -> dict[str, Any]:
    """Poll the sync job ``job`` (as POST /v1/sync/... returned it) until it is neither
    queued nor running; its last state. Fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the sync job did not finish: {job}"
        time.sleep(0.1)
        job = client.get(f"/v1/sync/{job['id']}", headers=headers).json()
    return job


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a Server-Sent Events body, in order, read the way the
    CLI reads them (``copilot.cli.client.sse_events``)."""
    return list(client_events(iter(response.text.splitlines())))
