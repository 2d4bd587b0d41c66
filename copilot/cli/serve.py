"""``copilot serve [--detach]`` and ``copilot stop``: the one copilot service of a home.

The service owns the index (one writer), the state store and the model process; the CLI
finds it through ``COPILOT_HOME/service.json`` (``client.py``) and works through it. The
file is written once the server listens — with the port it really got and a fresh local
admin token — and removed when it stops cleanly; a stale one (a killed service) is
ignored by the CLI and replaced by the next ``serve``.

``--detach`` starts the same command as a child in a session of its own, with its output
in ``COPILOT_HOME/serve.log``, and returns once the child's ``/readyz`` answers.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.cli.client import (
    ServiceInfo,
    discovery_path,
    find_service,
    pid_alive,
    read_discovery,
    remove_discovery,
    write_discovery,
)
from copilot.cli.output import err, fail
from copilot.fileio import create_private_file, make_private_dir

if TYPE_CHECKING:
    from copilot.api.workers import Workers
    from copilot.config import Settings

READY_TIMEOUT_S = 180.0  # the embedder loads, the index opens, legacy ids move
STOP_TIMEOUT_S = 40.0  # uvicorn's graceful 10 s + the sync jobs' 10 s + the model's 10 s
LOG_NAME = "serve.log"


def log_path(settings: Settings) -> Path:
    return settings.home_dir / LOG_NAME


def loopback_url(host: str, port: int) -> str | None:
    """How this machine's CLI reaches a server listening on ``host``; None if it cannot
    (a server bound to an outside address only)."""
    import ipaddress

    bare = host.strip().strip("[]").lower()
    if bare in ("", "0.0.0.0", "localhost"):
        return f"http://127.0.0.1:{port}"
    if bare == "::":
        return f"http://[::1]:{port}"
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return None
    if not address.is_loopback:
        return None
    return f"http://[{bare}]:{port}" if address.version == 6 else f"http://{bare}:{port}"


def refuse_second(settings: Settings) -> None:
    running = find_service(settings)
    if running is not None:
        raise fail(
            f"A copilot service already runs for {settings.home_dir} at {running.url} "
            f"(pid {running.pid}); `copilot stop` stops it."
        )


def serve_foreground(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Run the service in this process until it is stopped (Ctrl-C, SIGTERM); with
    ``workers`` > 1, that many API processes share its port (``copilot.api.workers``)."""
    import uvicorn

    from copilot.api.app import create_app
    from copilot.api.auth import Authenticator
    from copilot.api.loopback import check_dev_mode_binding
    from copilot.api.server import cleanup_on_sigterm, uvicorn_config
    from copilot.api.workers import Workers, listening_socket, owner_socket

    refuse_second(settings)
    token = secrets.token_urlsafe(32)
    try:
        check_dev_mode_binding(settings, host)
        auth = Authenticator(settings)
        auth.allow_admin_token(token)
        adopt_before_start(settings)
        api = create_app(settings, authenticator=auth)
    except (RuntimeError, ValueError) as exc:
        raise fail(str(exc)) from exc
    if settings.auth == "dev":
        err.print("[yellow]Development mode: local users, no real sign-in. Loopback only.[/yellow]")
    config = uvicorn_config(api, settings, host, port, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    sockets, pool = None, None
    if workers > 1:  # bound here: the workers share the port and call the owner's own socket
        sock = listening_socket(host, port)
        private, owner = owner_socket()
        sockets = [sock, private]
        pool = Workers(workers - 1, sock, owner, token)
    announcer = threading.Thread(
        target=_announce, args=(server, settings, host, token, pool), daemon=True,
        name="announce",
    )  # fmt: skip
    announcer.start()
    try:
        with cleanup_on_sigterm():
            server.run(sockets=sockets)
    finally:
        if pool is not None:
            pool.stop()
        remove_discovery(settings, os.getpid())
        from copilot.llm.embedded.server import stop_owned

        stop_owned(settings)  # the embedded model server started for this service stops too


def _announce(
    server: object, settings: Settings, host: str, token: str, pool: Workers | None
) -> None:
    """Once uvicorn listens: start the API workers, if any (they call the owner from their
    start), and write the discovery file (with the port it really bound)."""
    while not getattr(server, "started", False):
        if getattr(server, "should_exit", False):
            return
        time.sleep(0.05)
    sockets = [s for srv in getattr(server, "servers", []) for s in srv.sockets]
    if not sockets:
        return
    # The first is the service's port (the owner's own socket for its workers comes after).
    port = int(sockets[0].getsockname()[1])
    url = loopback_url(host, port)
    if url is None:
        err.print(
            f"[yellow]The service listens on {host} only, so this machine's copilot command "
            "cannot use it; serve on 0.0.0.0 or a loopback address for that.[/yellow]"
        )
    if pool is not None:
        pool.start()
        err.print(f"{pool.count + 1} API processes: this one (pid {os.getpid()}) owns the "
                  f"index; workers {', '.join(map(str, pool.pids))}.", markup=False)  # fmt: skip
    if url is None:
        return
    info = ServiceInfo(url=url, pid=os.getpid(), started=time.time(), listen=host, token=token)
    write_discovery(settings, info)


def adopt_before_start(settings: Settings) -> None:
    """Move legacy user ids (``ann``, ``dev:ann``) to ``local:ann`` before serving."""
    from copilot.cli.backend_local import adopt_legacy_owners
    from copilot.workspace import Workspace

    with Workspace(settings) as ws:
        adopt_legacy_owners(ws)


def serve_detached(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    """Start the service as a background child; its address once ready. Exit code."""
    import httpx

    running = find_service(settings)
    if running is not None:
        print(f"The copilot service already runs at {running.url} (pid {running.pid}).")
        return 0
    log = log_path(settings)
    make_private_dir(log.parent)
    create_private_file(log)
    start = log.stat().st_size  # the log is kept across starts: show only this one's lines
    command = [sys.executable, "-m", "copilot.cli.app", "serve", "--host", host,
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    with log.open("ab") as out:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            err.print(f"The service stopped while starting (exit {code}); from {log}:")
            err.print(_tail(log, start), markup=False, highlight=False)
            return 2
        info = read_discovery(settings)
        if info is not None and info.pid == child.pid:
            try:
                if httpx.get(f"{info.url}/readyz", timeout=2.0).status_code == 200:
                    print(f"The copilot service runs at {info.url} (pid {child.pid}); log: {log}")
                    return 0
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    err.print(f"The service did not get ready in {READY_TIMEOUT_S:.0f} s; see {log}.")
    _terminate(child.pid)
    return 1


def stop_service(settings: Settings) -> int:
    """Stop this home's service (SIGTERM, then SIGKILL). Exit code."""
    info = read_discovery(settings)
    if info is None or not pid_alive(info.pid):
        if info is not None:
            discovery_path(settings).unlink(missing_ok=True)
        print("No copilot service is running.")
        return 0
    if not _terminate(info.pid):
        err.print(f"The copilot service (pid {info.pid}) did not stop.")
        return 1
    remove_discovery(settings, info.pid)
    print(f"Stopped the copilot service (pid {info.pid}).")
    return 0


def _terminate(pid: int) -> bool:
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _running(pid):
                return True
            time.sleep(0.1)
    return not _running(pid)


def _running(pid: int) -> bool:
    try:  # our own child is reaped here, so it does not linger as a zombie
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    return pid_alive(pid)


def _tail(path: Path, start: int = 0, lines: int = 20) -> str:
    """The last ``lines`` lines written from byte ``start`` on."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def uptime_words(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"]
    return " ".join(parts)
