"""Skill runs for HTTP clients: as one JSON answer, or as Server-Sent Events.

A run is blocking work (search, embedding, a streamed HTTP call to the model), so it runs
in a thread of its own pool; events cross back to the event loop through a ``Handoff``.
Under load the loop is the scarce part (one GIL for every run), so the handoff wakes the
loop once per batch, not once per token, and the loop writes every event waiting for a
stream in one body message: each token is still its own ``delta`` event, and an idle
server still sends each one as soon as it comes (measured in docs/benchmarks.md). When
the client goes away — the SSE stream is cancelled by Starlette, or a JSON caller
disconnects — the run's cancel event is set and the model call is closed at its next
chunk, so an abandoned run stops costing tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import Request

from copilot.api import errors
from copilot.api.problems import Problem
from copilot.index.search import place
from copilot.skills.citations import more_sources
from copilot.skills.runner import RunResult

DISCONNECT_POLL_S = 0.25
T = TypeVar("T")
log = logging.getLogger("copilot.api")

Work = Callable[[Callable[[str, dict[str, Any]], None], threading.Event], RunResult]


def run_out(result: RunResult) -> dict[str, Any]:
    """The API's view of a run (schemas.RunOut)."""
    return {
        "run_id": result.run_id,
        "skill_id": result.skill_id,
        "skill_version": result.skill_version,
        "engine": result.engine,
        "model": result.model,
        "text": result.text,
        "data": result.data,
        "citations": [c.as_dict() for c in result.citations],
        "invalid_citations": result.invalid_citations,
        "sources": [source_out(s) for s in result.sources],
        "more_sources": [c.as_dict() for c in more_sources(result.sources, result.citations)],
        "usage": {
            "calls": result.calls,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cost_usd": result.cost_usd,
        },
        "latency_ms": result.latency_ms,
        "note": result.note,
    }


def source_out(source: Any) -> dict[str, Any]:
    data = source.as_dict() if hasattr(source, "as_dict") else dict(source)
    data.pop("chunk_id", None)
    data.pop("score", None)
    data["where"] = place(str(data.get("kind") or ""), data.get("locator") or {},
                          str(data.get("sender") or ""), str(data.get("date") or ""))  # fmt: skip
    return data


def problem_body(exc: Exception) -> dict[str, Any]:
    return errors.to_problem(exc, where="a streamed run").body()


def sse(event: str, data: Any) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, default=str)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class Handoff:
    """Events from a run's thread to the event loop, the loop woken once per batch.

    ``put`` appends and wakes the loop only if no wake-up is pending; ``take`` clears the
    flag before it empties the buffer, so an event put after the flag was cleared wakes
    the loop again and none is left behind (a spare wake-up finds an empty buffer).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[tuple[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._pending = False
        self._lock = threading.Lock()

    def put(self, kind: str, data: Any) -> None:
        self._items.append((kind, data))
        with self._lock:
            if self._pending:
                return
            self._pending = True
        self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self) -> list[tuple[str, Any]]:
        """Every event put so far (at least one), in order."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            with self._lock:
                self._pending = False
            batch = []
            while self._items:
                batch.append(self._items.popleft())
            if batch:
                return batch


async def stream(
    pool: ThreadPoolExecutor,
    work: Work,
    timeout_s: float,
    *,
    render: Callable[[Any], dict[str, Any]] = run_out,
    render_error: Callable[[Exception], dict[str, Any]] = problem_body,
) -> AsyncIterator[bytes]:
    """SSE bytes for one run: `sources`, `delta`…, then `done` (or `error`). ``render``
    and ``render_error`` shape the last event (the CLI's routes want its own shapes)."""
    loop = asyncio.get_running_loop()
    handoff = Handoff(loop)
    cancel = threading.Event()
    emit = handoff.put

    def job() -> None:
        try:
            emit("done", render(work(emit, cancel)))
        except Exception as exc:  # every failure reaches the client as an event
            emit("error", render_error(exc))
        finally:
            emit("end", None)

    timer = loop.call_later(timeout_s, cancel.set)
    future = loop.run_in_executor(pool, job)
    try:
        yield b": run started\n\n"  # headers and a first byte go out at once
        ended = False
        while not ended:
            body = b""
            for kind, data in await handoff.take():
                if kind == "end":
                    ended = True
                    break
                body += sse(kind, data)
            if body:
                yield body
    finally:
        cancel.set()  # the client left, or the run ended: either way nothing more to send
        timer.cancel()
        del future


async def run_json(
    request: Request, pool: ThreadPoolExecutor, work: Work, timeout_s: float
) -> dict[str, Any]:
    """The finished run as JSON; cancelled if the client disconnects or time runs out."""
    run = await until_done(
        request, pool, lambda cancel: work(lambda *_: None, cancel), timeout_s, "run"
    )
    return run_out(run)


async def until_done(
    request: Request,
    pool: ThreadPoolExecutor,
    fn: Callable[[threading.Event], T],
    timeout_s: float | None,
    what: str,
) -> T:
    """``fn(cancel)`` on ``pool``; ``cancel`` is set, and a 499 or 504 problem raised, when
    the client disconnects or ``timeout_s`` passes, so ``fn`` stops at its next check
    instead of working for nobody."""
    loop = asyncio.get_running_loop()
    cancel = threading.Event()
    future = loop.run_in_executor(pool, fn, cancel)
    deadline = None if timeout_s is None else loop.time() + timeout_s
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_S)
            if done:
                return future.result()
            if await request.is_disconnected():
                cancel.set()
                raise Problem(499, f"The client closed the connection; the {what} was cancelled.")
            if deadline is not None and loop.time() > deadline:
                cancel.set()
                raise Problem(504, f"The {what} took longer than {timeout_s:g} s and was stopped.")
    finally:
        if not future.done():
            cancel.set()
