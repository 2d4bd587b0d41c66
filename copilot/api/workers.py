"""More than one API process for one service: ``copilot serve --workers N``.

Why: one Python process runs its interpreter on one core at a time, and a streamed run
costs it tens of milliseconds (query embedding, search, packing, the HTTP stack, relaying
the model's tokens, the run record). At 20 concurrent streams on 2 cores the process sat at
that limit and runs queued before reaching the model (docs/benchmarks.md, "API under
load"), while the second core was mostly idle.

How: the pre-fork shape, kept small. ``copilot serve`` binds the listening socket itself
with ``SO_REUSEPORT`` and starts N − 1 worker processes, each of which binds its own socket
to the same address; the kernel spreads new connections evenly over the sockets (by a hash
of the client's address and port). One socket shared by every process was tried first: a
burst of new connections went mostly to whichever process's loop was free at that moment,
and kept-alive connections stay where they landed, so the owner served about twice the
worker's share of a benchmark. The first process stays what it was (it
owns the index, sync jobs, the model process and the discovery file); a worker builds the
same app with ``create_app(worker=Worker(...))``, which reads the index through the owner
(``copilot.index.remote``), forwards the routes it cannot serve (``copilot.api.forward``)
and shares the state store (SQLite in WAL mode or PostgreSQL) and the model process (one
per machine; its queue is across processes already). The service's local admin token,
which proves a worker to the owner, reaches a worker on its standard input, never on its
command line.

A worker reaches the owner on a loopback socket of the owner's own (``owner_socket``), never
on the service's port: there the kernel would hand about half of a worker's connections
back to a worker (``SO_REUSEPORT`` hashes the client's address, not who the client is),
which would pass each index search or owner-only request on again before it reached the
owner (measured: docs/benchmarks.md, "The owner's own socket").

A worker that dies is started again (at most ``RESTARTS`` times a minute); a worker whose
owner has gone exits by itself (it checks its parent once a second).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from copilot.index.remote import RemoteIndex

RESTARTS = 5  # per minute and worker, before giving up on it
STOP_S = 15.0  # a worker's graceful stop (uvicorn's 10 s) before it is killed


@dataclass(frozen=True)
class Worker:
    """What a worker process knows of its service: the owner's loopback address and the
    service's local admin token."""

    owner_url: str
    token: str
    number: int = 1  # 1 … N − 1 (the owner is 0)

    def index(self, dim: int) -> RemoteIndex:
        return RemoteIndex(self.owner_url, self.token, dim)


class Workers:
    """The worker processes of one service, started, watched and stopped by the owner."""

    def __init__(self, count: int, sock: socket.socket, owner_url: str, token: str) -> None:
        self.count = count
        self.sock = sock
        self.owner_url = owner_url
        self.token = token
        self._procs: list[subprocess.Popen[bytes]] = []
        self._starts: list[deque[float]] = []
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._watch_loop, name="api-workers", daemon=True)

    def start(self) -> None:
        for n in range(self.count):
            self._procs.append(self._spawn(n))
            self._starts.append(deque([time.monotonic()], maxlen=RESTARTS))
        self._watch.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def stop(self) -> None:
        self._stopping.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_S
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _spawn(self, n: int) -> subprocess.Popen[bytes]:
        host, port = self.sock.getsockname()[:2]
        command = [sys.executable, "-m", "copilot.api.workers", "--host", str(host), "--port",
                   str(port), "--owner", self.owner_url, "--number", str(n + 1)]  # fmt: skip
        # A worker's output is its log: to the service's stderr (stdout may be a pipe its
        # starter reads for something else).
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=sys.stderr)
        assert proc.stdin is not None
        proc.stdin.write(self.token.encode() + b"\n")
        proc.stdin.close()
        return proc

    def _watch_loop(self) -> None:
        while not self._stopping.wait(1.0):
            for n, proc in enumerate(self._procs):
                if proc.poll() is None or self._stopping.is_set():
                    continue
                starts = self._starts[n]
                if len(starts) == RESTARTS and time.monotonic() - starts[0] < 60:
                    continue  # dying at once, again and again: leave it (the owner serves)
                print(f"API worker {n + 1} (pid {proc.pid}) ended with {proc.returncode}; "
                      "starting it again.", file=sys.stderr, flush=True)  # fmt: skip
                self._procs[n] = self._spawn(n)
                starts.append(time.monotonic())


def listening_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A socket of the service, bound with ``SO_REUSEPORT`` so that each of its processes
    can bind one to the same address (only processes of the same user can).

    A worker's is bound but not yet listening (``listen=False``): asyncio starts listening
    once the app has started, so no connection waits in a worker that is still loading."""
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((bare, port))
        if listen:
            sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def owner_socket() -> tuple[socket.socket, str]:
    """The owner's listening socket for its workers, on an ephemeral loopback port (no
    ``SO_REUSEPORT``: only the owner accepts on it), and the URL the workers call."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main(argv: list[str] | None = None) -> None:
    """A worker process (started by ``Workers``, never by hand)."""
    parser = argparse.ArgumentParser(prog="copilot.api.workers")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--number", type=int, default=1)
    args = parser.parse_args(argv)
    token = sys.stdin.readline().strip()

    import uvicorn

    from copilot.api.app import create_app
    from copilot.api.auth import Authenticator
    from copilot.api.server import cleanup_on_sigterm, uvicorn_config
    from copilot.config import get_settings
    from copilot.llm.embedded.server import stop_owned

    settings = get_settings()
    auth = Authenticator(settings)
    auth.allow_admin_token(token)
    app = create_app(settings, authenticator=auth, worker=Worker(args.owner, token, args.number))
    sock = listening_socket(args.host, args.port, listen=False)
    config = uvicorn_config(app, settings, settings.api_host, 0, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    parent = os.getppid()

    def orphaned() -> None:  # the owner has gone (killed): stop serving
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
                return
            time.sleep(1.0)

    threading.Thread(target=orphaned, name="owner-watch", daemon=True).start()
    try:
        with cleanup_on_sigterm():
            server.run(sockets=[sock])
    finally:
        stop_owned(settings)  # a model process this worker happened to start


if __name__ == "__main__":
    main()
