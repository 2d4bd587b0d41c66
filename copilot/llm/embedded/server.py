"""The managed model server: started on demand, one per copilot home, found by everyone.

Like Ollama, the copilot runs the model in its own process (``process.py``: llama.cpp's
OpenAI-compatible server on 127.0.0.1) and every part of the copilot that needs it (a CLI
run, ``copilot serve``, the Teams bot inside it) shares that one process. They find it
through a discovery file, ``<home>/run/embedded-server.json`` (pid, port, model, file,
context window), and start it under a file lock, so two runs starting at once load the
model once. Its health is ``GET /copilot/status``, which answers even mid-generation.

Lifetime: a server is stopped by ``copilot serve`` when the service stops (``stop_owned``),
and otherwise stops itself after ``COPILOT_EMBEDDED_KEEP_ALIVE_S`` idle seconds (default
300). So a run of CLI commands (an eval, ``make demo``'s skills, a user's morning) loads the
model once and keeps its prompt cache, and the 1.8 GB come back a few minutes after the
last one, with no daemon to install. A server that died is noticed on the next call
(``ensure``) and started again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.fileio import make_private_dir, write_atomically
from copilot.llm.embedded.catalogue import RUNTIME_REQUIREMENTS
from copilot.llm.embedded.models import ModelFile
from copilot.llm.errors import LLMError

HOST = "127.0.0.1"
PROCESS_MODULE = "copilot.llm.embedded.process"
STATUS_TIMEOUT_S = 3.0
STOP_TIMEOUT_S = 10.0
Progress = Callable[[str], None]

# The servers this process started, to poll (and so reap) rather than mistake a zombie
# for a live process.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerInfo:
    """One running model server, as its discovery file describes it."""

    pid: int
    port: int
    model: str  # the model id clients send and results show
    file: str
    n_ctx: int  # the context window the server reports (Llama.n_ctx())
    owner: int  # pid of the process that started it
    started: float  # time.time()
    chatml: bool = False  # the model's chat template is ChatML (<|im_start|>)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def run_dir(settings: Settings) -> Path:
    return settings.home_dir / "run"


def discovery_path(settings: Settings) -> Path:
    return run_dir(settings) / "embedded-server.json"


def log_path(settings: Settings) -> Path:
    return settings.home_dir / "logs" / "embedded-server.log"


def runtime_installed() -> bool:
    """Whether llama.cpp's server can be imported here (without importing it: it loads
    the native library)."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("llama_cpp", "sse_starlette", "starlette_context")
    )


def runtime_hint() -> str:
    return (
        "llama-cpp-python is not installed: run `make embedded` in the project, or "
        f'`CMAKE_ARGS="-DLLAVA_BUILD=OFF" pip install -r {RUNTIME_REQUIREMENTS}` '
        "(it compiles llama.cpp, about 10 minutes)."
    )


# -- finding a server -------------------------------------------------------------------------


def read_discovery(settings: Settings) -> ServerInfo | None:
    try:
        raw = json.loads(discovery_path(settings).read_text(encoding="utf-8"))
        return ServerInfo(**raw)
    except (OSError, ValueError, TypeError):
        return None


def alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _is_model_process(pid)


def _is_model_process(pid: int) -> bool:
    """Whether ``pid`` runs our model server (a pid from an old discovery file may have
    been reused by another program since). Where /proc is missing, trust the pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return PROCESS_MODULE.encode() in cmdline


def status(port: int, timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any] | None:
    """The server's own status, or None when nothing healthy answers on ``port``."""
    try:
        with urllib.request.urlopen(
            f"http://{HOST}:{port}/copilot/status", timeout=timeout
        ) as reply:
            body = json.loads(reply.read(65536))
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return body if isinstance(body, dict) and body.get("ok") else None


def running(settings: Settings) -> ServerInfo | None:
    """The live, healthy server of this home, or None."""
    found = running_status(settings)
    return found[0] if found is not None else None


def running_status(settings: Settings) -> tuple[ServerInfo, dict[str, Any]] | None:
    """The live, healthy server of this home and its status, or None."""
    info = read_discovery(settings)
    if info is None or not alive(info.pid):
        return None
    reply = status(info.port)
    if reply is None or reply.get("pid") != info.pid:
        return None
    return info, reply


