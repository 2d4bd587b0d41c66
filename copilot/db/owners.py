"""Who owns data: the ids of local users, and moving data kept under older ids to them.

A person on this machine is one *local user*, ``local:NAME``, whichever way they come
in: the CLI (``--user NAME``, default their OS account name), the task pane and the bot
in development mode (``Bearer dev:NAME``), and the CLI through the running service (the
local admin token plus ``X-Copilot-User: NAME``). Entra users are ``{tid}:{oid}``; a
name has no ``:``, so the two kinds of id can never meet.

Older versions keyed the same person's data two other ways: the CLI by the bare name
(``ann``) and dev mode by ``dev:ann``. :func:`adopt_legacy_owners` moves both to
``local:ann`` once — the index first (each item's chunks get the new ``owner``; point ids
stay, so run histories still resolve their chunk ids), then every state table in one
transaction. A crash in between leaves chunks already moved and state rows not yet, and
the next run moves the rows (the index step finds nothing left under the old id). A row
whose key already exists under the new id (the same file synced both ways) is not
overwritten: it moves, with its chunks, to ``legacy:OLD`` (e.g. ``legacy:dev:ann``), where
``--user legacy:dev:ann`` still reaches it and no later run tries to move it again.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from sqlalchemy import Column, Table, and_, exists, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Update

from copilot.config import Settings
from copilot.db.schema import items, metadata

LOCAL = "local:"
LEGACY_DEV = "dev:"
STASH = "legacy:"  # what could not move without overwriting: legacy:OLD
# Letters, digits and . _ - @ (an app-only mailbox's owner may be named by its UPN).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
OWNER_COLUMNS = ("owner", "user")
# Tables whose rows mean "this user exists": they synced, ran or saved a skill.
PRESENCE = ("items", "syncs", "skill_runs", "personal_skills")

log = logging.getLogger(__name__)


class PayloadStore(Protocol):
    """The part of the index store the move needs (``copilot.index.base.IndexStore``)."""

    def set_item_payload(self, owner: str, item_id: str, values: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


def check_name(name: str) -> str:
    """``name`` if it can name a local user; else ValueError saying what a name is."""
    if not NAME.match(name):
        raise ValueError(
            f"{name!r} is not a user name: use letters, digits, '.', '_', '-' or '@' "
            "(at most 128, starting with a letter or digit)."
        )
    return name


def local_user_id(name: str) -> str:
    """The id that keys ``name``'s data: ``local:NAME``."""
    return LOCAL + check_name(name)


def local_name(user_id: str) -> str | None:
    """NAME of ``local:NAME``; None for any other id (an Entra user)."""
    name = user_id.removeprefix(LOCAL)
    return name if user_id.startswith(LOCAL) and NAME.match(name) else None


def user_id_for(value: str) -> str:
    """The id a ``--user`` value means: ``NAME`` and ``local:NAME`` are the local user;
    an id with a ``:`` of another kind (an Entra ``tid:oid``) is taken as it is."""
    value = value.strip()
    if ":" not in value:
        return local_user_id(value)
    if value.startswith(LOCAL):
        return local_user_id(value.removeprefix(LOCAL))
    if len(value) > 300 or any(ch.isspace() for ch in value):
        raise ValueError(f"{value[:80]!r} is not a user id.")
    return value


def legacy_id(owner: str) -> str | None:
    """The local id an owner of an older version stands for (``ann``, ``dev:ann``), or None."""
    if owner.startswith(LEGACY_DEV):
        name = owner.removeprefix(LEGACY_DEV)
        return LOCAL + name if NAME.match(name) else None
    if ":" not in owner and NAME.match(owner):
        return LOCAL + owner
    return None


# -- who exists ---------------------------------------------------------------------------


def _owner_tables() -> list[tuple[Table, Column[Any]]]:
    found = []
    for table in metadata.sorted_tables:
        for name in OWNER_COLUMNS:
            if name in table.c:
                found.append((table, table.c[name]))
    return found


