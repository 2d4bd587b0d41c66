"""A real, throwaway PostgreSQL server for the tests, on a loopback port, in a temp folder.

Why a real server: the state, runs and skill stores are meant to run on PostgreSQL beside
several API replicas, and the dialect differences (upserts, JSON, integer widths, locking)
are exactly what a fake would hide. Debian's ``postgresql`` package (``make system-deps``)
puts ``initdb`` and ``pg_ctl`` in ``/usr/lib/postgresql/<version>/bin``; the server starts in
about a second with trust authentication on 127.0.0.1 only and its socket in the temp folder,
so it never touches the system's cluster.

PostgreSQL refuses to run as root, so under root the folder is handed to the ``postgres``
account (which the Debian package creates) and the tools run as that account.

Every test gets a database of its own (``Postgres.new_database``), so tests sharing the one
server never see each other's rows. When the binaries are missing the fixture skips with a
reason instead of failing.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.dovecot import free_ports

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SUPERUSER = "postgres"


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries, or None when there is none."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    versions.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


BIN_DIR = find_bin_dir()


@dataclass
class Postgres:
    """A running server; ``new_database()`` returns the SQLAlchemy URL of a fresh database."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    started_in_s: float = 0.0
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its URL (the tables come from ``open_engine``)."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres_user() -> dict[str, object]:
    """subprocess arguments that run a tool as the ``postgres`` account when we are root."""
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam(SUPERUSER)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(args: list[str], timeout: float) -> None:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, **_as_postgres_user()
    )
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {result.stdout}{result.stderr}")


def start_postgres(root: Path) -> Postgres:
    """initdb in ``root/data`` and start the server on a free loopback port."""
    if BIN_DIR is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    if os.geteuid() == 0:
        account = pwd.getpwnam(SUPERUSER)
        os.chown(root, account.pw_uid, account.pw_gid)
    data = root / "data"
    _run(
        [str(BIN_DIR / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"],
        timeout=120,
    )
    (port,) = free_ports(1)
    options = f"-k {root} -h 127.0.0.1 -p {port} -c fsync=off -c full_page_writes=off"
    _run(
        [
            str(BIN_DIR / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "pg.log"),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        ],
        timeout=START_TIMEOUT_S + 5,
    )
    return Postgres(root=root, port=port)


def _stop(root: Path) -> None:
    if BIN_DIR is None or not (root / "data" / "postmaster.pid").exists():
        return
    with contextlib.suppress(Exception):
        _run(
            [str(BIN_DIR / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop"],
            timeout=STOP_TIMEOUT_S,
        )


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A PostgreSQL server in a temporary folder, stopped and removed afterwards (the
    ``postgres`` fixture in tests/conftest.py runs one for the session)."""
    root = Path(tempfile.mkdtemp(prefix="copilot-postgres-"))
    try:
        started = time.monotonic()
        server = start_postgres(root)
        server.started_in_s = time.monotonic() - started
        try:
            yield server
        finally:
            _stop(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
