"""One id per local user: ``local:NAME``, and data of the older ids moved to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.local import LocalFolder
from copilot.db.owners import (
    adopt_legacy_owners,
    adopt_legacy_sources,
    legacy_owners,
    local_name,
    local_user_exists,
    local_user_id,
    local_users,
    user_id_for,
)
from copilot.index.search import search
from copilot.ingest.pipeline import sync
from copilot.skills.library.store import SkillStore
from copilot.sources import Source, load_sources, remember
from copilot.workspace import Workspace


def test_user_ids() -> None:
    assert user_id_for("ann") == user_id_for("local:ann") == local_user_id("ann") == "local:ann"
    assert user_id_for("bob@contoso.example") == "local:bob@contoso.example"
    tenant_user = "72f988bf-86f1-41af-91ab-2d7cd011db47:0a1b2c3d-0000-4000-8000-000000000001"
    assert user_id_for(tenant_user) == tenant_user  # an Entra id, as it is
    assert local_name("local:ann") == "ann" and local_name(tenant_user) is None
    for bad in ("", "a b", "../x", "local:", "local:a b", "-ann", "x" * 200):
        with pytest.raises(ValueError):
            user_id_for(bad)


def folder(root: Path, name: str, words: list[str]) -> Path:
    path = root / name
    path.mkdir()
    for word in words:
        (path / f"{word}.txt").write_text(f"The {word} memo is about the budget.")
    return path


def test_older_ids_move_to_local_ids_with_their_chunks_and_skills(
    ws: Workspace, tmp_path: Path
) -> None:
    def synced(path: Path, owner: str) -> None:
        sync(LocalFolder(path, owner=owner), ws.settings, ws.state, ws.store, ws.embedder)

    anns = folder(tmp_path, "ann", ["okapi", "walrus"])
    synced(anns, "ann")  # the CLI of older versions: the bare name
    synced(folder(tmp_path, "bob", ["heron"]), "dev:bob")  # dev mode of older versions
    carols = folder(tmp_path, "carol", ["pelican"])
    synced(carols, "carol")
    synced(carols, "local:carol")  # the same folder under both ids: nothing is overwritten
    SkillStore(ws.state.engine).fork("ann", "summarise", "brief")
    tenant_user = "72f988bf-86f1-41af-91ab-2d7cd011db47:0a1b2c3d-0000-4000-8000-000000000001"
    synced(folder(tmp_path, "entra", ["ibis"]), tenant_user)
    assert legacy_owners(ws.state.engine) == {
        "ann": "local:ann", "dev:bob": "local:bob", "carol": "local:carol",
    }  # fmt: skip

    moved = adopt_legacy_owners(ws.state.engine, ws.store)
    assert set(moved) == {"ann", "dev:bob", "carol"}
    assert legacy_owners(ws.state.engine) == {}
    assert (ws.store.count("ann"), ws.store.count("local:ann")) == (0, 2)
    assert (ws.store.count("dev:bob"), ws.store.count("local:bob")) == (0, 1)
    assert (ws.store.count("carol"), ws.store.count("local:carol")) == (0, 1)
    assert ws.store.count("legacy:carol") == 1  # the clashing copy: kept, not overwritten
    assert ws.state.summary("legacy:carol")["items"] == 1
    assert ws.store.count(tenant_user) == 1  # other ids are not touched
    hits = search(ws.store, ws.embedder, "local:ann", "okapi", k=1)
    assert hits and hits[0].title == "okapi.txt"
    assert [i.id for i in SkillStore(ws.state.engine).list("local:ann") if i.id == "brief"]
    assert ws.state.summary("local:ann")["items"] == 2 and ws.state.summary("ann")["items"] == 0

    # Synced again under the new id: nothing is new, nothing doubles.
    again = sync(LocalFolder(anns, owner="local:ann"), ws.settings, ws.state, ws.store,
                 ws.embedder)  # fmt: skip
    assert (again.unchanged, again.embedded) == (2, 0) and ws.store.count("local:ann") == 2

    assert local_users(ws.state.engine) == ["ann", "bob", "carol"]
    assert local_user_exists(ws.state.engine, "ann")
    assert not local_user_exists(ws.state.engine, "zed")
    assert not local_user_exists(ws.state.engine, "a b")


def test_a_second_adoption_finds_nothing_to_move(ws: Workspace) -> None:
    assert adopt_legacy_owners(ws.state.engine, ws.store) == {}


def test_watched_sources_move_too(settings, tmp_path: Path) -> None:
    remember(settings, Source(user="anna", kind="local", path=str(tmp_path)))
    remember(settings, Source(user="local:bob", kind="onedrive"))
    assert adopt_legacy_sources(settings) == 1
    assert {s.user for s in load_sources(settings)} == {"local:anna", "local:bob"}
    (settings.home_dir / "sources.json").write_text("not json")
    assert adopt_legacy_sources(settings) == 0  # `watch` reports a damaged file, not this
