"""The model process: llama.cpp's OpenAI-compatible server, plus what managing it needs.

Run as ``python -m copilot.llm.embedded.process --model FILE --port P ...`` by
``server.start`` (never by hand). It is ``llama_cpp.server``'s own FastAPI app, built with
its public ``create_app``, and four additions that plain ``python -m llama_cpp.server``
lacks:

- ``POST /copilot/classify``: the probabilities of a few answers as the model's first
  token, for many short texts after one prefix (``classify.py``), under the same model lock
  as a generation.
- ``GET /copilot/status``: alive, pid, model, the real context window (``Llama.n_ctx()``),
  whether the chat template is ChatML, how many generations are in flight, and how many
  prompts the prompt cache keeps (and their size).
  llama.cpp's ``GET /v1/models`` waits for the model lock, so during a long generation it
  cannot tell a busy server from a hung one; this route answers from the event loop at once.
- Idle stop (``--keep-alive S``): with no request for S seconds the process exits and gives
  its memory back (1.8 GB for the 1.5B model); the next request starts it again (1–3 s).
- No interruption: llama.cpp's default (``interrupt_requests``) ends a running stream as
  soon as another request arrives. The copilot queues generations instead (``queue.py``),
  so a second run waits its turn rather than cutting the first one off.

Memory: llama.cpp already reuses the longest common prefix of the previous prompt; the
prompt cache (``--cache-mb``) also keeps the model state after each answer, so a prefix
(a skill's system prompt, persona and few-shot examples) is processed once even when calls
with another prefix came in between. Its states as llama-cpp-python makes them carry a copy
of the score rows (batch × vocabulary × 4 bytes: 311 MB for Qwen's 152k vocabulary at the
default batch of 512) that its capacity does not count and that nothing reads back, so a
few cached prompts could hold gigabytes; ``PromptCache`` keeps one row and counts
everything it keeps. Scores are not kept per token either (``logits_all`` off: nothing asks
for logprobs), and the batch is 128 tokens: a quarter of the score buffer, and no slower
than 512 here (a 920-token prompt, 1 thread, busy machine: 13.8 and 18.3 tokens/s against
12.9 and 12.9).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from copilot.llm.embedded.classify import CLASSIFY_PATH

if TYPE_CHECKING:
    from fastapi import FastAPI
    from llama_cpp.llama_cache import LlamaRAMCache

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
STATUS_PATH = "/copilot/status"
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions", CLASSIFY_PATH)
BATCH = 128  # prompt tokens per decode call (see the module docstring)


class Activity:
    """Generations in flight and the time of the last request, for status and idle stop."""

    def __init__(self) -> None:
        self.busy = 0
        self.last = time.monotonic()

    def idle_for(self) -> float:
        return 0.0 if self.busy else time.monotonic() - self.last


def track(app: ASGIApp, activity: Activity) -> ASGIApp:
    """ASGI middleware: count generation requests until their response (stream) ends."""

    async def tracked(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        if scope.get("path") == STATUS_PATH:  # a client about to send work: not idle
            await app(scope, receive, send)
            activity.last = time.monotonic()
            return
        generating = scope.get("path") in GENERATION_PATHS
        activity.last = time.monotonic()
        activity.busy += generating
        try:
            await app(scope, receive, send)
        finally:
            activity.busy -= generating
            activity.last = time.monotonic()

    return tracked


def build(args: argparse.Namespace, activity: Activity) -> FastAPI:
    """The llama.cpp server app for ``args``, with the status route added."""
    from llama_cpp.server import app as llama_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    server = ServerSettings(host=args.host, port=args.port, interrupt_requests=False)
    model = ModelSettings(
        model=args.model,
        model_alias=args.alias,
        n_ctx=args.n_ctx,
        n_batch=BATCH,
        n_ubatch=BATCH,
        n_threads=args.threads,
        n_threads_batch=args.prompt_threads or args.threads,
        logits_all=False,
        cache=False,  # ours instead, below
        verbose=args.verbose,  # llama.cpp's load and per-request timings, to the log file
    )
    app: FastAPI = llama_app.create_app(server_settings=server, model_settings=[model])
    # The model create_app loaded (one model per process; read, never locked).
    llama = getattr(getattr(llama_app, "_llama_proxy", None), "_current_model", None)
    cache = None
    rates = ReadRates()
    if llama is not None:
        time_reading(llama, rates)
    if llama is not None and args.cache_mb > 0:
        cache = prompt_cache(args.cache_mb << 20)
        llama.set_cache(cache)
        keep_read_prompts(llama)

    template = str((getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template", ""))

    @app.get(STATUS_PATH, include_in_schema=False)
    async def status() -> dict[str, Any]:
        return {
            "ok": llama is not None,
            "pid": os.getpid(),
            "model": args.alias,
            "file": args.model,
            "n_ctx": llama.n_ctx() if llama is not None else args.n_ctx,
            "chatml": "<|im_start|>" in template,
            "busy": activity.busy,
            "idle_s": round(activity.idle_for(), 1),
            # Prompts kept for reuse (a skill's prefix, a mail read ahead) and their memory.
            "cached_prompts": len(cache.cache_state) if cache is not None else 0,
            "cache_mb": round(cache.cache_size / 2**20, 1) if cache is not None else 0.0,
            # Prompt tokens a second it really read (a cached prefix not counted): what the
            # copilot's prompt budget assumes (``EmbeddedChat.prompt_rate``).
            "prompt_rate": rates.typical(),
        }

    if llama is not None:
        add_classify(app, llama)
    return app


def add_classify(app: FastAPI, llama: Any) -> None:
    """``POST /copilot/classify`` (``classify.py``), holding the model's lock the way
    llama.cpp's own routes do, so it takes its turn with generations."""
    from contextlib import asynccontextmanager

    from llama_cpp.server.app import get_llama_proxy
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from copilot.llm.embedded.classify import classify, parse

    model_lock = asynccontextmanager(get_llama_proxy)

    async def classify_route(request: Request) -> JSONResponse:
        try:
            body = parse(await request.json())
            async with model_lock():
                return JSONResponse(await run_in_threadpool(classify, llama, body))
        except ValueError as exc:  # a ClassifyRequestError, or JSON that does not parse
            return JSONResponse({"error": str(exc)}, status_code=400)

    app.add_route(CLASSIFY_PATH, classify_route, methods=["POST"], include_in_schema=False)