def local_users(engine: Engine) -> list[str]:
    """Names of the local users who have synced, run or saved anything, sorted."""
    names: set[str] = set()
    with engine.connect() as conn:
        for table_name in PRESENCE:
            column = metadata.tables[table_name].c.owner
            query = select(column).where(column.like(f"{LOCAL}%")).distinct()
            names.update(n for (owner,) in conn.execute(query) if (n := local_name(owner)))
    return sorted(names)


def local_user_exists(engine: Engine, name: str) -> bool:
    """Whether local user ``name`` has any data (one indexed lookup per table)."""
    if not NAME.match(name):
        return False
    owner = LOCAL + name
    with engine.connect() as conn:
        for table_name in PRESENCE:
            column = metadata.tables[table_name].c.owner
            if conn.execute(select(column).where(column == owner).limit(1)).first():
                return True
    return False


# -- moving older ids ---------------------------------------------------------------------


def legacy_owners(engine: Engine) -> dict[str, str]:
    """Owners kept under an older id, and the local id each moves to."""
    moves: dict[str, str] = {}
    with engine.connect() as conn:
        for _, column in _owner_tables():
            query = (
                select(column)
                .where(or_(~column.contains(":"), column.like(f"{LEGACY_DEV}%")))
                .distinct()
            )
            for (owner,) in conn.execute(query):
                new = legacy_id(owner)
                if new is not None:
                    moves[owner] = new
    return moves


def adopt_legacy_owners(engine: Engine, store: PayloadStore | None) -> dict[str, str]:
    """Move data of older ids to local ids (see the module doc); returns what moved.

    ``store`` is the open index; None only where there is no index to move (a state
    database used on its own), since state rows moved without their chunks would make
    those chunks unreachable.
    """
    moves = legacy_owners(engine)
    for old, new in moves.items():
        stash = STASH + old
        if store is not None:
            movable, stuck = _items_of(engine, old, new)
            for item_id in movable:
                store.set_item_payload(old, item_id, {"owner": new})
            for item_id in stuck:
                store.set_item_payload(old, item_id, {"owner": stash})
            store.flush()
        with engine.begin() as conn:
            for table, column in _owner_tables():
                conn.execute(_move_rows(table, column, old, new))
                conn.execute(_move_rows(table, column, old, stash))
        log.warning("Moved the data of user %r to %r (one id per local user).", old, new)
    return moves


def _items_of(engine: Engine, old: str, new: str) -> tuple[list[str], list[str]]:
    """``old``'s item ids that ``new`` does not have yet, and those it has."""
    taken = items.alias("taken")
    has = exists().where(and_(taken.c.owner == new, taken.c.item_id == items.c.item_id))
    query = select(items.c.item_id, has).where(items.c.owner == old)
    movable: list[str] = []
    stuck: list[str] = []
    with engine.connect() as conn:
        for item_id, clash in conn.execute(query):
            (stuck if clash else movable).append(item_id)
    return movable, stuck


def _move_rows(table: Table, column: Column[Any], old: str, new: str) -> Update:
    """UPDATE ``table`` from ``old`` to ``new``, skipping rows whose key ``new`` has."""
    statement = update(table).where(column == old).values({column.name: new})
    key = [c for c in table.primary_key.columns if c.name != column.name]
    if column.primary_key:
        other = table.alias("other")
        same_key = [other.c[c.name] == c for c in key]
        statement = statement.where(~exists().where(and_(other.c[column.name] == new, *same_key)))
    return statement


def adopt_legacy_sources(settings: Settings) -> int:
    """Move the users of ``copilot watch``'s sources (``sources.json``) to local ids too;
    returns how many moved."""
    from dataclasses import replace

    from copilot.sources import SourcesError, forget, load_sources, remember

    try:
        sources = load_sources(settings)
    except SourcesError:  # `copilot watch` and `copilot sources list` say what is wrong
        return 0
    moved = 0
    for source in sources:
        new = legacy_id(source.user)
        if new is not None:
            forget(settings, source.id)
            remember(settings, replace(source, user=new))
            moved += 1
    return moved
