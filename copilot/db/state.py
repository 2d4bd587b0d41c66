"""Sync state: what is indexed at which version, connector checkpoints, and failures.

Why a database and not the vector index's payloads: the pipeline asks "is this item
unchanged?" for every item of every sync, and that must cost a primary-key lookup, not
a vector-store scroll. SQLAlchemy Core keeps this a plain SQLite file by default and
lets several API replicas share PostgreSQL later with the same code. The tables are in
``copilot.db.schema``; ``StateStore`` opens the database through ``open_engine``, which
creates them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from copilot.db.engine import open_engine, upsert
from copilot.db.schema import checkpoints, failures, items, syncs, texts


@dataclass(frozen=True)
class ItemState:
    item_id: str
    version: str
    content_hash: str
    status: str
    chunks: int
    parent_id: str | None
    title: str = ""  # to notice a rename without a query per unchanged item
    url: str = ""


class StateStore:
    """All reads and writes of sync state, each scoped to one owner."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        """Close the pooled connections now: PostgreSQL counts them until they go."""
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- items -----------------------------------------------------------------------
    def item_states(self, owner: str, scope: str) -> dict[str, ItemState]:
        """Every known item of a scope, loaded once per sync instead of once per item."""
        query = select(items).where(items.c.owner == owner, items.c.scope == scope)
        with self.engine.connect() as conn:
            return {
                r.item_id: ItemState(
                    r.item_id,
                    r.version,
                    r.content_hash,
                    r.status,
                    r.chunks,
                    r.parent_id,
                    r.title,
                    r.url,
                )
                for r in conn.execute(query)
            }

    def record_items(self, owner: str, rows: list[dict[str, Any]]) -> None:
        """Mark items indexed (or failed) in one transaction, clearing their old failures."""
        now = time.time()
        with self.engine.begin() as conn:
            for row in rows:
                row = {**row, "owner": owner, "indexed_at": now}
                text = row.pop("display_text", None)
                conn.execute(upsert(items, row, ("owner", "item_id"), self.dialect))
                if row["status"] == "indexed":
                    conn.execute(
                        delete(failures).where(
                            failures.c.owner == owner, failures.c.item_id == row["item_id"]
                        )
                    )
                if text is not None:
                    conn.execute(
                        upsert(
                            texts,
                            {"owner": owner, "item_id": row["item_id"], "text": text},
                            ("owner", "item_id"),
                            self.dialect,
                        )
                    )

    def touch_version(self, owner: str, item_id: str, version: str) -> None:
        """Same bytes under a new version (a file touched, a message moved): no re-index."""
        with self.engine.begin() as conn:
            conn.execute(
                items.update()
                .where(items.c.owner == owner, items.c.item_id == item_id)
                .values(version=version)
            )

    def mark_failed(self, owner: str, item_id: str) -> None:
        """An indexed item that can no longer be fetched: its chunks are gone, say so."""
        with self.engine.begin() as conn:
            conn.execute(
                items.update()
                .where(items.c.owner == owner, items.c.item_id == item_id)
                .values(status="failed", chunks=0)
            )

    def forget_items(self, owner: str, item_ids: Iterable[str]) -> None:
        ids = list(item_ids)
        with self.engine.begin() as conn:
            for table in (items, failures, texts):
                for start in range(0, len(ids), 500):
                    part = ids[start : start + 500]
                    conn.execute(
                        delete(table).where(table.c.owner == owner, table.c.item_id.in_(part))
                    )

    def children(self, owner: str, parent_id: str) -> list[str]:
        query = select(items.c.item_id).where(
            items.c.owner == owner, items.c.parent_id == parent_id
        )
        with self.engine.connect() as conn:
            return [r.item_id for r in conn.execute(query)]

    def display_text(self, owner: str, item_id: str) -> str | None:
        query = select(texts.c.text).where(texts.c.owner == owner, texts.c.item_id == item_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def item(self, owner: str, item_id: str) -> dict[str, Any] | None:
        """An indexed item's title, url, kind and parent (None if ``owner`` has no such item)."""
        cols = (items.c.item_id, items.c.title, items.c.url, items.c.kind, items.c.parent_id)
        query = select(*cols).where(items.c.owner == owner, items.c.item_id == item_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    # -- failures --------------------------------------------------------------------
    def record_failure(self, owner: str, scope: str, item_id: str, stage: str, reason: str) -> None:
        row: dict[str, Any] = {"owner": owner, "item_id": item_id, "scope": scope}
        row.update(stage=stage, reason=reason, at=time.time())
        with self.engine.begin() as conn:
            conn.execute(upsert(failures, row, ("owner", "item_id"), self.dialect))

    def failures(self, owner: str | None = None) -> list[dict[str, Any]]:
        query = select(failures).order_by(failures.c.at)
        if owner is not None:
            query = query.where(failures.c.owner == owner)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- checkpoints and sync runs ---------------------------------------------------
    def checkpoint(self, owner: str, scope: str) -> dict[str, Any] | None:
        query = select(checkpoints.c.value).where(
            checkpoints.c.owner == owner, checkpoints.c.scope == scope
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return json.loads(value) if value else None

    def save_checkpoint(self, owner: str, scope: str, value: dict[str, Any]) -> None:
        row = {
            "owner": owner,
            "scope": scope,
            "value": json.dumps(value),
            "updated_at": time.time(),
        }
        with self.engine.begin() as conn:
            conn.execute(upsert(checkpoints, row, ("owner", "scope"), self.dialect))

    def sync_started(self, owner: str, scope: str) -> None:
        row = {"owner": owner, "scope": scope, "started_at": time.time(), "finished_at": None}
        row.update(status="running", counts="{}")
        with self.engine.begin() as conn:
            conn.execute(upsert(syncs, row, ("owner", "scope"), self.dialect))

    def sync_finished(
        self, owner: str, scope: str, counts: dict[str, Any], status: str = "done"
    ) -> None:
        """``status`` is "done", or "cancelled"/"failed" for a sync that stopped early."""
        with self.engine.begin() as conn:
            conn.execute(
                syncs.update()
                .where(syncs.c.owner == owner, syncs.c.scope == scope)
                .values(finished_at=time.time(), status=status, counts=json.dumps(counts))
            )

    # -- reporting -------------------------------------------------------------------
    def summary(self, owner: str | None = None) -> dict[str, Any]:
        """Counts for ``copilot status``: items, chunks, failures, last sync per scope."""
        where = [items.c.owner == owner] if owner else []
        with self.engine.connect() as conn:
            indexed = conn.execute(
                select(func.count(), func.coalesce(func.sum(items.c.chunks), 0)).where(
                    items.c.status == "indexed", *where
                )
            ).one()
            sync_query = select(syncs).order_by(syncs.c.started_at.desc())
            if owner:
                sync_query = sync_query.where(syncs.c.owner == owner)
            runs = [dict(r._mapping) for r in conn.execute(sync_query)]
            per_source = select(
                items.c.owner,
                items.c.scope,
                func.count(),
                func.coalesce(func.sum(items.c.chunks), 0),
            ).where(items.c.status == "indexed", *where)
            sources = [
                {"owner": r[0], "scope": r[1], "items": r[2], "chunks": int(r[3])}
                for r in conn.execute(
                    per_source.group_by(items.c.owner, items.c.scope).order_by(
                        items.c.owner, items.c.scope
                    )
                )
            ]
        for run in runs:
            run["counts"] = json.loads(run["counts"] or "{}")
        return {"items": indexed[0], "chunks": int(indexed[1]), "syncs": runs, "sources": sources}