def prompt_cache(capacity_bytes: int) -> LlamaRAMCache:
    """llama-cpp-python's RAM prompt cache, keeping only what it counts (module docstring)."""
    from llama_cpp.llama_cache import LlamaRAMCache

    class PromptCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(
                s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes
                for s in self.cache_state.values()
            )

        def __setitem__(self, key: Any, value: Any) -> None:
            # load_state broadcasts the rows it is given; only the last one was ever real.
            value.scores = value.scores[-1:].copy()
            # A state whose tokens begin with a kept one's serves every prompt that one
            # served, at least as far: the prompt read (``keep_read_prompts``) gives way to
            # the prompt and its answer when the answer ends.
            key = tuple(key)
            for kept in [k for k in self.cache_state if key[: len(k)] == k]:
                del self.cache_state[kept]
            super().__setitem__(key, value)

    return PromptCache(capacity_bytes=capacity_bytes)


RATE_SAMPLES = 8
MIN_READ_TOKENS = 128  # fewer tokens read than this time the sampler more than the reading


class ReadRates:
    """Prompt tokens a second, as this process read them: the tokens it evaluated (those
    after the prefix it held or took from the cache) over the time to the first token.

    Why here: a client sees the whole prompt and its first token, so a prompt whose long
    prefix was cached looks many times faster than the machine is, and a new copilot
    process (every CLI command) has measured nothing: it assumed a CPU's 25 tokens/s and
    gave a draft's sources 325 tokens where this machine reads 44 a second (705)."""

    def __init__(self) -> None:
        self._rates: deque[float] = deque(maxlen=RATE_SAMPLES)

    def add(self, tokens: int, seconds: float) -> None:
        if tokens >= MIN_READ_TOKENS and seconds > 0:
            self._rates.append(tokens / seconds)

    def typical(self) -> float | None:
        return round(statistics.median(self._rates), 1) if self._rates else None


def time_reading(llama: Any, rates: ReadRates) -> None:
    """Time each prompt's reading into ``rates``: from the call to the first token, the
    tokens after the prefix the model held (its own, or a state loaded from the cache
    just before) counted as read."""
    generate = llama.generate

    def generating(*args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        prompt = list(args[0] if args else kwargs.get("tokens") or [])
        held = llama.longest_token_prefix(llama.input_ids[: llama.n_tokens].tolist(), prompt)
        for n, token in enumerate(generate(*args, **kwargs)):
            if n == 0:
                rates.add(len(prompt) - held, time.monotonic() - began)
            yield token

    llama.generate = generating


def keep_read_prompts(llama: Any) -> None:
    """Keep each prompt's state in the prompt cache as soon as it is read, not only when
    its answer ends.

    llama-cpp-python stores the state after the last token of a completion; a stream the
    client ends early (a summary cut where it has said enough, ``skills.size``; a run
    cancelled) is never stored, so the next call with the same skill prefix read it again
    whenever another prompt had come in between: a summary's first token took 9.5 s
    instead of ~5 on a new mail (issue 14, ``bench/embedded.py``, 2026-12-07). The state is
    copied under the model's lock, in the generating thread, before the first token goes
    out (a few milliseconds for a ~700-token prompt); a prompt kept already (the same mail
    asked again, a run after its read-ahead) is not copied again.
    """
    generate = llama.generate

    def generating(*args: Any, **kwargs: Any) -> Any:
        for n, token in enumerate(generate(*args, **kwargs)):
            if n == 0 and llama.cache is not None:
                read = tuple(llama.input_ids[: llama.n_tokens].tolist())
                if read not in llama.cache.cache_state:
                    llama.cache[read] = llama.save_state()
            yield token

    llama.generate = generating


async def _idle_watch(server: Any, activity: Activity, keep_alive: float) -> None:
    while not server.should_exit:
        await asyncio.sleep(min(5.0, keep_alive / 4))
        if activity.idle_for() >= keep_alive:
            print(f"idle for {keep_alive:g} s: stopping", flush=True)
            server.should_exit = True


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="The GGUF file.")
    parser.add_argument("--alias", required=True, help="The model name clients use.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1, help="Threads generating.")
    parser.add_argument("--prompt-threads", type=int, default=0, help="Reading (0: --threads).")
    parser.add_argument("--cache-mb", type=int, default=1024)
    parser.add_argument("--keep-alive", type=float, default=0.0, help="0: never idle-stop.")
    parser.add_argument("--verbose", action="store_true", help="llama.cpp's own log lines.")
    args = parser.parse_args(argv)

    activity = Activity()
    app = track(build(args, activity), activity)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        watch = None
        if args.keep_alive > 0:
            watch = asyncio.create_task(_idle_watch(server, activity, args.keep_alive))
        try:
            await server.serve()
        finally:
            if watch is not None:
                watch.cancel()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
