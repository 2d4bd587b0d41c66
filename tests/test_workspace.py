"""Privacy at rest: the home, the state database and the index are the owner's alone.

Under the common umask 022 plain files come out 0644 and folders 0755, readable by every
account on the machine; these hold every user's mail text, so they must not.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from pathlib import Path

import pytest
from llama_index.core.schema import TextNode

from copilot.config import Settings
from copilot.db.state import StateStore
from copilot.fileio import loose, make_private_dir
from copilot.index.store import EdgeVectorStore
from copilot.workspace import Workspace


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


pytestmark = pytest.mark.usefixtures("umask_022")  # plain writes come out world-readable


def row(item_id: str) -> dict[str, object]:
    return {
        "item_id": item_id, "scope": "local:/d", "parent_id": None, "kind": "file",
        "title": item_id, "url": "", "version": "v1", "content_hash": "h", "status": "indexed",
        "chunks": 1, "modified": 0.0, "display_text": "Dear Ann, the salary review is on Monday.",
    }  # fmt: skip


def test_home_state_database_and_index_are_private_whatever_the_umask(settings: Settings) -> None:
    assert not settings.home_dir.exists()
    with Workspace(settings) as ws:
        assert mode(settings.home_dir) == 0o700
        ws.state.record_items("ann", [row("a")])
        db = settings.home_dir / "state.db"
        side = [db.with_name("state.db-wal"), db.with_name("state.db-shm")]
        assert all(p.exists() for p in side)  # WAL mode: both exist while the store is open
        assert [mode(p) for p in [db, *side]] == [0o600, 0o600, 0o600]

    with EdgeVectorStore(settings.index_dir / "model-x", 4) as index:
        meta = {"owner": "ann", "item_id": "a", "chunk": 0}
        nodes = [
            TextNode(
                id_=str(uuid.uuid4()), text=f"salary {i}", embedding=[1, i, 0, 1], metadata=meta
            )
            for i in range(20)
        ]
        index.add(nodes)
        index.optimize()
    files = list(settings.index_dir.rglob("*"))
    assert len(files) > 5 and loose([settings.index_dir, *files]) == []
    assert mode(settings.index_dir) == 0o700


def test_loosened_permissions_are_reported_at_start_and_left_as_set(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with Workspace(settings) as ws:
        ws.state.record_items("ann", [row("a")])
        make_private_dir(settings.index_dir / "model-x")  # as the index store creates it
    db = settings.home_dir / "state.db"
    settings.home_dir.chmod(0o755)
    (settings.index_dir / "model-x").chmod(0o750)
    db.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="copilot"), Workspace(settings) as ws:
        assert ws.state.summary("ann")["items"] == 1  # still works: a warning, not a refusal
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"{settings.home_dir} (0755)" in text and f"{db} (0644)" in text
    assert f"{settings.index_dir / 'model-x'} (0750)" in text
    assert str(settings.index_dir) + " (" not in text  # the index folder itself is still 0700
    assert (mode(settings.home_dir), mode(db)) == (0o755, 0o644)


def test_a_fresh_state_store_outside_the_home_is_private_too(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "state.db"
    StateStore(f"sqlite:///{db}").close()
    assert (mode(db.parent), mode(db)) == (0o700, 0o600)
