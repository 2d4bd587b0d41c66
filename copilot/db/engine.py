"""Opening the state database (the one place that does), and the upsert every store uses.

Why one opener: it is where the schema is created (``schema.create_all``), where SQLite gets
the pragmas that let readers run beside a sync, and where a SQLite file is made private
before SQLite first writes it. Stores take the ``Engine`` it returns and never create
tables themselves.

SQLite by default; PostgreSQL for several API replicas, with the same code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine
from sqlalchemy.sql.dml import Insert

from copilot.db.schema import create_all
from copilot.fileio import create_private_file, make_private_dir, warn_if_loose

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def open_engine(url: str) -> Engine:
    """An engine on the state database at ``url`` with every table in place.

    A SQLite file (and a folder for it) that does not exist yet is created private (0600,
    0700) whatever the umask; one that exists and is open to other accounts is reported.
    """
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        path = sqlite_file(engine.url)
        if path is not None:
            make_private_dir(path.parent)
            create_private_file(path)
            warn_if_loose(sqlite_files(path), "the state database")
        event.listen(engine, "connect", _sqlite_pragmas)
    create_all(engine)
    return engine


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database or a ``file:`` URI."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or "uri" in url.query:
        return None
    return Path(database).absolute()  # as SQLite reads it: no "~" expansion


def sqlite_files(path: Path) -> list[Path]:
    """The database file and the journal files SQLite keeps beside it."""
    return [path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)]


def upsert(table: Table, row: dict[str, Any], keys: Iterable[str], dialect: str) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE the other columns: SQLite and PostgreSQL both
    speak it, each in its own dialect."""
    key_list = list(keys)
    changes = {k: v for k, v in row.items() if k not in key_list}
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(**row)
        return lite.on_conflict_do_update(index_elements=key_list, set_=changes)
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(**row)
        return pg.on_conflict_do_update(index_elements=key_list, set_=changes)
    raise RuntimeError(f"state store on {dialect!r} is not supported: use SQLite or PostgreSQL")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (status, API) never block a sync
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
