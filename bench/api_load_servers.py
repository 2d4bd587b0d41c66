"""The two servers of ``bench/api_load.py``, each in a process of its own.

    python bench/api_load_servers.py llm --tokens 40 --chunk-delay 0.02
    python bench/api_load_servers.py api --llm-root http://127.0.0.1:PORT --home DIR [--trace]
        [--sync-root DIR ...] [--dev-user NAME ...]

Each prints one JSON line ``{"url": …}`` once it accepts connections and stops when its
stdin closes, so a bench that dies for any reason leaves no server behind. ``spawn`` starts
one and stops it (stdin closed, then SIGKILL after 10 s).

Runs are matched across processes by a tag in the question (``[bench TAG]``) and timed on
the system-wide monotonic clock (``time.monotonic``, CLOCK_MONOTONIC on Linux), which every
process reads alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("COPILOT_MODELS_DIR", str(Path(sys.prefix) / "share" / "copilot-models"))
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

TAG = re.compile(r"\[bench ([0-9a-z-]+)\]")


def tag_of(text: Any) -> str | None:
    """The run's tag: the last one near the end of the prompt (the question is followed by
    the skill's closing instructions, a few hundred characters)."""
    found = TAG.findall(str(text)[-2000:])
    return found[-1] if found else None


def serve_llm(tokens: int, chunk_delay: float) -> None:
    """The scripted LLM of the tests, answering every request with ``tokens`` words, one per
    chunk, ``chunk_delay`` apart (the first at once), plus GET /bench/timings: ``{tag:
    [received, written]}`` (request read, first content chunk written) since last asked."""
    from tests.fakes.llm_server import Reply, ScriptedLLM

    answer = " ".join(f"word{i}" for i in range(tokens - 1)) + " [1]."
    timings: dict[str, list[float]] = {}
    lock = threading.Lock()

    with ScriptedLLM() as llm:
        base = llm._server.RequestHandlerClass  # the test server's handler, extended here

        class Timed(base):  # type: ignore[misc, valid-type]
            def _event(self, data: dict) -> None:
                super()._event(data)
                if getattr(self, "first_written", False):
                    return
                if any((c.get("delta") or {}).get("content") for c in data.get("choices", [])):
                    self.first_written = True
                    messages = (self.record.json or {}).get("messages") or [{}]
                    tag = tag_of(messages[-1].get("content", ""))
                    if tag:
                        with lock:
                            timings[tag] = [self.record.received_at, time.monotonic()]

            def do_GET(self) -> None:
                if self.path != "/bench/timings":
                    return super().do_GET()
                with lock:
                    out = dict(timings)
                    timings.clear()
                self._send_json(200, out)

        def respond(body: Any) -> Reply:
            with llm._lock:  # keep the recorded requests from growing for the whole bench
                del llm.requests[:-100]
            return Reply.text(answer, chunks=tokens, chunk_delay=chunk_delay)

        llm._server.RequestHandlerClass = Timed
        llm._server.socket.listen(1024)  # socketserver's backlog of 5 drops bursts of connects
        llm.responder = respond
        print(json.dumps({"url": llm.root}), flush=True)
        sys.stdin.read()  # until the bench closes our stdin (or dies)


def install_trace(app: Any) -> None:
    """Record, per tagged run, when the route began (``route``), when the run thread began
    preparing (``job``) and finished (``prepared``), with ``Prepared.timings_ms``; served by
    GET /bench/trace. Only with --trace: the bench's default measures the untouched API."""
    from copilot.api import routes_skills
    from copilot.skills import runner

    trace: dict[str, dict[str, float]] = {}
    run_args, prepare = routes_skills._request, runner.prepare

    def traced_run_args(api: Any, user_id: str, skill_id: str, body: Any, **kw: Any) -> Any:
        tag = tag_of(body.inputs.get("question", ""))
        if tag:
            trace[tag] = {"route": time.monotonic()}
        return run_args(api, user_id, skill_id, body, **kw)

    def traced_prepare(*args: Any, **kw: Any) -> Any:
        start = time.monotonic()
        prep = prepare(*args, **kw)
        inputs = args[4]  # prepare(workspace, runs, skill, user, inputs, ...)
        got = trace.get(tag_of(inputs.get("question", "")) or "")
        if got is not None:
            got.update(job=start, prepared=time.monotonic(), **prep.timings_ms)
        return prep

    routes_skills._request = traced_run_args
    runner.prepare = traced_prepare

    @app.get("/bench/trace", include_in_schema=False)
    def get_trace() -> dict[str, dict[str, float]]:
        out = dict(trace)
        trace.clear()
        return out


