"""The hostile suite's server: ``copilot serve`` in development mode, in its own process on
loopback, so what each attack costs is the server's own memory and time, measured from
outside (psutil), and not the test's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

MAX_SECONDS = 10.0  # every attack is answered within this
MAX_GROWTH_MB = 200  # and grows the server by less than this
ANNA = {"Authorization": "Bearer dev:anna"}


@dataclass
class Server:
    url: str
    process: psutil.Process
    client: httpx.Client
    home: Path  # its COPILOT_HOME (service.json holds the local admin token)

    @contextmanager
    def watched(self) -> Iterator[Callable[[], tuple[float, int]]]:
        """Measure the wall time and the server's peak RSS growth (MB) over a block.

        RSS is sampled every 10 ms from a thread; the block's result is read after it ends
        through the function this yields: ``(seconds, growth_mb)``.
        """
        base = self.process.memory_info().rss
        peak = base
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                try:
                    peak = max(peak, self.process.memory_info().rss)
                except psutil.Error:
                    return
                stop.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        result: list[tuple[float, int]] = []
        try:
            yield lambda: result[0]
        finally:
            seconds = time.monotonic() - started
            stop.set()
            sampler.join()
            result.append((seconds, (peak - base) >> 20))

    def within_limits(self, seconds: float, growth_mb: int, what: str) -> None:
        assert seconds < MAX_SECONDS, f"{what}: answered after {seconds:.1f} s"
        assert growth_mb < MAX_GROWTH_MB, f"{what}: the server grew by {growth_mb} MB"
        assert self.process.is_running(), f"{what}: the server died"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One dev-mode server for the suite, answering with the local engine (no model)."""
    root = tmp_path_factory.mktemp("hostile-server")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")},
        "COPILOT_HOME": str(root / "home"),
        "COPILOT_AUTH": "dev",
        "COPILOT_ENGINE": "local",
        "COPILOT_SYNC_ROOTS": f'["{root}"]',
        "COPILOT_RATE_LIMIT_PER_MINUTE": "10000",
        "COPILOT_PARSE_WORKERS": "1",
    }
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "copilot.cli.app", "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError((root / "server.log").read_text()[-3000:])
                time.sleep(0.1)
            yield Server(url, psutil.Process(process.pid), client, root / "home")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