def count_tokens(info: ServerInfo, text: str, timeout: float = 30.0) -> int | None:
    """Tokens of ``text`` in the server's own tokenizer, or None if it cannot say."""
    request = urllib.request.Request(
        f"http://{HOST}:{info.port}/extras/tokenize",
        data=json.dumps({"model": info.model, "input": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            tokens = json.loads(reply.read()).get("tokens")
    except (OSError, ValueError, AttributeError, urllib.error.URLError):
        return None
    return len(tokens) if isinstance(tokens, list) else None


def queue_of(settings: Settings) -> dict[str, Any] | None:
    """What the running server is doing (generations in flight), or None if none runs."""
    info = read_discovery(settings)
    if info is None or not alive(info.pid):
        return None
    return status(info.port)


# -- starting and stopping ----------------------------------------------------------------------


def context_for(settings: Settings, model: ModelFile) -> int:
    """The context window to start the server with: the setting, capped by what the
    packaged model was trained for."""
    if model.packaged is not None:
        return min(settings.embedded_context, model.packaged.context_window)
    return settings.embedded_context


def ensure(settings: Settings, model: ModelFile, *, progress: Progress | None = None) -> ServerInfo:
    """A healthy server running ``model``: the one already up, or a new one (a server
    running another model or file, or another context size, is stopped first)."""
    wanted = (model.id, str(model.path), context_for(settings, model))
    info = running(settings)
    if info is not None and (info.model, info.file, info.n_ctx) == wanted:
        return info
    with _start_lock(settings):
        info = running(settings)
        if info is not None and (info.model, info.file, info.n_ctx) == wanted:
            return info
        if info is not None:
            stop(settings)
        return _start(settings, model, progress)


@contextlib.contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    folder = run_dir(settings)
    make_private_dir(folder)
    deadline = time.monotonic() + settings.embedded_start_timeout_s + STOP_TIMEOUT_S
    with (folder / "embedded-server.lock").open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LLMError(
                        "timeout",
                        f"Another copilot process has been starting the embedded model for "
                        f"over {settings.embedded_start_timeout_s:g} s (lock "
                        f"{folder / 'embedded-server.lock'}); see {log_path(settings)}.",
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def prompt_threads(settings: Settings) -> int:
    """Threads for reading a prompt: every core unless set. Reading is one batched pass
    that uses each core fully and briefly; generation stays on ``embedded_threads`` (one),
    where a second thread lost more to waiting than it gained (docs/benchmarks.md)."""
    return settings.embedded_prompt_threads or os.cpu_count() or 1


def _start(settings: Settings, model: ModelFile, progress: Progress | None) -> ServerInfo:
    if not runtime_installed():
        raise LLMError("config", runtime_hint())
    say = progress or (lambda _line: None)
    n_ctx = context_for(settings, model)
    port = _free_port()
    command = [
        sys.executable, "-m", PROCESS_MODULE,
        "--model", str(model.path), "--alias", model.id,
        "--host", HOST, "--port", str(port), "--n-ctx", str(n_ctx),
        "--threads", str(settings.embedded_threads),
        "--prompt-threads", str(prompt_threads(settings)),
        "--cache-mb", str(settings.embedded_cache_mb),
        "--keep-alive", str(settings.embedded_keep_alive_s),
    ]  # fmt: skip
    # Passive OpenMP waiting: with the default spin-wait, generation fell from ~17 to under
    # 2 tokens/s whenever anything else ran on the 2 cores.
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    log = log_path(settings)
    make_private_dir(log.parent)
    size_mb = model.path.stat().st_size / 1e6
    say(f"Starting the embedded model {model.id} ({size_mb:,.0f} MB, {n_ctx} tokens) …")
    began = time.monotonic()
    with log.open("wb") as out:  # a new log for each server
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is for the CLI, not the model
            close_fds=True,
        )
    _children[process.pid] = process
    deadline = began + settings.embedded_start_timeout_s
    next_note = began + 5
    while True:
        code = process.poll()
        if code is not None:
            raise LLMError(
                "server",
                f"The embedded model server stopped while loading {model.path} (exit {code}). "
                f"Its log, {log}, ends:\n{_tail(log)}",
            )
        reply = status(port, timeout=1.0)
        if reply is not None and reply.get("pid") == process.pid:
            break
        now = time.monotonic()
        if now > deadline:
            _terminate(process.pid)
            raise LLMError(
                "timeout",
                f"The embedded model {model.id} did not load within "
                f"{settings.embedded_start_timeout_s:g} s (COPILOT_EMBEDDED_START_TIMEOUT_S); "
                f"it was stopped. Log: {log}",
            )
        if now >= next_note:
            say(f"  still loading ({now - began:.0f} s)")
            next_note = now + 5
        time.sleep(0.1)
    info = ServerInfo(
        pid=process.pid,
        port=port,
        model=model.id,
        file=str(model.path),
        n_ctx=int(reply.get("n_ctx") or n_ctx),
        owner=os.getpid(),
        started=time.time(),
        chatml=bool(reply.get("chatml")),
    )
    write_atomically(discovery_path(settings), json.dumps(asdict(info)))
    say(f"  loaded in {time.monotonic() - began:.1f} s (pid {process.pid}, port {port})")
    return info


def stop(settings: Settings, *, owner: int | None = None, force: bool = False) -> bool:
    """Stop this home's server (only if ``owner`` started it, when given; at once with
    ``force``, for a server that hangs); True if one was stopped."""
    info = read_discovery(settings)
    if info is None or (owner is not None and info.owner != owner):
        return False
    stopped = alive(info.pid) and _terminate(info.pid, force=force)
    if read_discovery(settings) == info:
        discovery_path(settings).unlink(missing_ok=True)
    return stopped


def stop_owned(settings: Settings) -> bool:
    """Stop the server this process started, if it still runs (``copilot serve`` on exit)."""
    return stop(settings, owner=os.getpid())


def _terminate(pid: int, *, force: bool = False) -> bool:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S`` (at once with ``force``); True once
    the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    steps = ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0))
    for sig, wait in steps[1:] if force else steps:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            break
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)
    return not alive(pid)


def died(info: ServerInfo) -> str | None:
    """If the server of ``info`` is gone, how it ended (for the error of a call in flight)."""
    child = _children.get(info.pid)
    if child is not None:
        code = child.poll()
        if code is None:
            return None
        _children.pop(info.pid, None)
        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        return f"pid {info.pid}, {how}"
    return None if alive(info.pid) else f"pid {info.pid}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"