def serve_api(
    llm_root: str,
    home: str,
    *,
    trace: bool = False,
    sync_roots: list[str] | None = None,
    dev_users: list[str] | None = None,
    workers: int = 1,
) -> None:
    """The API as `copilot serve` runs it (``copilot.api.server.uvicorn_config``), on a free
    loopback port. ``sync_roots``: folders POST /v1/sync/local may index besides the temp
    folder (the bench's documents); ``dev_users``: dev sign-ins besides anna and bob;
    ``workers``: API processes on the socket, as ``copilot serve --workers`` starts them
    (they read their settings from the environment, so the settings are passed that way)."""
    import secrets
    import tempfile

    import uvicorn

    from copilot.api.app import create_app
    from copilot.api.auth import Authenticator
    from copilot.api.server import uvicorn_config
    from copilot.api.workers import Workers, listening_socket, owner_socket
    from copilot.config import Settings

    os.environ.update({
        "COPILOT_HOME": home, "COPILOT_AUTH": "dev", "COPILOT_LLM_BASE_URL": f"{llm_root}/v1",
        "COPILOT_LLM_MAX_RETRIES": "0", "COPILOT_LLM_TIMEOUT_S": "30",
        "COPILOT_RUN_TIMEOUT_S": "60", "COPILOT_RATE_LIMIT_PER_MINUTE": str(10**6),
        "COPILOT_SYNC_ROOTS": json.dumps([tempfile.gettempdir(), *(sync_roots or [])]),
        "COPILOT_DEV_USERS": json.dumps(["anna", "bob", *(dev_users or [])]),
    })  # fmt: skip
    settings = Settings()
    token = secrets.token_urlsafe(32)
    auth = Authenticator(settings)
    auth.allow_admin_token(token)
    app = create_app(settings, authenticator=auth)
    if os.environ.get("BENCH_SWITCH"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH"]))
    if trace:
        install_trace(app)
    sock = listening_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn_config(app, settings, "127.0.0.1", 0, log_level="warning",
                            timeout_graceful_shutdown=2)  # fmt: skip
    server = uvicorn.Server(config)
    sockets, owner = [sock], url
    if workers > 1:  # the workers call the owner on a socket of its own (api/workers.py)
        private, owner = owner_socket()
        sockets.append(private)
    pool = Workers(workers - 1, sock, owner, token)

    def announce_then_watch_stdin() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if workers > 1:
            pool.start()
            deadline = time.monotonic() + 120
            seen: set[int] = set()
            while len(seen) < workers and time.monotonic() < deadline:  # every one serves
                with (
                    contextlib.suppress(OSError, ValueError),
                    urllib.request.urlopen(f"{url}/healthz", timeout=5) as r,
                ):
                    seen.add(json.loads(r.read())["process"])
        print(json.dumps({"url": url, "workers": pool.pids if workers > 1 else []}), flush=True)
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=announce_then_watch_stdin, daemon=True).start()
    try:
        server.run(sockets=sockets)
    finally:
        if workers > 1:
            pool.stop()


@contextlib.contextmanager
def spawn(role: str, *argv: str, start_timeout: float = 90.0) -> Iterator[tuple[int, str]]:
    """Start a server process; yield (pid, url); stop it however the bench ends."""
    cmd = [sys.executable, __file__, role, *argv]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
        line = proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the {role} server did not start in {start_timeout:g} s")
        yield proc.pid, json.loads(line)["url"]
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()  # both servers stop when their stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=["llm", "api"])
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    parser.add_argument("--llm-root")
    parser.add_argument("--home")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--sync-root", action="append", default=[])
    parser.add_argument("--dev-user", action="append", default=[])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.role == "llm":
        serve_llm(args.tokens, args.chunk_delay)
    else:
        serve_api(args.llm_root, args.home, trace=args.trace, sync_roots=args.sync_root,
                  dev_users=args.dev_user, workers=args.workers)  # fmt: skip


if __name__ == "__main__":
    main()
