"""One schema: opening the state database creates every table, once, in one place."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from copilot.db.engine import open_engine, upsert
from copilot.db.schema import checkpoints, metadata
from copilot.db.state import StateStore
from copilot.finetune import consent, overrides
from copilot.skills.history import RunStore

COPILOT = Path(__file__).resolve().parents[2] / "copilot"
EVERY_TABLE = {
    "items", "checkpoints", "failures", "texts", "syncs", "skill_runs", "personal_skills",
    "skill_versions", "skill_samples", "skill_models", "consents",
}  # fmt: skip


def test_opening_a_fresh_store_creates_every_table_and_index(tmp_path: Path) -> None:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    found = inspect(state.engine)
    assert set(found.get_table_names()) == EVERY_TABLE == set(metadata.tables)
    run_indexes = {i["name"] for i in found.get_indexes("skill_runs")}
    assert {"ix_skill_runs_owner_created", "ix_skill_runs_skill_rating"} <= run_indexes
    state.close()


def test_an_in_memory_database_gets_every_table_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a path-less URL must not turn into a file here
    for url in ("sqlite://", "sqlite:///:memory:"):
        assert set(inspect(open_engine(url)).get_table_names()) == EVERY_TABLE
    assert list(tmp_path.iterdir()) == []


def test_every_store_works_on_a_freshly_opened_database(tmp_path: Path) -> None:
    """No store creates its own table any more: the opener's tables are all they need."""
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    assert RunStore(engine).list("ann") == []
    assert consent.grant(engine, "ann") > 0 and list(consent.consenting(engine)) == ["ann"]
    overrides.set_skill_model(engine, "summarise", "ft:gpt-4o-mini:acme", "admin")
    assert overrides.skill_model(engine, "summarise") == "ft:gpt-4o-mini:acme"


def test_an_older_database_keeps_its_rows_and_gains_the_missing_tables(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:  # as an earlier version left it: sync state only
        conn.execute(
            "CREATE TABLE checkpoints (owner VARCHAR NOT NULL, scope VARCHAR NOT NULL, "
            "value TEXT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (owner, scope))"
        )
        conn.execute("INSERT INTO checkpoints VALUES ('ann', 'local:/d', '{\"n\": 1}', 1.0)")
    conn.close()
    state = StateStore(f"sqlite:///{db}")
    assert state.checkpoint("ann", "local:/d") == {"n": 1}
    assert set(inspect(state.engine).get_table_names()) == EVERY_TABLE
    state.close()


def test_upsert_inserts_then_updates_the_other_columns(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    row = {"owner": "ann", "scope": "s", "value": "1", "updated_at": 1.0}
    with engine.begin() as conn:
        conn.execute(upsert(checkpoints, row, ("owner", "scope"), "sqlite"))
        conn.execute(upsert(checkpoints, {**row, "value": "2"}, ("owner", "scope"), "sqlite"))
        values = conn.execute(checkpoints.select()).all()
    assert [(r.owner, r.value) for r in values] == [("ann", "2")]


def test_tables_are_declared_and_created_only_in_the_schema_module() -> None:
    lazy = re.compile(r"\bMetaData\(|\bmetadata\.create_all\(|\bTable\(\s*\"\w+\",\s*metadata\b")
    offenders = [
        str(path.relative_to(COPILOT))
        for path in COPILOT.rglob("*.py")
        if path.name != "schema.py" and lazy.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
